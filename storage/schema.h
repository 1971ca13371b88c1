// The store's column families and schema version (internal to storage/). The key and value
// formats of each family are in storage/keys.h and storage/values.h.
//
// SCHEMA VERSION, in meta "schema_version": absent in a new store; a store with a higher
// version refuses to open; an older one is upgraded in place when opened (rocks_open.cpp).
//   1  the families below
//   2  queue entries may hold their message inline (values.h, kInlineQueueFormat)
//   3  queue entries with several subscription ids; sessions with a delayed will
//
// Constants only; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace mqttd::storage {

// Column families, in the order of kCfNames.
enum class Cf : size_t {
    Sessions,
    Subscriptions,
    Messages,
    Queues,
    Inflight,
    Retained,
    Routes,
    Config,
    Users,
    Meta,
    Count
};
inline constexpr size_t kNumCf = static_cast<size_t>(Cf::Count);

inline constexpr std::array<const char*, kNumCf> kCfNames = {
        "sessions", "subscriptions", "messages", "queues", "inflight",
        "retained", "routes",        "config",   "users",  "meta"};

inline constexpr uint32_t kSchemaVersion = 3;

}  // namespace mqttd::storage
