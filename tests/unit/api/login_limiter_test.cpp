// api::LoginLimiter in-process: the per-source budget and the hash cap follow their Options.
// (The refill is seen in tests/integration/52_rest_logins_test.cpp; here it is one failure a
// minute, so nothing refills while a test runs.)
#include "api/login_limiter.h"

#include <cstdint>
#include <future>
#include <thread>

#include <gtest/gtest.h>

namespace mqttd::api {
namespace {

LoginLimiter::Options options(double burst,
                              double refill_per_s,
                              int max_hashing,
                              int64_t max_hash_wait_ms = 0) {
    LoginLimiter::Options o;
    o.burst = burst;
    o.refill_per_s = refill_per_s;
    o.max_hashing = max_hashing;
    o.max_hash_wait_ms = max_hash_wait_ms;
    return o;
}

TEST(LoginLimiter, ASourceIsRefusedPastItsBurstOthersAreNot) {
    LoginLimiter limiter(options(3, 1.0 / 60, 1));
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(limiter.admit("10.0.0.1").allowed) << i;
        limiter.failed("10.0.0.1");
    }
    const auto refused = limiter.admit("10.0.0.1");
    EXPECT_FALSE(refused.allowed);
    // One failure earned back a minute: the next try is a minute away.
    EXPECT_GE(refused.retry_after_s, 59u);
    EXPECT_LE(refused.retry_after_s, 60u);
    EXPECT_TRUE(limiter.admit("10.0.0.2").allowed);
    EXPECT_EQ(limiter.failures(), 3u);
    EXPECT_EQ(limiter.throttled(), 1u);
}

TEST(LoginLimiter, ABurstOfOneRefusesAfterTheFirstFailure) {
    LoginLimiter limiter(options(1, 1.0 / 60, 1));
    EXPECT_TRUE(limiter.admit("a").allowed);
    limiter.failed("a");
    EXPECT_FALSE(limiter.admit("a").allowed);
}

TEST(LoginLimiter, HashesAtOnceAreCappedAtMaxHashing) {
    LoginLimiter limiter(options(10, 1, 2));
    EXPECT_TRUE(limiter.admit_hash());
    EXPECT_TRUE(limiter.admit_hash());
    EXPECT_FALSE(limiter.admit_hash());
    EXPECT_EQ(limiter.busy(), 1u);
    limiter.end_hash();
    EXPECT_TRUE(limiter.admit_hash());
    limiter.end_hash();
    limiter.end_hash();
}

TEST(LoginLimiter, ALoginWaitsForAHashSlotAndGetsItWhenOneFrees) {
    // A wait far longer than the test: the waiter returns because the slot was handed over.
    LoginLimiter limiter(options(10, 1, 1, 60000));
    ASSERT_TRUE(limiter.admit_hash());
    auto waiter = std::async(std::launch::async, [&] { return limiter.admit_hash(); });
    while (limiter.waiting() == 0) {
        std::this_thread::yield();
    }
    limiter.end_hash();
    EXPECT_TRUE(waiter.get());
    EXPECT_EQ(limiter.busy(), 0u);
    limiter.end_hash();
    EXPECT_TRUE(limiter.admit_hash()) << "the slot is free again";
    limiter.end_hash();
}

}  // namespace
}  // namespace mqttd::api
