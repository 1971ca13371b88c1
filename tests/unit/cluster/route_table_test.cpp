#include "cluster/route_table.h"

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd::cluster {
namespace {

std::vector<RouteTable::Target> targets(const RouteTable& t, std::string_view topic) {
    std::vector<RouteTable::Target> out;
    t.match(topic, out);
    return out;
}

std::vector<uint32_t> match(const RouteTable& t, std::string_view topic) {
    std::vector<uint32_t> out;
    for (const auto& target : targets(t, topic)) {
        out.push_back(target.node);
    }
    return out;
}

using T = RouteTable::Target;

TEST(RouteTable, ANodeIsDurableWhenAnyOfItsMatchingRoutesIs) {
    RouteTable t;
    EXPECT_TRUE(t.add("a/b", 1, false));
    EXPECT_TRUE(t.add("a/+", 1, true));
    EXPECT_TRUE(t.add("a/#", 2, false));
    EXPECT_EQ(targets(t, "a/b"), (std::vector<T>{{1, true}, {2, false}}));
    EXPECT_EQ(targets(t, "a/c"), (std::vector<T>{{1, true}, {2, false}}));
    EXPECT_TRUE(t.remove("a/+", 1));
    EXPECT_EQ(targets(t, "a/b"), (std::vector<T>{{1, false}, {2, false}}));
    // A put of the same route changes its flag.
    EXPECT_FALSE(t.add("a/#", 2, true));
    EXPECT_EQ(targets(t, "a/x"), (std::vector<T>{{2, true}}));
    EXPECT_FALSE(t.add("a/#", 2, false));
    EXPECT_EQ(targets(t, "a/x"), (std::vector<T>{{2, false}}));
    // Removed and added again: durable unless said otherwise.
    EXPECT_TRUE(t.remove("a/#", 2));
    EXPECT_TRUE(t.add("a/#", 2));
    EXPECT_EQ(targets(t, "a/x"), (std::vector<T>{{2, true}}));
    EXPECT_EQ(t.remove_node(1), 1u);
    EXPECT_TRUE(t.add("a/b", 1));
    EXPECT_EQ(targets(t, "a/b"), (std::vector<T>{{1, true}, {2, true}}));
}

TEST(RouteTable, AMatchSaysTheRevisionItWasMadeOn) {
    RouteTable t;
    EXPECT_EQ(t.revision(), 0);
    t.add("a/+", 1);
    t.set_revision(41);
    std::vector<T> out;
    EXPECT_EQ(t.match("a/b", out), 41);
    EXPECT_EQ(out, (std::vector<T>{{1, true}}));
    t.remove("a/+", 1);
    t.set_revision(42);
    out.clear();
    EXPECT_EQ(t.match("a/b", out), 42);
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(t.empty());
    EXPECT_EQ(t.revision(), 42) << "an empty table has one too";
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

TEST(RouteTable, SharedSubscriptionsRouteAsTheirGroup) {
    EXPECT_EQ(RouteTable::route_key("$share/g/a/+"), "$share/g/a/+");
    EXPECT_EQ(RouteTable::route_key("$queue/a/#"), "$share/$queue/a/#");
    EXPECT_EQ(RouteTable::route_key("a/b"), "a/b");
    EXPECT_EQ(RouteTable::route_key("$share/g"), "$share/g");
}

using Picks = std::vector<std::pair<std::string, uint32_t>>;

Picks picks(const RouteTable& t, std::string_view topic) {
    Picks out;
    t.pick_groups(topic, out);
    std::sort(out.begin(), out.end());
    return out;
}

TEST(RouteTable, APickPassesOverNodesItCannotUseUnlessNoneIsLeft) {
    RouteTable t;
    t.add("$share/g/a", 1);
    t.add("$share/g/a", 2);
    t.add("$share/g/a", 3);
    std::function<bool(uint32_t)> not_two = [](uint32_t n) {
        return n != 2;
    };
    std::map<uint32_t, int> got;
    for (int i = 0; i < 12; ++i) {
        Picks p;
        t.pick_groups("a", p, not_two);
        ASSERT_EQ(p.size(), 1u);
        ++got[p[0].second];
    }
    EXPECT_EQ(got.count(2), 0u);
    EXPECT_EQ(got[1] + got[3], 12);
    EXPECT_GE(got[1], 4);
    EXPECT_GE(got[3], 4);
    std::function<bool(uint32_t)> none = [](uint32_t) {
        return false;
    };
    Picks p;
    t.pick_groups("a", p, none);
    ASSERT_EQ(p.size(), 1u) << "refused by all: picked in turn anyway";
}

TEST(RouteTable, AGroupPicksOneOfItsNodesInTurnAndIsNoPlainRoute) {
    RouteTable t;
    EXPECT_FALSE(t.has_groups());
    EXPECT_TRUE(t.add("$share/g/a/+", 1));
    EXPECT_TRUE(t.add("$share/g/a/+", 2));
    EXPECT_FALSE(t.add("$share/g/a/+", 2));
    EXPECT_TRUE(t.add("$share/h/a/#", 3));
    EXPECT_TRUE(t.has_groups());
    EXPECT_TRUE(match(t, "a/b").empty()) << "a group's nodes are picked, not all sent to";
    std::map<uint32_t, int> g_nodes;
    for (int i = 0; i < 10; ++i) {
        Picks p = picks(t, "a/b");
        ASSERT_EQ(p.size(), 2u);
        EXPECT_EQ(p[0].first, "$share/g/a/+");
        EXPECT_EQ(p[1], (std::pair<std::string, uint32_t>{"$share/h/a/#", 3}));
        ++g_nodes[p[0].second];
    }
    EXPECT_EQ(g_nodes, (std::map<uint32_t, int>{{1, 5}, {2, 5}}));
    EXPECT_TRUE(picks(t, "b").empty());
    EXPECT_EQ(picks(t, "a").size(), 1u) << "a/# matches a";

    EXPECT_TRUE(t.remove("$share/g/a/+", 1));
    EXPECT_FALSE(t.remove("$share/g/a/+", 1));
    EXPECT_FALSE(t.remove("a/+", 2)) << "a plain route is not the group's";
    EXPECT_EQ(picks(t, "a/b")[0], (std::pair<std::string, uint32_t>{"$share/g/a/+", 2}));
    t.add("a/+", 4);
    EXPECT_EQ(match(t, "a/b"), (std::vector<uint32_t>{4}));
    EXPECT_EQ(t.remove_node(3), 1u);
    EXPECT_EQ(picks(t, "a/b").size(), 1u);
    EXPECT_TRUE(t.remove("$share/g/a/+", 2));
    EXPECT_FALSE(t.has_groups());
    EXPECT_EQ(t.size(), 1u);
}

}  // namespace
}  // namespace mqttd::cluster
