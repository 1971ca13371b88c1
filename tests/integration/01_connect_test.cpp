// 01 CONNECT / CONNACK, keepalive and session takeover against the real mqttd binary
// (MQTT 3.1.1 sections 3.1, 3.2, 3.12, 3.1.2.10; MQTT 3.1 "MQIsdp" level 3).
#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

using Clock = std::chrono::steady_clock;

pkt::ConnectOptions opts(const std::string& id, bool clean = true) {
    pkt::ConnectOptions o;
    o.client_id = id;
    o.clean_session = clean;
    return o;
}

// [MQTT-3.1.4-4] a valid CONNECT is answered with CONNACK 0; [MQTT-3.2.2-1] clean session ->
// session present 0; [MQTT-3.2.0-1] CONNACK is the first packet.
TEST(Connect, Mqtt311AcceptedWithConnack0_MQTT_3_1_4_4) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto r = c.connect(opts("c311"));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->first) << "[MQTT-3.2.2-1] session present must be 0 for clean session";
    EXPECT_EQ(r->second, 0);
    c.send(pkt::pingreq());
    auto p = c.read();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->type(), kPingresp) << describe(*p);
}

// MQTT 3.1: protocol name "MQIsdp", level 3.
TEST(Connect, Mqtt31MQIsdpLevel3Accepted) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto o = opts("c31");
    o.level = 3;
    auto r = c.connect(o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->second, 0);
    // The session works: subscribe, publish to itself.
    EXPECT_EQ(c.subscribe("v31/t", 1), Bytes{1});
    c.publish("v31/t", "hello31", 1);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "hello31");
}

// [MQTT-3.1.2-2] unsupported protocol level -> CONNACK 0x01 and close.
TEST(Connect, UnsupportedProtocolLevelGetsConnack01ThenClose_MQTT_3_1_2_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    for (uint8_t level : {uint8_t{2}, uint8_t{7}}) {
        RawClient c(broker.port());
        auto o = opts("badlevel");
        o.level = level;
        o.protocol_name = "MQTT";
        c.send(pkt::connect(o));
        auto p = c.read();
        ASSERT_TRUE(p) << "level " << int{level} << ": no CONNACK, closed=" << c.closed();
        EXPECT_EQ(p->type(), kConnack) << describe(*p);
        ASSERT_EQ(p->body.size(), 2u) << describe(*p);
        EXPECT_EQ(p->body[0], 0) << "[MQTT-3.2.2-4] session present 0 with non-zero code";
        EXPECT_EQ(p->body[1], 0x01) << "level " << int{level};
        EXPECT_TRUE(c.wait_closed()) << "[MQTT-3.2.2-5] close after non-zero CONNACK";
    }
}

// [MQTT-3.1.2-3] reserved connect flag (bit 0) must be 0, else disconnect; [MQTT-3.1.4-1] no
// CONNACK for a CONNECT that does not conform.
TEST(Connect, ReservedFlagSetClosesWithoutConnack_MQTT_3_1_2_3) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto o = opts("reserved");
    o.extra_flags = 0x01;
    c.send(pkt::connect(o));
    auto p = c.read();
    if (p) {
        ADD_FAILURE() << "[MQTT-3.1.4-1] expected close without CONNACK, got " << describe(*p);
    }
    EXPECT_TRUE(c.wait_closed());
}

// [MQTT-3.1.2-1] wrong protocol name: the server may disconnect, but must not accept the
// CONNECT as MQTT 3.1.1.
TEST(Connect, WrongProtocolNameNotAccepted_MQTT_3_1_2_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto o = opts("badname");
    o.protocol_name = "MQTX";
    c.send(pkt::connect(o));
    auto p = c.read();
    if (p) {
        ASSERT_EQ(p->type(), kConnack) << describe(*p);
        ASSERT_EQ(p->body.size(), 2u);
        EXPECT_NE(p->body[1], 0) << "CONNECT with protocol name MQTX was accepted";
    }
    EXPECT_TRUE(c.wait_closed());
}

// [MQTT-3.1.3-6] zero-byte client id with clean session is accepted (a unique id is assigned).
TEST(Connect, EmptyClientIdWithCleanSessionAccepted_MQTT_3_1_3_6) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient a(broker.port());
    RawClient b(broker.port());
    auto ra = a.connect(opts(""));
    auto rb = b.connect(opts(""));
    ASSERT_TRUE(ra && rb);
    EXPECT_EQ(ra->second, 0);
    EXPECT_EQ(rb->second, 0);
    EXPECT_FALSE(ra->first);
    // Two anonymous clients are distinct sessions: neither takes the other over.
    a.send(pkt::pingreq());
    auto p = a.read();
    ASSERT_TRUE(p) << "first empty-id client was disconnected by the second";
    EXPECT_EQ(p->type(), kPingresp);
}

// [MQTT-3.1.3-8] zero-byte client id with clean session 0 -> CONNACK 0x02, then close.
TEST(Connect, EmptyClientIdPersistentRejectedWith02_MQTT_3_1_3_8) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto r = c.connect(opts("", false));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->second, 0x02);
    EXPECT_FALSE(r->first) << "[MQTT-3.2.2-4]";
    EXPECT_TRUE(c.wait_closed()) << "[MQTT-3.2.2-5]";
}

// A client id as long as mqtt.max_clientid_len allows (65535 bytes, MQTT's maximum, by
// default) is accepted; one over a lower limit is refused as an identifier, never as "not
// authorized" (3.1.1 CONNACK 0x02 [MQTT-3.1.3-9]).
TEST(Connect, LongestClientIdAcceptedAndOverLimitRefusedAsIdentifier_MQTT_3_1_3_9) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto r = c.connect(opts(std::string(65535, 'c')));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->second, 0);
    c.publish("long/id", "x", 1);  // the ACL chain takes it too

    BrokerProcess limited({"mqtt.max_clientid_len=23"});
    ASSERT_TRUE(limited.running());
    RawClient d(limited.port());
    auto refused = d.connect(opts(std::string(24, 'c')));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->second, 0x02);
    EXPECT_TRUE(d.wait_closed());
}

// [MQTT-3.1.0-2] a second CONNECT is a protocol violation: disconnect.
TEST(Connect, SecondConnectClosesConnection_MQTT_3_1_0_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "twice");
    c.send(pkt::connect(opts("twice")));
    int skipped = 0;
    EXPECT_TRUE(c.wait_closed(kWait, &skipped));
    EXPECT_EQ(skipped, 0) << "no reply expected to the second CONNECT";
}

// [MQTT-3.1.0-1] the first packet must be CONNECT; anything else closes the connection.
TEST(Connect, FirstPacketNotConnectCloses_MQTT_3_1_0_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    const Bytes firsts[] = {pkt::pingreq(), pkt::subscribe(1, {{"a", 0}}),
                            pkt::publish("a", "x", 0)};
    for (const auto& first : firsts) {
        RawClient c(broker.port());
        c.send(first);
        int skipped = 0;
        EXPECT_TRUE(c.wait_closed(kWait, &skipped)) << "first byte " << int{first[0]};
        EXPECT_EQ(skipped, 0) << "[MQTT-3.2.0-1] nothing but CONNACK may be sent first";
    }
}

// mqtt.allow_anonymous=false: CONNECT without a user name -> CONNACK 0x05 (not authorized),
// then close [MQTT-3.2.2-5].
TEST(Connect, AnonymousRefusedWith05WhenNotAllowed) {
    BrokerProcess broker({"mqtt.allow_anonymous=false"});
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto r = c.connect(opts("anon"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->second, 0x05);
    EXPECT_FALSE(r->first);
    EXPECT_TRUE(c.wait_closed());
    // [MQTT-3.1.4-5] no data after a refused CONNECT is processed: nothing was subscribed.
}

// [MQTT-3.1.4-5] after a refused CONNECT, packets that follow it are not processed.
TEST(Connect, DataAfterRefusedConnectNotProcessed_MQTT_3_1_4_5) {
    BrokerProcess broker({"mqtt.allow_anonymous=false"});
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    Bytes both = pkt::connect(opts("anon2"));
    Bytes sub = pkt::subscribe(1, {{"x/#", 0}});
    both.insert(both.end(), sub.begin(), sub.end());
    c.send(both);
    auto p = c.read();
    ASSERT_TRUE(p);
    ASSERT_EQ(p->type(), kConnack) << describe(*p);
    EXPECT_EQ(p->body.at(1), 0x05);
    int skipped = 0;
    EXPECT_TRUE(c.wait_closed(kWait, &skipped));
    EXPECT_EQ(skipped, 0) << "a SUBACK was sent after a refused CONNECT";
}

// DESIGN.md bad input contract: a peer that never sends CONNECT is closed after
// mqtt.connect_timeout.
TEST(Connect, SilentPeerClosedAfterConnectTimeout) {
    BrokerProcess broker({"mqtt.connect_timeout=2"});
    ASSERT_TRUE(broker.running());
    RawClient c(broker.port());
    auto t0 = Clock::now();
    EXPECT_TRUE(c.wait_closed(8s));
    auto waited = Clock::now() - t0;
    EXPECT_GE(waited, 1500ms) << "closed before the connect timeout";
    EXPECT_LE(waited, 5s) << "not closed within about mqtt.connect_timeout (2 s)";
}

// [MQTT-3.12.4-1] PINGREQ -> PINGRESP.
TEST(Keepalive, PingreqGetsPingresp_MQTT_3_12_4_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "pinger", true, 2);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c.send(pkt::pingreq()));
        auto p = c.read();
        ASSERT_TRUE(p);
        EXPECT_EQ(p->type(), kPingresp) << describe(*p);
        EXPECT_TRUE(p->body.empty());
    }
}

// [MQTT-3.1.2-24] no packet within 1.5 x keepalive -> the server disconnects; a client that
// keeps pinging stays connected past that time.
TEST(Keepalive, SilentClientClosedAfterOneAndAHalfKeepalive_MQTT_3_1_2_24) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient silent;
    silent.connect_ok(broker.port(), "silent", true, 2);
    RawClient active;
    active.connect_ok(broker.port(), "active", true, 2);
    auto t0 = Clock::now();
    // The active client pings every 700 ms for 4.5 s.
    bool silent_closed = false;
    Clock::duration closed_after{};
    while (Clock::now() - t0 < 4500ms) {
        ASSERT_TRUE(active.send(pkt::pingreq()));
        auto p = active.read();
        ASSERT_TRUE(p) << "the pinging client was disconnected";
        EXPECT_EQ(p->type(), kPingresp);
        if (!silent_closed && silent.wait_closed(700ms)) {
            silent_closed = true;
            closed_after = Clock::now() - t0;
        }
    }
    ASSERT_TRUE(silent_closed) << "client with keepalive 2 s silent for 4.5 s not disconnected";
    EXPECT_GE(closed_after, 1900ms) << "disconnected before the keepalive period";
    EXPECT_LE(closed_after, 4200ms) << "disconnected long after 1.5 x keepalive (3 s)";
}

// [MQTT-3.1.2-23] keepalive 0 turns the mechanism off: an idle client is not disconnected.
TEST(Keepalive, ZeroKeepaliveNeverTimesOut_MQTT_3_1_2_23) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "ka0", true, 0);
    EXPECT_FALSE(c.wait_closed(2500ms));
    ASSERT_TRUE(c.send(pkt::pingreq()));
    auto p = c.read();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->type(), kPingresp);
}

// [MQTT-3.1.4-2] a second connection with the same client id disconnects the first;
// [MQTT-3.2.2-2] the new connection of a persistent session gets session present 1 and the
// subscriptions are kept.
TEST(Takeover, SameClientIdClosesOldConnectionAndResumesSession_MQTT_3_1_4_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient first;
    EXPECT_FALSE(first.connect_ok(broker.port(), "taker", false))
            << "[MQTT-3.2.2-3] new persistent session: session present 0";
    EXPECT_EQ(first.subscribe("take/over", 1), Bytes{1});

    RawClient second;
    EXPECT_TRUE(second.connect_ok(broker.port(), "taker", false))
            << "[MQTT-3.2.2-2] session present must be 1 when the session is resumed";
    EXPECT_TRUE(first.wait_closed()) << "[MQTT-3.1.4-2] the old connection must be closed";

    RawClient pub;
    pub.connect_ok(broker.port(), "taker-pub");
    pub.publish("take/over", "after takeover", 1);
    auto m = second.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "after takeover");
    EXPECT_EQ(m->qos, 1);
}

// Takeover by a clean session also closes the old connection, and gets session present 0
// [MQTT-3.2.2-1].
TEST(Takeover, CleanSessionTakeoverClosesOldAndStartsFresh_MQTT_3_1_4_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient first;
    first.connect_ok(broker.port(), "taker2", false);
    first.subscribe("take/two", 1);
    RawClient second;
    EXPECT_FALSE(second.connect_ok(broker.port(), "taker2", true));
    EXPECT_TRUE(first.wait_closed());
    // [MQTT-3.1.2-6] the old session (and its subscription) is gone.
    RawClient pub;
    pub.connect_ok(broker.port(), "taker2-pub");
    pub.publish("take/two", "x", 1);
    second.expect_silence();
}

// libmosquitto, both protocol versions.
TEST(Connect, LibmosquittoConnectsWithMqtt31And311) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    for (int protocol : {3, 4}) {
        MosqClient c(num("mosq-v", protocol), true, protocol);
        EXPECT_EQ(c.connect(broker.port()), 0) << "protocol " << protocol;
        EXPECT_EQ(c.subscribe("mosq/t", 2), std::vector<int>{2});
        EXPECT_TRUE(c.publish("mosq/t", num("p", protocol), 2));
        auto m = c.wait_message();
        ASSERT_TRUE(m) << "protocol " << protocol;
        EXPECT_EQ(m->payload, num("p", protocol));
        EXPECT_EQ(m->qos, 2);
    }
}

// libmosquitto: persistent session reports session present on reconnect.
TEST(Connect, LibmosquittoSessionPresent_MQTT_3_2_2_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    {
        MosqClient c("mosq-persist", false);
        ASSERT_EQ(c.connect(broker.port()), 0);
        EXPECT_FALSE(c.session_present());
        c.subscribe("mosq/p", 1);
        c.disconnect();
    }
    MosqClient c("mosq-persist", false);
    ASSERT_EQ(c.connect(broker.port()), 0);
    EXPECT_TRUE(c.session_present());
}

// MQTT 5 [MQTT-4.12.0-1]: a CONNECT with an Authentication Method the server does not support
// is refused (CONNACK 0x8C here; mosquitto_pub exits with the reason code) and closed.
TEST(Connect, UnsupportedAuthenticationMethodIsRefused_MQTT5_4_12_0_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    std::string port = std::to_string(broker.port());
    auto [rc, out] =
            run_command({"mosquitto_pub", "-V", "5", "-h", "127.0.0.1", "-p", port, "-t", "auth/x",
                         "-m", "m", "-D", "connect", "authentication-method", "SCRAM-SHA-1"},
                        5s);
    EXPECT_EQ(rc, 0x8C) << out;
    auto [rc2, out2] = run_command(
            {"mosquitto_pub", "-V", "5", "-h", "127.0.0.1", "-p", port, "-t", "auth/x", "-m", "m"},
            5s);
    EXPECT_EQ(rc2, 0) << out2;
}

}  // namespace
}  // namespace mqttd::itest
