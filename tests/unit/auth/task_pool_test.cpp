// auth::TaskPool: bounded queue, cancellation on stop, and destruction from one of its own
// threads (a task holding the last reference to the pool's owner, as a provider replaced
// through REST while a check runs).
#include "broker/auth/task_pool.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include <gtest/gtest.h>

namespace mqttd::broker::auth {
namespace {

using namespace std::chrono_literals;

TEST(TaskPool, BoundedQueueAndCancelOnStop) {
    TaskPool pool(1, 2);
    std::promise<void> release;
    std::shared_future<void> gate = release.get_future().share();
    std::atomic<int> ran{0};
    std::atomic<int> cancelled{0};
    std::promise<void> started;
    ASSERT_TRUE(pool.submit([&](bool run) {
        if (run) {
            started.set_value();
            gate.wait();
            ++ran;
        }
    }));
    started.get_future().wait();  // the only thread is busy: the next ones queue
    auto count = [&](bool run) {
        ++(run ? ran : cancelled);
    };
    EXPECT_TRUE(pool.submit(count));
    EXPECT_TRUE(pool.submit(count));
    EXPECT_FALSE(pool.submit(count)) << "queue of 2 is full";
    EXPECT_EQ(pool.queued(), 2u);
    std::thread stopper([&] { pool.stop(); });
    // stop() hands the queued tasks run = false before it joins the busy thread.
    while (cancelled.load() < 2) {
        std::this_thread::yield();
    }
    release.set_value();
    stopper.join();
    EXPECT_EQ(ran.load(), 1);
    EXPECT_EQ(cancelled.load(), 2);
    EXPECT_FALSE(pool.submit(count)) << "stopped";
}

struct Owner {
    TaskPool pool{2, 8};
};

TEST(TaskPool, OwnerDestroyedOnItsOwnPoolThread) {
    for (int i = 0; i < 50; ++i) {
        auto owner = std::make_shared<Owner>();
        auto done = std::make_shared<std::promise<void>>();
        auto finished = done->get_future();
        Owner* raw = owner.get();
        // The task's closure holds the last reference once `owner` is moved in: destroying
        // the closure on the pool thread destroys the pool there.
        ASSERT_TRUE(raw->pool.submit(
                [keep = std::move(owner), done](bool) mutable { done->set_value(); }));
        finished.wait();
    }
    SUCCEED() << "no self-join (std::system_error) and no deadlock";
}

}  // namespace
}  // namespace mqttd::broker::auth
