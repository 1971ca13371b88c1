// mqttd-load: an end-to-end MQTT 3.1.1 load generator. One scenario per run; the last line on
// stdout is its JSON result. See benchmarks/README.md ("Load tool and comparison").
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include <unistd.h>

#include "scenario.h"

namespace {

constexpr const char* kUsage = R"(usage: mqttd-load SCENARIO [options]
scenarios:
  fanin    --pubs P publishers -> 1 subscriber on PREFIX/fi/+
  fanout   1 publisher -> --subs S subscribers (msgs_per_s counts deliveries)
  pairs    --pairs N publisher/subscriber pairs on their own topics
  conns    --conns C idle connections, held --hold S seconds
  durable  --sessions K persistent sessions, --messages N queued while offline, then drained;
           --online: K persistent subscribers stay online (pairs through the store)
  restart  like durable, but kill -9 and restart --broker-cmd in between
common:   --host 127.0.0.1 --port 1883 --clients-prefix ldPID --keepalive 60
          --sub-port P (subscribers connect to P: another node of a cluster)
          --connect-timeout 30 --concurrency 256 (handshakes in flight)
          --tls (TLS, the broker's certificate not verified) --ws [--ws-path /mqtt]
          (MQTT over WebSocket; with --tls: WSS)
flows:    --qos 0|1|2 --size 16 --duration 5 --rate 0 (msgs/s, 0 = unpaced)
          --window 1000 (deliveries in flight end to end, whole scenario)
conns:    --conns 1000 --hold 5 --per-addr 16000
durable:  --sessions 1 --messages 10000 --window 1000 (unacked) --drain-timeout 60 --online
restart:  --broker-cmd "CMD" --data-dir DIR --settle 0
)";

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "mqttd-load: %s\n%s", msg.c_str(), kUsage);
    std::exit(2);
}

double to_double(std::string_view name, const char* v) {
    char* end = nullptr;
    const double d = std::strtod(v, &end);
    if (end == v || *end != '\0' || d < 0) {
        usage_error("bad value for " + std::string(name) + ": " + v);
    }
    return d;
}

std::uint64_t to_u64(std::string_view name, const char* v) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (end == v || *end != '\0') {
        usage_error("bad value for " + std::string(name) + ": " + v);
    }
    return n;
}

template <typename T>
T to_uint(std::string_view name, const char* v, std::uint64_t max) {
    const std::uint64_t n = to_u64(name, v);
    if (n > max) {
        usage_error("value out of range for " + std::string(name) + ": " + v);
    }
    return static_cast<T>(n);
}

mqttd::load::Options parse(int argc, char** argv) {
    mqttd::load::Options o;
    if (argc < 2) {
        usage_error("no scenario");
    }
    o.scenario = argv[1];
    if (o.scenario == "-h" || o.scenario == "--help") {
        std::fputs(kUsage, stdout);
        std::exit(0);
    }
    o.prefix = "ld" + std::to_string(::getpid());
    for (int i = 2; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--tls") {
            o.transport.tls = true;
            continue;
        }
        if (a == "--ws") {
            o.transport.ws = true;
            continue;
        }
        if (a == "--online") {
            o.online = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage_error("missing value for " + std::string(a));
        }
        const char* v = argv[++i];
        if (a == "--host") {
            o.host = v;
        } else if (a == "--port") {
            o.port = to_uint<std::uint16_t>(a, v, 65535);
        } else if (a == "--sub-port") {
            o.sub_port = to_uint<std::uint16_t>(a, v, 65535);
        } else if (a == "--ws-path") {
            o.transport.ws_path = v;
        } else if (a == "--clients-prefix") {
            o.prefix = v;
        } else if (a == "--keepalive") {
            o.keepalive = to_uint<std::uint16_t>(a, v, 65535);
        } else if (a == "--qos") {
            o.qos = to_uint<int>(a, v, 2);
        } else if (a == "--size") {
            o.size = to_uint<std::size_t>(a, v, 64U << 20);
        } else if (a == "--duration") {
            o.duration = to_double(a, v);
        } else if (a == "--rate") {
            o.rate = to_double(a, v);
        } else if (a == "--window") {
            o.window = to_uint<std::uint32_t>(a, v, 60000);
        } else if (a == "--pubs") {
            o.pubs = to_uint<std::uint32_t>(a, v, 65535);
        } else if (a == "--subs") {
            o.subs = to_uint<std::uint32_t>(a, v, 1'000'000);
        } else if (a == "--pairs") {
            o.pairs = to_uint<std::uint32_t>(a, v, 65535);
        } else if (a == "--conns") {
            o.conns = to_uint<std::uint32_t>(a, v, 1'000'000);
        } else if (a == "--hold") {
            o.hold = to_double(a, v);
        } else if (a == "--per-addr") {
            o.per_addr = to_uint<std::uint32_t>(a, v, 1'000'000);
        } else if (a == "--concurrency") {
            o.concurrency = to_uint<std::uint32_t>(a, v, 100'000);
        } else if (a == "--messages") {
            o.messages = to_u64(a, v);
        } else if (a == "--sessions") {
            o.sessions = to_uint<std::uint32_t>(a, v, 65535);
        } else if (a == "--drain-timeout") {
            o.drain_timeout = to_double(a, v);
        } else if (a == "--broker-cmd") {
            o.broker_cmd = v;
        } else if (a == "--data-dir") {
            o.data_dir = v;
        } else if (a == "--settle") {
            o.settle = to_double(a, v);
        } else if (a == "--connect-timeout") {
            o.connect_timeout = to_double(a, v);
        } else {
            usage_error("unknown option " + std::string(a));
        }
    }
    if (o.size < mqttd::load::kStampBytes) {
        o.size = mqttd::load::kStampBytes;
    }
    if (o.window == 0 || o.pubs == 0 || o.subs == 0 || o.pairs == 0 || o.sessions == 0 ||
        o.concurrency == 0 || o.per_addr == 0) {
        usage_error("counts must be positive");
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const mqttd::load::Options opts = parse(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    // An interrupted run still prints its line (marked "interrupted").
    std::signal(SIGINT, [](int) { mqttd::load::request_stop(); });
    std::signal(SIGTERM, [](int) { mqttd::load::request_stop(); });
    try {
        std::unique_ptr<mqttd::load::ScenarioBase> s;
        const std::string& sc = opts.scenario;
        if (sc == "fanin" || sc == "fanout" || sc == "pairs" || (sc == "durable" && opts.online)) {
            s = mqttd::load::make_flow(opts);
        } else if (sc == "conns") {
            s = mqttd::load::make_conns(opts);
        } else if (sc == "durable") {
            s = mqttd::load::make_durable(opts);
        } else if (sc == "restart") {
            s = mqttd::load::make_restart(opts);
        } else {
            usage_error("unknown scenario " + sc);
        }
        const std::string line = s->run();
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mqttd-load: %s\n", e.what());
        return 1;
    }
    return 0;
}
