// Plain record structs kept by the store, one per column family (DESIGN.md, Store).
// The byte formats live in storage/keys.h and storage/values.h; these are the in-memory views.
// Value types with no behaviour; safe to copy between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mqttd::storage {

// Session expiry that never runs out (MQTT 5 0xFFFFFFFF).
inline constexpr uint32_t kNeverExpires = 0xFFFFFFFFu;

// `sessions`: one persistent session (clean sessions are never stored, contract 7).
// An MQTT 5 will waiting for its Will Delay Interval [MQTT-3.1.3-9], kept with its session so
// that it survives a restart. `properties` are the PUBLISH properties it goes out with (the
// will's, without Will Delay Interval); its Message Expiry Interval counts from publication.
struct WillRecord {
    std::string topic;
    std::string payload;
    std::string properties;
    uint8_t qos = 0;
    bool retain = false;
    uint32_t message_expiry_s = 0;  // 0 = none
    int64_t due_at_ms = 0;          // published then, or when the session ends if sooner
};

struct SessionRecord {
    std::string client_id;
    uint8_t protocol_level = 4;      // 3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0
    uint32_t expiry_interval_s = 0;  // 0 = broker default applies; kNeverExpires = never
    int64_t created_at_ms = 0;
    int64_t disconnected_at_ms = 0;  // 0 = connected when last written
    uint16_t max_inflight = 32;
    uint64_t deliver_msg = 0;  // messages delivered, as of the last write
    std::string username;
    std::optional<WillRecord> will;  // a delayed will not yet published
};

// `subscriptions`: key (client id, topic filter).
struct SubscriptionRecord {
    std::string client_id;
    std::string topic_filter;
    uint8_t qos = 0;
    bool no_local = false;
    bool retain_as_published = false;
    uint8_t retain_handling = 0;
    uint32_t subscription_id = 0;  // MQTT 5 subscription identifier, 0 = none
};

// `messages`: one published message stored once however many queues reference it
// (contract 5). Reference-counted by queue entries; deleted with the last reference.
struct MessageRecord {
    uint64_t id = 0;  // from Store::next_message_id(), monotonic
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
    std::string properties;   // MQTT 5 PUBLISH properties, wire-encoded; empty for 3.x
    std::string from_client;  // publisher client id (for no-local)
    int64_t created_at_ms = 0;
    int64_t expiry_at_ms = 0;  // 0 = no message expiry
};

// `queues`: key (client id, seq). A message waiting for, or in flight to, a persistent session.
// The outbound packet id of an entry is derived from seq (see broker/session.h), so sending
// needs no write; the entry goes when the PUBACK (QoS 1) or PUBREC (QoS 2) arrives.
struct QueueEntry {
    std::string client_id;
    uint64_t seq = 0;
    uint64_t message_id = 0;
    uint8_t qos = 0;  // effective QoS for this subscriber
    bool retain =
            false;  // retain flag as delivered (retain-as-published, or retained on subscribe)
    uint32_t subscription_id = 0;
    // MQTT 5: the identifiers of further subscriptions the message matched (one copy carries
    // them all); nearly always empty.
    std::vector<uint32_t> more_subscription_ids;
};

enum class Direction : uint8_t { Outbound = 'O', Inbound = 'I' };

// `inflight`: key (client id, direction, packet id). QoS 2 state that outlives the queue entry:
// Outbound = PUBREC received, PUBREL sent, awaiting PUBCOMP; Inbound = PUBLISH received and
// routed, PUBREC sent, awaiting PUBREL (exactly-once on the inbound side).
struct InflightRecord {
    std::string client_id;
    Direction direction = Direction::Outbound;
    uint16_t packet_id = 0;
    int64_t at_ms = 0;
};

// `retained`: key topic. Holds the message itself (not reference-counted).
struct RetainedRecord {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    std::string properties;
    int64_t stored_at_ms = 0;
    int64_t expiry_at_ms = 0;  // 0 = no expiry
};

// `routes`: key topic filter; the node that has subscribers for it.
struct RouteRecord {
    std::string topic_filter;
    std::string node;
};

// `users`: REST admin users. The hash is a salted, slow KDF string, never the password.
struct UserRecord {
    std::string username;
    std::string password_hash;
    std::string tags;
    int64_t created_at_ms = 0;
};

// `config`: one hot configuration value (also plugin state: "plugin.<name>.<key>").
struct ConfigRecord {
    std::string key;
    std::string value;
};

// Exact per-session counts, kept in the same batches as the data they count.
struct SessionCounts {
    uint64_t subscriptions = 0;
    uint64_t queued = 0;          // entries in `queues` for the session
    uint64_t awaiting_rel = 0;    // inbound QoS 2 records
    uint64_t awaiting_comp = 0;   // outbound QoS 2 records (PUBREL sent)
    uint64_t enqueued_total = 0;  // every enqueue ever (EMQ's enqueue_msg)
    uint64_t dropped_total = 0;   // dropped from the queue (mqueue_dropped, contract 6)
    uint64_t next_seq = 0;        // one past the highest seq ever enqueued (0 when none)
};

}  // namespace mqttd::storage
