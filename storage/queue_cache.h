// QueueEntryCache: what the committer knows of the `queues` entries on disk without reading
// RocksDB (internal to storage/). Acknowledging a message removes its queue entry, and the
// removal needs the entry's value (to release its message); this cache answers most of those
// reads:
//   recent      the entries written by recent groups (key -> value): the remove_queued that
//               usually follows within a group or two needs no read. Nodes move in from the
//               group's overlay after its write (no copy); every entry is live. Dropped whole
//               past kMaxRecentBytes.
//   prefetched  the disk state, at the start of the group being applied, of the entries it
//               removes that may be on disk and are not recent (nullopt: absent), read with
//               one MultiGet by prefetch(); dropped at end_group().
// Ownership: owned by the group writer. Thread-safety: none; the committer thread only.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/committer.h"
#include "storage/overlay.h"
#include "storage/string_map.h"

namespace mqttd::storage {

class RocksDb;

class QueueEntryCache {
public:
    static constexpr size_t kMaxRecentBytes = size_t{8} << 20;

    // The committed state of one queues key, when the cache knows it.
    struct Committed {
        bool known = false;                  // false: not cached, read RocksDB
        const std::string* value = nullptr;  // when known: the value, or nullptr when absent
    };

    QueueEntryCache() = default;
    QueueEntryCache(const QueueEntryCache&) = delete;
    QueueEntryCache& operator=(const QueueEntryCache&) = delete;

    Committed find(std::string_view key) const {
        if (auto it = recent_.find(key); it != recent_.end()) {
            return {true, &it->second.state.value};
        }
        if (auto p = prefetched_.find(key); p != prefetched_.end()) {
            return {true, p->second ? &*p->second : nullptr};
        }
        return {};
    }
    // Reads ahead the entries that the remove_queued ops of `group` may find on disk.
    // `sessions` tells which seqs cannot be on disk yet.
    void prefetch(const RocksDb& db,
                  std::span<const PendingCommit> group,
                  SessionCountsCache& sessions);
    // Drops what prefetch() read.
    void end_group() { prefetched_.clear(); }
    // Takes in the queues entries a group wrote (Overlay::take_family(Cf::Queues)), once the
    // write succeeded: live ones become recent, removed ones stop being recent.
    void absorb(Overlay::KvMap written);

private:
    // The queues keys of the group's removals that may be on disk and are not recent, in op
    // order. Holds the session-count cache's lock while it looks.
    std::vector<std::string> keys_to_read(std::span<const PendingCommit> group,
                                          size_t removals,
                                          SessionCountsCache& sessions) const;
    // Reads `keys` (sorted, unique) into prefetched_ with MultiGet.
    void read(const RocksDb& db, std::vector<std::string> keys);

    Overlay::KvMap recent_;
    size_t recent_bytes_ = 0;
    StringMap<std::optional<std::string>> prefetched_;
};

}  // namespace mqttd::storage
