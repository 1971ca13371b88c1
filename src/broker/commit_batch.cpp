#include "broker/commit_batch.h"

#include <algorithm>
#include <cassert>

namespace mqttd::broker {

bool CommitBatch::first_in_turn(uint64_t id) {
    if (std::find(messages_.begin(), messages_.end(), id) != messages_.end()) {
        return false;
    }
    messages_.push_back(id);
    return true;
}

void CommitBatch::schedule() {
    if (!scheduled_) {
        scheduled_ = true;
        hooks_.post([this] {
            scheduled_ = false;
            flush();
        });
    }
}

void CommitBatch::flush() {
    messages_.clear();
    std::vector<Token> tokens = std::move(tokens_);
    tokens_.clear();
    std::vector<Task> callbacks = std::move(callbacks_);
    callbacks_.clear();
    if (batch_.empty()) {
        // Nothing stored in this turn: what waits on it is complete as it is.
        for (const auto& t : tokens) {
            hooks_.complete(t);
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
    store_.commit(std::move(b),
                  [this, epoch, tokens = std::move(tokens),
                   callbacks = std::move(callbacks)](const storage::Status& st) mutable {
                      bool ok = st.is_ok();
                      hooks_.to_worker([this, epoch, tokens = std::move(tokens),
                                        callbacks = std::move(callbacks), ok]() mutable {
                          on_commit(epoch, std::move(tokens), std::move(callbacks), ok);
                      });
                  });
}

void CommitBatch::on_commit(uint64_t epoch,
                            std::vector<Token>&& tokens,
                            std::vector<Task>&& callbacks,
                            bool ok) {
    // ResponseQueue invariant 3. Only failures may come out of order: after a sticky failure
    // the store fails a new batch at once, before the queued ones it fails in turn.
    assert(!ok || epoch > committed_);
    committed_ = std::max(committed_, epoch);
    if (!ok) {
        // Not written (the store logs why): what waits on it is answered as refused, never
        // acknowledged.
        failed_ = true;
    }
    for (const auto& t : tokens) {
        if (ok) {
            hooks_.complete(t);
        } else {
            Token f = t;
            f.failed = true;
            hooks_.complete(f);
        }
    }
    for (auto& cb : callbacks) {
        cb();
    }
    hooks_.committed();
}

}  // namespace mqttd::broker
