// broker::Inbox: work other threads hand to one worker, in batches (STYLE.md 9). A push
// appends to the batch under a short lock and tells the pusher to post a drain only when the
// inbox goes from empty to non-empty; the drain (on the worker) takes the whole batch at once.
// So a burst of pushes from many threads costs one wake-up, not one per item.
//
// Thread-safety: push() from any thread; take() on the owning worker only.
#pragma once

#include <utility>

#include "common/thread_annotations.h"

namespace mqttd::broker {

template <typename Batch>
class Inbox {
public:
    // Runs `add(batch)` under the lock. Returns true when the caller must post a drain (the
    // inbox was empty: no drain is pending).
    template <typename Add>
    [[nodiscard]] bool push(Add&& add) {
        MutexLock lock(mutex_);
        add(batch_);
        bool first = !scheduled_;
        scheduled_ = true;
        return first;
    }

    // The batch so far, leaving the inbox empty; pushes after this post a new drain.
    Batch take() {
        Batch out;
        MutexLock lock(mutex_);
        std::swap(out, batch_);
        scheduled_ = false;
        return out;
    }

private:
    Mutex mutex_;
    Batch batch_ MQTTD_GUARDED_BY(mutex_);
    bool scheduled_ MQTTD_GUARDED_BY(mutex_) = false;
};

}  // namespace mqttd::broker
