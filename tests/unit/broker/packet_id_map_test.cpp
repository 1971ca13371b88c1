// PacketIdMap: the in-flight table of a session, checked against std::map under the
// patterns a window sees (ids in sequence, acked mostly in order, some out of order, wrapping
// past 65535) and under random ones, including runs that wrap around the table's end.
#include "broker/packet_id_map.h"

#include <cstdint>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace mqttd::broker {
namespace {

// The value at `id`, or "<none>" (no dereference the compiler must prove safe).
std::string value_of(const PacketIdMap<std::string>& t, uint16_t id) {
    const std::string* v = t.find(id);
    return v ? *v : std::string("<none>");
}

void expect_same(PacketIdMap<std::string>& t, const std::map<uint16_t, std::string>& ref) {
    ASSERT_EQ(t.size(), ref.size());
    for (const auto& [id, v] : ref) {
        EXPECT_EQ(value_of(t, id), v) << id;
    }
    size_t seen = 0;
    t.for_each([&](uint16_t id, std::string& v) {
        ++seen;
        auto it = ref.find(id);
        ASSERT_NE(it, ref.end()) << id;
        EXPECT_EQ(v, it->second);
    });
    EXPECT_EQ(seen, ref.size());
}

TEST(PacketIdMap, EmptyFindsNothing) {
    PacketIdMap<std::string> t;
    EXPECT_TRUE(t.empty());
    EXPECT_EQ(t.find(1), nullptr);
    EXPECT_FALSE(t.erase(1));
    t.clear();
    EXPECT_EQ(t.size(), 0u);
}

TEST(PacketIdMap, SlidingWindowWithOutOfOrderAcks) {
    PacketIdMap<std::string> t;
    std::map<uint16_t, std::string> ref;
    std::mt19937 rng(7);
    uint16_t next = 1;
    for (int step = 0; step < 300000; ++step) {
        if (ref.size() < 500 && rng() % 3 != 0) {
            if (!ref.count(next)) {
                t.emplace(next, std::to_string(step));
                ref.emplace(next, std::to_string(step));
            }
            next = next == 65535 ? 1 : static_cast<uint16_t>(next + 1);  // wraps as pids do
        } else if (!ref.empty()) {
            // Mostly the oldest, sometimes one further in.
            auto it = ref.begin();
            std::advance(it, rng() % 4 == 0 ? rng() % ref.size() : 0);
            ASSERT_TRUE(t.erase(it->first));
            ref.erase(it);
        }
        if (step % 10007 == 0) {
            expect_same(t, ref);
        }
    }
    expect_same(t, ref);
}

TEST(PacketIdMap, RandomIdsCollideAndStayFindable) {
    PacketIdMap<std::string> t;
    std::map<uint16_t, std::string> ref;
    std::mt19937 rng(11);
    for (int step = 0; step < 200000; ++step) {
        // Ids congruent modulo small powers of two collide in the table's home slots.
        auto id = static_cast<uint16_t>(1 + (rng() % 64) * 1024 + rng() % 3);
        if (ref.count(id)) {
            EXPECT_EQ(value_of(t, id), ref[id]);
            ASSERT_TRUE(t.erase(id));
            ref.erase(id);
            EXPECT_EQ(t.find(id), nullptr);
        } else {
            t.emplace(id, std::to_string(step));
            ref.emplace(id, std::to_string(step));
        }
        if (step % 5003 == 0) {
            expect_same(t, ref);
        }
    }
    expect_same(t, ref);
    EXPECT_FALSE(t.erase(0));  // 0 marks an empty slot: never an entry
    EXPECT_EQ(t.find(0), nullptr);
}

TEST(PacketIdMap, HoldsEveryPacketIdAndClears) {
    PacketIdMap<std::string> t;
    for (uint32_t id = 1; id <= 65535; ++id) {
        t.emplace(static_cast<uint16_t>(id), std::to_string(id));
    }
    EXPECT_EQ(t.size(), 65535u);
    EXPECT_EQ(value_of(t, 65535), "65535");
    EXPECT_EQ(value_of(t, 1), "1");
    t.clear();
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.find(300), nullptr);
    t.emplace(300, "again");
    EXPECT_EQ(value_of(t, 300), "again");
}

}  // namespace
}  // namespace mqttd::broker
