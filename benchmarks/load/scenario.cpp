#include "scenario.h"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <arpa/inet.h>

namespace mqttd::load {

namespace {
volatile std::sig_atomic_t g_stop = 0;
}  // namespace

void request_stop() {
    g_stop = 1;
}
bool stop_requested() {
    return g_stop != 0;
}

void JsonLine::key(const char* k) {
    if (!body_.empty()) {
        body_ += ',';
    }
    body_ += '"';
    body_ += k;
    body_ += "\":";
}

JsonLine& JsonLine::add(const char* k, double v) {
    key(k);
    char buf[64];
    if (!std::isfinite(v)) {
        v = 0.0;
    }
    std::snprintf(buf, sizeof buf, "%.6g", v);
    body_ += buf;
    return *this;
}

JsonLine& JsonLine::add(const char* k, std::uint64_t v) {
    key(k);
    body_ += std::to_string(v);
    return *this;
}

JsonLine& JsonLine::add(const char* k, std::int64_t v) {
    key(k);
    body_ += std::to_string(v);
    return *this;
}

JsonLine& JsonLine::add(const char* k, const std::string& v) {
    key(k);
    body_ += '"';
    for (const char ch : v) {
        if (ch == '"' || ch == '\\') {
            body_ += '\\';
            body_ += ch;
        } else if (static_cast<unsigned char>(ch) < 0x20) {
            body_ += ' ';
        } else {
            body_ += ch;
        }
    }
    body_ += '"';
    return *this;
}

JsonLine& JsonLine::add(const char* k, bool v) {
    key(k);
    body_ += v ? "true" : "false";
    return *this;
}

JsonLine& JsonLine::raw(const char* k, const std::string& json) {
    key(k);
    body_ += json;
    return *this;
}

ScenarioBase::ScenarioBase(const Options& opts)
    : opts_(opts), cpu_start_(process_cpu_s()), debug_(std::getenv("LOAD_DEBUG") != nullptr) {
    to_.sin_family = AF_INET;
    to_.sin_port = htons(opts_.port);
    to_.sin_addr.s_addr = parse_ipv4(opts_.host.c_str());
    sub_to_ = to_;
    if (opts_.sub_port != 0) {
        sub_to_.sin_port = htons(opts_.sub_port);
    }
    loop_.set_max_packet(opts_.size + 1024);
    loop_.set_transport(opts_.transport);
}

Client& ScenarioBase::add_client(const std::string& id) {
    clients_.push_back(std::make_unique<Client>(loop_, *this, id,
                                                static_cast<std::uint32_t>(clients_.size())));
    return *clients_.back();
}

void ScenarioBase::on_connack(Client& /*c*/, int return_code, bool session_present) {
    if (handshaking_ > 0) {
        --handshaking_;
    }
    if (return_code == 0) {
        ++connack_ok_;
        if (session_present) {
            ++session_present_;
        }
    } else {
        ++connack_refused_;
    }
}

void ScenarioBase::on_closed(Client& c, int err) {
    if (c.closed_in_handshake()) {
        if (handshaking_ > 0) {
            --handshaking_;
        }
        if (err == EADDRNOTAVAIL) {
            retry_.push_back(&c);  // out of local ports: connect_all moves on to 127.0.0.x+1
        } else {
            ++connect_errors_;
            if (debug_) {
                std::fprintf(stderr, "connect failed: %s (%s)\n", c.id().c_str(),
                             std::strerror(err));
            }
        }
    } else if (!c.close_requested()) {
        ++unexpected_closes_;
        if (debug_) {
            std::fprintf(stderr, "closed by peer: %s (%s)\n", c.id().c_str(), std::strerror(err));
        }
    }
}

std::size_t ScenarioBase::connect_all(const std::vector<Client*>& clients,
                                      bool clean,
                                      double timeout_s,
                                      const sockaddr_in* to) {
    const sockaddr_in& dest = to != nullptr ? *to : to_;
    const std::uint32_t base = ntohl(parse_ipv4("127.0.0.1"));
    const bool spread = clients.size() > opts_.per_addr;
    std::size_t next = 0;
    std::size_t retries = 0;
    std::uint32_t addr_shift = 0;
    handshaking_ = 0;
    retry_.clear();
    auto source_for = [&](std::size_t i) -> in_addr_t {
        if (!spread && addr_shift == 0) {
            return 0;
        }
        return htonl(base + static_cast<std::uint32_t>(i / opts_.per_addr) + addr_shift);
    };
    auto launch = [&] {
        if (!retry_.empty()) {
            ++addr_shift;
            std::vector<Client*> again;
            again.swap(retry_);
            for (Client* c : again) {
                if (retries++ >= clients.size()) {
                    ++connect_errors_;
                    continue;
                }
                ++handshaking_;
                c->start(dest, source_for(c->index()), clean, opts_.keepalive);
            }
        }
        while (next < clients.size() && handshaking_ < opts_.concurrency) {
            ++handshaking_;
            clients[next]->start(dest, source_for(next), clean, opts_.keepalive);
            ++next;
        }
    };
    run_until([&] { return next == clients.size() && handshaking_ == 0 && retry_.empty(); },
              timeout_s, launch, 1);
    std::size_t ready = 0;
    for (Client* c : clients) {
        ready += c->phase() == Client::Phase::Ready ? 1 : 0;
    }
    return ready;
}

bool ScenarioBase::subscribe_all(const std::vector<Client*>& clients,
                                 const std::vector<std::string>& filters,
                                 int qos,
                                 double timeout_s) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
        clients[i]->subscribe(filters[i], qos);
    }
    return run_until(
            [&] {
                for (Client* c : clients) {
                    if (c->pending_subacks() > 0 && c->phase() == Client::Phase::Ready) {
                        return false;
                    }
                }
                return true;
            },
            timeout_s);
}

void ScenarioBase::disconnect_all(const std::vector<Client*>& clients, double timeout_s) {
    for (Client* c : clients) {
        c->disconnect();
    }
    run_until([&] { return loop_.open_connections() == 0; }, timeout_s);
    for (Client* c : clients) {
        c->abort();
    }
}

bool ScenarioBase::run_until(const std::function<bool()>& done,
                             double timeout_s,
                             const std::function<void()>& tick,
                             int wait_ms) {
    const std::uint64_t start = now_ns();
    const auto limit = static_cast<std::uint64_t>(timeout_s * 1e9);
    std::uint64_t last_ping = start;
    const std::uint64_t ping_every = std::uint64_t{opts_.keepalive} * 1'000'000'000 / 2;
    while (!done()) {
        const std::uint64_t now = now_ns();
        if (now - start >= limit || stop_requested()) {
            return false;
        }
        if (opts_.keepalive > 0 && now - last_ping > 1'000'000'000) {
            loop_.ping_idle(ping_every);
            last_ping = now;
        }
        if (tick) {
            tick();
        }
        loop_.run_once(wait_ms);
    }
    return true;
}

void ScenarioBase::add_result(JsonLine& j, const Tally& t, double msgs_per_s) const {
    const std::uint64_t lost = t.expected > t.received ? t.expected - t.received : 0;
    j.add("sent", t.sent)
            .add("received", t.received)
            .add("expected", t.expected)
            .add("lost", lost)
            .add("duplicates", t.duplicates)
            .add("unexpected", t.unexpected)
            .add("msgs_per_s", msgs_per_s)
            .raw("latency_us", latency_.json())
            .add("gen_cpu_s", process_cpu_s() - cpu_start_);
    if (stop_requested()) {
        j.add("interrupted", true);
    }
}

std::string ScenarioBase::topic(const char* kind, std::uint32_t i) const {
    return opts_.prefix + "/" + kind + "/" + std::to_string(i);
}

}  // namespace mqttd::load
