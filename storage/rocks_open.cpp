// Store::open: the data directory, RocksDB options and families, the schema version and the
// state loaded from meta; see storage/rocks_open.h. Formats: storage/keys.h, storage/values.h.
#include "storage/rocks_open.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include "storage/keys.h"
#include "storage/rocks_store.h"
#include "storage/values.h"

namespace mqttd::storage {
namespace {

bool contains(const std::string& s, std::string_view what) {
    return s.find(what) != std::string::npos;
}

// Turns a RocksDB open error into one line saying what and where.
Status open_error(const std::string& dir, const rocksdb::Status& s) {
    const std::string msg = s.ToString();
    if (s.IsIOError() &&
        (contains(msg, "lock file") || contains(msg, "lock hold") || contains(msg, "/LOCK"))) {
        return Status::busy("data directory " + dir + " is locked by another running mqttd (" +
                            msg + ")");
    }
    if (contains(msg, "Permission denied") || contains(msg, "Read-only file system")) {
        return Status::io_error("data directory " + dir + " is not writable (" + msg + ")");
    }
    if (s.IsCorruption()) {
        return Status::corruption("data directory " + dir + " is corrupt (" + msg + ")");
    }
    if (s.IsInvalidArgument() && contains(msg, "does not exist")) {
        return Status::not_found("data directory " + dir + " holds no store (" + msg + ")");
    }
    return Status::io_error("cannot open data directory " + dir + " (" + msg + ")");
}

// The data directory exists (created when allowed), is a directory, and is writable.
Status check_directory(const Options& options) {
    namespace fs = std::filesystem;
    const std::string& dir = options.dir;
    if (dir.empty()) {
        return Status::invalid_argument("storage directory is not set");
    }
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        if (!options.create_if_missing) {
            return Status::not_found("data directory " + dir + " does not exist");
        }
        fs::create_directories(dir, ec);
        if (ec) {
            return Status::io_error("data directory " + dir +
                                    " is not writable (cannot create it: " + ec.message() + ")");
        }
    } else if (!fs::is_directory(dir, ec)) {
        return Status::io_error("data directory " + dir + " is not a directory");
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        return Status::io_error("data directory " + dir + " is not writable (" +
                                std::strerror(errno) + ")");
    }
    return Status::ok();
}

// The prefix of a queues key, client_id 0x00 (keys.h). Each session's entries are inserted in
// increasing seq order, so a memtable insert hinted with the session's previous insert position
// lands next to it instead of searching the skiplist from the top: with sessions interleaved in
// one write, the unhinted search was a third of the committer's time on durable --online.
// Affects memtable insertion only, not the format or reads.
class QueueClientPrefix final : public rocksdb::SliceTransform {
public:
    const char* Name() const override { return "mqttd.QueueClientPrefix"; }
    rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
        return rocksdb::Slice(key.data(), key.size() - 8);
    }
    bool InDomain(const rocksdb::Slice& key) const override {
        return key.size() >= 9 && key[key.size() - 9] == keys::kSep;
    }
};

rocksdb::ColumnFamilyOptions family_options(const std::shared_ptr<rocksdb::Cache>& cache,
                                            bool queues = false) {
    rocksdb::ColumnFamilyOptions cfo;
    if (queues) {
        static const auto kQueuePrefix = std::make_shared<QueueClientPrefix>();
        cfo.memtable_insert_with_hint_prefix_extractor = kQueuePrefix;
    }
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    cfo.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    cfo.write_buffer_size = 32u << 20;
    return cfo;
}

// Times every sync of a WAL file (`*.log`) into StoreTimings::wal_sync_us. RocksDB calls it on
// the syncing thread (the committer, for a sync write) once ShouldBeNotifiedOnFileIO is true;
// it then also reports reads and writes, which the empty defaults ignore.
class WalSyncListener final : public rocksdb::EventListener {
public:
    explicit WalSyncListener(std::shared_ptr<StoreTimings> timings)
        : timings_(std::move(timings)) {}
    bool ShouldBeNotifiedOnFileIO() override { return true; }
    void OnFileSyncFinish(const rocksdb::FileOperationInfo& info) override {
        if (info.path.ends_with(".log")) {
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(info.duration);
            timings_->wal_sync_us.observe(static_cast<uint64_t>(us.count()));
        }
    }

private:
    std::shared_ptr<StoreTimings> timings_;
};

rocksdb::DBOptions db_options(const Options& options) {
    rocksdb::DBOptions dbo;
    dbo.create_if_missing = options.create_if_missing;
    dbo.create_missing_column_families = true;
    dbo.max_background_jobs = 2;
    dbo.keep_log_file_num = 5;
    dbo.db_write_buffer_size = 256u << 20;
    // Recovery after a crash replays every live WAL file into memtables: bounding the WAL
    // (RocksDB flushes the families holding the oldest one past this size) bounds the time
    // from start to the first CONNACK. 1 000 000 queued messages left ~190 MB of WAL and a
    // 3.6 s recovery without it.
    dbo.max_total_wal_size = 16u << 20;
    // One writer (the committer): concurrent memtable inserts would only disable the insert
    // hints of the queues family (family_options).
    dbo.allow_concurrent_memtable_write = false;
    return dbo;
}

// Ours in Cf order, then the default family and every existing family we do not know (a newer
// mqttd's): reopening must name every existing family (DEPENDENCIES.md).
Result<std::vector<rocksdb::ColumnFamilyDescriptor>, Status> family_descriptors(
        const rocksdb::DBOptions& dbo, const std::string& dir) {
    namespace fs = std::filesystem;
    auto cache = rocksdb::NewLRUCache(64u << 20);
    std::vector<std::string> existing;
    std::error_code ec;
    if (fs::exists(fs::path(dir) / "CURRENT", ec)) {
        rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, dir, &existing);
        if (!ls.ok()) {
            return Err{open_error(dir, ls)};
        }
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (size_t i = 0; i < kNumCf; ++i) {
        descriptors.emplace_back(kCfNames[i],
                                 family_options(cache, i == static_cast<size_t>(Cf::Queues)));
    }
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, family_options(cache));
    for (const std::string& name : existing) {
        const bool known = name == rocksdb::kDefaultColumnFamilyName ||
                           std::find(kCfNames.begin(), kCfNames.end(), name) != kCfNames.end();
        if (!known) {
            descriptors.emplace_back(name, family_options(cache));
        }
    }
    return descriptors;
}

// A meta value; nullopt when absent or unreadable.
std::optional<std::string> get_meta(const RocksDb& db, std::string_view key) {
    std::string v;
    rocksdb::Status s = db.db().Get(rocksdb::ReadOptions(), db.cf(Cf::Meta), key, &v);
    if (!s.ok()) {
        return std::nullopt;
    }
    return v;
}

// Refuses a newer schema; writes ours over an older one or none. Version 2 only adds inline
// queue entries, version 3 queue entries with several subscription ids and sessions with a
// delayed will, so older data reads as it is; from then on an older mqttd refuses the
// directory instead of misreading it.
Status check_schema_version(const RocksDb& db, const std::string& dir) {
    uint32_t version = 0;
    if (auto v = get_meta(db, keys::kSchemaVersion)) {
        auto d = values::decode_u32(*v);
        if (!d) {
            return Status::corruption("data directory " + dir +
                                      " is corrupt (unreadable schema version)");
        }
        version = *d;
        if (version > kSchemaVersion) {
            return Status::invalid_argument(
                    "data directory " + dir + " has store schema version " +
                    std::to_string(version) + ", newer than this mqttd supports (" +
                    std::to_string(kSchemaVersion) + "); run a newer mqttd");
        }
    }
    if (version == kSchemaVersion) {
        return Status::ok();
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = db.db().Put(wo, db.cf(Cf::Meta), std::string(keys::kSchemaVersion),
                                    values::encode_u32(kSchemaVersion));
    return s.ok() ? Status::ok() : open_error(dir, s);
}

Result<PerCounted<uint64_t>, Status> load_counts(const RocksDb& db, const std::string& dir) {
    PerCounted<uint64_t> counts{};
    for (size_t i = 0; i < counts.size(); ++i) {
        if (auto v = get_meta(db, keys::count(static_cast<uint8_t>(i)))) {
            auto d = values::decode_u64(*v);
            if (!d) {
                return Err{
                        Status::corruption("data directory " + dir + " is corrupt (bad counter)")};
            }
            counts[i] = *d;
        }
    }
    return counts;
}

// Next message id: past both the persisted high-water mark and the last stored message.
Result<MessageIdState, Status> load_message_ids(const RocksDb& db, const std::string& dir) {
    MessageIdState ids;
    if (auto v = get_meta(db, keys::kNextMessageId)) {
        if (auto d = values::decode_u64(*v)) {
            ids.next_id = std::max(ids.next_id, *d);
            ids.persisted_next = *d;
        }
    }
    std::unique_ptr<rocksdb::Iterator> it(
            db.db().NewIterator(rocksdb::ReadOptions(), db.cf(Cf::Messages)));
    it->SeekToLast();
    if (it->Valid()) {
        if (auto id = keys::parse_message(it->key().ToStringView())) {
            ids.next_id = std::max(ids.next_id, *id + 1);
        }
    }
    if (!it->status().ok()) {
        return Err{open_error(dir, it->status())};
    }
    return ids;
}

}  // namespace

Result<RocksDb, Status> open_rocks_db(const Options& options) {
    const std::string& dir = options.dir;
    Status checked = check_directory(options);
    if (!checked.is_ok()) {
        return Err{std::move(checked)};
    }
    rocksdb::DBOptions dbo = db_options(options);
    auto timings = std::make_shared<StoreTimings>();
    dbo.listeners.push_back(std::make_shared<WalSyncListener>(timings));
    auto descriptors = family_descriptors(dbo, dir);
    if (!descriptors) {
        return Err{descriptors.error()};
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(dbo, dir, *descriptors, &handles, &raw);
    if (!s.ok()) {
        return Err{open_error(dir, s)};
    }
    return RocksDb(std::unique_ptr<rocksdb::DB>(raw), std::move(handles), std::move(timings));
}

Result<StoredState, Status> load_stored_state(const RocksDb& db, const std::string& dir) {
    Status schema = check_schema_version(db, dir);
    if (!schema.is_ok()) {
        return Err{std::move(schema)};
    }
    auto counts = load_counts(db, dir);
    if (!counts) {
        return Err{counts.error()};
    }
    auto ids = load_message_ids(db, dir);
    if (!ids) {
        return Err{ids.error()};
    }
    return StoredState{*counts, *ids};
}

Status Store::open(const Options& options, std::unique_ptr<Store>& out) {
    auto db = open_rocks_db(options);
    if (!db) {
        return db.error();
    }
    auto state = load_stored_state(*db, options.dir);
    if (!state) {
        return state.error();  // `db` closes as it goes
    }
    auto store = std::make_unique<RocksStore>(options, std::move(*db), *state);
    store->start();
    out = std::move(store);
    return Status::ok();
}

}  // namespace mqttd::storage
