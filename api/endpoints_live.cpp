// Clients, sessions, subscriptions, routes, retained messages, session queues and
// publish/subscribe (rest-api-v2.md "Clients" .. "Publish/Subscribe", plus the retained and
// mqueue additions).
//
// Paging: durable lists are paged by seeking a store iterator (skip for curr_page, one seek for
// a cursor); total_num is the store's exact count. Sessions and subscriptions also include the
// clean sessions of connected clients, which exist only live: the list is the stored ones in
// key order, then the clean ones in client-id order, and total_num = stored + clean. A cursor
// is the store's (hex of the last key) while the page ends in the stored part, and "o<n>"
// (offset n into the live part) after it.
#include <algorithm>
#include <limits>

#include "api/detail.h"
#include "api/node_info.h"
#include "api/url.h"
#include "common/clock.h"
#include "mqtt/decoder.h"

namespace mqttd::api::detail {
namespace {

constexpr size_t kAll = std::numeric_limits<size_t>::max();

Json client_json(const broker::ClientView& c) {
    Json o{{"client_id", c.client_id},
           {"username", c.username.empty() ? "undefined" : c.username},
           {"ipaddress", c.ip},
           {"port", c.port},
           {"clean_sess", c.clean_sess},
           {"proto_ver", c.proto_ver},
           {"keepalive", c.keepalive},
           {"connected_at", format_datetime(c.connected_at_ms)},
           // Additions: the listener the client came through.
           {"protocol", std::string("mqtt:") + c.transport},
           {"is_ssl",
            std::string_view(c.transport) == "ssl" || std::string_view(c.transport) == "wss"}};
    // Addition: the will still to be published (its payload's size, not the payload).
    if (c.has_will) {
        o["will"] = Json{{"topic", c.will_topic},
                         {"qos", c.will_qos},
                         {"retain", c.will_retain},
                         {"payload_size", c.will_payload_size}};
    } else {
        o["will"] = nullptr;
    }
    return o;
}

Json session_json(const broker::SessionView& v) {
    return Json{{"client_id", v.client_id},
                {"clean_sess", v.clean_sess},
                {"subscriptions", v.subscriptions},
                {"max_inflight", v.max_inflight},
                {"inflight_len", v.inflight_len},
                {"mqueue_len", v.mqueue_len},
                {"mqueue_dropped", v.mqueue_dropped},
                {"awaiting_rel_len", v.awaiting_rel_len},
                {"deliver_msg", v.deliver_msg},
                {"enqueue_msg", v.enqueue_msg},
                {"created_at", format_datetime(v.created_at_ms)},
                {"online", v.online}};
}

// A stored session no worker knows: its figures from the store alone.
broker::SessionView stored_view(const storage::SessionRecord& r, const storage::SessionCounts& c) {
    broker::SessionView v;
    v.client_id = r.client_id;
    v.clean_sess = false;
    v.subscriptions = c.subscriptions;
    v.max_inflight = r.max_inflight;
    v.inflight_len = c.awaiting_comp;
    v.mqueue_len = c.queued;
    v.mqueue_dropped = c.dropped_total;
    v.awaiting_rel_len = c.awaiting_rel;
    v.deliver_msg = r.deliver_msg;
    v.enqueue_msg = c.enqueued_total;
    v.created_at_ms = r.created_at_ms;
    return v;
}

Json subscription_json(const std::string& client_id, const std::string& topic, uint8_t qos) {
    return Json{{"client_id", client_id}, {"topic", topic}, {"qos", qos}};
}

Json objects(Json list) {
    return Json{{"objects", std::move(list)}};
}

storage::PageRequest store_request(const Paging& p) {
    storage::PageRequest req;
    req.limit = p.size;
    if (is_store_cursor(p.cursor)) {
        req.cursor = p.cursor;
    } else if (p.cursor.empty()) {
        req.skip = p.offset();
    }
    return req;
}

// A list paged only from the store: an offset cursor is not one of its cursors.
storage::PageRequest store_only_request(const Paging& p) {
    if (!p.cursor.empty() && !is_store_cursor(p.cursor)) {
        throw ApiError{kBadParam, "cursor is not one this list returned"};
    }
    return store_request(p);
}

// The stored part then the live part of a combined list (see the file comment).
template <typename S, typename L>
struct Combined {
    std::vector<S> stored;
    std::vector<L> live;
    std::string next_cursor;
};

template <typename S, typename L, typename StorePage, typename LivePage>
Combined<S, L> combined_page(const Paging& p,
                             uint64_t stored_total,
                             uint64_t live_total,
                             StorePage store_page,
                             LivePage live_page) {
    Combined<S, L> out;
    auto live_from = [&](uint64_t offset, uint32_t limit) {
        out.live = live_page(offset, limit);
        uint64_t next = offset + out.live.size();
        if (out.live.size() == limit && next < live_total) {
            out.next_cursor = offset_cursor(next);
        }
    };
    if (auto k = parse_offset_cursor(p.cursor)) {
        live_from(*k, p.size);
        return out;
    }
    if (p.cursor.empty() && p.offset() >= stored_total) {
        live_from(p.offset() - stored_total, p.size);
        return out;
    }
    auto page = store_page(store_request(p));
    out.stored = std::move(page.items);
    if (!page.next_cursor.empty()) {
        out.next_cursor = page.next_cursor;
        return out;
    }
    auto rest = static_cast<uint32_t>(p.size - out.stored.size());
    if (rest > 0) {
        live_from(0, rest);
    } else if (live_total > 0) {
        out.next_cursor = offset_cursor(0);
    }
    return out;
}

// ---- clients ----

Json list_clients(Handler& h, Call& c) {
    check_node(h, c.param(0));
    Paging p = paging(c);
    if (!p.cursor.empty() && !parse_offset_cursor(p.cursor)) {
        throw ApiError{kBadParam, "cursor is not one this list returned"};
    }
    auto& admin = h.ctx().admin;
    uint64_t offset = p.cursor.empty() ? p.offset() : *parse_offset_cursor(p.cursor);
    std::string prefix = c.query("clientid").value_or("");
    std::string username = c.query("username").value_or("");
    uint64_t total = 0;
    std::vector<broker::ClientView> page;
    if (prefix.empty() && username.empty()) {
        total = admin.client_count();
        page = admin.clients(offset, p.size);
    } else {
        // A search walks every connection (one task per worker): for operators, not scripts
        // that poll.
        std::vector<broker::ClientView> matched;
        for (auto& cl : admin.clients(0, kAll)) {
            if (cl.client_id.starts_with(prefix) && (username.empty() || cl.username == username)) {
                matched.push_back(std::move(cl));
            }
        }
        total = matched.size();
        for (uint64_t i = offset; i < matched.size() && page.size() < p.size; ++i) {
            page.push_back(std::move(matched[i]));
        }
    }
    Json list = Json::array();
    for (const auto& cl : page) {
        list.push_back(client_json(cl));
    }
    uint64_t next = offset + page.size();
    return envelope(p, total, std::move(list),
                    page.size() == p.size && next < total ? offset_cursor(next) : "");
}

// Addition in the lookups by client id: the node the client or session is on, which tells the
// members' answers apart in a cluster.
Json client_lookup(Handler& h, const std::string& id) {
    Json list = Json::array();
    if (auto cl = h.ctx().admin.client(id)) {
        list.push_back(client_json(*cl));
        list.back()["node"] = h.ctx().admin.node_name();
    }
    return objects(std::move(list));
}

Json kick_client(Handler& h, Call& c) {
    if (!h.ctx().admin.kick(c.param(0))) {
        throw ApiError{kClientOffline, "client " + c.param(0) + " is not connected"};
    }
    return Json::array();
}

Json clean_acl_cache(Handler& h, Call& c) {
    std::string topic = c.str("topic");
    if (!mqtt::valid_topic_filter(topic)) {
        throw ApiError{kBadParam, "topic is not a valid topic"};
    }
    // The worker that owns the connection clears the entry; false when it is not connected
    // there (gone, or never was).
    if (!h.ctx().admin.clean_acl_cache(c.param(0), topic)) {
        throw ApiError{kClientOffline, "client " + c.param(0) + " is not connected"};
    }
    return Json::array();
}

// ---- sessions ----

Json list_sessions(Handler& h, Call& c) {
    check_node(h, c.param(0));
    Paging p = paging(c);
    auto& ctx = h.ctx();
    uint64_t stored_total = ctx.store.count(storage::Counted::Sessions);
    uint64_t live_total = ctx.admin.clean_client_count();
    auto page = combined_page<storage::SessionRecord, broker::ClientView>(
            p, stored_total, live_total,
            [&](const storage::PageRequest& req) { return ctx.store.sessions(req); },
            [&](uint64_t offset, uint32_t limit) {
                return ctx.admin.clients(offset, limit, true);
            });

    std::vector<std::string> ids;
    for (const auto& r : page.stored) {
        ids.push_back(r.client_id);
    }
    for (const auto& cl : page.live) {
        ids.push_back(cl.client_id);
    }
    auto views = ctx.admin.sessions(ids);
    std::map<std::string, const broker::SessionView*> by_id;
    for (const auto& v : views) {
        by_id[v.client_id] = &v;
    }
    Json list = Json::array();
    for (const auto& r : page.stored) {
        auto it = by_id.find(r.client_id);
        list.push_back(session_json(
                it != by_id.end() ? *it->second
                                  : stored_view(r, ctx.store.session_counts(r.client_id))));
    }
    for (const auto& cl : page.live) {
        if (auto it = by_id.find(cl.client_id); it != by_id.end()) {
            list.push_back(session_json(*it->second));
        }
    }
    return envelope(p, stored_total + live_total, std::move(list), page.next_cursor);
}

Json session_lookup(Handler& h, const std::string& id) {
    auto& ctx = h.ctx();
    Json list = Json::array();
    if (auto v = ctx.admin.session(id)) {
        list.push_back(session_json(*v));
    } else if (auto r = ctx.store.get_session(id)) {
        list.push_back(session_json(stored_view(*r, ctx.store.session_counts(id))));
    }
    for (auto& o : list) {
        o["node"] = ctx.admin.node_name();
    }
    return objects(std::move(list));
}

Json delete_session(Handler& h, Call& c) {
    const std::string& id = c.param(0);
    switch (h.ctx().admin.delete_session(id)) {
        case broker::Admin::SessionDelete::Deleted:
            return Json::array();
        case broker::Admin::SessionDelete::NotFound:
            throw ApiError{kClientOffline, "no session " + id};
        case broker::Admin::SessionDelete::Online:
            throw ApiError{kBadParam, "client " + id + " is connected; kick it first"};
        case broker::Admin::SessionDelete::Timeout:
            break;
    }
    throw ApiError{kUnknownError, "the broker did not answer in time"};
}

Json session_mqueue(Handler& h, Call& c) {
    auto& ctx = h.ctx();
    const std::string& id = c.param(0);
    Paging p = paging(c);
    auto req = store_only_request(p);
    if (!ctx.store.get_session(id) && !ctx.admin.session(id)) {
        throw ApiError{kClientOffline, "no session " + id};
    }
    auto page = ctx.store.queue_page(id, req);
    Json list = Json::array();
    for (const auto& [e, m] : page.items) {
        Json o{{"seq", e.seq}, {"message_id", e.message_id}, {"qos", e.qos}, {"retain", e.retain}};
        if (m.id != 0) {
            o["topic"] = m.topic;
            o["payload_size"] = m.payload.size();
            o["enqueued_at"] = format_datetime(m.created_at_ms);
        } else {
            o["topic"] = nullptr;
            o["payload_size"] = 0;
            o["enqueued_at"] = nullptr;
        }
        list.push_back(std::move(o));
    }
    return envelope(p, ctx.store.session_counts(id).queued, std::move(list), page.next_cursor);
}

// ---- subscriptions ----

Json list_subscriptions(Handler& h, Call& c) {
    check_node(h, c.param(0));
    Paging p = paging(c);
    auto& ctx = h.ctx();
    uint64_t stored_total = ctx.store.count(storage::Counted::Subscriptions);
    // Clean sessions' subscriptions are live only: count them per session (one task per
    // worker), then fetch the subscriptions of the sessions the page covers.
    std::vector<std::string> clean_ids;
    for (const auto& cl : ctx.admin.clients(0, kAll, true)) {
        clean_ids.push_back(cl.client_id);
    }
    auto clean_views = ctx.admin.sessions(clean_ids);
    uint64_t live_total = 0;
    for (const auto& v : clean_views) {
        live_total += v.subscriptions;
    }
    auto live_page = [&](uint64_t offset, uint32_t limit) {
        std::vector<broker::SubscriptionView> out;
        uint64_t pos = 0;
        for (const auto& v : clean_views) {
            if (out.size() >= limit) {
                break;
            }
            if (pos + v.subscriptions <= offset) {
                pos += v.subscriptions;
                continue;
            }
            auto subs = ctx.admin.subscriptions_of(v.client_id);
            if (subs) {
                for (auto& s : *subs) {
                    if (pos++ >= offset && out.size() < limit) {
                        out.push_back(std::move(s));
                    }
                }
            }
        }
        return out;
    };
    auto page = combined_page<storage::SubscriptionRecord, broker::SubscriptionView>(
            p, stored_total, live_total,
            [&](const storage::PageRequest& req) { return ctx.store.subscriptions(req); },
            live_page);
    Json list = Json::array();
    for (const auto& s : page.stored) {
        list.push_back(subscription_json(s.client_id, s.topic_filter, s.qos));
    }
    for (const auto& s : page.live) {
        list.push_back(subscription_json(s.client_id, s.topic, s.qos));
    }
    return envelope(p, stored_total + live_total, std::move(list), page.next_cursor);
}

Json subscriptions_lookup(Handler& h, const std::string& id) {
    Json list = Json::array();
    if (auto subs = h.ctx().admin.subscriptions_of(id)) {
        for (const auto& s : *subs) {
            list.push_back(subscription_json(s.client_id, s.topic, s.qos));
        }
    }
    return objects(std::move(list));
}

// ---- routes ----

Json list_routes(Handler& h, Call& c) {
    Paging p = paging(c);
    auto& store = h.ctx().store;
    auto page = store.routes(store_only_request(p));
    Json list = Json::array();
    for (const auto& r : page.items) {
        list.push_back(Json{{"topic", r.topic_filter}, {"node", r.node}});
    }
    return envelope(p, store.count(storage::Counted::Routes), std::move(list), page.next_cursor);
}

Json route_lookup(Handler& h, Call& c) {
    Json list = Json::array();
    if (auto r = h.ctx().store.get_route(c.param(0))) {
        list.push_back(Json{{"topic", r->topic_filter}, {"node", r->node}});
    }
    return objects(std::move(list));
}

// ---- retained ----

Json retained_json(const storage::RetainedRecord& r) {
    bool text = mqtt::valid_utf8(r.payload) || r.payload.empty();
    Json o{{"topic", r.topic},
           {"payload", text ? r.payload : base64_encode(r.payload)},
           {"encoding", text ? "utf8" : "base64"},
           {"payload_size", r.payload.size()},
           {"qos", r.qos},
           {"stored_at", format_datetime(r.stored_at_ms)},
           {"stored_at_ms", r.stored_at_ms}};
    if (r.expiry_at_ms != 0) {
        o["expiry_at"] = format_datetime(r.expiry_at_ms);
    }
    return o;
}

Json list_retained(Handler& h, Call& c) {
    Paging p = paging(c);
    std::string filter = c.query("topic").value_or("#");
    if (!mqtt::valid_topic_filter(filter)) {
        throw ApiError{kBadParam, "topic is not a valid topic filter"};
    }
    auto& store = h.ctx().store;
    auto page = store.retained(filter, store_only_request(p));
    uint64_t total = 0;
    if (filter == "#") {
        total = store.count(storage::Counted::Retained);
    } else {
        store.match_retained(filter, [&](storage::RetainedRecord&&) {
                 ++total;
                 return true;
             }).ignore();
    }
    Json list = Json::array();
    for (const auto& r : page.items) {
        list.push_back(retained_json(r));
    }
    return envelope(p, total, std::move(list), page.next_cursor);
}

Json retained_lookup(Handler& h, Call& c) {
    Json list = Json::array();
    if (auto r = h.ctx().store.get_retained(c.param(0))) {
        list.push_back(retained_json(*r));
    }
    return objects(std::move(list));
}

Json retained_delete(Handler& h, Call& c) {
    // Through a worker, after what is being published now (broker::Admin::delete_retained).
    if (h.ctx().admin.delete_retained(c.param(0)) == broker::Admin::RetainedDelete::Timeout) {
        throw ApiError{kUnknownError, "the broker did not answer in time"};
    }
    return Json::array();
}

// ---- publish / subscribe ----

Json publish(Handler& h, Call& c) {
    std::string topic = c.str("topic");
    if (!mqtt::valid_topic_name(topic)) {
        throw ApiError{kBadParam, "topic is not a valid topic name (no wildcards)"};
    }
    std::string payload = c.opt_str("payload").value_or("");
    auto qos = static_cast<uint8_t>(c.opt_int("qos", 0, 2).value_or(0));
    bool retain = c.opt_bool("retain").value_or(false);
    std::string client_id = c.opt_str("client_id").value_or("http");
    if (!mqtt::valid_utf8(client_id)) {
        throw ApiError{kBadParam, "client_id is not valid UTF-8"};
    }
    if (payload.size() > h.ctx().admin.max_packet_size()) {
        throw ApiError{kBadParam, "payload is larger than mqtt.max_packet_size"};
    }
    if (!h.ctx().admin.publish(topic, payload, qos, retain, client_id)) {
        throw ApiError{kUnknownError, "the broker did not confirm the publish in time"};
    }
    return Json::array();
}

Json subscribe(Handler& h, Call& c) {
    std::string topic = c.str("topic");
    std::string client_id = c.str("client_id");
    auto qos = static_cast<uint8_t>(c.opt_int("qos", 0, 2).value_or(0));
    if (!mqtt::valid_topic_filter(topic)) {
        throw ApiError{kBadParam, "topic is not a valid topic filter"};
    }
    if (!h.ctx().admin.subscribe(client_id, topic, qos)) {
        throw ApiError{kClientOffline, "no session " + client_id};
    }
    return Json::array();
}

Json unsubscribe(Handler& h, Call& c) {
    std::string topic = c.str("topic");
    std::string client_id = c.str("client_id");
    if (!mqtt::valid_topic_filter(topic)) {
        throw ApiError{kBadParam, "topic is not a valid topic filter"};
    }
    if (!h.ctx().admin.unsubscribe(client_id, topic)) {
        throw ApiError{kClientOffline, "no session " + client_id};
    }
    return Json::array();
}

}  // namespace

void add_live_routes(std::vector<Route>& r) {
    add(r, "GET", "nodes/:node/clients", "List the connected clients of a node", list_clients,
        true);
    r.back().query = {{"clientid", "only client ids that start with this"},
                      {"username", "only clients with this username"}};
    add(r, "GET", "nodes/:node/clients/:client_id", "A connected client on a node",
        [](Handler& h, Call& c) {
            check_node(h, c.param(0));
            return client_lookup(h, c.param(1));
        });
    add(r, "GET", "clients/:client_id", "A connected client in the cluster",
        [](Handler& h, Call& c) { return client_lookup(h, c.param(0)); });
    add(r, "DELETE", "clients/:client_id", "Disconnect a client (its will is published)",
        kick_client);
    add(r, "PUT", "clients/:client_id/clean_acl_cache", "Clear a client's ACL cache for a topic",
        clean_acl_cache);

    add(r, "GET", "node/:node/sessions", "List the sessions of a node", list_sessions, true);
    add(r, "GET", "nodes/:node/sessions", "List the sessions of a node", list_sessions, true);
    add(r, "GET", "nodes/:node/sessions/:client_id", "A session on a node",
        [](Handler& h, Call& c) {
            check_node(h, c.param(0));
            return session_lookup(h, c.param(1));
        });
    add(r, "GET", "sessions/:client_id", "A session in the cluster",
        [](Handler& h, Call& c) { return session_lookup(h, c.param(0)); });
    add(r, "DELETE", "sessions/:client_id",
        "End an offline session (subscriptions, queue and stored record)", delete_session);
    add(r, "GET", "sessions/:client_id/mqueue", "The queued messages of a persistent session",
        session_mqueue, true);

    add(r, "GET", "nodes/:node/subscriptions", "List the subscriptions of a node",
        list_subscriptions, true);
    add(r, "GET", "nodes/:node/subscriptions/:client_id", "A client's subscriptions on a node",
        [](Handler& h, Call& c) {
            check_node(h, c.param(0));
            return subscriptions_lookup(h, c.param(1));
        });
    add(r, "GET", "subscriptions/:client_id", "A client's subscriptions in the cluster",
        [](Handler& h, Call& c) { return subscriptions_lookup(h, c.param(0)); });

    add(r, "GET", "routes", "List the routes", list_routes, true);
    add(r, "GET", "routes/*topic", "The route of a topic filter (may contain '/')", route_lookup);

    add(r, "GET", "retained", "List retained messages matching ?topic= (default #)", list_retained,
        true);
    add(r, "GET", "retained/*topic", "The retained message of a topic", retained_lookup);
    add(r, "DELETE", "retained/*topic", "Delete the retained message of a topic", retained_delete);

    add(r, "POST", "mqtt/publish", "Publish a message", publish);
    add(r, "POST", "mqtt/subscribe", "Subscribe a session to a topic filter", subscribe);
    add(r, "POST", "mqtt/unsubscribe", "Unsubscribe a session from a topic filter", unsubscribe);
}

}  // namespace mqttd::api::detail
