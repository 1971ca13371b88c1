// MQTT control packets for 3.1 (level 3), 3.1.1 (level 4) and 5.0 (level 5), as the decoder
// produces them and the encoder consumes them. No I/O, no broker state.
//
// Ownership: string_view fields of a decoded packet point into the buffer given to
// Decoder::feed() and are valid until that buffer is changed; a consumer that keeps them
// copies them (the broker copies a PUBLISH once, into its shared Message). Owned std::string
// fields are used where packets are built for encoding or are rare (CONNECT).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mqtt/reason_code.h"

namespace mqttd::mqtt {

enum class PacketType : uint8_t {
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Unsubscribe = 10,
    Unsuback = 11,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
    Auth = 15,
};

enum class Version : uint8_t { V31 = 3, V311 = 4, V5 = 5 };

// MQTT 5 properties (5.0 section 2.2.2). Each packet type allows a subset; the decoder rejects
// a property not allowed for its packet, or given twice where that is forbidden.
struct Properties {
    std::optional<uint8_t> payload_format_indicator;
    std::optional<uint32_t> message_expiry_interval;
    std::optional<std::string> content_type;
    std::optional<std::string> response_topic;
    std::optional<std::string> correlation_data;
    std::vector<uint32_t> subscription_identifiers;
    std::optional<uint32_t> session_expiry_interval;
    std::optional<std::string> assigned_client_identifier;
    std::optional<uint16_t> server_keep_alive;
    std::optional<std::string> authentication_method;
    std::optional<std::string> authentication_data;
    std::optional<uint8_t> request_problem_information;
    std::optional<uint32_t> will_delay_interval;
    std::optional<uint8_t> request_response_information;
    std::optional<std::string> response_information;
    std::optional<std::string> server_reference;
    std::optional<std::string> reason_string;
    std::optional<uint16_t> receive_maximum;
    std::optional<uint16_t> topic_alias_maximum;
    std::optional<uint16_t> topic_alias;
    std::optional<uint8_t> maximum_qos;
    std::optional<uint8_t> retain_available;
    std::vector<std::pair<std::string, std::string>> user_properties;
    std::optional<uint32_t> maximum_packet_size;
    std::optional<uint8_t> wildcard_subscription_available;
    std::optional<uint8_t> subscription_identifier_available;
    std::optional<uint8_t> shared_subscription_available;

    bool empty() const;
    bool operator==(const Properties&) const = default;
};

struct Will {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
    Properties properties;  // MQTT 5 will properties
};

struct Connect {
    Version version = Version::V311;
    bool clean_start = true;  // clean session (3.x) / clean start (5)
    uint16_t keepalive = 0;
    std::string client_id;
    std::optional<std::string> username;
    std::optional<std::string> password;
    std::optional<Will> will;
    Properties properties;
};

struct Connack {
    bool session_present = false;
    ReasonCode reason = ReasonCode::Success;  // mapped with to_v3_connack() for 3.x
    Properties properties;
};

// PUBLISH as decoded: views into the input buffer (see the ownership note above).
struct Publish {
    bool dup = false;
    uint8_t qos = 0;
    bool retain = false;
    std::string_view topic;
    uint16_t packet_id = 0;  // present when qos > 0
    std::string_view payload;
    Properties properties;            // MQTT 5 only
    std::string_view raw_properties;  // the wire bytes of the properties (MQTT 5), for storing
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct Ack {
    PacketType type = PacketType::Puback;
    uint16_t packet_id = 0;
    ReasonCode reason = ReasonCode::Success;
    Properties properties;
};

struct SubscribeOptions {
    uint8_t qos = 0;
    bool no_local = false;
    bool retain_as_published = false;
    uint8_t retain_handling = 0;

    bool operator==(const SubscribeOptions&) const = default;
};

struct Subscribe {
    uint16_t packet_id = 0;
    std::vector<std::pair<std::string, SubscribeOptions>> topics;
    Properties properties;
};

struct Suback {
    uint16_t packet_id = 0;
    std::vector<ReasonCode> reasons;  // granted QoS 0/1/2 or 0x80 (3.x) / a reason code (5)
    Properties properties;
};

struct Unsubscribe {
    uint16_t packet_id = 0;
    std::vector<std::string> topics;
    Properties properties;
};

struct Unsuback {
    uint16_t packet_id = 0;
    std::vector<ReasonCode> reasons;  // MQTT 5 only; empty for 3.x
    Properties properties;
};

struct Pingreq {};
struct Pingresp {};

struct Disconnect {
    ReasonCode reason = ReasonCode::Success;
    Properties properties;
};

struct Auth {
    ReasonCode reason = ReasonCode::Success;
    Properties properties;
};

using Packet = std::variant<Connect,
                            Connack,
                            Publish,
                            Ack,
                            Subscribe,
                            Suback,
                            Unsubscribe,
                            Unsuback,
                            Pingreq,
                            Pingresp,
                            Disconnect,
                            Auth>;

}  // namespace mqttd::mqtt
