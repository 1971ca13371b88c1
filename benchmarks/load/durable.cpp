// durable and restart: messages queued for offline persistent sessions.
//
// Both create --sessions persistent sessions (clean_session=0, fixed client ids, one topic and
// one stream each, subscribed at QoS >= 1), take them offline with DISCONNECT and wait for the
// broker to close them, then publish --messages messages round-robin over the topics from one
// clean publisher with at most --window unacknowledged (publish rate = messages / time to the
// last PUBACK).
//   durable: the sessions reconnect; drain rate = messages / (last delivery - reconnect start).
//   restart: the tool runs --broker-cmd itself, waits --settle seconds, kill -9s it, starts it
//            again and measures from that process start to the first CONNACK (session 0
//            retrying every 2 ms) and to the last queued message delivered to all sessions.
// Counting is exact per (session, sequence); the mqueue limits of the brokers (1000 per session
// in the compare configuration) make losses beyond that expected and reported.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenario.h"

namespace mqttd::load {

namespace {

class Queued : public ScenarioBase {
public:
    explicit Queued(const Options& opts) : ScenarioBase(opts), qos_(opts.qos < 1 ? 1 : opts.qos) {}

    void on_message(Client& c, const PublishView& m) override {
        if (c.index() >= trackers_.size() || !m.stamped) {
            return;
        }
        if (trackers_[c.index()].record(m.seq)) {
            ++received_;
            last_msg_ns_ = loop_.read_time_ns();
            latency_.record(last_msg_ns_ > m.ts_ns ? last_msg_ns_ - m.ts_ns : 0);
        }
    }

    void on_publish_done(Client& /*c*/) override { last_ack_ns_ = now_ns(); }

protected:
    // A broker that stops answering ends a phase after this long without progress.
    static constexpr std::uint64_t kQuietNs = 5'000'000'000;

    // Creates the sessions (client index k == session k) and the publisher.
    void make_clients() {
        for (std::uint32_t k = 0; k < opts_.sessions; ++k) {
            sessions_.push_back(&add_client(opts_.prefix + "-q-" + std::to_string(k)));
            trackers_.emplace_back(k, 1);
            filters_.push_back(topic("dq", k));
        }
        publisher_ = &add_client(opts_.prefix + "-qp");
    }

    // Persistent sessions subscribed, then offline. Returns an error text or "".
    std::string create_sessions() {
        if (connect_all(sessions_, false, opts_.connect_timeout) != sessions_.size()) {
            return "sessions did not connect";
        }
        if (!subscribe_all(sessions_, filters_, qos_, opts_.connect_timeout)) {
            return "subscriptions not acknowledged";
        }
        disconnect_all(sessions_, opts_.connect_timeout);
        return "";
    }

    // Publishes opts.messages QoS messages; returns seconds to the last ack, or -1.
    double publish_all() {
        std::vector<Client*> p{publisher_};
        if (connect_all(p, true, opts_.connect_timeout) != 1) {
            return -1.0;
        }
        std::vector<std::uint64_t> next_seq(sessions_.size(), 0);
        const std::uint64_t t0 = now_ns();
        std::uint64_t k = 0;
        last_ack_ns_ = t0;
        const bool ok = run_until(
                [&] {
                    return (sent_ == opts_.messages && publisher_->unacked() == 0) ||
                           now_ns() - last_ack_ns_ > kQuietNs;
                },
                opts_.drain_timeout,
                [&] {
                    const std::uint64_t now = now_ns();
                    while (sent_ < opts_.messages && publisher_->unacked() < opts_.window &&
                           publisher_->phase() == Client::Phase::Ready) {
                        const auto s = static_cast<std::uint32_t>(k % sessions_.size());
                        const std::uint64_t seq = (std::uint64_t{s} << kStreamShift) | next_seq[s];
                        if (!publisher_->publish(filters_[s], qos_, seq, now, opts_.size)) {
                            break;
                        }
                        ++next_seq[s];
                        ++sent_;
                        ++k;
                    }
                });
        const double secs = static_cast<double>(now_ns() - t0) / 1e9;
        disconnect_all(p, 2.0);
        return ok && sent_ == opts_.messages && publisher_->unacked() == 0 ? secs : -1.0;
    }

    // Reconnects every session and waits for all queued messages; returns seconds from
    // `since` to the last new delivery.
    double drain(std::uint64_t since) {
        std::vector<Client*> offline;
        for (Client* c : sessions_) {
            if (c->phase() != Client::Phase::Ready) {
                offline.push_back(c);
            }
        }
        connect_all(offline, false, opts_.connect_timeout);
        const std::uint64_t start = now_ns();
        run_until(
                [&] {
                    return received_ >= sent_ ||
                           now_ns() - std::max(last_msg_ns_, start) > kQuietNs;
                },
                opts_.drain_timeout);
        return last_msg_ns_ > since ? static_cast<double>(last_msg_ns_ - since) / 1e9 : 0.0;
    }

    [[nodiscard]] Tally tally() const {
        Tally t;
        t.sent = sent_;
        t.expected = sent_;
        for (const SeqTracker& tr : trackers_) {
            t.received += tr.unique();
            t.duplicates += tr.duplicates();
            t.unexpected += tr.unexpected();
        }
        return t;
    }

    JsonLine params() const {
        JsonLine p;
        p.add("qos", qos_)
                .add("size", static_cast<std::uint64_t>(opts_.size))
                .add("sessions", opts_.sessions)
                .add("messages", opts_.messages)
                .add("window", opts_.window);
        return p;
    }

    int qos_;
    std::vector<Client*> sessions_;
    std::vector<SeqTracker> trackers_;
    std::vector<std::string> filters_;
    Client* publisher_ = nullptr;
    std::uint64_t sent_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t last_msg_ns_ = 0;
    std::uint64_t last_ack_ns_ = 0;
};

class Durable final : public Queued {
public:
    explicit Durable(const Options& opts) : Queued(opts) {}

    std::string run() override {
        make_clients();
        JsonLine j;
        j.add("scenario", "durable");
        j.raw("params", params().str());
        std::string err = create_sessions();
        const double pub_s = err.empty() ? publish_all() : -1.0;
        if (err.empty() && pub_s < 0) {
            err = "publishing did not complete";
        }
        double drain_s = 0.0;
        if (err.empty()) {
            drain_s = drain(now_ns());
        }
        const Tally t = tally();
        const double drain_rate = drain_s > 0 ? static_cast<double>(t.received) / drain_s : 0.0;
        add_result(j, t, drain_rate);
        j.add("publish_per_s", pub_s > 0 ? static_cast<double>(sent_) / pub_s : 0.0)
                .add("drain_per_s", drain_rate)
                .add("drain_s", drain_s)
                .add("sessions_present", session_present_)
                .add("connect_errors", connect_errors_);
        if (!err.empty()) {
            j.add("error", err);
        }
        disconnect_all(sessions_, 2.0);
        return j.str();
    }
};

class Restart final : public Queued {
public:
    explicit Restart(const Options& opts) : Queued(opts) {}
    ~Restart() override { stop_broker(); }
    Restart(const Restart&) = delete;
    Restart& operator=(const Restart&) = delete;

    std::string run() override {
        make_clients();
        JsonLine j;
        j.add("scenario", "restart");
        JsonLine p = params();
        p.add("settle", opts_.settle).add("broker_cmd", opts_.broker_cmd);
        j.raw("params", p.str());
        std::string err;
        if (opts_.broker_cmd.empty()) {
            err = "--broker-cmd is required";
        } else if (!start_broker() || !wait_ready()) {
            err = "broker did not start";
        }
        if (err.empty()) {
            err = create_sessions();
        }
        double pub_s = -1.0;
        if (err.empty()) {
            pub_s = publish_all();
            if (pub_s < 0) {
                err = "publishing did not complete";
            }
        }
        double first_connack_s = 0.0;
        double drain_s = 0.0;
        std::uint64_t data_bytes = 0;
        if (err.empty()) {
            run_until([] { return false; }, opts_.settle, {}, 50);
            data_bytes = dir_bytes(opts_.data_dir);
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
            const std::uint64_t t0 = now_ns();
            if (!start_broker()) {
                err = "broker did not restart";
            } else {
                first_connack_s = first_connack(t0);
                connect_errors_ = 0;  // refused attempts while the broker starts are expected
                if (first_connack_s < 0) {
                    err = "no CONNACK after restart";
                } else {
                    drain_s = drain(t0);
                }
            }
        }
        const Tally t = tally();
        add_result(j, t, drain_s > 0 ? static_cast<double>(t.received) / drain_s : 0.0);
        j.add("publish_per_s", pub_s > 0 ? static_cast<double>(sent_) / pub_s : 0.0)
                .add("first_connack_s", first_connack_s)
                .add("last_delivery_s", drain_s)
                .add("data_dir_bytes", data_bytes)
                .add("sessions_present", session_present_)
                .add("connect_errors", connect_errors_);
        if (!err.empty()) {
            j.add("error", err);
        }
        disconnect_all(sessions_, 2.0);
        stop_broker();
        return j.str();
    }

private:
    bool start_broker() {
        std::string log = "/dev/null";
        if (!opts_.data_dir.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(opts_.data_dir, ec);
            log = opts_.data_dir + "/broker.log";
        }
        const pid_t pid = ::fork();
        if (pid < 0) {
            return false;
        }
        if (pid == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, STDOUT_FILENO);
                ::dup2(fd, STDERR_FILENO);
            }
            const std::string cmd = "exec " + opts_.broker_cmd;
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        pid_ = pid;
        std::fprintf(stderr, "BROKER_PID %d\n", static_cast<int>(pid));
        std::fflush(stderr);
        return true;
    }

    // Waits until the broker accepts an MQTT connection (a throw-away clean client).
    bool wait_ready() {
        Client& probe = add_client(opts_.prefix + "-probe");
        const std::uint64_t t0 = now_ns();
        while (static_cast<double>(now_ns() - t0) / 1e9 < opts_.connect_timeout) {
            probe.start(to_, 0, true, opts_.keepalive);
            run_until(
                    [&] {
                        return probe.phase() == Client::Phase::Ready ||
                               probe.phase() == Client::Phase::Closed;
                    },
                    5.0);
            if (probe.phase() == Client::Phase::Ready) {
                probe.disconnect();
                run_until([&] { return probe.phase() == Client::Phase::Closed; }, 2.0);
                return true;
            }
            probe.abort();
            run_until([] { return false; }, 0.02, {}, 5);
        }
        return false;
    }

    // Session 0 retries every 2 ms from t0; returns seconds to its CONNACK or -1.
    double first_connack(std::uint64_t t0) {
        Client& c = *sessions_[0];
        while (static_cast<double>(now_ns() - t0) / 1e9 < opts_.connect_timeout) {
            c.start(to_, 0, false, opts_.keepalive);
            run_until(
                    [&] {
                        return c.phase() == Client::Phase::Ready ||
                               c.phase() == Client::Phase::Closed;
                    },
                    opts_.connect_timeout);
            if (c.phase() == Client::Phase::Ready) {
                return static_cast<double>(now_ns() - t0) / 1e9;
            }
            c.abort();
            run_until([] { return false; }, 0.002, {}, 1);
        }
        return -1.0;
    }

    void stop_broker() {
        if (pid_ <= 0) {
            return;
        }
        ::kill(pid_, SIGTERM);
        const std::uint64_t t0 = now_ns();
        while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
            if (now_ns() - t0 > 20'000'000'000ULL) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, nullptr, 0);
                break;
            }
            ::usleep(20'000);
        }
        pid_ = -1;
    }

    static std::uint64_t dir_bytes(const std::string& dir) {
        std::uint64_t total = 0;
        if (dir.empty()) {
            return 0;
        }
        std::error_code ec;
        for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            std::error_code fec;
            if (it->is_regular_file(fec)) {
                total += it->file_size(fec);
            }
        }
        return total;
    }

    pid_t pid_ = -1;
};

}  // namespace

std::unique_ptr<ScenarioBase> make_durable(const Options& opts) {
    return std::make_unique<Durable>(opts);
}

std::unique_ptr<ScenarioBase> make_restart(const Options& opts) {
    return std::make_unique<Restart>(opts);
}

}  // namespace mqttd::load
