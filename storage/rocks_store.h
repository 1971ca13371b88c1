// RocksStore: the RocksDB implementation of storage::Store (internal to storage/; callers use
// Store::open). Formats: storage/keys.h and storage/values.h; the map of the files that
// implement it is storage/README.md.
//
// GROUP COMMIT. commit() appends the batch to the Committer's queue and wakes its thread when
// the queue was empty. The committer swaps out everything queued (all batches that arrived
// while the previous DB::Write ran) and hands it to the RocksGroupWriter, which applies the
// batches' logical ops in order (OpApplier) to an in-memory Overlay of the keys they touch and
// issues ONE DB::Write (WriteOptions.sync = Options::sync) of the overlay's final state; then
// the committer runs the callbacks in queue order. Each logical batch applies its ops to the
// group's overlay, which journals the first change to each entry: a batch whose ops are invalid
// is rolled back alone and completes with InvalidArgument; the others commit. A failed
// DB::Write makes the store sticky-failed: error() returns the failure and every later commit
// completes at once with Status::stopped; except a full file system, which makes writes fail with
// NoSpace only until DB::Resume() succeeds (committer.h, OUT OF SPACE).
//
// ABSORPTION. The overlay keeps one state per key, so the write holds each key once, at its
// state after the group, and a key created and removed within one group is not written at all:
// a message delivered to an online persistent session and acknowledged before the committer
// got to it costs no RocksDB write (its put_message, enqueue, remove_queued and reference
// count cancel out). Each overlay entry remembers whether the key may exist on disk (in_db);
// a removed key is written as a Delete only then.
//
// COUNTS AND REFERENCES (counts.h). The committer is the only writer, so it keeps derived state
// in memory and writes it in the same DB::Write as the data it describes:
//   - global counts (Counted) in meta "count/<n>", loaded at open (one key per family);
//   - per-session SessionCounts in meta "sc/<client>", loaded lazily on first touch;
//   - message reference counts in meta "rc/<id>", loaded lazily on first touch. Ids at or
//     above the cache's floor (the next id at open, raised whenever the cache is trimmed) that
//     are not in the cache cannot exist yet, so a fresh put_message needs no read.
// Changes are merged into the caches when the write succeeds, so a failed batch or write
// leaves the caches as they were. Existence checks ("does this put create a key?") read the
// overlay, then the DB, so they see earlier batches of the same group. The hot path (put_message,
// enqueue of a new seq) does no read; remove_queued reads the queue entry (from the overlay, the
// recent-entries cache, or the DB) to learn its message.
//
// Thread-safety: commit/write/error/next_message_id and every read are safe from any thread.
// Reads after close() are not allowed (REQUIRES: not closed).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>

#include "storage/committer.h"
#include "storage/counts.h"
#include "storage/group_writer.h"
#include "storage/retained_index.h"
#include "storage/rocks_db.h"
#include "storage/rocks_open.h"
#include "storage/schema.h"
#include "storage/store.h"

namespace mqttd::storage {

class RocksStore final : public Store {
public:
    // `db` open with every family of kCfNames; `state` loaded from it (rocks_open.h).
    RocksStore(Options options, RocksDb db, const StoredState& state);
    ~RocksStore() override;

    // Starts the committer. REQUIRES: called once, by the opener.
    void start();

    void commit(WriteBatch batch, CommitCallback done) override;
    Status write(WriteBatch batch) override;
    Status error() const override;
    StoreHealth health() const override;
    bool commit_idle() const override { return committer_.idle(); }
    void close() override;
    uint64_t next_message_id() override;

    std::optional<SessionRecord> get_session(std::string_view client_id) const override;
    SessionCounts session_counts(std::string_view client_id) const override;
    Page<SessionRecord> sessions(const PageRequest& req) const override;
    Status for_each_session(const std::function<void(SessionRecord&&)>& fn) const override;
    std::vector<SubscriptionRecord> subscriptions_of(std::string_view client_id) const override;
    Page<SubscriptionRecord> subscriptions(const PageRequest& req) const override;
    Status for_each_subscription(
            const std::function<void(SubscriptionRecord&&)>& fn) const override;

    std::vector<QueuedMessage> read_queue(std::string_view client_id,
                                          uint64_t from_seq,
                                          uint32_t limit) const override;
    Page<QueuedMessage> queue_page(std::string_view client_id,
                                   const PageRequest& req) const override;
    std::vector<InflightRecord> inflight_of(std::string_view client_id) const override;
    std::optional<MessageRecord> get_message(uint64_t id) const override;

    std::optional<RetainedRecord> get_retained(std::string_view topic) const override;
    Status match_retained(std::string_view filter,
                          const std::function<bool(RetainedRecord&&)>& fn) const override;
    Page<RetainedRecord> retained(std::string_view filter, const PageRequest& req) const override;

    Page<RouteRecord> routes(const PageRequest& req) const override;
    std::optional<RouteRecord> get_route(std::string_view topic_filter) const override;
    std::optional<std::string> get_config(std::string_view key) const override;
    std::vector<ConfigRecord> config_with_prefix(std::string_view prefix) const override;
    std::optional<UserRecord> get_user(std::string_view username) const override;
    Page<UserRecord> users(const PageRequest& req) const override;

    Result<uint64_t, Status> checkpoint(const std::string& dir) const override;

    uint64_t count(Counted what) const override;
    uint64_t count_max(Counted what) const override;
    StoreStats stats() const override;

private:
    // Reads (rocks_reads.cpp).
    std::optional<std::string> get_raw(Cf c, std::string_view key) const;
    // Fills the message of each entry that does not hold it inline (message.id == 0) from
    // `messages`; one MultiGet.
    void join_messages(const rocksdb::ReadOptions& ro, std::vector<QueuedMessage>& entries) const;
    // Visits retained records matching `filter` with key > after (when after != nullptr), in
    // key order, until fn returns false.
    Status walk_retained(
            std::string_view filter,
            const rocksdb::ReadOptions& ro,
            const std::string* after,
            const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
    template <typename T, typename Decode>
    Page<T> page_of(Cf c, std::string_view prefix, const PageRequest& req, Decode decode) const;

    const Options options_;
    RocksDb db_;
    Counts counts_;
    SessionCountsCache session_counts_;
    std::atomic<uint64_t> next_id_;
    RetainedIndex retained_index_;  // filled from `retained` at open, kept by writer_
    RocksGroupWriter writer_;       // refers to the members above
    Committer committer_;           // runs writer_; declared last, so stopped first
};

}  // namespace mqttd::storage
