// Helpers for the codec tests: byte strings written out by hand from the standard, and
// decoding one packet from them.
#pragma once

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/decoder.h"

namespace mqttd::mqtt::test {

using Bytes = std::vector<uint8_t>;

// Concatenates byte values and strings: B({0x10, 0x0C}, "MQTT", {0x04}).
class B {
public:
    // The reserve keeps GCC 12 -O3 from false -Wstringop-overflow reports on a small vector
    // that grows.
    B() { v_.reserve(64); }
    B& operator()(std::initializer_list<int> bytes) {
        for (int b : bytes) {
            v_.push_back(static_cast<uint8_t>(b));
        }
        return *this;
    }
    B& operator()(std::string_view s) {
        v_.insert(v_.end(), s.begin(), s.end());
        return *this;
    }
    // A two-byte length followed by the string.
    B& str(std::string_view s) {
        v_.push_back(static_cast<uint8_t>(s.size() >> 8));
        v_.push_back(static_cast<uint8_t>(s.size() & 0xFF));
        return (*this)(s);
    }
    Bytes bytes() const { return v_; }
    operator Bytes() const { return v_; }  // NOLINT(google-explicit-constructor)

private:
    Bytes v_;
};

inline Bytes to_bytes(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

inline std::string to_string(const Bytes& b) {
    return std::string(b.begin(), b.end());
}

// A packet: first byte, Remaining Length (written as a Variable Byte Integer), body.
inline Bytes packet(uint8_t byte0, const Bytes& body) {
    // Reserving first also keeps GCC 12 -O3 from false -Wstringop-overflow / -Warray-bounds
    // reports on a one-element vector that grows.
    Bytes out;
    out.reserve(5 + body.size());
    out.push_back(byte0);
    size_t n = body.size();
    do {
        auto b = static_cast<uint8_t>(n & 0x7F);
        n >>= 7;
        if (n != 0) {
            b |= 0x80;
        }
        out.push_back(b);
    } while (n != 0);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

struct Decoded {
    Decoder::Result result;
    Packet packet;
};

// Decodes from a copy of `b` that lives until the test program ends, so the views of a decoded
// packet stay valid however the test holds it.
inline Decoded decode(Decoder& d, const Bytes& b) {
    static std::deque<Bytes> keep_alive;
    const Bytes& kept = keep_alive.emplace_back(b);
    Decoded out;
    out.result = d.feed(std::span<const uint8_t>(kept.data(), kept.size()), out.packet);
    return out;
}

// Minimal CONNECT packets with an empty client id and keep alive 60.
inline Bytes minimal_connect(Version v) {
    switch (v) {
        case Version::V31:
            return {0x10, 0x0E, 0x00, 0x06, 'M',  'Q',  'I',  's',
                    'd',  'p',  0x03, 0x02, 0x00, 0x3C, 0x00, 0x00};
        case Version::V311:
            return {0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00};
        case Version::V5:
            break;
    }
    return {0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00};
}

// A server-side decoder that has already decoded a CONNECT of version v.
inline Decoder connected_server(Version v, DecoderLimits limits = {}) {
    Decoder d(Side::Server, limits);
    Packet p;
    const Bytes c = minimal_connect(v);
    d.feed(std::span<const uint8_t>(c.data(), c.size()), p);
    return d;
}

inline Decoder client(Version v) {
    Decoder d(Side::Client);
    d.set_version(v);
    return d;
}

}  // namespace mqttd::mqtt::test
