#include "broker/auth/modules.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace mqttd::broker::auth {
namespace {

using testing::identity;

TEST(Modules, PresencePayloads) {
    Modules m("mqttd@127.0.0.1");
    ASSERT_EQ(m.set("module.presence.qos", "1"), "");
    auto id = identity("c1", "u1", std::nullopt, "192.168.1.2");
    auto up = m.connected(id, true, 0, 1500000000);
    EXPECT_EQ(up.topic, "$SYS/brokers/mqttd@127.0.0.1/clients/c1/connected");
    EXPECT_EQ(up.qos, 1);
    auto j = nlohmann::json::parse(up.payload);
    EXPECT_EQ(j["clientid"], "c1");
    EXPECT_EQ(j["username"], "u1");
    EXPECT_EQ(j["ipaddress"], "192.168.1.2");
    EXPECT_EQ(j["clean_sess"], true);
    EXPECT_EQ(j["protocol"], 4);
    EXPECT_EQ(j["connack"], 0);
    EXPECT_EQ(j["ts"], 1500000000);
    auto down = m.disconnected(identity("c1"), "normal", 1500000001);
    EXPECT_EQ(down.topic, "$SYS/brokers/mqttd@127.0.0.1/clients/c1/disconnected");
    j = nlohmann::json::parse(down.payload);
    EXPECT_EQ(j["reason"], "normal");
    EXPECT_EQ(j["username"], "undefined");  // EMQ 2.x prints an absent username so
    EXPECT_EQ(j["ts"], 1500000001);
    EXPECT_TRUE(m.presence_enabled());
    ASSERT_EQ(m.set("module.presence", "off"), "");
    EXPECT_FALSE(m.presence_enabled());
    EXPECT_NE(m.set("module.presence.qos", "3"), "");
}

TEST(Modules, AutoSubscriptions) {
    Modules m("n");
    ASSERT_EQ(m.set("module.subscription.1.topic", "$client/%c"), "");
    ASSERT_EQ(m.set("module.subscription.1.qos", "1"), "");
    ASSERT_EQ(m.set("module.subscription.2.topic", "$user/%u/inbox"), "");
    ASSERT_EQ(m.set("module.subscription.2.qos", "2"), "");
    auto subs = m.subscriptions_for(identity("c1", "alice"));
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_EQ(subs[0].topic, "$client/c1");
    EXPECT_EQ(subs[0].qos, 1);
    EXPECT_EQ(subs[1].topic, "$user/alice/inbox");
    EXPECT_EQ(subs[1].qos, 2);
    // No username: the %u subscription is skipped; wildcard values are refused.
    EXPECT_EQ(m.subscriptions_for(identity("c1")).size(), 1u);
    EXPECT_EQ(m.subscriptions_for(identity("#", "+")).size(), 0u);
    EXPECT_NE(m.set("module.subscription.x.topic", "t"), "");
    EXPECT_NE(m.set("module.subscription.1.qos", "9"), "");
}

TEST(Modules, Rewrite) {
    Modules m("n");
    ASSERT_EQ(m.set("module.rewrite.rule.1", "x/# ^x/y/(.+)$ z/y/$1"), "");
    ASSERT_EQ(m.set("module.rewrite.rule.2", "a/+/c ^a/(\\w+)/c$ b/$1/c/$1"), "");
    EXPECT_EQ(m.rewrite("x/y/1/2"), "z/y/1/2");
    EXPECT_EQ(m.rewrite("x/q"), std::nullopt);  // filter matched, regex did not: unchanged
    EXPECT_EQ(m.rewrite("a/bee/c"), "b/bee/c/bee");
    EXPECT_EQ(m.rewrite("other"), std::nullopt);
    EXPECT_NE(m.set("module.rewrite.rule.3", "x/# (unclosed y"), "");
    EXPECT_NE(m.set("module.rewrite.rule.3", "only-two parts"), "");
    EXPECT_NE(m.set("module.unknown", "1"), "");
}

}  // namespace
}  // namespace mqttd::broker::auth
