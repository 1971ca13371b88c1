#include "mqtt5.h"

#include <gtest/gtest.h>

namespace mqttd::itest::v5 {

namespace {

enum class Kind { Byte, U16, U32, Varint, String, Pair, Unknown };

Kind kind_of(uint8_t id) {
    switch (id) {
        case 0x01:
        case 0x17:
        case 0x19:
        case 0x24:
        case 0x25:
        case 0x28:
        case 0x29:
        case 0x2A:
            return Kind::Byte;
        case 0x13:
        case 0x21:
        case 0x22:
        case 0x23:
            return Kind::U16;
        case 0x02:
        case 0x11:
        case 0x18:
        case 0x27:
            return Kind::U32;
        case 0x0B:
            return Kind::Varint;
        case 0x03:
        case 0x08:
        case 0x09:
        case 0x12:
        case 0x15:
        case 0x16:
        case 0x1A:
        case 0x1C:
        case 0x1F:
            return Kind::String;
        case 0x26:
            return Kind::Pair;
        default:
            return Kind::Unknown;
    }
}

// A bounds-checked reader over a packet body; a short read sets `ok` false.
struct Cursor {
    const Bytes& b;
    size_t pos = 0;
    bool ok = true;

    bool need(size_t n) {
        if (!ok || b.size() - pos < n) {
            ok = false;
        }
        return ok;
    }
    uint8_t u8() { return need(1) ? b[pos++] : 0; }
    uint16_t u16() {
        if (!need(2)) {
            return 0;
        }
        uint16_t v = static_cast<uint16_t>(b[pos] << 8 | b[pos + 1]);
        pos += 2;
        return v;
    }
    uint32_t u32() {
        uint32_t hi = u16();
        return hi << 16 | u16();
    }
    uint32_t varint() {
        uint32_t v = 0;
        for (int shift = 0; shift < 28; shift += 7) {
            uint8_t byte = u8();
            v |= static_cast<uint32_t>(byte & 0x7F) << shift;
            if ((byte & 0x80) == 0) {
                return v;
            }
        }
        ok = false;
        return 0;
    }
    std::string str() {
        uint16_t n = u16();
        if (!need(n)) {
            return {};
        }
        std::string s(b.begin() + static_cast<ptrdiff_t>(pos),
                      b.begin() + static_cast<ptrdiff_t>(pos + n));
        pos += n;
        return s;
    }
    std::string rest() {
        std::string s(b.begin() + static_cast<ptrdiff_t>(pos), b.end());
        pos = b.size();
        return s;
    }
};

Received read_props(Cursor& c) {
    Received r;
    uint32_t len = c.varint();
    if (!c.need(len)) {
        return r;
    }
    size_t end = c.pos + len;
    while (c.ok && c.pos < end) {
        uint8_t id = c.u8();
        switch (kind_of(id)) {
            case Kind::Byte:
                r.ints[id].push_back(c.u8());
                break;
            case Kind::U16:
                r.ints[id].push_back(c.u16());
                break;
            case Kind::U32:
                r.ints[id].push_back(c.u32());
                break;
            case Kind::Varint:
                r.ints[id].push_back(c.varint());
                break;
            case Kind::String:
                r.strings[id].push_back(c.str());
                break;
            case Kind::Pair: {
                std::string k = c.str();
                std::string v = c.str();
                r.user.emplace_back(std::move(k), std::move(v));
                break;
            }
            case Kind::Unknown:
                ADD_FAILURE() << "unknown property 0x" << std::hex << int{id};
                c.ok = false;
                break;
        }
    }
    if (c.pos != end) {
        c.ok = false;
    }
    return r;
}

void put_u32(Bytes& out, uint32_t v) {
    pkt::put_u16(out, static_cast<uint16_t>(v >> 16));
    pkt::put_u16(out, static_cast<uint16_t>(v & 0xFFFF));
}

}  // namespace

void put_varint(Bytes& out, uint32_t v) {
    do {
        uint8_t byte = v & 0x7F;
        v >>= 7;
        if (v != 0) {
            byte |= 0x80;
        }
        out.push_back(byte);
    } while (v != 0);
}

Props& Props::u8(Prop id, uint8_t v) {
    body_.push_back(id);
    body_.push_back(v);
    return *this;
}

Props& Props::u16(Prop id, uint16_t v) {
    body_.push_back(id);
    pkt::put_u16(body_, v);
    return *this;
}

Props& Props::u32(Prop id, uint32_t v) {
    body_.push_back(id);
    put_u32(body_, v);
    return *this;
}

Props& Props::varint(Prop id, uint32_t v) {
    body_.push_back(id);
    put_varint(body_, v);
    return *this;
}

Props& Props::str(Prop id, std::string_view s) {
    body_.push_back(id);
    pkt::put_str(body_, s);
    return *this;
}

Props& Props::pair(Prop id, std::string_view k, std::string_view v) {
    body_.push_back(id);
    pkt::put_str(body_, k);
    pkt::put_str(body_, v);
    return *this;
}

Bytes Props::bytes() const {
    Bytes out;
    put_varint(out, static_cast<uint32_t>(body_.size()));
    out.insert(out.end(), body_.begin(), body_.end());
    return out;
}

std::optional<uint32_t> Received::num(Prop id) const {
    auto it = ints.find(id);
    if (it == ints.end() || it->second.empty()) {
        return std::nullopt;
    }
    return it->second.front();
}

std::optional<std::string> Received::text(Prop id) const {
    auto it = strings.find(id);
    if (it == strings.end() || it->second.empty()) {
        return std::nullopt;
    }
    return it->second.front();
}

std::vector<uint32_t> Received::all(Prop id) const {
    auto it = ints.find(id);
    return it == ints.end() ? std::vector<uint32_t>{} : it->second;
}

Bytes connect(const ConnectSpec& c) {
    Bytes body;
    pkt::put_str(body, "MQTT");
    body.push_back(5);
    uint8_t flags = c.clean_start ? 0x02 : 0;
    if (c.will) {
        flags |= static_cast<uint8_t>(0x04 | c.will->qos << 3 | (c.will->retain ? 0x20 : 0));
    }
    if (c.password) {
        flags |= 0x40;
    }
    if (c.username) {
        flags |= 0x80;
    }
    body.push_back(flags);
    pkt::put_u16(body, c.keepalive);
    Bytes props = c.props.bytes();
    body.insert(body.end(), props.begin(), props.end());
    pkt::put_str(body, c.client_id);
    if (c.will) {
        Bytes wp = c.will->props.bytes();
        body.insert(body.end(), wp.begin(), wp.end());
        pkt::put_str(body, c.will->topic);
        pkt::put_str(body, c.will->payload);
    }
    if (c.username) {
        pkt::put_str(body, *c.username);
    }
    if (c.password) {
        pkt::put_str(body, *c.password);
    }
    return pkt::frame(0x10, body);
}

Bytes publish(std::string_view topic,
              std::string_view payload,
              uint8_t qos,
              uint16_t packet_id,
              bool retain,
              const Props& props,
              bool dup) {
    Bytes body;
    pkt::put_str(body, topic);
    if (qos > 0) {
        pkt::put_u16(body, packet_id);
    }
    Bytes p = props.bytes();
    body.insert(body.end(), p.begin(), p.end());
    body.insert(body.end(), payload.begin(), payload.end());
    auto header = static_cast<uint8_t>(0x30 | qos << 1 | (retain ? 1 : 0) | (dup ? 8 : 0));
    return pkt::frame(header, body);
}

Bytes subscribe(uint16_t packet_id,
                const std::vector<std::pair<std::string, uint8_t>>& filters,
                const Props& props) {
    Bytes body;
    pkt::put_u16(body, packet_id);
    Bytes p = props.bytes();
    body.insert(body.end(), p.begin(), p.end());
    for (const auto& [f, options] : filters) {
        pkt::put_str(body, f);
        body.push_back(options);
    }
    return pkt::frame(0x82, body);
}

Bytes ack(uint8_t type, uint16_t packet_id, uint8_t reason) {
    Bytes body;
    pkt::put_u16(body, packet_id);
    body.push_back(reason);
    body.push_back(0);  // no properties
    return pkt::frame(static_cast<uint8_t>(type << 4 | (type == kPubrel ? 0x02 : 0)), body);
}

Bytes disconnect(uint8_t reason, const Props& props) {
    Bytes body{reason};
    Bytes p = props.bytes();
    body.insert(body.end(), p.begin(), p.end());
    return pkt::frame(0xE0, body);
}

Bytes auth(uint8_t reason, const Props& props) {
    Bytes body{reason};
    Bytes p = props.bytes();
    body.insert(body.end(), p.begin(), p.end());
    return pkt::frame(0xF0, body);
}

std::optional<Connack> parse_connack(const Packet& p) {
    if (p.type() != kConnack) {
        ADD_FAILURE() << "expected CONNACK, got " << describe(p);
        return std::nullopt;
    }
    Cursor c{p.body};
    Connack r;
    r.session_present = (c.u8() & 1) != 0;
    r.reason = c.u8();
    r.props = read_props(c);
    if (!c.ok || c.pos != p.body.size()) {
        ADD_FAILURE() << "malformed CONNACK " << describe(p);
        return std::nullopt;
    }
    return r;
}

std::optional<Publish> parse_publish(const Packet& p) {
    if (p.type() != kPublish) {
        ADD_FAILURE() << "expected PUBLISH, got " << describe(p);
        return std::nullopt;
    }
    Cursor c{p.body};
    Publish r;
    r.qos = static_cast<uint8_t>(p.flags() >> 1 & 3);
    r.retain = (p.flags() & 1) != 0;
    r.dup = (p.flags() & 8) != 0;
    r.topic = c.str();
    if (r.qos > 0) {
        r.packet_id = c.u16();
    }
    r.props = read_props(c);
    r.payload = c.rest();
    if (!c.ok) {
        ADD_FAILURE() << "malformed PUBLISH " << describe(p);
        return std::nullopt;
    }
    return r;
}

std::optional<Reasoned> parse_reasoned(const Packet& p) {
    Cursor c{p.body};
    Reasoned r;
    if (p.type() >= kPuback && p.type() <= kPubcomp) {
        r.packet_id = c.u16();
    }
    if (c.pos < p.body.size()) {
        r.reason = c.u8();
    }
    if (c.pos < p.body.size()) {
        r.props = read_props(c);
    }
    if (!c.ok || c.pos != p.body.size()) {
        ADD_FAILURE() << "malformed " << describe(p);
        return std::nullopt;
    }
    return r;
}

std::vector<uint8_t> parse_suback(const Packet& p) {
    if (p.type() != kSuback) {
        ADD_FAILURE() << "expected SUBACK, got " << describe(p);
        return {};
    }
    Cursor c{p.body};
    c.u16();
    read_props(c);
    if (!c.ok) {
        ADD_FAILURE() << "malformed SUBACK " << describe(p);
        return {};
    }
    return {p.body.begin() + static_cast<ptrdiff_t>(c.pos), p.body.end()};
}

std::optional<Connack> Client5::connect(const ConnectSpec& c) {
    if (!raw_.send(v5::connect(c))) {
        ADD_FAILURE() << "CONNECT not sent";
        return std::nullopt;
    }
    auto p = raw_.read();
    if (!p) {
        ADD_FAILURE() << "no CONNACK";
        return std::nullopt;
    }
    return parse_connack(*p);
}

std::optional<Connack> Client5::connect_ok(uint16_t port, const ConnectSpec& c) {
    if (!open(port)) {
        return std::nullopt;
    }
    auto ack = connect(c);
    if (ack && ack->reason != 0) {
        ADD_FAILURE() << "CONNACK reason 0x" << std::hex << int{ack->reason};
    }
    return ack;
}

std::vector<uint8_t> Client5::subscribe(const std::vector<std::pair<std::string, uint8_t>>& filters,
                                        const Props& props) {
    uint16_t id = next_id();
    if (!raw_.send(v5::subscribe(id, filters, props))) {
        ADD_FAILURE() << "SUBSCRIBE not sent";
        return {};
    }
    while (true) {
        auto p = raw_.read();
        if (!p) {
            ADD_FAILURE() << "no SUBACK";
            return {};
        }
        if (p->type() == kPublish) {
            raw_.early().push_back(std::move(*p));  // retained messages may come first
            continue;
        }
        EXPECT_EQ(packet_id_of(*p), id);
        return parse_suback(*p);
    }
}

uint8_t Client5::publish(const std::string& topic,
                         const std::string& payload,
                         uint8_t qos,
                         bool retain,
                         const Props& props) {
    uint16_t id = qos > 0 ? next_id() : 0;
    if (!raw_.send(v5::publish(topic, payload, qos, id, retain, props))) {
        ADD_FAILURE() << "PUBLISH not sent";
        return 0xFF;
    }
    if (qos == 0) {
        return 0;
    }
    auto wait_for = [&](uint8_t type) -> std::optional<Reasoned> {
        while (true) {
            auto p = raw_.read();
            if (!p) {
                ADD_FAILURE() << "no " << packet_type_name(type) << " for packet " << id;
                return std::nullopt;
            }
            if (p->type() == kPublish) {
                raw_.early().push_back(std::move(*p));
                continue;
            }
            if (p->type() != type) {
                ADD_FAILURE() << "expected " << packet_type_name(type) << ", got " << describe(*p);
                return std::nullopt;
            }
            auto r = parse_reasoned(*p);
            if (r) {
                EXPECT_EQ(r->packet_id, id);
            }
            return r;
        }
    };
    auto first = wait_for(qos == 1 ? kPuback : kPubrec);
    if (!first) {
        return 0xFF;
    }
    if (qos == 2 && first->reason < 0x80) {
        raw_.send(v5::ack(kPubrel, id));
        wait_for(kPubcomp);
    }
    return first->reason;
}

std::optional<Publish> Client5::expect_publish(std::chrono::milliseconds timeout) {
    auto p = raw_.next(timeout);
    if (!p) {
        ADD_FAILURE() << "no PUBLISH within " << timeout.count() << " ms";
        return std::nullopt;
    }
    return v5::parse_publish(*p);
}

void Client5::ack(const Publish& p) {
    if (p.qos == 1) {
        raw_.send(v5::ack(kPuback, p.packet_id));
    } else if (p.qos == 2) {
        raw_.send(v5::ack(kPubrec, p.packet_id));
        auto rel = raw_.read();
        if (!rel || rel->type() != kPubrel) {
            ADD_FAILURE() << "expected PUBREL for " << p.packet_id;
            return;
        }
        raw_.send(v5::ack(kPubcomp, p.packet_id));
    }
}

std::optional<Publish> Client5::receive_and_ack(std::chrono::milliseconds timeout) {
    auto p = expect_publish(timeout);
    if (p) {
        ack(*p);
    }
    return p;
}

std::optional<uint8_t> Client5::expect_disconnect(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
        auto p = raw_.read(left);
        if (!p) {
            break;
        }
        if (p->type() == kDisconnect) {
            auto r = parse_reasoned(*p);
            return r ? std::optional<uint8_t>(r->reason) : std::nullopt;
        }
    }
    ADD_FAILURE() << "no DISCONNECT";
    return std::nullopt;
}

void Client5::disconnect(uint8_t reason, const Props& props) {
    raw_.send(v5::disconnect(reason, props));
    raw_.close();
}

}  // namespace mqttd::itest::v5
