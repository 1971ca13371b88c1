// RocksStore: the RocksDB implementation of storage::Store (internal to storage/; callers use
// Store::open). Formats: storage/keys.h and storage/values.h.
//
// GROUP COMMIT. commit() appends the batch to queue_ and wakes the committer thread when the
// queue was empty. The committer swaps out everything queued (all batches that arrived while
// the previous DB::Write ran), applies their logical ops in order to an in-memory overlay of
// the keys they touch, and issues ONE DB::Write (WriteOptions.sync = Options::sync) of the
// overlay's final state, then runs the callbacks in queue order. Each logical batch applies its
// ops to the group's overlay, journaling the first change to each entry: a batch whose ops are
// invalid is rolled back alone and completes with InvalidArgument; the others commit.
// A failed DB::Write makes the store sticky-failed: error() returns the failure and every
// later commit completes at once with Status::stopped.
//
// ABSORPTION. The overlay keeps one state per key, so the write holds each key once, at its
// state after the group, and a key created and removed within one group is not written at all:
// a message delivered to an online persistent session and acknowledged before the committer
// got to it costs no RocksDB write (its put_message, enqueue, remove_queued and reference
// count cancel out). Each overlay entry remembers whether the key may exist on disk (in_db);
// a removed key is written as a Delete only then.
//
// COUNTS AND REFERENCES. The committer is the only writer, so it keeps derived state in
// memory and writes it in the same DB::Write as the data it describes:
//   - global counts (Counted) in meta "count/<n>", loaded at open (7 keys);
//   - per-session SessionCounts in meta "sc/<client>", loaded lazily on first touch;
//   - message reference counts in meta "rc/<id>", loaded lazily on first touch. Ids at or
//     above id_floor_ (the next id at open, raised whenever the cache is trimmed) that are not
//     in the cache cannot exist yet, so a fresh put_message needs no read.
// Changes are merged into the caches when the write succeeds, so a failed batch or write
// leaves the caches as they were. Existence checks ("does this put create a key?") read the
// overlay, then the DB, so they see earlier batches of the same group. The hot path (put_message,
// enqueue of a new seq) does no read; remove_queued reads the queue entry (from the overlay, the
// recent-entries cache, or the DB) to learn its message.
//
// Thread-safety: commit/write/error/next_message_id and every read are safe from any thread.
// Reads after close() are not allowed (REQUIRES: not closed).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <rocksdb/db.h>

#include "storage/store.h"
#include "storage/values.h"

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
inline constexpr size_t kNumCounted = 7;
// Schema version written in meta; a store with a higher one refuses to open.
inline constexpr uint32_t kSchemaVersion = 3;

class RocksStore final : public Store {
public:
    // REQUIRES: db open with every family of kCfNames; handles[i] is family i (Cf order), the
    // rest (default and unknown families) follow.
    RocksStore(Options options,
               std::unique_ptr<rocksdb::DB> db,
               std::vector<rocksdb::ColumnFamilyHandle*> handles);
    ~RocksStore() override;

    // Loads counts, the message id high-water mark and the schema check; starts the committer.
    Status start();

    void commit(WriteBatch batch, CommitCallback done) override;
    Status write(WriteBatch batch) override;
    Status error() const override;
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

    uint64_t count(Counted what) const override;
    uint64_t count_max(Counted what) const override;

private:
    // Transparent hashing: look a std::string key up by string_view without a copy.
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    template <typename V>
    using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

    struct Pending {
        WriteBatch batch;
        CommitCallback done;
    };
    // Overlay entries carry the stamp of the batch that last journaled them (see Undo).
    struct RcState {
        uint64_t rc = 0;
        bool live = false;   // the message record exists
        bool in_db = false;  // the message and its count may be on disk (before this group)
        uint64_t stamp = 0;
    };
    // A key's state in an overlay: its value when live; in_db when it may be on disk.
    struct Kv {
        std::string value;
        bool live = false;
        bool in_db = true;
        uint64_t stamp = 0;
    };
    using KvMap = StringMap<Kv>;
    struct ScState {
        SessionCounts c;
        bool erased = false;  // delete_session: drop the meta key
        uint64_t stamp = 0;
    };
    using RcMap = std::unordered_map<uint64_t, RcState>;
    using ScMap = StringMap<ScState>;
    // A message put by the batch being applied: how many of its enqueues the batch holds, and
    // its record while it waits for the one enqueue that stores it inline.
    struct NewMessage {
        uint64_t id = 0;
        uint32_t enqueues = 0;
        const MessageRecord* inline_rec = nullptr;
    };
    // Counter changes of one logical batch or one group.
    struct Deltas {
        std::array<int64_t, kNumCounted> delta{};
        uint64_t max_message_id = 0;
        bool has_message = false;
        void add(const Deltas& o);
    };
    // The group's state of every key, reference count and session count its ops touched.
    // Batches apply their ops to it directly; the first change a batch makes to an entry
    // journals the entry's previous state (created, or its old value moved out), so a batch
    // whose ops fail is rolled back alone (undo_batch) and one that succeeds costs no merge.
    struct Overlay : Deltas {
        std::array<KvMap, kNumCf> kv;
        RcMap rc;
        ScMap sc;
    };
    struct KvUndo {
        size_t cf;
        KvMap::value_type* node;
        bool created;
        Kv old;
    };
    struct RcUndo {
        RcMap::value_type* node;
        bool created;
        RcState old;
    };
    struct ScUndo {
        ScMap::value_type* node;
        bool created;
        ScState old;
    };
    struct BatchCtx;

    rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles_[static_cast<size_t>(c)]; }

    void run_committer();
    void process_group(std::vector<Pending>& group);
    void prefetch_removals(const std::vector<Pending>& group);
    Status apply_batch(BatchCtx& ctx, const WriteBatch& batch);
    Status apply_op(BatchCtx& ctx, const op::PutSession& o);
    Status apply_op(BatchCtx& ctx, const op::DeleteSession& o);
    Status apply_op(BatchCtx& ctx, const op::PutSubscription& o);
    Status apply_op(BatchCtx& ctx, const op::DeleteSubscription& o);
    Status apply_op(BatchCtx& ctx, const op::PutMessage& o);
    Status apply_op(BatchCtx& ctx, const op::Enqueue& o);
    Status apply_op(BatchCtx& ctx, const op::RemoveQueued& o);
    Status apply_op(BatchCtx& ctx, const op::PutInflight& o);
    Status apply_op(BatchCtx& ctx, const op::DeleteInflight& o);
    Status apply_op(BatchCtx& ctx, const op::PutRetained& o);
    Status apply_op(BatchCtx& ctx, const op::DeleteRetained& o);
    Status apply_op(BatchCtx& ctx, const op::PutRoute& o);
    Status apply_op(BatchCtx& ctx, const op::DeleteRoute& o);
    Status apply_op(BatchCtx& ctx, const op::PutConfig& o);
    Status apply_op(BatchCtx& ctx, const op::DeleteConfig& o);
    Status apply_op(BatchCtx& ctx, const op::PutUser& o);
    Status apply_op(BatchCtx& ctx, const op::DeleteUser& o);

    // Committer-only helpers.
    // The state of `key` after the ops applied so far: found (live), and in_db (it may be on
    // disk before this group). When found, *value points at its value, valid until the next
    // read_kv or the next change of that key.
    Status read_kv(BatchCtx& ctx,
                   Cf c,
                   std::string_view key,
                   const std::string** value,
                   bool& found,
                   bool& in_db);
    // Stages a put or removal in the batch's overlay; in_db applies when the group has not
    // touched the key yet.
    void put_kv(BatchCtx& ctx, Cf c, std::string_view key, std::string value, bool in_db);
    Kv& staged(BatchCtx& ctx, Cf c, std::string_view key, bool in_db);
    void erase_kv(BatchCtx& ctx, Cf c, std::string_view key, bool in_db);
    // put_kv/erase_kv after reading the key: created (the put made it) / erased (it existed).
    Status put_tracked(BatchCtx& ctx, Cf c, std::string_view key, std::string value, bool& created);
    Status erase_tracked(BatchCtx& ctx, Cf c, std::string_view key, bool& erased);
    Status put_counted(
            BatchCtx& ctx, Cf c, Counted counted, std::string_view key, std::string value);
    Status delete_counted(BatchCtx& ctx, Cf c, Counted counted, std::string_view key);
    // The reference state of message `id` after the ops applied so far; rc_of stages it in the
    // batch's overlay, rc_peek only reads it.
    Status rc_of(BatchCtx& ctx, uint64_t id, RcState*& out);
    Status rc_peek(BatchCtx& ctx, uint64_t id, RcState& out);
    Status sc_of(BatchCtx& ctx, const std::string& client_id, ScState*& out);
    Status unref(BatchCtx& ctx, uint64_t id);
    // Releases what a removed queue entry held (`entry`: values::peek_queue_entry of its stored
    // value): its inline message, or its reference to a `messages` record. An unreadable
    // entry (nullopt) releases nothing.
    Status release_entry(BatchCtx& ctx, const std::optional<values::QueueEntryRef>& entry);
    NewMessage* new_message(uint64_t id);
    // Restores the overlay entries the failed batch changed (its journal, newest first).
    void undo_batch(Overlay& g);
    void fail_sticky(const Status& cause);

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
    std::unique_ptr<rocksdb::DB> db_;
    std::vector<rocksdb::ColumnFamilyHandle*> handles_;
    rocksdb::WriteOptions write_options_;

    // Queue of the committer.
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Pending> queue_;  // guarded by mu_
    bool stopping_ = false;       // guarded by mu_
    bool closed_ = false;         // guarded by mu_
    std::thread committer_;

    mutable std::mutex err_mu_;
    Status sticky_;  // guarded by err_mu_
    std::atomic<bool> failed_{false};

    std::atomic<uint64_t> next_id_{1};
    std::array<std::atomic<uint64_t>, kNumCounted> counts_{};
    std::array<std::atomic<uint64_t>, kNumCounted> counts_max_{};  // written by the committer

    mutable std::mutex sc_mu_;
    StringMap<SessionCounts> sc_cache_;  // guarded by sc_mu_

    // Committer-only state.
    std::unordered_map<uint64_t, uint64_t> rc_cache_;  // live messages: id -> references
    // Queue entries written by recent groups (key -> value), so the remove_queued that usually
    // follows within a group or two needs no DB read; dropped whole past kMaxRecentBytes.
    // Nodes move here from the group's overlay after its write (no copy); every entry is live.
    KvMap recent_queue_;
    // The DB's state, at the start of the group being applied, of the queue entries it
    // removes that may be on disk and are not in recent_queue_ (nullopt: absent); read with one
    // MultiGet by prefetch_removals.
    StringMap<std::optional<std::string>> prefetched_;
    // Scratch of the batch being applied: its new messages (sorted by id), a key buffer, and
    // the value of the last read_kv that came from the DB.
    std::vector<NewMessage> new_messages_;
    uint64_t batch_stamp_ = 0;  // of the batch being applied
    std::vector<KvUndo> kv_undo_;
    std::vector<RcUndo> rc_undo_;
    std::vector<ScUndo> sc_undo_;
    std::string key_buf_;
    std::string read_buf_;
    size_t recent_queue_bytes_ = 0;
    uint64_t id_floor_ = 1;
    uint64_t hwm_persisted_ = 0;
};

}  // namespace mqttd::storage
