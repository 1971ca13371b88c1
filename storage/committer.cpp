// Committer: queue, group loop, sticky error and completions; see storage/committer.h.
#include "storage/committer.h"

#include <utility>

#include <pthread.h>

namespace mqttd::storage {

Committer::Committer(GroupWriter& writer, std::function<void(const Status&)> on_sticky_error)
    : writer_(writer), on_sticky_error_(std::move(on_sticky_error)) {}

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
            cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
            if (queue_.empty()) {
                return;  // stopping and drained
            }
            group.swap(queue_);
        }
        process(group);
        group.clear();
    }
}

void Committer::process(std::vector<PendingCommit>& group) {
    if (failed_.load(std::memory_order_acquire)) {
        const Status st = stopped_after_failure();
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
        fail_sticky(written);
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
    if (on_sticky_error_) {
        on_sticky_error_(cause);
    }
}

Status Committer::stopped_after_failure() const {
    return Status::stopped("store stopped after a failed write: " + error().message());
}

}  // namespace mqttd::storage
