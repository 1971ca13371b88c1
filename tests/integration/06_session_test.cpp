// 06 Sessions: persistent (clean session 0) and clean sessions, offline queues, queue bound,
// in-flight window (MQTT 3.1.1 sections 3.1.2.4, 4.1, 4.4; DESIGN.md contract 3, 6, 7).
#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

// [MQTT-3.1.2-4] the session is resumed: subscriptions survive a reconnect; [MQTT-3.2.2-2]
// session present 1.
TEST(Session, SubscriptionsKeptAcrossReconnect_MQTT_3_1_2_4) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    {
        RawClient c;
        EXPECT_FALSE(c.connect_ok(broker.port(), "keep", false)) << "[MQTT-3.2.2-3]";
        c.subscribe({{"keep/a", 1}, {"keep/+/b", 2}});
        c.disconnect();
    }
    RawClient c;
    EXPECT_TRUE(c.connect_ok(broker.port(), "keep", false)) << "[MQTT-3.2.2-2]";
    RawClient pub;
    pub.connect_ok(broker.port(), "keep-pub");
    pub.publish("keep/a", "a", 1);
    pub.publish("keep/x/b", "b", 2);
    auto m1 = c.receive_and_ack();
    auto m2 = c.receive_and_ack();
    ASSERT_TRUE(m1 && m2);
    EXPECT_EQ(m1->payload, "a");
    EXPECT_EQ(m2->payload, "b");
    EXPECT_EQ(m2->qos, 2);
}

// [MQTT-3.1.2-5] QoS 1 and QoS 2 messages published while the client is offline are kept and
// delivered, in order [MQTT-4.6.0-5], when it reconnects.
TEST(Session, OfflineQos1AndQos2DeliveredOnReconnect_MQTT_3_1_2_5) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    {
        RawClient c;
        c.connect_ok(broker.port(), "offline", false);
        c.subscribe({{"off/1", 1}, {"off/2", 2}});
        c.disconnect();
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "offline-pub");
    for (int i = 0; i < 10; ++i) {
        pub.publish(i % 2 == 0 ? "off/1" : "off/2", num("m", i),
                    static_cast<uint8_t>(i % 2 == 0 ? 1 : 2));
    }
    RawClient c;
    EXPECT_TRUE(c.connect_ok(broker.port(), "offline", false));
    for (int i = 0; i < 10; ++i) {
        auto m = c.receive_and_ack();
        ASSERT_TRUE(m) << "queued message " << i;
        EXPECT_EQ(m->payload, num("m", i));
        EXPECT_EQ(m->qos, i % 2 == 0 ? 1 : 2);
        EXPECT_FALSE(m->retain);
    }
    c.expect_silence();
    // Delivered and acknowledged: not delivered again on the next reconnect.
    c.disconnect();
    RawClient again;
    EXPECT_TRUE(again.connect_ok(broker.port(), "offline", false));
    again.expect_silence();
}

// mqtt.mqueue.max_len bounds the offline queue; what overflows is the oldest (DESIGN.md
// contract 6, src/config/README.md).
TEST(Session, QueueOverflowDropsOldest) {
    BrokerProcess broker({"mqtt.mqueue.max_len=5"});
    ASSERT_TRUE(broker.running());
    {
        RawClient c;
        c.connect_ok(broker.port(), "overflow", false);
        c.subscribe("of/t", 1);
        c.disconnect();
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "overflow-pub");
    for (int i = 0; i < 12; ++i) {
        pub.publish("of/t", std::to_string(i), 1);
    }
    RawClient c;
    EXPECT_TRUE(c.connect_ok(broker.port(), "overflow", false));
    std::vector<std::string> got;
    while (auto p = c.next(800ms)) {
        ASSERT_EQ(p->type(), kPublish) << describe(*p);
        auto m = parse_publish(*p);
        c.ack(m);
        got.push_back(m.payload);
    }
    EXPECT_EQ(got, (std::vector<std::string>{"7", "8", "9", "10", "11"}));
}

// mqtt.mqueue.store_qos0 = true (default): QoS 0 messages are queued for an offline persistent
// session too.
TEST(Session, Qos0QueuedOfflineWhenStoreQos0) {
    BrokerProcess broker({"mqtt.mqueue.store_qos0=true"});
    ASSERT_TRUE(broker.running());
    {
        RawClient c;
        c.connect_ok(broker.port(), "q0off", false);
        c.subscribe("q0off/t", 1);
        c.disconnect();
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "q0off-pub");
    pub.publish("q0off/t", "zero", 0);
    pub.publish("q0off/t", "one", 1);  // its PUBACK orders it after the QoS 0 one
    RawClient c;
    c.connect_ok(broker.port(), "q0off", false);
    auto m0 = c.receive_and_ack();
    auto m1 = c.receive_and_ack();
    ASSERT_TRUE(m0 && m1);
    EXPECT_EQ(m0->payload, "zero");
    EXPECT_EQ(m0->qos, 0);
    EXPECT_EQ(m1->payload, "one");
}

// mqtt.mqueue.store_qos0 = false: QoS 0 messages are not queued for offline sessions.
TEST(Session, Qos0NotQueuedOfflineWithoutStoreQos0) {
    BrokerProcess broker({"mqtt.mqueue.store_qos0=false"});
    ASSERT_TRUE(broker.running());
    {
        RawClient c;
        c.connect_ok(broker.port(), "q0no", false);
        c.subscribe("q0no/t", 1);
        c.disconnect();
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "q0no-pub");
    pub.publish("q0no/t", "zero", 0);
    pub.publish("q0no/t", "one", 1);
    RawClient c;
    c.connect_ok(broker.port(), "q0no", false);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "one");
    c.expect_silence();
}

// [MQTT-3.1.2-6] clean session 1 discards the previous session: no session present, no
// subscriptions, no queued messages, and nothing is left for a later clean_session=0 connect.
TEST(Session, CleanSessionDiscardsState_MQTT_3_1_2_6) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    {
        RawClient c;
        c.connect_ok(broker.port(), "cleaner", false);
        c.subscribe("clean/t", 1);
        c.disconnect();
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "cleaner-pub");
    pub.publish("clean/t", "queued", 1);
    {
        RawClient c;
        EXPECT_FALSE(c.connect_ok(broker.port(), "cleaner", true)) << "[MQTT-3.2.2-1]";
        c.expect_silence();  // the queued message is discarded with the session
        pub.publish("clean/t", "live", 1);
        c.expect_silence();  // and so is the subscription
        c.disconnect();
    }
    RawClient c;
    EXPECT_FALSE(c.connect_ok(broker.port(), "cleaner", false))
            << "[MQTT-3.2.2-3] the clean session must not leave a stored session";
    pub.publish("clean/t", "after", 1);
    c.expect_silence();
}

// [MQTT-3.1.2-6] a clean session's state ends with its connection.
TEST(Session, CleanSessionNotKeptAfterDisconnect_MQTT_3_1_2_6) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    {
        RawClient c;
        c.connect_ok(broker.port(), "ephemeral", true);
        c.subscribe("eph/t", 1);
        c.disconnect();
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "eph-pub");
    pub.publish("eph/t", "x", 1);
    RawClient c;
    EXPECT_FALSE(c.connect_ok(broker.port(), "ephemeral", false));
    c.expect_silence();
}

// mqtt.max_inflight bounds the unacknowledged window; the rest is queued and sent as acks come
// back, in order.
TEST(Session, InflightWindowBounded) {
    BrokerProcess broker({"mqtt.max_inflight=2"});
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "window", false);
    sub.subscribe("win/t", 1);
    RawClient pub;
    pub.connect_ok(broker.port(), "window-pub");
    for (int i = 0; i < 5; ++i) {
        pub.publish("win/t", std::to_string(i), 1);
    }
    auto a = sub.expect_publish();
    auto b = sub.expect_publish();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->payload, "0");
    EXPECT_EQ(b->payload, "1");
    sub.expect_silence();  // window full
    for (int i = 2; i < 5; ++i) {
        sub.send(pkt::puback(a->packet_id));
        a = b;
        b = sub.expect_publish();
        ASSERT_TRUE(b) << "message " << i << " after a PUBACK freed the window";
        EXPECT_EQ(b->payload, std::to_string(i));
    }
    sub.send(pkt::puback(a->packet_id));
    sub.send(pkt::puback(b->packet_id));
    sub.expect_silence();
}

// libmosquitto persistent session: messages published while offline arrive on reconnect.
TEST(Session, LibmosquittoOfflineQueue_MQTT_3_1_2_5) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    {
        MosqClient c("mosq-offline", false);
        ASSERT_EQ(c.connect(broker.port()), 0);
        c.subscribe("mosqoff/#", 2);
        c.disconnect();
    }
    MosqClient pub("mosq-offline-pub");
    ASSERT_EQ(pub.connect(broker.port()), 0);
    pub.publish("mosqoff/1", "one", 1);
    pub.publish("mosqoff/2", "two", 2);
    MosqClient c("mosq-offline", false);
    ASSERT_EQ(c.connect(broker.port()), 0);
    EXPECT_TRUE(c.session_present());
    auto m1 = c.wait_message();
    auto m2 = c.wait_message();
    ASSERT_TRUE(m1 && m2);
    EXPECT_EQ(m1->payload, "one");
    EXPECT_EQ(m2->payload, "two");
    EXPECT_EQ(m2->qos, 2);
}

}  // namespace
}  // namespace mqttd::itest
