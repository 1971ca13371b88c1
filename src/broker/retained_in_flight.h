// broker::RetainedInFlight: changes to the retained set that are routed but not yet committed
// to the store. A retained PUBLISH is delivered to live subscribers at once while its copy in
// the store commits with the publisher's batch; QoS 0 and wills have no acknowledgement that
// waits for that commit. A SUBSCRIBE handled in between, on any worker, must still find the
// message its sender may already have seen delivered to someone else ([MQTT-3.3.1-6]), so
// Worker::send_retained reads this overlay as well as the store, and an entry leaves once
// the batch that stores it has committed.
//
// Thread-safety: all members may be called from any thread (one mutex; the common case, an
// empty overlay, is answered from an atomic count without taking it).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/auth/topic_filter.h"
#include "broker/message.h"
#include "common/thread_annotations.h"

namespace mqttd::broker {

class RetainedInFlight {
public:
    struct Change {
        MessagePtr msg;            // nullptr: the topic's retained message is being deleted
        int64_t expiry_at_ms = 0;  // as stored (the retainer's expiry may shorten the message's)
        uint64_t stamp = 0;
    };

    // A change being committed. Returns a stamp for forget().
    uint64_t put(std::string_view topic, MessagePtr msg, int64_t expiry_at_ms) {
        MutexLock lock(mu_);
        uint64_t stamp = ++next_stamp_;
        auto& e = changes_[std::string(topic)];
        e.msg = std::move(msg);
        e.expiry_at_ms = expiry_at_ms;
        e.stamp = stamp;
        size_.store(changes_.size(), std::memory_order_release);
        return stamp;
    }

    // The change with `stamp` is committed: drop it unless a later change replaced it.
    void forget(const std::string& topic, uint64_t stamp) {
        MutexLock lock(mu_);
        auto it = changes_.find(topic);
        if (it != changes_.end() && it->second.stamp == stamp) {
            changes_.erase(it);
            size_.store(changes_.size(), std::memory_order_release);
        }
    }

    // The uncommitted changes on topics that `filter` matches.
    std::vector<std::pair<std::string, Change>> matching(std::string_view filter) const {
        std::vector<std::pair<std::string, Change>> out;
        if (size_.load(std::memory_order_acquire) == 0) {
            return out;
        }
        MutexLock lock(mu_);
        for (const auto& [topic, e] : changes_) {
            if (auth::topic_match(topic, filter)) {
                out.emplace_back(topic, e);
            }
        }
        return out;
    }

private:
    mutable Mutex mu_;
    std::unordered_map<std::string, Change> changes_ MQTTD_GUARDED_BY(mu_);
    uint64_t next_stamp_ MQTTD_GUARDED_BY(mu_) = 0;
    std::atomic<size_t> size_{0};
};

}  // namespace mqttd::broker
