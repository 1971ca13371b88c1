// Incremental MQTT decoder (see decoder.h for the contract).
//
// feed() is stateless between calls apart from the protocol version: it re-reads the fixed
// header from the start of the bytes it is given (at most 5 bytes, so re-reading is cheaper
// than keeping a partial-header state machine), and only parses the body once the whole packet
// is present. Checks happen in this order, so a bad peer is refused as early as possible:
//   1. first byte: packet type, direction (Side), CONNECT-first, fixed-header flags;
//   2. remaining length: at most 4 bytes, whole packet <= max_packet_size, and the size the
//      packet type allows (e.g. PINGREQ is 0, a 3.x PUBACK is 2) — before waiting for the body;
//   3. body: every field read is bounds-checked by detail::Reader; a packet must be used up
//      exactly (trailing bytes are malformed).
// Reason codes: MalformedPacket for what cannot be parsed or breaks a "MUST be malformed" rule,
// ProtocolError for a well-formed packet the standard forbids here, UnsupportedProtocolVersion
// for a CONNECT of an unknown protocol level, PacketTooLarge for the size limit,
// TopicNameInvalid / TopicFilterInvalid / TopicAliasInvalid for topic syntax.
#include "mqtt/decoder.h"

#include <initializer_list>

#include "mqtt/wire.h"

namespace mqttd::mqtt {

namespace {

using detail::PropertyContext;
using detail::Reader;

bool one_of(uint8_t v, std::initializer_list<uint8_t> allowed) {
    for (uint8_t a : allowed) {
        if (a == v) {
            return true;
        }
    }
    return false;
}

// Packet types each side may receive (3.1.1 / 5.0 section 2.2.1, "Direction of flow").
bool direction_ok(Side side, uint8_t type) {
    constexpr uint16_t kToServer = (1u << 1) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |
                                   (1u << 7) | (1u << 8) | (1u << 10) | (1u << 12) | (1u << 14) |
                                   (1u << 15);
    constexpr uint16_t kToClient = (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |
                                   (1u << 7) | (1u << 9) | (1u << 11) | (1u << 13) | (1u << 14) |
                                   (1u << 15);
    return ((side == Side::Server ? kToServer : kToClient) >> type) & 1u;
}

// A UTF-8 topic name field of PUBLISH or the Will. `allow_empty`: MQTT 5 allows a zero-length
// name when a Topic Alias is given (checked by the caller).
ReasonCode check_topic_name(std::string_view t, bool allow_empty) {
    if (!valid_utf8(t)) {
        return ReasonCode::MalformedPacket;
    }
    if (t.empty() && allow_empty) {
        return ReasonCode::Success;
    }
    return valid_topic_name(t) ? ReasonCode::Success : ReasonCode::TopicNameInvalid;
}

ReasonCode check_topic_filter(std::string_view f, Version v) {
    if (!valid_utf8(f)) {
        return ReasonCode::MalformedPacket;
    }
    if (!valid_topic_filter(f)) {
        return ReasonCode::TopicFilterInvalid;
    }
    // MQTT 5 shared subscriptions: "$share/" ShareName "/" filter, the ShareName non-empty and
    // without '/', '+' or '#' [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    constexpr std::string_view kShare = "$share/";
    if (v == Version::V5 && f.starts_with(kShare)) {
        const std::string_view rest = f.substr(kShare.size());
        const size_t slash = rest.find('/');
        if (slash == 0 || slash == std::string_view::npos || slash + 1 == rest.size() ||
            rest.substr(0, slash).find_first_of("+#") != std::string_view::npos) {
            return ReasonCode::TopicFilterInvalid;
        }
    }
    return ReasonCode::Success;
}

ReasonCode parse_connect(Reader& r, Connect& c) {
    std::string_view name;
    uint8_t level = 0;
    if (!r.binary(name) || !r.u8(level)) {
        return ReasonCode::MalformedPacket;
    }
    // [MQTT-3.1.2-1]: the protocol name is "MQTT" (3.1.1 and 5.0) or "MQIsdp" (3.1). A known
    // name with an unknown level gets CONNACK 0x01 / 0x84 [MQTT-3.1.2-2]; anything else is not
    // MQTT and is simply malformed.
    if (name == "MQTT") {
        if (level == 4) {
            c.version = Version::V311;
        } else if (level == 5) {
            c.version = Version::V5;
        } else {
            return ReasonCode::UnsupportedProtocolVersion;
        }
    } else if (name == "MQIsdp") {
        if (level != 3) {
            return ReasonCode::UnsupportedProtocolVersion;
        }
        c.version = Version::V31;
    } else {
        return ReasonCode::MalformedPacket;
    }
    const bool v5 = c.version == Version::V5;

    uint8_t flags = 0;
    if (!r.u8(flags) || !r.u16(c.keepalive)) {
        return ReasonCode::MalformedPacket;
    }
    // The reserved flag MUST be 0 [MQTT-3.1.2-3].
    if ((flags & 0x01) != 0) {
        return ReasonCode::MalformedPacket;
    }
    c.clean_start = (flags & 0x02) != 0;
    const bool will = (flags & 0x04) != 0;
    const auto will_qos = static_cast<uint8_t>((flags >> 3) & 0x03);
    const bool will_retain = (flags & 0x20) != 0;
    const bool password = (flags & 0x40) != 0;
    const bool username = (flags & 0x80) != 0;
    // Will QoS MUST NOT be 3 [MQTT-3.1.2-14] (5.0: [MQTT-3.1.2-12]); without the Will Flag,
    // Will QoS and Will Retain MUST be 0 [MQTT-3.1.2-13], [MQTT-3.1.2-15] (5.0: [MQTT-3.1.2-11],
    // [MQTT-3.1.2-13]).
    if (will_qos == 3 || (!will && (will_qos != 0 || will_retain))) {
        return ReasonCode::MalformedPacket;
    }
    // 3.1.1: no Password Flag without the User Name Flag [MQTT-3.1.2-22]. MQTT 5 allows it, and
    // 3.1 clients are known to send it, so only 3.1.1 refuses it.
    if (c.version == Version::V311 && password && !username) {
        return ReasonCode::MalformedPacket;
    }

    if (v5) {
        std::string_view raw;
        if (ReasonCode rc = detail::read_properties(r, PropertyContext::Connect, c.properties, raw);
            rc != ReasonCode::Success) {
            return rc;
        }
    }
    // The Client Identifier is a UTF-8 string [MQTT-3.1.3-4]; its length and characters are the
    // broker's business ([MQTT-3.1.3-5] allows servers to accept more).
    std::string_view client_id;
    if (!r.utf8(client_id)) {
        return ReasonCode::MalformedPacket;
    }
    c.client_id.assign(client_id);

    if (will) {
        Will& w = c.will.emplace();
        w.qos = will_qos;
        w.retain = will_retain;
        if (v5) {
            std::string_view raw;
            if (ReasonCode rc =
                        detail::read_properties(r, PropertyContext::Will, w.properties, raw);
                rc != ReasonCode::Success) {
                return rc;
            }
        }
        std::string_view topic;
        std::string_view payload;
        if (!r.binary(topic) || !r.binary(payload)) {
            return ReasonCode::MalformedPacket;
        }
        // The Will Topic is a UTF-8 Encoded String [MQTT-3.1.3-10] and a Topic Name.
        if (ReasonCode rc = check_topic_name(topic, false); rc != ReasonCode::Success) {
            return rc;
        }
        w.topic.assign(topic);
        w.payload.assign(payload);
    }
    if (username) {
        // The User Name is a UTF-8 Encoded String [MQTT-3.1.3-11].
        std::string_view u;
        if (!r.utf8(u)) {
            return ReasonCode::MalformedPacket;
        }
        c.username.emplace(u);
    }
    if (password) {
        std::string_view p;
        if (c.version == Version::V31 && r.done()) {
            // 3.1 clients set the flag without a password; treat it as absent.
        } else if (!r.binary(p)) {
            return ReasonCode::MalformedPacket;
        } else {
            c.password.emplace(p);
        }
    }
    return r.done() ? ReasonCode::Success : ReasonCode::MalformedPacket;
}

ReasonCode parse_connack(Reader& r, Version v, Connack& c) {
    uint8_t flags = 0;
    uint8_t code = 0;
    if (!r.u8(flags) || !r.u8(code)) {
        return ReasonCode::MalformedPacket;
    }
    // Bits 7-1 of the Connect Acknowledge Flags are reserved and MUST be 0 [MQTT-3.2.2-1]
    // (3.1 had no flags; its byte is unused).
    if (v != Version::V31 && (flags & 0xFE) != 0) {
        return ReasonCode::MalformedPacket;
    }
    c.session_present = v != Version::V31 && (flags & 0x01) != 0;
    if (v != Version::V5) {
        // 3.1.1 section 3.2.2.3: return codes 0..5.
        static constexpr ReasonCode kV3[] = {
                ReasonCode::Success,
                ReasonCode::UnsupportedProtocolVersion,
                ReasonCode::ClientIdentifierNotValid,
                ReasonCode::ServerUnavailable,
                ReasonCode::BadUserNameOrPassword,
                ReasonCode::NotAuthorized,
        };
        if (code > 5) {
            return ReasonCode::MalformedPacket;
        }
        c.reason = kV3[code];
        return r.done() ? ReasonCode::Success : ReasonCode::MalformedPacket;
    }
    // 5.0 section 3.2.2.2.
    if (!one_of(code, {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                       0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F})) {
        return ReasonCode::MalformedPacket;
    }
    // "If a Server sends a CONNACK packet containing a non-zero Reason Code it MUST set Session
    // Present to 0" [MQTT-3.2.2-6].
    if (code != 0 && c.session_present) {
        return ReasonCode::ProtocolError;
    }
    c.reason = static_cast<ReasonCode>(code);
    std::string_view raw;
    if (ReasonCode rc = detail::read_properties(r, PropertyContext::Connack, c.properties, raw);
        rc != ReasonCode::Success) {
        return rc;
    }
    return r.done() ? ReasonCode::Success : ReasonCode::MalformedPacket;
}

ReasonCode parse_publish(Reader& r, uint8_t flags, Side side, Version v, Publish& p) {
    p.dup = (flags & 0x08) != 0;
    p.qos = static_cast<uint8_t>((flags >> 1) & 0x03);
    p.retain = (flags & 0x01) != 0;
    if (!r.binary(p.topic)) {
        return ReasonCode::MalformedPacket;
    }
    if (p.qos > 0) {
        // A PUBLISH with QoS > 0 MUST contain a non-zero Packet Identifier [MQTT-2.3.1-1]
        // (5.0: [MQTT-2.2.1-3]).
        if (!r.u16(p.packet_id)) {
            return ReasonCode::MalformedPacket;
        }
        if (p.packet_id == 0) {
            return ReasonCode::ProtocolError;
        }
    }
    if (v == Version::V5) {
        if (ReasonCode rc = detail::read_properties(r, PropertyContext::Publish, p.properties,
                                                    p.raw_properties);
            rc != ReasonCode::Success) {
            return rc;
        }
        // A PUBLISH from a Client MUST NOT contain a Subscription Identifier [MQTT-3.3.4-6].
        if (side == Side::Server && !p.properties.subscription_identifiers.empty()) {
            return ReasonCode::ProtocolError;
        }
        // A zero-length Topic Name needs a Topic Alias (3.3.2.1).
        if (p.topic.empty() && !p.properties.topic_alias) {
            return ReasonCode::ProtocolError;
        }
    }
    if (ReasonCode rc = check_topic_name(p.topic, v == Version::V5); rc != ReasonCode::Success) {
        return rc;
    }
    p.payload = std::string_view(reinterpret_cast<const char*>(r.p), r.left());
    r.p = r.end;
    return ReasonCode::Success;
}

ReasonCode parse_ack(Reader& r, PacketType type, Version v, Ack& a) {
    a.type = type;
    if (!r.u16(a.packet_id)) {
        return ReasonCode::MalformedPacket;
    }
    // Packet Identifiers are non-zero [MQTT-2.3.1-1]; a reply for 0 answers nothing we sent.
    if (a.packet_id == 0) {
        return ReasonCode::ProtocolError;
    }
    if (v == Version::V5 && !r.done()) {
        // The Reason Code and the Property Length may be omitted (3.4.2.1, 3.4.2.2.1): a
        // Remaining Length of 2 means Success, of 3 means no properties.
        uint8_t code = 0;
        (void)r.u8(code);
        const bool puback_like = type == PacketType::Puback || type == PacketType::Pubrec;
        const bool ok =
                puback_like ? one_of(code, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})
                            : one_of(code, {0x00, 0x92});
        if (!ok) {
            return ReasonCode::MalformedPacket;
        }
        a.reason = static_cast<ReasonCode>(code);
        if (!r.done()) {
            std::string_view raw;
            if (ReasonCode rc =
                        detail::read_properties(r, PropertyContext::PubAck, a.properties, raw);
                rc != ReasonCode::Success) {
                return rc;
            }
        }
    }
    return r.done() ? ReasonCode::Success : ReasonCode::MalformedPacket;
}

ReasonCode parse_subscribe(Reader& r, Version v, Subscribe& s) {
    // SUBSCRIBE MUST contain a non-zero Packet Identifier [MQTT-2.3.1-1].
    if (!r.u16(s.packet_id)) {
        return ReasonCode::MalformedPacket;
    }
    if (s.packet_id == 0) {
        return ReasonCode::ProtocolError;
    }
    if (v == Version::V5) {
        std::string_view raw;
        if (ReasonCode rc =
                    detail::read_properties(r, PropertyContext::Subscribe, s.properties, raw);
            rc != ReasonCode::Success) {
            return rc;
        }
    }
    while (!r.done()) {
        std::string_view filter;
        uint8_t opts = 0;
        if (!r.binary(filter) || !r.u8(opts)) {
            return ReasonCode::MalformedPacket;
        }
        // A well-formed string that is not a valid filter is answered per filter in the
        // SUBACK (0x80, or 0x8F on MQTT 5) by the broker, not by closing the connection.
        if (ReasonCode rc = check_topic_filter(filter, v);
            rc != ReasonCode::Success && rc != ReasonCode::TopicFilterInvalid) {
            return rc;
        }
        SubscribeOptions o;
        o.qos = opts & 0x03;
        if (v != Version::V5) {
            // Reserved bits non-zero or QoS not 0, 1 or 2: malformed [MQTT-3.8.3-4].
            if ((opts & 0xFC) != 0 || o.qos == 3) {
                return ReasonCode::MalformedPacket;
            }
        } else {
            o.no_local = (opts & 0x04) != 0;
            o.retain_as_published = (opts & 0x08) != 0;
            o.retain_handling = static_cast<uint8_t>((opts >> 4) & 0x03);
            // Reserved bits 6 and 7 non-zero: malformed [MQTT-3.8.3-5].
            if ((opts & 0xC0) != 0) {
                return ReasonCode::MalformedPacket;
            }
            // Maximum QoS 3 and Retain Handling 3 are Protocol Errors (3.8.3.1); so is No Local
            // on a Shared Subscription [MQTT-3.8.3-4].
            if (o.qos == 3 || o.retain_handling == 3 ||
                (o.no_local && filter.starts_with("$share/"))) {
                return ReasonCode::ProtocolError;
            }
        }
        s.topics.emplace_back(std::string(filter), o);
    }
    // At least one Topic Filter [MQTT-3.8.3-3] (5.0: [MQTT-3.8.3-2]).
    return s.topics.empty() ? ReasonCode::ProtocolError : ReasonCode::Success;
}

ReasonCode parse_suback(Reader& r, Version v, Suback& s) {
    if (!r.u16(s.packet_id)) {
        return ReasonCode::MalformedPacket;
    }
    if (v == Version::V5) {
        std::string_view raw;
        if (ReasonCode rc = detail::read_properties(r, PropertyContext::Suback, s.properties, raw);
            rc != ReasonCode::Success) {
            return rc;
        }
    }
    while (!r.done()) {
        uint8_t code = 0;
        (void)r.u8(code);
        // 3.1.1 section 3.9.3: 0x00, 0x01, 0x02, 0x80 [MQTT-3.9.3-2]; 5.0 section 3.9.3.
        const bool ok = v == Version::V5 ? one_of(code, {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F,
                                                         0x91, 0x97, 0x9E, 0xA1, 0xA2})
                                         : one_of(code, {0x00, 0x01, 0x02, 0x80});
        if (!ok) {
            return ReasonCode::MalformedPacket;
        }
        s.reasons.push_back(static_cast<ReasonCode>(code));
    }
    return s.reasons.empty() ? ReasonCode::ProtocolError : ReasonCode::Success;
}

ReasonCode parse_unsubscribe(Reader& r, Version v, Unsubscribe& u) {
    if (!r.u16(u.packet_id)) {
        return ReasonCode::MalformedPacket;
    }
    if (u.packet_id == 0) {
        return ReasonCode::ProtocolError;
    }
    if (v == Version::V5) {
        std::string_view raw;
        if (ReasonCode rc =
                    detail::read_properties(r, PropertyContext::Unsubscribe, u.properties, raw);
            rc != ReasonCode::Success) {
            return rc;
        }
    }
    while (!r.done()) {
        std::string_view filter;
        // Topic Filters are UTF-8 Encoded Strings [MQTT-3.10.3-1].
        if (!r.binary(filter)) {
            return ReasonCode::MalformedPacket;
        }
        // An invalid filter cannot be subscribed, so unsubscribing it is a no-op for the
        // broker (MQTT 5: reason 0x11 or 0x8F in the UNSUBACK).
        if (ReasonCode rc = check_topic_filter(filter, v);
            rc != ReasonCode::Success && rc != ReasonCode::TopicFilterInvalid) {
            return rc;
        }
        u.topics.emplace_back(filter);
    }
    // At least one Topic Filter [MQTT-3.10.3-2].
    return u.topics.empty() ? ReasonCode::ProtocolError : ReasonCode::Success;
}

ReasonCode parse_unsuback(Reader& r, Version v, Unsuback& u) {
    if (!r.u16(u.packet_id)) {
        return ReasonCode::MalformedPacket;
    }
    if (v != Version::V5) {
        return r.done() ? ReasonCode::Success : ReasonCode::MalformedPacket;
    }
    std::string_view raw;
    if (ReasonCode rc = detail::read_properties(r, PropertyContext::Unsuback, u.properties, raw);
        rc != ReasonCode::Success) {
        return rc;
    }
    while (!r.done()) {
        uint8_t code = 0;
        (void)r.u8(code);
        if (!one_of(code, {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})) {
            return ReasonCode::MalformedPacket;
        }
        u.reasons.push_back(static_cast<ReasonCode>(code));
    }
    return u.reasons.empty() ? ReasonCode::ProtocolError : ReasonCode::Success;
}

// MQTT 5 DISCONNECT and AUTH: a Remaining Length of 0 means Success without properties, 1 a
// reason code alone (3.14.2.1, 3.15.2.1).
ReasonCode parse_reason_and_properties(Reader& r,
                                       PropertyContext ctx,
                                       std::initializer_list<uint8_t> allowed,
                                       ReasonCode& reason,
                                       Properties& props) {
    if (r.done()) {
        reason = ReasonCode::Success;
        return ReasonCode::Success;
    }
    uint8_t code = 0;
    (void)r.u8(code);
    if (!one_of(code, allowed)) {
        return ReasonCode::MalformedPacket;
    }
    reason = static_cast<ReasonCode>(code);
    if (!r.done()) {
        std::string_view raw;
        if (ReasonCode rc = detail::read_properties(r, ctx, props, raw);
            rc != ReasonCode::Success) {
            return rc;
        }
    }
    return r.done() ? ReasonCode::Success : ReasonCode::MalformedPacket;
}

// PUBLISH and the acks are the hot packets: when `out` already holds one (a connection reuses
// its Packet), it is reset field by field instead of re-constructing the large Properties.
Publish& reuse_publish(Packet& out) {
    auto* p = std::get_if<Publish>(&out);
    if (p == nullptr) {
        return out.emplace<Publish>();
    }
    p->dup = false;
    p->qos = 0;
    p->retain = false;
    p->topic = {};
    p->packet_id = 0;
    p->payload = {};
    p->raw_properties = {};
    if (!p->properties.empty()) {
        p->properties = Properties{};
    }
    return *p;
}

Ack& reuse_ack(Packet& out) {
    auto* a = std::get_if<Ack>(&out);
    if (a == nullptr) {
        return out.emplace<Ack>();
    }
    a->packet_id = 0;
    a->reason = ReasonCode::Success;
    if (!a->properties.empty()) {
        a->properties = Properties{};
    }
    return *a;
}

}  // namespace

Decoder::Decoder(Side side, DecoderLimits limits) : side_(side), limits_(limits) {}

Decoder::Result Decoder::feed(std::span<const uint8_t> bytes, Packet& out) {
    auto fail = [this](ReasonCode rc) {
        expected_ = 0;
        return Result{Status::Error, 0, rc};
    };
    if (bytes.empty()) {
        return Result{};
    }

    // 1. The first byte.
    const uint8_t type = bytes[0] >> 4;
    const uint8_t flags = bytes[0] & 0x0F;
    const bool v5 = version_ == Version::V5;
    if (type == 0) {
        return fail(ReasonCode::MalformedPacket);  // reserved type
    }
    if (side_ == Side::Server) {
        // The first packet from a Client MUST be CONNECT [MQTT-3.1.0-1]; a second CONNECT is a
        // Protocol Error [MQTT-3.1.0-2].
        if (version_known_ != (type != static_cast<uint8_t>(PacketType::Connect))) {
            return fail(ReasonCode::ProtocolError);
        }
    }
    if (type == static_cast<uint8_t>(PacketType::Auth) && !v5) {
        return fail(ReasonCode::MalformedPacket);  // type 15 is reserved before MQTT 5
    }
    if (!direction_ok(side_, type)) {
        return fail(ReasonCode::ProtocolError);
    }
    const auto ptype = static_cast<PacketType>(type);
    if (ptype == PacketType::Publish) {
        // QoS 3 is malformed [MQTT-3.3.1-4]; DUP MUST be 0 with QoS 0 [MQTT-3.3.1-2] (not a
        // rule in 3.1).
        const auto qos = (flags >> 1) & 0x03;
        if (qos == 3) {
            return fail(ReasonCode::MalformedPacket);
        }
        if (qos == 0 && (flags & 0x08) != 0 && version_ != Version::V31) {
            return fail(ReasonCode::ProtocolError);
        }
    } else if (ptype == PacketType::Pubrel || ptype == PacketType::Subscribe ||
               ptype == PacketType::Unsubscribe) {
        // Flags MUST be 0010 [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]; 3.1 used QoS 1 in
        // the same bits and allowed DUP on a resend.
        const uint8_t f = version_ == Version::V31 ? (flags & 0x07) : flags;
        if (f != 0x02) {
            return fail(ReasonCode::MalformedPacket);
        }
    } else if (flags != 0) {
        // Reserved flags MUST be as listed; otherwise the receiver closes [MQTT-2.2.2-1],
        // [MQTT-2.2.2-2].
        return fail(ReasonCode::MalformedPacket);
    }

    // 2. The remaining length.
    const detail::VarintRead len = detail::read_varint(bytes.data() + 1, bytes.size() - 1);
    if (len.status == detail::VarintStatus::NeedMore) {
        return Result{};
    }
    if (len.status == detail::VarintStatus::Malformed) {
        return fail(ReasonCode::MalformedPacket);
    }
    const size_t header = 1 + size_t{len.length};
    const size_t total = header + len.value;
    if (total > limits_.max_packet_size) {
        return fail(ReasonCode::PacketTooLarge);
    }
    // MQTT 5 Variable Byte Integers use the fewest bytes [MQTT-1.5.5-1] (CONNECT is checked once
    // its level is known).
    if (v5 && ptype != PacketType::Connect && !len.minimal) {
        return fail(ReasonCode::MalformedPacket);
    }
    const uint32_t rl = len.value;
    bool size_ok = true;
    switch (ptype) {
        case PacketType::Pingreq:
        case PacketType::Pingresp:
            size_ok = rl == 0;
            break;
        case PacketType::Disconnect:
            size_ok = v5 || rl == 0;
            break;
        case PacketType::Puback:
        case PacketType::Pubrec:
        case PacketType::Pubrel:
        case PacketType::Pubcomp:
            size_ok = v5 ? rl >= 2 : rl == 2;
            break;
        case PacketType::Unsuback:
            size_ok = v5 ? rl >= 3 : rl == 2;
            break;
        case PacketType::Connack:
            size_ok = v5 ? rl >= 3 : rl == 2;
            break;
        case PacketType::Publish:
            size_ok = rl >= 2;
            break;
        case PacketType::Subscribe:
        case PacketType::Unsubscribe:
            // A SUBSCRIBE / UNSUBSCRIBE without payload is a Protocol Error, reported by the body.
            size_ok = rl >= 2;
            break;
        case PacketType::Suback:
            size_ok = rl >= 3;
            break;
        case PacketType::Connect:
            size_ok = rl >= 10;
            break;
        case PacketType::Auth:
            break;
    }
    if (!size_ok) {
        return fail(ReasonCode::MalformedPacket);
    }
    expected_ = total;
    if (bytes.size() < total) {
        return Result{};
    }

    // 3. The body.
    Reader r{bytes.data() + header, bytes.data() + total};
    ReasonCode rc = ReasonCode::Success;
    switch (ptype) {
        case PacketType::Connect: {
            Connect& c = out.emplace<Connect>();
            rc = parse_connect(r, c);
            if (rc == ReasonCode::Success && c.version == Version::V5 && !len.minimal) {
                rc = ReasonCode::MalformedPacket;
            }
            if (rc == ReasonCode::Success) {
                version_ = c.version;
                version_known_ = true;
            }
            break;
        }
        case PacketType::Connack:
            rc = parse_connack(r, version_, out.emplace<Connack>());
            break;
        case PacketType::Publish:
            rc = parse_publish(r, flags, side_, version_, reuse_publish(out));
            break;
        case PacketType::Puback:
        case PacketType::Pubrec:
        case PacketType::Pubrel:
        case PacketType::Pubcomp:
            rc = parse_ack(r, ptype, version_, reuse_ack(out));
            break;
        case PacketType::Subscribe:
            rc = parse_subscribe(r, version_, out.emplace<Subscribe>());
            break;
        case PacketType::Suback:
            rc = parse_suback(r, version_, out.emplace<Suback>());
            break;
        case PacketType::Unsubscribe:
            rc = parse_unsubscribe(r, version_, out.emplace<Unsubscribe>());
            break;
        case PacketType::Unsuback:
            rc = parse_unsuback(r, version_, out.emplace<Unsuback>());
            break;
        case PacketType::Pingreq:
            out.emplace<Pingreq>();
            break;
        case PacketType::Pingresp:
            out.emplace<Pingresp>();
            break;
        case PacketType::Disconnect: {
            Disconnect& d = out.emplace<Disconnect>();
            if (v5) {
                // 5.0 section 3.14.2.1.
                rc = parse_reason_and_properties(
                        r, PropertyContext::Disconnect,
                        {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                         0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                         0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2},
                        d.reason, d.properties);
            }
            break;
        }
        case PacketType::Auth: {
            Auth& a = out.emplace<Auth>();
            // 5.0 section 3.15.2.1.
            rc = parse_reason_and_properties(r, PropertyContext::Auth, {0x00, 0x18, 0x19}, a.reason,
                                             a.properties);
            break;
        }
    }
    if (rc != ReasonCode::Success) {
        return fail(rc);
    }
    expected_ = 0;
    return Result{Status::Packet, total, ReasonCode::Success};
}

bool valid_subscription_filter(std::string_view filter, Version v) {
    return check_topic_filter(filter, v) == ReasonCode::Success;
}

}  // namespace mqttd::mqtt
