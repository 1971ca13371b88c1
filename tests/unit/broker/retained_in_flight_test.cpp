#include "broker/retained_in_flight.h"

#include <atomic>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace mqttd::broker {
namespace {

MessagePtr msg(const std::string& topic, const std::string& payload) {
    return make_message(MessageInit{topic, payload, 1, true, {}, {}, 1, 0, 1});
}

TEST(RetainedInFlight, AChangeIsSeenUntilItsCommitForgetsIt) {
    RetainedInFlight f;
    EXPECT_TRUE(f.matching("#").empty());
    uint64_t stamp = f.put("a/b", msg("a/b", "v1"), 0);
    auto seen = f.matching("a/+");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].first, "a/b");
    EXPECT_EQ(seen[0].second.msg->payload(), "v1");
    EXPECT_TRUE(f.matching("x/#").empty());
    f.forget("a/b", stamp);
    EXPECT_TRUE(f.matching("#").empty());
}

// The overlay's one invariant: a commit forgets only the change it stored. A later change of
// the same topic (a second PUBLISH, or a delete) stays visible until its own commit, so a
// SUBSCRIBE never falls back to a store value that is about to be replaced.
TEST(RetainedInFlight, AnOlderCommitDoesNotForgetANewerChange) {
    RetainedInFlight f;
    uint64_t first = f.put("t", msg("t", "old"), 0);
    uint64_t second = f.put("t", nullptr, 0);  // deleted meanwhile
    f.forget("t", first);
    auto seen = f.matching("t");
    ASSERT_EQ(seen.size(), 1u) << "the delete must still hide the stored message";
    EXPECT_EQ(seen[0].second.msg, nullptr);
    f.forget("t", second);
    EXPECT_TRUE(f.matching("t").empty());
}

TEST(RetainedInFlight, DollarTopicsAndWildcards) {
    RetainedInFlight f;
    f.put("$SYS/x", msg("$SYS/x", "s"), 0);
    f.put("a", msg("a", "p"), 0);
    EXPECT_EQ(f.matching("#").size(), 1u) << "[MQTT-4.7.2-1]";
    EXPECT_EQ(f.matching("$SYS/#").size(), 1u);
}

// Writers on two threads, a reader on a third (run under TSan in CI).
TEST(RetainedInFlight, ConcurrentWritersAndReader) {
    RetainedInFlight f;
    std::atomic<bool> stop{false};
    auto writer = [&](const std::string& prefix) {
        for (int i = 0; i < 2000; ++i) {
            std::string t = prefix + std::to_string(i % 16);
            f.forget(t, f.put(t, msg(t, "x"), 0));
        }
    };
    std::thread reader([&] {
        while (!stop.load()) {
            for (const auto& [topic, change] : f.matching("#")) {
                EXPECT_FALSE(topic.empty());
            }
        }
    });
    std::thread a(writer, "a/");
    std::thread b(writer, "b/");
    a.join();
    b.join();
    stop = true;
    reader.join();
    EXPECT_TRUE(f.matching("#").empty());
}

}  // namespace
}  // namespace mqttd::broker
