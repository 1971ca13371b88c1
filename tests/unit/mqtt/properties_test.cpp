// MQTT 5 properties (5.0 section 2.2.2): every type, per-packet allow lists, duplicates, value
// rules, and the wire form the encoder writes.
#include <string>

#include <gtest/gtest.h>

#include "mqtt/decoder.h"
#include "mqtt/encoder.h"
#include "test_bytes.h"

namespace mqttd::mqtt {
namespace {

using test::B;
using test::Bytes;
using test::decode;
using test::Decoded;
using test::packet;
using Status = Decoder::Status;

Bytes with_len(const Bytes& props) {
    Bytes out;
    out.reserve(1 + props.size());
    out.push_back(static_cast<uint8_t>(props.size()));
    out.insert(out.end(), props.begin(), props.end());
    return out;
}

Bytes cat(Bytes a, const Bytes& b) {
    a.reserve(a.size() + b.size());
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A CONNACK (Success) carrying `props`, decoded on the client side.
Decoded connack5(const Bytes& props) {
    Decoder d = test::client(Version::V5);
    return decode(d, packet(0x20, cat({0x00, 0x00}, with_len(props))));
}

// A CONNECT carrying `props` (and no will), decoded on the server side.
Decoder::Result connect5(const Bytes& props) {
    Decoder d(Side::Server);
    const Bytes body =
            cat(cat(B().str("MQTT")({0x05, 0x02, 0x00, 0x3C}), with_len(props)), B().str("c"));
    return decode(d, packet(0x10, body)).result;
}

TEST(Properties, EveryConnackPropertyAndType) {
    const Bytes props =
            B()({0x11, 0x00, 0x00, 0x00, 0x0A})  // Session Expiry Interval
            ({0x21, 0x00, 0x14})                 // Receive Maximum
            ({0x24, 0x00})                       // Maximum QoS
            ({0x25, 0x01})                       // Retain Available
            ({0x27, 0x00, 0x00, 0x10, 0x00})     // Maximum Packet Size
            ({0x12})
                    .str("cid")   // Assigned Client Identifier
            ({0x22, 0x00, 0x05})  // Topic Alias Maximum
            ({0x1F})
                    .str("ok")  // Reason String
            ({0x26})
                    .str("a")
                    .str("1")({0x26})
                    .str("a")
                    .str("2")({0x28, 0x00, 0x29, 0x01, 0x2A, 0x00})({0x13, 0x00, 0x1E})({0x1A})
                    .str("ri")({0x1C})
                    .str("srv")({0x15})
                    .str("m")({0x16, 0x00, 0x02, 0x01, 0x02});
    auto [r, p] = connack5(props);
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    const Properties& got = std::get<Connack>(p).properties;
    EXPECT_EQ(got.session_expiry_interval, 10u);
    EXPECT_EQ(got.receive_maximum, 20);
    EXPECT_EQ(got.maximum_qos, 0);
    EXPECT_EQ(got.retain_available, 1);
    EXPECT_EQ(got.maximum_packet_size, 4096u);
    EXPECT_EQ(got.assigned_client_identifier, "cid");
    EXPECT_EQ(got.topic_alias_maximum, 5);
    EXPECT_EQ(got.reason_string, "ok");
    ASSERT_EQ(got.user_properties.size(), 2u);  // User Property may repeat, order kept
    EXPECT_EQ(got.user_properties[0], (std::pair<std::string, std::string>{"a", "1"}));
    EXPECT_EQ(got.user_properties[1], (std::pair<std::string, std::string>{"a", "2"}));
    EXPECT_EQ(got.wildcard_subscription_available, 0);
    EXPECT_EQ(got.subscription_identifier_available, 1);
    EXPECT_EQ(got.shared_subscription_available, 0);
    EXPECT_EQ(got.server_keep_alive, 30);
    EXPECT_EQ(got.response_information, "ri");
    EXPECT_EQ(got.server_reference, "srv");
    EXPECT_EQ(got.authentication_method, "m");
    EXPECT_EQ(got.authentication_data, std::string("\x01\x02"));
    EXPECT_FALSE(got.empty());
}

TEST(Properties, DuplicatesAreProtocolErrors) {
    const Bytes once[] = {
            {0x11, 0, 0, 0, 1},
            {0x21, 0, 1},
            {0x24, 0},
            {0x25, 1},
            {0x27, 0, 0, 0, 9},
            {0x22, 0, 1},
            {0x28, 1},
            {0x29, 1},
            {0x2A, 1},
            {0x13, 0, 1},
            B()({0x12}).str("x"),
            B()({0x1F}).str("x"),
            B()({0x1A}).str("x"),
            B()({0x1C}).str("x"),
    };
    for (const Bytes& prop : once) {
        EXPECT_EQ(connack5(prop).result.status, Status::Packet);
        auto r = connack5(cat(prop, prop)).result;
        EXPECT_EQ(r.status, Status::Error) << int{prop[0]};
        EXPECT_EQ(r.error, ReasonCode::ProtocolError) << int{prop[0]};
    }
    EXPECT_EQ(connect5({0x17, 1, 0x17, 1}).error, ReasonCode::ProtocolError);
    EXPECT_EQ(connect5(B()({0x15}).str("m")({0x15}).str("m")).error, ReasonCode::ProtocolError);
}

TEST(Properties, NotAllowedInThePacketIsMalformed) {
    // 2.2.2.2: an identifier not valid for the packet type.
    EXPECT_EQ(connect5({0x23, 0x00, 0x01}).error, ReasonCode::MalformedPacket);  // Topic Alias
    EXPECT_EQ(connect5({0x18, 0, 0, 0, 1}).error, ReasonCode::MalformedPacket);  // Will Delay
    EXPECT_EQ(connect5(B()({0x1F}).str("x")).error, ReasonCode::MalformedPacket);
    EXPECT_EQ(connack5({0x17, 0x01}).result.error, ReasonCode::MalformedPacket);
    EXPECT_EQ(connack5({0x0B, 0x01}).result.error, ReasonCode::MalformedPacket);
    // Session Expiry in a Will.
    Decoder d(Side::Server);
    const Bytes will = cat(cat(B().str("MQTT")({0x05, 0x06, 0x00, 0x3C, 0x00}).str("c"),
                               with_len({0x11, 0, 0, 0, 1})),
                           B().str("t").str("p"));
    EXPECT_EQ(decode(d, packet(0x10, will)).result.error, ReasonCode::MalformedPacket);
}

TEST(Properties, UnknownIdentifiersAreMalformed) {
    for (const int id : {0x00, 0x04, 0x05, 0x0A, 0x10, 0x14, 0x2B, 0x7F, 0x80}) {
        EXPECT_EQ(connack5({static_cast<uint8_t>(id), 0x00}).result.error,
                  ReasonCode::MalformedPacket)
                << id;
    }
}

TEST(Properties, ValueRules) {
    EXPECT_EQ(connect5({0x21, 0x00, 0x00}).error, ReasonCode::ProtocolError);   // Receive Max 0
    EXPECT_EQ(connect5({0x27, 0, 0, 0, 0}).error, ReasonCode::ProtocolError);   // Max Packet 0
    EXPECT_EQ(connect5({0x17, 0x02}).error, ReasonCode::ProtocolError);         // Request Problem
    EXPECT_EQ(connect5({0x19, 0x02}).error, ReasonCode::ProtocolError);         // Request Response
    EXPECT_EQ(connack5({0x24, 0x02}).result.error, ReasonCode::ProtocolError);  // Maximum QoS
    EXPECT_EQ(connack5({0x25, 0x02}).result.error, ReasonCode::ProtocolError);
    EXPECT_EQ(connack5({0x2A, 0xFF}).result.error, ReasonCode::ProtocolError);
    // Authentication Data without Authentication Method (3.1.2.11.10).
    EXPECT_EQ(connect5({0x16, 0x00, 0x00}).error, ReasonCode::ProtocolError);
    EXPECT_EQ(connect5(B()({0x15}).str("m")({0x16, 0x00, 0x00})).status, Status::Packet);
    // Payload Format Indicator 2, and a Response Topic with a wildcard, in a PUBLISH.
    Decoder d = test::connected_server(Version::V5);
    EXPECT_EQ(decode(d, packet(0x30, cat(B().str("t"), with_len({0x01, 0x02})))).result.error,
              ReasonCode::ProtocolError);
    Decoder d2 = test::connected_server(Version::V5);
    EXPECT_EQ(decode(d2, packet(0x30, cat(B().str("t"), with_len(B()({0x08}).str("r/#")))))
                      .result.error,
              ReasonCode::ProtocolError);
}

TEST(Properties, WireTypeErrorsAreMalformed) {
    EXPECT_EQ(connect5({0x11, 0x00, 0x00}).error, ReasonCode::MalformedPacket);  // short int
    EXPECT_EQ(connect5({0x21, 0x00}).error, ReasonCode::MalformedPacket);
    EXPECT_EQ(connect5({0x15, 0x00, 0x05, 'a'}).error, ReasonCode::MalformedPacket);
    EXPECT_EQ(connect5({0x15, 0x00, 0x02, 0xC0, 0x80}).error, ReasonCode::MalformedPacket);
    EXPECT_EQ(connect5({0x26, 0x00, 0x01, 0x00, 0x00, 0x00}).error, ReasonCode::MalformedPacket);
    EXPECT_EQ(connect5({0x26, 0x00, 0x01, 'k'}).error, ReasonCode::MalformedPacket);  // no value
    // Property Length running past the packet.
    Decoder d(Side::Server);
    EXPECT_EQ(decode(d, packet(0x10,
                               cat(B().str("MQTT")({0x05, 0x02, 0x00, 0x3C, 0x30}), B().str("c"))))
                      .result.error,
              ReasonCode::MalformedPacket);
}

TEST(Properties, VariableByteIntegersMustBeMinimal) {
    // [MQTT-1.5.5-1]: a Property Length of 0 written as 0x80 0x00.
    Decoder d(Side::Server);
    EXPECT_EQ(decode(d, packet(0x10, cat(B().str("MQTT")({0x05, 0x02, 0x00, 0x3C, 0x80, 0x00}),
                                         B().str("c"))))
                      .result.error,
              ReasonCode::MalformedPacket);
    // A Subscription Identifier of 1 written as 0x81 0x00.
    Decoder s = test::connected_server(Version::V5);
    EXPECT_EQ(decode(s, packet(0x82, cat({0x00, 0x01, 0x03, 0x0B, 0x81, 0x00}, B().str("a")({0}))))
                      .result.error,
              ReasonCode::MalformedPacket);
    // The largest, 268,435,455 = 0xFF 0xFF 0xFF 0x7F, is fine.
    Decoder s2 = test::connected_server(Version::V5);
    auto [r, p] = decode(s2, packet(0x82, cat({0x00, 0x01, 0x05, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F},
                                              B().str("a")({0}))));
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    EXPECT_EQ(std::get<Subscribe>(p).properties.subscription_identifiers.at(0), 268'435'455u);
}

TEST(Properties, Empty) {
    Properties p;
    EXPECT_TRUE(p.empty());
    p.user_properties.emplace_back("k", "v");
    EXPECT_FALSE(p.empty());
    Properties q;
    q.shared_subscription_available = 0;
    EXPECT_FALSE(q.empty());
    Properties s;
    s.subscription_identifiers.push_back(1);
    EXPECT_FALSE(s.empty());
}

TEST(Properties, EncodeWireForm) {
    Properties p;
    p.session_expiry_interval = 10;
    p.user_properties.emplace_back("k", "v");
    std::string out;
    encode_properties(out, p);
    EXPECT_EQ(out, test::to_string({0x0C, 0x11, 0x00, 0x00, 0x00, 0x0A, 0x26, 0x00, 0x01, 'k', 0x00,
                                    0x01, 'v'}));
    out.clear();
    encode_properties(out, Properties{});
    EXPECT_EQ(out, std::string(1, '\0'));
    Properties big;
    big.reason_string = std::string(200, 'x');  // 203 bytes: two-byte length 0xCB 0x01
    out.clear();
    encode_properties(out, big);
    ASSERT_EQ(out.size(), 205u);
    EXPECT_EQ(static_cast<uint8_t>(out[0]), 0xCB);
    EXPECT_EQ(static_cast<uint8_t>(out[1]), 0x01);
    EXPECT_EQ(static_cast<uint8_t>(out[2]), 0x1F);
}

Properties all_connack_properties() {
    Properties p;
    p.session_expiry_interval = 0xFFFFFFFF;
    p.assigned_client_identifier = "auto-1";
    p.server_keep_alive = 120;
    p.authentication_method = "SCRAM-SHA-1";
    p.authentication_data = std::string("\x00\x01\xFF", 3);
    p.response_information = "resp/";
    p.server_reference = "other:1883";
    p.reason_string = "fine";
    p.receive_maximum = 65535;
    p.topic_alias_maximum = 10;
    p.maximum_qos = 1;
    p.retain_available = 0;
    p.user_properties = {{"a", "b"}, {"a", "c"}, {"", ""}};
    p.maximum_packet_size = 1 << 20;
    p.wildcard_subscription_available = 1;
    p.subscription_identifier_available = 0;
    p.shared_subscription_available = 1;
    return p;
}

TEST(Properties, RoundTripConnackAndPublish) {
    {
        Connack c;
        c.properties = all_connack_properties();
        std::string out;
        encode_connack(out, Version::V5, c);
        Decoder d = test::client(Version::V5);
        auto [r, p] = decode(d, test::to_bytes(out));
        ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
        EXPECT_EQ(std::get<Connack>(p).properties, c.properties);
    }
    {
        Properties pp;
        pp.payload_format_indicator = 1;
        pp.message_expiry_interval = 3600;
        pp.content_type = "text/plain";
        pp.response_topic = "reply/here";
        pp.correlation_data = std::string("\x00\x00", 2);
        pp.subscription_identifiers = {1, 127, 128, 16383, 16384, 268'435'455};
        pp.topic_alias = 3;
        pp.user_properties = {{"x", "y"}};
        std::string raw;
        encode_properties(raw, pp);
        std::string out;
        encode_publish(out, Version::V5, "t/1", "payload", 1, false, false, 5,
                       std::string_view(raw).substr(1));
        Decoder d = test::client(Version::V5);
        auto [r, p] = decode(d, test::to_bytes(out));
        ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
        EXPECT_EQ(std::get<Publish>(p).properties, pp);
        EXPECT_EQ(std::get<Publish>(p).raw_properties, std::string_view(raw).substr(1));
    }
}

}  // namespace
}  // namespace mqttd::mqtt
