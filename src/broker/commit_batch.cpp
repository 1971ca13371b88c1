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
            early_epoch_ = 0;
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
        if (early_epoch_ > committed_ && (!tokens.empty() || !callbacks.empty())) {
            // This turn's writes went out early and are not durable yet.
            deferred_.push_back(Deferred{early_epoch_, std::move(tokens), std::move(callbacks)});
            return;
        }
        // Nothing stored in this turn: what waits on it is complete as it is.
        complete_all(tokens, callbacks, true);
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
    complete_all(tokens, callbacks, ok);
    while (!deferred_.empty() && deferred_.front().epoch <= committed_) {
        Deferred d = std::move(deferred_.front());
        deferred_.erase(deferred_.begin());
        complete_all(d.tokens, d.callbacks, ok);
    }
    hooks_.committed();
}

void CommitBatch::complete_all(std::vector<Token>& tokens, std::vector<Task>& callbacks, bool ok) {
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
}

}  // namespace mqttd::broker
