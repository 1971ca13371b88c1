// Internal wire helpers shared by the decoder, the encoder and the property codec: a bounds-
// checked reader over one packet body, the Variable Byte Integer (remaining length, property
// lengths, subscription identifiers) and the MQTT 5 property block. Not part of the codec's
// public interface; pure functions, thread-safe.
//
// Variable Byte Integer (3.1.1 section 2.2.3, 5.0 section 1.5.5): 7 bits per byte, least
// significant group first, high bit set on every byte but the last, at most 4 bytes, so at most
// 268,435,455. MQTT 5 requires the minimal encoding [MQTT-1.5.5-1]; 3.1.1 does not say so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/packets.h"

namespace mqttd::mqtt::detail {

inline constexpr uint32_t kMaxVarint = 268'435'455;

// Bounds-checked reader over [p, end). Every read checks `p + n <= end` first (STYLE.md 2);
// a failed read leaves the reader unchanged and returns false.
struct Reader {
    const uint8_t* p;
    const uint8_t* end;

    size_t left() const { return static_cast<size_t>(end - p); }
    bool done() const { return p == end; }

    bool u8(uint8_t& v) {
        if (left() < 1) {
            return false;
        }
        v = *p++;
        return true;
    }
    bool u16(uint16_t& v) {
        if (left() < 2) {
            return false;
        }
        v = static_cast<uint16_t>((p[0] << 8) | p[1]);
        p += 2;
        return true;
    }
    bool u32(uint32_t& v) {
        if (left() < 4) {
            return false;
        }
        v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
        p += 4;
        return true;
    }
    bool bytes(size_t n, std::string_view& v) {
        if (left() < n) {
            return false;
        }
        v = std::string_view(reinterpret_cast<const char*>(p), n);
        p += n;
        return true;
    }
    // Two-byte length then that many bytes (Binary Data, and the raw form of a string).
    bool binary(std::string_view& v) {
        const uint8_t* save = p;
        uint16_t n = 0;
        if (!u16(n) || !bytes(n, v)) {
            p = save;
            return false;
        }
        return true;
    }
    // A UTF-8 Encoded String: length-prefixed and well-formed [MQTT-1.5.3-1], [MQTT-1.5.3-2].
    bool utf8(std::string_view& v);
    // Variable Byte Integer; `minimal` rejects non-minimal encodings [MQTT-1.5.5-1].
    bool varint(uint32_t& v, bool minimal);
};

// Result of reading a Variable Byte Integer from the start of a buffer that may be incomplete.
enum class VarintStatus : uint8_t { Ok, NeedMore, Malformed };
struct VarintRead {
    VarintStatus status = VarintStatus::NeedMore;
    uint32_t value = 0;
    uint8_t length = 0;   // bytes used
    bool minimal = true;  // encoded in the fewest bytes
};
VarintRead read_varint(const uint8_t* p, size_t n);

size_t varint_size(uint32_t v);
void put_varint(std::string& out, uint32_t v);
void put_string(std::string& out, std::string_view s);  // two-byte length + bytes

// Where a property block sits; each property is allowed in a subset (5.0 section 2.2.2.2).
enum class PropertyContext : uint8_t {
    Connect,
    Will,
    Connack,
    Publish,
    PubAck,  // PUBACK, PUBREC, PUBREL, PUBCOMP
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Disconnect,
    Auth,
};

// Reads a property block (Variable Byte Integer length, then the properties) into `out`.
// `raw` receives the property bytes without their length. Returns Success or the reason the
// packet is refused: MalformedPacket (unknown or misplaced identifier, bad type or length) or
// ProtocolError (a duplicate, or a value the standard forbids).
ReasonCode read_properties(Reader& r, PropertyContext ctx, Properties& out, std::string_view& raw);

// Size of the properties' wire bytes, without the length prefix.
size_t properties_body_size(const Properties& p);
// Appends the properties' wire bytes, without the length prefix.
void put_properties_body(std::string& out, const Properties& p);

}  // namespace mqttd::mqtt::detail
