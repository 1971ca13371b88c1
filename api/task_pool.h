// api::TaskPool: a few threads for the REST requests that ask other members of the cluster
// (api/cluster_calls.cpp). Such a request waits for other nodes' REST APIs; run on an HTTP
// thread, it would hold that thread while a member's request to this node waits behind it,
// and two nodes asking each other would each wait for the other until the timeout. Here the
// HTTP threads stay free to answer members.
//
// Ownership: owned by api::Server; stop() before the HTTP endpoint shuts down (a task holds
// an answer to write through it). Thread-safety: submit() from any thread; stop() from one.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mqttd::api {

class TaskPool {
public:
    TaskPool(size_t threads, size_t max_queued);
    ~TaskPool();
    TaskPool(const TaskPool&) = delete;
    TaskPool& operator=(const TaskPool&) = delete;

    // Queues `task`; false (and `task` not run) when max_queued are waiting or after stop().
    bool submit(std::function<void()> task);
    // Lets the running tasks finish, drops the queued ones (destroyed unrun) and joins.
    // Idempotent.
    void stop();

private:
    void run();

    const size_t max_queued_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;  // guarded by mutex_
    bool stopping_ = false;                    // guarded by mutex_
    std::vector<std::thread> threads_;
};

}  // namespace mqttd::api
