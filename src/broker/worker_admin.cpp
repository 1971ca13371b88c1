// Worker: what the REST API asks of a worker (broker/admin.h posts it here): kick, the views
// of its clients and sessions, subscriptions made and removed for a client, ACL cache clean.

#include <algorithm>

#include "broker/broker.h"
#include "broker/worker.h"
#include "common/clock.h"

namespace mqttd::broker {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

namespace {

ClientView client_view_of(const Connection& conn) {
    ClientView v{conn.client_id(),
                 conn.username(),
                 conn.identity.ip,
                 conn.identity.port,
                 !conn.session->persistent(),
                 static_cast<uint8_t>(conn.version),
                 conn.keepalive,
                 conn.connected_at_ms,
                 conn.id(),
                 conn.link().transport()};
    if (const mqtt::Will* w = conn.will()) {
        v.has_will = true;
        v.will_topic = w->topic;
        v.will_qos = w->qos;
        v.will_retain = w->retain;
        v.will_payload_size = w->payload.size();
    }
    return v;
}

}  // namespace

bool Worker::kick(std::string_view client_id) {
    auto s = find_session(client_id);
    if (!s || !s->connection) {
        return false;
    }
    close_connection(*s->connection);
    return true;
}

int Worker::delete_session(std::string_view client_id) {
    auto s = find_session(client_id);
    if (!s) {
        return 1;
    }
    if (s->connection || s->online) {
        return 2;
    }
    end_session(s);
    return 0;
}

std::optional<ClientView> Worker::client_view(std::string_view client_id) {
    auto s = find_session(client_id);
    if (!s || !s->connection) {
        return std::nullopt;
    }
    return client_view_of(*s->connection);
}

std::vector<ClientView> Worker::client_views(size_t n, bool clean_only) {
    // A connection counts once its session is attached, and no longer once detached (closed,
    // or taken over by a newer connection of the same client id).
    std::vector<const Connection*> conns;
    for (const auto& [id, conn] : connections_) {
        if (conn->session && (!clean_only || !conn->session->persistent())) {
            conns.push_back(conn.get());
        }
    }
    auto by_id = [](const Connection* a, const Connection* b) {
        return a->client_id() < b->client_id();
    };
    if (conns.size() > n) {
        std::partial_sort(conns.begin(), conns.begin() + static_cast<ptrdiff_t>(n), conns.end(),
                          by_id);
        conns.resize(n);
    } else {
        std::sort(conns.begin(), conns.end(), by_id);
    }
    std::vector<ClientView> out;
    out.reserve(conns.size());
    for (const auto* c : conns) {
        out.push_back(client_view_of(*c));
    }
    return out;
}

std::optional<SessionView> Worker::session_view(const std::string& client_id) {
    auto s = find_session(client_id);
    if (!s) {
        return std::nullopt;
    }
    SessionView v;
    v.client_id = s->client_id();
    v.clean_sess = !s->persistent();
    v.online = s->online;
    v.subscriptions = s->subscriptions.size();
    v.max_inflight = broker_.settings().max_inflight.load(std::memory_order_relaxed);
    SessionFigures f = s->figures();
    v.mqueue_len = f.queue_len;
    v.inflight_len = f.inflight;
    v.mqueue_dropped = f.mqueue_dropped;
    v.awaiting_rel_len = f.awaiting_rel;
    v.deliver_msg = f.deliver_msg;
    v.enqueue_msg = f.enqueue_msg;
    v.created_at_ms = s->created_at_ms;
    return v;
}

std::optional<std::vector<SubscriptionView>> Worker::subscriptions_view(
        const std::string& client_id) {
    auto s = find_session(client_id);
    if (!s) {
        return std::nullopt;
    }
    std::vector<SubscriptionView> out;
    for (const auto& [filter, opts] : s->subscriptions) {
        out.push_back(SubscriptionView{s->client_id(), filter, opts.qos});
    }
    return out;
}

bool Worker::admin_subscribe(const std::string& client_id, const std::string& filter, uint8_t qos) {
    auto s = find_session(client_id);
    if (!s) {
        return false;
    }
    mqtt::SubscribeOptions opts;
    opts.qos = qos;
    add_subscription(s, filter, opts, 0);
    send_retained(s, filter, opts, 0);
    return true;
}

bool Worker::admin_unsubscribe(const std::string& client_id, const std::string& filter) {
    auto s = find_session(client_id);
    if (!s) {
        return false;
    }
    remove_subscription(s, filter);
    return true;
}

bool Worker::clean_acl_cache(const std::string& client_id, const std::string& topic) {
    auto s = find_session(client_id);
    if (!s || !s->connection) {
        return false;
    }
    auth::AclCache* cache = s->connection->acl_cache_if_any();
    if (cache == nullptr) {
        return true;  // nothing cached yet
    }
    if (topic.empty()) {
        cache->clear_all();
    } else {
        cache->clear(topic);
    }
    return true;
}

bool Worker::delete_retained(const std::string& topic) {
    bool in_flight = false;
    bool has_message = false;
    for (const auto& [t, change] : broker_.retained_in_flight().matching(topic)) {
        if (t == topic) {
            in_flight = true;
            has_message = change.msg != nullptr;
        }
    }
    if (!(in_flight ? has_message : broker_.store().get_retained(topic).has_value())) {
        return false;
    }
    batch().delete_retained(topic);
    retained_changing(topic, nullptr, 0);
    if (ClusterRouter* c = broker_.cluster()) {
        c->retained_deleted(topic, unix_ms());
    }
    return true;
}

}  // namespace mqttd::broker
