// libFuzzer target for the MQTT decoder.
//
// Input layout: byte 0 picks the client-side protocol version (low 2 bits) and a small or large
// max_packet_size (bit 2); byte 1 picks where the stream is split in two; the rest is the byte
// stream a peer sends. The stream goes to a server-side Decoder (which needs a CONNECT first)
// and to a client-side one, each as a connection would: append a chunk, take packets until
// NeedMore or Error, append the next chunk, go on. Every decoded packet is re-encoded and
// decoded again on a fresh decoder of the same side and version; that must give a packet again
// (the encoder writes only what the decoder accepts) or the target traps.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "mqtt/decoder.h"
#include "mqtt/encoder.h"

namespace {

using mqttd::mqtt::Decoder;
using mqttd::mqtt::DecoderLimits;
using mqttd::mqtt::Packet;
using mqttd::mqtt::Side;
using mqttd::mqtt::Version;
namespace m = mqttd::mqtt;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

// Re-encodes `p` and returns the wire bytes (empty if this side does not receive that type).
std::string reencode(const Packet& p, Version v) {
    std::string out;
    if (const auto* c = std::get_if<m::Connect>(&p)) {
        m::encode_connect(out, *c);
    } else if (const auto* ca = std::get_if<m::Connack>(&p)) {
        m::encode_connack(out, v, *ca);
    } else if (const auto* pub = std::get_if<m::Publish>(&p)) {
        m::encode_publish(out, v, pub->topic, pub->payload, pub->qos, pub->retain, pub->dup,
                          pub->packet_id, pub->raw_properties);
    } else if (const auto* a = std::get_if<m::Ack>(&p)) {
        m::encode_ack(out, v, *a);
    } else if (const auto* s = std::get_if<m::Subscribe>(&p)) {
        m::encode_subscribe(out, v, *s);
    } else if (const auto* sa = std::get_if<m::Suback>(&p)) {
        m::encode_suback(out, v, *sa);
    } else if (const auto* u = std::get_if<m::Unsubscribe>(&p)) {
        m::encode_unsubscribe(out, v, *u);
    } else if (const auto* ua = std::get_if<m::Unsuback>(&p)) {
        m::encode_unsuback(out, v, *ua);
    } else if (std::holds_alternative<m::Pingreq>(p)) {
        m::encode_pingreq(out);
    } else if (std::holds_alternative<m::Pingresp>(p)) {
        m::encode_pingresp(out);
    } else if (const auto* d = std::get_if<m::Disconnect>(&p)) {
        if (v == Version::V5) {
            m::encode_disconnect(out, v, *d);
        } else {
            m::encode_client_disconnect(out, v);
        }
    } else if (const auto* au = std::get_if<m::Auth>(&p)) {
        m::encode_auth(out, *au);
    }
    return out;
}

void round_trip(const Packet& p, Side side, Version v) {
    const std::string wire = reencode(p, v);
    Decoder d(side, DecoderLimits{.max_packet_size = 0xFFFFFFFF});
    if (side == Side::Server && !std::holds_alternative<m::Connect>(p)) {
        std::string connect;
        m::Connect c;
        c.version = v;
        m::encode_connect(connect, c);
        Packet ignored;
        check(d.feed(std::span(reinterpret_cast<const uint8_t*>(connect.data()), connect.size()),
                     ignored)
                      .status == Decoder::Status::Packet);
    } else if (side == Side::Client) {
        d.set_version(v);
    }
    Packet again;
    const auto r =
            d.feed(std::span(reinterpret_cast<const uint8_t*>(wire.data()), wire.size()), again);
    check(r.status == Decoder::Status::Packet && r.consumed == wire.size());
    check(again.index() == p.index());
    if (const auto* a = std::get_if<m::Publish>(&p)) {
        const auto& b = std::get<m::Publish>(again);
        check(a->topic == b.topic && a->payload == b.payload && a->qos == b.qos &&
              a->retain == b.retain && a->dup == b.dup && a->packet_id == b.packet_id &&
              a->raw_properties == b.raw_properties && a->properties == b.properties);
    }
}

// Feeds `chunks` to one decoder as a connection would.
void run(Side side,
         Version client_version,
         uint32_t max_size,
         std::span<const uint8_t> first,
         std::span<const uint8_t> second) {
    Decoder d(side, DecoderLimits{.max_packet_size = max_size});
    if (side == Side::Client) {
        d.set_version(client_version);
    }
    std::vector<uint8_t> buffer;
    Packet p;
    for (std::span<const uint8_t> chunk : {first, second}) {
        buffer.insert(buffer.end(), chunk.begin(), chunk.end());
        size_t pos = 0;
        for (;;) {
            const auto r = d.feed(std::span(buffer).subspan(pos), p);
            if (r.status == Decoder::Status::Error) {
                check(m::is_error(r.error) && r.consumed == 0);
                return;
            }
            if (r.status == Decoder::Status::NeedMore) {
                check(r.consumed == 0);
                break;
            }
            check(r.consumed > 0 && r.consumed <= buffer.size() - pos);
            check(r.consumed <= max_size);
            round_trip(p, side, d.version());
            pos += r.consumed;
        }
        buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(pos));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return 0;
    }
    constexpr Version kVersions[] = {Version::V31, Version::V311, Version::V5, Version::V5};
    const Version client_version = kVersions[data[0] & 0x03];
    const uint32_t max_size = (data[0] & 0x04) != 0 ? 64 : 1024 * 1024;
    const std::span<const uint8_t> stream(data + 2, size - 2);
    const size_t split = stream.empty() ? 0 : data[1] % (stream.size() + 1);
    for (Side side : {Side::Server, Side::Client}) {
        run(side, client_version, max_size, stream, {});
        run(side, client_version, max_size, stream.first(split), stream.subspan(split));
    }
    return 0;
}
