// 10 MQTT 5 server behaviour (MQTT 5.0 sections 3 and 4): session resume and expiry, server
// keep alive, flow control, topic aliases from the server, subscription identifiers. Frames are
// built by hand (mqtt5.h). Tests that need no special configuration share one broker, started
// once for the binary; each uses its own client ids and topics.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "harness.h"
#include "mqtt5.h"

namespace mqttd::itest {
namespace {

using v5::Client5;
using v5::ConnectSpec;
using v5::Props;

class Mqtt5 : public ::testing::Test {
protected:
    static void SetUpTestSuite() { broker_ = new BrokerProcess(); }
    static void TearDownTestSuite() {
        delete broker_;
        broker_ = nullptr;
    }
    void SetUp() override { ASSERT_TRUE(broker_ && broker_->running()); }
    static uint16_t port() { return broker_->port(); }

    static ConnectSpec spec(const std::string& id, bool clean = true) {
        ConnectSpec c;
        c.client_id = id;
        c.clean_start = clean;
        return c;
    }

private:
    static BrokerProcess* broker_;
};

BrokerProcess* Mqtt5::broker_ = nullptr;

// [MQTT-3.1.2-5]: Clean Start 0 resumes the existing session even when the new CONNECT has no
// Session Expiry Interval; its queued messages are delivered. The new expiry (absent = 0)
// applies from this connection's end [MQTT-3.1.2-11]: afterwards there is no session.
TEST_F(Mqtt5, CleanStartZeroWithoutExpiryResumesTheSession_MQTT5_3_1_2_5) {
    {
        Client5 c;
        auto s = spec("res-a");
        s.props.u32(v5::kSessionExpiry, 99999);
        ASSERT_TRUE(c.connect_ok(port(), s));
        EXPECT_EQ(c.subscribe({{"res/+", 2}}), (std::vector<uint8_t>{2}));
        c.disconnect();
    }
    Client5 pub;
    ASSERT_TRUE(pub.connect_ok(port(), spec("res-pub")));
    pub.publish("res/0", "qos 0", 0);
    EXPECT_EQ(pub.publish("res/1", "qos 1", 1), 0);
    EXPECT_EQ(pub.publish("res/2", "qos 2", 2), 0);
    {
        Client5 c;
        auto ack = c.connect_ok(port(), spec("res-a", false));
        ASSERT_TRUE(ack);
        EXPECT_TRUE(ack->session_present);
        // mqtt.mqueue.store_qos0 = true (the default) queues the QoS 0 message too.
        for (uint8_t qos = 0; qos < 3; ++qos) {
            auto m = c.receive_and_ack();
            ASSERT_TRUE(m) << int{qos};
            EXPECT_EQ(m->payload, "qos " + std::to_string(qos));
            EXPECT_EQ(m->qos, qos);
        }
        c.disconnect();
    }
    Client5 c;
    auto ack = c.connect_ok(port(), spec("res-a", false));
    ASSERT_TRUE(ack);
    EXPECT_FALSE(ack->session_present) << "expiry 0 from the last CONNECT ends the session";
}

// A session whose expiry a DISCONNECT extended [MQTT-3.14.2-1] keeps its queue past the first
// expiry, and a CONNECT without an expiry resumes it with the messages queued meanwhile.
TEST_F(Mqtt5, SessionExtendedByDisconnectKeepsItsQueue_MQTT5_3_14_2_1) {
    {
        Client5 c;
        auto s = spec("ext-a");
        s.props.u32(v5::kSessionExpiry, 1);
        ASSERT_TRUE(c.connect_ok(port(), s));
        c.subscribe({{"ext/t", 1}});
        c.disconnect(0, Props().u32(v5::kSessionExpiry, 3600));
    }
    Client5 pub;
    ASSERT_TRUE(pub.connect_ok(port(), spec("ext-pub")));
    EXPECT_EQ(pub.publish("ext/t", "kept", 1), 0);
    // Past the CONNECT's 1 s: only the DISCONNECT's expiry can have kept the session.
    std::this_thread::sleep_for(2500ms);
    Client5 c;
    auto ack = c.connect_ok(port(), spec("ext-a", false));
    ASSERT_TRUE(ack);
    EXPECT_TRUE(ack->session_present);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "kept");
}

// DISCONNECT with Session Expiry 0 ends the session at once: an immediate reconnect with Clean
// Start 0 finds none [MQTT-3.1.2-23].
TEST_F(Mqtt5, DisconnectWithExpiryZeroEndsTheSessionAtOnce_MQTT5_3_1_2_23) {
    Client5 a;
    auto s = spec("end-a");
    s.props.u32(v5::kSessionExpiry, 60);
    ASSERT_TRUE(a.connect_ok(port(), s));
    a.subscribe({{"end/t", 1}});
    a.disconnect(0, Props().u32(v5::kSessionExpiry, 0));
    Client5 b;
    auto again = spec("end-a", false);
    again.props.u32(v5::kSessionExpiry, 60);
    auto ack = b.connect_ok(port(), again);
    ASSERT_TRUE(ack);
    EXPECT_FALSE(ack->session_present);
}

// [MQTT-3.1.4-3]: a second connection with the same client id makes the server send the first
// one DISCONNECT 0x8E (Session taken over) before closing it.
TEST_F(Mqtt5, TakeoverSendsSessionTakenOver_MQTT5_3_1_4_3) {
    Client5 first;
    ASSERT_TRUE(first.connect_ok(port(), spec("take-a")));
    Client5 second;
    ASSERT_TRUE(second.connect_ok(port(), spec("take-a")));
    EXPECT_EQ(first.expect_disconnect(), 0x8E);
    EXPECT_TRUE(first.raw().wait_closed());
}

// MQTT 5 3.2.2.3.14: with mqtt.max_keepalive set, a CONNECT asking more (or 0, none) gets
// Server Keep Alive = the maximum in CONNACK [MQTT-3.2.2-21], one asking less gets none; the
// server holds the client to what it said: one and a half times it without a packet closes.
TEST(Mqtt5KeepAlive, ServerKeepAliveBoundsTheClients_MQTT5_3_2_2_21) {
    BrokerProcess broker({"mqtt.max_keepalive=1"});
    ASSERT_TRUE(broker.running());
    auto connect_with = [&](uint16_t keepalive) {
        Client5 c;
        ConnectSpec s;
        s.client_id = num("ka-", keepalive);
        s.keepalive = keepalive;
        auto ack = c.connect_ok(broker.port(), s);
        return ack ? ack->props.num(v5::kServerKeepAlive) : std::optional<uint32_t>(12345);
    };
    EXPECT_EQ(connect_with(120), 1u);
    EXPECT_EQ(connect_with(0), 1u);
    EXPECT_EQ(connect_with(1), std::nullopt);
    // Asked for no keepalive, given 1 s: silence closes the connection.
    Client5 silent;
    ConnectSpec s;
    s.client_id = "ka-silent";
    s.keepalive = 0;
    ASSERT_TRUE(silent.connect_ok(broker.port(), s));
    EXPECT_TRUE(silent.raw().wait_closed(5s));
}

// MQTT 5 4.9: CONNACK gives the client a Receive Maximum (mqtt.max_inflight, or 1024 without
// one, at most mqtt.max_awaiting_rel: 100 by default); one QoS 2 PUBLISH
// more than that while none is complete gets DISCONNECT 0x93 [MQTT-3.3.4-7]. Completing one
// frees a slot.
TEST_F(Mqtt5, ReceiveMaximumIsAdvertisedAndEnforced_MQTT5_3_3_4_7) {
    Client5 c;
    auto ack = c.connect_ok(port(), spec("rm-a"));
    ASSERT_TRUE(ack);
    auto max = ack->props.num(v5::kReceiveMaximum);
    ASSERT_EQ(max, 100u) << "mqtt.max_awaiting_rel's default bounds it";
    for (uint16_t id = 1; id <= *max; ++id) {
        ASSERT_TRUE(c.raw().send(v5::publish("rm/t", "m", 2, id)));
        auto rec = c.raw().read();
        ASSERT_TRUE(rec);
        ASSERT_EQ(rec->type(), kPubrec);
    }
    // Complete packet 1: its slot is free again, so one more is within the limit.
    ASSERT_TRUE(c.raw().send(v5::ack(kPubrel, 1)));
    auto comp = c.raw().read();
    ASSERT_TRUE(comp);
    ASSERT_EQ(comp->type(), kPubcomp);
    const uint16_t next = static_cast<uint16_t>(*max + 1);
    ASSERT_TRUE(c.raw().send(v5::publish("rm/t", "m", 2, next)));
    auto rec = c.raw().read();
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->type(), kPubrec);
    // The limit unacknowledged again: the next one is one too many.
    ASSERT_TRUE(c.raw().send(v5::publish("rm/t", "m", 1, next + 1)));
    EXPECT_EQ(c.expect_disconnect(), 0x93);
    EXPECT_TRUE(c.raw().wait_closed());
}

// MQTT 5 3.2.2.3.6: CONNACK announces mqtt.max_packet_size as Maximum Packet Size, and a packet
// above it gets DISCONNECT 0x95 (Packet too large).
TEST_F(Mqtt5, ConnackAnnouncesMaximumPacketSize_MQTT5_3_2_2_3_6) {
    Client5 c;
    auto ack = c.connect_ok(port(), spec("mps-a"));
    ASSERT_TRUE(ack);
    auto max = ack->props.num(v5::kMaximumPacketSize);
    ASSERT_EQ(max, 1048576u) << "mqtt.max_packet_size's default";
    c.publish("mps/t", std::string(*max - 100, 'x'), 1);  // fits
    // The fixed header of a PUBLISH one byte too long is enough: the size is checked before
    // the body is read (and the body is not sent, so the close is not a reset).
    Bytes header{0x30};
    v5::put_varint(header, *max - 1);  // with the 1 + 4 header bytes: max + 4
    ASSERT_TRUE(c.raw().send(header));
    EXPECT_EQ(c.expect_disconnect(), 0x95);
}

// The DISCONNECT reaches a client that is still sending when the broker closes: the close
// lingers (FIN, then the rest of the input is read and dropped) instead of resetting the
// connection with unread input, which can cost the client the DISCONNECT or fail its send.
TEST_F(Mqtt5, DisconnectReachesAClientStillSending) {
    Client5 c;
    auto ack = c.connect_ok(port(), spec("linger-a"));
    ASSERT_TRUE(ack);
    auto max = ack->props.num(v5::kMaximumPacketSize);
    ASSERT_TRUE(max);
    // A whole PUBLISH far above the limit: refused on its fixed header, the rest still coming.
    EXPECT_TRUE(c.raw().send(v5::publish("linger/t", std::string(*max * 2, 'x'), 0, 0)))
            << "the broker reset the connection while the client was sending";
    EXPECT_EQ(c.expect_disconnect(), 0x95);
    EXPECT_TRUE(c.raw().wait_closed());
}

// MQTT 5 3.3.2.3.4: a client that allows topic aliases (Topic Alias Maximum in CONNECT) gets
// the topic and an alias on the first PUBLISH of a topic and only the alias afterwards; the
// table is bounded by its maximum (the least recently sent topic's alias is reused). A client
// that allows none gets none [MQTT-3.3.2-7].
TEST_F(Mqtt5, ServerSetsTopicAliasesTheClientAllows_MQTT5_3_3_2_7) {
    Client5 c;
    auto s = spec("alias-a");
    s.props.u16(v5::kTopicAliasMaximum, 1);
    ASSERT_TRUE(c.connect_ok(port(), s));
    c.subscribe({{"alias/#", 2}});
    Client5 pub;
    ASSERT_TRUE(pub.connect_ok(port(), spec("alias-pub")));
    for (uint8_t qos = 0; qos < 3; ++qos) {
        pub.publish("alias/x", "m", qos);
    }
    for (uint8_t qos = 0; qos < 3; ++qos) {
        auto m = c.receive_and_ack();
        ASSERT_TRUE(m);
        EXPECT_EQ(m->props.num(v5::kTopicAlias), 1u);
        EXPECT_EQ(m->topic, qos == 0 ? "alias/x" : "") << int{qos};
        EXPECT_EQ(m->qos, qos);
    }
    pub.publish("alias/y", "m", 1);  // one alias only: "alias/y" takes it over
    pub.publish("alias/x", "m", 1);
    for (const char* topic : {"alias/y", "alias/x"}) {
        auto m = c.receive_and_ack();
        ASSERT_TRUE(m);
        EXPECT_EQ(m->props.num(v5::kTopicAlias), 1u);
        EXPECT_EQ(m->topic, topic);
    }
    Client5 plain;
    ASSERT_TRUE(plain.connect_ok(port(), spec("alias-none")));
    plain.subscribe({{"alias/#", 1}});
    pub.publish("alias/x", "m", 1);
    pub.publish("alias/x", "m", 1);
    for (int i = 0; i < 2; ++i) {
        auto m = plain.receive_and_ack();
        ASSERT_TRUE(m);
        EXPECT_FALSE(m->props.has(v5::kTopicAlias));
        EXPECT_EQ(m->topic, "alias/x");
    }
}

// [MQTT-3.3.4-4]: a message matching several subscriptions of one client goes out once, at the
// highest granted QoS, carrying the Subscription Identifier of each; also when it waited in the
// store for an offline session (queue entry format 3).
TEST_F(Mqtt5, OverlappingSubscriptionsDeliverOneCopyWithEveryIdentifier_MQTT5_3_3_4_4) {
    Client5 a;
    auto s = spec("sid-a");
    s.props.u32(v5::kSessionExpiry, 300);
    ASSERT_TRUE(a.connect_ok(port(), s));
    a.subscribe({{"sid/t", 1}}, Props().varint(v5::kSubscriptionId, 2));
    a.subscribe({{"sid/#", 2}}, Props().varint(v5::kSubscriptionId, 3));
    Client5 pub;
    ASSERT_TRUE(pub.connect_ok(port(), spec("sid-pub")));
    EXPECT_EQ(pub.publish("sid/t", "online", 2), 0);
    auto m = a.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "online");
    EXPECT_EQ(m->qos, 2);
    EXPECT_EQ(m->props.all(v5::kSubscriptionId), (std::vector<uint32_t>{2, 3}));
    a.raw().expect_silence();
    a.disconnect();

    EXPECT_EQ(pub.publish("sid/t", "queued", 1), 0);
    Client5 back;
    auto again = spec("sid-a", false);
    again.props.u32(v5::kSessionExpiry, 300);
    auto ack = back.connect_ok(port(), again);
    ASSERT_TRUE(ack);
    EXPECT_TRUE(ack->session_present);
    auto q = back.receive_and_ack();
    ASSERT_TRUE(q);
    EXPECT_EQ(q->payload, "queued");
    EXPECT_EQ(q->props.all(v5::kSubscriptionId), (std::vector<uint32_t>{2, 3}));
    back.raw().expect_silence();
}

// mqtt.max_awaiting_rel (EMQ 2.x): inbound QoS 2 messages awaiting PUBREL are bounded; one more
// is dropped and never acknowledged as taken: 3.1.1 gets no PUBREC; MQTT 5 is told the bound as
// its Receive Maximum, so going past it on one connection ends that connection (0x93), and with
// messages still awaiting PUBREL from an earlier connection the one over gets PUBREC 0x93.
TEST(Mqtt5AwaitingRel, BoundedByMaxAwaitingRel) {
    BrokerProcess broker({"mqtt.max_awaiting_rel=2"});
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "ar-sub");
    sub.subscribe("ar/#", 2);
    ConnectSpec s;
    s.client_id = "ar-v5";
    s.props.u32(v5::kSessionExpiry, 60);
    {
        Client5 c;
        auto ack = c.connect_ok(broker.port(), s);
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->props.num(v5::kReceiveMaximum), 2u);
        for (uint16_t id = 1; id <= 2; ++id) {
            ASSERT_TRUE(c.raw().send(v5::publish("ar/5", num("m", id), 2, id)));
            auto rec = c.raw().read();
            ASSERT_TRUE(rec);
            ASSERT_EQ(rec->type(), kPubrec);
            auto r = v5::parse_reasoned(*rec);
            ASSERT_TRUE(r);
            EXPECT_EQ(r->reason, 0x00) << id;
        }
        ASSERT_TRUE(c.raw().send(v5::publish("ar/5", "m3", 2, 3)));
        EXPECT_EQ(c.expect_disconnect(), 0x93);
    }
    {
        Client5 c;
        s.clean_start = false;
        auto ack = c.connect_ok(broker.port(), s);
        ASSERT_TRUE(ack);
        EXPECT_TRUE(ack->session_present);
        ASSERT_TRUE(c.raw().send(v5::publish("ar/5", "m4", 2, 4)));
        auto rec = c.raw().read();
        ASSERT_TRUE(rec);
        ASSERT_EQ(rec->type(), kPubrec);
        auto r = v5::parse_reasoned(*rec);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->reason, 0x93);
        // PUBREL for a message still awaiting it completes it and frees room for the next.
        ASSERT_TRUE(c.raw().send(v5::ack(6, 1)));
        auto comp = c.raw().read();
        ASSERT_TRUE(comp);
        EXPECT_EQ(comp->type(), kPubcomp);
        ASSERT_TRUE(c.raw().send(v5::publish("ar/5", "m5", 2, 5)));
        rec = c.raw().read();
        ASSERT_TRUE(rec);
        ASSERT_EQ(rec->type(), kPubrec);
        r = v5::parse_reasoned(*rec);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->reason, 0x00);
    }
    RawClient old;
    old.connect_ok(broker.port(), "ar-v3");
    for (uint16_t id = 1; id <= 2; ++id) {
        ASSERT_TRUE(old.send(pkt::publish("ar/3", num("m", id), 2, id)));
        auto rec = old.read();
        ASSERT_TRUE(rec);
        EXPECT_EQ(rec->type(), kPubrec);
    }
    ASSERT_TRUE(old.send(pkt::publish("ar/3", "m3", 2, 3)));
    old.expect_silence();
    std::multiset<std::string> got;
    for (int i = 0; i < 5; ++i) {
        auto m = sub.receive_and_ack();
        ASSERT_TRUE(m) << i;
        got.insert(m->topic + " " + m->payload);
    }
    EXPECT_EQ(got,
              (std::multiset<std::string>{"ar/5 m1", "ar/5 m2", "ar/5 m5", "ar/3 m1", "ar/3 m2"}));
    sub.expect_silence();
}

// mqtt.await_rel_timeout: an inbound QoS 2 message whose PUBREL does not come in time is
// forgotten (REST shows awaiting_rel_len fall to 0); the late PUBREL gets PUBCOMP 0x92.
TEST(Mqtt5AwaitingRel, ForgottenAfterAwaitRelTimeout) {
    BrokerProcess broker({"mqtt.await_rel_timeout=1"});
    ASSERT_TRUE(broker.running());
    Client5 c;
    ConnectSpec s;
    s.client_id = "art-v5";
    s.props.u32(v5::kSessionExpiry, 60);
    ASSERT_TRUE(c.connect_ok(broker.port(), s));
    ASSERT_TRUE(c.raw().send(v5::publish("art/t", "m", 2, 7)));
    auto rec = c.raw().read();
    ASSERT_TRUE(rec);
    ASSERT_EQ(rec->type(), kPubrec);
    const std::string url =
            "http://127.0.0.1:" + std::to_string(broker.api_port()) + "/api/v2/sessions/art-v5";
    auto awaiting = [&] {
        auto [rc, out] = run_command({"curl", "-s", "-u", "admin:public", url}, 5s);
        size_t at = out.find("\"awaiting_rel_len\":");
        return at == std::string::npos ? -1 : std::stoi(out.substr(at + 19));
    };
    EXPECT_TRUE(eventually([&] { return awaiting() == 1; }));
    EXPECT_TRUE(eventually([&] { return awaiting() == 0; }, 5s));
    ASSERT_TRUE(c.raw().send(v5::ack(kPubrel, 7)));
    auto comp = c.raw().read();
    ASSERT_TRUE(comp);
    ASSERT_EQ(comp->type(), kPubcomp);
    auto r = v5::parse_reasoned(*comp);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->reason, 0x92);
}

}  // namespace
}  // namespace mqttd::itest
