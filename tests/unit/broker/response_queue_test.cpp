#include "broker/response_queue.h"

#include <vector>

#include <gtest/gtest.h>

namespace mqttd::broker {
namespace {

std::vector<uint16_t> pop_ids(ResponseQueue& q) {
    std::vector<uint16_t> ids;
    q.pop_ready([&](PendingResponse& r) { ids.push_back(r.packet_id); });
    return ids;
}

// [MQTT-4.6.0-2]: responses leave in the order their requests came, whatever order their
// commits complete in.
TEST(ResponseQueue, LeavesInArrivalOrder) {
    ResponseQueue q;
    uint64_t a = q.open(response_for(mqtt::PacketType::Puback, 1));
    uint64_t b = q.open(response_for(mqtt::PacketType::Puback, 2));
    EXPECT_FALSE(q.complete(b)) << "b is ready but not at the front";
    EXPECT_TRUE(pop_ids(q).empty());
    EXPECT_TRUE(q.complete(a));
    EXPECT_EQ(pop_ids(q), (std::vector<uint16_t>{1, 2}));
    EXPECT_EQ(q.size(), 0u);
}

// Invariants 1 and 2: a response waits for every dependency added while its opener still
// holds it; the opener's own release alone does not let it out.
TEST(ResponseQueue, WaitsForEveryDependency) {
    ResponseQueue q;
    uint64_t a = q.open(response_for(mqtt::PacketType::Pubrec, 7));
    EXPECT_TRUE(q.depend(a));     // this turn's batch
    EXPECT_TRUE(q.depend(a));     // another worker's batch, through a delivery
    EXPECT_FALSE(q.complete(a));  // the opener is done adding
    EXPECT_TRUE(pop_ids(q).empty());
    EXPECT_FALSE(q.complete(a));
    EXPECT_TRUE(pop_ids(q).empty());
    EXPECT_TRUE(q.complete(a));
    EXPECT_EQ(pop_ids(q), (std::vector<uint16_t>{7}));
}

// complete() and depend() are bounds-checked: a number already gone (the connection's acks
// moved on) or never issued changes nothing, and an extra completion cannot go below zero
// and release a later response early.
TEST(ResponseQueue, StaleAndUnknownNumbersAreIgnored) {
    ResponseQueue q;
    uint64_t a = q.open(response_for(mqtt::PacketType::Puback, 1));
    q.complete(a);
    EXPECT_EQ(pop_ids(q).size(), 1u);
    EXPECT_FALSE(q.depend(a));
    EXPECT_FALSE(q.complete(a));
    EXPECT_FALSE(q.complete(a + 100));
    uint64_t b = q.open(response_for(mqtt::PacketType::Puback, 2));
    EXPECT_EQ(b, a + 1);
    ASSERT_TRUE(q.depend(b));
    EXPECT_FALSE(q.complete(a)) << "a stale number must not count for b";
    q.complete(b);
    EXPECT_TRUE(pop_ids(q).empty()) << "b still waits for its dependency";
    EXPECT_TRUE(q.complete(b));
    EXPECT_EQ(pop_ids(q), (std::vector<uint16_t>{2}));
}

TEST(ResponseQueue, BackpressureLimits) {
    ResponseQueue q;
    std::vector<uint64_t> ns;
    for (size_t i = 0; i < ResponseQueue::kMaxWaiting; ++i) {
        EXPECT_FALSE(q.over_limit());
        ns.push_back(q.open(response_for(mqtt::PacketType::Puback, 1)));
    }
    EXPECT_TRUE(q.over_limit());
    for (size_t i = 0; i < ResponseQueue::kMaxWaiting / 2; ++i) {
        q.complete(ns[i]);
    }
    pop_ids(q);
    EXPECT_TRUE(q.below_half());
    EXPECT_FALSE(q.over_limit());
}

}  // namespace
}  // namespace mqttd::broker
