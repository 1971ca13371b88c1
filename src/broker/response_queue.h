// broker::ResponseQueue: the responses of one connection that depend on the store — PUBACK,
// PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK — held until every commit they depend on is
// durable, and written in the order their requests arrived ([MQTT-4.6.0-2], [MQTT-4.6.0-3];
// DESIGN.md durability contract 1 and 2). This is where a PUBACK waits for its commit.
//
// A response is identified by a Token (worker, connection, number). Its life:
//   open()     the handler queues it, holding one count itself;
//   depend()   one more completion to wait for: a store batch it was added to (the worker's
//              own, or, through a delivery carrying the token, another worker's);
//   complete() one awaited event happened, the opener's own release included; a batch that
//              the store failed (or refused: out of space) completes it marked failed;
//   pop_ready() the responses at the front whose count is 0 leave, in order. A failed one
//              does not acknowledge what it answers (Worker::refuse_unstored).
//
// INVARIANTS (break one and a response never leaves, or leaves before its data is durable):
//   1. Every depend() is matched by exactly one complete(). A token added to a batch is
//      completed when that batch commits, or at once if the batch writes nothing. A delivery
//      for a session on another worker carries the token; that worker adds it to its own batch
//      before anything else it does with the delivery, even when it then drops the delivery
//      (session ended, message expired, ACL): an early return before that would strand it.
//   2. The opener's count is released only after all its dependencies are added, so a batch
//      that commits (or turns out empty) early cannot let the response out before the rest.
//   3. A worker's batches complete in the order it committed them (the store's committer
//      finishes them in order and their completions come back through one inbox), so
//      "everything up to epoch N is durable" is a single number (CommitBatch::committed()).
// complete() and depend() are bounds-checked: a number no longer (or never) queued, e.g. for
// a connection that has gone and come back, is ignored.
//
// Thread-safety: one connection's worker only (tokens reach it through the inbox).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/lazy_deque.h"
#include "mqtt/packets.h"

namespace mqttd::broker {

// Identifies one response waiting on store commits: the worker and connection it belongs to.
struct Token {
    uint32_t worker = 0;
    bool failed = false;  // as a completion: the batch it waited for was not written
    uint64_t connection = 0;
    uint64_t response = 0;
};

struct PendingResponse {
    mqtt::PacketType type = mqtt::PacketType::Puback;
    uint16_t packet_id = 0;
    uint32_t remaining = 0;                 // completions still to wait for
    std::vector<mqtt::ReasonCode> reasons;  // SUBACK / UNSUBACK, or one for an ack
    // SUBACK: filters whose retained messages go out after the SUBACK.
    std::vector<std::pair<std::string, mqtt::SubscribeOptions>> retained_for;
    std::vector<uint32_t> subscription_ids;
    bool store_failed = false;  // a batch it waited for was not written
};

inline PendingResponse response_for(mqtt::PacketType type, uint16_t packet_id) {
    PendingResponse r;
    r.type = type;
    r.packet_id = packet_id;
    return r;
}

class ResponseQueue {
public:
    // A connection with this many responses waiting is not read until half of them are out:
    // a publisher faster than the store stops being read instead of queueing without bound.
    static constexpr size_t kMaxWaiting = 4096;

    // Queues `r` holding the opener's count (invariant 2); returns its number.
    uint64_t open(PendingResponse&& r) {
        r.remaining = 1;
        q_.push_back(std::move(r));
        return base_ + q_.size() - 1;
    }
    // Response `n` waits for one more complete(). Returns false (and changes nothing) when
    // `n` is not queued.
    bool depend(uint64_t n) {
        PendingResponse* r = find(n);
        if (r == nullptr) {
            return false;
        }
        ++r->remaining;
        return true;
    }
    // One completion for response `n`; `failed`: what it waited for was not written. Returns
    // whether the front may now be ready.
    bool complete(uint64_t n, bool failed = false) {
        PendingResponse* r = find(n);
        if (r == nullptr || r->remaining == 0) {
            return false;
        }
        r->store_failed = r->store_failed || failed;
        --r->remaining;
        return r->remaining == 0 && n == base_;
    }
    // Calls `write(PendingResponse&)` for each response at the front that waits for nothing,
    // in order, and removes it. Returns how many left.
    template <typename Write>
    size_t pop_ready(Write&& write) {
        size_t n = 0;
        while (!q_.empty() && q_.front().remaining == 0) {
            PendingResponse r = std::move(q_.front());
            q_.pop_front();
            ++base_;
            write(r);
            ++n;
        }
        return n;
    }
    // The queued response `n`, or nullptr.
    PendingResponse* find(uint64_t n) {
        if (n < base_ || n - base_ >= q_.size()) {
            return nullptr;
        }
        return &q_[static_cast<size_t>(n - base_)];
    }
    size_t size() const { return q_.size(); }
    bool over_limit() const { return q_.size() >= kMaxWaiting; }
    bool below_half() const { return q_.size() <= kMaxWaiting / 2; }

private:
    LazyDeque<PendingResponse> q_;
    uint64_t base_ = 0;  // number of q_.front()
};

}  // namespace mqttd::broker
