// QueueEntryCache; see storage/queue_cache.h.
#include "storage/queue_cache.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <variant>
#include <vector>

#include "storage/keys.h"
#include "storage/rocks_db.h"

namespace mqttd::storage {
namespace {

size_t count_removals(std::span<const PendingCommit> group) {
    size_t removals = 0;
    for (const auto& p : group) {
        for (const Op& o : p.batch.ops()) {
            if (const auto* r = std::get_if<op::RemoveQueued>(&o)) {
                removals += r->seqs.size();
            }
        }
    }
    return removals;
}

}  // namespace

void QueueEntryCache::prefetch(const RocksDb& db,
                               std::span<const PendingCommit> group,
                               SessionCountsCache& sessions) {
    const size_t removals = count_removals(group);
    if (removals == 0) {
        return;
    }
    std::vector<std::string> keys = keys_to_read(group, removals, sessions);
    if (keys.size() < 2) {
        return;  // a single read is as cheap as a MultiGet
    }
    if (!std::is_sorted(keys.begin(), keys.end())) {  // one session's acks come in seq order
        std::sort(keys.begin(), keys.end());
    }
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    read(db, std::move(keys));
}

std::vector<std::string> QueueEntryCache::keys_to_read(std::span<const PendingCommit> group,
                                                       size_t removals,
                                                       SessionCountsCache& sessions) const {
    std::vector<std::string> keys;
    keys.reserve(removals);
    // A seq at or above the session's committed next_seq is not on disk: it was enqueued in
    // this group (most acks of an online session are; the overlay has them) or never. Sessions
    // not in the cache are read whatever the seq.
    auto cached = sessions.lock();
    std::string_view client;
    uint64_t next_seq = 0;
    bool have_client = false;
    for (const auto& p : group) {
        for (const Op& o : p.batch.ops()) {
            const auto* r = std::get_if<op::RemoveQueued>(&o);
            if (r == nullptr) {
                continue;
            }
            if (!have_client || r->client_id != client) {
                client = r->client_id;
                have_client = true;
                const SessionCounts* c = cached.find(client);
                next_seq = c == nullptr ? UINT64_MAX : c->next_seq;
            }
            for (uint64_t seq : r->seqs) {
                if (seq >= next_seq) {
                    continue;
                }
                std::string k = keys::queue(r->client_id, seq);
                if (!recent_.contains(k)) {
                    keys.push_back(std::move(k));
                }
            }
        }
    }
    return keys;
}

void QueueEntryCache::read(const RocksDb& db, std::vector<std::string> keys) {
    // In chunks of at most 32 keys: RocksDB's MultiGet keeps that many key contexts inline and
    // grows a heap vector one element at a time past it.
    constexpr size_t kChunk = 32;
    std::array<rocksdb::Slice, kChunk> slices;
    std::array<rocksdb::PinnableSlice, kChunk> values;
    std::array<rocksdb::Status, kChunk> statuses;
    const rocksdb::ReadOptions ro;
    for (size_t at = 0; at < keys.size(); at += kChunk) {
        const size_t n = std::min(kChunk, keys.size() - at);
        for (size_t i = 0; i < n; ++i) {
            slices[i] = keys[at + i];
            values[i].Reset();
        }
        db.db().MultiGet(ro, db.cf(Cf::Queues), n, slices.data(), values.data(), statuses.data(),
                         /*sorted_input=*/true);
        for (size_t i = 0; i < n; ++i) {
            if (statuses[i].ok()) {
                prefetched_.emplace(std::move(keys[at + i]), values[i].ToString());
            } else if (statuses[i].IsNotFound()) {
                prefetched_.emplace(std::move(keys[at + i]), std::nullopt);
            }  // an error: the applier reads the key again and reports it
        }
    }
    for (auto& v : values) {
        v.Reset();
    }
}

void QueueEntryCache::absorb(Overlay::KvMap written) {
    while (!written.empty()) {
        auto node = written.extract(written.begin());
        if (!node.mapped().state.live) {
            // A key that was not on disk (in_db false: created in this group) is not cached.
            if (node.mapped().state.in_db) {
                if (auto it = recent_.find(node.key()); it != recent_.end()) {
                    recent_.erase(it);
                }
            }
            continue;
        }
        recent_bytes_ += node.key().size() + node.mapped().state.value.size();
        auto r = recent_.insert(std::move(node));
        if (!r.inserted) {
            r.position->second = std::move(r.node.mapped());
        }
    }
    if (recent_bytes_ > kMaxRecentBytes) {
        recent_.clear();
        recent_bytes_ = 0;
    }
}

}  // namespace mqttd::storage
