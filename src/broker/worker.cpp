// Worker: its construction, the inbox from other threads, the turn's commit batch and the
// ordered responses that wait for it, the periodic tick and stop. The rest of the class is in
// worker_connect.cpp (CONNECT to close), worker_auth.cpp (enhanced authentication),
// worker_packets.cpp (packets after CONNECT, subscriptions), worker_publish.cpp (publish,
// routing, delivery), worker_admin.cpp (REST views) and worker_sys.cpp ($SYS).

#include "broker/worker.h"

#include <iterator>

#include "broker/broker.h"
#include "common/clock.h"
#include "mqtt/encoder.h"

namespace mqttd::broker {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

Worker::Worker(Broker& broker, uint32_t index)
    : broker_(broker),
      index_(index),
      commits_(broker.store(),
               CommitBatch::Hooks{[this](Task t) { post(std::move(t)); },
                                  [this](Task t) { push_task(std::move(t)); },
                                  [this](const Token& t) { complete(t); },
                                  [this] {
                                      pump_waiting();
                                  }}),
      hooks_(broker.extensions()),
      ctx_{commits_, broker.store(), metrics_, broker.settings(), hooks_, waiting_commit_} {}

Worker::~Worker() = default;

// ---------------------------------------------------------------------------------------------
// Store batch of the current loop turn
void Worker::depend_on_turn(Connection& conn, const Token& t) {
    if (conn.responses.depend(t.response)) {
        commits_.add_token(t);
    }
}

void Worker::depend_on_turn(const Token& t) {
    if (depend(t)) {
        commits_.add_token(t);
    }
}

bool Worker::depend(const Token& t) {
    if (t.connection == kPeerConnection) {
        auto it = peer_pending_.find(t.response);
        if (it == peer_pending_.end()) {
            return false;
        }
        ++it->second.remaining;
        return true;
    }
    Connection* c = find_connection(t.connection);
    return c != nullptr && c->responses.depend(t.response);
}

void Worker::route_subscribed(const std::string& filter, const TopicIndex::SubscribeResult& r) {
    if (r.new_filter) {
        batch().put_route(storage::RouteRecord{filter, broker_.settings().node_name});
    }
    if (ClusterRouter* c = broker_.cluster()) {
        if (r.new_filter) {
            c->filter_added(filter);
        }
        if (r.durable_added) {
            c->filter_durable(filter, true);
        }
    }
}

void Worker::route_unsubscribed(const std::string& filter, const TopicIndex::UnsubscribeResult& r) {
    if (ClusterRouter* c = broker_.cluster()) {
        if (r.durable_gone) {
            c->filter_durable(filter, false);
        }
        if (r.filter_gone) {
            c->filter_removed(filter);
        }
    }
    if (r.filter_gone) {
        batch().delete_route(filter);
    }
}

void Worker::after_commit(Task done) {
    commits_.after_commit(std::move(done));
}

void Worker::pump_waiting() {
    auto waiting = std::move(waiting_commit_);
    waiting_commit_.clear();
    for (auto& s : waiting) {
        if (!s->ended) {
            s->pump(ctx_);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inbox
void Worker::push_deliveries(std::vector<Delivery>&& ds) {
    bool first = inbox_.push([&](InboxBatch& b) {
        if (b.deliveries.empty()) {
            b.deliveries.swap(ds);
        } else {
            std::move(ds.begin(), ds.end(), std::back_inserter(b.deliveries));
        }
    });
    if (first) {
        post([this] { drain_inbox(); });
    }
}

void Worker::send_outbox() {
    outbox_scheduled_ = false;
    for (size_t w = 0; w < outbox_.size(); ++w) {
        if (!outbox_[w].empty()) {
            broker_.worker(static_cast<uint32_t>(w)).push_deliveries(std::move(outbox_[w]));
            outbox_[w].clear();
        }
    }
}

void Worker::push_completions(std::vector<Token>&& tokens) {
    bool first = inbox_.push([&](InboxBatch& b) {
        b.completions.insert(b.completions.end(), tokens.begin(), tokens.end());
    });
    if (first) {
        post([this] { drain_inbox(); });
    }
}

void Worker::push_task(Task t) {
    bool first = inbox_.push([&](InboxBatch& b) { b.tasks.push_back(std::move(t)); });
    if (first) {
        post([this] { drain_inbox(); });
    }
}

void Worker::drain_inbox() {
    InboxBatch b = inbox_.take();
    for (auto& d : b.deliveries) {
        deliver(std::move(d));
        commits_.flush_if_store_idle();
    }
    for (const auto& t : b.completions) {
        complete(t);
    }
    for (auto& t : b.tasks) {
        t();
    }
}

// ---------------------------------------------------------------------------------------------
// Ordered responses (response_queue.h)
void Worker::hold(Connection& conn) {
    if (conn.holds++ == 0) {
        conn.link().pause();
    }
}

void Worker::release(Connection& conn) {
    if (conn.holds > 0 && --conn.holds == 0) {
        conn.link().resume();
    }
}

Token Worker::new_response(Connection& conn, PendingResponse&& r) {
    uint64_t n = conn.responses.open(std::move(r));
    if (!conn.acks_held && conn.responses.over_limit()) {
        // Backpressure: a publisher faster than the store stops being read until half of
        // its acks are out, instead of queueing without bound.
        conn.acks_held = true;
        hold(conn);
    }
    return Token{index_, false, conn.id(), n};
}

void Worker::complete(const Token& t) {
    if (t.worker != index_) {
        broker_.worker(t.worker).push_completions({t});
        return;
    }
    if (t.connection == kPeerConnection) {
        complete_peer(t);
        return;
    }
    auto it = connections_.find(t.connection);
    if (it == connections_.end()) {
        return;  // the connection went away; the client resends after reconnecting
    }
    Connection& conn = *it->second;
    if (conn.responses.complete(t.response, t.failed)) {
        send_ready_responses(conn);
    }
}

void Worker::complete_peer(const Token& t) {
    auto it = peer_pending_.find(t.response);
    if (it == peer_pending_.end() || it->second.remaining == 0) {
        return;
    }
    PeerPending& p = it->second;
    p.failed = p.failed || t.failed;
    if (--p.remaining != 0) {
        return;
    }
    const uint64_t cookie = p.cookie;
    const bool ok = !p.failed;
    auto done = std::move(p.done);
    peer_pending_.erase(it);
    if (done) {
        done(ok);
    } else if (ClusterRouter* c = broker_.cluster()) {
        c->peer_publish_done(cookie, ok);
    }
}

void Worker::send_ready_responses(Connection& conn) {
    bool wrote = false;
    conn.responses.pop_ready([&](PendingResponse& r) {
        if (!conn.closing) {
            write_response(conn, r);
            wrote = true;
        }
    });
    if (wrote) {
        conn.link().flush();
    }
    if (conn.acks_held && conn.responses.below_half()) {
        conn.acks_held = false;
        release(conn);
    }
    if (stopping_ && conn.responses.size() == 0) {
        say_goodbye(conn);
    }
}

bool Worker::store_writable() const {
    return broker_.store().health().state == storage::StoreHealth::State::Writable;
}

void Worker::refuse_unstored(Connection& conn, PendingResponse& r) {
    auto& out = conn.link().out();
    const bool v5 = conn.version == Version::V5;
    if (r.type == PacketType::Suback) {
        for (auto& reason : r.reasons) {
            if (!mqtt::is_error(reason)) {
                reason = v5 ? ReasonCode::QuotaExceeded : ReasonCode::UnspecifiedError;
            }
        }
        mqtt::encode_suback(out, conn.version, mqtt::Suback{r.packet_id, r.reasons, {}});
        metrics_.add(Metric::PacketsSuback);
        metrics_.add(Metric::PacketsSent);
        return;  // and no retained messages: the subscription was not stored
    }
    if (v5 && (r.type == PacketType::Puback || r.type == PacketType::Pubrec)) {
        mqtt::encode_ack(out, conn.version,
                         mqtt::Ack{r.type, r.packet_id, ReasonCode::QuotaExceeded, {}});
        if (conn.inbound_unacked > 0) {
            --conn.inbound_unacked;  // an error PUBACK / PUBREC ends the exchange
        }
        if (r.type == PacketType::Pubrec && conn.session) {
            conn.session->release(ctx_, r.packet_id);  // no PUBREL follows an error PUBREC
        }
        metrics_.add(r.type == PacketType::Puback ? Metric::PacketsPubackSent
                                                  : Metric::PacketsPubrecSent);
        metrics_.add(Metric::PacketsSent);
        return;
    }
    // No acknowledgement can say it: the client resends after reconnecting (3.x PUBLISH with
    // DUP; PUBREL and PUBCOMP exchanges resume from the stored state).
    if (v5) {
        mqtt::encode_disconnect(out, Version::V5, mqtt::Disconnect{ReasonCode::QuotaExceeded, {}});
        metrics_.add(Metric::PacketsSent);
    }
    close_connection(conn);
}

void Worker::write_response(Connection& conn, PendingResponse& r) {
    if (r.store_failed) {
        refuse_unstored(conn, r);
        return;
    }
    auto& out = conn.link().out();
    switch (r.type) {
        case PacketType::Puback:
        case PacketType::Pubrec:
        case PacketType::Pubrel:
        case PacketType::Pubcomp: {
            static constexpr Metric kSent[] = {Metric::PacketsPubackSent, Metric::PacketsPubrecSent,
                                               Metric::PacketsPubrelSent,
                                               Metric::PacketsPubcompSent};
            ReasonCode reason = r.reasons.empty() ? ReasonCode::Success : r.reasons[0];
            mqtt::encode_ack(out, conn.version, mqtt::Ack{r.type, r.packet_id, reason, {}});
            // The end of an inbound QoS 1/2 exchange frees a slot of the client's send quota.
            bool ends_inbound = r.type == PacketType::Puback || r.type == PacketType::Pubcomp ||
                                (r.type == PacketType::Pubrec && mqtt::is_error(reason));
            if (ends_inbound && conn.inbound_unacked > 0) {
                --conn.inbound_unacked;
            }
            metrics_.add(
                    kSent[static_cast<size_t>(r.type) - static_cast<size_t>(PacketType::Puback)]);
            break;
        }
        case PacketType::Suback:
            mqtt::encode_suback(out, conn.version, mqtt::Suback{r.packet_id, r.reasons, {}});
            metrics_.add(Metric::PacketsSuback);
            break;
        case PacketType::Unsuback:
            mqtt::encode_unsuback(out, conn.version, mqtt::Unsuback{r.packet_id, r.reasons, {}});
            metrics_.add(Metric::PacketsUnsuback);
            break;
        default:
            break;
    }
    metrics_.add(Metric::PacketsSent);
    // Retained messages of a new subscription follow its SUBACK ([MQTT-3.3.1-6]).
    for (size_t i = 0; i < r.retained_for.size(); ++i) {
        uint32_t sid = i < r.subscription_ids.size() ? r.subscription_ids[i] : 0;
        if (conn.session) {
            send_retained(conn.session, r.retained_for[i].first, r.retained_for[i].second, sid);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Periodic work and stop
void Worker::adopt_session(SessionPtr s) {
    sessions_.insert(std::move(s));
    sessions_changed();
}

void Worker::tick(int64_t now_ms) {
    int64_t mono = mono_ms();
    std::vector<Connection*> expired;
    int64_t connect_timeout_ms =
            broker_.settings().connect_timeout_s.load(std::memory_order_relaxed) * 1000;
    for (auto& [id, conn] : connections_) {
        // [MQTT-3.1.2-24]: one and a half times the keepalive without a packet closes.
        if (conn->keepalive > 0 && !conn->closing &&
            mono - conn->last_activity_ms > int64_t{conn->keepalive} * 1500) {
            expired.push_back(conn.get());
        }
        // An enhanced authentication that does not reach CONNACK in mqtt.connect_timeout.
        if (const AuthExchange* a = conn->auth();
            a && a->connect && !conn->closing && mono - a->started_ms > connect_timeout_ms) {
            expired.push_back(conn.get());
        }
    }
    for (auto* c : expired) {
        close_connection(*c);
    }
    if (now_ms - last_expiry_check_ms_ >= 1000) {
        last_expiry_check_ms_ = now_ms;
        if (!lingering_.empty()) {
            expire_lingering(mono);
        }
        std::vector<SessionPtr> gone;
        const int64_t await_rel_ms =
                broker_.settings().await_rel_timeout_s.load(std::memory_order_relaxed) * 1000;
        for (const auto& s : sessions_) {
            // mqtt.await_rel_timeout (EMQ 2.x): an inbound QoS 2 whose PUBREL does not come in
            // time is forgotten (a late PUBREL gets PUBCOMP "not found"; the message was
            // routed when it arrived).
            s->expire_awaiting_rel(ctx_, now_ms, await_rel_ms);
            if (s->online || !s->persistent()) {
                continue;
            }
            uint32_t expiry = s->expiry_s(broker_.settings());
            if (expiry != storage::kNeverExpires &&
                now_ms - s->disconnected_at_ms > int64_t{expiry} * 1000) {
                gone.push_back(s);
            }
        }
        for (auto& s : gone) {
            end_session(s);
        }
    }
    if (!delayed_wills_.empty()) {
        release_delayed_wills(nullptr, now_ms);
    }
    if (index_ == 0) {
        publish_sys(now_ms);
    }
}

void Worker::shutdown() {
    // Closing for a broker stop is not the client's failure: no wills. A connection whose acks
    // still wait for the store is closed once they are sent (send_ready_responses), so a
    // PUBACK is never lost to the stop, and none follows the DISCONNECT; net bounds the wait
    // (node.shutdown_timeout).
    stopping_ = true;
    std::vector<Connection*> idle;
    for (auto& [id, conn] : connections_) {
        if (conn->responses.size() == 0) {
            idle.push_back(conn.get());
        }
    }
    for (auto* conn : idle) {
        say_goodbye(*conn);
    }
}

void Worker::say_goodbye(Connection& conn) {
    if (conn.closing) {
        return;
    }
    // MQTT 5: DISCONNECT 0x8B, Server shutting down; never before CONNACK [MQTT-3.14.0-1].
    if (conn.version == Version::V5 && !(conn.auth() && conn.auth()->connect)) {
        mqtt::encode_disconnect(conn.link().out(), Version::V5,
                                mqtt::Disconnect{ReasonCode::ServerShuttingDown, {}});
        metrics_.add(Metric::PacketsSent);
    }
    close_connection(conn);
}

}  // namespace mqttd::broker
