// broker::Session: the MQTT session state of one client id — subscriptions, the outbound
// queue and in-flight window, inbound QoS 2 state and counters. A session lives on its home
// worker (hash of the client id) for its whole life and is touched only there; the few fields
// other threads read are atomics or immutable. Shared ownership: the home worker's session
// table and every TopicIndex entry hold a shared_ptr, so a delivery in flight to a session that
// has just ended finds it marked ended instead of freed.
//
// Outbound queue (persistent sessions, DESIGN.md contract 1-3):
//   inflight  -- sent, awaiting PUBACK / PUBREC / PUBCOMP, keyed by packet id;
//   pending   -- loaded in memory, not yet sent (older than every disk item);
//   disk      -- seqs stored in the `queues` family but not loaded (after a restart, or while
//                offline), newest last; loaded in pages as the window frees.
// A stored item's outbound packet id is derived from its queue seq (pid_for_seq), so sending
// needs no write and a resend after a restart reuses the same id — what QoS 2 exactly-once
// needs on the receiver's side.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/message.h"
#include "broker/subscription_ids.h"
#include "common/lazy_deque.h"
#include "mqtt/packets.h"

namespace mqttd::broker {

class Connection;

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

struct InflightItem {
    enum class State : uint8_t { AwaitAck, AwaitRec, AwaitComp };
    OutItem item;
    State state = State::AwaitAck;
};

struct DiskItem {
    uint64_t seq = 0;
    uint64_t epoch = 0;  // the worker's commit epoch that stores it; readable once committed
};

// The outbound queue, in-flight window, inbound QoS 2 state and message counters of a session:
// none of it matters until a message flows, so it lives in one block Session::queue() allocates
// on first use and an idle session pays a pointer for it. Home worker only.
struct SessionQueue {
    std::map<uint16_t, InflightItem> inflight;
    // Inbound QoS 2: packet ids received and routed, awaiting PUBREL, with when they came
    // (unix ms); bounded by mqtt.max_awaiting_rel, forgotten after mqtt.await_rel_timeout.
    std::map<uint16_t, int64_t> awaiting_rel;
    LazyDeque<OutItem> pending;
    LazyDeque<DiskItem> disk;
    // After a restart the disk seqs are not loaded until needed: `disk_unloaded` entries are in
    // the store before disk.front() (or make up the whole disk list when it is empty).
    uint64_t disk_unloaded = 0;
    uint64_t disk_read_from = 0;  // seq to read the unloaded entries from
    // After a restart nothing says which stored entries had been sent before it. DUP means
    // "might be a re-delivery" (3.1.1 3.3.1.1), so it is set on those that may have been: every
    // entry of a session that was online at the stop, else the first window of entries (the
    // in-flight ones of its last connection).
    uint64_t maybe_sent_below = 0;
    uint64_t maybe_sent_first = 0;
    uint64_t next_seq = 0;

    uint64_t deliver_msg = 0;
    uint64_t enqueue_msg = 0;
    uint64_t mqueue_dropped = 0;

    size_t queue_len() const { return pending.size() + disk.size() + disk_unloaded; }
};

class Session {
public:
    Session(std::string client_id, uint32_t worker, bool persistent)
        : client_id_(std::move(client_id)), worker_(worker), persistent_(persistent) {}
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

    // Written on the home worker, read anywhere (routing decisions may be stale).
    std::atomic<bool> online{false};
    std::atomic<bool> ended{false};

    // ACL marks (acl.h, BEYOND EMQ): the subscription filters that share topics with a rule
    // denying this client to subscribe; a delivery whose topic one of them matches is dropped
    // when subscribing to that topic is denied. Computed on the home worker for the ACL
    // epoch acl_marks_epoch - 1 (0 = to compute); null when no filter is marked.
    std::unique_ptr<std::vector<std::string>> acl_marked;
    uint64_t acl_marks_epoch = 0;

    // The queue state, allocated here on first use: call it where a message flows.
    SessionQueue& queue() {
        if (!queue_) {
            queue_ = std::make_unique<SessionQueue>();
        }
        return *queue_;
    }
    // nullptr while no message has flowed: an empty queue with zero counters.
    SessionQueue* queue_if_any() { return queue_.get(); }
    const SessionQueue* queue_if_any() const { return queue_.get(); }

    size_t queue_len() const { return queue_ ? queue_->queue_len() : 0; }

private:
    const std::string client_id_;
    std::unique_ptr<SessionQueue> queue_;
    const uint32_t worker_;
    const bool persistent_;
};

using SessionPtr = std::shared_ptr<Session>;

}  // namespace mqttd::broker
