// Decoder: framing, per-packet rules and error reasons. Expected bytes are written from the
// standard's packet layouts (3.1.1 / 5.0 section 3), not produced by the encoder.
#include "mqtt/decoder.h"

#include <string>

#include <gtest/gtest.h>

#include "test_bytes.h"

namespace mqttd::mqtt {
namespace {

using test::B;
using test::Bytes;
using test::client;
using test::connected_server;
using test::decode;
using test::packet;
using Status = Decoder::Status;

void expect_error(Decoder& d, const Bytes& b, ReasonCode rc) {
    auto r = decode(d, b).result;
    EXPECT_EQ(r.status, Status::Error);
    EXPECT_EQ(r.error, rc) << to_string(r.error) << " instead of " << to_string(rc);
}

void expect_server_error(Version v, const Bytes& b, ReasonCode rc) {
    Decoder d = connected_server(v);
    expect_error(d, b, rc);
}

// ---- CONNECT --------------------------------------------------------------------------------

TEST(DecodeConnect, V311WithWillUserAndPassword) {
    // 3.1.1 section 3.1: protocol name, level 4, flags (user, password, will retain, will QoS 1,
    // will, clean session) = 1110 1110, keep alive 10, then the payload in order.
    const Bytes b = B()({0x10, 0x26})
                            .str("MQTT")({0x04, 0xEE, 0x00, 0x0A})
                            .str("cid")
                            .str("will/t")
                            .str("bye")
                            .str("user")
                            .str("pw");
    Decoder d(Side::Server);
    EXPECT_FALSE(d.version_known());
    auto [r, p] = decode(d, b);
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    EXPECT_EQ(r.consumed, b.size());
    EXPECT_TRUE(d.version_known());
    EXPECT_EQ(d.version(), Version::V311);
    const auto& c = std::get<Connect>(p);
    EXPECT_EQ(c.version, Version::V311);
    EXPECT_TRUE(c.clean_start);
    EXPECT_EQ(c.keepalive, 10);
    EXPECT_EQ(c.client_id, "cid");
    ASSERT_TRUE(c.will);
    EXPECT_EQ(c.will->topic, "will/t");
    EXPECT_EQ(c.will->payload, "bye");
    EXPECT_EQ(c.will->qos, 1);
    EXPECT_TRUE(c.will->retain);
    EXPECT_EQ(c.username, "user");
    EXPECT_EQ(c.password, "pw");
}

TEST(DecodeConnect, V31) {
    Decoder d(Side::Server);
    auto [r, p] = decode(d, test::minimal_connect(Version::V31));
    ASSERT_EQ(r.status, Status::Packet);
    EXPECT_EQ(d.version(), Version::V31);
    EXPECT_EQ(std::get<Connect>(p).version, Version::V31);
    EXPECT_EQ(std::get<Connect>(p).keepalive, 60);
}

TEST(DecodeConnect, V5WithProperties) {
    // Properties: Session Expiry Interval 0x11 = 30, Receive Maximum 0x21 = 10, User Property
    // 0x26 ("k","v"). Will properties: Will Delay Interval 0x18 = 5.
    const Bytes b = B()({0x10, 0x2A})
                            .str("MQTT")({0x05, 0x04, 0x00, 0x3C})(
                                    {0x0F, 0x11, 0, 0, 0, 30, 0x21, 0, 10, 0x26})
                            .str("k")
                            .str("v")
                            .str("id")({0x05, 0x18, 0, 0, 0, 5})
                            .str("w")
                            .str("x");
    Decoder d(Side::Server);
    auto [r, p] = decode(d, b);
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    EXPECT_EQ(d.version(), Version::V5);
    const auto& c = std::get<Connect>(p);
    EXPECT_FALSE(c.clean_start);
    EXPECT_EQ(c.properties.session_expiry_interval, 30u);
    EXPECT_EQ(c.properties.receive_maximum, 10);
    ASSERT_EQ(c.properties.user_properties.size(), 1u);
    EXPECT_EQ(c.properties.user_properties[0].first, "k");
    EXPECT_EQ(c.properties.user_properties[0].second, "v");
    EXPECT_EQ(c.client_id, "id");
    ASSERT_TRUE(c.will);
    EXPECT_EQ(c.will->qos, 0);
    EXPECT_EQ(c.will->properties.will_delay_interval, 5u);
    EXPECT_EQ(c.will->topic, "w");
}

TEST(DecodeConnect, UnsupportedProtocolLevel) {
    // [MQTT-3.1.2-2]: the broker answers CONNACK 0x01 / 0x84.
    for (const Bytes b : {B()({0x10, 0x0C}).str("MQTT")({0x03, 0x02, 0x00, 0x3C, 0x00, 0x00}),
                          B()({0x10, 0x0C}).str("MQTT")({0x06, 0x02, 0x00, 0x3C, 0x00, 0x00}),
                          B()({0x10, 0x0E}).str("MQIsdp")({0x04, 0x02, 0x00, 0x3C, 0x00, 0x00})}) {
        Decoder d(Side::Server);
        expect_error(d, b, ReasonCode::UnsupportedProtocolVersion);
        EXPECT_FALSE(d.version_known());
    }
}

TEST(DecodeConnect, UnknownProtocolNameIsMalformed) {
    Decoder d(Side::Server);
    expect_error(d, B()({0x10, 0x0C}).str("MQTX")({0x04, 0x02, 0x00, 0x3C, 0x00, 0x00}),
                 ReasonCode::MalformedPacket);
    Decoder d2(Side::Server);
    expect_error(d2, B()({0x10, 0x0A}).str("")({0x04, 0x02, 0x00, 0x3C, 0x00, 0x00, 0, 0}),
                 ReasonCode::MalformedPacket);
}

Bytes connect_with_flags(uint8_t level, uint8_t flags) {
    return B()({0x10, 0x0C}).str("MQTT")({level, flags, 0x00, 0x3C, 0x00, 0x00});
}

TEST(DecodeConnect, FlagRules) {
    for (const uint8_t level : {uint8_t{4}, uint8_t{5}}) {
        const auto bad = [&](uint8_t flags) {
            Bytes b = connect_with_flags(level, flags);
            if (level == 5) {
                b = B()({0x10, 0x0D}).str("MQTT")({5, flags, 0x00, 0x3C, 0x00, 0x00, 0x00});
            }
            Decoder d(Side::Server);
            expect_error(d, b, ReasonCode::MalformedPacket);
        };
        bad(0x03);  // reserved flag [MQTT-3.1.2-3]
        bad(0x1E);  // will QoS 3 [MQTT-3.1.2-14]
        bad(0x0A);  // will QoS 1 without the will flag [MQTT-3.1.2-13]
        bad(0x22);  // will retain without the will flag [MQTT-3.1.2-15]
    }
    // Password without user name: malformed in 3.1.1 [MQTT-3.1.2-22]...
    {
        Decoder d(Side::Server);
        expect_error(d, B()({0x10, 0x10}).str("MQTT")({0x04, 0x42, 0x00, 0x3C}).str("").str("pw"),
                     ReasonCode::MalformedPacket);
    }
    // ...allowed in 5.0.
    {
        Decoder d(Side::Server);
        auto [r, p] = decode(
                d, B()({0x10, 0x11}).str("MQTT")({0x05, 0x42, 0x00, 0x3C, 0x00}).str("").str("pw"));
        ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
        EXPECT_EQ(std::get<Connect>(p).password, "pw");
        EXPECT_FALSE(std::get<Connect>(p).username);
    }
}

TEST(DecodeConnect, FieldsMustFitAndNothingMayTrail) {
    Decoder d(Side::Server);
    // User name flag set, no user name.
    expect_error(d, connect_with_flags(4, 0x82), ReasonCode::MalformedPacket);
    // One byte after the last field.
    Decoder d2(Side::Server);
    expect_error(d2, B()({0x10, 0x0D}).str("MQTT")({0x04, 0x02, 0x00, 0x3C, 0x00, 0x00, 0xFF}),
                 ReasonCode::MalformedPacket);
    // Client id length running past the packet.
    Decoder d3(Side::Server);
    expect_error(d3, B()({0x10, 0x0C}).str("MQTT")({0x04, 0x02, 0x00, 0x3C, 0x00, 0x05}),
                 ReasonCode::MalformedPacket);
    // Client id that is not UTF-8.
    Decoder d4(Side::Server);
    expect_error(d4,
                 B()({0x10, 0x0E}).str("MQTT")({0x04, 0x02, 0x00, 0x3C, 0x00, 0x02, 0xC0, 0x80}),
                 ReasonCode::MalformedPacket);
}

TEST(DecodeConnect, V5RemainingLengthMustBeMinimal) {
    // [MQTT-1.5.5-1]: 0x8D 0x00 is a two-byte encoding of 13.
    Decoder d(Side::Server);
    expect_error(d, B()({0x10, 0x8D, 0x00}).str("MQTT")({0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00}),
                 ReasonCode::MalformedPacket);
    // 3.1.1 does not require it.
    Decoder d2(Side::Server);
    EXPECT_EQ(decode(d2, B()({0x10, 0x8C, 0x00}).str("MQTT")({0x04, 0x02, 0x00, 0x3C, 0x00, 0x00}))
                      .result.status,
              Status::Packet);
}

// ---- Direction and order --------------------------------------------------------------------

TEST(DecodeOrder, ServerAcceptsOnlyConnectFirst) {
    // [MQTT-3.1.0-1]
    for (const Bytes& b : {Bytes{0xC0, 0x00}, Bytes{0xE0, 0x00}, Bytes{0x30, 0x03, 0x00, 0x01, 'a'},
                           Bytes{0xF0, 0x00}}) {
        Decoder d(Side::Server);
        expect_error(d, b, ReasonCode::ProtocolError);
    }
}

TEST(DecodeOrder, SecondConnectIsProtocolError) {
    // [MQTT-3.1.0-2]
    Decoder d = connected_server(Version::V311);
    expect_error(d, test::minimal_connect(Version::V311), ReasonCode::ProtocolError);
}

TEST(DecodeOrder, ServerRefusesServerToClientPackets) {
    for (const Bytes& b : {Bytes{0x20, 0x02, 0x00, 0x00}, Bytes{0x90, 0x03, 0x00, 0x01, 0x00},
                           Bytes{0xB0, 0x02, 0x00, 0x01}, Bytes{0xD0, 0x00}}) {
        expect_server_error(Version::V311, b, ReasonCode::ProtocolError);
    }
}

TEST(DecodeOrder, ClientRefusesClientToServerPackets) {
    for (const Bytes& b : {test::minimal_connect(Version::V311),
                           Bytes{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00},
                           Bytes{0xA2, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}, Bytes{0xC0, 0x00}}) {
        Decoder d = client(Version::V311);
        expect_error(d, b, ReasonCode::ProtocolError);
    }
}

TEST(DecodeOrder, AuthOnlyOnV5) {
    expect_server_error(Version::V311, {0xF0, 0x00}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V31, {0xF0, 0x00}, ReasonCode::MalformedPacket);
    Decoder d = connected_server(Version::V5);
    auto [r, p] = decode(d, {0xF0, 0x00});
    ASSERT_EQ(r.status, Status::Packet);
    EXPECT_EQ(std::get<Auth>(p).reason, ReasonCode::Success);
}

TEST(DecodeOrder, ReservedTypeZero) {
    expect_server_error(Version::V311, {0x00, 0x00}, ReasonCode::MalformedPacket);
    Decoder d = client(Version::V311);
    expect_error(d, {0x00, 0x00}, ReasonCode::MalformedPacket);
}

// ---- Framing --------------------------------------------------------------------------------

TEST(DecodeFraming, EmptyAndPartialHeaderNeedMore) {
    Decoder d = connected_server(Version::V311);
    EXPECT_EQ(decode(d, {}).result.status, Status::NeedMore);
    EXPECT_EQ(decode(d, {0x30}).result.status, Status::NeedMore);
    EXPECT_EQ(decode(d, {0x30, 0x80}).result.status, Status::NeedMore);
    EXPECT_EQ(decode(d, {0x30, 0x80, 0x80, 0x80}).result.status, Status::NeedMore);
    EXPECT_EQ(d.expected_size(), 0u);
}

TEST(DecodeFraming, RemainingLengthOfFiveBytesIsMalformed) {
    Decoder d = connected_server(Version::V311, {.max_packet_size = 0xFFFFFFFF});
    expect_error(d, {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, ReasonCode::MalformedPacket);
    // ...and is refused as soon as the fifth byte shows, before any body.
    Decoder d2 = connected_server(Version::V311, {.max_packet_size = 0xFFFFFFFF});
    expect_error(d2, {0x30, 0x80, 0x80, 0x80, 0x80}, ReasonCode::MalformedPacket);
}

TEST(DecodeFraming, LargestRemainingLengthWaitsForBody) {
    // 0xFF 0xFF 0xFF 0x7F = 268,435,455 (2.2.3).
    Decoder d = connected_server(Version::V311, {.max_packet_size = 0xFFFFFFFF});
    auto r = decode(d, {0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00}).result;
    EXPECT_EQ(r.status, Status::NeedMore);
    EXPECT_EQ(d.expected_size(), 5u + 268'435'455u);
}

TEST(DecodeFraming, OversizePacketRefusedAfterFixedHeader) {
    // Whole packet size = 1 + 2 + 200 = 203 > 100: refused with only the 3 header bytes seen.
    Decoder d = connected_server(Version::V5, {.max_packet_size = 100});
    expect_error(d, {0x30, 0xC8, 0x01}, ReasonCode::PacketTooLarge);
    // Exactly at the limit is fine: 1 + 1 + 98 = 100.
    Decoder d2 = connected_server(Version::V5, {.max_packet_size = 100});
    EXPECT_EQ(decode(d2, {0x30, 0x62}).result.status, Status::NeedMore);
    EXPECT_EQ(d2.expected_size(), 100u);
    d2.set_max_packet_size(99);
    expect_error(d2, {0x30, 0x62}, ReasonCode::PacketTooLarge);
}

TEST(DecodeFraming, ByteAtATime) {
    const Bytes b = B()({0x32, 0x0C}).str("a/b")({0x00, 0x07})("hello");
    Decoder d = connected_server(Version::V311);
    for (size_t n = 0; n < b.size(); ++n) {
        auto [r, p] = decode(d, Bytes(b.begin(), b.begin() + static_cast<long>(n)));
        ASSERT_EQ(r.status, Status::NeedMore) << n;
        EXPECT_EQ(r.consumed, 0u);
        if (n >= 2) {
            EXPECT_EQ(d.expected_size(), b.size());
        }
    }
    auto [r, p] = decode(d, b);
    ASSERT_EQ(r.status, Status::Packet);
    EXPECT_EQ(r.consumed, b.size());
    EXPECT_EQ(std::get<Publish>(p).payload, "hello");
    EXPECT_EQ(d.expected_size(), 0u);
}

TEST(DecodeFraming, SeveralPacketsInOneBuffer) {
    Bytes all = B()({0x30, 0x04})
                        .str("t")("x")({0xC0, 0x00, 0x40, 0x02, 0x00, 0x05})({0xE0, 0x00})({0xC0});
    Decoder d = connected_server(Version::V311);
    std::span<const uint8_t> in(all.data(), all.size());
    std::vector<size_t> kinds;
    for (;;) {
        Packet p;
        auto r = d.feed(in, p);
        if (r.status != Status::Packet) {
            EXPECT_EQ(r.status, Status::NeedMore);
            break;
        }
        kinds.push_back(p.index());
        in = in.subspan(r.consumed);
    }
    EXPECT_EQ(kinds, (std::vector<size_t>{2, 8, 3, 10}));
    EXPECT_EQ(in.size(), 1u);  // the lone 0xC0 waits for its length
}

// ---- PUBLISH --------------------------------------------------------------------------------

TEST(DecodePublish, Qos0AndQos1AndQos2) {
    Decoder d = connected_server(Version::V311);
    {
        auto [r, p] = decode(d, B()({0x31, 0x0A}).str("a/b")("hello"));
        ASSERT_EQ(r.status, Status::Packet);
        const auto& pub = std::get<Publish>(p);
        EXPECT_EQ(pub.qos, 0);
        EXPECT_TRUE(pub.retain);
        EXPECT_FALSE(pub.dup);
        EXPECT_EQ(pub.topic, "a/b");
        EXPECT_EQ(pub.packet_id, 0);
        EXPECT_EQ(pub.payload, "hello");
    }
    {
        auto [r, p] = decode(d, B()({0x3A, 0x07}).str("a/b")({0x12, 0x34}));
        ASSERT_EQ(r.status, Status::Packet);
        const auto& pub = std::get<Publish>(p);
        EXPECT_EQ(pub.qos, 1);
        EXPECT_TRUE(pub.dup);
        EXPECT_EQ(pub.packet_id, 0x1234);
        EXPECT_TRUE(pub.payload.empty());
    }
    {
        auto [r, p] = decode(d, B()({0x34, 0x08}).str("t")({0x00, 0x01})("xyz"));
        ASSERT_EQ(r.status, Status::Packet);
        EXPECT_EQ(std::get<Publish>(p).qos, 2);
        EXPECT_EQ(std::get<Publish>(p).payload, "xyz");
    }
}

TEST(DecodePublish, ViewsPointIntoTheInput) {
    const Bytes b = B()({0x30, 0x05}).str("t")("xy");
    Decoder d = connected_server(Version::V311);
    Packet p;
    auto r = d.feed(std::span<const uint8_t>(b.data(), b.size()), p);
    ASSERT_EQ(r.status, Status::Packet);
    const auto& pub = std::get<Publish>(p);
    EXPECT_EQ(reinterpret_cast<const uint8_t*>(pub.topic.data()), b.data() + 4);
    EXPECT_EQ(reinterpret_cast<const uint8_t*>(pub.payload.data()), b.data() + 5);
}

TEST(DecodePublish, FlagRules) {
    // QoS 3 [MQTT-3.3.1-4], refused from the first byte.
    expect_server_error(Version::V311, {0x36}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V5, B()({0x36, 0x03}).str("t"), ReasonCode::MalformedPacket);
    // DUP with QoS 0 [MQTT-3.3.1-2].
    expect_server_error(Version::V311, B()({0x38, 0x03}).str("t"), ReasonCode::ProtocolError);
    expect_server_error(Version::V5, B()({0x38, 0x04}).str("t")({0}), ReasonCode::ProtocolError);
    // 3.1 had no such rule.
    Decoder d = connected_server(Version::V31);
    EXPECT_EQ(decode(d, B()({0x38, 0x03}).str("t")).result.status, Status::Packet);
}

TEST(DecodePublish, PacketIdentifierRules) {
    // Non-zero when QoS > 0 [MQTT-2.3.1-1].
    expect_server_error(Version::V311, B()({0x32, 0x05}).str("t")({0x00, 0x00}),
                        ReasonCode::ProtocolError);
    // Missing.
    expect_server_error(Version::V311, B()({0x32, 0x03}).str("t"), ReasonCode::MalformedPacket);
    // Topic length past the end.
    expect_server_error(Version::V311, {0x30, 0x03, 0x00, 0x05, 't'}, ReasonCode::MalformedPacket);
}

TEST(DecodePublish, TopicNameRules) {
    expect_server_error(Version::V311, B()({0x30, 0x04}).str("a+"), ReasonCode::TopicNameInvalid);
    expect_server_error(Version::V311, B()({0x30, 0x05}).str("a/#"), ReasonCode::TopicNameInvalid);
    expect_server_error(Version::V311, B()({0x30, 0x02}).str(""), ReasonCode::TopicNameInvalid);
    expect_server_error(Version::V311, B()({0x30, 0x05})({0x00, 0x03, 'a', 0x00, 'b'}),
                        ReasonCode::MalformedPacket);
    expect_server_error(Version::V311, B()({0x30, 0x05})({0x00, 0x03, 0xED, 0xA0, 0x80}),
                        ReasonCode::MalformedPacket);
    // MQTT 5: an empty topic needs a Topic Alias (3.3.2.1).
    expect_server_error(Version::V5, B()({0x30, 0x03}).str("")({0x00}), ReasonCode::ProtocolError);
    Decoder d = connected_server(Version::V5);
    auto [r, p] = decode(d, B()({0x30, 0x07}).str("")({0x03, 0x23, 0x00, 0x01})("x"));
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    EXPECT_EQ(std::get<Publish>(p).properties.topic_alias, 1);
    EXPECT_TRUE(std::get<Publish>(p).topic.empty());
    // Topic Alias 0 [MQTT-3.3.2-8].
    expect_server_error(Version::V5, B()({0x30, 0x06}).str("")({0x03, 0x23, 0x00, 0x00}),
                        ReasonCode::TopicAliasInvalid);
}

TEST(DecodePublish, V5Properties) {
    // Payload Format Indicator 1, Message Expiry 60, Content Type "json", Correlation Data
    // 0x00 0xFF, Response Topic "r".
    const Bytes props = B()({0x01, 0x01, 0x02, 0, 0, 0, 60, 0x03})
                                .str("json")({0x09, 0x00, 0x02, 0x00, 0xFF, 0x08})
                                .str("r");
    Bytes b = B()({0x32, static_cast<int>(3 + 2 + 1 + props.size() + 2)}).str("t")({0x00, 0x09});
    b.push_back(static_cast<uint8_t>(props.size()));
    b.insert(b.end(), props.begin(), props.end());
    b.push_back('h');
    b.push_back('i');
    Decoder d = connected_server(Version::V5);
    auto [r, p] = decode(d, b);
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    const auto& pub = std::get<Publish>(p);
    EXPECT_EQ(pub.packet_id, 9);
    EXPECT_EQ(pub.payload, "hi");
    EXPECT_EQ(pub.properties.payload_format_indicator, 1);
    EXPECT_EQ(pub.properties.message_expiry_interval, 60u);
    EXPECT_EQ(pub.properties.content_type, "json");
    EXPECT_EQ(pub.properties.correlation_data, std::string("\x00\xFF", 2));
    EXPECT_EQ(pub.properties.response_topic, "r");
    EXPECT_EQ(pub.raw_properties, test::to_string(props));
}

TEST(DecodePublish, SubscriptionIdentifierOnlyFromServer) {
    // [MQTT-3.3.4-6]: not from a client...
    const Bytes b = B()({0x30, 0x0A}).str("t")({0x05, 0x0B, 0x01, 0x0B, 0x80, 0x01})("x");
    expect_server_error(Version::V5, b, ReasonCode::ProtocolError);
    // ...but a server may send several (3.3.2.3.8).
    Decoder d = client(Version::V5);
    auto [r, p] = decode(d, b);
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    EXPECT_EQ(std::get<Publish>(p).properties.subscription_identifiers,
              (std::vector<uint32_t>{1, 128}));
}

TEST(DecodePublish, V5PropertyLengthPastEnd) {
    expect_server_error(Version::V5, B()({0x30, 0x05}).str("t")({0x09, 0x01}),
                        ReasonCode::MalformedPacket);
}

// ---- PUBACK, PUBREC, PUBREL, PUBCOMP --------------------------------------------------------

TEST(DecodeAck, V311AllFour) {
    Decoder d = connected_server(Version::V311);
    const std::pair<uint8_t, PacketType> kinds[] = {{0x40, PacketType::Puback},
                                                    {0x50, PacketType::Pubrec},
                                                    {0x62, PacketType::Pubrel},
                                                    {0x70, PacketType::Pubcomp}};
    for (auto [byte0, type] : kinds) {
        auto [r, p] = decode(d, {byte0, 0x02, 0xAB, 0xCD});
        ASSERT_EQ(r.status, Status::Packet);
        const auto& a = std::get<Ack>(p);
        EXPECT_EQ(a.type, type);
        EXPECT_EQ(a.packet_id, 0xABCD);
        EXPECT_EQ(a.reason, ReasonCode::Success);
    }
}

TEST(DecodeAck, V311Rules) {
    // Reserved flags [MQTT-2.2.2-1]: PUBREL needs 0010 [MQTT-3.6.1-1], the others 0000.
    expect_server_error(Version::V311, {0x60, 0x02, 0x00, 0x01}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V311, {0x42, 0x02, 0x00, 0x01}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V311, {0x71, 0x02, 0x00, 0x01}, ReasonCode::MalformedPacket);
    // Remaining length must be 2; refused before the body arrives.
    expect_server_error(Version::V311, {0x40, 0x03}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V311, {0x40, 0x01}, ReasonCode::MalformedPacket);
    // Packet identifier 0.
    expect_server_error(Version::V311, {0x40, 0x02, 0x00, 0x00}, ReasonCode::ProtocolError);
}

TEST(DecodeAck, V31AllowsDupOnPubrel) {
    Decoder d = connected_server(Version::V31);
    EXPECT_EQ(decode(d, {0x6A, 0x02, 0x00, 0x01}).result.status, Status::Packet);
    expect_error(d, {0x68, 0x02, 0x00, 0x01}, ReasonCode::MalformedPacket);
}

TEST(DecodeAck, V5ShortAndLongForms) {
    Decoder d = connected_server(Version::V5);
    {
        auto [r, p] = decode(d, {0x40, 0x02, 0x00, 0x01});
        ASSERT_EQ(r.status, Status::Packet);
        EXPECT_EQ(std::get<Ack>(p).reason, ReasonCode::Success);
    }
    {
        auto [r, p] = decode(d, {0x50, 0x03, 0x00, 0x01, 0x10});
        ASSERT_EQ(r.status, Status::Packet);
        EXPECT_EQ(std::get<Ack>(p).reason, ReasonCode::NoMatchingSubscribers);
    }
    {
        auto [r, p] = decode(d, {0x62, 0x04, 0x00, 0x01, 0x92, 0x00});
        ASSERT_EQ(r.status, Status::Packet);
        EXPECT_EQ(std::get<Ack>(p).reason, ReasonCode::PacketIdentifierNotFound);
    }
    {
        auto [r, p] = decode(d, B()({0x70, 0x09, 0x00, 0x01, 0x92, 0x05, 0x1F}).str("no"));
        ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
        EXPECT_EQ(std::get<Ack>(p).properties.reason_string, "no");
    }
}

TEST(DecodeAck, V5ReasonCodeMustSuitThePacket) {
    expect_server_error(Version::V5, {0x40, 0x03, 0x00, 0x01, 0x92}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V5, {0x62, 0x03, 0x00, 0x01, 0x10}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V5, {0x40, 0x03, 0x00, 0x01, 0x01}, ReasonCode::MalformedPacket);
    // A property a PUBACK may not carry (Topic Alias).
    expect_server_error(Version::V5, {0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01},
                        ReasonCode::MalformedPacket);
}

// ---- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------------

TEST(DecodeSubscribe, V311) {
    Decoder d = connected_server(Version::V311);
    auto [r, p] = decode(d, B()({0x82, 0x0C, 0x00, 0x0A}).str("a/+")({0x01}).str("#")({0x02}));
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    const auto& s = std::get<Subscribe>(p);
    EXPECT_EQ(s.packet_id, 10);
    ASSERT_EQ(s.topics.size(), 2u);
    EXPECT_EQ(s.topics[0].first, "a/+");
    EXPECT_EQ(s.topics[0].second.qos, 1);
    EXPECT_EQ(s.topics[1].first, "#");
    EXPECT_EQ(s.topics[1].second.qos, 2);
}

TEST(DecodeSubscribe, V311Rules) {
    // Flags 0010 [MQTT-3.8.1-1].
    expect_server_error(Version::V311, B()({0x80, 0x06, 0x00, 0x01}).str("a")({0x00}),
                        ReasonCode::MalformedPacket);
    // No topic [MQTT-3.8.3-3].
    expect_server_error(Version::V311, {0x82, 0x02, 0x00, 0x01}, ReasonCode::ProtocolError);
    // Reserved option bits, QoS 3 [MQTT-3-8.3-4].
    expect_server_error(Version::V311, B()({0x82, 0x06, 0x00, 0x01}).str("a")({0x04}),
                        ReasonCode::MalformedPacket);
    expect_server_error(Version::V311, B()({0x82, 0x06, 0x00, 0x01}).str("a")({0x03}),
                        ReasonCode::MalformedPacket);
    // Packet identifier 0 [MQTT-2.3.1-1].
    expect_server_error(Version::V311, B()({0x82, 0x06, 0x00, 0x00}).str("a")({0x00}),
                        ReasonCode::ProtocolError);
    // Missing options byte.
    expect_server_error(Version::V311, B()({0x82, 0x05, 0x00, 0x01}).str("a"),
                        ReasonCode::MalformedPacket);
    // Bad filters.
    // Invalid filters are decoded, for the broker to refuse one by one in the SUBACK.
    for (const char* f : {"a/#/b", "a+", "#a", ""}) {
        const Bytes body = B()({0x00, 0x01}).str(f)({0x00});
        Decoder d = connected_server(Version::V311);
        auto [r, p] = decode(d, packet(0x82, body));
        ASSERT_EQ(r.status, Status::Packet) << f;
        EXPECT_EQ(std::get<Subscribe>(p).topics.at(0).first, f);
        EXPECT_FALSE(valid_subscription_filter(f, Version::V311));
    }
    expect_server_error(Version::V311, packet(0x82, B()({0x00, 0x01}).str("\xC0\x80")({0x00})),
                        ReasonCode::MalformedPacket);
}

TEST(DecodeSubscribe, V5Options) {
    Decoder d = connected_server(Version::V5);
    // Subscription Identifier 0x0B = 7; options: QoS 1, No Local, Retain As Published, Retain
    // Handling 2 = 0010 1101.
    auto [r, p] = decode(d, B()({0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x07}).str("a")({0x2D}));
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    const auto& s = std::get<Subscribe>(p);
    EXPECT_EQ(s.properties.subscription_identifiers, std::vector<uint32_t>{7});
    const auto& o = s.topics.at(0).second;
    EXPECT_EQ(o.qos, 1);
    EXPECT_TRUE(o.no_local);
    EXPECT_TRUE(o.retain_as_published);
    EXPECT_EQ(o.retain_handling, 2);
}

TEST(DecodeSubscribe, V5Rules) {
    const auto sub = [](const char* filter, uint8_t opts, const Bytes& props = {0x00}) {
        Bytes body = {0x00, 0x01};
        body.insert(body.end(), props.begin(), props.end());
        const Bytes rest = B().str(filter)({opts});
        body.insert(body.end(), rest.begin(), rest.end());
        return packet(0x82, body);
    };
    // Reserved bits 6-7 [MQTT-3.8.3-5].
    expect_server_error(Version::V5, sub("a", 0x40), ReasonCode::MalformedPacket);
    expect_server_error(Version::V5, sub("a", 0x80), ReasonCode::MalformedPacket);
    // Retain Handling 3 and QoS 3 (3.8.3.1).
    expect_server_error(Version::V5, sub("a", 0x30), ReasonCode::ProtocolError);
    expect_server_error(Version::V5, sub("a", 0x03), ReasonCode::ProtocolError);
    // No Local on a Shared Subscription [MQTT-3.8.3-4].
    expect_server_error(Version::V5, sub("$share/g/a", 0x04), ReasonCode::ProtocolError);
    // Shared Subscription syntax [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    for (const char* f : {"$share//a", "$share/g", "$share/g/", "$share/+/a"}) {
        Decoder ds = connected_server(Version::V5);
        EXPECT_EQ(decode(ds, sub(f, 0x00)).result.status, Status::Packet) << f;
        EXPECT_FALSE(valid_subscription_filter(f, Version::V5)) << f;
    }
    EXPECT_TRUE(valid_subscription_filter("$share/g/a/#", Version::V5));
    Decoder d = connected_server(Version::V5);
    EXPECT_EQ(decode(d, sub("$share/g/a/#", 0x01)).result.status, Status::Packet);
    // Subscription Identifier 0, or twice.
    expect_server_error(Version::V5, sub("a", 0x00, {0x02, 0x0B, 0x00}), ReasonCode::ProtocolError);
    expect_server_error(Version::V5, sub("a", 0x00, {0x04, 0x0B, 0x01, 0x0B, 0x02}),
                        ReasonCode::ProtocolError);
    // No topic [MQTT-3.8.3-2].
    expect_server_error(Version::V5, {0x82, 0x03, 0x00, 0x01, 0x00}, ReasonCode::ProtocolError);
}

TEST(DecodeUnsubscribe, AllVersions) {
    for (Version v : {Version::V31, Version::V311}) {
        Decoder d = connected_server(v);
        auto [r, p] = decode(d, B()({0xA2, 0x09, 0x00, 0x02}).str("a")({0x00, 0x02})("b#"));
        ASSERT_EQ(r.status, Status::Packet);  // the broker finds no such subscription
        EXPECT_EQ(std::get<Unsubscribe>(p).topics, (std::vector<std::string>{"a", "b#"}));
        Decoder d2 = connected_server(v);
        auto [r2, p2] = decode(d2, B()({0xA2, 0x0A, 0x00, 0x02}).str("a").str("b/#"));
        ASSERT_EQ(r2.status, Status::Packet);
        EXPECT_EQ(std::get<Unsubscribe>(p2).topics, (std::vector<std::string>{"a", "b/#"}));
    }
    Decoder d = connected_server(Version::V5);
    auto [r, p] = decode(d, B()({0xA2, 0x0A, 0x00, 0x02, 0x05, 0x26}).str("")({0, 0}).str(""));
    ASSERT_EQ(r.status, Status::Packet);  // empty filter [MQTT-4.7.3-1]: no such subscription
    Decoder d2 = connected_server(Version::V5);
    auto [r2, p2] = decode(d2, B()({0xA2, 0x06, 0x00, 0x02, 0x00}).str("a"));
    ASSERT_EQ(r2.status, Status::Packet);
    EXPECT_EQ(std::get<Unsubscribe>(p2).packet_id, 2);
}

TEST(DecodeUnsubscribe, Rules) {
    // Flags 0010 [MQTT-3.10.1-1]; at least one filter [MQTT-3.10.3-2]; packet id non-zero.
    expect_server_error(Version::V311, B()({0xA0, 0x05, 0x00, 0x01}).str("a"),
                        ReasonCode::MalformedPacket);
    expect_server_error(Version::V311, {0xA2, 0x02, 0x00, 0x01}, ReasonCode::ProtocolError);
    expect_server_error(Version::V5, {0xA2, 0x03, 0x00, 0x01, 0x00}, ReasonCode::ProtocolError);
    expect_server_error(Version::V311, B()({0xA2, 0x05, 0x00, 0x00}).str("a"),
                        ReasonCode::ProtocolError);
}

// ---- PINGREQ, DISCONNECT, AUTH --------------------------------------------------------------

TEST(DecodeControl, PingreqAndDisconnect) {
    for (Version v : {Version::V31, Version::V311, Version::V5}) {
        Decoder d = connected_server(v);
        EXPECT_TRUE(std::holds_alternative<Pingreq>(decode(d, {0xC0, 0x00}).packet));
        EXPECT_TRUE(std::holds_alternative<Disconnect>(decode(d, {0xE0, 0x00}).packet));
        // Reserved flags.
        expect_error(d, {0xC1, 0x00}, ReasonCode::MalformedPacket);
        expect_server_error(v, {0xE8, 0x00}, ReasonCode::MalformedPacket);
    }
    // Remaining length 0 for PINGREQ always, for DISCONNECT on 3.x; refused on the header.
    expect_server_error(Version::V311, {0xC0, 0x01}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V5, {0xC0, 0x01}, ReasonCode::MalformedPacket);
    expect_server_error(Version::V311, {0xE0, 0x01}, ReasonCode::MalformedPacket);
}

TEST(DecodeControl, V5Disconnect) {
    Decoder d = connected_server(Version::V5);
    {
        auto [r, p] = decode(d, {0xE0, 0x01, 0x04});
        ASSERT_EQ(r.status, Status::Packet);
        EXPECT_EQ(std::get<Disconnect>(p).reason, ReasonCode::DisconnectWithWill);
    }
    {
        auto [r, p] = decode(d, {0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00});
        ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
        EXPECT_EQ(std::get<Disconnect>(p).properties.session_expiry_interval, 0u);
    }
    expect_error(d, {0xE0, 0x01, 0x10}, ReasonCode::MalformedPacket);  // not a DISCONNECT reason
    Decoder d2 = connected_server(Version::V5);
    expect_error(d2, {0xE0, 0x03, 0x00, 0x01, 0x11}, ReasonCode::MalformedPacket);  // cut short
}

TEST(DecodeControl, V5Auth) {
    Decoder d = connected_server(Version::V5);
    auto [r, p] = decode(d, B()({0xF0, 0x0D, 0x18, 0x0B, 0x15}).str("SCRAM")({0x16, 0x00, 0x00}));
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    const auto& a = std::get<Auth>(p);
    EXPECT_EQ(a.reason, ReasonCode::ContinueAuthentication);
    EXPECT_EQ(a.properties.authentication_method, "SCRAM");
    EXPECT_EQ(a.properties.authentication_data, "");
    expect_error(d, {0xF0, 0x02, 0x87, 0x00}, ReasonCode::MalformedPacket);
    Decoder d2 = connected_server(Version::V5);
    expect_error(d2, {0xF1, 0x00}, ReasonCode::MalformedPacket);
}

// ---- Server-to-client packets ---------------------------------------------------------------

TEST(DecodeClient, Connack) {
    {
        Decoder d = client(Version::V311);
        auto [r, p] = decode(d, {0x20, 0x02, 0x01, 0x00});
        ASSERT_EQ(r.status, Status::Packet);
        EXPECT_TRUE(std::get<Connack>(p).session_present);
        EXPECT_EQ(std::get<Connack>(p).reason, ReasonCode::Success);
        auto [r2, p2] = decode(d, {0x20, 0x02, 0x00, 0x05});
        ASSERT_EQ(r2.status, Status::Packet);
        EXPECT_EQ(std::get<Connack>(p2).reason, ReasonCode::NotAuthorized);
        expect_error(d, {0x20, 0x02, 0x02, 0x00}, ReasonCode::MalformedPacket);  // [MQTT-3.2.2-1]
        expect_error(d, {0x20, 0x02, 0x00, 0x06}, ReasonCode::MalformedPacket);
        expect_error(d, {0x20, 0x03}, ReasonCode::MalformedPacket);
    }
    {
        Decoder d = client(Version::V5);
        auto [r, p] = decode(d, {0x20, 0x03, 0x00, 0x00, 0x00});
        ASSERT_EQ(r.status, Status::Packet);
        auto [r2, p2] = decode(d, {0x20, 0x06, 0x00, 0x8C, 0x03, 0x24, 0x01, 0x00});
        // Maximum QoS 1, then a property identifier 0: malformed.
        EXPECT_EQ(r2.error, ReasonCode::MalformedPacket);
        auto [r3, p3] = decode(d, {0x20, 0x05, 0x00, 0x8C, 0x02, 0x24, 0x01});
        ASSERT_EQ(r3.status, Status::Packet) << to_string(r3.error);
        EXPECT_EQ(std::get<Connack>(p3).reason, ReasonCode::BadAuthenticationMethod);
        EXPECT_EQ(std::get<Connack>(p3).properties.maximum_qos, 1);
        // Session Present with an error [MQTT-3.2.2-6].
        expect_error(d, {0x20, 0x03, 0x01, 0x80, 0x00}, ReasonCode::ProtocolError);
    }
}

TEST(DecodeClient, SubackAndUnsuback) {
    {
        Decoder d = client(Version::V311);
        auto [r, p] = decode(d, {0x90, 0x05, 0x00, 0x07, 0x00, 0x02, 0x80});
        ASSERT_EQ(r.status, Status::Packet);
        EXPECT_EQ(std::get<Suback>(p).reasons,
                  (std::vector<ReasonCode>{ReasonCode::Success, ReasonCode::GrantedQos2,
                                           ReasonCode::UnspecifiedError}));
        expect_error(d, {0x90, 0x03, 0x00, 0x07, 0x03}, ReasonCode::MalformedPacket);
        auto [r2, p2] = decode(d, {0xB0, 0x02, 0x00, 0x07});
        ASSERT_EQ(r2.status, Status::Packet);
        EXPECT_EQ(std::get<Unsuback>(p2).packet_id, 7);
        EXPECT_TRUE(std::get<Unsuback>(p2).reasons.empty());
        expect_error(d, {0xB0, 0x03, 0x00, 0x07, 0x00}, ReasonCode::MalformedPacket);
    }
    {
        Decoder d = client(Version::V5);
        auto [r, p] = decode(d, {0x90, 0x05, 0x00, 0x07, 0x00, 0x01, 0xA2});
        ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
        EXPECT_EQ(std::get<Suback>(p).reasons.back(),
                  ReasonCode::WildcardSubscriptionsNotSupported);
        auto [r2, p2] = decode(d, {0xB0, 0x05, 0x00, 0x07, 0x00, 0x11, 0x00});
        ASSERT_EQ(r2.status, Status::Packet) << to_string(r2.error);
        EXPECT_EQ(
                std::get<Unsuback>(p2).reasons,
                (std::vector<ReasonCode>{ReasonCode::NoSubscriptionExisted, ReasonCode::Success}));
        expect_error(d, {0xB0, 0x04, 0x00, 0x07, 0x00, 0x02}, ReasonCode::MalformedPacket);
    }
}

TEST(DecodeClient, PingrespAndServerDisconnect) {
    Decoder d = client(Version::V5);
    EXPECT_TRUE(std::holds_alternative<Pingresp>(decode(d, {0xD0, 0x00}).packet));
    auto [r, p] = decode(d, B()({0xE0, 0x06, 0x9C, 0x04, 0x1C}).str("s"));
    ASSERT_EQ(r.status, Status::Packet) << to_string(r.error);
    EXPECT_EQ(std::get<Disconnect>(p).reason, ReasonCode::UseAnotherServer);
    EXPECT_EQ(std::get<Disconnect>(p).properties.server_reference, "s");
    expect_error(d, {0xD0, 0x01, 0x00}, ReasonCode::MalformedPacket);
}

}  // namespace
}  // namespace mqttd::mqtt
