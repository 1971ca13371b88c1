// Scenario plumbing shared by every load scenario: the command-line options, a one-line JSON
// report writer, and ScenarioBase (a Loop plus helpers to connect many clients with a bounded
// number of handshakes in flight and to run the loop until a condition or a deadline).
//
// Every wait is bounded by a deadline, so a broker that stalls makes the scenario report what it
// saw instead of hanging.
// Thread-safety: none; a scenario runs on the thread that calls run().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <netinet/in.h>

#include "client.h"
#include "loop.h"
#include "stats.h"

namespace mqttd::load {

struct Options {
    std::string scenario;
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    // Subscribers connect here when set (another node of a cluster); 0 = --port.
    std::uint16_t sub_port = 0;
    std::string prefix;  // client id and topic prefix; default "ld<pid>"
    std::uint16_t keepalive = 60;
    // fanin / fanout / pairs / durable --online
    int qos = 0;
    std::size_t size = 16;
    double duration = 5.0;
    double rate = 0.0;  // messages/s over all publishers, 0 = as fast as the window allows
    std::uint32_t window = 1000;  // deliveries in flight, whole scenario
    std::uint32_t pubs = 8;
    std::uint32_t subs = 100;
    std::uint32_t pairs = 10;
    // conns
    std::uint32_t conns = 1000;
    double hold = 5.0;
    std::uint32_t per_addr = 16000;   // connections per source address 127.0.0.x
    std::uint32_t concurrency = 256;  // handshakes in flight
    // durable / restart
    std::uint64_t messages = 10000;
    std::uint32_t sessions = 1;
    bool online = false;
    double drain_timeout = 60.0;
    std::string broker_cmd;
    std::string data_dir;
    double settle = 0.0;
    double connect_timeout = 30.0;
    TransportOptions transport;  // --tls, --ws, --ws-path
};

// Builds one flat JSON object; values are appended in call order.
class JsonLine {
public:
    JsonLine& add(const char* key, double v);
    JsonLine& add(const char* key, std::uint64_t v);
    JsonLine& add(const char* key, std::int64_t v);
    JsonLine& add(const char* key, int v) { return add(key, static_cast<std::int64_t>(v)); }
    JsonLine& add(const char* key, std::uint32_t v) {
        return add(key, static_cast<std::uint64_t>(v));
    }
    JsonLine& add(const char* key, const std::string& v);
    JsonLine& add(const char* key, const char* v) { return add(key, std::string(v)); }
    JsonLine& add(const char* key, bool v);
    JsonLine& raw(const char* key, const std::string& json);
    [[nodiscard]] std::string str() const { return "{" + body_ + "}"; }

private:
    void key(const char* k);
    std::string body_;
};

// Delivery totals over all subscribers of a scenario.
struct Tally {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;  // distinct sequence numbers delivered
    std::uint64_t expected = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t unexpected = 0;
};

class ScenarioBase : public ClientEvents {
public:
    explicit ScenarioBase(const Options& opts);
    ~ScenarioBase() override = default;
    ScenarioBase(const ScenarioBase&) = delete;
    ScenarioBase& operator=(const ScenarioBase&) = delete;

    // Runs the scenario and returns its JSON line.
    virtual std::string run() = 0;

    void on_connack(Client& c, int return_code, bool session_present) override;
    void on_closed(Client& c, int err) override;
    void on_message(Client& /*c*/, const PublishView& /*m*/) override {}

protected:
    Client& add_client(const std::string& id);
    // Connects `clients` (CONNECT, waits for CONNACK) with at most opts.concurrency handshakes
    // in flight; returns how many are Ready. Source addresses advance every opts.per_addr.
    // `to`: the broker's address, `to_` when null.
    std::size_t connect_all(const std::vector<Client*>& clients,
                            bool clean,
                            double timeout_s,
                            const sockaddr_in* to = nullptr);
    // Subscribes each client to its filter and waits for every SUBACK.
    bool subscribe_all(const std::vector<Client*>& clients,
                       const std::vector<std::string>& filters,
                       int qos,
                       double timeout_s);
    // DISCONNECTs every open client and waits (bounded) until their sockets are closed.
    void disconnect_all(const std::vector<Client*>& clients, double timeout_s);
    // Runs the loop until done() or timeout_s elapsed; returns done(). `tick` runs every turn.
    bool run_until(const std::function<bool()>& done,
                   double timeout_s,
                   const std::function<void()>& tick = {},
                   int wait_ms = 5);
    // Fills the standard result fields of the report.
    void add_result(JsonLine& j, const Tally& t, double msgs_per_s) const;
    [[nodiscard]] std::string topic(const char* kind, std::uint32_t i) const;

    Options opts_;
    Loop loop_;
    sockaddr_in to_{};
    sockaddr_in sub_to_{};  // where subscribers connect (--sub-port), else to_
    std::vector<std::unique_ptr<Client>> clients_;
    LatencyHistogram latency_;
    std::uint64_t connack_ok_ = 0;
    std::uint64_t connack_refused_ = 0;
    std::uint64_t connect_errors_ = 0;
    std::uint64_t unexpected_closes_ = 0;
    std::uint64_t session_present_ = 0;
    std::size_t handshaking_ = 0;
    std::vector<Client*> retry_;
    double cpu_start_ = 0.0;
    bool debug_ = false;  // LOAD_DEBUG set: diagnostics on stderr
};

// Set by SIGINT/SIGTERM: every wait ends at once and the scenario reports what it has.
void request_stop();
[[nodiscard]] bool stop_requested();

std::unique_ptr<ScenarioBase> make_flow(const Options& opts);
std::unique_ptr<ScenarioBase> make_conns(const Options& opts);
std::unique_ptr<ScenarioBase> make_durable(const Options& opts);
std::unique_ptr<ScenarioBase> make_restart(const Options& opts);

}  // namespace mqttd::load
