// 02 PUBLISH QoS 0/1/2 in both directions (MQTT 3.1.1 sections 3.3-3.7, 4.3, 4.4, 4.6).
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

struct Pair {
    BrokerProcess broker;
    RawClient sub;
    RawClient pub;
};

// A subscriber on `filter` at `qos` and a publisher, both clean sessions.
void setup(Pair& p, const std::string& filter, uint8_t qos) {
    ASSERT_TRUE(p.broker.running());
    p.sub.connect_ok(p.broker.port(), "sub");
    ASSERT_EQ(p.sub.subscribe(filter, qos), Bytes{qos});
    p.pub.connect_ok(p.broker.port(), "pub");
}

// [MQTT-3.3.1-2] QoS 0: DUP 0, no packet id; [MQTT-3.3.1-9] retain 0 for a live delivery.
TEST(Publish, Qos0Delivered_MQTT_3_3_1_2) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "q0/t", 0));
    p.pub.publish("q0/t", "zero", 0);
    auto m = p.sub.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "q0/t");
    EXPECT_EQ(m->payload, "zero");
    EXPECT_EQ(m->qos, 0);
    EXPECT_FALSE(m->dup);
    EXPECT_FALSE(m->retain);
    p.sub.expect_silence();
}

// [MQTT-4.3.2-2] inbound QoS 1: PUBACK with the PUBLISH's packet id. Outbound QoS 1 carries a
// non-zero packet id [MQTT-2.3.1-1] and is not resent once PUBACKed.
TEST(Publish, Qos1BothDirections_MQTT_4_3_2_2) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "q1/t", 1));
    p.pub.send(pkt::publish("q1/t", "one", 1, 0x1234));
    auto ack = p.pub.read();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type(), kPuback) << describe(*ack);
    EXPECT_EQ(ack->flags(), 0);
    EXPECT_EQ(packet_id_of(*ack), 0x1234);

    auto m = p.sub.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "one");
    EXPECT_EQ(m->qos, 1);
    EXPECT_FALSE(m->dup);
    EXPECT_NE(m->packet_id, 0) << "[MQTT-2.3.1-1]";
    p.sub.send(pkt::puback(m->packet_id));
    p.sub.expect_silence();
}

// [MQTT-4.3.3-2] inbound QoS 2: PUBREC, then PUBCOMP for PUBREL with the same id. Outbound
// QoS 2: PUBLISH, PUBREC -> PUBREL (flags 0010 [MQTT-3.6.1-1]) -> PUBCOMP.
TEST(Publish, Qos2BothDirections_MQTT_4_3_3_2) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "q2/t", 2));
    p.pub.send(pkt::publish("q2/t", "two", 2, 0x0102));
    auto rec = p.pub.read();
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->type(), kPubrec) << describe(*rec);
    EXPECT_EQ(packet_id_of(*rec), 0x0102);
    p.pub.send(pkt::pubrel(0x0102));
    auto comp = p.pub.read();
    ASSERT_TRUE(comp);
    EXPECT_EQ(comp->type(), kPubcomp) << describe(*comp);
    EXPECT_EQ(packet_id_of(*comp), 0x0102);

    auto m = p.sub.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "two");
    EXPECT_EQ(m->qos, 2);
    EXPECT_FALSE(m->dup);
    EXPECT_NE(m->packet_id, 0);
    p.sub.send(pkt::pubrec(m->packet_id));
    auto rel = p.sub.read();
    ASSERT_TRUE(rel);
    EXPECT_EQ(rel->type(), kPubrel) << describe(*rel);
    EXPECT_EQ(rel->flags(), 0x02) << "[MQTT-3.6.1-1]";
    EXPECT_EQ(packet_id_of(*rel), m->packet_id);
    p.sub.send(pkt::pubcomp(m->packet_id));
    p.sub.expect_silence();
}

// [MQTT-4.3.3-2] until PUBREL, a re-sent PUBLISH with the same packet id is acknowledged with
// PUBREC again and must not cause a duplicate delivery.
TEST(Publish, Qos2InboundExactlyOnceOnResend_MQTT_4_3_3_2) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "eo/t", 2));
    for (int attempt = 0; attempt < 3; ++attempt) {
        p.pub.send(pkt::publish("eo/t", "once", 2, 77, false, attempt > 0));
        auto rec = p.pub.read();
        ASSERT_TRUE(rec);
        EXPECT_EQ(rec->type(), kPubrec) << describe(*rec);
        EXPECT_EQ(packet_id_of(*rec), 77);
    }
    p.pub.send(pkt::pubrel(77));
    auto comp = p.pub.read();
    ASSERT_TRUE(comp);
    EXPECT_EQ(comp->type(), kPubcomp);
    auto m = p.sub.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "once");
    p.sub.expect_silence(800ms);
}

// A PUBREL for an id that is not (any more) awaiting release still gets a PUBCOMP.
TEST(Publish, Qos2PubrelRepeatedGetsPubcomp_MQTT_4_3_3_2) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "eo2/t", 2));
    p.pub.send(pkt::publish("eo2/t", "x", 2, 9));
    auto rec = p.pub.read();
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->type(), kPubrec);
    for (int i = 0; i < 2; ++i) {
        p.pub.send(pkt::pubrel(9));
        auto comp = p.pub.read();
        ASSERT_TRUE(comp) << "PUBREL #" << i + 1;
        EXPECT_EQ(comp->type(), kPubcomp) << describe(*comp);
        EXPECT_EQ(packet_id_of(*comp), 9);
    }
    auto m = p.sub.receive_and_ack();
    ASSERT_TRUE(m);
    p.sub.expect_silence();
}

// [MQTT-3.8.4-6] delivered QoS = min(subscription QoS, published QoS), for all 9 pairs.
TEST(Publish, DeliveredQosIsMinimumOfSubscriptionAndPublish_MQTT_3_8_4_6) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient subs[3];
    for (uint8_t q = 0; q < 3; ++q) {
        subs[q].connect_ok(broker.port(), num("minsub", q));
        ASSERT_EQ(subs[q].subscribe("min/t", q), Bytes{q});
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "minpub");
    for (uint8_t pq = 0; pq < 3; ++pq) {
        pub.publish("min/t", num("pub", pq), pq);
        for (uint8_t sq = 0; sq < 3; ++sq) {
            auto m = subs[sq].receive_and_ack();
            ASSERT_TRUE(m) << "sub qos " << int{sq} << " pub qos " << int{pq};
            EXPECT_EQ(m->qos, std::min(sq, pq)) << "sub qos " << int{sq} << " pub qos " << int{pq};
            EXPECT_EQ(m->payload, num("pub", pq));
        }
    }
}

// [MQTT-3.3.1-3] the DUP flag of an incoming PUBLISH is not propagated.
TEST(Publish, DupFlagNotPropagated_MQTT_3_3_1_3) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "dup/t", 1));
    p.pub.send(pkt::publish("dup/t", "d", 1, 5, false, true));
    auto ack = p.pub.read();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type(), kPuback);
    auto m = p.sub.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->dup);
}

// [MQTT-3.3.5-1] overlapping subscriptions: one delivery, at the highest granted QoS.
TEST(Publish, OverlappingSubscriptionsDeliveredOnceAtMaxQos_MQTT_3_3_5_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "overlap");
    EXPECT_EQ(sub.subscribe({{"ov/#", 0}, {"ov/+", 2}, {"ov/x", 1}}), (Bytes{0, 2, 1}));
    RawClient pub;
    pub.connect_ok(broker.port(), "overlap-pub");
    pub.publish("ov/x", "m", 2);
    auto m = sub.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->qos, 2);
    sub.expect_silence(800ms);
}

// [MQTT-4.6.0-5] messages of one topic from one publisher arrive in order (QoS 1).
TEST(Publish, OrderPreservedPerTopic_MQTT_4_6_0_5) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "order/t", 1));
    constexpr int kN = 50;
    for (int i = 0; i < kN; ++i) {
        p.pub.publish("order/t", std::to_string(i), 1);
    }
    for (int i = 0; i < kN; ++i) {
        auto m = p.sub.receive_and_ack();
        ASSERT_TRUE(m) << "message " << i;
        EXPECT_EQ(m->payload, std::to_string(i));
    }
}

// A publisher that pipelines more QoS 1 messages than the broker lets wait for acks
// (Worker::kMaxWaitingAcks, 4096) into a persistent session is paused and resumed, not
// stalled: all 10 000 PUBACKs come back in order and the session receives all 10 000.
TEST(Publish, PipelinedBurstBeyondTheAckLimitCompletesInOrder) {
    BrokerProcess broker({"mqtt.mqueue.max_len=20000", "storage.sync=true"});
    ASSERT_TRUE(broker.running());
    {
        RawClient sub;
        sub.connect_ok(broker.port(), "burst-sub", false);
        ASSERT_EQ(sub.subscribe("burst/t", 1), Bytes{1});
        sub.disconnect();
    }
    constexpr int kN = 10000;
    RawClient pub;
    pub.connect_ok(broker.port(), "burst-pub");
    Bytes burst;
    for (int i = 0; i < kN; ++i) {
        Bytes one = pkt::publish("burst/t", std::to_string(i), 1, static_cast<uint16_t>(i + 1));
        burst.insert(burst.end(), one.begin(), one.end());
    }
    ASSERT_TRUE(pub.send(burst));
    for (int i = 0; i < kN; ++i) {
        auto a = pub.read(std::chrono::seconds(30));
        ASSERT_TRUE(a) << "PUBACK " << i;
        ASSERT_EQ(a->type(), kPuback);
        ASSERT_EQ(packet_id_of(*a), i + 1);
    }
    RawClient sub;
    EXPECT_TRUE(sub.connect_ok(broker.port(), "burst-sub", false));
    for (int i = 0; i < kN; ++i) {
        auto m = sub.receive_and_ack(std::chrono::seconds(30));
        ASSERT_TRUE(m) << "message " << i;
        ASSERT_EQ(m->payload, std::to_string(i));
    }
}

// [MQTT-4.4.0-1] [MQTT-3.3.1-1] unacknowledged QoS 1 and 2 PUBLISHes are re-sent with DUP=1 and
// their original packet ids when a persistent session reconnects; a PUBRECed QoS 2 message
// continues with PUBREL.
TEST(Publish, UnackedResentWithDupAfterReconnect_MQTT_4_4_0_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "redeliver", false);
    ASSERT_EQ(sub.subscribe({{"rd/1", 1}, {"rd/2", 2}, {"rd/3", 2}}), (Bytes{1, 2, 2}));
    RawClient pub;
    pub.connect_ok(broker.port(), "redeliver-pub");
    pub.publish("rd/1", "q1", 1);
    pub.publish("rd/2", "q2", 2);
    pub.publish("rd/3", "q2-recd", 2);
    auto m1 = sub.expect_publish();
    auto m2 = sub.expect_publish();
    auto m3 = sub.expect_publish();
    ASSERT_TRUE(m1 && m2 && m3);
    EXPECT_FALSE(m1->dup || m2->dup || m3->dup);
    // Acknowledge only the third one's PUBLISH (PUBREC), then drop the connection.
    sub.send(pkt::pubrec(m3->packet_id));
    auto rel = sub.read();
    ASSERT_TRUE(rel);
    EXPECT_EQ(rel->type(), kPubrel);
    sub.close();

    RawClient again;
    EXPECT_TRUE(again.connect_ok(broker.port(), "redeliver", false));
    std::map<uint16_t, Publish> resent;
    bool got_pubrel = false;
    for (int i = 0; i < 3; ++i) {
        auto p = again.read();
        ASSERT_TRUE(p) << "after reconnect, packet " << i;
        if (p->type() == kPubrel) {
            EXPECT_EQ(packet_id_of(*p), m3->packet_id) << "[MQTT-4.4.0-1] PUBREL re-sent";
            got_pubrel = true;
            continue;
        }
        ASSERT_EQ(p->type(), kPublish) << describe(*p);
        auto pub1 = parse_publish(*p);
        resent[pub1.packet_id] = pub1;
    }
    EXPECT_TRUE(got_pubrel) << "[MQTT-4.4.0-1] PUBREL for the PUBRECed message not re-sent";
    ASSERT_TRUE(resent.count(m1->packet_id)) << "QoS 1 not re-sent with its original id";
    ASSERT_TRUE(resent.count(m2->packet_id)) << "QoS 2 not re-sent with its original id";
    EXPECT_TRUE(resent[m1->packet_id].dup) << "[MQTT-3.3.1-1] DUP=1 on re-delivery";
    EXPECT_TRUE(resent[m2->packet_id].dup) << "[MQTT-3.3.1-1] DUP=1 on re-delivery";
    EXPECT_EQ(resent[m1->packet_id].payload, "q1");
    EXPECT_EQ(resent[m2->packet_id].payload, "q2");
    EXPECT_EQ(resent.count(m3->packet_id), 0u) << "a PUBRECed QoS 2 PUBLISH was sent again";
    again.send(pkt::puback(m1->packet_id));
    again.send(pkt::pubrec(m2->packet_id));
    again.send(pkt::pubcomp(m3->packet_id));
    auto rel2 = again.read();
    ASSERT_TRUE(rel2);
    EXPECT_EQ(rel2->type(), kPubrel);
    again.send(pkt::pubcomp(m2->packet_id));
    again.expect_silence();
}

// A large payload (200 KB) arrives intact.
TEST(Publish, LargePayloadIntact) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "big/t", 1));
    std::string payload(200 * 1024, '\0');
    for (size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<char>(i * 31 % 251);
    }
    p.pub.publish("big/t", payload, 1);
    auto m = p.sub.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload.size(), payload.size());
    EXPECT_TRUE(m->payload == payload);
}

// An empty payload is a valid message.
TEST(Publish, EmptyPayloadDelivered) {
    Pair p;
    ASSERT_NO_FATAL_FAILURE(setup(p, "empty/t", 1));
    p.pub.publish("empty/t", "", 1);
    auto m = p.sub.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "");
}

// libmosquitto publisher and subscriber at QoS 0, 1 and 2.
TEST(Publish, LibmosquittoAllQos) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    MosqClient sub("mosq-sub");
    ASSERT_EQ(sub.connect(broker.port()), 0);
    EXPECT_EQ(sub.subscribe("mq/#", 2), std::vector<int>{2});
    MosqClient pub("mosq-pub");
    ASSERT_EQ(pub.connect(broker.port()), 0);
    for (int q = 0; q < 3; ++q) {
        EXPECT_TRUE(pub.publish(num("mq/", q), num("payload", q), q));
    }
    std::set<std::string> got;
    for (int q = 0; q < 3; ++q) {
        auto m = sub.wait_message();
        ASSERT_TRUE(m) << "message " << q;
        EXPECT_EQ(m->topic, "mq/" + m->payload.substr(7));
        EXPECT_EQ(std::to_string(m->qos), m->payload.substr(7));
        EXPECT_FALSE(m->retain);
        got.insert(m->payload);
    }
    EXPECT_EQ(got.size(), 3u);
}

// mosquitto_pub CLI -> raw subscriber.
TEST(Publish, MosquittoPubCli) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "cli-sub");
    sub.subscribe("cli/t", 2);
    auto [rc, out] =
            run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()),
                         "-t", "cli/t", "-m", "from cli", "-q", "2", "-V", "mqttv311"},
                        5s);
    EXPECT_EQ(rc, 0) << out;
    auto m = sub.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "from cli");
    EXPECT_EQ(m->qos, 2);
}

// mosquitto_sub CLI receives a live message (-C 1 exits after one message).
TEST(Publish, MosquittoSubCli) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    Child c = spawn_child({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()),
                           "-t", "clisub/#", "-q", "1", "-C", "1", "-v", "-V", "mqttv31"});
    RawClient pub;
    pub.connect_ok(broker.port(), "clisub-pub");
    // The subscriber's SUBSCRIBE is not observable from here: publish until it has one.
    bool done = eventually(
            [&] {
                pub.publish("clisub/x", "hi", 1);
                return child_exited(c);
            },
            8s);
    std::string out = finish_child(c);
    EXPECT_TRUE(done);
    EXPECT_EQ(out, "clisub/x hi\n");
}

// MQTT 5 Message Expiry Interval, for a message waiting in an offline session: one that
// expires while it waits is not sent [MQTT-3.3.2-5]; one that does not is sent with the
// interval minus the time it waited [MQTT-3.3.2-6], its other properties kept.
TEST(Publish, MessageExpiryWhileQueued_MQTT5_3_3_2_5) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    std::string port = std::to_string(broker.port());
    std::vector<std::string> sub = {
            "mosquitto_sub", "-V", "5", "-h", "127.0.0.1", "-p",    port, "-t",
            "ex/#",          "-q", "1", "-c", "-i",        "exsub", "-x", "60"};
    auto make_session = sub;
    make_session.push_back("-E");
    ASSERT_EQ(run_command(make_session, 5s).first, 0);
    auto pub = [&](const std::string& topic, const std::string& expiry) {
        return run_command({"mosquitto_pub",
                            "-V",
                            "5",
                            "-h",
                            "127.0.0.1",
                            "-p",
                            port,
                            "-t",
                            topic,
                            "-m",
                            "m",
                            "-q",
                            "1",
                            "-D",
                            "publish",
                            "message-expiry-interval",
                            expiry,
                            "-D",
                            "publish",
                            "user-property",
                            "k",
                            "v"},
                           5s)
                .first;
    };
    auto before = std::chrono::steady_clock::now();
    ASSERT_EQ(pub("ex/short", "1"), 0);
    auto short_acked = std::chrono::steady_clock::now();
    ASSERT_EQ(pub("ex/long", "10"), 0);
    // The short one expires 1 s after the broker received it (before its PUBACK came back).
    std::this_thread::sleep_until(short_acked + 1100ms);
    auto drain = sub;
    for (const char* a : {"-C", "1", "-W", "5", "-F", "%t %E %P"}) {  // the first message
        drain.push_back(a);
    }
    auto [rc, out] = run_command(drain, 8s);
    double waited_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count();
    // Sent with what is left of its 10 s, in whole seconds: at most 9, at least 10 - waited.
    ASSERT_TRUE(out.starts_with("ex/long ") && out.ends_with(" k:v\n")) << out;
    int left = std::stoi(out.substr(8));
    EXPECT_LE(left, 9) << out;
    EXPECT_GE(left, 10 - static_cast<int>(std::ceil(waited_s))) << out;
}

// MQTT 5 frames built by hand (the raw client speaks 3.1.1): CONNECT with no properties, and
// QoS 0 PUBLISH with a Topic Alias property.
Bytes connect_v5(const std::string& client_id) {
    Bytes body;
    pkt::put_str(body, "MQTT");
    body.push_back(5);     // protocol level
    body.push_back(0x02);  // clean start
    pkt::put_u16(body, 60);
    body.push_back(0);  // properties
    pkt::put_str(body, client_id);
    return pkt::frame(0x10, body);
}

Bytes publish_with_alias(std::string_view topic, uint16_t alias, std::string_view payload) {
    Bytes body;
    pkt::put_str(body, topic);
    body.push_back(3);     // properties: 3 bytes
    body.push_back(0x23);  // Topic Alias
    pkt::put_u16(body, alias);
    body.insert(body.end(), payload.begin(), payload.end());
    return pkt::frame(0x30, body);
}

// MQTT 5 3.3.2.3.4: CONNACK announces a Topic Alias Maximum; a PUBLISH with a topic name and
// an alias sets it, one with an empty name uses it; subscribers get the topic, not the alias;
// an alias above the maximum closes with DISCONNECT 0x94 [MQTT-3.3.2-9].
TEST(Publish, TopicAliasesFromAnMqtt5Client_MQTT5_3_3_2_9) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "ta-sub");
    sub.subscribe("ta/#", 0);
    RawClient pub(broker.port());
    ASSERT_TRUE(pub.send(connect_v5("ta-pub")));
    auto connack = pub.read();
    ASSERT_TRUE(connack);
    ASSERT_EQ(connack->type(), kConnack);
    // Flags, reason 0, properties: Topic Alias Maximum (0x22) 10 is among them.
    const Bytes& b = connack->body;
    ASSERT_GE(b.size(), 3u);
    EXPECT_EQ(b[1], 0);
    bool announced = false;
    for (size_t i = 3; i + 2 < b.size(); ++i) {
        announced = announced || (b[i] == 0x22 && b[i + 1] == 0 && b[i + 2] == 10);
    }
    EXPECT_TRUE(announced) << "no Topic Alias Maximum 10 in CONNACK";
    ASSERT_TRUE(pub.send(publish_with_alias("ta/named", 1, "first")));
    ASSERT_TRUE(pub.send(publish_with_alias("", 1, "second")));
    for (const char* payload : {"first", "second"}) {
        auto m = sub.receive_and_ack();
        ASSERT_TRUE(m) << payload;
        EXPECT_EQ(m->topic, "ta/named");
        EXPECT_EQ(m->payload, payload);
    }
    ASSERT_TRUE(pub.send(publish_with_alias("ta/x", 11, "too far")));
    auto d = pub.read();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type(), kDisconnect);
    ASSERT_FALSE(d->body.empty());
    EXPECT_EQ(d->body[0], 0x94);
    EXPECT_TRUE(pub.wait_closed());
    sub.expect_silence(300ms);
}

// MQTT 5 [MQTT-3.14.2-2]: a client that connected with Session Expiry Interval 0 may not set a
// non-zero one in DISCONNECT: the server answers DISCONNECT 0x82 (Protocol Error) and closes.
TEST(Publish, DisconnectCannotGiveExpiryToAnEndingSession_MQTT5_3_14_2_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    ASSERT_TRUE(c.send(connect_v5("dx-v5")));
    auto connack = c.read();
    ASSERT_TRUE(connack);
    ASSERT_EQ(connack->type(), kConnack);
    // Reason 0, properties (5 bytes): Session Expiry Interval (0x11) = 60.
    ASSERT_TRUE(c.send(pkt::frame(0xE0, Bytes{0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x3C})));
    auto d = c.read();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type(), kDisconnect);
    ASSERT_FALSE(d->body.empty());
    EXPECT_EQ(d->body[0], 0x82);
    EXPECT_TRUE(c.wait_closed());
}

// MQTT 5 3.2.2.3.5: with the emq_retainer plugin stopped, CONNACK says Retain Available 0 and a
// PUBLISH with RETAIN 1 from that client gets DISCONNECT 0x9A (Retain not supported).
TEST(Publish, RetainNotAvailableWhileTheRetainerIsStopped_MQTT5) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    // The REST listener may come up a moment after the MQTT one.
    std::pair<int, std::string> stopped;
    EXPECT_TRUE(eventually([&] {
        stopped = run_command({"curl", "-s", "-u", "admin:public", "-X", "PUT",
                               "http://127.0.0.1:" + std::to_string(broker.api_port()) +
                                       "/api/v2/nodes/mqttd@127.0.0.1/plugins/emq_retainer",
                               "-d", R"({"active":false})"},
                              5s);
        return stopped.first == 0;
    }));
    ASSERT_EQ(stopped.second, R"({"code":0,"result":[]})");
    RawClient c(broker.port());
    ASSERT_TRUE(c.send(connect_v5("rna-v5")));
    auto connack = c.read();
    ASSERT_TRUE(connack);
    ASSERT_EQ(connack->type(), kConnack);
    const Bytes& b = connack->body;
    bool said = false;
    for (size_t i = 3; i + 1 < b.size(); ++i) {
        said = said || (b[i] == 0x25 && b[i + 1] == 0);
    }
    EXPECT_TRUE(said) << "no Retain Available 0 in CONNACK";
    Bytes body;
    pkt::put_str(body, "rna/t");
    body.push_back(0);  // no properties
    body.push_back('m');
    ASSERT_TRUE(c.send(pkt::frame(0x31, body)));  // QoS 0, RETAIN 1
    auto d = c.read();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type(), kDisconnect);
    ASSERT_FALSE(d->body.empty());
    EXPECT_EQ(d->body[0], 0x9A);
}

}  // namespace
}  // namespace mqttd::itest
