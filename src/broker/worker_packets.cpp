// Worker: the packets of a connected client other than PUBLISH (worker_publish.cpp) and AUTH
// (worker_auth.cpp): dispatch, acknowledgements, SUBSCRIBE and UNSUBSCRIBE.

#include "broker/broker.h"
#include "broker/worker.h"
#include "common/clock.h"
#include "mqtt/decoder.h"
#include "mqtt/encoder.h"

namespace mqttd::broker {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

ReasonCode Worker::on_packet(Connection& conn, mqtt::Packet& packet) {
    conn.last_activity_ms = mono_ms();
    metrics_.add(Metric::PacketsReceived);
    if (conn.closing) {
        return ReasonCode::Success;
    }
    // Stopping: no new work, so no PUBACK after the DISCONNECT; an unacknowledged PUBLISH is
    // resent by the client. A subscriber's ack still ends its message's delivery.
    if (stopping_ && !std::holds_alternative<mqtt::Ack>(packet)) {
        return ReasonCode::Success;
    }
    if (conn.auth() && conn.auth()->connect) {
        return continue_connect_auth(conn, packet);  // before CONNACK: AUTH or DISCONNECT only
    }
    if (auto* p = std::get_if<mqtt::Publish>(&packet)) {
        ReasonCode rc = handle_publish(conn, *p);
        commits_.flush_if_store_idle();
        return rc;
    }
    if (auto* a = std::get_if<mqtt::Ack>(&packet)) {
        return handle_ack(conn, *a);
    }
    if (auto* s = std::get_if<mqtt::Subscribe>(&packet)) {
        return handle_subscribe(conn, *s);
    }
    if (auto* u = std::get_if<mqtt::Unsubscribe>(&packet)) {
        return handle_unsubscribe(conn, *u);
    }
    if (std::holds_alternative<mqtt::Pingreq>(packet)) {
        metrics_.add(Metric::PacketsPingreq);
        mqtt::encode_pingresp(conn.link().out());
        metrics_.add(Metric::PacketsPingresp);
        metrics_.add(Metric::PacketsSent);
        conn.link().flush();
        return ReasonCode::Success;
    }
    if (auto* d = std::get_if<mqtt::Disconnect>(&packet)) {
        metrics_.add(Metric::PacketsDisconnect);
        const auto& expiry = d->properties.session_expiry_interval;
        if (conn.version == Version::V5 && expiry && conn.session) {
            if (conn.connect_expiry_zero && *expiry != 0) {
                // [MQTT-3.14.2-2]: a CONNECT with Session Expiry 0 cannot be given an expiry
                // here (a Protocol Error: the will goes out, as for any error).
                return ReasonCode::ProtocolError;
            }
            conn.session->expiry_interval_s = *expiry;
        }
        // MQTT 5: reason 0x04 asks for the will to be published all the same.
        conn.disconnect_received = d->reason != ReasonCode::DisconnectWithWill;
        close_connection(conn);
        return ReasonCode::Success;
    }
    if (auto* a = std::get_if<mqtt::Auth>(&packet)) {
        return handle_auth(conn, *a);
    }
    if (std::holds_alternative<mqtt::Connect>(packet)) {
        return ReasonCode::ProtocolError;  // [MQTT-3.1.0-2]: a second CONNECT
    }
    return ReasonCode::ProtocolError;
}

ReasonCode Worker::handle_ack(Connection& conn, const mqtt::Ack& a) {
    Session& s = *conn.session;
    switch (a.type) {
        case PacketType::Puback:
            metrics_.add(Metric::PacketsPubackReceived);
            if (!s.on_puback(ctx_, a.packet_id)) {
                metrics_.add(Metric::PacketsPubackMissed);
            }
            return ReasonCode::Success;
        case PacketType::Pubrec: {
            metrics_.add(Metric::PacketsPubrecReceived);
            auto rec = s.on_pubrec(ctx_, a.packet_id, a.reason);
            if (rec == Session::Pubrec::Ended) {
                return ReasonCode::Success;
            }
            PendingResponse r = response_for(PacketType::Pubrel, a.packet_id);
            if (rec == Session::Pubrec::Missed) {
                metrics_.add(Metric::PacketsPubrecMissed);
                if (conn.version == Version::V5) {
                    r.reasons.push_back(ReasonCode::PacketIdentifierNotFound);
                }
            }
            Token t = new_response(conn, std::move(r));
            if (rec == Session::Pubrec::ReleaseAfterCommit) {
                depend_on_turn(conn, t);
            }
            complete(t);
            return ReasonCode::Success;
        }
        case PacketType::Pubcomp:
            metrics_.add(Metric::PacketsPubcompReceived);
            if (!s.on_pubcomp(ctx_, a.packet_id)) {
                metrics_.add(Metric::PacketsPubcompMissed);
            }
            return ReasonCode::Success;
        case PacketType::Pubrel: {
            metrics_.add(Metric::PacketsPubrelReceived);
            PendingResponse r = response_for(PacketType::Pubcomp, a.packet_id);
            bool released = s.release(ctx_, a.packet_id);
            if (!released) {
                metrics_.add(Metric::PacketsPubrelMissed);
                if (conn.version == Version::V5) {
                    r.reasons.push_back(ReasonCode::PacketIdentifierNotFound);
                }
            }
            Token t = new_response(conn, std::move(r));
            if (released && s.persistent()) {
                depend_on_turn(conn, t);  // PUBCOMP once the inbound state is deleted
            }
            complete(t);
            return ReasonCode::Success;
        }
        default:
            return ReasonCode::ProtocolError;
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions
ReasonCode Worker::handle_subscribe(Connection& conn, mqtt::Subscribe& sub) {
    metrics_.add(Metric::PacketsSubscribe);
    auto& ext = broker_.extensions();
    if (auto m = hooks_.modules()) {
        for (auto& [filter, opts] : sub.topics) {
            if (auto r = m->rewrite(filter)) {
                filter = std::move(*r);
            }
        }
    }
    std::vector<bool> allowed(sub.topics.size(), true);
    if (conn.superuser) {
        finish_subscribe(conn, sub, allowed);
        return ReasonCode::Success;
    }
    // Each filter is checked (not cached); answers from elsewhere (HTTP) are gathered on this
    // worker while the link waits, paused.
    struct Gather {
        mqtt::Subscribe sub;
        std::vector<bool> allowed;
        size_t remaining = 0;
    };
    auto gather = std::make_shared<Gather>();
    size_t pending = 0;
    uint64_t id = conn.id();
    bool nomatch = ext.acl_nomatch_allow.load(std::memory_order_relaxed);
    for (size_t i = 0; i < sub.topics.size(); ++i) {
        const std::string& filter = sub.topics[i].first;
        if (!mqtt::valid_subscription_filter(filter, conn.version)) {
            continue;  // refused as invalid in the SUBACK
        }
        // A shared subscription is authorised for the topics it receives, as a plain one.
        auto shared = parse_shared(filter);
        std::string_view acl_filter = shared ? shared->filter : std::string_view(filter);
        auto d = decide(
                [&](auth::DecisionCallback cb) {
                    ext.acl.check(conn.identity, false, auth::Access::Subscribe, acl_filter,
                                  nomatch, std::move(cb));
                },
                [this, id, gather, i](auth::Decision dd) {
                    gather->allowed[i] = dd.verdict == auth::Verdict::Allow;
                    if (--gather->remaining > 0) {
                        return;
                    }
                    auto it = connections_.find(id);
                    if (it == connections_.end()) {
                        return;
                    }
                    Connection& c = *it->second;
                    if (!c.closing && c.session) {
                        finish_subscribe(c, gather->sub, gather->allowed);
                    }
                    release(c);
                });
        if (d) {
            allowed[i] = d->verdict == auth::Verdict::Allow;
        } else {
            ++pending;
        }
    }
    if (pending == 0) {
        finish_subscribe(conn, sub, allowed);
        return ReasonCode::Success;
    }
    gather->allowed = std::move(allowed);
    gather->sub = std::move(sub);
    gather->remaining = pending;
    hold(conn);
    return ReasonCode::Success;
}

void Worker::finish_subscribe(Connection& conn,
                              mqtt::Subscribe& sub,
                              const std::vector<bool>& allowed) {
    const SessionPtr& s = conn.session;
    PendingResponse r = response_for(PacketType::Suback, sub.packet_id);
    if (s->persistent() && !store_writable()) {
        // The subscriptions could not be stored: refused, nothing changed (MQTT 5 0x97).
        r.reasons.assign(sub.topics.size(), ReasonCode::Success);
        r.store_failed = true;
        complete(new_response(conn, std::move(r)));
        return;
    }
    uint32_t sid = sub.properties.subscription_identifiers.empty()
                           ? 0
                           : sub.properties.subscription_identifiers.front();
    bool wait = false;
    for (size_t i = 0; i < sub.topics.size(); ++i) {
        auto& [filter, opts] = sub.topics[i];
        if (!mqtt::valid_subscription_filter(filter, conn.version)) {
            r.reasons.push_back(conn.version == Version::V5 ? ReasonCode::TopicFilterInvalid
                                                            : ReasonCode::UnspecifiedError);
            continue;
        }
        if (!allowed[i]) {
            metrics_.add(Metric::MessagesAclDenied);
            broker_.extensions().acl_denied_subscribe.fetch_add(1, std::memory_order_relaxed);
            r.reasons.push_back(conn.version == Version::V5 ? ReasonCode::NotAuthorized
                                                            : ReasonCode::UnspecifiedError);
            continue;
        }
        bool existed = add_subscription(s, filter, opts, sid);
        wait = wait || s->persistent();
        r.reasons.push_back(static_cast<ReasonCode>(opts.qos));
        // Retained messages on every SUBSCRIBE, a repeated one included ([MQTT-3.3.1-6]);
        // MQTT 5 retain handling 1 = only for a new subscription, 2 = never; none for a shared
        // subscription (MQTT 5 4.8.2).
        if ((opts.retain_handling == 0 || (opts.retain_handling == 1 && !existed)) &&
            !parse_shared(filter)) {
            r.retained_for.emplace_back(filter, opts);
            r.subscription_ids.push_back(sid);
        }
        hooks_.message(auth::HookEvent::ClientSubscribe, conn, filter, nullptr, opts.qos);
    }
    Token t = new_response(conn, std::move(r));
    if (wait) {
        depend_on_turn(conn, t);  // SUBACK after the subscription is stored (contract 2)
    }
    complete(t);
}

ReasonCode Worker::handle_unsubscribe(Connection& conn, mqtt::Unsubscribe& u) {
    metrics_.add(Metric::PacketsUnsubscribe);
    const SessionPtr& s = conn.session;
    PendingResponse r = response_for(PacketType::Unsuback, u.packet_id);
    bool wait = false;
    auto modules = hooks_.modules();
    for (auto& filter : u.topics) {
        if (modules) {
            if (auto rewritten = modules->rewrite(filter)) {
                filter = std::move(*rewritten);
            }
        }
        hooks_.message(auth::HookEvent::ClientUnsubscribe, conn, filter, nullptr);
        bool existed = remove_subscription(s, filter);
        wait = wait || (existed && s->persistent());
        if (conn.version == Version::V5) {
            r.reasons.push_back(existed ? ReasonCode::Success : ReasonCode::NoSubscriptionExisted);
        }
    }
    Token t = new_response(conn, std::move(r));
    if (wait) {
        depend_on_turn(conn, t);
    }
    complete(t);
    return ReasonCode::Success;
}

bool Worker::add_subscription(const SessionPtr& s,
                              const std::string& filter,
                              const mqtt::SubscribeOptions& opts,
                              uint32_t subscription_id) {
    auto res = broker_.index().subscribe(s, filter, opts, subscription_id);
    route_subscribed(filter, res);
    s->subscriptions[filter] = opts;
    s->acl_marks_epoch = 0;  // marks again at the next delivery
    if (s->persistent()) {
        batch().put_subscription(storage::SubscriptionRecord{
                s->client_id(), filter, opts.qos, opts.no_local, opts.retain_as_published,
                opts.retain_handling, subscription_id});
    }
    return res.existed;
}

bool Worker::remove_subscription(const SessionPtr& s, const std::string& filter) {
    auto res = broker_.index().unsubscribe(s.get(), filter);
    route_unsubscribed(filter, res);
    bool existed = s->subscriptions.erase(filter) != 0;
    s->acl_marks_epoch = 0;
    if (existed && s->persistent()) {
        batch().delete_subscription(s->client_id(), filter);
    }
    return existed;
}

}  // namespace mqttd::broker
