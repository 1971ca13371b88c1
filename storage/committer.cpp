// Committer: queue, group loop, sticky error and completions; see storage/committer.h.
#include "storage/committer.h"

#include <utility>

#include <pthread.h>

namespace mqttd::storage {

Committer::Committer(GroupWriter& writer, std::function<void(const Status&)> on_sticky_error)
    : Committer(writer, Callbacks{std::move(on_sticky_error), nullptr, nullptr}) {}

Committer::Committer(GroupWriter& writer, Callbacks callbacks)
    : writer_(writer), callbacks_(std::move(callbacks)) {}

Committer::~Committer() {
    close();
}

void Committer::start() {
    thread_ = std::thread([this] {
        ::pthread_setname_np(::pthread_self(), "mqttd-commit");  // for top -H and perf
        run();
    });
}

void Committer::commit(WriteBatch batch, CommitCallback done) {
    if (failed_.load(std::memory_order_acquire)) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        if (done) {
            done(stopped_after_failure());
        }
        return;
    }
    {
        std::unique_lock lock(mu_);
        if (!closed_) {
            const bool was_empty = queue_.empty();
            queue_.push_back(PendingCommit{std::move(batch), std::move(done)});
            idle_.store(false, std::memory_order_relaxed);
            lock.unlock();
            if (was_empty) {
                cv_.notify_one();
            }
            return;
        }
    }
    if (done) {
        done(Status::stopped("store is closed"));
    }
}

Status Committer::error() const {
    std::lock_guard lock(err_mu_);
    return sticky_;
}

StoreHealth Committer::health() const {
    StoreHealth h;
    h.refused_writes = refused_.load(std::memory_order_relaxed);
    std::lock_guard lock(err_mu_);
    h.resumed = resumed_;
    if (!sticky_.is_ok()) {
        h.state = StoreHealth::State::Failed;
        h.error = sticky_.to_string();
    } else if (out_of_space_.load(std::memory_order_relaxed)) {
        h.state = StoreHealth::State::NoSpace;
        h.error = no_space_.to_string();
    }
    return h;
}

void Committer::background_no_space(const Status& cause) {
    enter_no_space(cause);
    cv_.notify_one();
}

void Committer::enter_no_space(const Status& cause) {
    {
        std::lock_guard lock(err_mu_);
        if (out_of_space_.load(std::memory_order_relaxed)) {
            return;
        }
        no_space_ = cause;
        out_of_space_.store(true, std::memory_order_release);
    }
    if (callbacks_.on_no_space) {
        callbacks_.on_no_space(cause);
    }
}

void Committer::maybe_resume() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_resume_) {
        return;
    }
    next_resume_ = now + callbacks_.resume_interval;
    const Status s = writer_.resume();
    if (!s.is_ok()) {
        return;  // still no space (or RocksDB is busy): the next interval tries again
    }
    {
        std::lock_guard lock(err_mu_);
        no_space_ = Status::ok();
        ++resumed_;
        out_of_space_.store(false, std::memory_order_release);
    }
    if (callbacks_.on_resumed) {
        callbacks_.on_resumed(refused_.load(std::memory_order_relaxed));
    }
}

bool Committer::close() {
    {
        std::lock_guard lock(mu_);
        if (closed_) {
            return false;
        }
        closed_ = true;
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) {
        thread_.join();
    }
    return true;
}

void Committer::run() {
    std::vector<PendingCommit> group;
    for (;;) {
        {
            std::unique_lock lock(mu_);
            auto ready = [this] {
                return !queue_.empty() || stopping_;
            };
            if (queue_.empty()) {
                idle_.store(true, std::memory_order_relaxed);
            }
            if (out_of_space_.load(std::memory_order_acquire) &&
                !failed_.load(std::memory_order_acquire)) {
                // Out of space: wake at the next resume attempt even when nothing is queued.
                cv_.wait_until(lock, next_resume_, ready);
            } else {
                cv_.wait(lock, ready);
            }
            if (queue_.empty() && stopping_) {
                return;  // stopping and drained
            }
            group.swap(queue_);
        }
        if (out_of_space_.load(std::memory_order_acquire) &&
            !failed_.load(std::memory_order_acquire)) {
            maybe_resume();
        }
        if (!group.empty()) {
            process(group);
            group.clear();
        }
    }
}

void Committer::process(std::vector<PendingCommit>& group) {
    const bool failed = failed_.load(std::memory_order_acquire);
    if (failed || out_of_space_.load(std::memory_order_acquire)) {
        // Sticky, or waiting for space: refused in queue order, nothing written.
        const Status st = failed ? stopped_after_failure() : [this] {
            std::lock_guard lock(err_mu_);
            return Status::no_space("store is waiting for space: " + no_space_.message());
        }();
        refused_.fetch_add(group.size(), std::memory_order_relaxed);
        for (auto& p : group) {
            if (p.done) {
                p.done(st);
            }
        }
        return;
    }
    results_.assign(group.size(), Status::ok());
    const Status written = writer_.write_group(group, results_);
    if (!written.is_ok()) {
        if (written.is_no_space()) {
            enter_no_space(written);
            next_resume_ = std::chrono::steady_clock::now() + callbacks_.resume_interval;
        } else {
            fail_sticky(written);
        }
        refused_.fetch_add(group.size(), std::memory_order_relaxed);
        for (auto& r : results_) {
            if (r.is_ok()) {
                r = written;
            }
        }
    }
    for (size_t i = 0; i < group.size(); ++i) {
        if (group[i].done) {
            group[i].done(results_[i]);
        }
    }
    writer_.end_group();
}

void Committer::fail_sticky(const Status& cause) {
    {
        std::lock_guard lock(err_mu_);
        if (!sticky_.is_ok()) {
            return;
        }
        sticky_ = cause;
    }
    failed_.store(true, std::memory_order_release);
    if (callbacks_.on_sticky_error) {
        callbacks_.on_sticky_error(cause);
    }
}

Status Committer::stopped_after_failure() const {
    return Status::stopped("store stopped after a failed write: " + error().message());
}

}  // namespace mqttd::storage
