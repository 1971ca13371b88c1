#!/usr/bin/env bash
# Cross-node load through a two-node cluster vs the same load on one node: starts an etcd
# (Debian's etcd-server) and two mqttd nodes in a temp dir on free ports, then runs each row
# of mqttd-load twice, alternating, with publishers and subscribers on node 1 ("one node") and
# with publishers on node 1, subscribers on node 2 ("cross-node"), and prints the medians;
# then the connect rate of a cluster member (each CONNECT claims its client id in etcd) vs a
# standalone node ("single", a third mqttd without cluster keys).
# See benchmarks/README.md, "Cluster".
#
# usage: benchmarks/cluster.sh [--runs N] [--duration S] [--mqttd PATH] [--load PATH]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MQTTD=$ROOT/build/mqttd
LOAD=$ROOT/build/benchmarks/load/mqttd-load
RUNS=2
DURATION=5
CONNS=${CONNS:-5000}
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --mqttd) MQTTD=$2; shift ;;
        --load) LOAD=$2; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -x $MQTTD && -x $LOAD ]] || { echo "cluster.sh: build mqttd and mqttd-load first" >&2; exit 1; }
command -v etcd >/dev/null || { echo "cluster.sh: needs etcd (apt-get install etcd-server)" >&2; exit 1; }
command -v jq >/dev/null || { echo "cluster.sh: needs jq" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mqttd-cluster.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        if [[ -z $(ss -Htan "sport = :$p") ]]; then echo "$p"; return; fi
    done
    echo "cluster.sh: no free port" >&2; exit 1
}
wait_listen() {
    for _ in $(seq 1 300); do
        [[ -n $(ss -Hltn "sport = :$1") ]] && return 0
        sleep 0.05
    done
    echo "cluster.sh: nothing listens on $1" >&2; exit 1
}

ETCD_CLIENT=$(free_port); ETCD_PEER=$(free_port)
etcd --name b --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "b=http://127.0.0.1:$ETCD_PEER" >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
wait_listen "$ETCD_CLIENT"

declare -A MQTT
for n in 1 2; do
    MQTT[$n]=$(free_port)
    api=$(free_port); link=$(free_port)
    "$MQTTD" --data-dir "$WORK/n$n" -c /dev/null \
        --set node.name="n$n@127.0.0.1" --set node.workers=1 \
        --set listener.tcp.external="127.0.0.1:${MQTT[$n]}" --set listener.ssl.external= \
        --set listener.ws.external= --set listener.wss.external= \
        --set listener.api.mgmt="127.0.0.1:$api" --set dashboard.listener.http= \
        --set cluster.etcd.endpoints="http://127.0.0.1:$ETCD_CLIENT" \
        --set cluster.listener="127.0.0.1:$link" --set mqtt.max_inflight=0 \
        >"$WORK/n$n.log" 2>&1 &
    PIDS+=($!)
    wait_listen "${MQTT[$n]}"
done
MQTT[0]=$(free_port)
"$MQTTD" --data-dir "$WORK/n0" -c /dev/null --set node.workers=1 \
    --set listener.tcp.external="127.0.0.1:${MQTT[0]}" --set listener.ssl.external= \
    --set listener.ws.external= --set listener.wss.external= \
    --set listener.api.mgmt="127.0.0.1:$(free_port)" --set dashboard.listener.http= \
    >"$WORK/n0.log" 2>&1 &
PIDS+=($!)
wait_listen "${MQTT[0]}"
for _ in $(seq 1 100); do
    grep -q "link to n2@127.0.0.1 up" "$WORK/n1.log" && break
    sleep 0.1
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }

printf "%-28s %-11s %12s %10s %10s %12s\n" row placement msgs_per_s p50_us p99_us lost+dup
row() {  # name, mqttd-load arguments...
    local name=$1; shift
    for placement in one-node cross-node; do
        : >"$WORK/rates"; : >"$WORK/p50"; : >"$WORK/p99"; : >"$WORK/bad"
        for _ in $(seq 1 "$RUNS"); do
            local sub=${MQTT[1]}
            [[ $placement == cross-node ]] && sub=${MQTT[2]}
            out=$("$LOAD" "$@" --port "${MQTT[1]}" --sub-port "$sub" --duration "$DURATION")
            if [[ $(jq -r '.error // empty' <<<"$out") != "" ]]; then
                echo "cluster.sh: $name $placement: $out" >&2
                continue
            fi
            jq -r '.msgs_per_s' <<<"$out" >>"$WORK/rates"
            jq -r '.lost + .duplicates' <<<"$out" >>"$WORK/bad"
            jq -r '.latency_us.p50' <<<"$out" >>"$WORK/p50"
            jq -r '.latency_us.p99' <<<"$out" >>"$WORK/p99"
        done
        printf "%-28s %-11s %12s %10s %10s %12s\n" "$name" "$placement" \
            "$(median <"$WORK/rates")" "$(median <"$WORK/p50")" "$(median <"$WORK/p99")" \
            "$(awk '{s+=$1} END {print s+0}' "$WORK/bad")"
    done
}
row "pairs x10 qos1"       pairs --pairs 10 --qos 1
row "fanin 8->1 qos0"      fanin --pubs 8 --qos 0
row "fanin 8->1 qos1"      fanin --pubs 8 --qos 1
row "pairs x1 qos1 rate100" pairs --pairs 1 --qos 1 --rate 100

# Connect rate: CONNS clients, 100 handshakes at once, held 1 s, alternating the two nodes.
printf "\n%-28s %-11s %14s\n" row placement connects_per_s
: >"$WORK/c0"; : >"$WORK/c1"
for _ in $(seq 1 "$RUNS"); do
    for n in 0 1; do
        out=$("$LOAD" conns --conns "$CONNS" --hold 1 --concurrency 100 --port "${MQTT[$n]}" 2>/dev/null)
        jq -r '.connects_per_s' <<<"$out" >>"$WORK/c$n"
    done
done
printf "%-28s %-11s %14s\n" "connects x$CONNS c=100" single "$(median <"$WORK/c0")"
printf "%-28s %-11s %14s\n" "connects x$CONNS c=100" cluster-node "$(median <"$WORK/c1")"
