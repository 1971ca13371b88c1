#include "wire.h"

#include <cstring>

namespace mqttd::load {

void OutBuffer::consume(std::size_t n) {
    head_ += n;
    if (head_ == bytes_.size()) {
        bytes_.clear();
        head_ = 0;
    }
}

std::uint8_t* OutBuffer::extend(std::size_t n) {
    // Compact once the consumed prefix dominates, so a connection that is never fully drained
    // does not grow without bound.
    if (head_ > 0 && head_ >= bytes_.size() / 2) {
        bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n);
    return bytes_.data() + at;
}

void OutBuffer::append(const void* p, std::size_t n) {
    std::memcpy(extend(n), p, n);
}

void OutBuffer::release() {
    std::vector<std::uint8_t>().swap(bytes_);
    head_ = 0;
}

namespace {

// Remaining length, 1..4 bytes of 7 bits each [MQTT-2.2.3].
std::uint8_t* put_varint(std::uint8_t* p, std::size_t v) {
    do {
        auto b = static_cast<std::uint8_t>(v & 0x7f);
        v >>= 7;
        if (v != 0) {
            b = static_cast<std::uint8_t>(b | 0x80);
        }
        *p++ = b;
    } while (v != 0);
    return p;
}

std::size_t varint_len(std::size_t v) {
    if (v < 128) {
        return 1;
    }
    if (v < 16384) {
        return 2;
    }
    if (v < 2097152) {
        return 3;
    }
    return 4;
}

std::uint8_t* put_u16(std::uint8_t* p, std::size_t v) {
    p[0] = static_cast<std::uint8_t>((v >> 8) & 0xff);
    p[1] = static_cast<std::uint8_t>(v & 0xff);
    return p + 2;
}

std::uint8_t* put_str(std::uint8_t* p, std::string_view s) {
    p = put_u16(p, s.size());
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}

std::uint8_t* put_u64le(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    return p + 8;
}

std::uint64_t get_u64le(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

std::uint8_t* begin_packet(OutBuffer& out, std::uint8_t first, std::size_t remaining) {
    std::uint8_t* p = out.extend(1 + varint_len(remaining) + remaining);
    *p++ = first;
    return put_varint(p, remaining);
}

}  // namespace

void put_connect(OutBuffer& out, const ConnectOptions& opts) {
    // Variable header: protocol name "MQTT", level 4, flags, keepalive [MQTT-3.1.2].
    const std::size_t remaining = 10 + 2 + opts.client_id.size();
    std::uint8_t* p = begin_packet(out, 0x10, remaining);
    p = put_str(p, "MQTT");
    *p++ = 4;
    *p++ = opts.clean_session ? 0x02 : 0x00;
    p = put_u16(p, opts.keepalive_s);
    put_str(p, opts.client_id);
}

void put_publish(OutBuffer& out,
                 std::string_view topic,
                 int qos,
                 std::uint16_t packet_id,
                 std::uint64_t seq,
                 std::uint64_t ts_ns,
                 std::size_t size) {
    const std::size_t remaining = 2 + topic.size() + (qos > 0 ? 2 : 0) + size;
    std::uint8_t* p = begin_packet(out, static_cast<std::uint8_t>(0x30 | (qos << 1)), remaining);
    p = put_str(p, topic);
    if (qos > 0) {
        p = put_u16(p, packet_id);
    }
    p = put_u64le(p, seq);
    p = put_u64le(p, ts_ns);
    if (size > kStampBytes) {
        std::memset(p, 0, size - kStampBytes);
    }
}

void put_ack(OutBuffer& out, PacketType type, std::uint16_t packet_id) {
    auto first = static_cast<std::uint8_t>(static_cast<unsigned>(type) << 4);
    if (type == PacketType::Pubrel) {
        first = static_cast<std::uint8_t>(first | 0x02);
    }
    std::uint8_t* p = out.extend(4);
    p[0] = first;
    p[1] = 2;
    put_u16(p + 2, packet_id);
}

void put_subscribe(OutBuffer& out, std::uint16_t packet_id, std::string_view filter, int qos) {
    // SUBSCRIBE carries flags 0b0010 [MQTT-3.8.1-1].
    std::uint8_t* p = begin_packet(out, 0x82, 2 + 2 + filter.size() + 1);
    p = put_u16(p, packet_id);
    p = put_str(p, filter);
    *p = static_cast<std::uint8_t>(qos);
}

void put_pingreq(OutBuffer& out) {
    const std::uint8_t b[2] = {0xc0, 0};
    out.append(b, 2);
}

void put_disconnect(OutBuffer& out) {
    const std::uint8_t b[2] = {0xe0, 0};
    out.append(b, 2);
}

Split split_packet(std::span<const std::uint8_t> bytes, std::size_t max_packet) {
    Split s;
    if (bytes.size() < 2) {
        return s;
    }
    std::size_t remaining = 0;
    std::size_t i = 1;
    for (int shift = 0;; shift += 7) {
        if (i >= bytes.size()) {
            return s;
        }
        if (shift > 21) {
            s.kind = Split::Kind::Malformed;
            return s;
        }
        const std::uint8_t b = bytes[i++];
        remaining |= static_cast<std::size_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            break;
        }
    }
    if (remaining > max_packet) {
        s.kind = Split::Kind::Malformed;
        return s;
    }
    if (bytes.size() - i < remaining) {
        return s;
    }
    s.kind = Split::Kind::Packet;
    s.packet.first = bytes[0];
    s.packet.body = bytes.subspan(i, remaining);
    s.consumed = i + remaining;
    return s;
}

std::optional<PublishView> parse_publish(const Packet& p) {
    PublishView v;
    v.qos = (p.first >> 1) & 0x03;
    const auto& b = p.body;
    if (b.size() < 2 || v.qos == 3) {
        return std::nullopt;
    }
    const std::size_t tlen = (std::size_t{b[0]} << 8) | b[1];
    std::size_t pos = 2 + tlen;
    if (pos > b.size()) {
        return std::nullopt;
    }
    v.topic = std::string_view(reinterpret_cast<const char*>(b.data() + 2), tlen);
    if (v.qos > 0) {
        if (pos + 2 > b.size()) {
            return std::nullopt;
        }
        v.packet_id = static_cast<std::uint16_t>((b[pos] << 8) | b[pos + 1]);
        pos += 2;
    }
    if (b.size() - pos >= kStampBytes) {
        v.seq = get_u64le(b.data() + pos);
        v.ts_ns = get_u64le(b.data() + pos + 8);
        v.stamped = true;
    }
    return v;
}

std::uint16_t packet_id_of(const Packet& p) {
    if (p.body.size() < 2) {
        return 0;
    }
    return static_cast<std::uint16_t>((p.body[0] << 8) | p.body[1]);
}

}  // namespace mqttd::load
