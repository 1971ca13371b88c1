// Worker: a client's CONNECT (authentication, takeover, session resume or creation, CONNACK),
// the session's attach and detach, wills (delayed ones kept with their session), the end of a
// session, and the close of a connection.

#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "broker/worker.h"
#include "common/clock.h"
#include "mqtt/decoder.h"
#include "mqtt/encoder.h"

namespace mqttd::broker {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

namespace {

// The will of a connection as it is kept until published: PUBLISH properties without the Will
// Delay Interval (a will property, not a PUBLISH one).
storage::WillRecord will_record(const mqtt::Will& w, int64_t due_at_ms) {
    storage::WillRecord r;
    r.topic = w.topic;
    r.payload = w.payload;
    r.qos = w.qos;
    r.retain = w.retain;
    r.due_at_ms = due_at_ms;
    if (!w.properties.empty()) {
        mqtt::Properties p = w.properties;
        p.will_delay_interval.reset();
        r.message_expiry_s = p.message_expiry_interval.value_or(0);
        mqtt::encode_properties_body(r.properties, p);
    }
    return r;
}

}  // namespace

void Worker::sessions_changed() {
    size_t n = sessions_.size();
    size_t before = sessions_count_.exchange(n, std::memory_order_relaxed);
    broker_.sessions_high_water().add(static_cast<int64_t>(n) - static_cast<int64_t>(before));
}

void Worker::connections_changed() {
    size_t n = connections_.size();
    size_t before = connections_count_.exchange(n, std::memory_order_relaxed);
    broker_.clients_high_water().add(static_cast<int64_t>(n) - static_cast<int64_t>(before));
}

SessionPtr Worker::find_session(std::string_view client_id) {
    auto it = sessions_.find(client_id);
    return it == sessions_.end() ? nullptr : *it;
}

// ---------------------------------------------------------------------------------------------
// CONNECT
std::optional<auth::Decision> Worker::decide(
        const std::function<void(auth::DecisionCallback)>& start,
        std::function<void(auth::Decision)> later) {
    struct Slot {
        std::mutex mutex;
        bool returned = false;
        bool decided = false;
        auth::Decision decision;
    };
    auto slot = std::make_shared<Slot>();
    start([this, slot, later = std::move(later)](auth::Decision d) mutable {
        {
            std::lock_guard lock(slot->mutex);
            if (!slot->returned) {
                slot->decided = true;
                slot->decision = std::move(d);
                return;
            }
        }
        // Decided on another thread: continue on this worker.
        post([later = std::move(later), d = std::move(d)]() mutable { later(std::move(d)); });
    });
    std::lock_guard lock(slot->mutex);
    slot->returned = true;
    if (slot->decided) {
        return std::move(slot->decision);
    }
    return std::nullopt;
}

ConnectOutcome Worker::on_connect(Link& link, mqtt::Connect&& c) {
    metrics_.add(Metric::PacketsConnect);
    metrics_.add(Metric::PacketsReceived);
    auto& settings = broker_.settings();

    if (c.client_id.empty()) {
        // [MQTT-3.1.3-8]: a zero-byte client id with CleanSession = 0 is refused with code 2.
        if ((!c.clean_start && c.version != Version::V5) || c.version == Version::V31) {
            return {ConnectResult::Refused, ConnectRefusal::ClientIdentifierNotValid};
        }
    }
    if (c.client_id.size() > settings.max_clientid_len.load(std::memory_order_relaxed)) {
        return {ConnectResult::Refused, ConnectRefusal::ClientIdentifierNotValid};
    }
    auto& ext = broker_.extensions();
    if (c.properties.authentication_method &&
        (*c.properties.authentication_method != auth::kScramMethod || !ext.usernames ||
         !ext.auth.enabled("emq_auth_username"))) {
        // MQTT 5 enhanced authentication with a method this broker does not offer (SCRAM-SHA-256
        // needs emq_auth_username running): CONNACK 0x8C and close [MQTT-4.12.0-1] (accepting
        // would let the client believe it authenticated).
        return {ConnectResult::Refused, ConnectRefusal::BadAuthenticationMethod};
    }
    bool assigned = false;
    if (c.client_id.empty()) {
        c.client_id = broker_.assign_client_id(index_);
        assigned = true;
    }
    auth::ClientIdentity identity{
            c.client_id,
            c.username,
            c.password ? std::make_shared<const std::string>(*c.password) : nullptr,
            link.peer_ip(),
            link.peer_port(),
            static_cast<uint8_t>(c.version),
            nullptr};
    if (std::string cn = link.peer_subject(false); !cn.empty()) {
        identity.cert = std::make_shared<const auth::ClientIdentity::CertSubject>(
                auth::ClientIdentity::CertSubject{std::move(cn), link.peer_subject(true)});
    }
    if (c.properties.authentication_method) {
        return begin_enhanced_auth(link, std::move(c), std::move(identity), assigned);
    }
    // The authentication chain answers at once (local tables, anonymous rules) or later from
    // its pool (password hashing, HTTP): then the link waits, paused, for the answer.
    uint64_t key = ++next_pending_connect_;
    bool anonymous = settings.allow_anonymous.load(std::memory_order_relaxed);
    auto decision = decide(
            [&](auth::DecisionCallback cb) {
                ext.auth.authenticate(identity, anonymous, std::move(cb));
            },
            [this, key](auth::Decision d) { finish_connect(key, std::move(d)); });
    if (!decision) {
        pending_connects_.emplace(
                key, PendingConnect{&link, std::move(c), std::move(identity), assigned});
        link.pause();
        return {ConnectResult::Pending};
    }
    return conclude_connect(link, std::move(c), std::move(identity), assigned, *decision);
}

void Worker::finish_connect(uint64_t key, auth::Decision d) {
    auto it = pending_connects_.find(key);
    if (it == pending_connects_.end()) {
        return;
    }
    PendingConnect p = std::move(it->second);
    pending_connects_.erase(it);
    auto outcome =
            conclude_connect(*p.link, std::move(p.connect), std::move(p.identity), p.assigned, d);
    if (outcome.result == ConnectResult::Accepted) {
        p.link->resume();
    } else if (outcome.result == ConnectResult::Refused) {
        p.link->refuse(outcome.refusal);
    }
}

ConnectOutcome Worker::refuse_after_auth(Link& link,
                                         const mqtt::Connect& c,
                                         const auth::Decision& d) {
    broker_.extensions().auth_refused.fetch_add(1, std::memory_order_relaxed);
    if (d.error) {
        // An auth backend that is down refuses every client (on_error = deny): one line a
        // second per worker, with how many were refused meanwhile, not one per client.
        int64_t now = mono_ms();
        if (now - last_refusal_log_ms_ >= 1000) {
            spdlog::warn("client {} from {} refused: {}{}", c.client_id, link.peer_ip(), d.reason,
                         refusals_unlogged_ > 0 ? " (and " + std::to_string(refusals_unlogged_) +
                                                          " more refused since the last such line)"
                                                : std::string());
            last_refusal_log_ms_ = now;
            refusals_unlogged_ = 0;
        } else {
            ++refusals_unlogged_;
        }
    }
    // A provider that knew the name and refused the password: bad user name or password
    // (4 / 0x86); no credentials anyone accepts: not authorized (5 / 0x87).
    bool bad_password = d.verdict == auth::Verdict::Deny && !d.error && c.password.has_value() &&
                        !d.anonymous_rule;
    return {ConnectResult::Refused,
            bad_password ? ConnectRefusal::BadUserNameOrPassword : ConnectRefusal::NotAuthorized};
}

std::unique_ptr<Connection> Worker::new_connection(Link& link,
                                                   mqtt::Connect& c,
                                                   auth::ClientIdentity&& identity,
                                                   const auth::Decision& d) {
    auto conn = std::make_unique<Connection>(broker_.next_connection_id(), &link);
    conn->version = c.version;
    conn->clean_start = c.clean_start;
    conn->keepalive = c.keepalive;
    conn->receive_maximum = c.properties.receive_maximum.value_or(0);
    conn->max_packet_size = c.properties.maximum_packet_size.value_or(0);
    conn->client_topic_alias_maximum = c.properties.topic_alias_maximum.value_or(0);
    conn->connect_expiry_zero =
            c.version == Version::V5 && c.properties.session_expiry_interval.value_or(0) == 0;
    if (c.will) {
        conn->extras().will = std::make_unique<mqtt::Will>(std::move(*c.will));
    }
    conn->connected_at_ms = unix_ms();
    conn->last_activity_ms = mono_ms();
    conn->superuser = d.superuser;
    identity.password.reset();  // not kept past authentication
    conn->identity = std::move(identity);
    return conn;
}

void Worker::take_over(Connection& old) {
    // [MQTT-3.1.4-2]: the existing connection is closed (MQTT 5: after DISCONNECT 0x8E, Session
    // taken over [MQTT-3.1.4-3]); its will is published as for any close the client did not
    // ask for.
    detach(old);
    old.session = nullptr;
    if (old.version == Version::V5 && !old.closing) {
        mqtt::encode_disconnect(old.link().out(), Version::V5,
                                mqtt::Disconnect{ReasonCode::SessionTakenOver, {}});
        metrics_.add(Metric::PacketsSent);
    }
    close_connection(old);
}

std::pair<SessionPtr, bool> Worker::session_for(const mqtt::Connect& c, const Connection& conn) {
    // Whether the session outlives this connection: MQTT 5 by its Session Expiry Interval
    // (absent = 0), 3.x by Clean Session.
    uint32_t expiry = 0;
    bool persistent = !c.clean_start;
    if (c.version == Version::V5) {
        expiry = c.properties.session_expiry_interval.value_or(0);
        persistent = expiry > 0;
    }
    SessionPtr session = find_session(c.client_id);
    if (session) {
        session->replaced = true;  // ended below or by the takeover: the id stays claimed
    }
    if (session && session->connection) {
        take_over(*session->connection);
        session = find_session(c.client_id);
    }
    bool resumed = false;
    if (session) {
        // [MQTT-3.1.2-4], [MQTT-3.1.2-5]: Clean Start 0 resumes an existing session whatever
        // this CONNECT's expiry says; that expiry applies from the end of this connection (a
        // resumed session given 0 stays stored while connected, and ends when it closes). A
        // session that ended with its old connection (a clean one, taken over) is not resumed.
        if (c.clean_start || !session->persistent()) {
            end_session(session);
            session = nullptr;
        } else {
            session->replaced = false;
            resumed = true;
        }
    }
    if (!session) {
        session = std::make_shared<Session>(c.client_id, index_, persistent);
        session->created_at_ms = conn.connected_at_ms;
        sessions_.insert(session);
        sessions_changed();
        if (!persistent) {
            clean_sessions_count_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    session->version = c.version;
    session->username = conn.username();
    session->expiry_interval_s = expiry;
    return {session, resumed};
}

void Worker::mqtt5_connack(Connection& conn,
                           const mqtt::Connect& c,
                           bool assigned,
                           const std::string* server_final,
                           mqtt::Properties& p) {
    const auto& settings = broker_.settings();
    p.topic_alias_maximum = kTopicAliasMaximum;
    // 3.2.2.3.14: a keepalive above the server's bound (or 0, none) is replaced by Server Keep
    // Alive, which the client then uses [MQTT-3.2.2-21] and the tick enforces.
    uint32_t max_keepalive = settings.max_keepalive_s.load(std::memory_order_relaxed);
    if (max_keepalive != 0 && (c.keepalive == 0 || c.keepalive > max_keepalive)) {
        conn.keepalive = static_cast<uint16_t>(max_keepalive);
        p.server_keep_alive = conn.keepalive;
    }
    // 3.2.2.3.3: the unacknowledged QoS 1/2 PUBLISHes this client may send: mqtt.max_inflight,
    // or without one kReceiveMaximum (below the acks a connection may have waiting before it is
    // paused, ResponseQueue::kMaxWaiting, so a client within it is never held); never more
    // than mqtt.max_awaiting_rel, so that a client within it never has a QoS 2 refused.
    uint32_t receive = settings.max_inflight.load(std::memory_order_relaxed);
    if (receive == 0) {
        receive = kReceiveMaximum;
    }
    if (uint32_t rel = settings.max_awaiting_rel.load(std::memory_order_relaxed); rel != 0) {
        receive = std::min(receive, rel);
    }
    conn.server_receive_maximum = static_cast<uint16_t>(std::min<uint32_t>(receive, 65535));
    if (conn.server_receive_maximum < 65535) {
        p.receive_maximum = conn.server_receive_maximum;
    }
    // 3.2.2.3.6: without it the client may assume there is no limit, and a PUBLISH above
    // mqtt.max_packet_size would cost it its connection (DISCONNECT 0x95).
    p.maximum_packet_size = settings.max_packet_size.load(std::memory_order_relaxed);
    if (!settings.retainer_enabled.load(std::memory_order_relaxed)) {
        p.retain_available = 0;  // the emq_retainer plugin is stopped
        conn.retain_unavailable = true;
    }
    if (assigned) {
        p.assigned_client_identifier = c.client_id;
    }
    if (server_final) {  // enhanced authentication succeeded (4.12)
        p.authentication_method = std::string(auth::kScramMethod);
        p.authentication_data = *server_final;
        conn.enhanced_auth = true;
    }
}

ConnectOutcome Worker::conclude_connect(Link& link,
                                        mqtt::Connect&& c,
                                        auth::ClientIdentity&& identity,
                                        bool assigned,
                                        const auth::Decision& d,
                                        const std::string* server_final) {
    if (d.verdict != auth::Verdict::Allow) {
        return refuse_after_auth(link, c, d);
    }
    // A session that outlives its connection, or resumes one, is stored with the CONNECT; while
    // the store takes no writes that cannot be done: CONNACK 0x97 (Quota exceeded; 3.x: 3,
    // Server unavailable). A clean session needs no write and connects.
    const bool stores_session =
            !c.clean_start ||
            (c.version == Version::V5 && c.properties.session_expiry_interval.value_or(0) > 0);
    if (stores_session && !store_writable()) {
        return {ConnectResult::Refused, ConnectRefusal::StoreUnavailable};
    }
    if (ClusterRouter* cluster = broker_.cluster()) {
        // A cluster member connects a client id only once it is this node's (an etcd
        // transaction, and the old owner's hand-over when another node has it): the link
        // waits, paused, for the answer.
        const uint64_t key = ++next_pending_connect_;
        const std::string client_id = c.client_id;
        const bool clean_start = c.clean_start;
        pending_claims_.emplace(
                key,
                PendingClaim{&link, std::move(c), std::move(identity), assigned, d,
                             server_final != nullptr ? std::optional<std::string>(*server_final)
                                                     : std::nullopt});
        link.pause();
        cluster->claim_client(client_id, clean_start, [this, key](ClaimAnswer a) {
            push_task(
                    [this, key, a = std::move(a)]() mutable { claim_answered(key, std::move(a)); });
        });
        return {ConnectResult::Pending};
    }
    return connect_owned(link, std::move(c), std::move(identity), assigned, d, server_final);
}

ConnectOutcome Worker::connect_owned(Link& link,
                                     mqtt::Connect&& c,
                                     auth::ClientIdentity&& identity,
                                     bool assigned,
                                     const auth::Decision& d,
                                     const std::string* server_final) {
    std::unique_ptr<Connection> conn_ptr = new_connection(link, c, std::move(identity), d);
    Connection& conn = *conn_ptr;
    auto [session, resumed] = session_for(c, conn);
    mqtt::Connack ack{resumed, ReasonCode::Success, {}};
    if (c.version == Version::V5) {
        mqtt5_connack(conn, c, assigned, server_final, ack.properties);
    }
    mqtt::encode_connack(link.out(), c.version, ack);
    metrics_.add(Metric::PacketsConnack);
    metrics_.add(Metric::PacketsSent);
    link.flush();

    connections_.emplace(conn.id(), std::move(conn_ptr));
    connections_changed();
    link.attach(&conn);
    attach(conn, session, resumed);
    if (session->persistent()) {
        store_session(*session);
    }
    on_connected_extensions(conn, !resumed);
    return {ConnectResult::Accepted};
}

// ---------------------------------------------------------------------------------------------
// Cluster: the client id's owner (ClusterRouter::claim_client) and sessions moving between nodes
void Worker::connect_claimed(PendingClaim&& p) {
    auto outcome = connect_owned(*p.link, std::move(p.connect), std::move(p.identity), p.assigned,
                                 p.decision, p.server_final ? &*p.server_final : nullptr);
    if (outcome.result == ConnectResult::Accepted) {
        p.link->resume();
    } else {
        p.link->refuse(outcome.refusal);
    }
}

void Worker::claim_answered(uint64_t key, ClaimAnswer a) {
    auto it = pending_claims_.find(key);
    if (it == pending_claims_.end()) {
        return;
    }
    if (a.kind == ClaimAnswer::Kind::Install) {
        install_session(key, std::move(a));
        return;
    }
    PendingClaim p = std::move(it->second);
    pending_claims_.erase(it);
    if (a.kind == ClaimAnswer::Kind::Refused || stopping_) {
        p.link->refuse(ConnectRefusal::ServerUnavailable);
        return;
    }
    connect_claimed(std::move(p));
}

void Worker::install_session(uint64_t key, ClaimAnswer a) {
    ClusterRouter* cluster = broker_.cluster();
    PendingClaim& p = pending_claims_.at(key);
    const std::string& id = p.connect.client_id;
    SessionTransfer& t = *a.session;
    if (!store_writable() || stopping_ || t.session.client_id != id) {
        cluster->session_installed(a.ticket, false, [](bool, int64_t) {});
        Link* link = p.link;
        const bool stop = stopping_;
        pending_claims_.erase(key);
        link->refuse(stop ? ConnectRefusal::ServerUnavailable : ConnectRefusal::StoreUnavailable);
        return;
    }
    // A copy left here from before this node lost the id (it was taken over meanwhile, or
    // this node was away) makes way for the one handed over; its key is not this node's.
    if (SessionPtr old = find_session(id)) {
        old->handed_over = true;
        if (old->connection) {
            take_over(*old->connection);
        }
        if (SessionPtr left = find_session(id)) {
            end_session(left);
        }
    }
    // Everything in this turn's batch, in the store's own record formats; the messages get
    // this node's ids (one record per message however many entries share it, contract 5).
    auto& b = batch();
    b.put_session(t.session);
    for (const auto& sub : t.subscriptions) {
        b.put_subscription(sub);
    }
    std::unordered_map<uint64_t, uint64_t> ids;
    for (auto& q : t.queue) {
        auto [at, fresh] = ids.emplace(q.message.id, 0);
        if (fresh) {
            at->second = broker_.store().next_message_id();
            q.message.id = at->second;
            b.put_message(q.message);
        }
        q.entry.client_id = id;
        q.entry.message_id = at->second;
        b.enqueue(q.entry);
    }
    for (const auto& f : t.inflight) {
        b.put_inflight(f);
    }
    after_commit([this, key, a = std::move(a)] {
        auto it = pending_claims_.find(key);
        if (it == pending_claims_.end()) {
            return;
        }
        const bool stored = store_writable();
        if (stored) {
            // As Broker::recover builds a stored session at start.
            const storage::SessionRecord& r = a.session->session;
            const std::string& cid = r.client_id;
            auto s = std::make_shared<Session>(cid, index_, true);
            s->version = static_cast<mqtt::Version>(r.protocol_level);
            s->created_at_ms = r.created_at_ms;
            s->disconnected_at_ms = r.disconnected_at_ms != 0 ? r.disconnected_at_ms : unix_ms();
            s->expiry_interval_s = r.expiry_interval_s;
            s->username = r.username;
            if (r.will) {
                adopt_delayed_will(s, *r.will);
            }
            auto& store = broker_.store();
            auto counts = store.session_counts(cid);
            std::vector<storage::InflightRecord> inflight;
            if (counts.awaiting_rel + counts.awaiting_comp > 0) {
                inflight = store.inflight_of(cid);
            }
            s->restore(r, counts, inflight,
                       broker_.settings().max_inflight.load(std::memory_order_relaxed));
            // What is routed to it from now on waits for the revision from which it is
            // this node's (installed).
            s->move = new_session_move();
            s->move->incoming = true;
            sessions_.insert(s);
            sessions_changed();
            for (const auto& sub : a.session->subscriptions) {
                mqtt::SubscribeOptions opts{sub.qos, sub.no_local, sub.retain_as_published,
                                            sub.retain_handling};
                route_subscribed(
                        sub.topic_filter,
                        broker_.index().subscribe(s, sub.topic_filter, opts, sub.subscription_id));
                s->subscriptions[sub.topic_filter] = opts;
            }
        }
        broker_.cluster()->session_installed(
                a.ticket, stored, [this, key](bool owned, int64_t revision) {
                    push_task([this, key, owned, revision] { installed(key, owned, revision); });
                });
    });
}

void Worker::installed(uint64_t key, bool owned, int64_t revision) {
    auto it = pending_claims_.find(key);
    if (it == pending_claims_.end()) {
        return;
    }
    PendingClaim p = std::move(it->second);
    pending_claims_.erase(it);
    SessionPtr s = find_session(p.connect.client_id);
    std::vector<Delivery> held;
    if (s && s->move && s->move->incoming) {
        held = std::move(s->move->held);
        if (owned && !stopping_) {
            s->move->revision = revision;
            s->move->until_ms = mono_ms() + broker_.cluster()->move_window_ms();
        } else {
            s->move.reset();
        }
    }
    if (!owned || stopping_) {
        // The id could not be taken (another node took it meanwhile, or etcd went away): the
        // copy stored here goes, the old owner keeps its own.
        if (s && !s->connection) {
            s->handed_over = true;
            end_session(s);
        }
        for (auto& d : held) {
            deliver(std::move(d));  // to an ended session: its token completes, nothing else
        }
        p.link->refuse(ConnectRefusal::ServerUnavailable);
        return;
    }
    // What came while the revision was not known: this node's from R on, the old owner's
    // (which relays it) below.
    for (auto& d : held) {
        deliver(std::move(d));
    }
    connect_claimed(std::move(p));
}

void Worker::hand_over(const std::string& client_id,
                       bool drop,
                       std::function<void(HandOver)> done) {
    SessionPtr s = find_session(client_id);
    if (s && s->handing_over) {
        done(HandOver{HandOver::Kind::Busy, nullptr});
        return;
    }
    if (s) {
        // Whatever ends here now ends because the id moves: its key is the new owner's.
        s->handed_over = true;
        if (s->connection) {
            take_over(*s->connection);  // [MQTT-3.1.4-2], MQTT 5: DISCONNECT 0x8E
        }
        s = find_session(client_id);
    }
    if (s && drop) {
        end_session(s);  // Clean Start on the new node [MQTT-3.1.2-4]
        s = nullptr;
    }
    if (!s || !s->persistent()) {
        done(HandOver{HandOver::Kind::None, nullptr});
        return;
    }
    s->handed_over = false;
    s->handing_over = true;
    // From now on what is queued here is also kept (deliver), to be relayed if it is not in
    // what moves (SessionMove).
    SessionMovePtr out = new_session_move();
    if (s->move && s->move->incoming && s->move->revision != 0) {
        out->skip_below = s->move->revision;
        out->skip_until_ms = s->move->until_ms;
    }
    s->move = std::move(out);
    // Read from the store once every write of the session (the record its detach wrote, the
    // last acks) is durable: the stored records are what moves.
    after_commit([this, s, done = std::move(done)] {
        const auto& store = broker_.store();
        const std::string& id = s->client_id();
        auto rec = s->ended ? std::nullopt : store.get_session(id);
        if (!rec) {
            s->handing_over = false;
            s->move.reset();
            done(HandOver{HandOver::Kind::None, nullptr});
            return;
        }
        auto t = std::make_shared<SessionTransfer>();
        t->session = std::move(*rec);
        t->subscriptions = store.subscriptions_of(id);
        constexpr uint32_t kPage = 1000;
        uint64_t from = 0;
        while (true) {
            auto page = store.read_queue(id, from, kPage);
            for (auto& q : page) {
                from = q.entry.seq + 1;
                if (q.message.id != 0) {
                    t->queue.push_back(std::move(q));
                }
            }
            if (page.size() < kPage) {
                break;
            }
        }
        t->inflight = store.inflight_of(id);
        if (s->move) {
            // Entries from `from` on were not stored yet: they are not in what moves.
            std::erase_if(s->move->since, [from](const auto& e) { return e.first < from; });
            s->move->subscriptions = t->subscriptions;
        }
        done(HandOver{HandOver::Kind::Session, std::move(t)});
    });
}

void Worker::hand_over_done(const std::string& client_id,
                            bool moved,
                            int64_t revision,
                            const std::string& to) {
    SessionPtr s = find_session(client_id);
    if (!s || !s->handing_over) {
        return;
    }
    s->handing_over = false;
    if (!moved) {
        s->move.reset();
        return;
    }
    s->handed_over = true;
    if (s->connection) {
        take_over(*s->connection);  // came back here meanwhile: the other node has it now
    }
    s = find_session(client_id);
    if (!s) {
        return;
    }
    ClusterRouter* cluster = broker_.cluster();
    SessionMove* m = s->move.get();
    if (!m || revision == 0 || cluster == nullptr) {
        s->move.reset();  // where what came meanwhile belongs is not known: it ends here
        end_session(s);
        return;
    }
    m->to = to;
    m->revision = revision;
    m->until_ms = mono_ms() + cluster->move_window_ms();
    // What was queued here after the state that moved was read, and routed by routes from
    // before R, is the new owner's only through this node: relayed, each once that node has
    // stored it, before the copy here ends. Deliveries from now on are relayed as they come
    // (moving_takes).
    auto since = std::move(m->since);
    std::erase_if(since, [&](const auto& e) {
        return !e.second.shared && !e.second.relayed && e.second.stamp >= revision;
    });
    if (since.empty()) {
        end_moved(s);
        return;
    }
    spdlog::info("cluster: {} message(s) queued for {} here during its move relayed to {}",
                 since.size(), client_id, to);
    auto relayed = [this, s, to, count = since.size()](bool ok) {
        if (ok) {
            end_moved(s);
            return;
        }
        // Not stored there: the copy here keeps them (a connect here takes the session back).
        spdlog::warn(
                "cluster: {} message(s) of {} queued here during its move could not be "
                "stored on {}: its copy here keeps them",
                count, s->client_id(), to);
        s->move.reset();
        s->handed_over = false;
    };
    const Token t = open_peer_token(0, std::move(relayed));
    for (auto& [seq, d] : since) {
        if (depend(t)) {
            (void)cluster->relay(to, client_id, d.msg, d.qos, d.retain, d.subscription_ids, &t);
        }
    }
    complete(t);  // the opener's count, last
}

void SessionMoveDelete::operator()(SessionMove* m) const {
    delete m;
}

void Worker::end_moved(const SessionPtr& s) {
    if (s->ended) {
        return;
    }
    if (!s->move) {
        end_session(s);
        return;
    }
    // Matched here for the move's window, before its subscriptions leave the index, so a
    // message routed here meanwhile finds it either way. A group's message picked for this
    // node picks among the members here: the session stays one of them meanwhile.
    const int64_t until = s->move->until_ms;
    broker_.relay_stubs().add(s, s->move->subscriptions, until);
    Lingering kept{s, {}, until};
    for (auto it = s->subscriptions.begin(); it != s->subscriptions.end();) {
        if (parse_shared(it->first)) {
            kept.filters.push_back(it->first);
            it = s->subscriptions.erase(it);
        } else {
            ++it;
        }
    }
    end_session(s);
    lingering_.push_back(std::move(kept));  // also found by deliver_relayed (moved on again)
}

void Worker::expire_lingering(int64_t mono_now) {
    std::erase_if(lingering_, [&](Lingering& l) {
        if (l.until_ms > mono_now) {
            return false;
        }
        for (const auto& filter : l.filters) {
            route_unsubscribed(filter, broker_.index().unsubscribe(l.session.get(), filter));
        }
        return true;
    });
}

void Worker::on_connected_extensions(Connection& conn, bool new_session) {
    if (auto m = hooks_.modules()) {
        for (const auto& sub : m->subscriptions_for(conn.identity)) {
            if (!mqtt::valid_subscription_filter(sub.topic, conn.version)) {
                continue;
            }
            mqtt::SubscribeOptions opts;
            opts.qos = sub.qos;
            add_subscription(conn.session, sub.topic, opts, 0);
            send_retained(conn.session, sub.topic, opts, 0);
        }
        if (m->presence_enabled()) {
            auto pm = m->connected(conn.identity, !conn.session->persistent(), 0, unix_ms() / 1000);
            publish_from_broker(pm.topic, pm.payload, pm.qos);
        }
    }
    hooks_.client(conn,
                  {{auth::HookEvent::ClientConnected, true},
                   {auth::HookEvent::SessionCreated, new_session}},
                  "");
}

// ---------------------------------------------------------------------------------------------
// Sessions and wills
void Worker::store_session(const Session& s) {
    storage::SessionRecord r;
    r.client_id = s.client_id();
    r.protocol_level = static_cast<uint8_t>(s.version);
    r.expiry_interval_s = s.version == Version::V5 ? s.expiry_interval_s : 0;
    r.created_at_ms = s.created_at_ms;
    r.disconnected_at_ms = s.online ? 0 : s.disconnected_at_ms;
    r.max_inflight =
            static_cast<uint16_t>(broker_.settings().max_inflight.load(std::memory_order_relaxed));
    r.deliver_msg = s.deliver_msg();
    r.username = s.username;
    for (const auto& d : delayed_wills_) {
        if (d.session.get() == &s) {
            r.will = d.will;  // kept with the session: it survives a restart
        }
    }
    batch().put_session(std::move(r));
}

void Worker::attach(Connection& conn, const SessionPtr& s, bool resumed) {
    conn.session = s;
    s->connection = &conn;
    s->online = true;
    s->acl_marks_epoch = 0;  // ACL marks for this connection's identity
    // Back before the Will Delay Interval passed: the will is not sent [MQTT-3.1.3-9].
    std::erase_if(delayed_wills_, [&](const DelayedWill& d) { return d.session == s; });
    if (resumed) {
        s->resend_inflight(ctx_);
    }
    s->pump(ctx_);
}

bool Worker::detach(Connection& conn) {
    SessionPtr s = conn.session;
    if (!s) {
        return false;
    }
    // A stored session whose expiry is now 0 (resumed by a CONNECT without one, or set by
    // DISCONNECT) ends here, so that the next CONNECT finds no session [MQTT-3.1.2-23].
    const bool outlives = s->persistent() && s->expiry_s(broker_.settings()) != 0;
    // The will goes out on any close the client did not ask for ([MQTT-3.1.2-8]), never
    // after DISCONNECT ([MQTT-3.1.2-10]).
    if (const mqtt::Will* w = conn.will(); w && !conn.disconnect_received && !stopping_) {
        // MQTT 5: after the Will Delay Interval, or when the session ends if that comes
        // first; a session that ends with this connection publishes it now [MQTT-3.1.3-9].
        uint32_t delay = w->properties.will_delay_interval.value_or(0);
        if (delay > 0 && outlives) {
            delayed_wills_.push_back(
                    DelayedWill{s, will_record(*w, unix_ms() + int64_t{delay} * 1000)});
        } else {
            publish(will_message(will_record(*w, 0), conn.client_id()), s.get(), nullptr);
        }
        conn.extras().will.reset();
    }
    s->connection = nullptr;
    s->online = false;
    s->disconnected_at_ms = unix_ms();
    conn.session = nullptr;
    if (outlives) {
        store_session(*s);
    } else {
        end_session(s);
    }
    return !outlives;
}

MessagePtr Worker::will_message(const storage::WillRecord& w, const std::string& client_id) {
    int64_t now = unix_ms();
    int64_t expiry_at_ms = w.message_expiry_s != 0 ? now + int64_t{w.message_expiry_s} * 1000 : 0;
    return make_message(MessageInit{w.topic, w.payload, w.qos, w.retain, w.properties, client_id,
                                    now, expiry_at_ms, broker_.store().next_message_id()});
}

void Worker::adopt_delayed_will(SessionPtr s, storage::WillRecord will) {
    delayed_wills_.push_back(DelayedWill{std::move(s), std::move(will)});
}

void Worker::release_delayed_wills(const Session* s, int64_t due_by_ms) {
    for (size_t i = 0; i < delayed_wills_.size();) {
        auto& d = delayed_wills_[i];
        if (d.session.get() != s && d.will.due_at_ms > due_by_ms) {
            ++i;
            continue;
        }
        DelayedWill taken = std::move(d);
        delayed_wills_.erase(delayed_wills_.begin() + static_cast<ptrdiff_t>(i));
        publish(will_message(taken.will, taken.session->client_id()), taken.session.get(), nullptr);
        if (taken.session.get() != s && taken.session->persistent() && !taken.session->ended) {
            store_session(*taken.session);  // the stored record loses its will
        }
    }
}

void Worker::end_session(const SessionPtr& s) {
    if (!delayed_wills_.empty()) {
        release_delayed_wills(s.get(), std::numeric_limits<int64_t>::min());
    }
    s->ended = true;
    s->online = false;
    if (ClusterRouter* cluster = broker_.cluster(); cluster && !s->handed_over && !s->replaced) {
        cluster->client_released(s->client_id());
    }
    for (const auto& [filter, opts] : s->subscriptions) {
        route_unsubscribed(filter, broker_.index().unsubscribe(s.get(), filter));
    }
    s->subscriptions.clear();
    if (s->persistent()) {
        batch().delete_session(s->client_id());
    }
    s->clear_queue();
    if (auto it = sessions_.find(s->client_id()); it != sessions_.end()) {
        if (!(*it)->persistent()) {
            clean_sessions_count_.fetch_sub(1, std::memory_order_relaxed);
        }
        sessions_.erase(it);
    }
    sessions_changed();
}

// ---------------------------------------------------------------------------------------------
// Close
void Worker::close_connection(Connection& conn) {
    if (!conn.closing) {
        conn.closing = true;
        conn.link().close();
    }
}

void Worker::on_closed(Connection& conn) {
    bool had_session = conn.session != nullptr;
    bool ended = detach(conn);
    if (had_session) {
        on_closed_extensions(conn, ended);
    }
    connections_.erase(conn.id());
    connections_changed();
}

void Worker::on_closed_extensions(Connection& conn, bool session_ended) {
    const char* reason = conn.disconnect_received ? "normal" : "closed";
    if (auto m = hooks_.modules(); m && m->presence_enabled() && !stopping_) {
        auto pm = m->disconnected(conn.identity, reason, unix_ms() / 1000);
        publish_from_broker(pm.topic, pm.payload, pm.qos);
    }
    hooks_.client(conn,
                  {{auth::HookEvent::ClientDisconnected, true},
                   {auth::HookEvent::SessionTerminated, session_ended}},
                  reason);
}

}  // namespace mqttd::broker
