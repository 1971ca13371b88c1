#include "broker/session.h"

#include <algorithm>
#include <cstdint>

#include "broker/commit_batch.h"
#include "broker/connection.h"
#include "broker/hooks.h"
#include "broker/metrics.h"
#include "broker/settings.h"
#include "common/clock.h"
#include "mqtt/encoder.h"
#include "storage/store.h"

namespace mqttd::broker {

using mqtt::ReasonCode;
using mqtt::Version;

namespace {

// Stored entries are read at least this many at a time: each read_queue is a snapshot, an
// iterator and a seek, and once the window is full an ack frees one slot at a time. The
// extra entries wait in `pending` (bounded by the session's queue, mqtt.mqueue.max_len). At
// most kMaxDiskPage at once, however wide the window.
constexpr size_t kMinDiskPage = 64;
constexpr size_t kMaxDiskPage = 1024;
// The packet ids a session can have in flight.
constexpr uint32_t kPacketIds = 65535;

storage::MessageRecord to_record(const Message& m) {
    storage::MessageRecord r;
    r.id = m.store_id;
    r.topic.assign(m.topic());
    r.payload.assign(m.payload());
    r.qos = m.qos;
    r.retain = m.retain;
    r.properties.assign(m.properties());
    r.from_client.assign(m.from_client());
    r.created_at_ms = m.created_at_ms;
    r.expiry_at_ms = m.expiry_at_ms;
    return r;
}

// The PUBLISH properties of a delivery: none before MQTT 5; else the message's own, plus the
// Subscription Identifiers of the subscriptions it matched, if they had any (3.3.2.3.8).
// `scratch` holds the result when it is not the message's block as is.
std::string_view publish_properties(const Message& m,
                                    Version v,
                                    const SubscriptionIds& subscription_ids,
                                    std::string& scratch) {
    if (v != Version::V5) {
        return {};
    }
    bool own = false;
    if (m.expiry_at_ms != 0) {
        // The Message Expiry Interval counts down while the message waits here
        // [MQTT-3.3.2-6] (the message is dropped once it reaches 0).
        int64_t left_ms = std::max<int64_t>(m.expiry_at_ms - unix_ms(), 1000);
        own = mqtt::with_message_expiry(m.properties(), static_cast<uint32_t>(left_ms / 1000),
                                        scratch);
    }
    if (subscription_ids.empty()) {
        return own ? std::string_view(scratch) : m.properties();
    }
    if (!own) {
        scratch.assign(m.properties());
    }
    subscription_ids.for_each(
            [&](uint32_t id) { mqtt::append_subscription_identifier(scratch, id); });
    return scratch;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Outbound flow

void Session::enqueue(
        SessionContext& ctx, MessagePtr msg, uint8_t qos, bool retain, SubscriptionIds ids) {
    Queue& q = queue();
    bool backlog = !q.disk.empty() || q.disk_unloaded > 0;
    bool disk_path = persistent_ && (!online || backlog);
    OutItem item;
    item.msg = std::move(msg);
    item.qos = qos;
    item.retain = retain;
    item.subscription_ids = std::move(ids);
    if (disk_path) {
        if (item.qos == 0 && !ctx.settings.mqueue_store_qos0.load(std::memory_order_relaxed)) {
            return;
        }
        item.stored = true;
    } else if (!online) {
        return;  // a clean session between its connection's close and its end
    } else {
        item.stored = persistent_ && item.qos > 0;
    }
    item.seq = q.next_seq++;
    ++q.enqueue_msg;
    if (item.stored) {
        const Message& m = *item.msg;
        if (ctx.commits.first_in_turn(m.store_id)) {
            ctx.commits.writes().put_message(to_record(m));  // once per batch (contract 5)
        }
        ctx.commits.writes().enqueue(storage::QueueEntry{client_id_, item.seq, m.store_id, item.qos,
                                                         item.retain, item.subscription_ids.first(),
                                                         item.subscription_ids.rest()});
    }
    if (disk_path) {
        q.disk.push_back(DiskItem{item.seq, ctx.commits.epoch()});
    } else {
        enqueue_item(ctx, std::move(item));
    }
    uint32_t max_len = ctx.settings.mqueue_max_len.load(std::memory_order_relaxed);
    while (max_len != 0 && q.queue_len() > max_len) {
        drop_oldest(ctx);
    }
    if (online && disk_path) {
        ctx.waiting_commit.push_back(shared_from_this());
    }
}

void Session::enqueue_item(SessionContext& ctx, OutItem&& item) {
    Queue& q = queue();
    if (q.pending.empty() && (item.qos == 0 || window_open(ctx, send_window(ctx)))) {
        send_item(ctx, std::move(item), false);
        return;
    }
    q.pending.push_back(std::move(item));
}

uint32_t Session::send_window(const SessionContext& ctx) const {
    // mqtt.max_inflight = 0 (the default): no fixed count; the byte budget (window_open) and
    // the packet ids bound it. MQTT 5: the client's Receive Maximum binds either way.
    uint32_t window = ctx.settings.max_inflight.load(std::memory_order_relaxed);
    if (window == 0 || window > kPacketIds) {
        window = kPacketIds;
    }
    if (connection && connection->receive_maximum != 0) {
        window = std::min<uint32_t>(window, connection->receive_maximum);  // MQTT 5 3.1.2.11.3
    }
    return window;
}

bool Session::window_open(const SessionContext& ctx, uint32_t window) const {
    const Queue& q = *queue_;
    if (q.inflight.size() >= window) {
        return false;
    }
    uint64_t budget = ctx.settings.max_inflight_bytes.load(std::memory_order_relaxed);
    return budget == 0 || q.inflight_bytes < budget;
}

bool Session::send_item(SessionContext& ctx, OutItem&& item, bool dup) {
    Queue& q = queue();
    Connection* conn = connection;
    if (!conn || conn->closing) {
        q.pending.push_front(std::move(item));
        return false;
    }
    uint16_t pid = 0;
    if (item.qos > 0) {
        pid = pid_for_seq(item.seq);
        if (q.inflight.contains(pid)) {
            q.pending.push_front(std::move(item));
            return false;  // the id is still in use by an older message
        }
    }
    const Message& m = *item.msg;
    // MQTT 5 [MQTT-3.1.2-25]: never send a packet above the client's Maximum Packet Size; and
    // a QoS 0 message to a client that does not read what it was already sent is not buffered
    // without bound. Either is discarded for this client as if delivered, as is an expired one.
    const bool too_big = conn->max_packet_size != 0 && m.wire_size() + 16 > conn->max_packet_size;
    const bool backlogged = item.qos == 0 && conn->link().out().size() >= kMaxUnsentBytes;
    // MQTT 5 [MQTT-3.3.2-5]: a message whose expiry passed while it waited is not sent.
    const bool expired = m.expiry_at_ms != 0 && m.expiry_at_ms <= unix_ms();
    if (too_big || backlogged || expired) {
        if (item.stored) {
            ctx.commits.writes().remove_queued(client_id_, item.seq, true);
        }
        ++q.mqueue_dropped;
        ctx.metrics.add(Metric::MessagesDropped);
        return true;
    }
    write_publish(*conn, item, pid, item.qos > 0 && (dup || item.maybe_sent));
    ctx.metrics.add(Metric::PacketsPublishSent);
    ctx.metrics.add(Metric::PacketsSent);
    ctx.metrics.add(Metric::MessagesSent);
    static constexpr Metric kSent[] = {Metric::MessagesQos0Sent, Metric::MessagesQos1Sent,
                                       Metric::MessagesQos2Sent};
    ctx.metrics.add(kSent[item.qos]);
    ++q.deliver_msg;
    conn->link().flush();
    ctx.hooks.message(auth::HookEvent::MessageDelivered, *conn, m.topic(), &m);
    if (item.qos == 0) {
        if (item.stored) {
            ctx.commits.writes().remove_queued(client_id_, item.seq);
        }
        return true;
    }
    InflightItem in;
    in.state = item.qos == 1 ? InflightItem::State::AwaitAck : InflightItem::State::AwaitRec;
    q.inflight_bytes += m.wire_size();
    in.item = std::move(item);
    q.inflight.emplace(pid, std::move(in));
    return true;
}

void Session::write_publish(Connection& conn, const OutItem& item, uint16_t pid, bool dup) {
    const Message& m = *item.msg;
    std::string scratch;
    std::string_view props = publish_properties(m, conn.version, item.subscription_ids, scratch);
    std::string_view topic = m.topic();
    if (conn.client_topic_alias_maximum != 0) {
        // MQTT 5 3.3.2.3.4: a topic the client knows by its alias goes out as an empty topic.
        auto& aliases = conn.extras().outbound_aliases;
        if (!aliases) {
            aliases = std::make_unique<OutboundAliases>(conn.client_topic_alias_maximum);
        }
        auto a = aliases->assign(topic);
        if (props.data() != scratch.data()) {
            scratch.assign(props);
        }
        mqtt::append_topic_alias(scratch, a.alias);
        props = scratch;
        if (a.known) {
            topic = {};
        }
    }
    mqtt::encode_publish(conn.link().out(), conn.version, topic, m.payload(), item.qos, item.retain,
                         dup, pid, props);
}

void Session::resend_inflight(SessionContext& ctx) {
    Connection* conn = connection;
    if (!conn || !queue_) {
        return;  // no queue: nothing in flight
    }
    Queue& q = *queue_;
    auto& out = conn->link().out();
    // Resent in the order first sent ([MQTT-4.4.0-1]), with DUP set on PUBLISH ([MQTT-3.3.1-1]).
    // (The table is not changed below, so the pointers stay valid.)
    struct Sent {
        uint64_t seq;
        uint16_t pid;
        InflightItem* in;
    };
    std::vector<Sent> order;
    order.reserve(q.inflight.size());
    q.inflight.for_each([&](uint16_t pid, InflightItem& in) {
        order.push_back(Sent{in.item.seq, pid, &in});
    });
    std::sort(order.begin(), order.end(), [](const Sent& a, const Sent& b) {
        return a.seq != b.seq ? a.seq < b.seq : a.pid < b.pid;
    });
    for (const Sent& sent : order) {
        const uint16_t pid = sent.pid;
        InflightItem& in = *sent.in;
        if (in.state == InflightItem::State::AwaitComp) {
            mqtt::encode_ack(out, conn->version, mqtt::Ack{mqtt::PacketType::Pubrel, pid, {}, {}});
            ctx.metrics.add(Metric::PacketsPubrelSent);
        } else {
            write_publish(*conn, in.item, pid, true);
            ctx.metrics.add(Metric::PacketsPublishSent);
        }
        ctx.metrics.add(Metric::PacketsSent);
    }
    conn->link().flush();
}

void Session::pump(SessionContext& ctx) {
    if (!online || !connection || !queue_) {
        return;  // no queue: nothing to send
    }
    Queue& q = *queue_;
    uint32_t window = send_window(ctx);
    while (true) {
        if (q.pending.empty()) {
            if (q.disk.empty() && q.disk_unloaded == 0) {
                return;
            }
            size_t room = q.inflight.size() < window ? window - q.inflight.size() : 0;
            if (room == 0 || !window_open(ctx, window)) {
                return;
            }
            load_disk(ctx, std::clamp(room, kMinDiskPage, kMaxDiskPage));
            if (q.pending.empty()) {
                return;
            }
        }
        OutItem& front = q.pending.front();
        if (front.qos > 0 && !window_open(ctx, window)) {
            return;
        }
        OutItem item = std::move(front);
        q.pending.pop_front();
        if (!send_item(ctx, std::move(item), false)) {
            return;
        }
    }
}

void Session::load_disk(SessionContext& ctx, size_t room) {
    Queue& q = queue();
    if (q.disk_unloaded == 0 && !q.disk.empty() && q.disk.front().epoch > ctx.commits.committed()) {
        ctx.waiting_commit.push_back(shared_from_this());
        return;  // readable once the batch that stores it has committed
    }
    uint64_t from = q.disk_unloaded > 0 || q.disk.empty() ? q.disk_read_from : q.disk.front().seq;
    auto entries = ctx.store.read_queue(client_id_, from, static_cast<uint32_t>(room));
    // An entry whose batch has finished but is not in the store was never written (the store
    // failed that batch: out of space); its publisher was refused. Passed over, counted as
    // dropped, so the queue does not wait for it.
    auto skip_unwritten = [&](uint64_t below) {
        while (q.disk_unloaded == 0 && !q.disk.empty() && q.disk.front().seq < below &&
               q.disk.front().epoch <= ctx.commits.committed()) {
            q.disk.pop_front();
            ++q.mqueue_dropped;
            ctx.metrics.add(Metric::MessagesDropped);
        }
    };
    for (auto& qm : entries) {
        uint64_t seq = qm.entry.seq;
        skip_unwritten(seq);
        bool maybe_sent = false;
        if (q.disk_unloaded > 0) {
            --q.disk_unloaded;
            maybe_sent = seq < q.maybe_sent_below || q.maybe_sent_first > 0;
            if (q.maybe_sent_first > 0) {
                --q.maybe_sent_first;
            }
        } else if (!q.disk.empty() && q.disk.front().seq == seq &&
                   q.disk.front().epoch <= ctx.commits.committed()) {
            q.disk.pop_front();
        } else {
            break;  // not what this session expects next: stop and wait
        }
        q.disk_read_from = seq + 1;
        OutItem item;
        item.seq = seq;
        item.qos = qm.entry.qos;
        item.retain = qm.entry.retain;
        item.subscription_ids = SubscriptionIds(qm.entry.subscription_id);
        for (uint32_t id : qm.entry.more_subscription_ids) {
            item.subscription_ids.add(id);
        }
        item.stored = true;
        item.maybe_sent = maybe_sent;
        auto& m = qm.message;
        item.msg = make_message(MessageInit{m.topic, m.payload, m.qos, m.retain, m.properties,
                                            m.from_client, m.created_at_ms, m.expiry_at_ms, m.id});
        q.pending.push_back(std::move(item));
    }
    if (entries.empty() && q.disk_unloaded > 0) {
        q.disk_unloaded = 0;  // the counts said more than the store holds
    }
    if (entries.size() < room) {
        skip_unwritten(UINT64_MAX);  // the store has nothing further
        if (q.pending.empty() && !q.disk.empty() && q.disk_unloaded == 0 &&
            q.disk.front().epoch > ctx.commits.committed()) {
            ctx.waiting_commit.push_back(shared_from_this());
        }
    }
}

void Session::drop_oldest(SessionContext& ctx) {
    Queue& q = queue();
    ++q.mqueue_dropped;
    ctx.metrics.add(Metric::MessagesDropped);
    // Oldest first: loaded items, then those still only in the store, then this turn's.
    if (!q.pending.empty()) {
        auto& item = q.pending.front();
        if (item.qos == 2) {
            ctx.metrics.add(Metric::MessagesQos2Dropped);
        }
        if (item.stored) {
            ctx.commits.writes().remove_queued(client_id_, item.seq, true);
        }
        q.pending.pop_front();
        return;
    }
    if (q.disk_unloaded > 0) {
        auto entries = ctx.store.read_queue(client_id_, q.disk_read_from, 1);
        --q.disk_unloaded;
        if (!entries.empty()) {
            ctx.commits.writes().remove_queued(client_id_, entries[0].entry.seq, true);
            q.disk_read_from = entries[0].entry.seq + 1;
        }
        return;
    }
    if (!q.disk.empty()) {
        ctx.commits.writes().remove_queued(client_id_, q.disk.front().seq, true);
        q.disk.pop_front();
    }
}

// ---------------------------------------------------------------------------------------------
// Acknowledgements of what this session sent

bool Session::on_puback(SessionContext& ctx, uint16_t pid) {
    Queue& q = queue();
    InflightItem* in = q.inflight.find(pid);
    if (!in || in->state != InflightItem::State::AwaitAck) {
        return false;
    }
    if (in->item.stored) {
        ctx.commits.writes().remove_queued(client_id_, in->item.seq);
    }
    if (connection && in->item.msg) {
        const Message& m = *in->item.msg;
        ctx.hooks.message(auth::HookEvent::MessageAcked, *connection, m.topic(), &m);
    }
    release_bytes(*in);
    q.inflight.erase(pid);
    pump(ctx);
    return true;
}

void Session::release_bytes(InflightItem& in) {
    if (in.item.msg) {
        size_t n = in.item.msg->wire_size();
        queue_->inflight_bytes = queue_->inflight_bytes > n ? queue_->inflight_bytes - n : 0;
    }
}

Session::Pubrec Session::on_pubrec(SessionContext& ctx, uint16_t pid, ReasonCode reason) {
    Queue& q = queue();
    InflightItem* in = q.inflight.find(pid);
    if (!in) {
        return Pubrec::Missed;
    }
    if (in->state != InflightItem::State::AwaitRec) {
        return Pubrec::Release;  // PUBREC again: PUBREL again
    }
    if (mqtt::is_error(reason)) {
        // MQTT 5: the receiver refused the message; the exchange ends here.
        if (in->item.stored) {
            ctx.commits.writes().remove_queued(client_id_, in->item.seq);
        }
        release_bytes(*in);
        q.inflight.erase(pid);
        pump(ctx);
        return Pubrec::Ended;
    }
    Pubrec result = Pubrec::Release;
    if (in->item.stored) {
        // PUBREL only once the new state is durable: a restart must resend PUBREL, never the
        // PUBLISH (exactly once, contract 3).
        ctx.commits.writes().remove_queued(client_id_, in->item.seq);
        ctx.commits.writes().put_inflight(
                storage::InflightRecord{client_id_, storage::Direction::Outbound, pid, unix_ms()});
        result = Pubrec::ReleaseAfterCommit;
    }
    if (connection && in->item.msg) {
        const Message& m = *in->item.msg;
        ctx.hooks.message(auth::HookEvent::MessageAcked, *connection, m.topic(), &m);
    }
    in->state = InflightItem::State::AwaitComp;
    release_bytes(*in);
    in->item.msg.reset();
    return result;
}

bool Session::on_pubcomp(SessionContext& ctx, uint16_t pid) {
    Queue& q = queue();
    const InflightItem* in = q.inflight.find(pid);
    if (!in || in->state != InflightItem::State::AwaitComp) {
        return false;
    }
    if (persistent_) {
        ctx.commits.writes().delete_inflight(client_id_, storage::Direction::Outbound, pid);
    }
    q.inflight.erase(pid);
    pump(ctx);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Inbound QoS 2

bool Session::awaiting_rel(uint16_t pid) const {
    return queue_ && queue_->awaiting_rel.count(pid) != 0;
}

size_t Session::awaiting_rel_count() const {
    return queue_ ? queue_->awaiting_rel.size() : 0;
}

void Session::add_awaiting_rel(SessionContext& ctx, uint16_t pid, int64_t now_ms) {
    queue().awaiting_rel.emplace(pid, now_ms);
    if (persistent_) {
        ctx.commits.writes().put_inflight(
                storage::InflightRecord{client_id_, storage::Direction::Inbound, pid, now_ms});
    }
}

bool Session::release(SessionContext& ctx, uint16_t pid) {
    if (!queue_ || queue_->awaiting_rel.erase(pid) == 0) {
        return false;
    }
    if (persistent_) {
        ctx.commits.writes().delete_inflight(client_id_, storage::Direction::Inbound, pid);
    }
    return true;
}

void Session::expire_awaiting_rel(SessionContext& ctx, int64_t now_ms, int64_t timeout_ms) {
    if (!queue_ || queue_->awaiting_rel.empty()) {
        return;
    }
    std::erase_if(queue_->awaiting_rel, [&](const auto& entry) {
        if (now_ms - entry.second <= timeout_ms) {
            return false;
        }
        if (persistent_) {
            ctx.commits.writes().delete_inflight(client_id_, storage::Direction::Inbound,
                                                 entry.first);
        }
        return true;
    });
}

// ---------------------------------------------------------------------------------------------
// The state as a whole

void Session::restore(const storage::SessionRecord& r,
                      const storage::SessionCounts& counts,
                      const std::vector<storage::InflightRecord>& inflight,
                      uint32_t max_inflight) {
    // A session no message has flowed through keeps its queue block unallocated.
    if (r.deliver_msg == 0 && counts.queued == 0 && counts.next_seq == 0 &&
        counts.enqueued_total == 0 && counts.dropped_total == 0 &&
        counts.awaiting_rel + counts.awaiting_comp == 0) {
        return;
    }
    Queue& q = queue();
    q.deliver_msg = r.deliver_msg;
    q.disk_unloaded = counts.queued;
    if (r.disconnected_at_ms == 0) {
        q.maybe_sent_below = counts.next_seq;  // online at the stop: any may have been sent
    } else {
        q.maybe_sent_first = max_inflight == 0 ? kPacketIds : max_inflight;
    }
    q.next_seq = counts.next_seq;
    q.enqueue_msg = counts.enqueued_total;
    q.mqueue_dropped = counts.dropped_total;
    for (const auto& in : inflight) {
        if (in.direction == storage::Direction::Inbound) {
            q.awaiting_rel.emplace(in.packet_id, in.at_ms);
        } else {
            if (in.packet_id == 0 || q.inflight.contains(in.packet_id)) {
                continue;  // the store's keys are unique; id 0 is never sent
            }
            InflightItem item;
            item.state = InflightItem::State::AwaitComp;
            item.item.stored = true;
            q.inflight.emplace(in.packet_id, std::move(item));
        }
    }
}

void Session::clear_queue() {
    if (queue_) {
        queue_->pending.clear();
        queue_->inflight.clear();
        queue_->inflight_bytes = 0;
    }
}

SessionFigures Session::figures() const {
    SessionFigures f;
    if (queue_) {
        f.queue_len = queue_->queue_len();
        f.inflight = queue_->inflight.size();
        f.awaiting_rel = queue_->awaiting_rel.size();
        f.deliver_msg = queue_->deliver_msg;
        f.enqueue_msg = queue_->enqueue_msg;
        f.mqueue_dropped = queue_->mqueue_dropped;
    }
    return f;
}

uint32_t Session::expiry_s(const Settings& settings) const {
    if (version == Version::V5) {
        return expiry_interval_s;
    }
    auto d = settings.session_expiry_s.load(std::memory_order_relaxed);
    return d <= 0 ? storage::kNeverExpires : static_cast<uint32_t>(d);
}

size_t Session::queue_len() const {
    return queue_ ? queue_->queue_len() : 0;
}

uint64_t Session::deliver_msg() const {
    return queue_ ? queue_->deliver_msg : 0;
}

}  // namespace mqttd::broker
