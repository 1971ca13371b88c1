#include "cluster/routes.h"

#include <chrono>
#include <optional>
#include <utility>

#include "cluster/membership.h"

namespace mqttd::cluster {

Routes::Routes(Options options,
               const Membership& membership,
               RouteTable& table,
               std::function<uint32_t(const std::string&)> node_id,
               Log log)
    : options_(std::move(options)),
      membership_(membership),
      table_(table),
      node_id_(std::move(node_id)),
      log_(std::move(log)),
      etcd_(options_.endpoints),
      prefix_(options_.cluster + "/routes/") {}

Routes::~Routes() {
    stop();
}

void Routes::start() {
    thread_ = std::thread([this] { run(); });
}

void Routes::stop() {
    {
        std::lock_guard lock(mutex_);
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
}

void Routes::add(std::string_view filter) {
    std::string key = RouteTable::route_key(filter);
    std::lock_guard lock(mutex_);
    if (counts_[key].filters++ == 0) {
        if (key.starts_with("$share/")) {
            table_.add(key, node_id_(options_.node));  // a candidate for its group at once
        }
        dirty_.insert(std::move(key));
        wake_.notify_one();
    }
}

void Routes::remove(std::string_view filter) {
    std::string key = RouteTable::route_key(filter);
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    if (it == counts_.end()) {
        return;
    }
    if (--it->second.filters == 0) {
        counts_.erase(it);
        if (key.starts_with("$share/")) {
            table_.remove(key, node_id_(options_.node));
        }
        dirty_.insert(std::move(key));
        wake_.notify_one();
    }
}

void Routes::durable(std::string_view filter, bool added) {
    std::string key = RouteTable::route_key(filter);
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    if (it == counts_.end()) {
        return;
    }
    uint32_t& n = it->second.durable;
    if (!added && n == 0) {
        return;
    }
    n = added ? n + 1 : n - 1;
    if (n == (added ? 1u : 0u)) {  // the flag changes
        dirty_.insert(std::move(key));
        wake_.notify_one();
    }
}

std::string Routes::etcd_key(const std::string& cluster,
                             std::string_view key,
                             const std::string& node) {
    std::string out = cluster + "/routes/";
    out.append(key).append("/").append(node);
    return out;
}

std::string Routes::key_of(const std::string& filter) const {
    return etcd_key(options_.cluster, filter, options_.node);
}

bool Routes::write_changes() {
    const int64_t lease = membership_.lease();
    if (lease == 0) {
        return false;  // not joined yet: written once there is a lease
    }
    std::set<std::string> dirty;
    // route key → its durable flag while a local subscription has it, nullopt when none has
    std::map<std::string, std::optional<bool>> wanted;
    {
        std::lock_guard lock(mutex_);
        if (lease != written_lease_) {
            // A new lease (the first, or after the old one expired): every route again.
            written_.clear();
            for (const auto& [filter, n] : counts_) {
                dirty_.insert(filter);
            }
        }
        dirty.swap(dirty_);
        for (const auto& f : dirty) {
            auto it = counts_.find(f);
            wanted[f] = it == counts_.end() ? std::nullopt
                                            : std::optional<bool>(it->second.durable > 0);
        }
    }
    written_lease_ = lease;
    bool ok = true;
    for (const auto& [filter, want] : wanted) {
        bool done = true;
        auto w = written_.find(filter);
        if (want && (w == written_.end() || w->second != *want)) {
            auto r = etcd_.put(key_of(filter), *want ? "" : "c", lease);
            done = static_cast<bool>(r);
            if (done) {
                written_[filter] = *want;
            }
        } else if (!want) {
            // Also when this thread did not write it: a session that moved here had its keys
            // put by the takeover's transaction (Takeovers::take_key).
            auto r = etcd_.erase(key_of(filter));
            done = static_cast<bool>(r);
            if (done && w != written_.end()) {
                written_.erase(w);
            }
        }
        if (!done) {
            ok = false;
            std::lock_guard lock(mutex_);
            dirty_.insert(filter);
        }
    }
    return ok;
}

bool Routes::resync() {
    watch_.reset();
    int64_t revision = 0;
    auto kvs = etcd_.range(prefix_, prefix_end(prefix_), &revision);
    if (!kvs) {
        return false;
    }
    table_.clear();
    {
        std::lock_guard lock(mutex_);
        for (const auto& [key, n] : counts_) {
            if (key.starts_with("$share/")) {
                table_.add(key, node_id_(options_.node));
            }
        }
    }
    std::vector<WatchEvent> all;
    for (auto& kv : *kvs) {
        all.push_back(WatchEvent{WatchEvent::Type::Put, std::move(kv)});
    }
    apply(all, true);
    table_.set_revision(revision);
    watch_broken_ = false;
    watch_ = etcd_.watch(
            prefix_, revision + 1, [this](std::vector<WatchEvent> events) { apply(events); },
            [this](const std::string&) {
                watch_broken_ = true;
                wake_.notify_all();
            });
    return true;
}

void Routes::apply(const std::vector<WatchEvent>& events, bool listing) {
    for (size_t i = 0; i < events.size(); ++i) {
        const WatchEvent& e = events[i];
        // The table's revision moves once every event of a revision is in (a transaction's
        // keys share one); a listing's revision is set by resync() after all of it.
        if (!listing && i > 0 && e.kv.mod_revision != events[i - 1].kv.mod_revision) {
            table_.set_revision(events[i - 1].kv.mod_revision);
        }
        if (!e.kv.key.starts_with(prefix_)) {
            continue;
        }
        std::string_view rest = std::string_view(e.kv.key).substr(prefix_.size());
        const size_t slash = rest.rfind('/');
        if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
            continue;
        }
        const std::string node(rest.substr(slash + 1));
        if (node == options_.node) {
            continue;
        }
        const std::string_view filter = rest.substr(0, slash);
        if (e.type == WatchEvent::Type::Put) {
            table_.add(filter, node_id_(node), e.kv.value != "c");
        } else {
            table_.remove(filter, node_id_(node));
        }
    }
    if (!listing && !events.empty()) {
        table_.set_revision(events.back().kv.mod_revision);
    }
}

void Routes::run() {
    bool ok = true;
    while (true) {
        {
            std::unique_lock lock(mutex_);
            // Promptly when something changed; every half second while etcd fails, so routes
            // and the watch come back soon after it does.
            wake_.wait_for(lock, std::chrono::milliseconds(ok ? 1000 : 500), [this, ok] {
                const int64_t lease = membership_.lease();
                return stopping_ || !dirty_.empty() || (ok && watch_broken_) ||
                       (lease != 0 && lease != written_lease_);
            });
            if (stopping_) {
                return;
            }
        }
        ok = true;
        if (watch_broken_) {
            ok = resync();
        }
        ok = write_changes() && ok;
    }
}

}  // namespace mqttd::cluster
