// 09 $SYS topics (mqtt.broker.sys_interval): $SYS/brokers/<node>/... published periodically,
// not matched by leading wildcards [MQTT-4.7.2-1].
#include <set>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

using Clock = std::chrono::steady_clock;

// The uptime topic arrives repeatedly, about once per sys_interval.
TEST(Sys, UptimePublishedEverySysInterval) {
    BrokerProcess broker({"mqtt.broker.sys_interval=1"});
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "sys");
    c.subscribe("$SYS/brokers/+/uptime", 0);
    auto t0 = Clock::now();
    int seen = 0;
    while (seen < 3 && Clock::now() - t0 < 6s) {
        auto m = c.expect_publish(3s);
        ASSERT_TRUE(m) << "no $SYS uptime within 3 s with sys_interval=1";
        EXPECT_EQ(m->topic.rfind("$SYS/brokers/", 0), 0u) << m->topic;
        EXPECT_EQ(m->topic.substr(m->topic.size() - 7), "/uptime");
        EXPECT_FALSE(m->payload.empty());
        ++seen;
    }
    EXPECT_EQ(seen, 3);
    EXPECT_GE(Clock::now() - t0, 1500ms) << "3 uptime messages came faster than 1 per second";
}

// Version and other broker topics are published under $SYS/brokers/<node>/.
TEST(Sys, BrokerTopicsUnderSysBrokers) {
    BrokerProcess broker({"mqtt.broker.sys_interval=1"});
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "sys-all");
    c.subscribe("$SYS/#", 0);
    std::set<std::string> leaves;
    auto t0 = Clock::now();
    std::string version;
    while (Clock::now() - t0 < 2500ms) {
        auto p = c.read(500ms);
        if (!p) {
            continue;
        }
        ASSERT_EQ(p->type(), kPublish) << describe(*p);
        auto m = parse_publish(*p);
        ASSERT_EQ(m.topic.rfind("$SYS/brokers/", 0), 0u) << m.topic;
        std::string rest = m.topic.substr(13);
        std::string leaf = rest.substr(rest.find('/') + 1);
        leaves.insert(leaf);
        if (leaf == "version") {
            version = m.payload;
        }
    }
    EXPECT_TRUE(leaves.count("uptime"));
    EXPECT_TRUE(leaves.count("version"));
    EXPECT_FALSE(version.empty());
}

// [MQTT-4.7.2-1] "#" and "+/..." do not receive $SYS messages.
TEST(Sys, LeadingWildcardsDoNotMatchSys_MQTT_4_7_2_1) {
    BrokerProcess broker({"mqtt.broker.sys_interval=1"});
    ASSERT_TRUE(broker.running());
    RawClient all;
    all.connect_ok(broker.port(), "sys-hash");
    all.subscribe({{"#", 0}, {"+/brokers/#", 0}});
    RawClient sys;
    sys.connect_ok(broker.port(), "sys-explicit");
    sys.subscribe("$SYS/#", 0);
    ASSERT_TRUE(sys.expect_publish(3s));
    all.expect_silence(1500ms);
}

// sys_interval = 0 turns $SYS publishing off.
TEST(Sys, ZeroIntervalPublishesNothing) {
    BrokerProcess broker({"mqtt.broker.sys_interval=0"});
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "sys-off");
    c.subscribe("$SYS/#", 0);
    c.expect_silence(2000ms);
}

// The mosquitto_sub CLI reads $SYS topics.
TEST(Sys, MosquittoSubReadsSys) {
    BrokerProcess broker({"mqtt.broker.sys_interval=1"});
    ASSERT_TRUE(broker.running());
    auto [rc, out] =
            run_command({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()),
                         "-t", "$SYS/brokers/+/uptime", "-C", "1", "-W", "5", "-v"},
                        8s);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(out.rfind("$SYS/brokers/", 0), 0u) << out;
    EXPECT_NE(out.find("/uptime "), std::string::npos) << out;
}

}  // namespace
}  // namespace mqttd::itest
