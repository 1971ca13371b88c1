#include "cluster/route_table.h"

#include <vector>

#include <gtest/gtest.h>

namespace mqttd::cluster {
namespace {

std::vector<uint32_t> match(const RouteTable& t, std::string_view topic) {
    std::vector<uint32_t> out;
    t.match(topic, out);
    return out;
}

TEST(RouteTable, MatchesWildcardsLikeTheTopicIndex) {
    RouteTable t;
    EXPECT_TRUE(t.empty());
    EXPECT_TRUE(t.add("a/b", 1));
    EXPECT_FALSE(t.add("a/b", 1));
    EXPECT_TRUE(t.add("a/+", 2));
    EXPECT_TRUE(t.add("a/#", 3));
    EXPECT_TRUE(t.add("#", 4));
    EXPECT_TRUE(t.add("+/+", 2));
    EXPECT_TRUE(t.add("$SYS/#", 5));
    EXPECT_EQ(t.size(), 6u);
    EXPECT_EQ(match(t, "a/b"), (std::vector<uint32_t>{1, 2, 3, 4}));  // each node once
    EXPECT_EQ(match(t, "a"), (std::vector<uint32_t>{3, 4}));          // "a/#" matches "a"
    EXPECT_EQ(match(t, "b/c/d"), (std::vector<uint32_t>{4}));
    EXPECT_EQ(match(t, "$SYS/x"), (std::vector<uint32_t>{5}));  // [MQTT-4.7.2-1]
}

TEST(RouteTable, RemovesRoutesAndNodes) {
    RouteTable t;
    t.add("a/b", 1);
    t.add("a/b", 2);
    t.add("x/#", 2);
    EXPECT_TRUE(t.remove("a/b", 1));
    EXPECT_FALSE(t.remove("a/b", 1));
    EXPECT_FALSE(t.remove("a/c", 2));
    EXPECT_EQ(match(t, "a/b"), (std::vector<uint32_t>{2}));
    EXPECT_EQ(t.remove_node(2), 2u);
    EXPECT_TRUE(t.empty());
    EXPECT_TRUE(match(t, "a/b").empty());
    t.add("a", 1);
    t.clear();
    EXPECT_TRUE(t.empty());
}

TEST(RouteTable, SharedSubscriptionsRouteAsTheirFilter) {
    EXPECT_EQ(RouteTable::route_filter("$share/g/a/+"), "a/+");
    EXPECT_EQ(RouteTable::route_filter("$queue/a/#"), "a/#");
    EXPECT_EQ(RouteTable::route_filter("a/b"), "a/b");
    EXPECT_EQ(RouteTable::route_filter("$share/g"), "$share/g");
}

}  // namespace
}  // namespace mqttd::cluster
