#include "broker/worker.h"

#include <algorithm>

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

storage::MessageRecord to_record(const Message& m) {
    storage::MessageRecord r;
    r.id = m.store_id;
    r.topic.assign(m.topic());
    r.payload.assign(m.payload());
    r.qos = m.qos;
    r.retain = m.retain;
    r.properties = m.properties;
    r.from_client = m.from_client;
    r.created_at_ms = m.created_at_ms;
    r.expiry_at_ms = m.expiry_at_ms;
    return r;
}

uint32_t effective_expiry_s(const Session& s, const Settings& settings) {
    if (s.version == Version::V5) {
        return s.expiry_interval_s;
    }
    auto d = settings.session_expiry_s.load(std::memory_order_relaxed);
    return d <= 0 ? storage::kNeverExpires : static_cast<uint32_t>(d);
}

PendingResponse response_for(PacketType type, uint16_t packet_id) {
    PendingResponse r;
    r.type = type;
    r.packet_id = packet_id;
    return r;
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
    broker_.store().commit(std::move(b), [this, epoch, tokens = std::move(tokens),
                                          callbacks = std::move(callbacks)](
                                                 const storage::Status& st) mutable {
        bool ok = st.is_ok();
        post([this, epoch, tokens = std::move(tokens), callbacks = std::move(callbacks),
              ok]() mutable { on_commit(epoch, std::move(tokens), std::move(callbacks), ok); });
    });
}

void Worker::after_commit(Task done) {
    batch_callbacks_.push_back(std::move(done));
    schedule_flush();
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

void Worker::push_delivery(Delivery&& d) {
    bool schedule;
    {
        std::lock_guard lock(inbox_.mutex);
        inbox_.deliveries.push_back(std::move(d));
        schedule = !inbox_.scheduled;
        inbox_.scheduled = true;
    }
    if (schedule) {
        post([this] { drain_inbox(); });
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

Token Worker::new_response(Connection& conn, PendingResponse&& r) {
    r.remaining = 1;  // released by the caller's complete() once everything is scheduled
    conn.responses.push_back(std::move(r));
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
}

void Worker::write_response(Connection& conn, PendingResponse& r) {
    auto& out = conn.link().out();
    switch (r.type) {
        case PacketType::Puback:
            mqtt::encode_ack(out, conn.version, mqtt::Ack{r.type, r.packet_id, {}, {}});
            metrics_.add(Metric::PacketsPubackSent);
            break;
        case PacketType::Pubrec:
            mqtt::encode_ack(out, conn.version, mqtt::Ack{r.type, r.packet_id, {}, {}});
            metrics_.add(Metric::PacketsPubrecSent);
            break;
        case PacketType::Pubrel:
            mqtt::encode_ack(out, conn.version,
                             mqtt::Ack{r.type,
                                       r.packet_id,
                                       r.reasons.empty() ? ReasonCode::Success : r.reasons[0],
                                       {}});
            metrics_.add(Metric::PacketsPubrelSent);
            break;
        case PacketType::Pubcomp:
            mqtt::encode_ack(out, conn.version,
                             mqtt::Ack{r.type,
                                       r.packet_id,
                                       r.reasons.empty() ? ReasonCode::Success : r.reasons[0],
                                       {}});
            metrics_.add(Metric::PacketsPubcompSent);
            break;
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
    auto it = sessions_.find(std::string(client_id));
    return it == sessions_.end() ? nullptr : it->second;
}

Connection* Worker::on_connect(Link& link, mqtt::Connect&& c) {
    metrics_.add(Metric::PacketsConnect);
    metrics_.add(Metric::PacketsReceived);
    auto& settings = broker_.settings();

    auto refuse = [&](ReasonCode rc) -> Connection* {
        mqtt::encode_connack(link.out(), c.version, mqtt::Connack{false, rc, {}});
        metrics_.add(Metric::PacketsConnack);
        metrics_.add(Metric::PacketsSent);
        link.close();
        return nullptr;
    };

    if (c.client_id.empty()) {
        // [MQTT-3.1.3-8]: a zero-byte client id with CleanSession = 0 is refused with code 2.
        if (!c.clean_start && c.version != Version::V5) {
            return refuse(ReasonCode::ClientIdentifierNotValid);
        }
        if (c.version == Version::V31) {
            return refuse(ReasonCode::ClientIdentifierNotValid);  // 3.1 requires 1-23 chars
        }
    }
    if (c.client_id.size() > settings.max_clientid_len.load(std::memory_order_relaxed)) {
        return refuse(ReasonCode::ClientIdentifierNotValid);
    }
    if (!c.username && !settings.allow_anonymous.load(std::memory_order_relaxed)) {
        return refuse(ReasonCode::NotAuthorized);
    }
    bool assigned = false;
    if (c.client_id.empty()) {
        c.client_id = broker_.assign_client_id(index_);
        assigned = true;
    }

    int64_t now = unix_ms();
    auto conn_ptr = std::make_unique<Connection>(broker_.next_connection_id(), &link);
    Connection& conn = *conn_ptr;
    conn.version = c.version;
    conn.client_id = c.client_id;
    conn.username = c.username.value_or("");
    conn.clean_start = c.clean_start;
    conn.keepalive = c.keepalive;
    conn.will = std::move(c.will);
    conn.connected_at_ms = now;
    conn.last_activity_ms = mono_ms();

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
        sessions_.emplace(c.client_id, session);
        sessions_count_.store(sessions_.size(), std::memory_order_relaxed);
    }
    session->version = c.version;
    session->username = conn.username;
    session->expiry_interval_s = expiry;

    mqtt::Connack ack{resumed, ReasonCode::Success, {}};
    if (c.version == Version::V5 && assigned) {
        ack.properties.assigned_client_identifier = c.client_id;
    }
    mqtt::encode_connack(link.out(), c.version, ack);
    metrics_.add(Metric::PacketsConnack);
    metrics_.add(Metric::PacketsSent);
    link.flush();

    connections_.emplace(conn.id(), std::move(conn_ptr));
    connections_count_.store(connections_.size(), std::memory_order_relaxed);
    broker_.clients().add(
            ClientView{conn.client_id, conn.username, link.peer_ip(), link.peer_port(), !persistent,
                       static_cast<uint8_t>(conn.version), conn.keepalive, now, conn.id()});
    attach(conn, session, resumed);
    if (persistent) {
        store_session(*session);
    }
    return &conn;
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
    r.deliver_msg = s.deliver_msg;
    r.username = s.username;
    batch().put_session(std::move(r));
}

void Worker::attach(Connection& conn, const SessionPtr& s, bool resumed) {
    conn.session = s;
    s->connection = &conn;
    s->online = true;
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
    if (conn.will && !conn.disconnect_received) {
        auto& w = *conn.will;
        auto msg = make_message(MessageInit{w.topic,
                                            w.payload,
                                            w.qos,
                                            w.retain,
                                            {},
                                            conn.client_id,
                                            unix_ms(),
                                            0,
                                            broker_.store().next_message_id()});
        conn.will.reset();
        publish(msg, s.get(), nullptr);
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

void Worker::end_session(const SessionPtr& s) {
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
    s->pending.clear();
    s->inflight.clear();
    sessions_.erase(s->client_id());
    sessions_count_.store(sessions_.size(), std::memory_order_relaxed);
}

void Worker::close_connection(Connection& conn) {
    if (!conn.closing) {
        conn.closing = true;
        conn.link().close();
    }
}

void Worker::on_closed(Connection& conn) {
    broker_.clients().remove(conn.client_id, conn.id());
    detach(conn);
    connections_.erase(conn.id());
    connections_count_.store(connections_.size(), std::memory_order_relaxed);
}

void Worker::shutdown() {
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
// Packets

ReasonCode Worker::on_packet(Connection& conn, mqtt::Packet& packet) {
    conn.last_activity_ms = mono_ms();
    metrics_.add(Metric::PacketsReceived);
    if (conn.closing) {
        return ReasonCode::Success;
    }
    if (auto* p = std::get_if<mqtt::Publish>(&packet)) {
        return handle_publish(conn, *p);
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
        // MQTT 5: reason 0x04 asks for the will to be published all the same.
        conn.disconnect_received = d->reason != ReasonCode::DisconnectWithWill;
        if (conn.version == Version::V5 && d->properties.session_expiry_interval && conn.session &&
            conn.session->persistent()) {
            conn.session->expiry_interval_s = *d->properties.session_expiry_interval;
        }
        close_connection(conn);
        return ReasonCode::Success;
    }
    if (std::holds_alternative<mqtt::Connect>(packet)) {
        return ReasonCode::ProtocolError;  // [MQTT-3.1.0-2]: a second CONNECT
    }
    return ReasonCode::ProtocolError;
}

ReasonCode Worker::handle_publish(Connection& conn, mqtt::Publish& p) {
    metrics_.add(Metric::PacketsPublishReceived);
    metrics_.add(Metric::MessagesReceived);
    Session& s = *conn.session;
    switch (p.qos) {
        case 0:
            metrics_.add(Metric::MessagesQos0Received);
            break;
        case 1:
            metrics_.add(Metric::MessagesQos1Received);
            break;
        default:
            metrics_.add(Metric::MessagesQos2Received);
            break;
    }
    if (p.qos == 2 && s.awaiting_rel.count(p.packet_id) != 0) {
        // A resent QoS 2 PUBLISH before PUBREL: acknowledge again, deliver nothing
        // ([MQTT-4.3.3-2], method B).
        Token t = new_response(conn, response_for(PacketType::Pubrec, p.packet_id));
        complete(t);
        return ReasonCode::Success;
    }
    int64_t now = unix_ms();
    int64_t expiry_at = 0;
    if (conn.version == Version::V5 && p.properties.message_expiry_interval) {
        expiry_at = now + int64_t{*p.properties.message_expiry_interval} * 1000;
    }
    auto msg = make_message(MessageInit{p.topic, p.payload, p.qos, p.retain, p.raw_properties,
                                        conn.client_id, now, expiry_at,
                                        broker_.store().next_message_id()});
    if (p.qos == 0) {
        publish(msg, &s, nullptr);
        return ReasonCode::Success;
    }
    Token t = new_response(
            conn, response_for(p.qos == 1 ? PacketType::Puback : PacketType::Pubrec, p.packet_id));
    if (p.qos == 2) {
        s.awaiting_rel.insert(p.packet_id);
        if (s.persistent()) {
            batch().put_inflight(storage::InflightRecord{s.client_id(), storage::Direction::Inbound,
                                                         p.packet_id, now});
            conn.responses.back().remaining++;
            add_token_to_batch(t);
        }
    }
    publish(msg, &s, &t);
    complete(t);
    return ReasonCode::Success;
}

void Worker::publish(const MessagePtr& msg, const Session* publisher, const Token* token) {
    const auto& settings = broker_.settings();
    if (msg->retain && settings.retainer_enabled.load(std::memory_order_relaxed)) {
        // The retained set is written in the same turn's batch as the publisher's other
        // writes, so its PUBACK follows it (contract 1).
        uint64_t max_num = settings.retainer_max_message_num.load(std::memory_order_relaxed);
        uint64_t max_size = settings.retainer_max_payload_size.load(std::memory_order_relaxed);
        int64_t expiry_s = settings.retainer_expiry_interval_s.load(std::memory_order_relaxed);
        if (msg->payload().empty()) {
            batch().delete_retained(std::string(msg->topic()));
        } else if ((max_size != 0 && msg->payload().size() > max_size) ||
                   (max_num != 0 && broker_.store().count(storage::Counted::Retained) >= max_num &&
                    !broker_.store().get_retained(msg->topic()))) {
            metrics_.add(Metric::MessagesDropped);  // over the retainer's limits: not retained
        } else {
            storage::RetainedRecord r;
            r.topic.assign(msg->topic());
            r.payload.assign(msg->payload());
            r.qos = msg->qos;
            r.properties = msg->properties;
            r.stored_at_ms = msg->created_at_ms;
            r.expiry_at_ms = msg->expiry_at_ms;
            if (expiry_s > 0 &&
                (r.expiry_at_ms == 0 || r.expiry_at_ms > msg->created_at_ms + expiry_s * 1000)) {
                r.expiry_at_ms = msg->created_at_ms + expiry_s * 1000;
            }
            batch().put_retained(std::move(r));
            metrics_.add(Metric::MessagesRetained);
        }
        if (token) {
            auto it = connections_.find(token->connection);
            if (it != connections_.end()) {
                auto& c = *it->second;
                c.responses[token->response - c.responses_base].remaining++;
                add_token_to_batch(*token);
            }
        }
    }
    route(msg, publisher, token);
}

void Worker::route(const MessagePtr& msg, const Session* publisher, const Token* token) {
    auto& subs = match_scratch_;
    subs.clear();
    broker_.index().match(msg->topic(), subs);
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
    PendingResponse* response = nullptr;
    if (token) {
        auto it = connections_.find(token->connection);
        if (it != connections_.end()) {
            auto& c = *it->second;
            response = &c.responses[token->response - c.responses_base];
        }
    }
    for (auto& sub : subs) {
        Delivery d;
        d.qos = std::min(msg->qos, sub.options.qos);
        d.retain = sub.options.retain_as_published && msg->retain;
        d.subscription_id = sub.subscription_id;
        d.msg = msg;
        if (response && sub.session->persistent() && (d.qos > 0 || store_qos0)) {
            d.has_token = true;
            d.token = *token;
            response->remaining++;
        }
        uint32_t w = sub.session->worker();
        d.session = std::move(sub.session);
        if (w == index_) {
            deliver(std::move(d));
        } else {
            broker_.worker(w).push_delivery(std::move(d));
        }
    }
    subs.clear();
}

// ---------------------------------------------------------------------------------------------
// Delivery to a session homed here

void Worker::deliver(Delivery&& d) {
    Session& s = *d.session;
    if (d.has_token) {
        add_token_to_batch(d.token);
    }
    if (s.ended) {
        return;
    }
    if (d.msg->expiry_at_ms != 0 && d.msg->expiry_at_ms <= unix_ms()) {
        return;
    }
    bool backlog = !s.disk.empty() || s.disk_unloaded > 0;
    bool disk_path = s.persistent() && (!s.online || backlog);
    OutItem item;
    item.msg = std::move(d.msg);
    item.qos = d.qos;
    item.retain = d.retain;
    item.subscription_id = d.subscription_id;
    if (disk_path) {
        if (item.qos == 0 && !broker_.settings().mqueue_store_qos0.load()) {
            return;
        }
        item.stored = true;
    } else if (!s.online) {
        return;  // a clean session between its connection's close and its end
    } else {
        item.stored = s.persistent() && item.qos > 0;
    }
    item.seq = s.next_seq++;
    ++s.enqueue_msg;
    if (item.stored) {
        const Message& m = *item.msg;
        if (std::find(batch_messages_.begin(), batch_messages_.end(), m.store_id) ==
            batch_messages_.end()) {
            batch().put_message(to_record(m));
            batch_messages_.push_back(m.store_id);
        }
        batch().enqueue(storage::QueueEntry{s.client_id(), item.seq, m.store_id, item.qos,
                                            item.retain, item.subscription_id});
    }
    if (disk_path) {
        s.disk.push_back(DiskItem{item.seq, epoch_});
    } else {
        enqueue_item(s, std::move(item));
    }
    uint32_t max_len = broker_.settings().mqueue_max_len.load(std::memory_order_relaxed);
    while (max_len != 0 && s.queue_len() > max_len) {
        drop_oldest(s);
    }
    if (s.online && disk_path) {
        waiting_commit_.push_back(d.session);
    }
}

void Worker::enqueue_item(Session& s, OutItem&& item) {
    uint32_t window = broker_.settings().max_inflight.load(std::memory_order_relaxed);
    if (s.pending.empty() && (item.qos == 0 || s.inflight.size() < window)) {
        if (send_item(s, std::move(item), false)) {
            return;
        }
        return;
    }
    s.pending.push_back(std::move(item));
}

bool Worker::send_item(Session& s, OutItem&& item, bool dup) {
    Connection* conn = s.connection;
    if (!conn || conn->closing) {
        s.pending.push_front(std::move(item));
        return false;
    }
    uint16_t pid = 0;
    if (item.qos > 0) {
        pid = pid_for_seq(item.seq);
        if (s.inflight.count(pid) != 0) {
            s.pending.push_front(std::move(item));
            return false;  // the id is still in use by an older message
        }
    }
    const Message& m = *item.msg;
    mqtt::encode_publish(
            conn->link().out(), conn->version, m.topic(), m.payload(), item.qos, item.retain, dup,
            pid,
            conn->version == Version::V5 ? std::string_view(m.properties) : std::string_view());
    metrics_.add(Metric::PacketsPublishSent);
    metrics_.add(Metric::PacketsSent);
    metrics_.add(Metric::MessagesSent);
    switch (item.qos) {
        case 0:
            metrics_.add(Metric::MessagesQos0Sent);
            break;
        case 1:
            metrics_.add(Metric::MessagesQos1Sent);
            break;
        default:
            metrics_.add(Metric::MessagesQos2Sent);
            break;
    }
    ++s.deliver_msg;
    conn->link().flush();
    if (item.qos == 0) {
        if (item.stored) {
            batch().remove_queued(s.client_id(), item.seq);
        }
        return true;
    }
    InflightItem in;
    in.state = item.qos == 1 ? InflightItem::State::AwaitAck : InflightItem::State::AwaitRec;
    in.sent_at_ms = mono_ms();
    in.item = std::move(item);
    s.inflight.emplace(pid, std::move(in));
    return true;
}

void Worker::resend_inflight(Session& s) {
    Connection* conn = s.connection;
    if (!conn) {
        return;
    }
    auto& out = conn->link().out();
    // Resent in the order first sent ([MQTT-4.4.0-1]), with DUP set on PUBLISH ([MQTT-3.3.1-1]).
    std::vector<std::pair<uint64_t, uint16_t>> order;
    order.reserve(s.inflight.size());
    for (auto& [pid, in] : s.inflight) {
        order.emplace_back(in.item.seq, pid);
    }
    std::sort(order.begin(), order.end());
    for (auto [seq, pid] : order) {
        auto& in = s.inflight[pid];
        if (in.state == InflightItem::State::AwaitComp) {
            mqtt::encode_ack(out, conn->version, mqtt::Ack{PacketType::Pubrel, pid, {}, {}});
            metrics_.add(Metric::PacketsPubrelSent);
        } else {
            const Message& m = *in.item.msg;
            mqtt::encode_publish(out, conn->version, m.topic(), m.payload(), in.item.qos,
                                 in.item.retain, true, pid,
                                 conn->version == Version::V5 ? std::string_view(m.properties)
                                                              : std::string_view());
            metrics_.add(Metric::PacketsPublishSent);
        }
        metrics_.add(Metric::PacketsSent);
        in.sent_at_ms = mono_ms();
    }
    conn->link().flush();
}

void Worker::pump(Session& s) {
    if (!s.online || !s.connection) {
        return;
    }
    uint32_t window = broker_.settings().max_inflight.load(std::memory_order_relaxed);
    while (true) {
        if (s.pending.empty()) {
            if (s.disk.empty() && s.disk_unloaded == 0) {
                return;
            }
            size_t room = s.inflight.size() < window ? window - s.inflight.size() : 0;
            if (room == 0) {
                return;
            }
            load_disk(s, std::max<size_t>(room, 16));
            if (s.pending.empty()) {
                return;
            }
        }
        OutItem& front = s.pending.front();
        if (front.qos > 0 && s.inflight.size() >= window) {
            return;
        }
        OutItem item = std::move(front);
        s.pending.pop_front();
        if (!send_item(s, std::move(item), false)) {
            return;
        }
    }
}

void Worker::load_disk(Session& s, size_t room) {
    if (s.disk_unloaded == 0 && !s.disk.empty() && s.disk.front().epoch > committed_epoch_) {
        if (auto self = find_session(s.client_id())) {
            waiting_commit_.push_back(std::move(self));
        }
        return;  // readable once the batch that stores it has committed
    }
    uint64_t from = s.disk_unloaded > 0 || s.disk.empty() ? s.disk_read_from : s.disk.front().seq;
    auto entries = broker_.store().read_queue(s.client_id(), from, static_cast<uint32_t>(room));
    for (auto& qm : entries) {
        uint64_t seq = qm.entry.seq;
        if (s.disk_unloaded > 0) {
            --s.disk_unloaded;
        } else if (!s.disk.empty() && s.disk.front().seq == seq &&
                   s.disk.front().epoch <= committed_epoch_) {
            s.disk.pop_front();
        } else {
            break;  // not what this session expects next: stop and wait
        }
        s.disk_read_from = seq + 1;
        OutItem item;
        item.seq = seq;
        item.qos = qm.entry.qos;
        item.retain = qm.entry.retain;
        item.subscription_id = qm.entry.subscription_id;
        item.stored = true;
        auto& m = qm.message;
        item.msg = make_message(MessageInit{m.topic, m.payload, m.qos, m.retain, m.properties,
                                            m.from_client, m.created_at_ms, m.expiry_at_ms, m.id});
        s.pending.push_back(std::move(item));
    }
    if (entries.empty() && s.disk_unloaded > 0) {
        s.disk_unloaded = 0;  // the counts said more than the store holds
    }
}

void Worker::drop_oldest(Session& s) {
    ++s.mqueue_dropped;
    metrics_.add(Metric::MessagesDropped);
    // Oldest first: loaded items, then those still only in the store, then this turn's.
    if (!s.pending.empty()) {
        auto& item = s.pending.front();
        if (item.qos == 2) {
            metrics_.add(Metric::MessagesQos2Dropped);
        }
        if (item.stored) {
            batch().remove_queued(s.client_id(), item.seq, true);
        }
        s.pending.pop_front();
        return;
    }
    if (s.disk_unloaded > 0) {
        auto entries = broker_.store().read_queue(s.client_id(), s.disk_read_from, 1);
        --s.disk_unloaded;
        if (!entries.empty()) {
            batch().remove_queued(s.client_id(), entries[0].entry.seq, true);
            s.disk_read_from = entries[0].entry.seq + 1;
        }
        return;
    }
    if (!s.disk.empty()) {
        batch().remove_queued(s.client_id(), s.disk.front().seq, true);
        s.disk.pop_front();
    }
}

// ---------------------------------------------------------------------------------------------
// Acknowledgements

ReasonCode Worker::handle_ack(Connection& conn, const mqtt::Ack& a) {
    Session& s = *conn.session;
    auto it = s.inflight.find(a.packet_id);
    switch (a.type) {
        case PacketType::Puback: {
            metrics_.add(Metric::PacketsPubackReceived);
            if (it == s.inflight.end() || it->second.state != InflightItem::State::AwaitAck) {
                metrics_.add(Metric::PacketsPubackMissed);
                return ReasonCode::Success;
            }
            if (it->second.item.stored) {
                batch().remove_queued(s.client_id(), it->second.item.seq);
            }
            s.inflight.erase(it);
            pump(s);
            return ReasonCode::Success;
        }
        case PacketType::Pubrec: {
            metrics_.add(Metric::PacketsPubrecReceived);
            PendingResponse r = response_for(PacketType::Pubrel, a.packet_id);
            bool wait = false;
            if (it == s.inflight.end()) {
                metrics_.add(Metric::PacketsPubrecMissed);
                if (conn.version == Version::V5) {
                    r.reasons.push_back(ReasonCode::PacketIdentifierNotFound);
                }
            } else if (it->second.state == InflightItem::State::AwaitRec) {
                if (mqtt::is_error(a.reason)) {
                    // MQTT 5: the receiver refused the message; the exchange ends here.
                    if (it->second.item.stored) {
                        batch().remove_queued(s.client_id(), it->second.item.seq);
                    }
                    s.inflight.erase(it);
                    pump(s);
                    return ReasonCode::Success;
                }
                if (it->second.item.stored) {
                    // PUBREL only once the new state is durable: a restart must resend PUBREL,
                    // never the PUBLISH (exactly once, contract 3).
                    batch().remove_queued(s.client_id(), it->second.item.seq);
                    batch().put_inflight(storage::InflightRecord{
                            s.client_id(), storage::Direction::Outbound, a.packet_id, unix_ms()});
                    wait = true;
                }
                it->second.state = InflightItem::State::AwaitComp;
                it->second.item.msg.reset();
            }
            Token t = new_response(conn, std::move(r));
            if (wait) {
                conn.responses.back().remaining++;
                add_token_to_batch(t);
            }
            complete(t);
            return ReasonCode::Success;
        }
        case PacketType::Pubcomp: {
            metrics_.add(Metric::PacketsPubcompReceived);
            if (it == s.inflight.end() || it->second.state != InflightItem::State::AwaitComp) {
                metrics_.add(Metric::PacketsPubcompMissed);
                return ReasonCode::Success;
            }
            if (s.persistent()) {
                batch().delete_inflight(s.client_id(), storage::Direction::Outbound, a.packet_id);
            }
            s.inflight.erase(it);
            pump(s);
            return ReasonCode::Success;
        }
        case PacketType::Pubrel: {
            metrics_.add(Metric::PacketsPubrelReceived);
            PendingResponse r = response_for(PacketType::Pubcomp, a.packet_id);
            bool wait = false;
            if (s.awaiting_rel.erase(a.packet_id) == 0) {
                metrics_.add(Metric::PacketsPubrelMissed);
                if (conn.version == Version::V5) {
                    r.reasons.push_back(ReasonCode::PacketIdentifierNotFound);
                }
            } else if (s.persistent()) {
                batch().delete_inflight(s.client_id(), storage::Direction::Inbound, a.packet_id);
                wait = true;
            }
            Token t = new_response(conn, std::move(r));
            if (wait) {
                conn.responses.back().remaining++;
                add_token_to_batch(t);
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
    const SessionPtr& s = conn.session;
    PendingResponse r = response_for(PacketType::Suback, sub.packet_id);
    uint32_t sid = sub.properties.subscription_identifiers.empty()
                           ? 0
                           : sub.properties.subscription_identifiers.front();
    bool wait = false;
    for (auto& [filter, opts] : sub.topics) {
        if (!mqtt::valid_topic_filter(filter)) {
            r.reasons.push_back(conn.version == Version::V5 ? ReasonCode::TopicFilterInvalid
                                                            : ReasonCode::UnspecifiedError);
            continue;
        }
        bool existed = add_subscription(s, filter, opts, sid);
        wait = wait || s->persistent();
        r.reasons.push_back(static_cast<ReasonCode>(opts.qos));
        // Retained messages on every SUBSCRIBE, a repeated one included ([MQTT-3.3.1-6]);
        // MQTT 5 retain handling 1 = only for a new subscription, 2 = never.
        if (opts.retain_handling == 0 || (opts.retain_handling == 1 && !existed)) {
            r.retained_for.emplace_back(filter, opts);
            r.subscription_ids.push_back(sid);
        }
    }
    Token t = new_response(conn, std::move(r));
    if (wait) {
        conn.responses.back().remaining++;
        add_token_to_batch(t);  // SUBACK after the subscription is stored (contract 2)
    }
    complete(t);
    return ReasonCode::Success;
}

ReasonCode Worker::handle_unsubscribe(Connection& conn, mqtt::Unsubscribe& u) {
    metrics_.add(Metric::PacketsUnsubscribe);
    const SessionPtr& s = conn.session;
    PendingResponse r = response_for(PacketType::Unsuback, u.packet_id);
    bool wait = false;
    for (auto& filter : u.topics) {
        bool existed = remove_subscription(s, filter);
        wait = wait || (existed && s->persistent());
        if (conn.version == Version::V5) {
            r.reasons.push_back(existed ? ReasonCode::Success : ReasonCode::NoSubscriptionExisted);
        }
    }
    Token t = new_response(conn, std::move(r));
    if (wait) {
        conn.responses.back().remaining++;
        add_token_to_batch(t);
    }
    complete(t);
    return ReasonCode::Success;
}

void Worker::send_retained(const SessionPtr& s,
                           const std::string& filter,
                           const mqtt::SubscribeOptions& opts,
                           uint32_t subscription_id) {
    if (!broker_.settings().retainer_enabled.load(std::memory_order_relaxed)) {
        return;
    }
    int64_t now = unix_ms();
    auto st = broker_.store().match_retained(filter, [&](storage::RetainedRecord&& r) {
        if (r.expiry_at_ms != 0 && r.expiry_at_ms <= now) {
            return true;
        }
        Delivery d;
        d.session = s;
        d.qos = std::min(r.qos, opts.qos);
        d.retain = true;  // [MQTT-3.3.1-8]
        d.subscription_id = subscription_id;
        d.msg = make_message(MessageInit{r.topic,
                                         r.payload,
                                         r.qos,
                                         true,
                                         r.properties,
                                         {},
                                         r.stored_at_ms,
                                         r.expiry_at_ms,
                                         broker_.store().next_message_id()});
        deliver(std::move(d));
        return true;
    });
    st.ignore();
}

bool Worker::add_subscription(const SessionPtr& s,
                              const std::string& filter,
                              const mqtt::SubscribeOptions& opts,
                              uint32_t subscription_id) {
    auto res = broker_.index().subscribe(s, filter, opts, subscription_id);
    if (res.new_filter) {
        batch().put_route(storage::RouteRecord{filter, broker_.settings().node_name});
    }
    s->subscriptions[filter] = opts;
    if (s->persistent()) {
        batch().put_subscription(storage::SubscriptionRecord{
                s->client_id(), filter, opts.qos, opts.no_local, opts.retain_as_published,
                opts.retain_handling, subscription_id});
    }
    return res.existed;
}

bool Worker::remove_subscription(const SessionPtr& s, const std::string& filter) {
    auto res = broker_.index().unsubscribe(s.get(), filter);
    if (res.filter_gone) {
        batch().delete_route(filter);
    }
    bool existed = s->subscriptions.erase(filter) != 0;
    if (existed && s->persistent()) {
        batch().delete_subscription(s->client_id(), filter);
    }
    return existed;
}

// ---------------------------------------------------------------------------------------------
// Admin

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
    v.inflight_len = s->inflight.size();
    v.mqueue_len = s->queue_len();
    v.mqueue_dropped = s->mqueue_dropped;
    v.awaiting_rel_len = s->awaiting_rel.size();
    v.deliver_msg = s->deliver_msg;
    v.enqueue_msg = s->enqueue_msg;
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

// ---------------------------------------------------------------------------------------------
// Periodic work

void Worker::adopt_session(SessionPtr s) {
    sessions_.emplace(s->client_id(), std::move(s));
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
        for (auto& [id, s] : sessions_) {
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
        auto msg = make_message(MessageInit{
                topic, payload, 0, false, {}, {}, now_ms, 0, broker_.store().next_message_id()});
        publish(msg, nullptr, nullptr);
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
