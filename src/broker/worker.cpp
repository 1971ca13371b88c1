#include "broker/worker.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "common/clock.h"
#include "mqtt/decoder.h"
#include "mqtt/encoder.h"

namespace mqttd::broker {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

namespace {

uint32_t effective_expiry_s(const Session& s, const Settings& settings) {
    if (s.version == Version::V5) {
        return s.expiry_interval_s;
    }
    auto d = settings.session_expiry_s.load(std::memory_order_relaxed);
    return d <= 0 ? storage::kNeverExpires : static_cast<uint32_t>(d);
}

}  // namespace

Worker::Worker(Broker& broker, uint32_t index) : broker_(broker), index_(index) {}

Worker::~Worker() = default;

// ---------------------------------------------------------------------------------------------
// Store batch of the current loop turn

storage::WriteBatch& Worker::batch() {
    schedule_flush();
    return batch_;
}

void Worker::schedule_flush() {
    if (!flush_scheduled_) {
        flush_scheduled_ = true;
        post([this] {
            flush_scheduled_ = false;
            flush_batch();
        });
    }
}

void Worker::add_token_to_batch(const Token& t) {
    batch_tokens_.push_back(t);
    schedule_flush();
}

void Worker::flush_batch() {
    batch_messages_.clear();
    auto tokens = std::move(batch_tokens_);
    batch_tokens_.clear();
    auto callbacks = std::move(batch_callbacks_);
    batch_callbacks_.clear();
    if (batch_.empty()) {
        // Nothing stored in this turn: what waits on it is complete as it is.
        for (const auto& t : tokens) {
            complete(t);
        }
        for (auto& cb : callbacks) {
            cb();
        }
        return;
    }
    uint64_t epoch = epoch_++;
    storage::WriteBatch b = std::move(batch_);
    batch_.clear();
    // Through the inbox: the committer completes several batches of this worker per group,
    // and they wake the worker once (one post while the inbox waits to be drained).
    broker_.store().commit(std::move(b),
                           [this, epoch, tokens = std::move(tokens),
                            callbacks = std::move(callbacks)](const storage::Status& st) mutable {
                               bool ok = st.is_ok();
                               push_task([this, epoch, tokens = std::move(tokens),
                                          callbacks = std::move(callbacks), ok]() mutable {
                                   on_commit(epoch, std::move(tokens), std::move(callbacks), ok);
                               });
                           });
}

void Worker::after_commit(Task done) {
    batch_callbacks_.push_back(std::move(done));
    schedule_flush();
}

void Worker::retained_changing(std::string_view topic, MessagePtr msg, int64_t expiry_at_ms) {
    auto& in_flight = broker_.retained_in_flight();
    uint64_t stamp = in_flight.put(topic, std::move(msg), expiry_at_ms);
    after_commit([&in_flight, t = std::string(topic), stamp] { in_flight.forget(t, stamp); });
}

void Worker::on_commit(uint64_t epoch,
                       std::vector<Token>&& tokens,
                       std::vector<Task>&& callbacks,
                       bool ok) {
    if (!ok) {
        // The store refuses writes from now on (sticky error, logged by the store's owner):
        // nothing that waits on it is acknowledged.
        return;
    }
    committed_epoch_ = epoch;
    for (const auto& t : tokens) {
        complete(t);
    }
    for (auto& cb : callbacks) {
        cb();
    }
    auto waiting = std::move(waiting_commit_);
    waiting_commit_.clear();
    for (auto& s : waiting) {
        if (!s->ended) {
            pump(*s);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inbox

void Worker::push_deliveries(std::vector<Delivery>&& ds) {
    bool schedule;
    {
        std::lock_guard lock(inbox_.mutex);
        if (inbox_.deliveries.empty()) {
            inbox_.deliveries.swap(ds);
        } else {
            std::move(ds.begin(), ds.end(), std::back_inserter(inbox_.deliveries));
        }
        schedule = !inbox_.scheduled;
        inbox_.scheduled = true;
    }
    if (schedule) {
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
    bool schedule;
    {
        std::lock_guard lock(inbox_.mutex);
        inbox_.completions.insert(inbox_.completions.end(), tokens.begin(), tokens.end());
        schedule = !inbox_.scheduled;
        inbox_.scheduled = true;
    }
    if (schedule) {
        post([this] { drain_inbox(); });
    }
}

void Worker::push_task(Task t) {
    bool schedule;
    {
        std::lock_guard lock(inbox_.mutex);
        inbox_.tasks.push_back(std::move(t));
        schedule = !inbox_.scheduled;
        inbox_.scheduled = true;
    }
    if (schedule) {
        post([this] { drain_inbox(); });
    }
}

void Worker::drain_inbox() {
    std::vector<Delivery> deliveries;
    std::vector<Token> completions;
    std::vector<Task> tasks;
    {
        std::lock_guard lock(inbox_.mutex);
        deliveries.swap(inbox_.deliveries);
        completions.swap(inbox_.completions);
        tasks.swap(inbox_.tasks);
        inbox_.scheduled = false;
    }
    for (auto& d : deliveries) {
        deliver(std::move(d));
    }
    for (const auto& t : completions) {
        complete(t);
    }
    for (auto& t : tasks) {
        t();
    }
}

// ---------------------------------------------------------------------------------------------
// Ordered responses

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
    r.remaining = 1;  // released by the caller's complete() once everything is scheduled
    conn.responses.push_back(std::move(r));
    if (!conn.acks_held && conn.responses.size() >= kMaxWaitingAcks) {
        // Backpressure: a publisher faster than the store stops being read until half of
        // its acks are out, instead of queueing without bound.
        conn.acks_held = true;
        hold(conn);
    }
    return Token{index_, conn.id(), conn.responses_base + conn.responses.size() - 1};
}

void Worker::complete(const Token& t) {
    if (t.worker != index_) {
        broker_.worker(t.worker).push_completions({t});
        return;
    }
    auto it = connections_.find(t.connection);
    if (it == connections_.end()) {
        return;  // the connection went away; the client resends after reconnecting
    }
    Connection& conn = *it->second;
    if (t.response < conn.responses_base ||
        t.response - conn.responses_base >= conn.responses.size()) {
        return;
    }
    auto& r = conn.responses[t.response - conn.responses_base];
    if (r.remaining > 0) {
        --r.remaining;
    }
    send_ready_responses(conn);
}

void Worker::send_ready_responses(Connection& conn) {
    bool wrote = false;
    while (!conn.responses.empty() && conn.responses.front().remaining == 0) {
        PendingResponse r = std::move(conn.responses.front());
        conn.responses.pop_front();
        ++conn.responses_base;
        if (!conn.closing) {
            write_response(conn, r);
            wrote = true;
        }
    }
    if (wrote) {
        conn.link().flush();
    }
    if (conn.acks_held && conn.responses.size() <= kMaxWaitingAcks / 2) {
        conn.acks_held = false;
        release(conn);
    }
}

void Worker::write_response(Connection& conn, PendingResponse& r) {
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
// Connect and close

SessionPtr Worker::find_session(std::string_view client_id) {
    auto it = sessions_.find(client_id);
    return it == sessions_.end() ? nullptr : *it;
}

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
    if (c.properties.authentication_method) {
        // MQTT 5 enhanced authentication: no method is supported, so CONNACK 0x8C and close
        // [MQTT-4.12.0-1] (accepting would let the client believe it authenticated).
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
            static_cast<uint8_t>(c.version)};
    // The authentication chain answers at once (local tables, anonymous rules) or later from
    // its pool (password hashing, HTTP): then the link waits, paused, for the answer.
    uint64_t key = ++next_pending_connect_;
    bool anonymous = settings.allow_anonymous.load(std::memory_order_relaxed);
    auto decision = decide(
            [&](auth::DecisionCallback cb) {
                broker_.extensions().auth.authenticate(identity, anonymous, std::move(cb));
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
    } else {
        p.link->refuse(outcome.refusal);
    }
}

ConnectOutcome Worker::conclude_connect(Link& link,
                                        mqtt::Connect&& c,
                                        auth::ClientIdentity&& identity,
                                        bool assigned,
                                        const auth::Decision& d) {
    if (d.verdict != auth::Verdict::Allow) {
        broker_.extensions().auth_refused.fetch_add(1, std::memory_order_relaxed);
        if (d.error) {
            spdlog::warn("client {} from {} refused: {}", c.client_id, link.peer_ip(), d.reason);
        }
        // A provider that knew the name and refused the password: bad user name or password
        // (4 / 0x86); no credentials anyone accepts: not authorized (5 / 0x87).
        bool bad_password = d.verdict == auth::Verdict::Deny && !d.error &&
                            c.password.has_value() && !d.anonymous_rule;
        return {ConnectResult::Refused, bad_password ? ConnectRefusal::BadUserNameOrPassword
                                                     : ConnectRefusal::NotAuthorized};
    }

    int64_t now = unix_ms();
    auto conn_ptr = std::make_unique<Connection>(broker_.next_connection_id(), &link);
    Connection& conn = *conn_ptr;
    conn.version = c.version;
    conn.clean_start = c.clean_start;
    conn.keepalive = c.keepalive;
    conn.receive_maximum = c.properties.receive_maximum.value_or(0);
    conn.max_packet_size = c.properties.maximum_packet_size.value_or(0);
    if (c.will) {
        conn.will = std::make_unique<mqtt::Will>(std::move(*c.will));
    }
    conn.connected_at_ms = now;
    conn.last_activity_ms = mono_ms();
    conn.superuser = d.superuser;
    identity.password.reset();  // not kept past authentication
    conn.identity = std::move(identity);

    bool persistent;
    uint32_t expiry = 0;
    if (c.version == Version::V5) {
        expiry = c.properties.session_expiry_interval.value_or(0);
        persistent = expiry > 0;
    } else {
        persistent = !c.clean_start;
    }

    SessionPtr session = find_session(c.client_id);
    if (session && session->connection) {
        // Takeover [MQTT-3.1.4-2]: the existing connection is closed; its will is published
        // as for any close the client did not ask for.
        Connection& old = *session->connection;
        detach(old);
        old.session = nullptr;
        close_connection(old);
        session = find_session(c.client_id);
    }
    bool resumed = false;
    if (session) {
        if (c.clean_start || !persistent || !session->persistent()) {
            end_session(session);
            session = nullptr;
        } else {
            resumed = true;
        }
    }
    if (!session) {
        session = std::make_shared<Session>(c.client_id, index_, persistent);
        session->created_at_ms = now;
        sessions_.insert(session);
        sessions_count_.store(sessions_.size(), std::memory_order_relaxed);
        if (!persistent) {
            clean_sessions_count_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    session->version = c.version;
    session->username = conn.username();
    session->expiry_interval_s = expiry;

    mqtt::Connack ack{resumed, ReasonCode::Success, {}};
    if (c.version == Version::V5) {
        ack.properties.topic_alias_maximum = kTopicAliasMaximum;
        if (!broker_.settings().retainer_enabled.load(std::memory_order_relaxed)) {
            ack.properties.retain_available = 0;  // the emq_retainer plugin is stopped
            conn.retain_unavailable = true;
        }
        if (assigned) {
            ack.properties.assigned_client_identifier = c.client_id;
        }
    }
    mqtt::encode_connack(link.out(), c.version, ack);
    metrics_.add(Metric::PacketsConnack);
    metrics_.add(Metric::PacketsSent);
    link.flush();

    connections_.emplace(conn.id(), std::move(conn_ptr));
    connections_count_.store(connections_.size(), std::memory_order_relaxed);
    link.attach(&conn);
    attach(conn, session, resumed);
    if (persistent) {
        store_session(*session);
    }
    on_connected_extensions(conn, !resumed);
    return {ConnectResult::Accepted};
}

void Worker::publish_from_broker(std::string_view topic, std::string_view payload, uint8_t qos) {
    publish(make_message(MessageInit{topic,
                                     payload,
                                     qos,
                                     false,
                                     {},
                                     {},
                                     unix_ms(),
                                     0,
                                     broker_.store().next_message_id()}),
            nullptr, nullptr);
}

void Worker::on_closed_extensions(Connection& conn, bool session_ended) {
    auto& ext = broker_.extensions();
    const char* reason = conn.disconnect_received ? "normal" : "closed";
    if (ext.modules_on.load(std::memory_order_relaxed) && !stopping_) {
        if (auto m = ext.modules.load(); m && m->presence_enabled()) {
            auto pm = m->disconnected(conn.identity, reason, unix_ms() / 1000);
            publish_from_broker(pm.topic, pm.payload, pm.qos);
        }
    }
    if (ext.web_hook_on.load(std::memory_order_relaxed)) {
        emit_client_hooks(conn,
                          {{auth::HookEvent::ClientDisconnected, true},
                           {auth::HookEvent::SessionTerminated, session_ended}},
                          reason);
    }
}

void Worker::on_connected_extensions(Connection& conn, bool new_session) {
    auto& ext = broker_.extensions();
    if (ext.modules_on.load(std::memory_order_relaxed)) {
        if (auto m = ext.modules.load()) {
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
                auto pm = m->connected(conn.identity, !conn.session->persistent(), 0,
                                       unix_ms() / 1000);
                publish_from_broker(pm.topic, pm.payload, pm.qos);
            }
        }
    }
    if (ext.web_hook_on.load(std::memory_order_relaxed)) {
        emit_client_hooks(conn,
                          {{auth::HookEvent::ClientConnected, true},
                           {auth::HookEvent::SessionCreated, new_session}},
                          "");
    }
}

void Worker::emit_client_hooks(const Connection& conn,
                               std::initializer_list<std::pair<auth::HookEvent, bool>> events,
                               const char* reason) {
    auto hook = broker_.extensions().web_hook.load();
    if (!hook) {
        return;
    }
    auth::HookEventData e;
    e.client_id = conn.client_id();
    e.username = conn.username();
    e.reason = reason;
    for (const auto& [event, on] : events) {
        if (on && hook->wants(event)) {
            e.event = event;
            hook->emit(e);
        }
    }
}

void Worker::store_session(const Session& s) {
    storage::SessionRecord r;
    r.client_id = s.client_id();
    r.protocol_level = static_cast<uint8_t>(s.version);
    r.expiry_interval_s = s.version == Version::V5 ? s.expiry_interval_s : 0;
    r.created_at_ms = s.created_at_ms;
    r.disconnected_at_ms = s.online ? 0 : s.disconnected_at_ms;
    r.max_inflight =
            static_cast<uint16_t>(broker_.settings().max_inflight.load(std::memory_order_relaxed));
    r.deliver_msg = s.queue_if_any() ? s.queue_if_any()->deliver_msg : 0;
    r.username = s.username;
    batch().put_session(std::move(r));
}

void Worker::attach(Connection& conn, const SessionPtr& s, bool resumed) {
    conn.session = s;
    s->connection = &conn;
    s->online = true;
    // Back before the Will Delay Interval passed: the will is not sent [MQTT-3.1.3-9].
    std::erase_if(delayed_wills_, [&](const DelayedWill& d) { return d.session == s; });
    if (resumed) {
        resend_inflight(*s);
    }
    pump(*s);
}

void Worker::detach(Connection& conn) {
    SessionPtr s = conn.session;
    if (!s) {
        return;
    }
    // The will goes out on any close the client did not ask for ([MQTT-3.1.2-8]), never
    // after DISCONNECT ([MQTT-3.1.2-10]).
    if (conn.will && !conn.disconnect_received && !stopping_) {
        // MQTT 5: after the Will Delay Interval, or when the session ends if that comes
        // first; a session that ends with this connection publishes it now [MQTT-3.1.3-9].
        uint32_t delay = conn.will->properties.will_delay_interval.value_or(0);
        if (delay > 0 && s->persistent()) {
            delayed_wills_.push_back(
                    DelayedWill{s, std::move(conn.will), unix_ms() + int64_t{delay} * 1000});
        } else {
            publish(will_message(*conn.will, conn.client_id()), s.get(), nullptr);
            conn.will.reset();
        }
    }
    s->connection = nullptr;
    s->online = false;
    s->disconnected_at_ms = unix_ms();
    conn.session = nullptr;
    if (s->persistent()) {
        store_session(*s);
    } else {
        end_session(s);
    }
}

MessagePtr Worker::will_message(const mqtt::Will& w, const std::string& client_id) {
    int64_t now = unix_ms();
    std::string properties;
    int64_t expiry_at_ms = 0;
    if (!w.properties.empty()) {
        mqtt::Properties p = w.properties;
        p.will_delay_interval.reset();  // a will property, not a PUBLISH one
        mqtt::encode_properties_body(properties, p);
        if (p.message_expiry_interval) {
            expiry_at_ms = now + int64_t{*p.message_expiry_interval} * 1000;
        }
    }
    return make_message(MessageInit{w.topic, w.payload, w.qos, w.retain, properties, client_id, now,
                                    expiry_at_ms, broker_.store().next_message_id()});
}

void Worker::release_delayed_wills(const Session* s, int64_t due_by_ms) {
    for (size_t i = 0; i < delayed_wills_.size();) {
        auto& d = delayed_wills_[i];
        if (d.session.get() != s && d.due_ms > due_by_ms) {
            ++i;
            continue;
        }
        DelayedWill taken = std::move(d);
        delayed_wills_.erase(delayed_wills_.begin() + static_cast<ptrdiff_t>(i));
        publish(will_message(*taken.will, taken.session->client_id()), taken.session.get(),
                nullptr);
    }
}

void Worker::end_session(const SessionPtr& s) {
    if (!delayed_wills_.empty()) {
        release_delayed_wills(s.get(), std::numeric_limits<int64_t>::min());
    }
    s->ended = true;
    s->online = false;
    for (const auto& [filter, opts] : s->subscriptions) {
        auto r = broker_.index().unsubscribe(s.get(), filter);
        if (r.filter_gone) {
            batch().delete_route(filter);
        }
    }
    s->subscriptions.clear();
    if (s->persistent()) {
        batch().delete_session(s->client_id());
    }
    if (SessionQueue* q = s->queue_if_any()) {
        q->pending.clear();
        q->inflight.clear();
    }
    if (auto it = sessions_.find(s->client_id()); it != sessions_.end()) {
        if (!(*it)->persistent()) {
            clean_sessions_count_.fetch_sub(1, std::memory_order_relaxed);
        }
        sessions_.erase(it);
    }
    sessions_count_.store(sessions_.size(), std::memory_order_relaxed);
}

void Worker::close_connection(Connection& conn) {
    if (!conn.closing) {
        conn.closing = true;
        conn.link().close();
    }
}

void Worker::on_closed(Connection& conn) {
    bool ended = conn.session && !conn.session->persistent();
    bool had_session = conn.session != nullptr;
    detach(conn);
    if (had_session) {
        on_closed_extensions(conn, ended);
    }
    connections_.erase(conn.id());
    connections_count_.store(connections_.size(), std::memory_order_relaxed);
}

void Worker::shutdown() {
    // Closing for a broker stop is not the client's failure: no wills.
    stopping_ = true;
    for (auto& [id, conn] : connections_) {
        close_connection(*conn);
    }
}

bool Worker::kick(std::string_view client_id) {
    auto s = find_session(client_id);
    if (!s || !s->connection) {
        return false;
    }
    close_connection(*s->connection);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Admin

namespace {

ClientView client_view_of(const Connection& conn) {
    return ClientView{conn.client_id(),
                      conn.username(),
                      conn.identity.ip,
                      conn.identity.port,
                      !conn.session->persistent(),
                      static_cast<uint8_t>(conn.version),
                      conn.keepalive,
                      conn.connected_at_ms,
                      conn.id(),
                      conn.link().transport()};
}

}  // namespace

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
    v.mqueue_len = s->queue_len();
    if (const SessionQueue* q = s->queue_if_any()) {
        v.inflight_len = q->inflight.size();
        v.mqueue_dropped = q->mqueue_dropped;
        v.awaiting_rel_len = q->awaiting_rel.size();
        v.deliver_msg = q->deliver_msg;
        v.enqueue_msg = q->enqueue_msg;
    }
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

bool Worker::admin_unsubscribe(const std::string& client_id, const std::string& filter) {
    auto s = find_session(client_id);
    if (!s) {
        return false;
    }
    remove_subscription(s, filter);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Periodic work

void Worker::adopt_session(SessionPtr s) {
    sessions_.insert(std::move(s));
    sessions_count_.store(sessions_.size(), std::memory_order_relaxed);
}

void Worker::tick(int64_t now_ms) {
    int64_t mono = mono_ms();
    std::vector<Connection*> expired;
    for (auto& [id, conn] : connections_) {
        // [MQTT-3.1.2-24]: one and a half times the keepalive without a packet closes.
        if (conn->keepalive > 0 && !conn->closing &&
            mono - conn->last_activity_ms > int64_t{conn->keepalive} * 1500) {
            expired.push_back(conn.get());
        }
    }
    for (auto* c : expired) {
        close_connection(*c);
    }
    if (now_ms - last_expiry_check_ms_ >= 1000) {
        last_expiry_check_ms_ = now_ms;
        std::vector<SessionPtr> gone;
        for (const auto& s : sessions_) {
            if (s->online || !s->persistent()) {
                continue;
            }
            uint32_t expiry = effective_expiry_s(*s, broker_.settings());
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

void Worker::publish_sys(int64_t now_ms) {
    int64_t interval = broker_.settings().sys_interval_s.load(std::memory_order_relaxed);
    if (interval <= 0 || now_ms - last_sys_ms_ < interval * 1000) {
        return;
    }
    last_sys_ms_ = now_ms;
    const auto& settings = broker_.settings();
    std::string prefix = "$SYS/brokers/" + settings.node_name + "/";
    auto emit = [&](const std::string& topic, const std::string& payload) {
        publish_from_broker(topic, payload, 0);
    };
    emit(prefix + "version", settings.version);
    emit(prefix + "sysdescr", "mqttd MQTT broker");
    emit(prefix + "uptime", std::to_string((now_ms - broker_.started_at_ms()) / 1000) + " seconds");
    std::time_t t = now_ms / 1000;
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    emit(prefix + "datetime", buf);
    for (const auto& [name, value] : broker_.stats()) {
        emit(prefix + "stats/" + name, std::to_string(value));
    }
    auto m = broker_.metrics_snapshot();
    for (size_t i = 0; i < kMetricCount; ++i) {
        emit(prefix + "metrics/" + std::string(kMetricNames[i]), std::to_string(m[i]));
    }
}

}  // namespace mqttd::broker
