// MQTT 5 properties (5.0 section 2.2.2): reading a property block with the per-packet rules, and
// writing one.
//
// A property block is a Variable Byte Integer length followed by properties, each a Variable
// Byte Integer identifier (all defined identifiers fit in one byte) and a value of the type the
// identifier fixes: Byte, Two Byte Integer, Four Byte Integer, Variable Byte Integer, UTF-8
// Encoded String, Binary Data or UTF-8 String Pair. "A Control Packet which contains an
// Identifier which is not valid for its packet type, or contains a value not of the specified
// data type, is a Malformed Packet" (2.2.2.2). Every property except User Property (and
// Subscription Identifier in a server-to-client PUBLISH) may appear at most once; a second one
// is a Protocol Error (section 3 of the standard, property by property).
#include <array>

#include "common/byte_order.h"
#include "mqtt/decoder.h"
#include "mqtt/wire.h"

namespace mqttd::mqtt {

bool Properties::empty() const {
    return !payload_format_indicator && !message_expiry_interval && !content_type &&
           !response_topic && !correlation_data && subscription_identifiers.empty() &&
           !session_expiry_interval && !assigned_client_identifier && !server_keep_alive &&
           !authentication_method && !authentication_data && !request_problem_information &&
           !will_delay_interval && !request_response_information && !response_information &&
           !server_reference && !reason_string && !receive_maximum && !topic_alias_maximum &&
           !topic_alias && !maximum_qos && !retain_available && user_properties.empty() &&
           !maximum_packet_size && !wildcard_subscription_available &&
           !subscription_identifier_available && !shared_subscription_available;
}

namespace detail {
namespace {

enum PropertyId : uint8_t {
    kPayloadFormatIndicator = 0x01,
    kMessageExpiryInterval = 0x02,
    kContentType = 0x03,
    kResponseTopic = 0x08,
    kCorrelationData = 0x09,
    kSubscriptionIdentifier = 0x0B,
    kSessionExpiryInterval = 0x11,
    kAssignedClientIdentifier = 0x12,
    kServerKeepAlive = 0x13,
    kAuthenticationMethod = 0x15,
    kAuthenticationData = 0x16,
    kRequestProblemInformation = 0x17,
    kWillDelayInterval = 0x18,
    kRequestResponseInformation = 0x19,
    kResponseInformation = 0x1A,
    kServerReference = 0x1C,
    kReasonString = 0x1F,
    kReceiveMaximum = 0x21,
    kTopicAliasMaximum = 0x22,
    kTopicAlias = 0x23,
    kMaximumQos = 0x24,
    kRetainAvailable = 0x25,
    kUserProperty = 0x26,
    kMaximumPacketSize = 0x27,
    kWildcardSubscriptionAvailable = 0x28,
    kSubscriptionIdentifierAvailable = 0x29,
    kSharedSubscriptionAvailable = 0x2A,
    kMaxPropertyId = 0x2A,
};

constexpr uint16_t bit(PropertyContext c) {
    return static_cast<uint16_t>(1u << static_cast<unsigned>(c));
}

constexpr uint16_t kConnect = bit(PropertyContext::Connect);
constexpr uint16_t kWill = bit(PropertyContext::Will);
constexpr uint16_t kConnack = bit(PropertyContext::Connack);
constexpr uint16_t kPublish = bit(PropertyContext::Publish);
constexpr uint16_t kPubAck = bit(PropertyContext::PubAck);
constexpr uint16_t kSubscribe = bit(PropertyContext::Subscribe);
constexpr uint16_t kSuback = bit(PropertyContext::Suback);
constexpr uint16_t kUnsuback = bit(PropertyContext::Unsuback);
constexpr uint16_t kDisconnect = bit(PropertyContext::Disconnect);
constexpr uint16_t kAuth = bit(PropertyContext::Auth);
// Every context; UNSUBSCRIBE allows only User Property, so it has no constant of its own.
constexpr uint16_t kAll = 0x7FF;

// Which packets each identifier may appear in (5.0 section 2.2.2.2, table of properties).
constexpr std::array<uint16_t, kMaxPropertyId + 1> kAllowed = [] {
    std::array<uint16_t, kMaxPropertyId + 1> a{};
    a[kPayloadFormatIndicator] = kPublish | kWill;
    a[kMessageExpiryInterval] = kPublish | kWill;
    a[kContentType] = kPublish | kWill;
    a[kResponseTopic] = kPublish | kWill;
    a[kCorrelationData] = kPublish | kWill;
    a[kSubscriptionIdentifier] = kPublish | kSubscribe;
    a[kSessionExpiryInterval] = kConnect | kConnack | kDisconnect;
    a[kAssignedClientIdentifier] = kConnack;
    a[kServerKeepAlive] = kConnack;
    a[kAuthenticationMethod] = kConnect | kConnack | kAuth;
    a[kAuthenticationData] = kConnect | kConnack | kAuth;
    a[kRequestProblemInformation] = kConnect;
    a[kWillDelayInterval] = kWill;
    a[kRequestResponseInformation] = kConnect;
    a[kResponseInformation] = kConnack;
    a[kServerReference] = kConnack | kDisconnect;
    a[kReasonString] = kConnack | kPubAck | kSuback | kUnsuback | kDisconnect | kAuth;
    a[kReceiveMaximum] = kConnect | kConnack;
    a[kTopicAliasMaximum] = kConnect | kConnack;
    a[kTopicAlias] = kPublish;
    a[kMaximumQos] = kConnack;
    a[kRetainAvailable] = kConnack;
    a[kUserProperty] = kAll;
    a[kMaximumPacketSize] = kConnect | kConnack;
    a[kWildcardSubscriptionAvailable] = kConnack;
    a[kSubscriptionIdentifierAvailable] = kConnack;
    a[kSharedSubscriptionAvailable] = kConnack;
    return a;
}();

// Reads a Byte property that may only be 0 or 1.
ReasonCode read_flag(Reader& r, std::optional<uint8_t>& field) {
    uint8_t v = 0;
    if (!r.u8(v)) {
        return ReasonCode::MalformedPacket;
    }
    if (v > 1) {
        return ReasonCode::ProtocolError;
    }
    field = v;
    return ReasonCode::Success;
}

ReasonCode read_u16(Reader& r, std::optional<uint16_t>& field) {
    uint16_t v = 0;
    if (!r.u16(v)) {
        return ReasonCode::MalformedPacket;
    }
    field = v;
    return ReasonCode::Success;
}

ReasonCode read_u32(Reader& r, std::optional<uint32_t>& field) {
    uint32_t v = 0;
    if (!r.u32(v)) {
        return ReasonCode::MalformedPacket;
    }
    field = v;
    return ReasonCode::Success;
}

ReasonCode read_string(Reader& r, std::optional<std::string>& field) {
    std::string_view v;
    if (!r.utf8(v)) {
        return ReasonCode::MalformedPacket;
    }
    field.emplace(v);
    return ReasonCode::Success;
}

ReasonCode read_binary(Reader& r, std::optional<std::string>& field) {
    std::string_view v;
    if (!r.binary(v)) {
        return ReasonCode::MalformedPacket;
    }
    field.emplace(v);
    return ReasonCode::Success;
}

ReasonCode read_one(Reader& r, uint8_t id, PropertyContext ctx, Properties& out) {
    switch (id) {
        case kPayloadFormatIndicator:
            return read_flag(r, out.payload_format_indicator);
        case kMessageExpiryInterval:
            return read_u32(r, out.message_expiry_interval);
        case kContentType:
            return read_string(r, out.content_type);
        case kResponseTopic: {
            ReasonCode rc = read_string(r, out.response_topic);
            // The Response Topic is a Topic Name: no wildcards [MQTT-3.3.2-14].
            if (rc == ReasonCode::Success && !valid_topic_name(*out.response_topic)) {
                return ReasonCode::ProtocolError;
            }
            return rc;
        }
        case kCorrelationData:
            return read_binary(r, out.correlation_data);
        case kSubscriptionIdentifier: {
            uint32_t v = 0;
            if (!r.varint(v, true)) {
                return ReasonCode::MalformedPacket;
            }
            // "It is a Protocol Error if the Subscription Identifier has a value of 0"
            // (3.8.2.1.2); a SUBSCRIBE carries at most one.
            if (v == 0 ||
                (ctx == PropertyContext::Subscribe && !out.subscription_identifiers.empty())) {
                return ReasonCode::ProtocolError;
            }
            out.subscription_identifiers.push_back(v);
            return ReasonCode::Success;
        }
        case kSessionExpiryInterval:
            return read_u32(r, out.session_expiry_interval);
        case kAssignedClientIdentifier:
            return read_string(r, out.assigned_client_identifier);
        case kServerKeepAlive:
            return read_u16(r, out.server_keep_alive);
        case kAuthenticationMethod:
            return read_string(r, out.authentication_method);
        case kAuthenticationData:
            return read_binary(r, out.authentication_data);
        case kRequestProblemInformation:
            return read_flag(r, out.request_problem_information);
        case kWillDelayInterval:
            return read_u32(r, out.will_delay_interval);
        case kRequestResponseInformation:
            return read_flag(r, out.request_response_information);
        case kResponseInformation:
            return read_string(r, out.response_information);
        case kServerReference:
            return read_string(r, out.server_reference);
        case kReasonString:
            return read_string(r, out.reason_string);
        case kReceiveMaximum: {
            ReasonCode rc = read_u16(r, out.receive_maximum);
            // "It is a Protocol Error ... for it to have the value 0" (3.1.2.11.3, 3.2.2.3.3).
            if (rc == ReasonCode::Success && *out.receive_maximum == 0) {
                return ReasonCode::ProtocolError;
            }
            return rc;
        }
        case kTopicAliasMaximum:
            return read_u16(r, out.topic_alias_maximum);
        case kTopicAlias: {
            ReasonCode rc = read_u16(r, out.topic_alias);
            // A Topic Alias of 0 is not permitted [MQTT-3.3.2-8].
            if (rc == ReasonCode::Success && *out.topic_alias == 0) {
                return ReasonCode::TopicAliasInvalid;
            }
            return rc;
        }
        case kMaximumQos:
            return read_flag(r, out.maximum_qos);
        case kRetainAvailable:
            return read_flag(r, out.retain_available);
        case kUserProperty: {
            std::string_view k;
            std::string_view v;
            if (!r.utf8(k) || !r.utf8(v)) {
                return ReasonCode::MalformedPacket;
            }
            out.user_properties.emplace_back(std::string(k), std::string(v));
            return ReasonCode::Success;
        }
        case kMaximumPacketSize: {
            ReasonCode rc = read_u32(r, out.maximum_packet_size);
            // "It is a Protocol Error ... for the value to be set to zero" (3.1.2.11.4).
            if (rc == ReasonCode::Success && *out.maximum_packet_size == 0) {
                return ReasonCode::ProtocolError;
            }
            return rc;
        }
        case kWildcardSubscriptionAvailable:
            return read_flag(r, out.wildcard_subscription_available);
        case kSubscriptionIdentifierAvailable:
            return read_flag(r, out.subscription_identifier_available);
        case kSharedSubscriptionAvailable:
            return read_flag(r, out.shared_subscription_available);
        default:
            return ReasonCode::MalformedPacket;
    }
}

}  // namespace

ReasonCode read_properties(Reader& r, PropertyContext ctx, Properties& out, std::string_view& raw) {
    uint32_t length = 0;
    if (!r.varint(length, true) || length > r.left()) {
        return ReasonCode::MalformedPacket;
    }
    Reader body{r.p, r.p + length};
    raw = std::string_view(reinterpret_cast<const char*>(r.p), length);
    r.p += length;

    const uint16_t ctx_bit = bit(ctx);
    uint64_t seen = 0;
    while (!body.done()) {
        // Identifiers are Variable Byte Integers; every defined one is a single byte, so a
        // continuation bit means an unknown identifier.
        uint8_t id = 0;
        if (!body.u8(id) || id > kMaxPropertyId || (kAllowed[id] & ctx_bit) == 0) {
            return ReasonCode::MalformedPacket;
        }
        const uint64_t id_bit = uint64_t{1} << id;
        if ((seen & id_bit) != 0 && id != kUserProperty && id != kSubscriptionIdentifier) {
            return ReasonCode::ProtocolError;
        }
        seen |= id_bit;
        if (ReasonCode rc = read_one(body, id, ctx, out); rc != ReasonCode::Success) {
            return rc;
        }
    }
    // "It is a Protocol Error to include Authentication Data if there is no Authentication
    // Method" (3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3).
    if (out.authentication_data && !out.authentication_method) {
        return ReasonCode::ProtocolError;
    }
    return ReasonCode::Success;
}

namespace {

// Calls f(id, kind, value) for every property present, in identifier order; shared by the size
// computation and the writer so they cannot disagree.
struct SizeSink {
    size_t n = 0;
    void byte(uint8_t, uint8_t) { n += 2; }
    void two(uint8_t, uint16_t) { n += 3; }
    void four(uint8_t, uint32_t) { n += 5; }
    void var(uint8_t, uint32_t v) { n += 1 + varint_size(v); }
    void str(uint8_t, std::string_view s) { n += 3 + s.size(); }
    void pair(uint8_t, std::string_view k, std::string_view v) { n += 5 + k.size() + v.size(); }
};

struct WriteSink {
    std::string& out;
    void byte(uint8_t id, uint8_t v) {
        out.push_back(static_cast<char>(id));
        out.push_back(static_cast<char>(v));
    }
    void two(uint8_t id, uint16_t v) {
        out.push_back(static_cast<char>(id));
        put_be16(out, v);
    }
    void four(uint8_t id, uint32_t v) {
        out.push_back(static_cast<char>(id));
        put_be32(out, v);
    }
    void var(uint8_t id, uint32_t v) {
        out.push_back(static_cast<char>(id));
        put_varint(out, v);
    }
    void str(uint8_t id, std::string_view s) {
        out.push_back(static_cast<char>(id));
        put_string(out, s);
    }
    void pair(uint8_t id, std::string_view k, std::string_view v) {
        out.push_back(static_cast<char>(id));
        put_string(out, k);
        put_string(out, v);
    }
};

template <typename Sink>
void visit(const Properties& p, Sink& s) {
    if (p.payload_format_indicator) {
        s.byte(kPayloadFormatIndicator, *p.payload_format_indicator);
    }
    if (p.message_expiry_interval) {
        s.four(kMessageExpiryInterval, *p.message_expiry_interval);
    }
    if (p.content_type) {
        s.str(kContentType, *p.content_type);
    }
    if (p.response_topic) {
        s.str(kResponseTopic, *p.response_topic);
    }
    if (p.correlation_data) {
        s.str(kCorrelationData, *p.correlation_data);
    }
    for (uint32_t id : p.subscription_identifiers) {
        s.var(kSubscriptionIdentifier, id);
    }
    if (p.session_expiry_interval) {
        s.four(kSessionExpiryInterval, *p.session_expiry_interval);
    }
    if (p.assigned_client_identifier) {
        s.str(kAssignedClientIdentifier, *p.assigned_client_identifier);
    }
    if (p.server_keep_alive) {
        s.two(kServerKeepAlive, *p.server_keep_alive);
    }
    if (p.authentication_method) {
        s.str(kAuthenticationMethod, *p.authentication_method);
    }
    if (p.authentication_data) {
        s.str(kAuthenticationData, *p.authentication_data);
    }
    if (p.request_problem_information) {
        s.byte(kRequestProblemInformation, *p.request_problem_information);
    }
    if (p.will_delay_interval) {
        s.four(kWillDelayInterval, *p.will_delay_interval);
    }
    if (p.request_response_information) {
        s.byte(kRequestResponseInformation, *p.request_response_information);
    }
    if (p.response_information) {
        s.str(kResponseInformation, *p.response_information);
    }
    if (p.server_reference) {
        s.str(kServerReference, *p.server_reference);
    }
    if (p.reason_string) {
        s.str(kReasonString, *p.reason_string);
    }
    if (p.receive_maximum) {
        s.two(kReceiveMaximum, *p.receive_maximum);
    }
    if (p.topic_alias_maximum) {
        s.two(kTopicAliasMaximum, *p.topic_alias_maximum);
    }
    if (p.topic_alias) {
        s.two(kTopicAlias, *p.topic_alias);
    }
    if (p.maximum_qos) {
        s.byte(kMaximumQos, *p.maximum_qos);
    }
    if (p.retain_available) {
        s.byte(kRetainAvailable, *p.retain_available);
    }
    for (const auto& [k, v] : p.user_properties) {
        s.pair(kUserProperty, k, v);
    }
    if (p.maximum_packet_size) {
        s.four(kMaximumPacketSize, *p.maximum_packet_size);
    }
    if (p.wildcard_subscription_available) {
        s.byte(kWildcardSubscriptionAvailable, *p.wildcard_subscription_available);
    }
    if (p.subscription_identifier_available) {
        s.byte(kSubscriptionIdentifierAvailable, *p.subscription_identifier_available);
    }
    if (p.shared_subscription_available) {
        s.byte(kSharedSubscriptionAvailable, *p.shared_subscription_available);
    }
}

}  // namespace

size_t properties_body_size(const Properties& p) {
    SizeSink s;
    visit(p, s);
    return s.n;
}

void put_properties_body(std::string& out, const Properties& p) {
    WriteSink s{out};
    visit(p, s);
}

}  // namespace detail
}  // namespace mqttd::mqtt
