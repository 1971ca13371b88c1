#include "broker/auth/task_pool.h"

#include <utility>

namespace mqttd::broker::auth {

TaskPool::TaskPool(size_t threads, size_t max_queue) : max_queue_(max_queue) {
    threads_.reserve(threads);
    for (size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([this] { run(); });
    }
}

TaskPool::~TaskPool() {
    stop();
}

bool TaskPool::submit(Task task) {
    {
        std::lock_guard lock(mu_);
        if (stopping_ || queue_.size() >= max_queue_) {
            return false;
        }
        queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
}

void TaskPool::stop() {
    std::deque<Task> left;
    {
        std::lock_guard lock(mu_);
        if (stopping_ && threads_.empty()) {
            return;
        }
        stopping_ = true;
        left.swap(queue_);
    }
    cv_.notify_all();
    for (auto& t : left) {
        t(false);
    }
    for (auto& th : threads_) {
        if (th.joinable()) {
            th.join();
        }
    }
    threads_.clear();
}

bool TaskPool::sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

size_t TaskPool::queued() const {
    std::lock_guard lock(mu_);
    return queue_.size();
}

void TaskPool::run() {
    for (;;) {
        Task task;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return;  // stopping and drained
            }
            task = std::move(queue_.front());
            queue_.pop_front();
        }
        task(true);
    }
}

}  // namespace mqttd::broker::auth
