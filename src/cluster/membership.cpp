#include "cluster/membership.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <nlohmann/json.hpp>

#include "cluster/peer_api.h"

namespace mqttd::cluster {
namespace {

std::string record_of(const Membership::Options& o) {
    return nlohmann::json{{"name", o.node},
                          {"version", o.version},
                          {"sysdescr", "mqttd MQTT broker"},
                          {"otp_release", o.otp_release},
                          {"started_at_ms", o.started_at_ms},
                          {"api", o.api},
                          {"link", o.link}}
            .dump();
}

}  // namespace

Membership::Membership(Options options, Log log)
    : options_(std::move(options)),
      record_(record_of(options_)),
      log_(std::move(log)),
      etcd_(options_.endpoints),
      prefix_(options_.cluster + "/") {}

Membership::~Membership() {
    stop();
}

bool Membership::start(std::string* error) {
    auto lease = etcd_.grant(options_.lease_ttl_s);
    bool joined = false;
    if (lease) {
        lease_ = *lease;
        joined = join() && resync();
    } else if (error != nullptr) {
        *error = lease.error().message;
    }
    if (!joined && error != nullptr && error->empty()) {
        *error = "etcd did not take this node's keys";
    }
    set_reachable(joined, joined ? "" : (error != nullptr ? *error : "etcd unreachable"));
    thread_ = std::thread([this] { run(); });
    return joined;
}

void Membership::stop() {
    {
        std::lock_guard lock(wake_mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
    watch_.reset();
    if (lease_ != 0) {
        (void)etcd_.revoke(lease_);  // the alive key goes now, not at the lease's expiry
        lease_ = 0;
    }
}

bool Membership::join() {
    if (lease_ == 0) {
        auto lease = etcd_.grant(options_.lease_ttl_s);
        if (!lease) {
            set_reachable(false, lease.error().message);
            return false;
        }
        lease_ = *lease;
    }
    auto member = etcd_.put(prefix_ + "members/" + options_.node, record_);
    auto alive = member ? etcd_.put(prefix_ + "alive/" + options_.node, record_, lease_)
                        : EtcdResult<int64_t>(Err{member.error()});
    if (!alive) {
        set_reachable(false, alive.error().message);
        return false;
    }
    return true;
}

bool Membership::resync() {
    watch_.reset();
    int64_t revision = 0;
    auto kvs = etcd_.range(prefix_, prefix_end(prefix_), &revision);
    if (!kvs) {
        set_reachable(false, kvs.error().message);
        return false;
    }
    {
        std::lock_guard lock(mutex_);
        members_.clear();
        alive_.clear();
    }
    std::vector<WatchEvent> all;
    for (auto& kv : *kvs) {
        all.push_back(WatchEvent{WatchEvent::Type::Put, std::move(kv)});
    }
    apply(all);
    watch_broken_ = false;
    watch_ = etcd_.watch(
            prefix_, revision + 1, [this](std::vector<WatchEvent> events) { apply(events); },
            [this](const std::string& why) {
                watch_broken_ = true;
                set_reachable(false, "watch: " + why);
                wake_.notify_all();
            });
    return true;
}

void Membership::apply(const std::vector<WatchEvent>& events) {
    std::lock_guard lock(mutex_);
    for (const auto& e : events) {
        const std::string rest = e.kv.key.substr(std::min(prefix_.size(), e.kv.key.size()));
        std::map<std::string, std::string>* table = nullptr;
        std::string node;
        if (rest.starts_with("members/")) {
            table = &members_;
            node = rest.substr(8);
        } else if (rest.starts_with("alive/")) {
            table = &alive_;
            node = rest.substr(6);
        } else {
            continue;
        }
        if (e.type == WatchEvent::Type::Put) {
            (*table)[node] = e.kv.value;
        } else {
            table->erase(node);
        }
    }
}

void Membership::run() {
    const auto period =
            std::chrono::milliseconds(std::max<int64_t>(options_.lease_ttl_s, 1) * 1000 / 3);
    while (true) {
        {
            std::unique_lock lock(wake_mutex_);
            wake_.wait_for(lock, period, [this] { return stopping_; });
            if (stopping_) {
                return;
            }
        }
        bool ok = true;
        if (lease_ == 0) {
            ok = join();
        } else {
            auto ttl = etcd_.keep_alive(lease_);
            if (!ttl) {
                ok = false;
                set_reachable(false, ttl.error().message);
            } else if (*ttl <= 0) {
                // The lease expired while etcd was out of reach: this node was gone for the
                // others; it joins again with a new lease.
                log_(true,
                     "cluster: the lease of node " + options_.node + " expired; joining again");
                lease_ = 0;
                ok = join();
            }
        }
        if (ok && watch_broken_) {
            ok = resync();
        }
        if (ok) {
            set_reachable(true, "");
        }
    }
}

void Membership::set_reachable(bool ok, const std::string& why) {
    const bool was = reachable_.exchange(ok);
    if (was && !ok) {
        log_(true, "cluster: etcd unreachable (" + why +
                           "); serving local clients, retrying every " +
                           std::to_string(std::max<int64_t>(options_.lease_ttl_s / 3, 1)) + " s");
    } else if (!was && ok) {
        log_(false, "cluster: node " + options_.node + " joined cluster " + options_.cluster +
                            " through etcd");
    }
}

std::map<std::string, std::string> Membership::peer_links() const {
    std::lock_guard lock(mutex_);
    std::map<std::string, std::string> out;
    for (const auto& [name, record] : alive_) {
        if (name == options_.node) {
            continue;
        }
        auto j = nlohmann::json::parse(record, nullptr, false);
        if (j.is_object() && j.contains("link") && j["link"].is_string() &&
            !j["link"].get<std::string>().empty()) {
            out.emplace(name, j["link"].get<std::string>());
        }
    }
    return out;
}

std::vector<broker::ClusterView::Node> Membership::nodes() const {
    std::lock_guard lock(mutex_);
    std::vector<Node> out;
    for (const auto& [name, info] : members_) {
        auto alive = alive_.find(name);
        out.push_back(
                Node{name, alive != alive_.end(), alive != alive_.end() ? alive->second : info});
    }
    // A node whose member key was deleted by hand but is alive is still a member.
    for (const auto& [name, info] : alive_) {
        if (!members_.contains(name)) {
            out.push_back(Node{name, true, info});
        }
    }
    std::sort(out.begin(), out.end(), [](const Node& a, const Node& b) { return a.name < b.name; });
    return out;
}

std::optional<broker::ClusterView::PeerAnswer> Membership::ask(const std::string& node,
                                                               const PeerRequest& req,
                                                               std::string* why) const {
    std::string address;
    {
        std::lock_guard lock(mutex_);
        auto it = alive_.find(node);
        if (it == alive_.end()) {
            *why = "node " + node + " is not running";
            return std::nullopt;
        }
        auto record = nlohmann::json::parse(it->second, nullptr, false);
        if (record.is_object()) {
            address = record.value("api", "");
        }
    }
    if (address.empty()) {
        *why = "node " + node + " serves no REST API";
        return std::nullopt;
    }
    auto answer = call_peer_api(address, req, kApiTimeoutMs, why);
    if (!answer) {
        *why = "node " + node + " (" + address + "): " + *why;
    }
    return answer;
}

}  // namespace mqttd::cluster
