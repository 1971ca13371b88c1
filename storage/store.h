// The durable store of mqttd (DESIGN.md, Store and durability contract), on RocksDB.
//
// Writes are logical batches (storage::WriteBatch): each is one atomic change across column
// families. A committer thread merges every batch queued while the previous RocksDB write was
// running into one write (group commit), then completes each writer in order. With
// storage.sync = true each group is fsynced. A failed write or sync makes the store refuse
// every later write (sticky error), logged once by the caller through error().
//
// Reads may run on any thread, concurrently with writes; a paged read is served from one
// RocksDB snapshot so its page is consistent.
//
// Ownership: Store owns the RocksDB instance and the committer thread. close() (or the
// destructor) drains queued batches, stops the committer and closes the database.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/histogram.h"
#include "common/result.h"
#include "storage/records.h"
#include "storage/status.h"
#include "storage/write_batch.h"

namespace mqttd::storage {

struct Options {
    std::string dir;    // RocksDB directory, e.g. "<data_dir>/db"; created if missing
    bool sync = false;  // storage.sync: fsync every group commit
    bool create_if_missing = true;
    // storage.wal_recovery. Strict: a damaged WAL record that complete batches follow (written,
    // so possibly acknowledged, after it) refuses the open with one line naming the file and
    // offset; a torn tail (what a crash or power cut leaves) is dropped with a warning.
    // PointInTime: replay stops at the damage; what is dropped is logged and the damaged WAL
    // files are copied to "<dir>.damaged-<time>" first.
    enum class WalRecovery { Strict, PointInTime };
    WalRecovery wal_recovery = WalRecovery::Strict;
    // --recover: a corrupt MANIFEST or table file (or a failed checksum check) is repaired with
    // RocksDB's RepairDB on a copy; the damaged directory is kept as "<dir>.damaged-<time>".
    // Implies WalRecovery::PointInTime.
    bool repair = false;
    // storage.verify_on_open: read every table file once at open and check its block checksums,
    // so a damaged table stops startup instead of failing a read later.
    bool verify_on_open = true;
    // Warnings of the open (a torn tail dropped, what a recovery dropped or repaired). Optional.
    std::function<void(const std::string&)> on_warning;
    // Called once, on the committer thread, when a write or sync fails and the store becomes
    // sticky-failed (error() then returns the same status). Optional.
    std::function<void(const Status&)> on_sticky_error;
    // Called once (committer thread; a RocksDB thread for a background flush) when a write fails
    // for a full file system (writes then fail with NoSpace until it resumes). Optional.
    std::function<void(const Status&)> on_no_space;
    // Called on the committer thread when the store takes writes again after running out of
    // space, with the number of logical batches refused meanwhile. Optional.
    std::function<void(uint64_t refused)> on_resumed;
    // While out of space: how often DB::Resume() is tried.
    uint32_t resume_interval_ms = 1000;
    // Test hook (fault injection): called on the committer thread before every group write;
    // returning true makes that write fail as an I/O error. Leave empty in production.
    std::function<bool()> fail_write_for_test;
    // Non-empty: open `dir` as a RocksDB secondary instance instead, read-only beside a
    // running primary (which keeps its lock and is never blocked); RocksDB's own files of the
    // secondary (its info log) go to this directory. The store then holds what the primary had
    // written when it was opened; every write completes at once with Stopped. For the
    // inspector (src/tools/inspect.h).
    std::string secondary_dir;
};

// One page request: resume after `cursor` when it is non-empty (one seek), otherwise skip
// `skip` entries from the start; return at most `limit`.
struct PageRequest {
    std::string cursor;
    uint64_t skip = 0;
    uint32_t limit = 20;
};

template <typename T>
struct Page {
    std::vector<T> items;
    std::string next_cursor;  // opaque; empty when the page reached the end
};

// Counted families for REST total_num; exact, kept in the same batches as the data. Count is
// the number of families, not one of them (each family's index is its meta key "count/<n>").
enum class Counted {
    Sessions,
    Subscriptions,
    Messages,
    QueueEntries,
    Retained,
    Routes,
    Users,
    Count
};

// A queue entry joined with the message it references.
struct QueuedMessage {
    QueueEntry entry;
    MessageRecord message;
};

using CommitCallback = std::function<void(const Status&)>;

// What the store measures about itself, for GET /metrics. Latencies in microseconds.
struct StoreStats {
    HistogramSnapshot group_batches;  // logical batches merged into each group commit
    HistogramSnapshot write_us;       // each group's DB::Write (WAL append, and its sync when sync)
    HistogramSnapshot wal_sync_us;    // each fsync/fdatasync of a WAL file, whatever caused it
    uint64_t disk_bytes = 0;          // every file in the store directory (SST, WAL, manifest)
    uint64_t sst_bytes = 0;           // rocksdb.total-sst-files-size, all families
    uint64_t memtable_bytes = 0;      // rocksdb.cur-size-all-mem-tables, all families
    uint64_t pending_compaction_bytes = 0;  // rocksdb.estimate-pending-compaction-bytes
    uint64_t compactions_pending = 0;       // families with rocksdb.compaction-pending = 1
    uint64_t running_compactions = 0;       // rocksdb.num-running-compactions
    uint64_t running_flushes = 0;           // rocksdb.num-running-flushes
    bool sync = false;                      // storage.sync
};

// Whether the store takes writes (REST node_status, GET /metrics).
struct StoreHealth {
    enum class State {
        Writable,
        NoSpace,  // the file system is full: writes fail until DB::Resume() succeeds
        Failed,   // a write failed otherwise (I/O error, read-only, corruption): sticky
    };
    State state = State::Writable;
    std::string error;            // what made it unwritable (empty when Writable)
    uint64_t refused_writes = 0;  // logical batches failed by a write error or refused, since open
    uint64_t resumed = 0;         // times it took writes again after running out of space
};

const char* state_name(StoreHealth::State s);  // "writable", "no_space", "failed"

class Store {
public:
    // Opens (creating if allowed) the store. Errors say what and where in one line:
    // locked by another process, not writable, corrupt, or a newer schema version.
    static Status open(const Options& options, std::unique_ptr<Store>& out);

    virtual ~Store() = default;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Queues `batch` for the next group commit; `done` runs on the committer thread once the
    // batch is durable (or failed). `done` must be cheap: post to the owning thread.
    virtual void commit(WriteBatch batch, CommitCallback done) = 0;
    // Blocking convenience for cold paths (REST, startup): commit and wait.
    virtual Status write(WriteBatch batch) = 0;
    // The sticky error, if any write has failed; Status::ok() otherwise (also while out of space,
    // which is not sticky: health()).
    virtual Status error() const = 0;
    // Whether writes are taken now, and what refused them. Cheap; any thread.
    virtual StoreHealth health() const = 0;
    // True while the group-commit thread has nothing queued or being written: a batch
    // committed now is written at once. A hint (it may change right after); any thread.
    virtual bool commit_idle() const { return false; }
    // Drains pending batches and closes. Idempotent.
    virtual void close() = 0;

    // Monotonic, unique across restarts. Thread-safe.
    virtual uint64_t next_message_id() = 0;

    // --- sessions and subscriptions ---
    virtual std::optional<SessionRecord> get_session(std::string_view client_id) const = 0;
    virtual SessionCounts session_counts(std::string_view client_id) const = 0;
    virtual Page<SessionRecord> sessions(const PageRequest& req) const = 0;
    virtual Status for_each_session(const std::function<void(SessionRecord&&)>& fn) const = 0;
    virtual std::vector<SubscriptionRecord> subscriptions_of(std::string_view client_id) const = 0;
    virtual Page<SubscriptionRecord> subscriptions(const PageRequest& req) const = 0;
    virtual Status for_each_subscription(
            const std::function<void(SubscriptionRecord&&)>& fn) const = 0;

    // --- queues and in-flight state ---
    // Entries of `client_id` with seq >= from_seq, in seq order, joined with their messages.
    virtual std::vector<QueuedMessage> read_queue(std::string_view client_id,
                                                  uint64_t from_seq,
                                                  uint32_t limit) const = 0;
    // A page of the entries of `client_id`, each with its message (message.id == 0 when the
    // entry's message is missing).
    virtual Page<QueuedMessage> queue_page(std::string_view client_id,
                                           const PageRequest& req) const = 0;
    virtual std::vector<InflightRecord> inflight_of(std::string_view client_id) const = 0;
    // The `messages` record of a message held by several entries (a message with one entry is
    // stored inline in it and is read with its entry).
    virtual std::optional<MessageRecord> get_message(uint64_t id) const = 0;

    // --- retained ---
    virtual std::optional<RetainedRecord> get_retained(std::string_view topic) const = 0;
    // Every retained message whose topic matches `filter` (MQTT wildcards '+' and '#', and the
    // rule that a leading wildcard does not match '$' topics), without scanning unrelated
    // topics. `fn` returns false to stop.
    virtual Status match_retained(std::string_view filter,
                                  const std::function<bool(RetainedRecord&&)>& fn) const = 0;
    virtual Page<RetainedRecord> retained(std::string_view filter,
                                          const PageRequest& req) const = 0;

    // --- routes, config, users ---
    virtual Page<RouteRecord> routes(const PageRequest& req) const = 0;
    virtual std::optional<RouteRecord> get_route(std::string_view topic_filter) const = 0;
    virtual std::optional<std::string> get_config(std::string_view key) const = 0;
    virtual std::vector<ConfigRecord> config_with_prefix(std::string_view prefix) const = 0;
    virtual std::optional<UserRecord> get_user(std::string_view username) const = 0;
    virtual Page<UserRecord> users(const PageRequest& req) const = 0;

    // An online, consistent snapshot of the whole store in `dir` (which must not exist):
    // RocksDB's checkpoint, hard links for the table files where the file system allows and
    // copies otherwise, the memtables flushed first. Writes go on meanwhile. Returns the
    // sequence number the snapshot is consistent at: it holds every group commit that
    // completed before the call (storage/backup.h keeps backups of it).
    virtual Result<uint64_t, Status> checkpoint(const std::string& dir) const = 0;

    virtual uint64_t count(Counted what) const = 0;
    // The highest count(what) since the store was opened (monitoring/stats maxima).
    virtual uint64_t count_max(Counted what) const = 0;

    // The store's own figures (StoreStats); reads RocksDB properties and lists the directory,
    // so a cold path (one /metrics scrape). REQUIRES: not closed.
    virtual StoreStats stats() const = 0;

protected:
    Store() = default;
};

}  // namespace mqttd::storage
