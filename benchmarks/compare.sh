#!/usr/bin/env bash
# Runs the load matrix against build/mqttd and Debian's mosquitto side by side, alternating
# A B A B, samples each broker's RSS and CPU from /proc/<pid>, and prints the medians and the
# mqttd/mosquitto ratio per scenario. See benchmarks/README.md, "Load tool and comparison".
#
# usage: benchmarks/compare.sh [--quick] [--runs N] [--mqttd PATH] [--load PATH]
#                              [--only a,b,...] [--out DIR]
# Environment overrides: DURATION, CONNS, TLS_CONNS, RESTART_SESSIONS, RESTART_MESSAGES, INFLIGHT (both
# brokers' outbound in-flight limit per client; default empty: each broker's shipped default;
# one row also runs both at 256), and MQTTD_EXTRA (more mqttd arguments for every run, e.g.
# "--set node.workers=1").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MQTTD=$ROOT/build/mqttd
LOAD=""
RUNS=2
QUICK=0
ONLY=""
OUT=""
INFLIGHT=${INFLIGHT:-}

while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) QUICK=1 ;;
        --runs) RUNS=$2; shift ;;
        --mqttd) MQTTD=$2; shift ;;
        --load) LOAD=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [[ $QUICK == 1 ]]; then
    RUNS=1
    DURATION=${DURATION:-3}
    CONNS=${CONNS:-3000}
    HOLD=3
    DURABLE_SESSIONS=50
    DURABLE_MESSAGES=25000
    ONLINE_MESSAGES=20000
    RESTART_SESSIONS=${RESTART_SESSIONS:-200}
    RESTART_MESSAGES=${RESTART_MESSAGES:-20000}
    TLS_CONNS=${TLS_CONNS:-1000}
    TIMEOUTS="--connect-timeout 10 --drain-timeout 20"
else
    DURATION=${DURATION:-10}
    CONNS=${CONNS:-19000}
    HOLD=5
    DURABLE_SESSIONS=300
    DURABLE_MESSAGES=270000
    ONLINE_MESSAGES=400000
    RESTART_SESSIONS=${RESTART_SESSIONS:-10000}
    RESTART_MESSAGES=${RESTART_MESSAGES:-1000000}
    TLS_CONNS=${TLS_CONNS:-5000}
    TIMEOUTS="--connect-timeout 60 --drain-timeout 60"
fi

if [[ -z $LOAD ]]; then
    for cand in "$ROOT/build/benchmarks/load/mqttd-load" "$ROOT"/build-*/benchmarks/load/mqttd-load; do
        if [[ -x $cand ]]; then LOAD=$cand; break; fi
    done
fi
[[ -x $MQTTD ]] || { echo "compare.sh: no mqttd binary at $MQTTD (--mqttd PATH)" >&2; exit 1; }
[[ -n $LOAD && -x $LOAD ]] || { echo "compare.sh: mqttd-load not built (--load PATH)" >&2; exit 1; }
if ! command -v mosquitto >/dev/null; then
    echo "compare.sh: installing mosquitto" >&2
    apt-get install -y mosquitto >/dev/null
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
for tool in jq ss awk openssl; do
    command -v $tool >/dev/null || { echo "compare.sh: needs $tool" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/mqttd-compare.XXXXXX)
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
chmod 755 "$WORK"  # mosquitto drops to its own user and must reach its persistence dir
RESULTS=$OUT/results.tsv
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)
# Both brokers inherit this; 19 000 held connections need it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

BPID=""
SAMPLER=""
cleanup() {
    [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null || true
    [[ -n $BPID ]] && kill -9 "$BPID" 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 200); do
        # Below the kernel's ephemeral range (32768-60999): the load tool's thousands of client
        # sockets take their local ports from there, and a listener cannot bind a port an open
        # connection uses.
        p=$((20000 + RANDOM % 12000))
        if [[ -z $(ss -Htan "sport = :$p") ]]; then echo "$p"; return; fi
    done
    echo "compare.sh: no free port" >&2; exit 1
}

wait_listen() {  # port pid
    for _ in $(seq 1 300); do
        [[ -n $(ss -Hltn "sport = :$1") ]] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Rows named *tls* run over TLS, rows named *_ws over WebSocket ($TRANSPORT, set per row):
# both brokers listen with the same certificate (RSA 2048, made here with the openssl CLI).
TRANSPORT=tcp
CERT_DIR=""
make_cert() {
    [[ -n $CERT_DIR ]] && return
    CERT_DIR=$WORK/certs
    mkdir -p "$CERT_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERT_DIR/key.pem" -out "$CERT_DIR/cert.pem" \
        -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        >/dev/null 2>&1
    chmod 755 "$CERT_DIR"
    chmod 644 "$CERT_DIR"/*.pem  # mosquitto reads them as its own user
}

mosquitto_conf() {  # dir port inflight autosave
    mkdir -p "$1/db"
    local extra=""
    if [[ $TRANSPORT == tls ]]; then
        make_cert
        extra="certfile $CERT_DIR/cert.pem
keyfile $CERT_DIR/key.pem"
    fi
    local first="listener $2 127.0.0.1"
    if [[ $TRANSPORT == ws ]]; then
        # mosquitto 2.0.11's WebSocket listener (libwebsockets) neither starts alone nor binds an
        # address (eclipse-mosquitto/mosquitto#2284, #3045): a TCP listener nobody uses first.
        first="listener $(free_port) 127.0.0.1
listener $2
protocol websockets"
    fi
    cat >"$1/mosquitto.conf" <<EOF
$first
$extra
persistence true
persistence_location $1/db/
max_queued_messages 1000
allow_anonymous true
set_tcp_nodelay true
EOF
    if [[ -n $3 ]]; then echo "max_inflight_messages $3" >>"$1/mosquitto.conf"; fi
    if [[ -n ${4:-} ]]; then echo "autosave_interval $4" >>"$1/mosquitto.conf"; fi
    # Started as root, mosquitto drops to the mosquitto user and must still write its store.
    chown -R mosquitto "$1" 2>/dev/null || true
}

# The listeners a row does not use are off (the shipped defaults listen on 8883, 8083, 8084,
# 18083).
off_listeners() {
    local out=""
    [[ $TRANSPORT != tls ]] && out+="--set listener.ssl.external= "
    [[ $TRANSPORT != ws ]] && out+="--set listener.ws.external= "
    echo "$out--set listener.wss.external= --set dashboard.listener.http="
}

# The command line that runs broker $1 ("mqttd"/"mosquitto") on port $3 with state in $2,
# in-flight limit $4 (empty: the broker's default); extra mqttd settings in $5; mosquitto's
# autosave interval in $6.
broker_cmd() {
    local dir=$2 port=$3 inflight=$4 extra=${5:-}
    if [[ $1 == mqttd ]]; then
        : >"$dir/empty.conf"
        local listen="--set listener.tcp.external=127.0.0.1:$port"
        if [[ $TRANSPORT == tls ]]; then
            make_cert
            listen="--set listener.tcp.external=127.0.0.1:$(free_port) --set listener.ssl.external=127.0.0.1:$port"
            listen+=" --set listener.ssl.external.keyfile=$CERT_DIR/key.pem"
            listen+=" --set listener.ssl.external.certfile=$CERT_DIR/cert.pem"
        elif [[ $TRANSPORT == ws ]]; then
            listen="--set listener.tcp.external=127.0.0.1:$(free_port) --set listener.ws.external=127.0.0.1:$port"
        fi
        [[ -n $inflight ]] && listen+=" --set mqtt.max_inflight=$inflight"
        echo "$MQTTD --data-dir $dir/data -c $dir/empty.conf" \
             "$listen" \
             "--set listener.api.mgmt=127.0.0.1:$(free_port)" \
             "$(off_listeners)" \
             "${MQTTD_EXTRA:-} $extra"
    else
        mosquitto_conf "$dir" "$port" "$inflight" "${6:-}"
        echo "$MOSQUITTO -c $dir/mosquitto.conf"
    fi
}

start_broker() {  # broker dir port inflight extra
    mkdir -p "$2"
    local cmd
    cmd=$(broker_cmd "$1" "$2" "$3" "$4" "${5:-}")
    # shellcheck disable=SC2086
    $cmd >"$2/broker.log" 2>&1 &
    BPID=$!
    if ! wait_listen "$3" "$BPID"; then
        echo "compare.sh: $1 did not start; log:" >&2
        tail -5 "$2/broker.log" >&2
        return 1
    fi
}

stop_broker() {
    [[ -z $BPID ]] && return
    kill -TERM "$BPID" 2>/dev/null || true
    for _ in $(seq 1 200); do
        kill -0 "$BPID" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$BPID" 2>/dev/null || true
    wait "$BPID" 2>/dev/null || true
    BPID=""
}

proc_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# "<thread name> <utime+stime ticks>" per thread of $1, threads of one name summed.
thread_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(cat "$t/comm" 2>/dev/null)" \
            "$(sed 's/^.*) //' "$t/stat" 2>/dev/null | awk '{print $12 + $13}')"
    done | awk 'NF == 2 { s[$1] += $2 } END { for (n in s) print n, s[n] }' | sort
}
proc_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Samples the peak RSS of $1 into $2 every 100 ms until killed.
start_sampler() {
    (
        peak=0
        while kill -0 "$1" 2>/dev/null; do
            r=$(proc_rss_kb "$1")
            if [[ -n $r && $r -gt $peak ]]; then peak=$r; echo "$peak" >"$2"; fi
            sleep 0.1
        done
    ) &
    SAMPLER=$!
}

# scenario table: name | metric (jq over the load tool's line; "rss" and "cpu" are special) |
# better (hi/lo) | target | load arguments | mqttd extra settings | in-flight limit of both
# brokers (empty: $INFLIGHT, by default each broker's own: mqttd no fixed count and a 4 MiB
# byte budget, mosquitto 20). Targets are issue 14's (mqttd/mosquitto, one run).
SCENARIOS=(
    "fanin_q0|.msgs_per_s|hi|>= 13x|fanin --pubs 8 --qos 0 --size 16 --duration $DURATION||"
    "fanin_q1|.msgs_per_s|hi|>= 16x|fanin --pubs 8 --qos 1 --size 16 --duration $DURATION||"
    "fanin_q1_inflight256|.msgs_per_s|hi|-|fanin --pubs 8 --qos 1 --size 16 --duration $DURATION||256"
    "fanin_q0_p50_us|.latency_us.p50|lo|-|fanin --pubs 8 --qos 0 --size 16 --duration $DURATION||"
    "fanin_q1_p50_us|.latency_us.p50|lo|<= fanin_q0_p50_us|fanin --pubs 8 --qos 1 --size 16 --duration $DURATION||"
    "fanout_q0|.msgs_per_s|hi|>= 4.5x|fanout --subs 100 --qos 0 --size 16 --duration $DURATION|"
    "pairs_q1|.msgs_per_s|hi|>= 7x|pairs --pairs 50 --qos 1 --size 16 --duration $DURATION|"
    "durable_online_nosync|.msgs_per_s|hi|>= 8x|durable --online --sessions 8 --qos 1 --messages $ONLINE_MESSAGES|--set storage.sync=false"
    "durable_online_sync|.msgs_per_s|hi|>= 2x|durable --online --sessions 8 --qos 1 --messages $ONLINE_MESSAGES|--set storage.sync=true"
    "p99_10k_q1_us|.latency_us.p99|lo|<= 0.5x|pairs --pairs 50 --qos 1 --rate 10000 --duration $DURATION|"
    "rss_mb_per_1k_conns|rss|lo|<= 0.72 kB/conn|conns --conns $CONNS --hold $HOLD|"
    "connects_per_s|.connects_per_s|hi|>= 2x|conns --conns $CONNS --hold 1 --concurrency 100|"
    "durable_publish|.publish_per_s|hi|>= 2.5x|durable --sessions $DURABLE_SESSIONS --qos 1 --messages $DURABLE_MESSAGES|"
    "durable_drain|.drain_per_s|hi|>= 3x|durable --sessions $DURABLE_SESSIONS --qos 1 --messages $DURABLE_MESSAGES|"
    "restart_first_connack_s|.first_connack_s|lo|< 1 s|restart --sessions $RESTART_SESSIONS --messages $RESTART_MESSAGES --settle 3|"
    "restart_last_delivery_s|.last_delivery_s|lo|< 10 s|restart --sessions $RESTART_SESSIONS --messages $RESTART_MESSAGES --settle 3|"
    "fanin_q1_tls|.msgs_per_s|hi|>= fanin_q1|fanin --tls --pubs 8 --qos 1 --size 16 --duration $DURATION||"
    "pairs_q1_tls|.msgs_per_s|hi|>= pairs_q1|pairs --tls --pairs 50 --qos 1 --size 16 --duration $DURATION|"
    "fanin_q1_ws|.msgs_per_s|hi|-|fanin --ws --pubs 8 --qos 1 --size 16 --duration $DURATION||"
    "pairs_q1_ws|.msgs_per_s|hi|-|pairs --ws --pairs 50 --qos 1 --size 16 --duration $DURATION|"
    "tls_handshakes_per_s|.connects_per_s|hi|-|conns --tls --conns $TLS_CONNS --hold 1 --concurrency 64|"
    "rss_mb_per_1k_tls_conns|rss|lo|< 2x|conns --tls --conns $TLS_CONNS --hold $HOLD|"
)

selected() { [[ -z $ONLY ]] || [[ ",$ONLY," == *",$1,"* ]]; }

run_one() {  # broker run name metric args extra inflight
    local broker=$1 run=$2 name=$3 metric=$4 args=$5 extra=$6 inflight=$7
    TRANSPORT=tcp
    if [[ $name == *tls* ]]; then TRANSPORT=tls; elif [[ $name == *_ws ]]; then TRANSPORT=ws; fi
    local dir=$WORK/$name-$broker-$run port line value cpu_pct="-" peak_mb="-"
    port=$(free_port)
    mkdir -p "$dir"
    if [[ $name == restart* ]]; then
        # The load tool runs (and kill -9s) the broker itself; mosquitto saves every second.
        local cmd
        cmd=$(broker_cmd "$broker" "$dir" "$port" "$inflight" "$extra" 1)
        # shellcheck disable=SC2086
        line=$("$LOAD" $args $TIMEOUTS --port "$port" --broker-cmd "$cmd" --data-dir "$dir" \
               2>"$dir/load.err" | tail -1; echo " rc=${PIPESTATUS[0]}" >>"$dir/load.err") || true
    else
        start_broker "$broker" "$dir" "$port" "$inflight" "$extra" || { echo "$broker	$run	$name	NA	-	-	-	-" >>"$RESULTS"; return; }
        local base_kb t0 c0 t1 c1
        sleep 0.2
        base_kb=$(proc_rss_kb "$BPID")
        echo "$base_kb" >"$dir/peak"
        start_sampler "$BPID" "$dir/peak"
        t0=$(date +%s.%N)
        c0=$(proc_cpu_ticks "$BPID")
        thread_ticks "$BPID" >"$dir/threads0"
        # shellcheck disable=SC2086
        line=$(timeout 600 "$LOAD" $args $TIMEOUTS --port "$port" 2>"$dir/load.err" | tail -1
               echo " rc=${PIPESTATUS[0]}" >>"$dir/load.err") || true
        c1=$(proc_cpu_ticks "$BPID")
        t1=$(date +%s.%N)
        thread_ticks "$BPID" >"$dir/threads1"
        # Per-thread CPU %, the split between workers (mqttd names them mqttd-w<N>). A thread
        # named after the first sample (a worker still starting) counts from 0.
        join -a 2 -e 0 -o 0,1.2,2.2 "$dir/threads0" "$dir/threads1" | awk -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
            -v tag="$broker $run $name" '$3 > $2 { printf "%s %s %.0f%%\n", tag, $1, ($3 - $2) / hz / (t1 - t0) * 100 }' \
            >>"$OUT/threads.txt"
        kill "$SAMPLER" 2>/dev/null || true
        wait "$SAMPLER" 2>/dev/null || true
        SAMPLER=""
        local peak_kb
        peak_kb=$(cat "$dir/peak")
        cpu_pct=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
                  'BEGIN { printf "%.0f", (b - a) / hz / (t1 - t0) * 100 }')
        peak_mb=$(awk -v k="$peak_kb" 'BEGIN { printf "%.1f", k / 1024 }')
        if [[ $metric == rss ]]; then
            local held
            held=$(jq -r '.held // 0' <<<"$line" 2>/dev/null || echo 0)
            value=$(awk -v p="$peak_kb" -v b="$base_kb" -v n="$held" \
                    'BEGIN { if (n > 0) printf "%.3f", (p - b) / 1024 / n * 1000; else print "NA" }')
        fi
        stop_broker
    fi
    [[ -z $line ]] && echo "compare.sh: $broker $name: no result ($(tr '\n' ' ' <"$dir/load.err"))" >&2
    echo "$broker $run $name $line" >>"$OUT/raw.jsonl"
    if [[ $metric != rss ]]; then
        value=$(jq -r "$metric // \"NA\"" <<<"$line" 2>/dev/null || echo NA)
        [[ -z $value ]] && value=NA
    fi
    local lost dups
    lost=$(jq -r '.lost // "-"' <<<"$line" 2>/dev/null || echo -)
    dups=$(jq -r '.duplicates // "-"' <<<"$line" 2>/dev/null || echo -)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$broker" "$run" "$name" "$value" "$cpu_pct" \
        "$peak_mb" "$lost" "$dups" >>"$RESULTS"
    printf '  %-10s run %d %-24s %s\n' "$broker" "$run" "$name" "$value" >&2
}

median() {  # values on stdin; NA, - and empty ignored
    { awk '$1 ~ /^[0-9.eE+-]+$/ && $1 != "-" { print $1 }' || true; } | sort -g |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "NA"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "compare.sh: mqttd=$MQTTD load=$LOAD runs=$RUNS duration=${DURATION}s work=$WORK" >&2
START=$(date +%s)
for entry in "${SCENARIOS[@]}"; do
    IFS='|' read -r name metric better target args extra inflight <<<"$entry"
    selected "$name" || continue
    for run in $(seq 1 "$RUNS"); do
        run_one mqttd "$run" "$name" "$metric" "$args" "$extra" "${inflight:-$INFLIGHT}"
        run_one mosquitto "$run" "$name" "$metric" "$args" "$extra" "${inflight:-$INFLIGHT}"
    done
done

col() {  # broker name column
    awk -F'\t' -v b="$1" -v n="$2" -v c="$3" '$1 == b && $3 == n { print $c }' "$RESULTS"
}
sum_col() { col "$1" "$2" "$3" | awk '$1 ~ /^[0-9]+$/ { s += $1 } END { print s + 0 }'; }

printf '\n| scenario | mqttd | mosquitto | ratio | target | mqttd cpu%% | mosq cpu%% | mqttd peak RSS MB | mosq peak RSS MB | lost m/q | dups m/q |\n'
printf '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n'
for entry in "${SCENARIOS[@]}"; do
    IFS='|' read -r name metric better target args extra inflight <<<"$entry"
    selected "$name" || continue
    a=$(col mqttd "$name" 4 | median)
    b=$(col mosquitto "$name" 4 | median)
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "NA" || b == "NA" || b + 0 == 0) print "NA"; else printf "%.2f", a / b }')
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s | %s/%s |\n' "$name" "$a" "$b" \
        "$ratio" "$target" "$(col mqttd "$name" 5 | median)" "$(col mosquitto "$name" 5 | median)" \
        "$(col mqttd "$name" 6 | median)" "$(col mosquitto "$name" 6 | median)" \
        "$(sum_col mqttd "$name" 7)" "$(sum_col mosquitto "$name" 7)" \
        "$(sum_col mqttd "$name" 8)" "$(sum_col mosquitto "$name" 8)"
done
echo
echo "runs=$RUNS, $(($(date +%s) - START)) s; raw results in $OUT/raw.jsonl," \
     "per-thread CPU in $OUT/threads.txt" >&2
