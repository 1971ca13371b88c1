#include "broker/auth/task_pool.h"

#include <utility>

namespace mqttd::broker::auth {

TaskPool::TaskPool(size_t threads, size_t max_queue) : state_(std::make_shared<State>()) {
    state_->max_queue = max_queue;
    threads_.reserve(threads);
    for (size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([s = state_] { run(s); });
    }
}

TaskPool::~TaskPool() {
    stop();
}

bool TaskPool::submit(Task task) {
    {
        std::lock_guard lock(state_->mu);
        if (state_->stopping || state_->queue.size() >= state_->max_queue) {
            return false;
        }
        state_->queue.push_back(std::move(task));
    }
    state_->cv.notify_one();
    return true;
}

void TaskPool::stop() {
    std::deque<Task> left;
    {
        std::lock_guard lock(state_->mu);
        state_->stopping = true;
        left.swap(state_->queue);
    }
    state_->cv.notify_all();
    for (auto& t : left) {
        t(false);
    }
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(threads_mu_);
        threads.swap(threads_);
    }
    for (auto& th : threads) {
        if (th.get_id() == std::this_thread::get_id()) {
            th.detach();  // stopping from inside a task: this thread exits after it
        } else if (th.joinable()) {
            th.join();
        }
    }
}

bool TaskPool::sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(state_->mu);
    return !state_->cv.wait_for(lock, d, [this] { return state_->stopping; });
}

size_t TaskPool::queued() const {
    std::lock_guard lock(state_->mu);
    return state_->queue.size();
}

void TaskPool::run(const std::shared_ptr<State>& state) {
    for (;;) {
        Task task;
        {
            std::unique_lock lock(state->mu);
            state->cv.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
            if (state->queue.empty()) {
                return;  // stopping and drained
            }
            task = std::move(state->queue.front());
            state->queue.pop_front();
        }
        task(true);
    }
}

}  // namespace mqttd::broker::auth
