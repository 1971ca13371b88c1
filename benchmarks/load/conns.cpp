// conns: opens --conns idle MQTT connections (clean sessions, keepalive), reports the connect
// rate (TCP + CONNECT/CONNACK, --concurrency handshakes in flight), then holds them for --hold
// seconds answering keepalive with PINGREQs, so an outside sampler can read the broker's RSS.
// "HOLD <n>" on stderr marks the start of the hold. Connections beyond --per-addr come from the
// next source address 127.0.0.x, and a connect that fails with EADDRNOTAVAIL moves on too.
#include <cstdio>

#include "scenario.h"

namespace mqttd::load {

namespace {

class Conns final : public ScenarioBase {
public:
    explicit Conns(const Options& opts) : ScenarioBase(opts) {}

    std::string run() override {
        const std::uint64_t fd_limit = raise_fd_limit(std::uint64_t{opts_.conns} + 64);
        std::vector<Client*> all;
        all.reserve(opts_.conns);
        for (std::uint32_t i = 0; i < opts_.conns; ++i) {
            all.push_back(&add_client(opts_.prefix + "-c-" + std::to_string(i)));
        }
        JsonLine j;
        j.add("scenario", "conns");
        JsonLine params;
        params.add("conns", opts_.conns)
                .add("hold", opts_.hold)
                .add("keepalive", static_cast<std::uint32_t>(opts_.keepalive))
                .add("concurrency", opts_.concurrency)
                .add("per_addr", opts_.per_addr);
        j.raw("params", params.str());

        const std::uint64_t t0 = now_ns();
        const std::size_t ready = connect_all(all, true, opts_.connect_timeout);
        const double connect_s = static_cast<double>(now_ns() - t0) / 1e9;
        std::fprintf(stderr, "HOLD %zu\n", ready);
        std::fflush(stderr);
        run_until([] { return false; }, opts_.hold, {}, 100);
        std::size_t still = 0;
        for (Client* c : all) {
            still += c->phase() == Client::Phase::Ready ? 1 : 0;
        }
        j.add("connected", static_cast<std::uint64_t>(ready))
                .add("connect_s", connect_s)
                .add("connects_per_s", static_cast<double>(ready) / connect_s)
                .add("held", static_cast<std::uint64_t>(still))
                .add("dropped_during_hold", static_cast<std::uint64_t>(ready - still))
                .add("connect_errors", connect_errors_)
                .add("connack_refused", connack_refused_)
                .add("fd_limit", fd_limit);
        // The common fields, so every scenario's line has the same shape.
        Tally t;
        t.expected = opts_.conns;
        t.received = ready;
        add_result(j, t, static_cast<double>(ready) / connect_s);
        disconnect_all(all, 5.0);
        return j.str();
    }
};

}  // namespace

std::unique_ptr<ScenarioBase> make_conns(const Options& opts) {
    return std::make_unique<Conns>(opts);
}

}  // namespace mqttd::load
