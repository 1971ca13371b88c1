// broker::Session: the MQTT session state of one client id — subscriptions, the outbound queue
// and in-flight window, inbound QoS 2 state and counters — and the state machine that moves
// messages through it (enqueue, send as the window allows, page stored entries back in, ack
// transitions, resend on reconnect). A session lives on its home worker (hash of the client id)
// for its whole life and is touched only there; the few fields other threads read are atomics
// or immutable. Shared ownership: the home worker's session table and every TopicIndex entry
// hold a shared_ptr, so a delivery in flight to a session that has just ended finds it marked
// ended instead of freed.
//
// Outbound queue (persistent sessions, DESIGN.md contract 1-3):
//   inflight  -- sent, awaiting PUBACK / PUBREC / PUBCOMP, keyed by packet id;
//   pending   -- loaded in memory, not yet sent (older than every disk item);
//   disk      -- seqs stored in the `queues` family but not loaded (after a restart, or while
//                offline), newest last; loaded in pages as the window frees, each once the
//                batch that stores it has committed (its epoch, CommitBatch).
// A stored item's outbound packet id is derived from its queue seq (pid_for_seq), so sending
// needs no write and a resend after a restart reuses the same id — what QoS 2 exactly-once
// needs on the receiver's side.
//
// The worker gives each call a SessionContext: its turn's batch (every store write of the
// session goes there), the store (paging reads), counters, settings and hooks.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/message.h"
#include "broker/packet_id_map.h"
#include "broker/subscription_ids.h"
#include "common/lazy_deque.h"
#include "mqtt/packets.h"
#include "storage/records.h"

namespace mqttd::storage {
class Store;
struct SessionCounts;
}  // namespace mqttd::storage

namespace mqttd::broker {

class CommitBatch;
class Connection;
class Hooks;
class Metrics;
class Session;
struct SessionMove;
struct Settings;

// SessionMove is the worker's (worker.h); a session holds one only while it moves.
struct SessionMoveDelete {
    void operator()(SessionMove* m) const;
};
using SessionMovePtr = std::unique_ptr<SessionMove, SessionMoveDelete>;

inline uint16_t pid_for_seq(uint64_t seq) {
    return static_cast<uint16_t>(seq % 65535u + 1u);
}

struct OutItem {
    uint64_t seq = 0;
    MessagePtr msg;
    uint8_t qos = 0;
    bool retain = false;
    bool stored = false;      // has an entry in the store's `queues` family
    bool maybe_sent = false;  // may have been sent before a restart: goes out with DUP set
    SubscriptionIds subscription_ids;
};

// What a session's state machine needs from its worker for one call. References only; built
// once per worker.
struct SessionContext {
    CommitBatch& commits;  // this turn's store batch, and which epochs are durable
    const storage::Store& store;
    Metrics& metrics;
    const Settings& settings;
    const Hooks& hooks;
    // Sessions to pump once the next batch is durable (their stored entries become readable).
    std::vector<std::shared_ptr<Session>>& waiting_commit;
};

// A session's figures for the REST views.
struct SessionFigures {
    size_t queue_len = 0;
    size_t inflight = 0;
    size_t awaiting_rel = 0;
    uint64_t deliver_msg = 0;
    uint64_t enqueue_msg = 0;
    uint64_t mqueue_dropped = 0;
};

class Session : public std::enable_shared_from_this<Session> {
public:
    // QoS 0 deliveries to a connection with this much output not yet taken by its socket are
    // dropped (counted in messages/dropped and the session's mqueue_dropped).
    static constexpr size_t kMaxUnsentBytes = size_t{16} << 20;

    Session(std::string client_id, uint32_t worker, bool persistent)
        : persistent_(persistent), worker_(worker), client_id_(std::move(client_id)) {}
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Immutable; readable from any thread.
    const std::string& client_id() const { return client_id_; }
    uint32_t worker() const { return worker_; }
    bool persistent() const { return persistent_; }

    // --- home worker only below (except the two atomics) ---
    std::string username;
    std::map<std::string, mqtt::SubscribeOptions, std::less<>> subscriptions;
    Connection* connection = nullptr;
    int64_t created_at_ms = 0;
    int64_t disconnected_at_ms = 0;
    uint32_t expiry_interval_s = 0;  // MQTT 5 session expiry; 3.x uses the broker default
    mqtt::Version version = mqtt::Version::V311;
    // Cluster takeover (Worker::hand_over): being read for another node / handed over to it
    // (then its end leaves the ownership key, which is the other node's, alone).
    bool handing_over = false;
    bool handed_over = false;
    // A CONNECT of the same id on this node takes its place (Worker::session_for): if it ends
    // now, the id stays claimed for the new connection (its end releases nothing).
    bool replaced = false;
    // A move between cluster nodes in progress or just done (worker.h SessionMove); null on
    // a session that is not moving.
    SessionMovePtr move;

    // Written on the home worker, read anywhere (routing decisions may be stale).
    std::atomic<bool> online{false};
    std::atomic<bool> ended{false};

private:
    // Here rather than below: they fill the padding after the two atomics (an idle session
    // is one allocation of its size, with its shared_ptr's control block).
    const bool persistent_;
    const uint32_t worker_;

public:
    // ACL marks (acl.h, BEYOND EMQ): the subscription filters that share topics with a rule
    // denying this client to subscribe; a delivery whose topic one of them matches is dropped
    // when subscribing to that topic is denied. Computed on the home worker for the ACL
    // epoch acl_marks_epoch - 1 (0 = to compute); null when no filter is marked.
    std::unique_ptr<std::vector<std::string>> acl_marked;
    uint64_t acl_marks_epoch = 0;

    // --- outbound flow (home worker) ---
    // A message routed here: sent at once when the window allows, else queued; written to the
    // store first when the session is persistent and the message QoS > 0 (QoS 0 too while
    // offline with mqtt.mqueue.store_qos0). The queue is bounded by mqtt.mqueue.max_len, the
    // oldest dropped first.
    void enqueue(
            SessionContext& ctx, MessagePtr msg, uint8_t qos, bool retain, SubscriptionIds ids);
    // Sends what the in-flight window allows, paging stored entries in as needed.
    void pump(SessionContext& ctx);
    // After a reconnect: the in-flight messages again in the order first sent, DUP set, and
    // PUBREL for those past PUBREC [MQTT-4.4.0-1].
    void resend_inflight(SessionContext& ctx);

    // Acks from the client for what this session sent. Each returns false when the packet id
    // is not in flight in the expected state (counted as missed by the caller).
    bool on_puback(SessionContext& ctx, uint16_t pid);
    enum class Pubrec { Missed, Ended, Release, ReleaseAfterCommit };
    // Release: answer PUBREL now; ReleaseAfterCommit: once this turn's batch is durable (the
    // PUBREL state must be stored first: a restart then resends PUBREL, never the PUBLISH);
    // Ended: the client refused the message (MQTT 5 error reason), the exchange is over.
    Pubrec on_pubrec(SessionContext& ctx, uint16_t pid, mqtt::ReasonCode reason);
    bool on_pubcomp(SessionContext& ctx, uint16_t pid);

    // --- inbound QoS 2 (home worker) ---
    bool awaiting_rel(uint16_t pid) const;
    size_t awaiting_rel_count() const;
    // Records an inbound QoS 2 PUBLISH routed and answered with PUBREC (stored when
    // persistent: `ctx`'s batch).
    void add_awaiting_rel(SessionContext& ctx, uint16_t pid, int64_t now_ms);
    // PUBREL: forgets `pid`; false if it was not awaited. The stored state is deleted in the
    // batch, which the PUBCOMP then waits for.
    bool release(SessionContext& ctx, uint16_t pid);
    // Forgets inbound QoS 2 older than `timeout_ms` (mqtt.await_rel_timeout).
    void expire_awaiting_rel(SessionContext& ctx, int64_t now_ms, int64_t timeout_ms);

    // --- state as a whole ---
    // Rebuilds the queue state of a persistent session from the store at startup: how many
    // entries wait, which may have been sent before the stop (they go out with DUP), and the
    // QoS 2 state on both sides.
    void restore(const storage::SessionRecord& r,
                 const storage::SessionCounts& counts,
                 const std::vector<storage::InflightRecord>& inflight,
                 uint32_t max_inflight);
    // The session ends: its queued and in-flight messages go (the store deletes its entries
    // with the session).
    void clear_queue();
    SessionFigures figures() const;
    // How long the session outlives its connection, in seconds: MQTT 5's own expiry, 3.x the
    // broker's mqtt.session.expiry_interval (storage::kNeverExpires = never).
    uint32_t expiry_s(const Settings& settings) const;
    size_t queue_len() const;
    uint64_t deliver_msg() const;
    // The queue seq the next enqueued message gets.
    uint64_t next_seq() const { return queue_ ? queue_->next_seq : 0; }

private:
    struct InflightItem {
        enum class State : uint8_t { AwaitAck, AwaitRec, AwaitComp };
        OutItem item;
        State state = State::AwaitAck;
    };
    struct DiskItem {
        uint64_t seq = 0;
        uint64_t epoch = 0;  // the commit epoch that stores it; readable once committed
    };
    // The outbound queue, in-flight window, inbound QoS 2 state and message counters: none of
    // it matters until a message flows, so it lives in one block allocated on first use and
    // an idle session pays a pointer for it.
    struct Queue {
        PacketIdMap<InflightItem> inflight;
        uint64_t inflight_bytes = 0;  // of the messages in inflight not yet past PUBACK/PUBREC
        // Inbound QoS 2: packet ids received and routed, awaiting PUBREL, with when they came
        // (unix ms); bounded by mqtt.max_awaiting_rel, forgotten after mqtt.await_rel_timeout.
        std::map<uint16_t, int64_t> awaiting_rel;
        LazyDeque<OutItem> pending;
        LazyDeque<DiskItem> disk;
        // After a restart the disk seqs are not loaded until needed: `disk_unloaded` entries
        // are in the store before disk.front() (or make up the whole disk list when it is
        // empty).
        uint64_t disk_unloaded = 0;
        uint64_t disk_read_from = 0;  // seq to read the unloaded entries from
        // After a restart nothing says which stored entries had been sent before it. DUP means
        // "might be a re-delivery" (3.1.1 3.3.1.1), so it is set on those that may have been:
        // every entry of a session that was online at the stop, else the first window of
        // entries (the in-flight ones of its last connection).
        uint64_t maybe_sent_below = 0;
        uint64_t maybe_sent_first = 0;
        uint64_t next_seq = 0;

        uint64_t deliver_msg = 0;
        uint64_t enqueue_msg = 0;
        uint64_t mqueue_dropped = 0;

        size_t queue_len() const { return pending.size() + disk.size() + disk_unloaded; }
    };

    Queue& queue() {
        if (!queue_) {
            queue_ = std::make_unique<Queue>();
        }
        return *queue_;
    }
    // How many QoS 1/2 messages may be in flight (mqtt.max_inflight, the client's Receive
    // Maximum, the packet ids), and whether one more may go now (also mqtt.max_inflight_bytes).
    uint32_t send_window(const SessionContext& ctx) const;
    bool window_open(const SessionContext& ctx, uint32_t window) const;
    void release_bytes(InflightItem& in);
    void enqueue_item(SessionContext& ctx, OutItem&& item);
    // Writes `item` to the connection; false (item put back at the front of pending) when it
    // cannot go now. A message too big for the client, expired, or QoS 0 to a client that
    // does not read, is dropped as sent.
    bool send_item(SessionContext& ctx, OutItem&& item, bool dup);
    void write_publish(Connection& conn, const OutItem& item, uint16_t pid, bool dup);
    void load_disk(SessionContext& ctx, size_t room);
    void drop_oldest(SessionContext& ctx);

    const std::string client_id_;
    std::unique_ptr<Queue> queue_;
};

using SessionPtr = std::shared_ptr<Session>;

}  // namespace mqttd::broker
