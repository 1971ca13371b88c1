// The frames of the node-to-node link (PeerLink), sans I/O. FORMAT VERSION 2 (2: the route
// stamp and relays of Publish, the revision of TakeoverDone).
//
// Every frame is   u32 length (big-endian, of what follows) | u8 type | body
// and a write carries as many frames as are queued (a batch is frames back to back).
//   Hello   (1): u8 version (2) | u16 name length | name | u64 incarnation (the sender's start
//                time in ms: a new one means the sender restarted and its sequence numbers
//                begin again)
//   Publish (2): u64 seq | u8 flags (bits 0-1 QoS, bit 2 retain, bit 3 answer wanted, bit 4
//                groups follow, bit 5 a copy of the sender's retained set, answering a
//                RetainedRequest: stored if newer, delivered to no one, bit 6 a relay) | i64
//                created_at_ms | i64 expiry_at_ms (0 = never) | i64 route stamp (the etcd
//                revision of the sender's route table when it matched the message; README
//                "Messages during a move") | u16 topic length | topic | u16 publisher client id
//                length | id | u32 properties length | properties (MQTT 5, wire-encoded) | u32
//                payload length | payload | when bit 4: u16 count | count × (u16 length | group key
//                "$share/<group>/<filter>"): the shared subscription groups the receiver delivers
//                to (one member each); it delivers to no other group | when bit 6: u16 client
//                id length | client id | u8 QoS | u8 retain | u16 count | count × u32
//                subscription id: a delivery to that one session, which has just moved to the
//                receiver from the sender (the QoS, retain flag and ids are the delivery's)
//   Ack     (3): u64 seq | u8 status (0 stored and delivered, 1 the receiver's store failed)
//   RetainedRequest (9): empty: a node that has just started asks each peer it links to (once a
//   start) for
//                its retained set, which comes back as Publish frames with bit 5
// Client-id takeover (README "Client-id ownership and takeover"); a request and its answers
// pair up by the asker's request id, and are not resent after a reconnect (the asker's
// cluster.takeover_timeout answers for a lost one):
//   TakeoverRequest (4): u64 request id | u8 flags (bit 0 Clean Start: drop the session) |
//                        u16 client id length | client id
//   SessionState    (5): u64 request id | u8 status (0 a session follows, 1 none to move,
//                        2 busy: being handed to another node) | [session, status 0]
//   TakeoverDone    (6): u64 request id | u8 status (0 stored and owned by the asker: delete
//                        your copy, 1 not moved: keep it) | u16 client id length | client id |
//                        i64 revision (moved: the etcd revision from which the asker's routes
//                        carry the session's messages)
// While etcd is out of reach a node asks its linked peers whether one of them owns an id:
//   OwnerQuery      (7): u64 request id | u16 client id length | client id
//   OwnerAnswer     (8): u64 request id | u8 (1 the id is the answering node's, 0 it is not)
// A session is its stored records (storage/records.h), strings as u16 length | bytes except
// payloads and properties (u32 length | bytes):
//   record:   id | u8 protocol level | u32 expiry | i64 created_at_ms | i64 disconnected_at_ms |
//             u16 max_inflight | u64 deliver_msg | username | u8 has will | [will: topic |
//             payload (u32) | properties (u32) | u8 qos | u8 retain | u32 message expiry |
//             i64 due_at_ms]
//   u32 count | subscriptions: filter | u8 qos | u8 flags (bit 0 no local, bit 1 retain as
//             published) | u8 retain handling | u32 subscription id
//   u32 count | queue entries: u64 seq | u64 message id | u8 qos | u8 retain | u32
//             subscription id | u16 count | u32 more subscription ids | message: topic |
//             payload (u32) | properties (u32) | u8 qos | u8 retain | publisher id |
//             i64 created_at_ms | i64 expiry_at_ms
//   u32 count | in-flight: u8 direction ('O' / 'I') | u16 packet id | i64 at_ms
// Sequence numbers count per sender and receiver from 1; the receiver answers a Publish with
// "answer wanted" once what it caused is durable, and recognises a resent one (seq not above
// what it already took from that sender's incarnation).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/cluster_router.h"

namespace mqttd::cluster {

enum class FrameType : uint8_t {
    Hello = 1,
    Publish = 2,
    Ack = 3,
    TakeoverRequest = 4,
    SessionState = 5,
    TakeoverDone = 6,
    OwnerQuery = 7,
    OwnerAnswer = 8,
    RetainedRequest = 9,
};

inline constexpr uint8_t kLinkVersion = 2;
// The largest frame a peer may send: an MQTT message of the largest size with its headers.
inline constexpr uint32_t kMaxFrame = 268435455u + 4096u;

struct HelloFrame {
    std::string_view node;
    uint64_t incarnation = 0;
};

// A delivery to one session that has moved to the receiver (bit 6).
struct RelayTarget {
    std::string_view client_id;
    uint8_t qos = 0;
    bool retain = false;
    std::vector<uint32_t> subscription_ids;
};

struct PublishFrame {
    uint64_t seq = 0;
    uint8_t qos = 0;
    bool retain = false;
    bool want_ack = false;
    int64_t created_at_ms = 0;
    int64_t expiry_at_ms = 0;
    int64_t stamp = 0;
    std::string_view topic;
    std::string_view from_client;
    std::string_view properties;
    std::string_view payload;
    std::vector<std::string_view> groups;
    bool retained_copy = false;        // bit 5
    std::optional<RelayTarget> relay;  // bit 6
};

struct AckFrame {
    uint64_t seq = 0;
    bool ok = true;
};

struct TakeoverRequestFrame {
    uint64_t request = 0;
    bool drop = false;  // Clean Start on the asking node
    std::string_view client_id;
};

struct SessionStateFrame {
    enum class Status : uint8_t { Session = 0, None = 1, Busy = 2 };
    uint64_t request = 0;
    Status status = Status::None;
    broker::SessionTransfer session;  // Status::Session
};

struct TakeoverDoneFrame {
    uint64_t request = 0;
    bool moved = false;
    std::string_view client_id;
    int64_t revision = 0;
};

struct OwnerQueryFrame {
    uint64_t request = 0;
    std::string_view client_id;
};

struct OwnerAnswerFrame {
    uint64_t request = 0;
    bool owns = false;
};

void encode_hello(std::string& out, const HelloFrame& f);
void encode_publish(std::string& out, const PublishFrame& f);
void encode_ack(std::string& out, const AckFrame& f);
void encode_retained_request(std::string& out);
void encode_takeover_request(std::string& out, const TakeoverRequestFrame& f);
void encode_session_state(std::string& out, const SessionStateFrame& f);
void encode_takeover_done(std::string& out, const TakeoverDoneFrame& f);
void encode_owner_query(std::string& out, const OwnerQueryFrame& f);
void encode_owner_answer(std::string& out, const OwnerAnswerFrame& f);

// One frame at the front of `in`: its type and body, and how many bytes it took.
struct RawFrame {
    FrameType type = FrameType::Hello;
    std::string_view body;
    size_t size = 0;
};
// nullopt: more bytes are needed. `error` is set (and nullopt returned) for a length over
// kMaxFrame or an unknown type: the peer is closed.
std::optional<RawFrame> next_frame(std::string_view in, std::string& error);

// The bodies; nullopt when truncated or malformed.
std::optional<HelloFrame> decode_hello(std::string_view body);
std::optional<PublishFrame> decode_publish(std::string_view body);
std::optional<AckFrame> decode_ack(std::string_view body);
std::optional<TakeoverRequestFrame> decode_takeover_request(std::string_view body);
// The session's strings are copied out of `body`.
std::optional<SessionStateFrame> decode_session_state(std::string_view body);
std::optional<TakeoverDoneFrame> decode_takeover_done(std::string_view body);
std::optional<OwnerQueryFrame> decode_owner_query(std::string_view body);
std::optional<OwnerAnswerFrame> decode_owner_answer(std::string_view body);

}  // namespace mqttd::cluster
