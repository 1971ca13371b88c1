// auth::TaskPool: a few threads and a bounded FIFO queue for the blocking work of the auth
// plugins (PBKDF2 verification, libcurl requests, web hook deliveries), so no broker worker
// ever waits on it. submit() never blocks: a full queue refuses the task and the caller
// answers at once (Deny / drop, counted).
//
// Shutdown: the destructor (or stop()) wakes sleepers, lets the running tasks finish, calls
// every still-queued task with run = false (so each can still report "cancelled" to its
// caller exactly once), and joins the threads.
//
// Thread-safety: submit/stop/sleep_for/queued from any thread. stop() (and so the destructor)
// may run on one of the pool's own threads - a task whose captures held the last reference to
// the pool's owner: that thread is detached instead of joined, and the queue state it still
// touches is shared with it, so it outlives the pool object.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mqttd::broker::auth {

class TaskPool {
public:
    // run = false: the pool is stopping; the task must only report cancellation.
    using Task = std::function<void(bool run)>;

    TaskPool(size_t threads, size_t max_queue);
    ~TaskPool();
    TaskPool(const TaskPool&) = delete;
    TaskPool& operator=(const TaskPool&) = delete;

    // False (and `task` is not called) when the queue is full or the pool is stopping.
    [[nodiscard]] bool submit(Task task);
    void stop();
    // Sleeps up to `d`; returns false at once when the pool is stopping (for retry backoff
    // inside tasks).
    bool sleep_for(std::chrono::milliseconds d);
    size_t queued() const;

private:
    struct State {
        mutable std::mutex mu;
        std::condition_variable cv;
        std::deque<Task> queue;
        size_t max_queue = 0;
        bool stopping = false;
    };
    static void run(const std::shared_ptr<State>& state);

    std::shared_ptr<State> state_;
    std::mutex threads_mu_;
    std::vector<std::thread> threads_;
};

}  // namespace mqttd::broker::auth
