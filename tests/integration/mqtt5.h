// MQTT 5 frames for the integration tests, built and parsed by hand (5.0 sections 2 and 3),
// independent of src/mqtt so that a codec bug cannot hide itself, and Client5, a blocking MQTT 5
// client on top of RawClient. Every malformed frame from the broker is a gtest failure.
// Thread-safety: as RawClient (one test thread).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness.h"

namespace mqttd::itest::v5 {

// Property identifiers (5.0 2.2.2.2).
enum Prop : uint8_t {
    kPayloadFormat = 0x01,
    kMessageExpiry = 0x02,
    kContentType = 0x03,
    kResponseTopic = 0x08,
    kCorrelationData = 0x09,
    kSubscriptionId = 0x0B,
    kSessionExpiry = 0x11,
    kAssignedClientId = 0x12,
    kServerKeepAlive = 0x13,
    kAuthMethod = 0x15,
    kAuthData = 0x16,
    kWillDelay = 0x18,
    kReasonString = 0x1F,
    kReceiveMaximum = 0x21,
    kTopicAliasMaximum = 0x22,
    kTopicAlias = 0x23,
    kMaximumQos = 0x24,
    kRetainAvailable = 0x25,
    kUserProperty = 0x26,
    kMaximumPacketSize = 0x27,
};

void put_varint(Bytes& out, uint32_t v);

// A property block being built; bytes() is the block with its length prefix.
class Props {
public:
    Props& u8(Prop id, uint8_t v);
    Props& u16(Prop id, uint16_t v);
    Props& u32(Prop id, uint32_t v);
    Props& varint(Prop id, uint32_t v);
    Props& str(Prop id, std::string_view s);  // UTF-8 string and binary data alike
    Props& pair(Prop id, std::string_view k, std::string_view v);
    Bytes bytes() const;

private:
    Bytes body_;
};

// A property block as received: values by identifier, in the order they came.
struct Received {
    std::map<uint8_t, std::vector<uint32_t>> ints;        // u8 / u16 / u32 / varint
    std::map<uint8_t, std::vector<std::string>> strings;  // strings and binary data
    std::vector<std::pair<std::string, std::string>> user;

    bool has(Prop id) const { return ints.count(id) != 0 || strings.count(id) != 0; }
    std::optional<uint32_t> num(Prop id) const;
    std::optional<std::string> text(Prop id) const;
    std::vector<uint32_t> all(Prop id) const;
};

struct WillSpec {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
    Props props;
};

struct ConnectSpec {
    std::string client_id;
    bool clean_start = true;
    uint16_t keepalive = 60;
    Props props;
    std::optional<WillSpec> will;
    std::optional<std::string> username;
    std::optional<std::string> password;
};

Bytes connect(const ConnectSpec& c);
Bytes publish(std::string_view topic,
              std::string_view payload,
              uint8_t qos,
              uint16_t packet_id,
              bool retain = false,
              const Props& props = {},
              bool dup = false);
// SUBSCRIBE with options bytes (QoS | no local 0x04 | retain as published 0x08 | handling << 4).
Bytes subscribe(uint16_t packet_id,
                const std::vector<std::pair<std::string, uint8_t>>& filters,
                const Props& props = {});
// PUBACK / PUBREC / PUBREL / PUBCOMP (type 4..7) with a reason code.
Bytes ack(uint8_t type, uint16_t packet_id, uint8_t reason = 0);
Bytes disconnect(uint8_t reason = 0, const Props& props = {});
Bytes auth(uint8_t reason, const Props& props);

struct Connack {
    bool session_present = false;
    uint8_t reason = 0;
    Received props;
};
std::optional<Connack> parse_connack(const Packet& p);

struct Publish {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    uint16_t packet_id = 0;
    Received props;
};
std::optional<Publish> parse_publish(const Packet& p);

// A reason code and properties: DISCONNECT, AUTH, and PUBACK..PUBCOMP (id first, then these).
struct Reasoned {
    uint16_t packet_id = 0;
    uint8_t reason = 0;
    Received props;
};
std::optional<Reasoned> parse_reasoned(const Packet& p);

// SUBACK: the reason code per filter.
std::vector<uint8_t> parse_suback(const Packet& p);

// An MQTT 5 client over RawClient; every mismatch with what a call expects is a gtest failure.
class Client5 {
public:
    Client5() = default;
    explicit Client5(uint16_t port) { open(port); }

    bool open(uint16_t port) { return raw_.open(port); }
    RawClient& raw() { return raw_; }

    // Sends CONNECT and reads CONNACK.
    std::optional<Connack> connect(const ConnectSpec& c);
    // open() + connect() expecting reason 0.
    std::optional<Connack> connect_ok(uint16_t port, const ConnectSpec& c);
    std::vector<uint8_t> subscribe(const std::vector<std::pair<std::string, uint8_t>>& filters,
                                   const Props& props = {});
    // Publishes and completes the QoS flow; returns the PUBACK / PUBREC reason (0 for QoS 0).
    uint8_t publish(const std::string& topic,
                    const std::string& payload,
                    uint8_t qos = 0,
                    bool retain = false,
                    const Props& props = {});
    // The next PUBLISH (PUBLISHes that arrived during subscribe() first).
    std::optional<Publish> expect_publish(std::chrono::milliseconds timeout = kWait);
    std::optional<Publish> receive_and_ack(std::chrono::milliseconds timeout = kWait);
    void ack(const Publish& p);
    // Reads until a DISCONNECT arrives (other packets are skipped); its reason, or nullopt.
    std::optional<uint8_t> expect_disconnect(std::chrono::milliseconds timeout = kWait);
    void disconnect(uint8_t reason = 0, const Props& props = {});

private:
    RawClient raw_;
    uint16_t next_id_ = 0;
    uint16_t next_id() {
        next_id_ = static_cast<uint16_t>(next_id_ % 65535 + 1);
        return next_id_;
    }
};

}  // namespace mqttd::itest::v5
