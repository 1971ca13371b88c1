// Encoder: exact bytes for each packet (written from the standard's layouts), and every packet
// type round-tripped through the decoder for each protocol version.
#include "mqtt/encoder.h"

#include <string>

#include <gtest/gtest.h>

#include "mqtt/decoder.h"
#include "test_bytes.h"

namespace mqttd::mqtt {
namespace {

using test::B;
using test::Bytes;
using test::decode;
using Status = Decoder::Status;

Bytes enc(void (*f)(std::string&)) {
    std::string out;
    f(out);
    return test::to_bytes(out);
}

// ---- Exact bytes ----------------------------------------------------------------------------

TEST(Encode, Connect) {
    Connect c;
    c.version = Version::V311;
    c.clean_start = true;
    c.keepalive = 60;
    c.client_id = "c1";
    std::string out;
    encode_connect(out, c);
    EXPECT_EQ(test::to_bytes(out),
              B()({0x10, 0x0E}).str("MQTT")({0x04, 0x02, 0x00, 0x3C}).str("c1").bytes());

    c.version = Version::V31;
    c.clean_start = false;
    c.will = Will{"w", "bye", 2, true, {}};
    c.username = "u";
    c.password = "p";
    out.clear();
    encode_connect(out, c);
    // Flags: user 0x80, password 0x40, will retain 0x20, will QoS 2 0x10, will 0x04.
    EXPECT_EQ(test::to_bytes(out), B()({0x10, 0x1E})
                                           .str("MQIsdp")({0x03, 0xF4, 0x00, 0x3C})
                                           .str("c1")
                                           .str("w")
                                           .str("bye")
                                           .str("u")
                                           .str("p")
                                           .bytes());

    Connect c5;
    c5.version = Version::V5;
    c5.client_id = "";
    c5.properties.session_expiry_interval = 10;
    c5.will = Will{"w", "", 0, false, {}};
    c5.will->properties.will_delay_interval = 1;
    out.clear();
    encode_connect(out, c5);
    EXPECT_EQ(test::to_bytes(out),
              B()({0x10, 0x1D})
                      .str("MQTT")({0x05, 0x06, 0x00, 0x00})({0x05, 0x11, 0, 0, 0, 10})
                      .str("")({0x05, 0x18, 0, 0, 0, 1})
                      .str("w")
                      .str("")
                      .bytes());
}

TEST(Encode, Connack) {
    std::string out;
    encode_connack(out, Version::V311, Connack{true, ReasonCode::Success, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x20, 0x02, 0x01, 0x00}));
    out.clear();
    // 3.x return codes via to_v3_connack (3.2.2.3).
    encode_connack(out, Version::V311, Connack{false, ReasonCode::UnsupportedProtocolVersion, {}});
    encode_connack(out, Version::V311, Connack{false, ReasonCode::ClientIdentifierNotValid, {}});
    encode_connack(out, Version::V311, Connack{false, ReasonCode::ServerBusy, {}});
    encode_connack(out, Version::V311, Connack{false, ReasonCode::BadUserNameOrPassword, {}});
    encode_connack(out, Version::V311, Connack{false, ReasonCode::Banned, {}});
    EXPECT_EQ(test::to_bytes(out),
              (Bytes{0x20, 0x02, 0x00, 0x01, 0x20, 0x02, 0x00, 0x02, 0x20, 0x02,
                     0x00, 0x03, 0x20, 0x02, 0x00, 0x04, 0x20, 0x02, 0x00, 0x05}));
    out.clear();
    // 3.1 has no Session Present.
    encode_connack(out, Version::V31, Connack{true, ReasonCode::Success, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x20, 0x02, 0x00, 0x00}));
    out.clear();
    encode_connack(out, Version::V5, Connack{false, ReasonCode::UnsupportedProtocolVersion, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x20, 0x03, 0x00, 0x84, 0x00}));
    out.clear();
    Connack c{true, ReasonCode::Success, {}};
    c.properties.maximum_qos = 1;
    encode_connack(out, Version::V5, c);
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x20, 0x05, 0x01, 0x00, 0x02, 0x24, 0x01}));
}

TEST(Encode, Publish) {
    std::string out;
    encode_publish(out, Version::V311, "a/b", "hello", 0, false, false, 0);
    EXPECT_EQ(test::to_bytes(out), B()({0x30, 0x0A}).str("a/b")("hello").bytes());
    out.clear();
    encode_publish(out, Version::V311, "a/b", "", 1, true, true, 0x1234);
    EXPECT_EQ(test::to_bytes(out), B()({0x3B, 0x07}).str("a/b")({0x12, 0x34}).bytes());
    out.clear();
    encode_publish(out, Version::V5, "t", "x", 2, false, false, 1);
    EXPECT_EQ(test::to_bytes(out), B()({0x34, 0x07}).str("t")({0x00, 0x01, 0x00})("x").bytes());
    out.clear();
    encode_publish(out, Version::V5, "t", "x", 0, false, false, 0,
                   std::string_view("\x23\x00\x01", 3));
    EXPECT_EQ(test::to_bytes(out),
              B()({0x30, 0x08}).str("t")({0x03, 0x23, 0x00, 0x01})("x").bytes());
}

TEST(Encode, RemainingLengthBoundaries) {
    // 2.2.3: 127 -> 7F, 128 -> 80 01, 16383 -> FF 7F, 16384 -> 80 80 01,
    // 2,097,152 -> 80 80 80 01.
    const std::pair<size_t, Bytes> cases[] = {{127, {0x7F}},
                                              {128, {0x80, 0x01}},
                                              {16'383, {0xFF, 0x7F}},
                                              {16'384, {0x80, 0x80, 0x01}},
                                              {2'097'151, {0xFF, 0xFF, 0x7F}},
                                              {2'097'152, {0x80, 0x80, 0x80, 0x01}}};
    for (const auto& [rl, expected] : cases) {
        std::string out;
        encode_publish(out, Version::V311, "t", std::string(rl - 3, 'p'), 0, false, false, 0);
        ASSERT_EQ(out.size(), 1 + expected.size() + rl);
        EXPECT_EQ(Bytes(out.begin() + 1, out.begin() + 1 + static_cast<long>(expected.size())),
                  expected)
                << rl;
    }
}

TEST(Encode, PublishAppendsAndGrowsOnce) {
    std::string out = "prefix";
    encode_publish(out, Version::V311, "t", std::string(1000, 'p'), 1, false, false, 7);
    EXPECT_EQ(out.substr(0, 6), "prefix");
    EXPECT_EQ(out.size(), 6u + 1 + 2 + 3 + 2 + 1000);
    const auto cap = out.capacity();
    out.clear();
    encode_publish(out, Version::V311, "t", std::string(1000, 'p'), 1, false, false, 7);
    EXPECT_EQ(out.capacity(), cap);  // reused buffer: no reallocation
}

TEST(Encode, Acks) {
    std::string out;
    encode_ack(out, Version::V311, Ack{PacketType::Puback, 10, ReasonCode::Success, {}});
    encode_ack(out, Version::V311, Ack{PacketType::Pubrec, 10, ReasonCode::Success, {}});
    encode_ack(out, Version::V311, Ack{PacketType::Pubrel, 10, ReasonCode::Success, {}});
    encode_ack(out, Version::V311, Ack{PacketType::Pubcomp, 10, ReasonCode::Success, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x40, 0x02, 0x00, 0x0A, 0x50, 0x02, 0x00, 0x0A, 0x62,
                                          0x02, 0x00, 0x0A, 0x70, 0x02, 0x00, 0x0A}));
    out.clear();
    // 3.x has no reason codes: always the 2-byte form.
    encode_ack(out, Version::V311, Ack{PacketType::Puback, 1, ReasonCode::NotAuthorized, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x40, 0x02, 0x00, 0x01}));
    out.clear();
    // MQTT 5: short form for Success without properties (3.4.2.1), reason only otherwise.
    encode_ack(out, Version::V5, Ack{PacketType::Puback, 1, ReasonCode::Success, {}});
    encode_ack(out, Version::V5, Ack{PacketType::Pubrec, 1, ReasonCode::NoMatchingSubscribers, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x40, 0x02, 0x00, 0x01, 0x50, 0x03, 0x00, 0x01, 0x10}));
    out.clear();
    Ack a{PacketType::Pubcomp, 1, ReasonCode::PacketIdentifierNotFound, {}};
    a.properties.reason_string = "x";
    encode_ack(out, Version::V5, a);
    EXPECT_EQ(test::to_bytes(out),
              B()({0x70, 0x08, 0x00, 0x01, 0x92, 0x04, 0x1F}).str("x").bytes());
}

TEST(Encode, SubackAndUnsuback) {
    Suback s{3, {ReasonCode::GrantedQos1, ReasonCode::Success, ReasonCode::NotAuthorized}, {}};
    std::string out;
    encode_suback(out, Version::V311, s);
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x90, 0x05, 0x00, 0x03, 0x01, 0x00, 0x80}));
    out.clear();
    encode_suback(out, Version::V5, s);
    EXPECT_EQ(test::to_bytes(out), (Bytes{0x90, 0x06, 0x00, 0x03, 0x00, 0x01, 0x00, 0x87}));
    out.clear();
    Unsuback u{4, {ReasonCode::Success, ReasonCode::NoSubscriptionExisted}, {}};
    encode_unsuback(out, Version::V311, u);  // 3.x: no payload (3.11.3)
    EXPECT_EQ(test::to_bytes(out), (Bytes{0xB0, 0x02, 0x00, 0x04}));
    out.clear();
    encode_unsuback(out, Version::V5, u);
    EXPECT_EQ(test::to_bytes(out), (Bytes{0xB0, 0x05, 0x00, 0x04, 0x00, 0x00, 0x11}));
}

TEST(Encode, SubscribeAndUnsubscribe) {
    Subscribe s;
    s.packet_id = 1;
    s.topics = {{"a/+", {1, true, true, 2}}, {"#", {2, false, false, 0}}};
    std::string out;
    encode_subscribe(out, Version::V311, s);
    EXPECT_EQ(test::to_bytes(out),
              B()({0x82, 0x0C, 0x00, 0x01}).str("a/+")({0x01}).str("#")({0x02}).bytes());
    out.clear();
    s.properties.subscription_identifiers = {5};
    encode_subscribe(out, Version::V5, s);
    EXPECT_EQ(test::to_bytes(out), B()({0x82, 0x0F, 0x00, 0x01, 0x02, 0x0B, 0x05})
                                           .str("a/+")({0x2D})
                                           .str("#")({0x02})
                                           .bytes());
    out.clear();
    Unsubscribe u{2, {"a", "b"}, {}};
    encode_unsubscribe(out, Version::V311, u);
    EXPECT_EQ(test::to_bytes(out), B()({0xA2, 0x08, 0x00, 0x02}).str("a").str("b").bytes());
    out.clear();
    encode_unsubscribe(out, Version::V5, u);
    EXPECT_EQ(test::to_bytes(out), B()({0xA2, 0x09, 0x00, 0x02, 0x00}).str("a").str("b").bytes());
}

TEST(Encode, PingDisconnectAuth) {
    EXPECT_EQ(enc(encode_pingreq), (Bytes{0xC0, 0x00}));
    EXPECT_EQ(enc(encode_pingresp), (Bytes{0xD0, 0x00}));
    std::string out;
    encode_client_disconnect(out, Version::V311);
    encode_client_disconnect(out, Version::V5);
    EXPECT_EQ(test::to_bytes(out), (Bytes{0xE0, 0x00, 0xE0, 0x00}));
    out.clear();
    encode_disconnect(out, Version::V311, Disconnect{ReasonCode::SessionTakenOver, {}});
    EXPECT_TRUE(out.empty());  // a 3.x server just closes
    encode_disconnect(out, Version::V5, Disconnect{});
    encode_disconnect(out, Version::V5, Disconnect{ReasonCode::SessionTakenOver, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0xE0, 0x00, 0xE0, 0x01, 0x8E}));
    out.clear();
    Disconnect d{ReasonCode::ServerMoved, {}};
    d.properties.server_reference = "s";
    encode_disconnect(out, Version::V5, d);
    EXPECT_EQ(test::to_bytes(out), B()({0xE0, 0x06, 0x9D, 0x04, 0x1C}).str("s").bytes());
    out.clear();
    encode_auth(out, Auth{});
    encode_auth(out, Auth{ReasonCode::ReAuthenticate, {}});
    EXPECT_EQ(test::to_bytes(out), (Bytes{0xF0, 0x00, 0xF0, 0x02, 0x19, 0x00}));
}

TEST(ReasonCodes, Names) {
    EXPECT_EQ(to_string(ReasonCode::Success), "Success");
    EXPECT_EQ(to_string(ReasonCode::MalformedPacket), "Malformed Packet");
    EXPECT_EQ(to_string(ReasonCode::WildcardSubscriptionsNotSupported),
              "Wildcard Subscriptions not supported");
    EXPECT_EQ(to_string(static_cast<ReasonCode>(0x7F)), "Unknown reason code");
    EXPECT_TRUE(is_error(ReasonCode::UnspecifiedError));
    EXPECT_FALSE(is_error(ReasonCode::GrantedQos2));
}

// ---- Round trips: encode, then decode on the other side, for every version -------------------

class RoundTrip : public ::testing::TestWithParam<Version> {
protected:
    Version v() const { return GetParam(); }
    bool v5() const { return v() == Version::V5; }

    // Decodes `wire` server-side (after a CONNECT of this version) and expects one packet that
    // uses all the bytes.
    Packet at_server(const std::string& wire) {
        Decoder d = test::connected_server(v());
        return one(d, wire);
    }
    Packet at_client(const std::string& wire) {
        Decoder d = test::client(v());
        return one(d, wire);
    }

private:
    static Packet one(Decoder& d, const std::string& wire) {
        auto [r, p] = decode(d, test::to_bytes(wire));
        EXPECT_EQ(r.status, Status::Packet) << to_string(r.error);
        EXPECT_EQ(r.consumed, wire.size());
        return p;
    }
};

TEST_P(RoundTrip, Connect) {
    Connect c;
    c.version = v();
    c.clean_start = false;
    c.keepalive = 0xFFFF;
    c.client_id = "client-\xC3\xA9";
    c.will = Will{"will/topic", std::string("\x00\xFF", 2), 1, true, {}};
    c.username = "user";
    c.password = std::string("\x00pw", 3);
    if (v5()) {
        c.properties.session_expiry_interval = 7;
        c.properties.request_problem_information = 0;
        c.properties.user_properties = {{"k", "v"}};
        c.will->properties.content_type = "bin";
    }
    std::string wire;
    encode_connect(wire, c);
    Decoder d(Side::Server);
    auto [r, p] = decode(d, test::to_bytes(wire));
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    EXPECT_EQ(d.version(), v());
    const auto& got = std::get<Connect>(p);
    EXPECT_EQ(got.version, c.version);
    EXPECT_EQ(got.clean_start, c.clean_start);
    EXPECT_EQ(got.keepalive, c.keepalive);
    EXPECT_EQ(got.client_id, c.client_id);
    ASSERT_TRUE(got.will);
    EXPECT_EQ(got.will->topic, c.will->topic);
    EXPECT_EQ(got.will->payload, c.will->payload);
    EXPECT_EQ(got.will->qos, c.will->qos);
    EXPECT_EQ(got.will->retain, c.will->retain);
    EXPECT_EQ(got.will->properties, c.will->properties);
    EXPECT_EQ(got.username, c.username);
    EXPECT_EQ(got.password, c.password);
    EXPECT_EQ(got.properties, c.properties);
}

TEST_P(RoundTrip, Connack) {
    Connack c{v() != Version::V31, ReasonCode::Success, {}};
    if (v5()) {
        c.properties.assigned_client_identifier = "x";
    }
    std::string wire;
    encode_connack(wire, v(), c);
    const auto got = std::get<Connack>(at_client(wire));
    EXPECT_EQ(got.session_present, c.session_present);
    EXPECT_EQ(got.reason, c.reason);
    EXPECT_EQ(got.properties, c.properties);

    wire.clear();
    encode_connack(wire, v(), Connack{false, ReasonCode::NotAuthorized, {}});
    EXPECT_EQ(std::get<Connack>(at_client(wire)).reason, ReasonCode::NotAuthorized);
}

TEST_P(RoundTrip, PublishEveryQos) {
    for (uint8_t qos = 0; qos <= 2; ++qos) {
        for (bool retain : {false, true}) {
            const bool dup = qos > 0;
            std::string raw;
            if (v5()) {
                raw = std::string("\x02\x00\x00\x00\x3C", 5);  // Message Expiry 60
            }
            std::string wire;
            encode_publish(wire, v(), "a/b/c", std::string(300, 'z'), qos, retain, dup,
                           qos > 0 ? 77 : 0, raw);
            for (Packet p : {at_server(wire), at_client(wire)}) {
                const auto& got = std::get<Publish>(p);
                EXPECT_EQ(got.qos, qos);
                EXPECT_EQ(got.retain, retain);
                EXPECT_EQ(got.dup, dup);
                EXPECT_EQ(got.topic, "a/b/c");
                EXPECT_EQ(got.packet_id, qos > 0 ? 77 : 0);
                EXPECT_EQ(got.payload, std::string(300, 'z'));
                EXPECT_EQ(got.raw_properties, raw);
                if (v5()) {
                    EXPECT_EQ(got.properties.message_expiry_interval, 60u);
                }
            }
        }
    }
}

TEST_P(RoundTrip, Acks) {
    for (PacketType t :
         {PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel, PacketType::Pubcomp}) {
        std::vector<Ack> acks = {Ack{t, 65535, ReasonCode::Success, {}}};
        if (v5()) {
            const bool puback_like = t == PacketType::Puback || t == PacketType::Pubrec;
            const ReasonCode rc =
                    puback_like ? ReasonCode::QuotaExceeded : ReasonCode::PacketIdentifierNotFound;
            acks.push_back(Ack{t, 1, rc, {}});
            Ack with_props{t, 2, rc, {}};
            with_props.properties.reason_string = "why";
            with_props.properties.user_properties = {{"a", "b"}};
            acks.push_back(with_props);
            Ack success_props{t, 3, ReasonCode::Success, {}};
            success_props.properties.reason_string = "ok";
            acks.push_back(success_props);
        }
        for (const Ack& a : acks) {
            std::string wire;
            encode_ack(wire, v(), a);
            for (Packet p : {at_server(wire), at_client(wire)}) {
                const auto& got = std::get<Ack>(p);
                EXPECT_EQ(got.type, a.type);
                EXPECT_EQ(got.packet_id, a.packet_id);
                EXPECT_EQ(got.reason, a.reason);
                EXPECT_EQ(got.properties, a.properties);
            }
        }
    }
}

TEST_P(RoundTrip, SubscribeAndSuback) {
    Subscribe s;
    s.packet_id = 9;
    s.topics = {{"a/+/c", {0, false, false, 0}}, {"#", {2, false, false, 0}}};
    if (v5()) {
        s.topics.emplace_back("$share/g/x", SubscribeOptions{1, false, true, 1});
        s.topics.emplace_back("y", SubscribeOptions{1, true, false, 2});
        s.properties.subscription_identifiers = {42};
    }
    std::string wire;
    encode_subscribe(wire, v(), s);
    const auto got = std::get<Subscribe>(at_server(wire));
    EXPECT_EQ(got.packet_id, s.packet_id);
    EXPECT_EQ(got.topics, s.topics);
    EXPECT_EQ(got.properties, s.properties);

    Suback a{9,
             {ReasonCode::Success, ReasonCode::GrantedQos1, ReasonCode::GrantedQos2,
              ReasonCode::UnspecifiedError},
             {}};
    if (v5()) {
        a.reasons.push_back(ReasonCode::SharedSubscriptionsNotSupported);
        a.properties.reason_string = "r";
    }
    wire.clear();
    encode_suback(wire, v(), a);
    const auto got_ack = std::get<Suback>(at_client(wire));
    EXPECT_EQ(got_ack.packet_id, a.packet_id);
    EXPECT_EQ(got_ack.reasons, a.reasons);
    EXPECT_EQ(got_ack.properties, a.properties);
}

TEST_P(RoundTrip, UnsubscribeAndUnsuback) {
    Unsubscribe u{11, {"a/#", "+"}, {}};
    if (v5()) {
        u.properties.user_properties = {{"k", ""}};
    }
    std::string wire;
    encode_unsubscribe(wire, v(), u);
    const auto got = std::get<Unsubscribe>(at_server(wire));
    EXPECT_EQ(got.packet_id, u.packet_id);
    EXPECT_EQ(got.topics, u.topics);
    EXPECT_EQ(got.properties, u.properties);

    Unsuback a{11, {}, {}};
    if (v5()) {
        a.reasons = {ReasonCode::Success, ReasonCode::NoSubscriptionExisted};
    }
    wire.clear();
    encode_unsuback(wire, v(), a);
    const auto got_ack = std::get<Unsuback>(at_client(wire));
    EXPECT_EQ(got_ack.packet_id, a.packet_id);
    EXPECT_EQ(got_ack.reasons, a.reasons);
}

TEST_P(RoundTrip, PingAndDisconnect) {
    std::string wire;
    encode_pingreq(wire);
    EXPECT_TRUE(std::holds_alternative<Pingreq>(at_server(wire)));
    wire.clear();
    encode_pingresp(wire);
    EXPECT_TRUE(std::holds_alternative<Pingresp>(at_client(wire)));
    wire.clear();
    encode_client_disconnect(wire, v());
    EXPECT_TRUE(std::holds_alternative<Disconnect>(at_server(wire)));
    if (v5()) {
        Disconnect d{ReasonCode::ServerShuttingDown, {}};
        d.properties.reason_string = "bye";
        wire.clear();
        encode_disconnect(wire, v(), d);
        const auto got = std::get<Disconnect>(at_client(wire));
        EXPECT_EQ(got.reason, d.reason);
        EXPECT_EQ(got.properties, d.properties);

        Auth a{ReasonCode::ContinueAuthentication, {}};
        a.properties.authentication_method = "m";
        a.properties.authentication_data = "d";
        for (const Auth& x : {a, Auth{}}) {
            wire.clear();
            encode_auth(wire, x);
            for (Packet p : {at_server(wire), at_client(wire)}) {
                EXPECT_EQ(std::get<Auth>(p).reason, x.reason);
                EXPECT_EQ(std::get<Auth>(p).properties, x.properties);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllVersions,
                         RoundTrip,
                         ::testing::Values(Version::V31, Version::V311, Version::V5),
                         [](const auto& param_info) {
                             switch (param_info.param) {
                                 case Version::V31:
                                     return std::string("V31");
                                 case Version::V311:
                                     return std::string("V311");
                                 case Version::V5:
                                     break;
                             }
                             return std::string("V5");
                         });

}  // namespace
}  // namespace mqttd::mqtt
