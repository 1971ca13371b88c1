// Incremental, sans-I/O MQTT decoder (STYLE.md 1, 2).
//
// feed() looks at the bytes received so far, starting at a packet boundary, and returns one
// of: a whole packet (with the number of bytes it used), need-more (nothing used; call again
// with more bytes), or an error reason code (the connection must be closed, with that reason
// on MQTT 5). The remaining length is checked against the packet type and max_packet_size as
// soon as the fixed header is complete, before anything is allocated or buffered further, so
// a peer announcing a huge packet is refused at once.
//
// The protocol version is learnt from CONNECT (server side) or set by the owner; until then
// only CONNECT is accepted on the server side. One Decoder per connection; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "mqtt/packets.h"

namespace mqttd::mqtt {

enum class Side : uint8_t {
    Server,  // decodes what clients send
    Client,  // decodes what servers send (tests, tools)
};

struct DecoderLimits {
    uint32_t max_packet_size = 1024 * 1024;  // whole packet, fixed header included
};

class Decoder {
public:
    // GCC's -Wshadow flags the enumerator Packet against the type mqttd::mqtt::Packet, although a
    // scoped enumerator (always written Status::Packet) cannot hide it; the name is kept.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
    enum class Status : uint8_t { Packet, NeedMore, Error };
#pragma GCC diagnostic pop

    struct Result {
        Status status = Status::NeedMore;
        size_t consumed = 0;  // bytes used by the packet (Status::Packet only)
        ReasonCode error = ReasonCode::Success;
    };

    explicit Decoder(Side side, DecoderLimits limits = {});

    // On Status::Packet, the packet is in `out` (views into `bytes`, see packets.h).
    Result feed(std::span<const uint8_t> bytes, Packet& out);

    void set_version(Version v) {
        version_ = v;
    }
    // Continues a server-side stream whose CONNECT was decoded by another Decoder (the
    // connection moved to another thread): only post-CONNECT packets are accepted from now.
    void resume_after_connect(Version v) {
        version_ = v;
        version_known_ = true;
    }
    Version version() const {
        return version_;
    }
    bool version_known() const {
        return version_known_;
    }
    void set_max_packet_size(uint32_t n) {
        limits_.max_packet_size = n;
    }

    // Size of the packet being received once its fixed header is complete (0 before).
    size_t expected_size() const {
        return expected_;
    }

private:
    Side side_;
    DecoderLimits limits_;
    Version version_ = Version::V311;
    bool version_known_ = false;
    size_t expected_ = 0;
};

// Topic name and filter rules (3.1.1 section 4.7, 5.0 section 4.7): non-empty, valid UTF-8
// without U+0000, no wildcards in names, '+' and '#' only as whole levels, '#' last.
bool valid_topic_name(std::string_view topic);
bool valid_topic_filter(std::string_view filter);
// A SUBSCRIBE's filter: valid UTF-8, a valid filter, and on MQTT 5 a well-formed
// "$share/<name>/<filter>" when shared. The decoder passes invalid ones through so the broker
// can refuse each in the SUBACK.
bool valid_subscription_filter(std::string_view filter, Version v);
// UTF-8 encoded string rules (1.5.3 / 1.5.4): well-formed, no surrogates, no U+0000.
bool valid_utf8(std::string_view s);

}  // namespace mqttd::mqtt
