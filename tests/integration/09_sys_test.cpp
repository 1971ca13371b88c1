// 09 $SYS topics (mqtt.broker.sys_interval): $SYS/brokers/<node>/... published periodically,
// not matched by leading wildcards [MQTT-4.7.2-1].
#include <map>
#include <regex>
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
        if (m.topic == "$SYS/brokers") {
            continue;  // the node list (EmqTreeWithLiveValues)
        }
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

// EMQ 2.x's tree: $SYS/brokers names the node; version, sysdescr, uptime (EMQ's wording, as the
// REST API's), datetime, stats/* and metrics/* under $SYS/brokers/<node>/, with live values.
TEST(Sys, EmqTreeWithLiveValues) {
    BrokerProcess broker({"mqtt.broker.sys_interval=1"});
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "sys-tree");
    c.subscribe({{"$SYS/brokers", 0},
                 {"$SYS/brokers/+/+", 0},
                 {"$SYS/brokers/+/stats/#", 0},
                 {"$SYS/brokers/+/metrics/#", 0}});
    std::map<std::string, std::string> seen;
    auto t0 = Clock::now();
    while (Clock::now() - t0 < 2500ms) {
        auto p = c.read(500ms);
        if (p && p->type() == kPublish) {
            auto m = parse_publish(*p);
            seen[m.topic] = m.payload;
        }
    }
    const std::string node = seen["$SYS/brokers"];
    ASSERT_EQ(node, "mqttd@127.0.0.1");
    const std::string prefix = "$SYS/brokers/" + node + "/";
    EXPECT_EQ(seen[prefix + "sysdescr"], "mqttd MQTT broker");
    EXPECT_FALSE(seen[prefix + "version"].empty());
    EXPECT_TRUE(std::regex_match(seen[prefix + "uptime"],
                                 std::regex(R"(([0-9]+ minutes, )?[0-9]+ seconds)")))
            << seen[prefix + "uptime"];
    EXPECT_TRUE(std::regex_match(
            seen[prefix + "datetime"],
            std::regex(R"([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})")))
            << seen[prefix + "datetime"];
    for (const char* stat :
         {"clients/count", "clients/max", "sessions/count", "sessions/max", "subscriptions/count",
          "subscriptions/max", "subscribers/count", "topics/count", "topics/max", "routes/count",
          "retained/count", "retained/max"}) {
        EXPECT_TRUE(seen.count(prefix + "stats/" + stat)) << stat;
    }
    EXPECT_EQ(seen[prefix + "stats/clients/count"], "1");
    EXPECT_EQ(seen[prefix + "stats/subscriptions/count"], "4");
    EXPECT_EQ(seen[prefix + "metrics/packets/connect"], "1");
    EXPECT_EQ(seen[prefix + "metrics/packets/subscribe"], "1");
    EXPECT_TRUE(seen.count(prefix + "metrics/messages/qos1/received"));
}

// emq_modules' presence: clients/<id>/connected and disconnected with EMQ 2.x's JSON.
TEST(Sys, PresenceConnectedAndDisconnected) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    auto [rc, out] = run_command({"curl", "-s", "-m", "5", "-u", "admin:public", "-X", "PUT", "-d",
                                  R"({"active": true})",
                                  "http://127.0.0.1:" + std::to_string(broker.api_port()) +
                                          "/api/v2/nodes/mqttd@127.0.0.1/plugins/emq_modules"},
                                 8s);
    ASSERT_EQ(rc, 0);
    ASSERT_NE(out.find("\"code\":0"), std::string::npos) << out;
    RawClient watch;
    watch.connect_ok(broker.port(), "presence-watch");
    watch.subscribe("$SYS/brokers/+/clients/#", 0);
    {
        RawClient c;
        c.connect_ok(broker.port(), "presence-x");
        auto m = watch.expect_publish(3s);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->topic, "$SYS/brokers/mqttd@127.0.0.1/clients/presence-x/connected");
        EXPECT_NE(m->payload.find("\"clientid\":\"presence-x\""), std::string::npos) << m->payload;
        c.disconnect();
    }
    auto m = watch.expect_publish(3s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "$SYS/brokers/mqttd@127.0.0.1/clients/presence-x/disconnected");
    EXPECT_NE(m->payload.find("\"reason\":\"normal\""), std::string::npos) << m->payload;
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
