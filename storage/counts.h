// Derived counts: state the committer computes from the ops it applies and writes in the same
// DB::Write as the data it describes (internal to storage/). Disk is authoritative; these are
// the in-memory copies and caches of it:
//   Counts              global counts of the Counted families (REST total_num), meta
//                       "count/<n>", loaded at open; with their maxima since open.
//   SessionCountsCache  per-session SessionCounts, meta "sc/<client>", cached on first touch.
//   RefCountCache       references to each `messages` record, meta "rc/<id>", cached on first
//                       touch. Ids at or above its floor (the next message id at open, raised
//                       whenever the cache is trimmed) that it does not hold cannot exist yet,
//                       so a fresh put_message needs no read.
// Deltas is the change one logical batch or one group makes to the global counts;
// MessageIdState the message id counter loaded at open.
//
// Changes reach these only after the group's write succeeded (RocksGroupWriter::publish), so a
// failed batch or write leaves them as they were. Thread-safety: per class below.
#pragma once

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"
#include "storage/records.h"
#include "storage/status.h"
#include "storage/store.h"
#include "storage/string_map.h"

namespace mqttd::storage {

class RocksDb;

// One value per Counted family, indexed by slot(family).
template <typename T>
using PerCounted = std::array<T, static_cast<size_t>(Counted::Count)>;

constexpr size_t slot(Counted c) {
    return static_cast<size_t>(c);
}

// The change a logical batch or a group makes to the global counts, and the highest message id
// it puts (for the persisted high-water mark of message ids). Value type.
struct Deltas {
    PerCounted<int64_t> count{};
    uint64_t max_message_id = 0;
    bool has_message = false;

    int64_t& operator[](Counted c) { return count[slot(c)]; }
    int64_t operator[](Counted c) const { return count[slot(c)]; }
    void add_message(uint64_t id) {
        max_message_id = has_message && max_message_id > id ? max_message_id : id;
        has_message = true;
    }
    void add(const Deltas& o);
};

// The message id counter as loaded at open: the first id this run hands out (past both the
// persisted high-water mark and the last stored message), and meta "next_message_id" as stored
// (0 when absent). Value type.
struct MessageIdState {
    uint64_t next_id = 1;
    uint64_t persisted_next = 0;
};

// Global counts and their maxima. get/max: any thread (relaxed atomics: a recent value, no
// ordering); after/publish: the committer only.
class Counts {
public:
    explicit Counts(const PerCounted<uint64_t>& loaded);
    Counts(const Counts&) = delete;
    Counts& operator=(const Counts&) = delete;

    uint64_t get(Counted c) const {
        assert(c != Counted::Count);
        return now_[slot(c)].load(std::memory_order_relaxed);
    }
    uint64_t max(Counted c) const {
        assert(c != Counted::Count);
        return max_[slot(c)].load(std::memory_order_relaxed);
    }
    // The counts after `d` (a count never goes below 0).
    PerCounted<uint64_t> after(const Deltas& d) const;
    // Makes `totals` (from after(), once written) the current counts and raises the maxima.
    void publish(const PerCounted<uint64_t>& totals);

private:
    PerCounted<std::atomic<uint64_t>> now_{};
    PerCounted<std::atomic<uint64_t>> max_{};
};

// Cache of per-session counts. find: any thread (Store::session_counts); load and Locked: the
// committer (the only writer). Trimmed whole past kMaxEntries.
class SessionCountsCache {
public:
    static constexpr size_t kMaxEntries = size_t{1} << 20;

    // Several lookups or changes under one acquisition of the lock.
    class Locked {
    public:
        const SessionCounts* find(std::string_view client_id) const;
        void put(std::string_view client_id, const SessionCounts& c);
        void erase(std::string_view client_id);
        // Empties the cache when `incoming` more entries would pass kMaxEntries.
        void make_room(size_t incoming);

    private:
        friend class SessionCountsCache;
        explicit Locked(SessionCountsCache& cache) : lock_(cache.mu_), map_(cache.map_) {}
        std::unique_lock<std::mutex> lock_;
        StringMap<SessionCounts>& map_;
    };

    SessionCountsCache() = default;
    SessionCountsCache(const SessionCountsCache&) = delete;
    SessionCountsCache& operator=(const SessionCountsCache&) = delete;

    std::optional<SessionCounts> find(std::string_view client_id) const;
    Locked lock() { return Locked(*this); }
    // The committed counts of `client_id`: cached, else read from meta (absent: all zero).
    Result<SessionCounts, Status> load(const RocksDb& db,
                                       const std::string& dir,
                                       std::string_view client_id) const;

private:
    mutable std::mutex mu_;
    StringMap<SessionCounts> map_;  // guarded by mu_
};

// Cache of the reference counts of live messages. Committer only. Trimmed whole past
// kMaxEntries, raising the floor.
class RefCountCache {
public:
    static constexpr size_t kMaxEntries = size_t{1} << 20;

    explicit RefCountCache(uint64_t id_floor) : floor_(id_floor) {}
    RefCountCache(const RefCountCache&) = delete;
    RefCountCache& operator=(const RefCountCache&) = delete;

    std::optional<uint64_t> find(uint64_t id) const {
        auto it = map_.find(id);
        return it == map_.end() ? std::nullopt : std::optional<uint64_t>(it->second);
    }
    // False when a message `id` that find() does not know cannot be on disk.
    bool may_be_on_disk(uint64_t id) const { return id < floor_; }
    // The references of message `id` in meta: nullopt when it has none (no such message).
    Result<std::optional<uint64_t>, Status> read(const RocksDb& db,
                                                 const std::string& dir,
                                                 uint64_t id) const;
    void put(uint64_t id, uint64_t refs) { map_[id] = refs; }
    void erase(uint64_t id) { map_.erase(id); }
    // Empties the cache when `incoming` more entries would pass kMaxEntries; ids below
    // `next_id` not in the cache are read from disk from then on.
    void make_room(size_t incoming, uint64_t next_id);

private:
    std::unordered_map<uint64_t, uint64_t> map_;  // live messages: id -> references
    uint64_t floor_;
};

}  // namespace mqttd::storage
