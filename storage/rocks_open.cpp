// Store::open: the data directory, RocksDB options and families, the schema version and the
// state loaded from meta; see storage/rocks_open.h. Formats: storage/keys.h, storage/values.h.
#include "storage/rocks_open.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/wal_filter.h>
#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/rocks_store.h"
#include "storage/values.h"
#include "storage/wal_scan.h"

namespace mqttd::storage {
namespace {

bool contains(const std::string& s, std::string_view what) {
    return s.find(what) != std::string::npos;
}

void warn(const Options& options, const std::string& line) {
    if (options.on_warning) {
        options.on_warning(line);
    }
}

// The current MANIFEST of `dir`, from CURRENT; empty when unreadable.
std::string current_manifest(const std::string& dir) {
    std::ifstream in(dir + "/CURRENT");
    std::string name;
    std::getline(in, name);
    return name.empty() ? std::string() : dir + "/" + name;
}

// A corrupt store: one line with the file (RocksDB names a table file; a MANIFEST it does not
// always name, so ours is scanned for the offset) and the way out.
Status corruption_error(const std::string& dir, const rocksdb::Status& s) {
    std::string line = "data directory " + dir + " is corrupt (" + s.ToString() + ")";
    if (!contains(line, ".sst") && !contains(line, "MANIFEST")) {
        const std::string manifest = current_manifest(dir);
        if (!manifest.empty()) {
            if (auto at = first_damage_in_log(manifest)) {
                line += ": " + manifest + " is damaged at offset " + std::to_string(*at);
            }
        }
    }
    return Status::corruption(line +
                              "; start with --recover to repair a copy with RocksDB's repair "
                              "(the damaged files are kept)");
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
        return corruption_error(dir, s);
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
    if (!options.secondary_dir.empty()) {
        // Read-only: the store must be there; nothing of ours is written into it.
        if (!fs::exists(fs::path(dir) / "CURRENT", ec)) {
            return Status::not_found("data directory " + dir + " holds no store");
        }
        return Status::ok();
    }
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

// The meta keys a group commit rewrites again and again: a session's counts ("sc/"), the global
// counts and the message id high-water mark. Each new version of a key sorts right before its
// previous one (same user key, higher sequence number), so an insert hinted with the key's own
// previous position touches a few nodes; unhinted, each is a search from the top of a memtable
// that holds every earlier version: in durable publishing into 300 offline sessions, the
// sessions' counts (a third of the group's inserts) cost as much as the queue entries (12 k
// against 3.7 k instructions per insert). Reference counts ("rc/") are left out: most are
// written once or twice, and each hinted key keeps a splice in the memtable.
class MetaKeyHint final : public rocksdb::SliceTransform {
public:
    const char* Name() const override { return "mqttd.MetaKeyHint"; }
    rocksdb::Slice Transform(const rocksdb::Slice& key) const override { return key; }
    bool InDomain(const rocksdb::Slice& key) const override {
        return key.starts_with("sc/") || key.starts_with("count/") ||
               key == rocksdb::Slice(keys::kNextMessageId.data(), keys::kNextMessageId.size());
    }
};

rocksdb::ColumnFamilyOptions family_options(const std::shared_ptr<rocksdb::Cache>& cache,
                                            std::optional<Cf> family = std::nullopt) {
    rocksdb::ColumnFamilyOptions cfo;
    if (family == Cf::Queues) {
        static const auto kQueuePrefix = std::make_shared<QueueClientPrefix>();
        cfo.memtable_insert_with_hint_prefix_extractor = kQueuePrefix;
    } else if (family == Cf::Meta) {
        static const auto kMetaHint = std::make_shared<MetaKeyHint>();
        cfo.memtable_insert_with_hint_prefix_extractor = kMetaHint;
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
    // A full file system: RocksDB would poll for free space itself (its SstFileManager, every
    // few seconds, and only past a reserve); the committer resumes on its own timer instead
    // (committer.h, OUT OF SPACE), so recovery does not depend on the size of the disk.
    void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/,
                              rocksdb::Status bg_error,
                              bool* auto_recovery) override {
        if (!bg_error.IsNoSpace()) {
            return;
        }
        *auto_recovery = false;
        std::lock_guard lock(timings_->hook_mu);
        if (timings_->on_background_no_space) {
            timings_->on_background_no_space(bg_error.ToString());
        }
    }

private:
    std::shared_ptr<StoreTimings> timings_;
};

// RocksDB's info log (<dir>/LOG) written with stdio. RocksDB's own file logger writes through
// its WritableFileWriter, which after one failed write (a full or read-only file system)
// asserts on the next one, and Debian's librocksdb is built with assertions on: the first
// error line RocksDB logs about a full disk would abort mqttd. Here a line that cannot be
// written is lost, nothing else. Rotated at kMaxBytes into LOG.old (one kept).
class InfoLog final : public rocksdb::Logger {
public:
    static constexpr long kMaxBytes = 16L << 20;

    explicit InfoLog(std::string dir)
        : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), path_(std::move(dir) + "/LOG") {}
    ~InfoLog() override {
        if (file_ != nullptr) {
            std::fclose(file_);
        }
    }
    using rocksdb::Logger::Logv;
    void Logv(const char* format, va_list ap) override {
        char line[2048];
        va_list copy;
        va_copy(copy, ap);
        // RocksDB's own format strings: not literals here, by the Logger interface.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        const int n = std::vsnprintf(line, sizeof line, format, copy);
#pragma GCC diagnostic pop
        va_end(copy);
        if (n < 0) {
            return;
        }
        const auto now = std::chrono::system_clock::now();
        const std::time_t secs = std::chrono::system_clock::to_time_t(now);
        const auto us =
                std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch())
                        .count() %
                1000000;
        std::tm tm{};
        ::localtime_r(&secs, &tm);
        std::lock_guard lock(mu_);
        if (file_ == nullptr || std::ftell(file_) > kMaxBytes) {
            reopen();
        }
        if (file_ == nullptr) {
            return;
        }
        std::fprintf(file_, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %s\n", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     static_cast<long>(us), line);
        std::fflush(file_);
        std::clearerr(file_);
    }

private:
    void reopen() {
        if (file_ != nullptr) {
            std::fclose(file_);
            file_ = nullptr;
            std::rename(path_.c_str(), (path_ + ".old").c_str());
        }
        file_ = std::fopen(path_.c_str(), "ae");
    }

    const std::string path_;
    std::mutex mu_;
    std::FILE* file_ = nullptr;  // guarded by mu_
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
    // hints of the queues and meta families (family_options).
    dbo.allow_concurrent_memtable_write = false;
    if (options.secondary_dir.empty()) {
        if (options.create_if_missing) {
            std::error_code ec;
            std::filesystem::create_directories(options.dir, ec);  // RocksDB would, for its LOG
        }
        dbo.info_log = std::make_shared<InfoLog>(options.dir);
    } else {
        // RocksDB requires it of a secondary: the primary may delete a table file it still
        // reads, which an open descriptor keeps readable.
        dbo.max_open_files = -1;
        dbo.create_if_missing = false;
        dbo.create_missing_column_families = false;
    }
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
        descriptors.emplace_back(kCfNames[i], family_options(cache, static_cast<Cf>(i)));
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
Status check_schema_version(const RocksDb& db, const std::string& dir, bool read_only) {
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
    if (version == kSchemaVersion || read_only) {
        return Status::ok();  // an older version reads as it is (see above)
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

// "<dir>.damaged-<UTC time>", with a counter when that exists already.
std::string damaged_copy_path(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::time_t now = std::time(nullptr);
    std::tm t{};
    gmtime_r(&now, &t);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &t);
    const std::string base = dir + ".damaged-" + stamp;
    std::string path = base;
    std::error_code ec;
    for (int i = 1; fs::exists(path, ec); ++i) {
        path = base + "." + std::to_string(i);
    }
    return path;
}

std::string seq_range(uint64_t first, uint64_t last) {
    return first == last ? std::to_string(first)
                         : std::to_string(first) + "-" + std::to_string(last);
}

// Reads the WAL before RocksDB replays it (storage/wal_scan.h): a torn tail is dropped with a
// warning; damage that complete batches follow refuses the open in Strict mode, and in
// PointInTime mode is dropped knowingly, the WAL files kept in a copy first.
Status check_wal(const Options& options) {
    namespace fs = std::filesystem;
    const std::string& dir = options.dir;
    const WalScan scan = scan_wal(dir);
    if (!scan.error.empty()) {
        return Status::io_error("cannot read the WAL of data directory " + dir + " (" + scan.error +
                                ")");
    }
    if (!scan.damage) {
        return Status::ok();
    }
    const WalDamage& d = *scan.damage;
    const std::string where =
            "WAL file " + d.file + " is damaged at offset " + std::to_string(d.offset);
    if (d.torn_tail()) {
        warn(options, where + ", with no complete write after it: a torn tail, as a crash or " +
                              "power cut leaves; dropped, the store resumes at sequence " +
                              std::to_string(d.last_good_seq));
        return Status::ok();
    }
    const std::string after = std::to_string(d.batches_after) + " write batches (sequences " +
                              seq_range(d.first_seq_after, d.last_seq_after) + ")";
    if (options.wal_recovery == Options::WalRecovery::Strict && !options.repair) {
        return Status::corruption(
                where + " and " + after +
                " were written after it, so acknowledged data is behind the damage; start with " +
                "--recover (or storage.wal_recovery = point_in_time) to drop them knowingly");
    }
    const std::string copy = damaged_copy_path(dir);
    std::error_code ec;
    fs::create_directories(copy, ec);
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".log" && !ec) {
            fs::copy_file(entry.path(), fs::path(copy) / entry.path().filename(), ec);
        }
    }
    if (ec) {
        return Status::io_error("cannot keep a copy of the damaged WAL of " + dir + " in " + copy +
                                " (" + ec.message() + "); nothing was dropped");
    }
    warn(options, where + ": point-in-time recovery keeps sequences up to " +
                          std::to_string(d.last_good_seq) + " and drops the damaged record and " +
                          after + " after it; the WAL files as they were are kept in " + copy);
    return Status::ok();
}

// Stops replay at a gap in the sequence numbers, so point-in-time recovery keeps a prefix of
// the writes: RocksDB's reader skips the rest of a block after a zeroed header without
// reporting it, and would replay what follows the hole.
class GapStop final : public rocksdb::WalFilter {
public:
    const char* Name() const override { return "mqttd.GapStop"; }
    WalProcessingOption LogRecordFound(unsigned long long /*log_number*/,
                                       const std::string& /*log_file_name*/,
                                       const rocksdb::WriteBatch& batch,
                                       rocksdb::WriteBatch* /*new_batch*/,
                                       bool* /*batch_changed*/) override {
        const std::string& rep = batch.Data();
        uint64_t seq = 0;
        for (size_t i = 0; i < 8 && i < rep.size(); ++i) {
            seq |= static_cast<uint64_t>(static_cast<uint8_t>(rep[i])) << (8 * i);
        }
        if (next_ != 0 && seq != next_) {
            stopped_at_ = next_;
            return WalProcessingOption::kStopReplay;
        }
        next_ = seq + batch.Count();
        return WalProcessingOption::kContinueProcessing;
    }
    // The first missing sequence number when replay stopped at a gap; 0 otherwise.
    uint64_t stopped_at() const { return stopped_at_; }

private:
    uint64_t next_ = 0;
    uint64_t stopped_at_ = 0;
};

// One DB::Open with point-in-time WAL recovery (check_wal has decided what may be dropped),
// then the checksum check of every table when asked.
Result<RocksDb, Status> open_once(const Options& options) {
    const std::string& dir = options.dir;
    rocksdb::DBOptions dbo = db_options(options);
    GapStop gaps;
    dbo.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    // Only the primary stops at a gap: a secondary reads WAL files the running primary may
    // flush and delete meanwhile, so its gaps are the primary's progress, caught up below.
    if (options.secondary_dir.empty()) {
        dbo.wal_filter = &gaps;
    }
    auto timings = std::make_shared<StoreTimings>();
    dbo.listeners.push_back(std::make_shared<WalSyncListener>(timings));
    auto descriptors = family_descriptors(dbo, dir);
    if (!descriptors) {
        return Err{descriptors.error()};
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = options.secondary_dir.empty()
                                ? rocksdb::DB::Open(dbo, dir, *descriptors, &handles, &raw)
                                : rocksdb::DB::OpenAsSecondary(dbo, dir, options.secondary_dir,
                                                               *descriptors, &handles, &raw);
    if (!s.ok()) {
        return Err{open_error(dir, s)};
    }
    RocksDb db(std::unique_ptr<rocksdb::DB>(raw), std::move(handles), std::move(timings));
    if (!options.secondary_dir.empty()) {
        // The open read the MANIFEST, then the WAL files: a flush of the primary in between
        // moved writes into a table file this version does not list yet. One catch-up reads
        // the MANIFEST and the WAL again, so everything acknowledged before the open is seen.
        s = db.db().TryCatchUpWithPrimary();
        if (!s.ok()) {
            return Err{open_error(dir, s)};
        }
    }
    if (gaps.stopped_at() != 0) {
        warn(options, "store " + dir + ": WAL replay stopped at a gap, sequence " +
                              std::to_string(gaps.stopped_at()) + " is missing; later writes " +
                              "were dropped");
    }
    if (options.verify_on_open) {
        rocksdb::Status v = db.db().VerifyChecksum();
        if (!v.ok()) {
            return Err{open_error(dir, v)};
        }
    }
    return db;
}

// The key of seed_family_tables' tables: mqttd never writes an empty key.
constexpr std::string_view kSeedKey = "";

// The seed keys of seed_family_tables, deleted from the repaired store.
Status remove_seed_keys(const Options& options, const std::string& work) {
    Options o = options;
    o.dir = work;
    rocksdb::DBOptions dbo = db_options(o);
    auto descriptors = family_descriptors(dbo, work);
    if (!descriptors) {
        return descriptors.error();
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(dbo, work, *descriptors, &handles, &raw);
    if (!s.ok()) {
        return open_error(work, s);
    }
    RocksDb db(std::unique_ptr<rocksdb::DB>(raw), std::move(handles));
    rocksdb::WriteBatch batch;
    for (size_t i = 0; i < kNumCf && s.ok(); ++i) {
        s = batch.Delete(db.cf(static_cast<Cf>(i)), kSeedKey);
    }
    if (s.ok()) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        s = db.db().Write(wo, &batch);
    }
    return s.ok() ? Status::ok() : open_error(work, s);
}

// Table files in `dir` (RepairDB moves those it cannot read to lost/, with the old MANIFESTs
// and the WAL files it converted).
size_t count_tables(const std::string& dir) {
    std::error_code ec;
    size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        n += entry.path().extension() == ".sst" ? 1 : 0;
    }
    return n;
}

// The number in a RocksDB file name ("000012.sst" -> 12); 0 for other names.
uint64_t file_number(const std::filesystem::path& p) {
    const std::string stem = p.stem().string();
    if (stem.empty() ||
        !std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return 0;
    }
    return std::stoull(stem);
}

// RepairDB creates a column family only from the table files that name it, so the WAL's
// writes to a family that was never flushed would be dropped (a documented limitation; with
// 32 MiB memtables that is most of a young store). A fresh store made here, with the same
// families created in the same order (so the same family ids as `work`'s), gets one table per
// family holding only the empty key (which mqttd never writes; removed again after the
// repair, remove_seed_keys), compacted so that its sequence number is 0, which RocksDB's L0
// ordering check accepts beside any other file; copied into `work` with file numbers above its
// own, they make every family exist before the WAL is converted.
Status seed_family_tables(const Options& options, const std::string& work) {
    namespace fs = std::filesystem;
    const std::string seed_dir = work + ".families";
    std::error_code ec;
    fs::remove_all(seed_dir, ec);
    {
        Options seed_options = options;
        seed_options.dir = seed_dir;
        rocksdb::DBOptions dbo = db_options(seed_options);
        dbo.create_if_missing = true;
        auto descriptors = family_descriptors(dbo, seed_dir);
        if (!descriptors) {
            return descriptors.error();
        }
        std::vector<rocksdb::ColumnFamilyHandle*> handles;
        rocksdb::DB* raw = nullptr;
        rocksdb::Status s = rocksdb::DB::Open(dbo, seed_dir, *descriptors, &handles, &raw);
        if (!s.ok()) {
            return open_error(seed_dir, s);
        }
        RocksDb seed(std::unique_ptr<rocksdb::DB>(raw), std::move(handles));
        for (size_t i = 0; i < kNumCf && s.ok(); ++i) {
            rocksdb::ColumnFamilyHandle* cf = seed.cf(static_cast<Cf>(i));
            s = seed.db().Put(rocksdb::WriteOptions(), cf, kSeedKey, "");
            if (s.ok()) {
                s = seed.db().Flush(rocksdb::FlushOptions(), cf);
            }
            if (s.ok()) {
                rocksdb::CompactRangeOptions co;
                co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
                s = seed.db().CompactRange(co, cf, nullptr, nullptr);
            }
        }
        if (!s.ok()) {
            return open_error(seed_dir, s);
        }
    }
    uint64_t next = 0;
    for (const auto& entry : fs::directory_iterator(work, ec)) {
        next = std::max(next, file_number(entry.path()));
    }
    for (const auto& entry : fs::directory_iterator(seed_dir, ec)) {
        if (entry.path().extension() == ".sst") {
            char name[32];
            std::snprintf(name, sizeof name, "%06llu.sst", static_cast<unsigned long long>(++next));
            fs::copy_file(entry.path(), fs::path(work) / name, ec);
            if (ec) {
                break;
            }
        }
    }
    std::error_code ignored;
    fs::remove_all(seed_dir, ignored);
    if (ec) {
        return Status::io_error("cannot prepare the repair of " + options.dir + " (" +
                                ec.message() + ")");
    }
    return Status::ok();
}

// --recover on a corrupt store: RocksDB's RepairDB runs on a copy (table files hard-linked,
// they are immutable; the rest copied), then the copy takes the directory's place and the
// damaged directory is kept beside it. The original is never written.
Status repair_into_copy(const Options& options) {
    namespace fs = std::filesystem;
    const std::string& dir = options.dir;
    const std::string work = dir + ".repairing";
    std::error_code ec;
    fs::remove_all(work, ec);
    fs::create_directories(work, ec);
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (ec) {
            break;
        }
        const fs::path to = fs::path(work) / entry.path().filename();
        if (entry.is_directory(ec)) {
            fs::copy(entry.path(), to, fs::copy_options::recursive, ec);
        } else if (entry.path().filename() != "LOCK") {
            if (entry.path().extension() == ".sst") {
                fs::create_hard_link(entry.path(), to, ec);
            }
            if (entry.path().extension() != ".sst" || ec) {
                ec.clear();
                fs::copy_file(entry.path(), to, ec);
            }
        }
        if (ec) {
            break;
        }
    }
    if (ec) {
        return Status::io_error("cannot copy data directory " + dir + " to " + work +
                                " for the repair (" + ec.message() + ")");
    }
    if (Status seeded = seed_family_tables(options, work); !seeded.is_ok()) {
        return seeded;
    }
    const size_t lost_before = count_tables(work + "/lost");
    const rocksdb::DBOptions dbo = db_options(options);
    auto cache = rocksdb::NewLRUCache(8u << 20);
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (size_t i = 0; i < kNumCf; ++i) {
        families.emplace_back(kCfNames[i], family_options(cache, static_cast<Cf>(i)));
    }
    families.emplace_back(rocksdb::kDefaultColumnFamilyName, family_options(cache));
    rocksdb::Status s = rocksdb::RepairDB(work, dbo, families, family_options(cache));
    if (!s.ok()) {
        return Status::corruption("data directory " + dir + " could not be repaired (" +
                                  s.ToString() + "); the copy is in " + work +
                                  ", the original is untouched");
    }
    if (Status removed = remove_seed_keys(options, work); !removed.is_ok()) {
        return removed;
    }
    const std::string kept = damaged_copy_path(dir);
    fs::rename(dir, kept, ec);
    if (!ec) {
        fs::rename(work, dir, ec);
    }
    if (ec) {
        return Status::io_error("repaired copy " + work + " could not take the place of " + dir +
                                " (" + ec.message() + ")");
    }
    const size_t lost = count_tables(dir + "/lost") - lost_before;
    warn(options, "store " + dir + " repaired by RocksDB's RepairDB: " + std::to_string(lost) +
                          " unreadable table files moved to " + dir +
                          "/lost (what they held is gone; the report is in " + dir +
                          "/LOG); the damaged directory is kept as " + kept);
    return Status::ok();
}

}  // namespace

Result<RocksDb, Status> open_rocks_db(const Options& options) {
    namespace fs = std::filesystem;
    const std::string& dir = options.dir;
    Status checked = check_directory(options);
    if (!checked.is_ok()) {
        return Err{std::move(checked)};
    }
    // A secondary (mqttd inspect) reads a store the primary may be writing: its WAL files grow
    // and vanish under the scan, and a secondary drops nothing, so only the primary checks.
    std::error_code ec;
    if (options.secondary_dir.empty() && fs::exists(fs::path(dir) / "CURRENT", ec)) {
        Status wal = check_wal(options);
        if (!wal.is_ok()) {
            return Err{std::move(wal)};
        }
    }
    auto db = open_once(options);
    if (!db && db.error().is_corruption() && options.repair) {
        warn(options, "store " + dir + ": " + db.error().message());
        Status repaired = repair_into_copy(options);
        if (!repaired.is_ok()) {
            return Err{std::move(repaired)};
        }
        return open_once(options);
    }
    return db;
}

Result<StoredState, Status> load_stored_state(const RocksDb& db,
                                              const std::string& dir,
                                              bool read_only) {
    Status schema = check_schema_version(db, dir, read_only);
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
    const bool read_only = !options.secondary_dir.empty();
    auto state = load_stored_state(*db, options.dir, read_only);
    if (!state) {
        return state.error();  // `db` closes as it goes
    }
    auto store = std::make_unique<RocksStore>(options, std::move(*db), *state);
    if (!read_only) {
        store->start();  // a secondary has no committer: its writes complete at once
    }
    out = std::move(store);
    return Status::ok();
}

}  // namespace mqttd::storage
