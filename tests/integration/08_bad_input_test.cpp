// 08 Bad input (DESIGN.md bad input contract; MQTT 3.1.1 [MQTT-4.8.0-1]): malformed input
// closes that one connection, sizes are bounded before allocation, and every other client keeps
// working throughout.
#include <random>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

using Clock = std::chrono::steady_clock;

// A broker plus a bystander subscribed to "#" that must be unaffected by a bad peer.
class BadInput : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(broker_.running());
        bystander_.connect_ok(broker_.port(), "bystander");
        ASSERT_EQ(bystander_.subscribe("#", 1), Bytes{1});
    }
    // The bystander still publishes and receives; it saw nothing from the bad peer.
    void check_bystander() {
        bystander_.expect_silence(100ms);
        std::string payload = num("alive-", ++checks_);
        bystander_.publish("by/t", payload, 1);
        auto m = bystander_.receive_and_ack();
        ASSERT_TRUE(m) << "bystander stopped working";
        EXPECT_EQ(m->payload, payload);
        EXPECT_FALSE(bystander_.closed());
    }
    // Sends `bytes` on a fresh connection (after a CONNECT if `connect_first`) and expects the
    // broker to close it without answering.
    void expect_closed_by(const Bytes& bytes, const std::string& what, bool connect_first = true) {
        RawClient bad;
        if (connect_first) {
            bad.connect_ok(broker_.port(), num("bad-", ++checks_));
        } else {
            bad.open(broker_.port());
        }
        bad.send(bytes);
        int skipped = 0;
        EXPECT_TRUE(bad.wait_closed(kWait, &skipped)) << what << ": connection not closed";
        EXPECT_EQ(skipped, 0) << what << ": the broker answered";
        check_bystander();
    }

    BrokerProcess broker_;
    RawClient bystander_;
    int checks_ = 0;
};

TEST_F(BadInput, GarbageBytesClose) {
    expect_closed_by(Bytes{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1',
                           '\r', '\n', '\r', '\n'},
                     "HTTP request", false);
    std::mt19937 rng(42);
    for (int i = 0; i < 5; ++i) {
        Bytes junk(64);
        for (auto& b : junk) {
            b = static_cast<uint8_t>(rng());
        }
        junk[0] = static_cast<uint8_t>(0xf0 | (junk[0] & 0x0f));  // reserved type 15
        expect_closed_by(junk, num("random bytes #", i), i % 2 == 0);
    }
    expect_closed_by(Bytes{0x00, 0x00}, "reserved packet type 0");
}

// [MQTT-3.3.1-4] both QoS bits set.
TEST_F(BadInput, PublishWithQos3Closes_MQTT_3_3_1_4) {
    expect_closed_by(Bytes{0x36, 0x06, 0x00, 0x02, 'q', '3', 0x00, 0x01}, "PUBLISH QoS 3");
}

// A remaining length of 268435455 (~256 MB) is refused as soon as the fixed header is read:
// the connection closes quickly and the broker does not allocate it.
TEST_F(BadInput, HugeRemainingLengthClosedWithoutAllocating) {
    long rss_before = broker_.rss_kb();
    ASSERT_GT(rss_before, 0);
    for (int i = 0; i < 4; ++i) {
        RawClient bad;
        bool connect_first = i % 2 == 0;
        if (connect_first) {
            bad.connect_ok(broker_.port(), num("huge", i));
        } else {
            bad.open(broker_.port());
        }
        uint8_t type = connect_first ? 0x30 : 0x10;  // PUBLISH, or a CONNECT as first packet
        Bytes header{type, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, 'M', 'Q', 'T', 'T'};
        auto t0 = Clock::now();
        bad.send(header);
        // Keep feeding a little so a broker that waits for the body has something to buffer.
        Bytes chunk(64 * 1024, 'x');
        for (int k = 0; k < 16 && !bad.closed(); ++k) {
            if (!bad.send(chunk)) {
                break;
            }
        }
        EXPECT_TRUE(bad.wait_closed(3s)) << "256 MB announcement not refused (#" << i << ")";
        EXPECT_LE(Clock::now() - t0, 3s);
    }
    long rss_after = broker_.rss_kb();
    EXPECT_LT(rss_after - rss_before, 64 * 1024)
            << "RSS grew from " << rss_before << " KiB to " << rss_after << " KiB";
    check_bystander();
}

// A subscriber that never reads its socket does not make the broker buffer without bound:
// QoS 0 deliveries past Worker::kMaxUnsentBytes (16 MB) of unsent output are dropped for it,
// while the publisher and other clients carry on.
TEST(BadInputLimits, SubscriberThatNeverReadsDoesNotGrowTheBroker) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient watch;
    watch.connect_ok(broker.port(), "watch");
    ASSERT_EQ(watch.subscribe("watch/t", 1), Bytes{1});
    RawClient slow;
    slow.connect_ok(broker.port(), "never-reads");
    ASSERT_EQ(slow.subscribe("flood/#", 0), Bytes{0});
    long rss_before = broker.rss_kb();
    ASSERT_GT(rss_before, 0);
    RawClient pub;
    pub.connect_ok(broker.port(), "flood-pub");
    const std::string payload(100 * 1024, 'f');
    for (int i = 0; i < 1500; ++i) {  // 150 MB for a client that reads none of it
        ASSERT_TRUE(pub.send(pkt::publish("flood/t", payload, 0))) << "publish " << i;
    }
    // A QoS 1 round trip (the helper reads its PUBACK): the flood has been routed.
    pub.publish("watch/t", "after the flood", 1);
    long rss_after = broker.rss_kb();
    EXPECT_LT(rss_after - rss_before, 64 * 1024)
            << "RSS grew from " << rss_before << " KiB to " << rss_after << " KiB";
    auto m = watch.receive_and_ack();
    ASSERT_TRUE(m) << "another subscriber stopped receiving";
    EXPECT_EQ(m->payload, "after the flood");
}

// mqtt.max_packet_size: a larger packet closes the connection.
TEST(BadInputLimits, PacketOverMaxPacketSizeCloses) {
    BrokerProcess broker({"mqtt.max_packet_size=1024"});
    ASSERT_TRUE(broker.running());
    RawClient by;
    by.connect_ok(broker.port(), "by");
    by.subscribe("#", 0);
    RawClient bad;
    bad.connect_ok(broker.port(), "big");
    bad.send(pkt::publish("big/t", std::string(2000, 'x'), 0));
    int skipped = 0;
    EXPECT_TRUE(bad.wait_closed(kWait, &skipped));
    by.expect_silence();
    // Just under the limit is fine.
    RawClient ok;
    ok.connect_ok(broker.port(), "small");
    ok.publish("small/t", std::string(900, 'y'), 1);
    auto m = by.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload.size(), 900u);
}

// A remaining length encoded in more than 4 bytes is malformed.
TEST_F(BadInput, FiveByteRemainingLengthCloses) {
    expect_closed_by(Bytes{0x30, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00}, "5-byte remaining length");
}

// A client that trickles a valid CONNECT one byte at a time is served correctly, and the
// bystander is not held up meanwhile.
TEST_F(BadInput, TricklingClientIsServedAndDoesNotBlockOthers) {
    RawClient slow;
    slow.open(broker_.port());
    pkt::ConnectOptions o;
    o.client_id = "trickler";
    Bytes connect = pkt::connect(o);
    Bytes sub = pkt::subscribe(1, {{"trickle/t", 1}});
    Bytes all = connect;
    all.insert(all.end(), sub.begin(), sub.end());
    for (size_t i = 0; i < all.size(); ++i) {
        ASSERT_TRUE(slow.send(Bytes{all[i]})) << "closed at byte " << i;
        if (i % 8 == 0) {
            check_bystander();
        } else {
            std::this_thread::sleep_for(10ms);
        }
    }
    auto ack = slow.read();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type(), kConnack);
    auto suback = slow.read();
    ASSERT_TRUE(suback);
    EXPECT_EQ(suback->type(), kSuback);
    bystander_.publish("trickle/t", "to the trickler", 1);
    ASSERT_TRUE(bystander_.receive_and_ack());  // its own copy via "#"
    auto m = slow.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "to the trickler");
}

// A client that trickles an endless CONNECT is closed by the connect timeout (no slowloris).
TEST(BadInputLimits, TricklingConnectClosedByConnectTimeout) {
    BrokerProcess broker({"mqtt.connect_timeout=2"});
    ASSERT_TRUE(broker.running());
    RawClient by;
    by.connect_ok(broker.port(), "by");
    RawClient slow;
    slow.open(broker.port());
    // CONNECT announcing 200 bytes, sent at 5 bytes per 200 ms: would take 8 s.
    Bytes head{0x10, 0xc8, 0x01, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 60};
    slow.send(head);
    auto t0 = Clock::now();
    while (!slow.closed() && Clock::now() - t0 < 8s) {
        slow.send(Bytes(5, 'z'));
        slow.wait_closed(200ms);
    }
    EXPECT_TRUE(slow.closed());
    EXPECT_LE(Clock::now() - t0, 5s) << "trickled CONNECT not closed by the connect timeout";
    by.send(pkt::pingreq());
    auto p = by.read();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->type(), kPingresp);
}

// [MQTT-1.5.3-1] ill-formed UTF-8 in a topic name closes the connection; [MQTT-1.5.3-2] so does
// U+0000.
TEST_F(BadInput, InvalidUtf8TopicCloses_MQTT_1_5_3_1) {
    expect_closed_by(pkt::publish(std::string("bad/\xff\xfe"), "x", 0), "0xFF 0xFE in topic");
    expect_closed_by(pkt::publish(std::string("bad/\xc0\xaf"), "x", 1, 1), "overlong encoding");
    expect_closed_by(pkt::publish(std::string("bad/\xed\xa0\x80"), "x", 0), "UTF-16 surrogate");
    expect_closed_by(pkt::publish(std::string("bad/\0x", 6), "x", 0),
                     "[MQTT-1.5.3-2] U+0000 in topic");
    expect_closed_by(pkt::subscribe(1, {{std::string("bad/\xff"), 0}}), "0xFF in topic filter");
}

// [MQTT-3.3.2-2] [MQTT-4.7.1-1] wildcards are not allowed in a PUBLISH topic name.
TEST_F(BadInput, WildcardInPublishTopicCloses_MQTT_3_3_2_2) {
    expect_closed_by(pkt::publish("bad/#", "x", 0), "'#' in topic name");
    expect_closed_by(pkt::publish("bad/+/x", "x", 1, 1), "'+' in topic name");
}

// [MQTT-4.7.3-1] a topic name must be at least one character long.
TEST_F(BadInput, EmptyPublishTopicCloses_MQTT_4_7_3_1) {
    expect_closed_by(pkt::publish("", "x", 1, 1), "empty topic name");
}

// [MQTT-2.3.1-1] a QoS 1/2 PUBLISH needs a non-zero packet id.
TEST_F(BadInput, ZeroPacketIdPublishCloses_MQTT_2_3_1_1) {
    expect_closed_by(pkt::publish("by/zero", "x", 1, 0), "QoS 1 PUBLISH with packet id 0");
}

// [MQTT-2.2.2-2] invalid fixed header flags (PUBREL must be 0010 [MQTT-3.6.1-1]).
TEST_F(BadInput, WrongPubrelFlagsClose_MQTT_3_6_1_1) {
    expect_closed_by(Bytes{0x60, 0x02, 0x00, 0x01}, "PUBREL with flags 0000");
    expect_closed_by(Bytes{0xc1, 0x00}, "PINGREQ with flags 0001");
}

// A packet whose declared length disagrees with its content (topic length past the end).
TEST_F(BadInput, TopicLengthPastEndCloses) {
    expect_closed_by(Bytes{0x30, 0x04, 0x00, 0x10, 'a', 'b'}, "topic length 16 in 4 bytes");
    expect_closed_by(Bytes{0x10, 0x03, 0x00, 0x04, 'M'}, "truncated CONNECT", false);
}

// Many bad peers in a row, interleaved with good traffic: the broker process stays up.
TEST_F(BadInput, BrokerSurvivesABarrage) {
    std::mt19937 rng(7);
    for (int i = 0; i < 30; ++i) {
        RawClient bad;
        bad.open(broker_.port());
        Bytes junk(static_cast<size_t>(rng() % 200 + 1));
        for (auto& b : junk) {
            b = static_cast<uint8_t>(rng());
        }
        bad.send(junk);
        bad.abort();
    }
    EXPECT_FALSE(broker_.exited()) << "mqttd died";
    check_bystander();
}

}  // namespace
}  // namespace mqttd::itest
