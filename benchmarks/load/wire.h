// Minimal MQTT 3.1.1 client framing for the load generator: encoders that append to an output
// buffer and an incremental splitter that finds whole packets in a read buffer. Deliberately
// independent of src/mqtt so that the load tool measures the broker, not our own codec.
//
// Payload layout of every PUBLISH the generator sends (little-endian, 16 bytes minimum):
//   [0..8)   stream id (high 16 bits) | sequence number within the stream (low 48 bits)
//   [8..16)  send timestamp, steady_clock nanoseconds of the generator process
//   [16..)   padding up to --size
//
// Thread-safety: free functions over caller-owned buffers; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace mqttd::load {

enum class PacketType : std::uint8_t {
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
};

inline constexpr std::size_t kStampBytes = 16;
inline constexpr int kStreamShift = 48;
inline constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kStreamShift) - 1;

// An append-only output buffer with a consumed prefix; flushed by the connection.
class OutBuffer {
public:
    [[nodiscard]] const std::uint8_t* data() const { return bytes_.data() + head_; }
    [[nodiscard]] std::size_t size() const { return bytes_.size() - head_; }
    [[nodiscard]] bool empty() const { return size() == 0; }
    void consume(std::size_t n);
    // Appends n uninitialised bytes and returns a pointer to them.
    std::uint8_t* extend(std::size_t n);
    void append(const void* p, std::size_t n);
    void release();  // frees the storage (idle connections keep nothing)

private:
    std::vector<std::uint8_t> bytes_;
    std::size_t head_ = 0;
};

struct ConnectOptions {
    std::string_view client_id;
    bool clean_session = true;
    std::uint16_t keepalive_s = 60;
};

void put_connect(OutBuffer& out, const ConnectOptions& opts);
// Writes a PUBLISH whose payload is `size` bytes: the stamp (seq, ts) then zero padding.
// REQUIRES: size >= kStampBytes; packet_id != 0 when qos > 0.
void put_publish(OutBuffer& out,
                 std::string_view topic,
                 int qos,
                 std::uint16_t packet_id,
                 std::uint64_t seq,
                 std::uint64_t ts_ns,
                 std::size_t size);
// PUBACK, PUBREC, PUBREL (flags 0b0010 [MQTT-3.6.1-1]) and PUBCOMP.
void put_ack(OutBuffer& out, PacketType type, std::uint16_t packet_id);
void put_subscribe(OutBuffer& out, std::uint16_t packet_id, std::string_view filter, int qos);
void put_pingreq(OutBuffer& out);
void put_disconnect(OutBuffer& out);

// One packet found in a read buffer; `body` points into that buffer (valid until it changes).
struct Packet {
    std::uint8_t first = 0;  // type << 4 | flags
    std::span<const std::uint8_t> body;
    [[nodiscard]] PacketType type() const { return static_cast<PacketType>(first >> 4); }
};

// The result of looking for one packet at the start of `bytes`.
struct Split {
    enum class Kind { Packet, NeedMore, Malformed } kind = Kind::NeedMore;
    Packet packet;
    std::size_t consumed = 0;  // bytes of the whole packet when kind == Packet
};
Split split_packet(std::span<const std::uint8_t> bytes, std::size_t max_packet);

// The fields of an incoming PUBLISH that the generator needs.
struct PublishView {
    int qos = 0;
    std::uint16_t packet_id = 0;
    std::string_view topic;
    std::uint64_t seq = 0;
    std::uint64_t ts_ns = 0;
    bool stamped = false;  // payload carried at least kStampBytes
};
// nullopt when the body is malformed.
std::optional<PublishView> parse_publish(const Packet& p);
// Packet identifier of PUBACK/PUBREC/PUBREL/PUBCOMP/SUBACK; 0 when too short.
std::uint16_t packet_id_of(const Packet& p);

}  // namespace mqttd::load
