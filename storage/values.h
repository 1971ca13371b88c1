// Value encoding of the store's records (on-disk format).
//
// FORMAT, version 1 (kValueFormat). Every value starts with one format-version byte, then
// fixed-width fields in the order below. Integers are big-endian (i64 as two's complement
// u64); bool is one byte 0/1; `str` is a u32 length followed by that many bytes. Fields that
// the key already holds (client id, topic, seq, message id) are not repeated. A reader
// refuses (nullopt -> Corruption) a value with an unknown version, a short field, or trailing
// bytes. COMPATIBILITY: a later version may append fields; it then bumps the version byte and
// keeps a decoder for every older version.
//
//   session        ver u8 protocol_level, u32 expiry_interval_s, i64 created_at_ms,
//                  i64 disconnected_at_ms, u16 max_inflight, u64 deliver_msg, str username
//                  (format 2, kSessionWillFormat, with a delayed will: followed by str topic,
//                  str payload, str properties, u8 qos, bool retain, u32 message_expiry_s,
//                  i64 due_at_ms; schema version 3)
//   subscription   ver u8 qos, u8 flags(bit0 no_local, bit1 retain_as_published),
//                  u8 retain_handling, u32 subscription_id
//   message        ver u8 qos, bool retain, i64 created_at_ms, i64 expiry_at_ms, str topic,
//                  str from_client, str properties, str payload
//   queue entry    ver u64 message_id, u8 qos, bool retain, u32 subscription_id
//                  (format 2, kInlineQueueFormat: followed by the message's fields, as in
//                  `message`; the entry then holds its message and `message_id` names no
//                  `messages` record; formats 3 and 4, kQueueIdsFormat and
//                  kInlineQueueIdsFormat: as 1 and 2 with u16 n, n x u32 further
//                  subscription ids after subscription_id; schema version 3)
//   inflight       ver i64 at_ms
//   retained       ver u8 qos, i64 stored_at_ms, i64 expiry_at_ms, str properties, str payload
//   route          ver str node
//   config         ver str value
//   user           ver str password_hash, str tags, i64 created_at_ms
//   counts         ver u64 subscriptions, queued, awaiting_rel, awaiting_comp, enqueued_total,
//                  dropped_total, next_seq
//   u64 / u32      ver u64 | u32 (meta scalars: counters, refcounts, schema version)
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/records.h"

namespace mqttd::storage::values {

inline constexpr uint8_t kValueFormat = 1;
inline constexpr uint8_t kInlineQueueFormat = 2;
inline constexpr uint8_t kSessionWillFormat = 2;
inline constexpr uint8_t kQueueIdsFormat = 3;
inline constexpr uint8_t kInlineQueueIdsFormat = 4;
// At most this many further subscription ids are kept with a queue entry.
inline constexpr size_t kMaxMoreSubscriptionIds = 65535;

std::string encode(const SessionRecord& r);
std::optional<SessionRecord> decode_session(std::string_view client_id, std::string_view v);

std::string encode(const SubscriptionRecord& r);
std::optional<SubscriptionRecord> decode_subscription(std::string_view client_id,
                                                      std::string_view topic_filter,
                                                      std::string_view v);

std::string encode(const MessageRecord& r);
std::optional<MessageRecord> decode_message(uint64_t id, std::string_view v);

// A queue entry may carry its message inline (a message with one reference is stored once,
// in its entry, with no `messages` record or reference count). decode_queue_entry sets
// *inline_message to it, or to nullopt for an entry that references a `messages` record.
std::string encode(const QueueEntry& r, const MessageRecord* inline_message = nullptr);
std::optional<QueueEntry> decode_queue_entry(
        std::string_view client_id,
        uint64_t seq,
        std::string_view v,
        std::optional<MessageRecord>* inline_message = nullptr);

// What a stored queue entry holds, read without copying its message: the message it references
// (message_id), or its message inline. nullopt exactly when decode_queue_entry refuses the value.
struct QueueEntryRef {
    uint64_t message_id = 0;
    bool inline_message = false;
};
std::optional<QueueEntryRef> peek_queue_entry(std::string_view v);

std::string encode(const InflightRecord& r);
// `rec` holds the key fields (from keys::parse_inflight); fills the value fields.
bool decode_inflight(std::string_view v, InflightRecord& rec);

std::string encode(const RetainedRecord& r);
std::optional<RetainedRecord> decode_retained(std::string_view topic, std::string_view v);

std::string encode(const RouteRecord& r);
std::optional<RouteRecord> decode_route(std::string_view topic_filter, std::string_view v);

std::string encode_config(std::string_view value);
std::optional<std::string> decode_config(std::string_view v);

std::string encode(const UserRecord& r);
std::optional<UserRecord> decode_user(std::string_view username, std::string_view v);

std::string encode(const SessionCounts& c);
std::optional<SessionCounts> decode_counts(std::string_view v);

std::string encode_u64(uint64_t v);
std::optional<uint64_t> decode_u64(std::string_view v);
std::string encode_u32(uint32_t v);
std::optional<uint32_t> decode_u32(std::string_view v);

}  // namespace mqttd::storage::values
