// 04 Retained messages (MQTT 3.1.1 section 3.3.1.3).
#include <map>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

// Receives publishes until `quiet` passes with nothing; returns topic -> message.
std::map<std::string, Publish> collect(RawClient& c, std::chrono::milliseconds quiet = kQuiet) {
    std::map<std::string, Publish> out;
    for (;;) {
        auto p = c.next(quiet);
        if (!p) {
            return out;
        }
        if (p->type() != kPublish) {
            ADD_FAILURE() << "expected PUBLISH, got " << describe(*p);
            continue;
        }
        auto m = parse_publish(*p);
        c.ack(m);
        EXPECT_EQ(out.count(m.topic), 0u) << "delivered twice: " << m.topic;
        out[m.topic] = m;
    }
}

// [MQTT-3.3.1-5] a retained message is stored; [MQTT-3.3.1-6] sent to a new subscription;
// [MQTT-3.3.1-8] with RETAIN=1.
TEST(Retain, StoredAndSentToNewSubscriberWithRetainFlag_MQTT_3_3_1_6) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    pub.publish("ret/a", "kept", 1, true);
    pub.disconnect();

    RawClient sub;
    sub.connect_ok(broker.port(), "rsub");
    sub.subscribe("ret/a", 1);
    auto m = sub.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "ret/a");
    EXPECT_EQ(m->payload, "kept");
    EXPECT_TRUE(m->retain) << "[MQTT-3.3.1-8]";
    EXPECT_EQ(m->qos, 1);
    sub.expect_silence();
}

// A later retained message replaces the earlier one; [MQTT-3.3.1-7] also at QoS 0.
TEST(Retain, ReplacedByNewerRetainedMessage_MQTT_3_3_1_7) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    pub.publish("ret/r", "first", 1, true);
    pub.publish("ret/r", "second", 2, true);
    pub.publish("ret/r", "third qos0", 0, true);
    RawClient sub;
    sub.connect_ok(broker.port(), "rsub");
    auto got = collect(sub);  // nothing before SUBSCRIBE
    EXPECT_TRUE(got.empty());
    EXPECT_TRUE(eventually([&] {
        RawClient probe;
        probe.connect_ok(broker.port(), "probe");
        probe.subscribe("ret/r", 2);
        auto all = collect(probe);
        return all.size() == 1 && all["ret/r"].payload == "third qos0";
    })) << "the QoS 0 retained message did not replace the QoS 2 one";
    sub.subscribe("ret/r", 2);
    got = collect(sub);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got["ret/r"].payload, "third qos0");
    EXPECT_EQ(got["ret/r"].qos, 0);
    EXPECT_TRUE(got["ret/r"].retain);
}

// [MQTT-3.3.1-10] a retained message with an empty payload is delivered as normal and removes
// the retained message; [MQTT-3.3.1-11] it is not stored itself.
TEST(Retain, EmptyPayloadDeletesRetainedMessage_MQTT_3_3_1_10) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    pub.publish("ret/d", "doomed", 1, true);
    RawClient live;
    live.connect_ok(broker.port(), "rlive");
    live.subscribe("ret/d", 1);
    auto first = live.receive_and_ack();  // the retained one
    ASSERT_TRUE(first);
    EXPECT_TRUE(first->retain);
    pub.publish("ret/d", "", 1, true);
    auto del = live.receive_and_ack();
    ASSERT_TRUE(del) << "[MQTT-3.3.1-10] the empty retained message is delivered as normal";
    EXPECT_EQ(del->payload, "");
    EXPECT_FALSE(del->retain) << "[MQTT-3.3.1-9]";

    RawClient sub;
    sub.connect_ok(broker.port(), "rsub");
    sub.subscribe("ret/#", 1);
    sub.expect_silence();  // [MQTT-3.3.1-11]
}

// Wildcard subscriptions get every matching retained message, each with RETAIN=1, at
// min(retained QoS, granted QoS).
TEST(Retain, WildcardSubscriptionGetsAllMatchingRetained_MQTT_3_3_1_6) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    pub.publish("house/kitchen/temp", "21", 2, true);
    pub.publish("house/hall/temp", "19", 1, true);
    pub.publish("house/hall/light", "on", 0, true);
    pub.publish("garden/temp", "12", 1, true);
    pub.publish("house", "root", 1, true);

    RawClient sub;
    sub.connect_ok(broker.port(), "rsub");
    sub.subscribe({{"house/+/temp", 1}});
    auto got = collect(sub);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got["house/kitchen/temp"].payload, "21");
    EXPECT_EQ(got["house/kitchen/temp"].qos, 1) << "min(2, 1)";
    EXPECT_EQ(got["house/hall/temp"].qos, 1);
    for (auto& [topic, m] : got) {
        EXPECT_TRUE(m.retain) << topic;
    }
    sub.subscribe({{"house/#", 2}});
    got = collect(sub);
    // "house/#" matches the parent "house" too [MQTT-4.7.1-2].
    EXPECT_EQ(got.size(), 4u);
    EXPECT_EQ(got.count("house"), 1u);
    EXPECT_EQ(got.count("garden/temp"), 0u);
    EXPECT_EQ(got["house/hall/light"].qos, 0);
    EXPECT_EQ(got["house/kitchen/temp"].qos, 2);
}

// [MQTT-3.8.4-3] a repeated SUBSCRIBE re-sends the retained messages.
TEST(Retain, RepeatedSubscribeResendsRetained_MQTT_3_8_4_3) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    pub.publish("ret/again", "again", 1, true);
    RawClient sub;
    sub.connect_ok(broker.port(), "rsub");
    for (int i = 0; i < 3; ++i) {
        sub.subscribe("ret/again", 1);
        auto m = sub.receive_and_ack();
        ASSERT_TRUE(m) << "SUBSCRIBE #" << i + 1;
        EXPECT_TRUE(m->retain);
        EXPECT_EQ(m->payload, "again");
        sub.expect_silence(200ms);
    }
}

// [MQTT-3.3.1-9] a message that matches an established subscription is delivered with RETAIN=0
// even if it was published with RETAIN=1.
TEST(Retain, LiveDeliveryHasRetainZero_MQTT_3_3_1_9) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "rsub");
    sub.subscribe("ret/live", 2);
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    for (uint8_t q = 0; q < 3; ++q) {
        pub.publish("ret/live", num("v", q), q, true);
        auto m = sub.receive_and_ack();
        ASSERT_TRUE(m);
        EXPECT_FALSE(m->retain) << "qos " << int{q};
    }
}

// A retained message one subscriber has received live is found by a SUBSCRIBE made right
// after, on any worker, even before the store has committed it [MQTT-3.3.1-6]: QoS 0 and
// wills have no acknowledgement that waits for that commit. storage.sync=true makes the commit
// slow enough for the race to show on most runs without the in-flight overlay.
TEST(Retain, SeenLiveThenFoundByTheNextSubscribe_MQTT_3_3_1_6) {
    BrokerProcess broker({"storage.sync=true"});
    ASSERT_TRUE(broker.running());
    RawClient watcher;
    watcher.connect_ok(broker.port(), "rwatch");
    watcher.subscribe("ret/race/#", 0);
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    for (int i = 0; i < 20; ++i) {
        std::string topic = num("ret/race/", i);
        pub.publish(topic, num("v", i), 0, true);
        ASSERT_TRUE(watcher.receive_and_ack()) << topic;
        RawClient late;
        late.connect_ok(broker.port(), num("rlate", i));
        late.subscribe(topic, 0);
        auto m = late.receive_and_ack();
        ASSERT_TRUE(m) << topic << ": delivered live, not found by the next SUBSCRIBE";
        EXPECT_EQ(m->payload, num("v", i));
        EXPECT_TRUE(m->retain);
    }
    // A deletion is seen the same way: nothing retained right after the empty message.
    pub.publish("ret/race/0", "", 0, true);
    ASSERT_TRUE(watcher.receive_and_ack());
    RawClient late;
    late.connect_ok(broker.port(), "rlate-deleted");
    late.subscribe("ret/race/0", 0);
    late.expect_silence(300ms);
}

// A persistent session that merely reconnects (no new SUBSCRIBE) does not get the retained
// messages again: they are sent only when a subscription is made [MQTT-3.3.1-6].
TEST(Retain, NotResentOnPersistentReconnect_MQTT_3_3_1_6) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    pub.publish("ret/p", "once", 1, true);
    {
        RawClient sub;
        sub.connect_ok(broker.port(), "rpersist", false);
        sub.subscribe("ret/p", 1);
        auto m = sub.receive_and_ack();
        ASSERT_TRUE(m);
        EXPECT_TRUE(m->retain);
        sub.expect_silence(200ms);
        sub.disconnect();
    }
    RawClient again;
    EXPECT_TRUE(again.connect_ok(broker.port(), "rpersist", false));
    again.expect_silence(800ms);
}

// [MQTT-4.7.2-1] retained "$" topics are not sent for '#' subscriptions.
TEST(Retain, DollarRetainedNotMatchedByHash_MQTT_4_7_2_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "rpub");
    pub.publish("$private/x", "hidden", 1, true);
    pub.publish("public/x", "shown", 1, true);
    RawClient sub;
    sub.connect_ok(broker.port(), "rsub");
    sub.subscribe("#", 1);
    auto got = collect(sub);
    EXPECT_EQ(got.count("$private/x"), 0u);
    EXPECT_EQ(got.count("public/x"), 1u);
    sub.subscribe("$private/#", 1);
    got = collect(sub);
    EXPECT_EQ(got.size(), 1u);
    EXPECT_EQ(got.count("$private/x"), 1u);
}

// The CLIs: mosquitto_pub -r stores, mosquitto_sub gets it with the retain flag.
TEST(Retain, MosquittoCliRetained) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    std::string port = std::to_string(broker.port());
    auto [rc, out] = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "cli/ret",
                                  "-m", "retained by cli", "-q", "1", "-r"},
                                 5s);
    EXPECT_EQ(rc, 0) << out;
    auto [rc2, out2] = run_command({"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/#",
                                    "-q", "1", "-C", "1", "-W", "5", "-F", "%r %t %p"},
                                   8s);
    EXPECT_EQ(rc2, 0) << out2;
    EXPECT_EQ(out2, "1 cli/ret retained by cli\n");
}

// libmosquitto sees the retain flag on a retained delivery.
TEST(Retain, LibmosquittoRetainFlag) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    MosqClient pub("mosq-rpub");
    ASSERT_EQ(pub.connect(broker.port()), 0);
    EXPECT_TRUE(pub.publish("mosq/ret", "r", 1, true));
    MosqClient sub("mosq-rsub");
    ASSERT_EQ(sub.connect(broker.port()), 0);
    sub.subscribe("mosq/#", 1);
    auto m = sub.wait_message();
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->retain);
    EXPECT_EQ(m->payload, "r");
}

}  // namespace
}  // namespace mqttd::itest
