// broker::CommitBatch: the store writes of one worker's loop turn, committed together, and
// the epochs that say which of them are durable.
//
// The first write of a turn schedules a flush (posted behind the turn's other work); the flush
// hands the batch to the store's group commit with the tokens (response_queue.h) and
// callbacks that wait for it; the committer's completion comes back through the worker's inbox
// and completes them. A turn that writes nothing completes its tokens and callbacks at once.
//
// EPOCHS. Each flushed batch has the next epoch, from 1. committed() is the highest epoch
// known finished: every batch up to it is durable or failed, because one worker's batches
// complete in the order they were committed (ResponseQueue invariant 3). Data written in the
// batch of epoch E (a queue entry the session will read back from the store) is readable once
// committed() >= E, unless that batch failed: then it is not in the store at all.
//
// EARLY FLUSH. Between packets a turn may hand its batch over before its end
// (flush_if_store_idle); the turn's own flush then takes what followed. When nothing followed,
// the tokens and callbacks added after the early flush wait for it instead of completing at once.
//
// A FAILED BATCH (the store is out of space, or failed for good) completes its tokens marked
// failed, so the responses that waited for it refuse instead of acknowledging
// (Worker::refuse_unstored); its callbacks and the committed hook run as after a durable one.
//
// Thread-safety: the owning worker's thread only; the store calls back on its committer
// thread and that callback only hands a task over (`to_worker`).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "broker/response_queue.h"
#include "storage/store.h"
#include "storage/write_batch.h"

namespace mqttd::broker {

class CommitBatch {
public:
    using Task = std::function<void()>;
    struct Hooks {
        std::function<void(Task)> post;       // run later on the worker (after this turn)
        std::function<void(Task)> to_worker;  // from the committer thread to the worker
        std::function<void(const Token&)> complete;
        std::function<void()> committed;  // after every durable batch (sessions to pump)
    };

    CommitBatch(storage::Store& store, Hooks hooks) : store_(store), hooks_(std::move(hooks)) {}
    CommitBatch(const CommitBatch&) = delete;
    CommitBatch& operator=(const CommitBatch&) = delete;

    // This turn's batch; the first use in a turn schedules its flush.
    storage::WriteBatch& writes() {
        schedule();
        return batch_;
    }
    // `t` completes once this turn's batch is durable (at once if it writes nothing).
    void add_token(const Token& t) {
        tokens_.push_back(t);
        schedule();
    }
    // `done` runs once everything written so far is durable.
    void after_commit(Task done) {
        callbacks_.push_back(std::move(done));
        schedule();
    }
    // Between two packets or deliveries (never inside one, whose writes and token must share a
    // batch): hands the batch to the store at once when it holds kEarlyOps ops or more and the
    // store's committer has nothing to write, so the committer writes the first part of a
    // large read while this worker handles the rest. The turn's flush takes what follows.
    void flush_if_store_idle() {
        if (batch_.ops().size() >= kEarlyOps && store_.commit_idle()) {
            flush();
            early_epoch_ = epoch_ - 1;
        }
    }
    static constexpr size_t kEarlyOps = 64;

    // Whether message `id` has been put in this turn's batch yet; notes it if not. (A message
    // routed to several sessions of this worker is stored once per batch.)
    bool first_in_turn(uint64_t id);

    uint64_t epoch() const { return epoch_; }          // of the batch being filled
    uint64_t committed() const { return committed_; }  // every batch up to it is durable
    bool failed() const { return failed_; }            // the store refused a write (ever)

private:
    void schedule();
    void flush();
    void on_commit(uint64_t epoch,
                   std::vector<Token>&& tokens,
                   std::vector<Task>&& callbacks,
                   bool ok);
    void complete_all(std::vector<Token>& tokens, std::vector<Task>& callbacks, bool ok);

    // Tokens and callbacks of a turn whose writes all went out in an early flush: they wait
    // for that batch (after_commit's "everything written so far").
    struct Deferred {
        uint64_t epoch;
        std::vector<Token> tokens;
        std::vector<Task> callbacks;
    };

    storage::Store& store_;
    Hooks hooks_;
    storage::WriteBatch batch_;
    std::vector<Token> tokens_;
    std::vector<Task> callbacks_;
    std::vector<uint64_t> messages_;  // message ids already put in this turn's batch
    std::vector<Deferred> deferred_;  // in epoch order
    uint64_t early_epoch_ = 0;        // this turn's last early flush, 0 if none
    bool scheduled_ = false;
    bool failed_ = false;
    uint64_t epoch_ = 1;
    uint64_t committed_ = 0;
};

}  // namespace mqttd::broker
