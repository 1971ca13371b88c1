// Key encoding of the store's column families (on-disk format, schema version 1).
//
// FORMAT (keys carry no version byte: the schema version in `meta` covers them).
// Integers are big-endian and fixed width, so byte order equals numeric order. Client ids,
// topics and names are raw UTF-8 bytes; MQTT forbids U+0000 in client ids and topics
// [MQTT-1.5.4-2], so 0x00 is a safe separator and keys of one client sort together. The store
// rejects (InvalidArgument) any write whose client id or topic contains 0x00.
//
//   sessions       client_id
//   subscriptions  client_id 0x00 topic_filter
//   messages       id:BE64
//   queues         client_id 0x00 seq:BE64
//   inflight       client_id 0x00 direction('I'|'O') packet_id:BE16
//   retained       topic with every '/' replaced by 0x00 ("level-encoded"): the keys under
//                  "a/" are exactly the keys with prefix "a" 0x00, so a wildcard match seeks
//                  level by level and skips whole subtrees (see rocks_reads.cpp)
//   routes         topic_filter
//   config         key
//   users          username
//   meta           "schema_version"             -> u32 value
//                  "next_message_id"            -> u64 value (high-water mark of message ids)
//                  "count/" counted:u8           -> u64 value (total_num of a Counted family)
//                  "sc/" client_id               -> SessionCounts value
//                  "rc/" message_id:BE64         -> u64 value (references to the message)
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/records.h"

namespace mqttd::storage::keys {

inline constexpr char kSep = '\0';

// True when `s` can be a key component (contains no 0x00).
bool valid_component(std::string_view s);

// The prefix of every key of one client in subscriptions/queues/inflight: client_id 0x00.
std::string client_prefix(std::string_view client_id);

std::string subscription(std::string_view client_id, std::string_view topic_filter);
// Splits a subscriptions key; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> parse_subscription(std::string_view key);

std::string message(uint64_t id);
std::optional<uint64_t> parse_message(std::string_view key);

std::string queue(std::string_view client_id, uint64_t seq);
// The queues key of (client_id, seq) appended to `out` (a reused buffer on hot paths).
void append_queue(std::string& out, std::string_view client_id, uint64_t seq);
// (client_id, seq) of a queues key.
std::optional<std::pair<std::string, uint64_t>> parse_queue(std::string_view key);

std::string inflight(std::string_view client_id, Direction d, uint16_t packet_id);
std::optional<InflightRecord> parse_inflight(std::string_view key);  // at_ms left 0

// Retained: '/' <-> 0x00.
std::string retained(std::string_view topic);
std::string retained_topic(std::string_view key);

// meta
inline constexpr std::string_view kSchemaVersion = "schema_version";
inline constexpr std::string_view kNextMessageId = "next_message_id";
std::string count(uint8_t counted);
std::string session_counts(std::string_view client_id);
std::string refcount(uint64_t message_id);

// Successor of every key that starts with `prefix` (for iterate_upper_bound); empty means
// "no upper bound" (prefix was all 0xff).
std::string prefix_end(std::string_view prefix);

// Opaque REST cursors: lowercase hex of the last key returned.
std::string to_cursor(std::string_view key);
std::optional<std::string> from_cursor(std::string_view cursor);

}  // namespace mqttd::storage::keys
