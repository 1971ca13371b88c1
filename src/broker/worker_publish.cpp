// Worker: a client's PUBLISH (topic alias, rewrite, ACL), publishing (retained set, routing
// to every matching session, other workers' through their inboxes) and delivery to the
// sessions homed here, retained messages on SUBSCRIBE, and the ACL marks (acl.h).

#include <algorithm>

#include "broker/auth/topic_filter.h"
#include "broker/broker.h"
#include "broker/relay_stubs.h"
#include "broker/worker.h"
#include "common/clock.h"
#include "mqtt/encoder.h"

namespace mqttd::broker {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

namespace {

// The identity the ACL sees for a session: its connection's, or while it is offline the client
// id and user name it keeps (no address: ipaddr rules do not match), built in `stored`.
const auth::ClientIdentity& identity_of(const Session& s, auth::ClientIdentity& stored) {
    if (s.connection) {
        return s.connection->identity;
    }
    stored.client_id = s.client_id();
    if (!s.username.empty()) {
        stored.username = s.username;
    }
    stored.proto_ver = static_cast<uint8_t>(s.version);
    return stored;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// A client's PUBLISH
ReasonCode Worker::resolve_topic_alias(Connection& conn, mqtt::Publish& p) {
    // MQTT 5 3.3.2.3.4: 1..Topic Alias Maximum [MQTT-3.3.2-8], [MQTT-3.3.2-9]; a topic name
    // sets the alias, an empty one uses it (unknown: a Protocol Error).
    uint16_t alias = *p.properties.topic_alias;
    if (conn.version != Version::V5 || alias == 0 || alias > kTopicAliasMaximum) {
        return ReasonCode::TopicAliasInvalid;
    }
    auto& slot = conn.extras().topic_aliases;
    if (!slot) {
        slot = std::make_unique<TopicAliases>();
    }
    auto& aliases = *slot;
    std::string& known = aliases.topics[alias - 1];
    if (!p.topic.empty()) {
        known.assign(p.topic);
    } else if (known.empty()) {
        return ReasonCode::ProtocolError;
    }
    p.topic = known;
    // The alias is this connection's: subscribers must not see it.
    mqtt::Properties forwarded = p.properties;
    forwarded.topic_alias.reset();
    aliases.properties.clear();
    mqtt::encode_properties_body(aliases.properties, forwarded);
    p.raw_properties = aliases.properties;
    return ReasonCode::Success;
}

bool Worker::refuse_over_awaiting_rel(Connection& conn, const mqtt::Publish& p) {
    uint32_t max = broker_.settings().max_awaiting_rel.load(std::memory_order_relaxed);
    if (max == 0 || conn.session->awaiting_rel_count() < max) {
        return false;
    }
    // mqtt.max_awaiting_rel (EMQ 2.x): the message is dropped, never acknowledged as taken.
    // MQTT 5 says so with PUBREC 0x93, which ends the exchange (and releases the Receive
    // Maximum slot the message took as it is written); a 3.x client gets no PUBREC and sends it
    // again when it reconnects. Receive Maximum is at most max_awaiting_rel, so a 5.0 client
    // meets this only with QoS 2 messages left awaiting PUBREL by an earlier connection.
    metrics_.add(Metric::MessagesDropped);
    metrics_.add(Metric::MessagesQos2Dropped);
    if (conn.version == Version::V5) {
        auto r = response_for(PacketType::Pubrec, p.packet_id);
        r.reasons.push_back(ReasonCode::ReceiveMaximumExceeded);
        complete(new_response(conn, std::move(r)));
    }
    return true;
}

ReasonCode Worker::handle_publish(Connection& conn, mqtt::Publish& p) {
    metrics_.add(Metric::PacketsPublishReceived);
    metrics_.add(Metric::MessagesReceived);
    static constexpr Metric kReceived[] = {Metric::MessagesQos0Received,
                                           Metric::MessagesQos1Received,
                                           Metric::MessagesQos2Received};
    metrics_.add(kReceived[p.qos]);  // the decoder refuses QoS 3
    if (p.retain && conn.retain_unavailable) {
        return ReasonCode::RetainNotSupported;  // as CONNACK said (5.0 3.2.2.3.5): 0x9A
    }
    if (p.properties.topic_alias) {
        if (auto rc = resolve_topic_alias(conn, p); rc != ReasonCode::Success) {
            return rc;
        }
    }
    if (p.qos == 2 && conn.session->awaiting_rel(p.packet_id)) {
        // A resent QoS 2 PUBLISH before PUBREL: acknowledge again, deliver nothing
        // ([MQTT-4.3.3-2], method B).
        complete(new_response(conn, response_for(PacketType::Pubrec, p.packet_id)));
        return ReasonCode::Success;
    }
    if (p.qos > 0 && conn.server_receive_maximum != 0) {
        // [MQTT-3.3.4-7]: more unacknowledged QoS 1/2 PUBLISHes than CONNACK's Receive Maximum.
        if (conn.inbound_unacked >= conn.server_receive_maximum) {
            return ReasonCode::ReceiveMaximumExceeded;
        }
        ++conn.inbound_unacked;
    }
    if (p.qos == 2 && refuse_over_awaiting_rel(conn, p)) {
        return ReasonCode::Success;
    }
    std::string rewritten;
    std::string_view topic = p.topic;
    if (auto r = hooks_.rewrite(topic)) {
        rewritten = std::move(*r);
        topic = rewritten;
    }
    if (conn.superuser) {
        publish_allowed(conn, p, topic);
        return ReasonCode::Success;
    }
    check_publish_acl(conn, p, topic);
    return ReasonCode::Success;
}

void Worker::check_publish_acl(Connection& conn, mqtt::Publish& p, std::string_view topic) {
    auto& ext = broker_.extensions();
    bool cache = ext.cache_acl.load(std::memory_order_relaxed);
    std::optional<bool> allowed;
    if (cache && conn.acl_cache_if_any() != nullptr) {
        allowed = conn.acl_cache_if_any()->get(topic, ext.acl.epoch());
    }
    if (!allowed) {
        // A chain that decides inline (the ACL file) is asked directly: no walk, no callbacks.
        std::optional<auth::Verdict> v =
                ext.acl.verdict_now(conn.identity, auth::Access::Publish, topic,
                                    ext.acl_nomatch_allow.load(std::memory_order_relaxed));
        if (v) {
            allowed = *v == auth::Verdict::Allow;
            if (cache) {
                conn.acl_cache().put(topic, *allowed, ext.acl.epoch());
            }
        }
    }
    if (!allowed) {
        uint64_t id = conn.id();
        // Filled only when the decision comes later: the packet's bytes do not outlive this
        // call, so the waiting publish owns copies.
        struct Owned {
            mqtt::Publish p;
            std::string topic, payload, raw;
        };
        auto owned = std::make_shared<Owned>();
        auto d = decide(
                [&](auth::DecisionCallback cb) {
                    ext.acl.check(conn.identity, false, auth::Access::Publish, topic,
                                  ext.acl_nomatch_allow.load(std::memory_order_relaxed),
                                  std::move(cb));
                },
                [this, id, owned](auth::Decision later) {
                    finish_publish_acl(id, owned->p, owned->topic, later);
                });
        if (!d) {
            owned->p = p;
            owned->topic.assign(topic);
            owned->payload.assign(p.payload);
            owned->raw.assign(p.raw_properties);
            owned->p.topic = owned->topic;
            owned->p.payload = owned->payload;
            owned->p.raw_properties = owned->raw;
            // Decided elsewhere (HTTP): later packets wait, so their order is kept.
            hold(conn);
            return;
        }
        allowed = d->verdict == auth::Verdict::Allow;
        if (cache) {
            conn.acl_cache().put(topic, *allowed, ext.acl.epoch());
        }
    }
    if (*allowed) {
        publish_allowed(conn, p, topic);
    } else {
        publish_denied(conn, p);
    }
}

void Worker::finish_publish_acl(uint64_t conn_id,
                                mqtt::Publish p,
                                std::string topic,
                                const auth::Decision& d) {
    auto it = connections_.find(conn_id);
    if (it == connections_.end()) {
        return;
    }
    Connection& conn = *it->second;
    bool allowed = d.verdict == auth::Verdict::Allow;
    auto& ext = broker_.extensions();
    if (ext.cache_acl.load(std::memory_order_relaxed)) {
        conn.acl_cache().put(topic, allowed, ext.acl.epoch());
    }
    if (!conn.closing && conn.session) {
        if (allowed) {
            publish_allowed(conn, p, topic);
        } else {
            publish_denied(conn, p);
        }
    }
    release(conn);
}

void Worker::publish_denied(Connection& conn, const mqtt::Publish& p) {
    // Dropped and counted. QoS 1/2 are still answered, so the client does not resend forever;
    // MQTT 5 says why (0x87).
    metrics_.add(Metric::MessagesAclDenied);
    broker_.extensions().acl_denied_publish.fetch_add(1, std::memory_order_relaxed);
    if (p.qos == 0) {
        return;
    }
    auto r = response_for(p.qos == 1 ? PacketType::Puback : PacketType::Pubrec, p.packet_id);
    if (conn.version == Version::V5) {
        r.reasons.push_back(ReasonCode::NotAuthorized);
    }
    complete(new_response(conn, std::move(r)));
}

void Worker::publish_allowed(Connection& conn, mqtt::Publish& p, std::string_view topic) {
    Session& s = *conn.session;
    int64_t now = unix_ms();
    int64_t expiry_at = 0;
    if (conn.version == Version::V5 && p.properties.message_expiry_interval) {
        expiry_at = now + int64_t{*p.properties.message_expiry_interval} * 1000;
    }
    auto msg = make_message(
            MessageInit{topic, p.payload, p.qos, p.retain, p.raw_properties, conn.client_id(), now,
                        expiry_at, broker_.store().next_message_id()},
            conn.username());
    hooks_.message(auth::HookEvent::MessagePublish, conn, topic, msg.get());
    if (p.qos == 0) {
        publish(msg, &s, nullptr);
        return;
    }
    Token t = new_response(
            conn, response_for(p.qos == 1 ? PacketType::Puback : PacketType::Pubrec, p.packet_id));
    if (p.qos == 2) {
        s.add_awaiting_rel(ctx_, p.packet_id, now);
        if (s.persistent()) {
            depend_on_turn(conn, t);  // PUBREC once the inbound state is stored
        }
    }
    publish(msg, &s, &t);
    complete(t);
}

// ---------------------------------------------------------------------------------------------
// The retained set
void Worker::store_retained(const MessagePtr& msg) {
    const auto& settings = broker_.settings();
    uint64_t max_num = settings.retainer_max_message_num.load(std::memory_order_relaxed);
    uint64_t max_size = settings.retainer_max_payload_size.load(std::memory_order_relaxed);
    int64_t expiry_s = settings.retainer_expiry_interval_s.load(std::memory_order_relaxed);
    if (msg->payload().empty()) {
        batch().delete_retained(std::string(msg->topic()));
        retained_changing(msg->topic(), nullptr, 0);
        if (ClusterRouter* c = broker_.cluster()) {
            c->retained_deleted(msg->topic(), msg->created_at_ms);
        }
    } else if ((max_size != 0 && msg->payload().size() > max_size) ||
               (max_num != 0 && broker_.store().count(storage::Counted::Retained) >= max_num &&
                !broker_.store().get_retained(msg->topic()))) {
        metrics_.add(Metric::MessagesDropped);  // over the retainer's limits: not retained
    } else {
        storage::RetainedRecord r;
        r.topic.assign(msg->topic());
        r.payload.assign(msg->payload());
        r.qos = msg->qos;
        r.properties.assign(msg->properties());
        r.stored_at_ms = msg->created_at_ms;
        r.expiry_at_ms = msg->expiry_at_ms;
        if (expiry_s > 0 &&
            (r.expiry_at_ms == 0 || r.expiry_at_ms > msg->created_at_ms + expiry_s * 1000)) {
            r.expiry_at_ms = msg->created_at_ms + expiry_s * 1000;
        }
        int64_t expiry_at_ms = r.expiry_at_ms;
        batch().put_retained(std::move(r));
        retained_changing(msg->topic(), msg, expiry_at_ms);
        metrics_.add(Metric::MessagesRetained);
    }
}

bool Worker::adopt_retained(const MessagePtr& msg) {
    if (!broker_.settings().retainer_enabled.load(std::memory_order_relaxed) ||
        (msg->expiry_at_ms != 0 && msg->expiry_at_ms <= unix_ms())) {
        return false;
    }
    // A change of the topic committing now is newer than any copy; so is a stored message
    // published at the same time or later.
    if (!broker_.retained_in_flight().matching(msg->topic()).empty()) {
        return false;
    }
    auto current = broker_.store().get_retained(msg->topic());
    if (msg->payload().empty()) {
        // A deletion the peer saw (while this node was away): it removes an older message.
        if (!current || current->stored_at_ms >= msg->created_at_ms) {
            return false;
        }
    } else if (current && current->stored_at_ms >= msg->created_at_ms) {
        return false;
    }
    store_retained(msg);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Publishing and routing
void Worker::publish(const MessagePtr& msg,
                     const Session* publisher,
                     const Token* token,
                     const std::vector<std::string>* peer_groups,
                     int64_t peer_stamp) {
    const auto& settings = broker_.settings();
    if (msg->retain && settings.retainer_enabled.load(std::memory_order_relaxed)) {
        // The retained set is written in the same turn's batch as the publisher's other
        // writes, so its PUBACK follows it (contract 1).
        store_retained(msg);
        if (token) {
            depend_on_turn(*token);  // the PUBACK waits for the retained write
        }
    }
    ClusterRouter* cluster = peer_groups != nullptr ? nullptr : broker_.cluster();
    if (cluster == nullptr) {
        route(msg, publisher, token,
              peer_groups != nullptr ? GroupChoice{GroupChoice::Mode::Only, peer_groups}
                                     : GroupChoice{},
              peer_stamp);
        return;
    }
    SharedPicks picks;  // allocates only when a group spans nodes
    cluster->pick_shared(msg->topic(), picks);
    // Forwarded first: its route stamp decides the local deliveries to a session that moves
    // between nodes (SessionMove). Each node that answers for the token is one more
    // dependency, added before the caller releases its own count (invariant 2). Answers come
    // back through this worker's inbox, so none is applied before this returns.
    int64_t stamp = 0;
    const uint32_t answers = cluster->forward(msg, token, picks, stamp);
    route(msg, publisher, token,
          picks.elsewhere.empty() ? GroupChoice{}
                                  : GroupChoice{GroupChoice::Mode::Except, &picks.elsewhere},
          stamp);
    for (uint32_t n = answers; n > 0; --n) {
        if (!depend(*token)) {
            break;
        }
    }
}

void Worker::publish_from_peer(const MessagePtr& msg,
                               uint64_t cookie,
                               const std::vector<std::string>& groups,
                               int64_t stamp) {
    if (cookie == 0) {
        publish(msg, nullptr, nullptr, &groups, stamp);
        return;
    }
    const Token t = open_peer_token(cookie, {});
    publish(msg, nullptr, &t, &groups, stamp);
    complete(t);  // the opener's count, last (invariant 2)
}

Token Worker::open_peer_token(uint64_t cookie, std::function<void(bool ok)> done) {
    const uint64_t n = ++next_peer_pending_;
    peer_pending_.emplace(n, PeerPending{cookie, 1, false, std::move(done)});
    return Token{index_, false, kPeerConnection, n};
}

void Worker::deliver_relayed(const MessagePtr& msg,
                             uint64_t cookie,
                             const std::string& client_id,
                             uint8_t qos,
                             bool retain,
                             const SubscriptionIds& ids) {
    const Token t = cookie != 0 ? open_peer_token(cookie, {}) : Token{};
    SessionPtr s = find_session(client_id);
    if (!s) {
        // Moved on from here meanwhile: its copy here relays it on (the newest copy).
        for (auto it = lingering_.rbegin(); it != lingering_.rend(); ++it) {
            if (it->session->client_id() == client_id) {
                s = it->session;
                break;
            }
        }
    }
    // Gone (ended here, not moved): nothing to store for it.
    if (s && (!s->ended || s->move)) {
        Delivery d;
        d.qos = qos;
        d.retain = retain;
        d.subscription_ids = ids;
        d.msg = msg;
        d.relayed = true;
        if (cookie != 0 && s->persistent() && depend(t)) {
            d.has_token = true;
            d.token = t;
        }
        d.session = std::move(s);
        deliver(std::move(d));
    }
    if (cookie != 0) {
        complete(t);
    }
}

void Worker::retained_changing(std::string_view topic, MessagePtr msg, int64_t expiry_at_ms) {
    auto& in_flight = broker_.retained_in_flight();
    uint64_t stamp = in_flight.put(topic, std::move(msg), expiry_at_ms);
    after_commit([&in_flight, t = std::string(topic), stamp] { in_flight.forget(t, stamp); });
}

void Worker::route(const MessagePtr& msg,
                   const Session* publisher,
                   const Token* token,
                   const GroupChoice& groups,
                   int64_t stamp) {
    auto& subs = match_scratch_;
    subs.clear();
    broker_.index().match(msg->topic(), subs, groups);
    if (!broker_.relay_stubs().empty()) {
        // Sessions that have just moved to another node: what is routed here for them is
        // relayed (SessionMove).
        broker_.relay_stubs().match(msg->topic(), subs);
    }
    if (subs.empty()) {
        return;
    }
    // MQTT 5 no-local [MQTT-3.8.3-3]: not to the publisher's own subscriptions.
    if (publisher) {
        std::erase_if(subs, [&](const Subscriber& sub) {
            return sub.options.no_local && sub.session.get() == publisher;
        });
    }
    merge_by_session(subs);
    bool store_qos0 = broker_.settings().mqueue_store_qos0.load(std::memory_order_relaxed);
    // The publisher's response waits for the batch of every persistent session's worker
    // (ResponseQueue invariant 1: deliver() adds the token to its batch first of all).
    Connection* publisher_conn = token && token->connection != kPeerConnection
                                         ? find_connection(token->connection)
                                         : nullptr;
    const bool peer_token = token && token->connection == kPeerConnection;
    for (auto& sub : subs) {
        Delivery d;
        d.qos = std::min(msg->qos, sub.options.qos);
        d.retain = sub.options.retain_as_published && msg->retain;
        d.subscription_ids = std::move(sub.subscription_ids);
        d.msg = msg;
        d.stamp = stamp;
        d.shared = sub.shared;
        if ((publisher_conn || peer_token) && sub.session->persistent() &&
            (d.qos > 0 || store_qos0) &&
            (publisher_conn ? publisher_conn->responses.depend(token->response) : depend(*token))) {
            d.has_token = true;
            d.token = *token;
        }
        uint32_t w = sub.session->worker();
        d.session = std::move(sub.session);
        if (w == index_) {
            deliver(std::move(d));
            continue;
        }
        if (outbox_.size() <= w) {
            outbox_.resize(broker_.worker_count());
        }
        outbox_[w].push_back(std::move(d));
        if (outbox_[w].size() >= kOutboxEarly) {
            // A large read: that worker starts on these while this one routes the rest.
            broker_.worker(w).push_deliveries(std::move(outbox_[w]));
            outbox_[w].clear();
        }
        if (!outbox_scheduled_) {
            outbox_scheduled_ = true;
            post([this] { send_outbox(); });  // after the rest of this turn's packets
        }
    }
    subs.clear();
}

// ---------------------------------------------------------------------------------------------
// Delivery to a session homed here
void Worker::deliver(Delivery&& d) {
    Session& s = *d.session;
    if (s.move && moving_takes(d)) {
        return;  // its token is the move's to complete
    }
    if (d.has_token) {
        // First of all, whatever happens to the delivery next (ResponseQueue invariant 1).
        commits_.add_token(d.token);
    }
    if (s.ended) {
        return;
    }
    if (d.msg->expiry_at_ms != 0 && d.msg->expiry_at_ms <= unix_ms()) {
        return;
    }
    if (acl_skips(s, d.msg->topic())) {
        return;
    }
    if (s.move && !s.move->incoming) {
        // Handed over, not moved yet: queued here, and kept to relay if the state that moves
        // was read before it was stored.
        const uint64_t seq = s.next_seq();
        Delivery kept = d;  // its token is done with here (added above)
        kept.session.reset();
        kept.has_token = false;
        s.enqueue(ctx_, std::move(d.msg), d.qos, d.retain, std::move(d.subscription_ids));
        if (s.next_seq() != seq) {
            s.move->since.emplace_back(seq, std::move(kept));
        }
        return;
    }
    s.enqueue(ctx_, std::move(d.msg), d.qos, d.retain, std::move(d.subscription_ids));
}

bool Worker::moving_takes(Delivery& d) {
    Session& s = *d.session;
    SessionMove& m = *s.move;
    auto skip = [&] {
        if (d.has_token) {
            commits_.add_token(d.token);  // nothing to store here: done with this turn
        }
        return true;
    };
    if (m.incoming) {
        if (d.relayed || d.shared) {
            return false;  // the old owner's, through it; a group's pick of this node
        }
        if (m.revision == 0) {
            m.held.push_back(std::move(d));  // decided once R is known (installed)
            return true;
        }
        if (mono_ms() >= m.until_ms) {
            s.move.reset();
            return false;
        }
        // Stamped below R: the old owner's, which relays it.
        return d.stamp < m.revision ? skip() : false;
    }
    if (!d.relayed && !d.shared && d.stamp < m.skip_below && mono_ms() < m.skip_until_ms) {
        return skip();  // the node before this one's (it relays it here, see below)
    }
    if (m.to.empty()) {
        return false;  // still handing over: queued here (deliver)
    }
    // Moved: the new owner has what is stamped R or later; the rest (and what the node before
    // relays here still) goes there from here.
    if (m.revision == 0 || (!d.relayed && !d.shared && d.stamp >= m.revision)) {
        return skip();
    }
    ClusterRouter* cluster = broker_.cluster();
    if (cluster == nullptr) {
        return skip();
    }
    // With a token, the new owner's answer completes it (its store, or a failure).
    (void)cluster->relay(m.to, s.client_id(), d.msg, d.qos, d.retain, d.subscription_ids,
                         d.has_token ? &d.token : nullptr);
    return true;
}

bool Worker::acl_skips(Session& s, std::string_view topic) {
    auto& ext = broker_.extensions();
    const uint64_t epoch = ext.acl.epoch();
    if (s.acl_marks_epoch != epoch + 1) {
        // Marks are made for the rules and the identity they were computed with: again after
        // a SUBSCRIBE, a reconnect or an ACL change (reload, another file, a plugin).
        s.acl_marks_epoch = epoch + 1;
        s.acl_marked.reset();
        auto file = ext.acl_file.load();
        if (file && !(s.connection && s.connection->superuser)) {
            auto rules = file->rules();
            auth::ClientIdentity stored;
            const auth::ClientIdentity& id = identity_of(s, stored);
            for (const auto& [filter, opts] : s.subscriptions) {
                auto shared = parse_shared(filter);
                std::string_view plain = shared ? shared->filter : std::string_view(filter);
                if (rules->overlaps_subscribe_deny(id, plain)) {
                    if (!s.acl_marked) {
                        s.acl_marked = std::make_unique<std::vector<std::string>>();
                    }
                    s.acl_marked->emplace_back(plain);
                }
            }
        }
    }
    if (!s.acl_marked) {
        return false;
    }
    bool marked = std::any_of(s.acl_marked->begin(), s.acl_marked->end(),
                              [&](const std::string& f) { return auth::topic_match(topic, f); });
    if (!marked) {
        return false;
    }
    auto file = ext.acl_file.load();
    if (!file) {
        return false;
    }
    auth::ClientIdentity stored;
    return file->rules()->denies_subscribe_topic(identity_of(s, stored), topic);
}

void Worker::send_retained(const SessionPtr& s,
                           const std::string& filter,
                           const mqtt::SubscribeOptions& opts,
                           uint32_t subscription_id) {
    if (!broker_.settings().retainer_enabled.load(std::memory_order_relaxed)) {
        return;
    }
    int64_t now = unix_ms();
    auto send = [&](std::string_view topic, std::string_view payload, uint8_t qos,
                    std::string_view properties, int64_t stored_at_ms, int64_t expiry_at_ms) {
        if (expiry_at_ms != 0 && expiry_at_ms <= now) {
            return;
        }
        Delivery d;
        d.session = s;
        d.qos = std::min(qos, opts.qos);
        d.retain = true;  // [MQTT-3.3.1-8]
        d.subscription_ids = SubscriptionIds(subscription_id);
        d.msg = make_message(MessageInit{topic,
                                         payload,
                                         qos,
                                         true,
                                         properties,
                                         {},
                                         stored_at_ms,
                                         expiry_at_ms,
                                         broker_.store().next_message_id()});
        deliver(std::move(d));
    };
    // Changes not committed yet replace what the store has for their topics; read them first,
    // so that a change committing meanwhile is found in one or the other.
    auto in_flight = broker_.retained_in_flight().matching(filter);
    auto changing = [&](std::string_view topic) {
        return std::any_of(in_flight.begin(), in_flight.end(),
                           [&](const auto& c) { return c.first == topic; });
    };
    auto st = broker_.store().match_retained(filter, [&](storage::RetainedRecord&& r) {
        if (!changing(r.topic)) {
            send(r.topic, r.payload, r.qos, r.properties, r.stored_at_ms, r.expiry_at_ms);
        }
        return true;
    });
    st.ignore();
    for (const auto& [topic, c] : in_flight) {
        if (c.msg) {
            send(topic, c.msg->payload(), c.msg->qos, c.msg->properties(), c.msg->created_at_ms,
                 c.expiry_at_ms);
        }
    }
}

}  // namespace mqttd::broker
