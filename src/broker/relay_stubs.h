// broker::RelayStubs: sessions that have just moved from this node to another one
// (SessionMove), still matched here for a while: a message that other nodes route here by
// their routes from before the move reaches the session object, whose move relays it to the
// new owner or drops it (the new owner has it). Empty on a single node; a publish then pays
// one atomic load for it.
//
// Thread-safety: every method from any thread (one mutex; empty() is lock-free).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "broker/session.h"
#include "broker/topic_index.h"
#include "storage/records.h"

namespace mqttd::broker {

class RelayStubs {
public:
    // `s`'s plain filters `subscriptions` are matched until `until_ms` (mono).
    void add(SessionPtr s,
             const std::vector<storage::SubscriptionRecord>& subscriptions,
             int64_t until_ms);
    bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }
    // Appends a Subscriber for each stub's filter matching `topic` (shared subscriptions are
    // not kept: the worker leaves them in the index for the window, Worker::end_moved);
    // forgets expired stubs.
    void match(std::string_view topic, std::vector<Subscriber>& out);

private:
    struct Stub {
        SessionPtr session;
        std::vector<storage::SubscriptionRecord> subscriptions;
        int64_t until_ms = 0;
    };
    std::mutex mutex_;
    std::vector<Stub> stubs_;  // guarded by mutex_
    std::atomic<size_t> count_{0};
};

}  // namespace mqttd::broker
