// MQTT encoder (see encoder.h). Each function computes the Remaining Length first, reserves the
// whole packet once and appends, so the output buffer grows at most once per packet.
//
// Layouts (3.1.1 section 3, 5.0 section 3): fixed header byte, Remaining Length (Variable Byte
// Integer), variable header, payload. MQTT 5 adds a property block after the variable header
// and reason codes in the acknowledgements; 3.x UNSUBACK has no payload.
#include "mqtt/encoder.h"

#include <cassert>

#include "common/byte_order.h"
#include "mqtt/wire.h"

namespace mqttd::mqtt {

namespace {

using detail::put_string;
using detail::put_varint;
using detail::varint_size;

uint8_t first_byte(PacketType t, uint8_t flags = 0) {
    return static_cast<uint8_t>((static_cast<uint8_t>(t) << 4) | flags);
}

// REQUIRES: remaining <= 268,435,455 (the largest Remaining Length).
void begin(std::string& out, uint8_t byte0, size_t remaining) {
    assert(remaining <= detail::kMaxVarint);
    const auto rl = static_cast<uint32_t>(remaining);
    out.reserve(out.size() + 1 + varint_size(rl) + rl);
    out.push_back(static_cast<char>(byte0));
    put_varint(out, rl);
}

// Property block size including its length prefix.
size_t block_size(size_t body) {
    return varint_size(static_cast<uint32_t>(body)) + body;
}

void put_block(std::string& out, const Properties& p, size_t body) {
    put_varint(out, static_cast<uint32_t>(body));
    detail::put_properties_body(out, p);
}

void put_byte(std::string& out, uint8_t b) {
    out.push_back(static_cast<char>(b));
}

void put_reason(std::string& out, ReasonCode rc) {
    put_byte(out, static_cast<uint8_t>(rc));
}

// 3.x SUBACK return codes are 0x00, 0x01, 0x02 or 0x80 (Failure).
uint8_t v3_suback_code(ReasonCode rc) {
    return is_error(rc) ? uint8_t{0x80} : static_cast<uint8_t>(rc);
}

}  // namespace

void encode_connack(std::string& out, Version v, const Connack& p) {
    // 3.1 has no Session Present flag; its first variable-header byte is unused.
    const uint8_t flags = (p.session_present && v != Version::V31) ? 1 : 0;
    if (v != Version::V5) {
        begin(out, first_byte(PacketType::Connack), 2);
        put_byte(out, flags);
        put_byte(out, static_cast<uint8_t>(to_v3_connack(p.reason)));
        return;
    }
    const size_t props = detail::properties_body_size(p.properties);
    begin(out, first_byte(PacketType::Connack), 2 + block_size(props));
    put_byte(out, flags);
    put_reason(out, p.reason);
    put_block(out, p.properties, props);
}

void encode_publish(std::string& out,
                    Version v,
                    std::string_view topic,
                    std::string_view payload,
                    uint8_t qos,
                    bool retain,
                    bool dup,
                    uint16_t packet_id,
                    std::string_view raw_properties) {
    size_t rl = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload.size();
    if (v == Version::V5) {
        rl += block_size(raw_properties.size());
    }
    const auto flags =
            static_cast<uint8_t>((dup ? 0x08 : 0) | ((qos & 0x03) << 1) | (retain ? 1 : 0));
    begin(out, first_byte(PacketType::Publish, flags), rl);
    put_string(out, topic);
    if (qos > 0) {
        put_be16(out, packet_id);
    }
    if (v == Version::V5) {
        put_varint(out, static_cast<uint32_t>(raw_properties.size()));
        out.append(raw_properties);
    }
    out.append(payload);
}

void encode_ack(std::string& out, Version v, const Ack& p) {
    // PUBREL's reserved flags are 0010 [MQTT-3.6.1-1].
    const uint8_t byte0 = first_byte(p.type, p.type == PacketType::Pubrel ? 0x02 : 0x00);
    if (v != Version::V5 || (p.reason == ReasonCode::Success && p.properties.empty())) {
        begin(out, byte0, 2);
        put_be16(out, p.packet_id);
        return;
    }
    if (p.properties.empty()) {
        // Remaining Length 3: no Property Length (3.4.2.2.1).
        begin(out, byte0, 3);
        put_be16(out, p.packet_id);
        put_reason(out, p.reason);
        return;
    }
    const size_t props = detail::properties_body_size(p.properties);
    begin(out, byte0, 3 + block_size(props));
    put_be16(out, p.packet_id);
    put_reason(out, p.reason);
    put_block(out, p.properties, props);
}

void encode_suback(std::string& out, Version v, const Suback& p) {
    if (v != Version::V5) {
        begin(out, first_byte(PacketType::Suback), 2 + p.reasons.size());
        put_be16(out, p.packet_id);
        for (ReasonCode rc : p.reasons) {
            put_byte(out, v3_suback_code(rc));
        }
        return;
    }
    const size_t props = detail::properties_body_size(p.properties);
    begin(out, first_byte(PacketType::Suback), 2 + block_size(props) + p.reasons.size());
    put_be16(out, p.packet_id);
    put_block(out, p.properties, props);
    for (ReasonCode rc : p.reasons) {
        put_reason(out, rc);
    }
}

void encode_unsuback(std::string& out, Version v, const Unsuback& p) {
    if (v != Version::V5) {
        // 3.x UNSUBACK has no payload (3.11.3).
        begin(out, first_byte(PacketType::Unsuback), 2);
        put_be16(out, p.packet_id);
        return;
    }
    const size_t props = detail::properties_body_size(p.properties);
    begin(out, first_byte(PacketType::Unsuback), 2 + block_size(props) + p.reasons.size());
    put_be16(out, p.packet_id);
    put_block(out, p.properties, props);
    for (ReasonCode rc : p.reasons) {
        put_reason(out, rc);
    }
}

void encode_pingresp(std::string& out) {
    begin(out, first_byte(PacketType::Pingresp), 0);
}

void encode_disconnect(std::string& out, Version v, const Disconnect& p) {
    // A 3.x server has no DISCONNECT to send: it closes the connection. Nothing is written.
    if (v != Version::V5) {
        return;
    }
    if (p.properties.empty()) {
        // Remaining Length 0 means Normal disconnection, 1 a reason code alone (3.14.2.1).
        if (p.reason == ReasonCode::Success) {
            begin(out, first_byte(PacketType::Disconnect), 0);
            return;
        }
        begin(out, first_byte(PacketType::Disconnect), 1);
        put_reason(out, p.reason);
        return;
    }
    const size_t props = detail::properties_body_size(p.properties);
    begin(out, first_byte(PacketType::Disconnect), 1 + block_size(props));
    put_reason(out, p.reason);
    put_block(out, p.properties, props);
}

void encode_auth(std::string& out, const Auth& p) {
    // Reason Code and Property Length may be omitted for Success without properties (3.15.2.1).
    if (p.reason == ReasonCode::Success && p.properties.empty()) {
        begin(out, first_byte(PacketType::Auth), 0);
        return;
    }
    const size_t props = detail::properties_body_size(p.properties);
    begin(out, first_byte(PacketType::Auth), 1 + block_size(props));
    put_reason(out, p.reason);
    put_block(out, p.properties, props);
}

void encode_connect(std::string& out, const Connect& p) {
    const bool v5 = p.version == Version::V5;
    const std::string_view name = p.version == Version::V31 ? "MQIsdp" : "MQTT";
    const size_t props = v5 ? detail::properties_body_size(p.properties) : 0;
    const size_t will_props = (v5 && p.will) ? detail::properties_body_size(p.will->properties) : 0;

    size_t rl = 2 + name.size() + 1 + 1 + 2 + 2 + p.client_id.size();
    if (v5) {
        rl += block_size(props);
    }
    uint8_t flags = p.clean_start ? 0x02 : 0x00;
    if (p.will) {
        flags |= static_cast<uint8_t>(0x04 | ((p.will->qos & 0x03) << 3) |
                                      (p.will->retain ? 0x20 : 0));
        rl += 2 + p.will->topic.size() + 2 + p.will->payload.size();
        if (v5) {
            rl += block_size(will_props);
        }
    }
    if (p.username) {
        flags |= 0x80;
        rl += 2 + p.username->size();
    }
    if (p.password) {
        flags |= 0x40;
        rl += 2 + p.password->size();
    }

    begin(out, first_byte(PacketType::Connect), rl);
    put_string(out, name);
    put_byte(out, static_cast<uint8_t>(p.version));
    put_byte(out, flags);
    put_be16(out, p.keepalive);
    if (v5) {
        put_block(out, p.properties, props);
    }
    put_string(out, p.client_id);
    if (p.will) {
        if (v5) {
            put_block(out, p.will->properties, will_props);
        }
        put_string(out, p.will->topic);
        put_string(out, p.will->payload);
    }
    if (p.username) {
        put_string(out, *p.username);
    }
    if (p.password) {
        put_string(out, *p.password);
    }
}

void encode_subscribe(std::string& out, Version v, const Subscribe& p) {
    const bool v5 = v == Version::V5;
    const size_t props = v5 ? detail::properties_body_size(p.properties) : 0;
    size_t rl = 2 + (v5 ? block_size(props) : 0);
    for (const auto& [filter, opts] : p.topics) {
        rl += 2 + filter.size() + 1;
    }
    // SUBSCRIBE's reserved flags are 0010 [MQTT-3.8.1-1].
    begin(out, first_byte(PacketType::Subscribe, 0x02), rl);
    put_be16(out, p.packet_id);
    if (v5) {
        put_block(out, p.properties, props);
    }
    for (const auto& [filter, o] : p.topics) {
        put_string(out, filter);
        uint8_t b = o.qos & 0x03;
        if (v5) {
            b = static_cast<uint8_t>(b | (o.no_local ? 0x04 : 0) |
                                     (o.retain_as_published ? 0x08 : 0) |
                                     ((o.retain_handling & 0x03) << 4));
        }
        put_byte(out, b);
    }
}

void encode_unsubscribe(std::string& out, Version v, const Unsubscribe& p) {
    const bool v5 = v == Version::V5;
    const size_t props = v5 ? detail::properties_body_size(p.properties) : 0;
    size_t rl = 2 + (v5 ? block_size(props) : 0);
    for (const auto& filter : p.topics) {
        rl += 2 + filter.size();
    }
    // UNSUBSCRIBE's reserved flags are 0010 [MQTT-3.10.1-1].
    begin(out, first_byte(PacketType::Unsubscribe, 0x02), rl);
    put_be16(out, p.packet_id);
    if (v5) {
        put_block(out, p.properties, props);
    }
    for (const auto& filter : p.topics) {
        put_string(out, filter);
    }
}

void encode_pingreq(std::string& out) {
    begin(out, first_byte(PacketType::Pingreq), 0);
}

void encode_client_disconnect(std::string& out, Version /*v*/) {
    // 3.x DISCONNECT, and MQTT 5 Normal disconnection in its short form: both E0 00.
    begin(out, first_byte(PacketType::Disconnect), 0);
}

void encode_properties(std::string& out, const Properties& p) {
    put_block(out, p, detail::properties_body_size(p));
}

void encode_properties_body(std::string& out, const Properties& p) {
    detail::put_properties_body(out, p);
}

bool with_message_expiry(std::string_view raw, uint32_t seconds, std::string& out) {
    std::string block;
    put_varint(block, static_cast<uint32_t>(raw.size()));
    block.append(raw);
    detail::Reader r{reinterpret_cast<const uint8_t*>(block.data()),
                     reinterpret_cast<const uint8_t*>(block.data()) + block.size()};
    Properties p;
    std::string_view parsed;
    if (detail::read_properties(r, detail::PropertyContext::Publish, p, parsed) !=
                ReasonCode::Success ||
        !p.message_expiry_interval) {
        return false;
    }
    p.message_expiry_interval = seconds;
    out.clear();
    detail::put_properties_body(out, p);
    return true;
}

void append_subscription_identifier(std::string& raw, uint32_t id) {
    put_byte(raw, 0x0B);  // Subscription Identifier
    put_varint(raw, id);
}

void append_topic_alias(std::string& raw, uint16_t alias) {
    put_byte(raw, 0x23);  // Topic Alias
    put_be16(raw, alias);
}

}  // namespace mqttd::mqtt
