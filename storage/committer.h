// Committer: the store's group-commit thread (internal to storage/; see rocks_store.h, GROUP
// COMMIT). commit() queues a logical batch and wakes the thread when the queue was empty; the
// thread swaps out everything queued (all the batches that arrived while the previous group was
// written) and hands it, in queue order, to its GroupWriter as one group, then runs each
// batch's callback in queue order with that batch's result.
//
// STICKY ERROR. When a group's write fails, the committer records the failure once (error(),
// Options::on_sticky_error) and fails every batch of the group that had not failed alone; from
// then on every commit completes at once, on the caller's thread, with Status::stopped, and no
// group reaches the writer again (STYLE.md: a failed store sync is sticky, stop acking).
//
// OUT OF SPACE. A write that fails with NoSpace (ENOSPC: the file system is full) is not sticky:
// the group fails with it, the committer reports it once (on_no_space) and from then on fails
// every group with NoSpace, in queue order on its thread (so one caller's batches still
// complete in the order committed), without writing; every `resume_interval` it asks the writer
// to resume (DB::Resume(), which flushes the memtables and so needs space). Once that succeeds
// groups are written again (on_resumed). A background error of RocksDB's own (a flush that ran
// out of space, background_no_space()) starts the same wait.
//
// Ownership: owned by RocksStore, which also owns the writer and outlives the thread.
// Thread-safety: commit() and error() from any thread; start() and close() from the owner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "storage/status.h"
#include "storage/store.h"
#include "storage/write_batch.h"

namespace mqttd::storage {

// One queued logical batch and its completion.
struct PendingCommit {
    WriteBatch batch;
    CommitCallback done;
};

// Writes one group; called on the committer thread only.
class GroupWriter {
public:
    virtual ~GroupWriter() = default;
    GroupWriter(const GroupWriter&) = delete;
    GroupWriter& operator=(const GroupWriter&) = delete;
    // Applies every batch of `group`, in order, and writes the group's result in one write.
    // results[i] (ok on entry) receives the status of batch i alone: not ok when the batch was
    // refused and left out (InvalidArgument, a failed read). Returns the status of the write:
    // not ok fails the group and makes the store sticky-failed. REQUIRES: results.size() ==
    // group.size().
    virtual Status write_group(std::span<const PendingCommit> group, std::span<Status> results) = 0;
    // Called after the group's callbacks ran: drops what the group left behind.
    virtual void end_group() = 0;
    // After a NoSpace failure: makes the underlying store take writes again if it can (ok), or
    // says why not.
    virtual Status resume() { return Status::ok(); }

protected:
    GroupWriter() = default;
};

class Committer {
public:
    struct Callbacks {
        std::function<void(const Status&)> on_sticky_error;
        std::function<void(const Status&)> on_no_space;
        std::function<void(uint64_t refused)> on_resumed;
        std::chrono::milliseconds resume_interval{1000};
    };
    Committer(GroupWriter& writer, std::function<void(const Status&)> on_sticky_error);
    Committer(GroupWriter& writer, Callbacks callbacks);
    ~Committer();
    Committer(const Committer&) = delete;
    Committer& operator=(const Committer&) = delete;

    // Starts the thread. REQUIRES: called once, before close().
    void start();
    // Queues `batch`; `done` (may be empty) runs on the committer thread once the batch is
    // written or failed, or at once on this thread when the store is stopped or closed.
    void commit(WriteBatch batch, CommitCallback done);
    // The sticky error; Status::ok() while no write has failed (or only for want of space).
    Status error() const;
    StoreHealth health() const;
    // True while nothing is queued or being written (the thread waits for work). Any thread.
    bool idle() const { return idle_.load(std::memory_order_relaxed); }
    // RocksDB reported that a background job ran out of space (any thread): writes wait for a
    // resume as after a failed write.
    void background_no_space(const Status& cause);
    // Completes every queued batch, then stops the thread. Returns true for the call that
    // closed it, false for later ones.
    bool close();

private:
    void run();
    void process(std::vector<PendingCommit>& group);
    void fail_sticky(const Status& cause);
    // Enters the out-of-space wait (reported once per wait). Any thread.
    void enter_no_space(const Status& cause);
    // Committer thread: tries the writer's resume when due.
    void maybe_resume();
    Status stopped_after_failure() const;

    GroupWriter& writer_;
    const Callbacks callbacks_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<PendingCommit> queue_;  // guarded by mu_
    bool stopping_ = false;             // guarded by mu_
    bool closed_ = false;               // guarded by mu_
    std::thread thread_;

    mutable std::mutex err_mu_;
    Status sticky_;         // guarded by err_mu_
    Status no_space_;       // guarded by err_mu_: the cause of the current out-of-space wait
    uint64_t resumed_ = 0;  // guarded by err_mu_
    std::atomic<bool> failed_{false};
    std::atomic<bool> idle_{true};
    std::atomic<bool> out_of_space_{false};
    std::atomic<uint64_t> refused_{0};
    std::chrono::steady_clock::time_point next_resume_{};  // committer thread

    std::vector<Status> results_;  // committer thread: results of the group being written
};

}  // namespace mqttd::storage
