#include "cluster/link_frame.h"

#include "common/byte_order.h"

namespace mqttd::cluster {
namespace {

// Writes the frame header with a length patched in by finish().
size_t begin(std::string& out, FrameType type) {
    size_t at = out.size();
    put_be32(out, 0);
    out.push_back(static_cast<char>(type));
    return at;
}

void finish(std::string& out, size_t at) {
    const auto n = static_cast<uint32_t>(out.size() - at - 4);
    for (int i = 0; i < 4; ++i) {
        out[at + static_cast<size_t>(i)] = static_cast<char>((n >> (24 - 8 * i)) & 0xff);
    }
}

class Reader {
public:
    explicit Reader(std::string_view s) : s_(s) {}
    bool u8(uint8_t& v) {
        if (!need(1)) {
            return false;
        }
        v = static_cast<uint8_t>(s_[pos_++]);
        return true;
    }
    bool u16(uint16_t& v) {
        if (!need(2)) {
            return false;
        }
        v = get_be16(data());
        pos_ += 2;
        return true;
    }
    bool u32(uint32_t& v) {
        if (!need(4)) {
            return false;
        }
        v = get_be32(data());
        pos_ += 4;
        return true;
    }
    bool u64(uint64_t& v) {
        if (!need(8)) {
            return false;
        }
        v = get_be64(data());
        pos_ += 8;
        return true;
    }
    bool bytes(size_t n, std::string_view& v) {
        if (!need(n)) {
            return false;
        }
        v = s_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    bool done() const { return pos_ == s_.size(); }

private:
    bool need(size_t n) const { return n <= s_.size() - pos_; }
    const unsigned char* data() const {
        return reinterpret_cast<const unsigned char*>(s_.data()) + pos_;
    }
    std::string_view s_;
    size_t pos_ = 0;
};

}  // namespace

void encode_hello(std::string& out, const HelloFrame& f) {
    size_t at = begin(out, FrameType::Hello);
    out.push_back(static_cast<char>(kLinkVersion));
    put_be16(out, static_cast<uint16_t>(f.node.size()));
    out.append(f.node);
    put_be64(out, f.incarnation);
    finish(out, at);
}

void encode_publish(std::string& out, const PublishFrame& f) {
    out.reserve(out.size() + 48 + f.topic.size() + f.from_client.size() + f.properties.size() +
                f.payload.size());
    size_t at = begin(out, FrameType::Publish);
    put_be64(out, f.seq);
    out.push_back(static_cast<char>((f.qos & 3) | (f.retain ? 4 : 0) | (f.want_ack ? 8 : 0) |
                                    (f.groups.empty() ? 0 : 16) | (f.retained_copy ? 32 : 0)));
    put_be64(out, static_cast<uint64_t>(f.created_at_ms));
    put_be64(out, static_cast<uint64_t>(f.expiry_at_ms));
    put_be16(out, static_cast<uint16_t>(f.topic.size()));
    out.append(f.topic);
    put_be16(out, static_cast<uint16_t>(f.from_client.size()));
    out.append(f.from_client);
    put_be32(out, static_cast<uint32_t>(f.properties.size()));
    out.append(f.properties);
    put_be32(out, static_cast<uint32_t>(f.payload.size()));
    out.append(f.payload);
    if (!f.groups.empty()) {
        put_be16(out, static_cast<uint16_t>(f.groups.size()));
        for (std::string_view g : f.groups) {
            put_be16(out, static_cast<uint16_t>(g.size()));
            out.append(g);
        }
    }
    finish(out, at);
}

void encode_retained_request(std::string& out) {
    finish(out, begin(out, FrameType::RetainedRequest));
}

void encode_ack(std::string& out, const AckFrame& f) {
    size_t at = begin(out, FrameType::Ack);
    put_be64(out, f.seq);
    out.push_back(static_cast<char>(f.ok ? 0 : 1));
    finish(out, at);
}

std::optional<RawFrame> next_frame(std::string_view in, std::string& error) {
    if (in.size() < 5) {
        return std::nullopt;
    }
    const uint32_t n = get_be32(reinterpret_cast<const unsigned char*>(in.data()));
    if (n == 0 || n > kMaxFrame) {
        error = "frame length " + std::to_string(n) + " out of bounds";
        return std::nullopt;
    }
    const auto type = static_cast<uint8_t>(in[4]);
    if ((type < 1 || type > 3) && type != static_cast<uint8_t>(FrameType::RetainedRequest)) {
        error = "unknown frame type " + std::to_string(type);
        return std::nullopt;
    }
    if (in.size() - 4 < n) {
        return std::nullopt;
    }
    return RawFrame{static_cast<FrameType>(type), in.substr(5, n - 1), size_t{n} + 4};
}

std::optional<HelloFrame> decode_hello(std::string_view body) {
    Reader r(body);
    uint8_t version = 0;
    uint16_t len = 0;
    HelloFrame f;
    if (!r.u8(version) || version != kLinkVersion || !r.u16(len) || !r.bytes(len, f.node) ||
        !r.u64(f.incarnation) || !r.done()) {
        return std::nullopt;
    }
    return f;
}

std::optional<PublishFrame> decode_publish(std::string_view body) {
    Reader r(body);
    PublishFrame f;
    uint8_t flags = 0;
    uint64_t created = 0;
    uint64_t expiry = 0;
    uint16_t topic_len = 0;
    uint16_t client_len = 0;
    uint32_t props_len = 0;
    uint32_t payload_len = 0;
    if (!r.u64(f.seq) || !r.u8(flags) || !r.u64(created) || !r.u64(expiry) || !r.u16(topic_len) ||
        !r.bytes(topic_len, f.topic) || !r.u16(client_len) || !r.bytes(client_len, f.from_client) ||
        !r.u32(props_len) || !r.bytes(props_len, f.properties) || !r.u32(payload_len) ||
        !r.bytes(payload_len, f.payload)) {
        return std::nullopt;
    }
    if ((flags & 16) != 0) {
        uint16_t count = 0;
        if (!r.u16(count) || count == 0) {
            return std::nullopt;
        }
        f.groups.reserve(count);
        for (uint16_t i = 0; i < count; ++i) {
            uint16_t len = 0;
            std::string_view g;
            if (!r.u16(len) || !r.bytes(len, g) || g.empty()) {
                return std::nullopt;
            }
            f.groups.push_back(g);
        }
    }
    if (!r.done()) {
        return std::nullopt;
    }
    f.qos = flags & 3;
    if (f.qos == 3 || f.topic.empty()) {
        return std::nullopt;
    }
    f.retain = (flags & 4) != 0;
    f.want_ack = (flags & 8) != 0;
    f.retained_copy = (flags & 32) != 0;
    f.created_at_ms = static_cast<int64_t>(created);
    f.expiry_at_ms = static_cast<int64_t>(expiry);
    return f;
}

std::optional<AckFrame> decode_ack(std::string_view body) {
    Reader r(body);
    AckFrame f;
    uint8_t status = 0;
    if (!r.u64(f.seq) || !r.u8(status) || !r.done()) {
        return std::nullopt;
    }
    f.ok = status == 0;
    return f;
}

}  // namespace mqttd::cluster
