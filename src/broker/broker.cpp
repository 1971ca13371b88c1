#include "broker/broker.h"

#include <functional>
#include <set>

#include "common/clock.h"

namespace mqttd::broker {

Broker::Broker(storage::Store& store, Settings& settings, uint32_t workers)
    : store_(store), settings_(settings), started_at_ms_(unix_ms()) {
    if (workers == 0) {
        workers = 1;
    }
    for (uint32_t i = 0; i < workers; ++i) {
        workers_.push_back(std::make_unique<Worker>(*this, i));
    }
}

Broker::~Broker() = default;

uint32_t Broker::home_worker(std::string_view client_id) const {
    return static_cast<uint32_t>(std::hash<std::string_view>{}(client_id) % workers_.size());
}

std::string Broker::assign_client_id(uint32_t w) {
    // An id that hashes to worker `w`, so the connection needs no move.
    while (true) {
        std::string id = "mqttd-" + std::to_string(started_at_ms_) + "-" +
                         std::to_string(assigned_ids_.fetch_add(1) + 1);
        if (home_worker(id) == w) {
            return id;
        }
    }
}

storage::Status Broker::recover() {
    int64_t now = unix_ms();
    std::unordered_map<std::string, SessionPtr> sessions;
    auto st = store_.for_each_session([&](storage::SessionRecord&& r) {
        auto s = std::make_shared<Session>(r.client_id, home_worker(r.client_id), true);
        s->version = static_cast<mqtt::Version>(r.protocol_level);
        s->created_at_ms = r.created_at_ms;
        // A session that was connected when the broker stopped went offline at the restart.
        s->disconnected_at_ms = r.disconnected_at_ms != 0 ? r.disconnected_at_ms : now;
        s->expiry_interval_s = r.expiry_interval_s;
        s->username = r.username;
        if (r.will) {
            // Due while the broker was down: published at the first tick.
            workers_[s->worker()]->adopt_delayed_will(s, std::move(*r.will));
        }
        auto counts = store_.session_counts(r.client_id);
        std::vector<storage::InflightRecord> inflight;
        if (counts.awaiting_rel + counts.awaiting_comp > 0) {
            inflight = store_.inflight_of(r.client_id);
        }
        s->restore(r, counts, inflight, settings_.max_inflight.load(std::memory_order_relaxed));
        sessions.emplace(r.client_id, s);
    });
    if (!st.is_ok()) {
        return st;
    }
    st = store_.for_each_subscription([&](storage::SubscriptionRecord&& r) {
        auto it = sessions.find(r.client_id);
        if (it == sessions.end()) {
            return;
        }
        mqtt::SubscribeOptions opts{r.qos, r.no_local, r.retain_as_published, r.retain_handling};
        index_.subscribe(it->second, r.topic_filter, opts, r.subscription_id);
        it->second->subscriptions[r.topic_filter] = opts;
    });
    if (!st.is_ok()) {
        return st;
    }
    // Routes are derived state: rebuild them from the subscriptions just loaded.
    std::set<std::string> filters;
    for (auto& [id, s] : sessions) {
        for (auto& [filter, opts] : s->subscriptions) {
            filters.insert(filter);
        }
    }
    storage::WriteBatch batch;
    storage::PageRequest req;
    req.limit = 1000;
    while (true) {
        auto page = store_.routes(req);
        for (auto& r : page.items) {
            if (filters.count(r.topic_filter) == 0) {
                batch.delete_route(r.topic_filter);
            }
        }
        if (page.next_cursor.empty()) {
            break;
        }
        req.cursor = page.next_cursor;
    }
    for (const auto& f : filters) {
        batch.put_route(storage::RouteRecord{f, settings_.node_name});
    }
    if (!batch.empty()) {
        st = store_.write(std::move(batch));
        if (!st.is_ok()) {
            return st;
        }
    }
    for (auto& [id, s] : sessions) {
        workers_[s->worker()]->adopt_session(s);
    }
    return storage::Status::ok();
}

MetricsSnapshot Broker::metrics_snapshot() const {
    MetricsSnapshot sum{};
    for (const auto& w : workers_) {
        auto& m = w->metrics();
        for (size_t i = 0; i < kMetricCount; ++i) {
            sum[i] += m.get(static_cast<Metric>(i));
        }
    }
    return sum;
}

std::map<std::string, uint64_t> Broker::stats() {
    uint64_t clients = 0;
    uint64_t sessions = 0;
    for (const auto& w : workers_) {
        clients += w->connection_count();
        sessions += w->session_count();
    }
    uint64_t subs = index_.subscription_count();
    uint64_t topics = index_.filter_count();
    uint64_t retained = store_.count(storage::Counted::Retained);
    uint64_t subs_max = index_.subscription_max();
    uint64_t topics_max = index_.filter_max();
    // name -> {count, max}; a max read a moment before its count may be lower than it.
    std::map<std::string, std::pair<uint64_t, uint64_t>> counts = {
            {"clients", {clients, clients_.max()}},
            {"sessions", {sessions, sessions_.max()}},
            {"subscriptions", {subs, subs_max}},
            {"subscribers", {subs, subs_max}},
            {"topics", {topics, topics_max}},
            {"routes", {topics, topics_max}},
            {"retained", {retained, store_.count_max(storage::Counted::Retained)}},
    };
    std::map<std::string, uint64_t> out;
    for (const auto& [name, value] : counts) {
        out[name + "/count"] = value.first;
        out[name + "/max"] = std::max(value.first, value.second);
    }
    return out;
}

}  // namespace mqttd::broker
