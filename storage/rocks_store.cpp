// Store::open, the committer (group commit) and the translation of logical ops; the design
// is described in storage/rocks_store.h. Reads live in rocks_reads.cpp.
#include "storage/rocks_store.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <variant>

#include <pthread.h>
#include <unistd.h>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include "common/byte_order.h"
#include "storage/keys.h"
#include "storage/values.h"

namespace mqttd::storage {
namespace {

constexpr std::array<const char*, kNumCf> kCfNames = {
        "sessions", "subscriptions", "messages", "queues", "inflight",
        "retained", "routes",        "config",   "users",  "meta"};

// Trim the caches past these sizes (disk stays authoritative; see rocks_store.h).
constexpr size_t kMaxRcCache = size_t{1} << 20;
constexpr size_t kMaxScCache = size_t{1} << 20;
constexpr size_t kMaxRecentBytes = size_t{8} << 20;

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

uint64_t sat_dec(uint64_t v) {
    return v == 0 ? 0 : v - 1;
}

}  // namespace

Status Store::open(const Options& options, std::unique_ptr<Store>& out) {
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
    auto cache = rocksdb::NewLRUCache(64u << 20);

    // Every existing family must be opened, ours plus any unknown one (a newer mqttd's).
    std::vector<std::string> existing;
    if (fs::exists(fs::path(dir) / "CURRENT", ec)) {
        rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, dir, &existing);
        if (!ls.ok()) {
            return open_error(dir, ls);
        }
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (size_t i = 0; i < kNumCf; ++i) {
        descriptors.emplace_back(kCfNames[i],
                                 family_options(cache, i == static_cast<size_t>(Cf::Queues)));
    }
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, family_options(cache));
    for (const std::string& name : existing) {
        bool known = name == rocksdb::kDefaultColumnFamilyName ||
                     std::find(kCfNames.begin(), kCfNames.end(), name) != kCfNames.end();
        if (!known) {
            descriptors.emplace_back(name, family_options(cache));
        }
    }

    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(dbo, dir, descriptors, &handles, &raw);
    if (!s.ok()) {
        return open_error(dir, s);
    }
    auto store = std::make_unique<RocksStore>(options, std::unique_ptr<rocksdb::DB>(raw),
                                              std::move(handles));
    Status st = store->start();
    if (!st.is_ok()) {
        store->close();
        return st;
    }
    out = std::move(store);
    return Status::ok();
}

RocksStore::RocksStore(Options options,
                       std::unique_ptr<rocksdb::DB> db,
                       std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : options_(std::move(options)), db_(std::move(db)), handles_(std::move(handles)) {
    write_options_.sync = options_.sync;
}

RocksStore::~RocksStore() {
    close();
}

Status RocksStore::start() {
    const std::string& dir = options_.dir;
    // Schema version: absent in a new store; newer refuses to open; older is upgraded in
    // place (version 2 only adds inline queue entries, version 3 queue entries with several
    // subscription ids and sessions with a delayed will, so older data reads as it is; from
    // then on an older mqttd refuses the directory instead of misreading it).
    uint32_t version = 0;
    if (auto v = get_raw(Cf::Meta, keys::kSchemaVersion)) {
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
    if (version != kSchemaVersion) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        rocksdb::Status s = db_->Put(wo, cf(Cf::Meta), std::string(keys::kSchemaVersion),
                                     values::encode_u32(kSchemaVersion));
        if (!s.ok()) {
            return open_error(dir, s);
        }
    }
    for (size_t i = 0; i < kNumCounted; ++i) {
        uint64_t n = 0;
        if (auto v = get_raw(Cf::Meta, keys::count(static_cast<uint8_t>(i)))) {
            auto d = values::decode_u64(*v);
            if (!d) {
                return Status::corruption("data directory " + dir + " is corrupt (bad counter)");
            }
            n = *d;
        }
        counts_[i].store(n);
        counts_max_[i].store(n);
    }
    // Next message id: past both the persisted high-water mark and the last stored message.
    uint64_t next = 1;
    if (auto v = get_raw(Cf::Meta, keys::kNextMessageId)) {
        if (auto d = values::decode_u64(*v)) {
            next = std::max(next, *d);
            hwm_persisted_ = *d;
        }
    }
    {
        std::unique_ptr<rocksdb::Iterator> it(
                db_->NewIterator(rocksdb::ReadOptions(), cf(Cf::Messages)));
        it->SeekToLast();
        if (it->Valid()) {
            if (auto id = keys::parse_message(it->key().ToStringView())) {
                next = std::max(next, *id + 1);
            }
        }
        if (!it->status().ok()) {
            return open_error(dir, it->status());
        }
    }
    next_id_.store(next);
    id_floor_ = next;
    committer_ = std::thread([this] {
        ::pthread_setname_np(::pthread_self(), "mqttd-commit");  // for top -H and perf
        run_committer();
    });
    return Status::ok();
}

void RocksStore::commit(WriteBatch batch, CommitCallback done) {
    if (failed_.load(std::memory_order_acquire)) {
        if (done) {
            done(Status::stopped("store stopped after a failed write: " + error().message()));
        }
        return;
    }
    {
        std::unique_lock lock(mu_);
        if (!closed_) {
            bool was_empty = queue_.empty();
            queue_.push_back(Pending{std::move(batch), std::move(done)});
            lock.unlock();
            if (was_empty) {
                cv_.notify_one();
            }
            return;
        }
    }
    if (done) {
        done(Status::stopped("store is closed"));
    }
}

Status RocksStore::write(WriteBatch batch) {
    std::promise<Status> p;
    auto f = p.get_future();
    commit(std::move(batch), [&p](const Status& s) { p.set_value(s); });
    return f.get();
}

Status RocksStore::error() const {
    std::lock_guard lock(err_mu_);
    return sticky_;
}

void RocksStore::close() {
    {
        std::lock_guard lock(mu_);
        if (closed_) {
            return;
        }
        closed_ = true;
        stopping_ = true;
    }
    cv_.notify_one();
    if (committer_.joinable()) {
        committer_.join();
    }
    if (db_) {
        for (auto* h : handles_) {
            db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
        }
        handles_.clear();
        db_->Close().PermitUncheckedError();
        db_.reset();
    }
}

uint64_t RocksStore::next_message_id() {
    return next_id_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t RocksStore::count(Counted what) const {
    return counts_[static_cast<size_t>(what)].load(std::memory_order_relaxed);
}

uint64_t RocksStore::count_max(Counted what) const {
    return counts_max_[static_cast<size_t>(what)].load(std::memory_order_relaxed);
}

void RocksStore::fail_sticky(const Status& cause) {
    {
        std::lock_guard lock(err_mu_);
        if (!sticky_.is_ok()) {
            return;
        }
        sticky_ = cause;
    }
    failed_.store(true, std::memory_order_release);
    if (options_.on_sticky_error) {
        options_.on_sticky_error(cause);
    }
}

// ---------------------------------------------------------------------------------------------
// Committer

void RocksStore::run_committer() {
    std::vector<Pending> group;
    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
            if (queue_.empty()) {
                return;  // stopping and drained
            }
            group.swap(queue_);
        }
        process_group(group);
        group.clear();
    }
}

void RocksStore::Deltas::add(const Deltas& o) {
    for (size_t i = 0; i < kNumCounted; ++i) {
        delta[i] += o.delta[i];
    }
    if (o.has_message) {
        max_message_id =
                has_message ? std::max(max_message_id, o.max_message_id) : o.max_message_id;
        has_message = true;
    }
}

void RocksStore::undo_batch(Overlay& g) {
    for (auto it = kv_undo_.rbegin(); it != kv_undo_.rend(); ++it) {
        if (it->created) {
            const std::string key = it->node->first;
            g.kv[it->cf].erase(key);
        } else {
            it->node->second = std::move(it->old);
        }
    }
    for (auto it = rc_undo_.rbegin(); it != rc_undo_.rend(); ++it) {
        if (it->created) {
            const uint64_t id = it->node->first;
            g.rc.erase(id);
        } else {
            it->node->second = it->old;
        }
    }
    for (auto it = sc_undo_.rbegin(); it != sc_undo_.rend(); ++it) {
        if (it->created) {
            const std::string client = it->node->first;
            g.sc.erase(client);
        } else {
            it->node->second = it->old;
        }
    }
}

struct RocksStore::BatchCtx {
    Overlay& group;
    Deltas batch;
    std::vector<uint64_t> new_messages;  // records put in this batch; must end with a reference
};

void RocksStore::process_group(std::vector<Pending>& group) {
    if (failed_.load(std::memory_order_acquire)) {
        Status st = Status::stopped("store stopped after a failed write: " + error().message());
        for (auto& p : group) {
            if (p.done) {
                p.done(st);
            }
        }
        return;
    }
    prefetch_removals(group);
    Overlay g;
    std::vector<Status> results(group.size());
    for (size_t i = 0; i < group.size(); ++i) {
        BatchCtx ctx{g, {}, {}};
        ++batch_stamp_;
        Status s = apply_batch(ctx, group[i].batch);
        if (s.is_ok()) {
            g.add(ctx.batch);
        } else {
            undo_batch(g);
        }
        kv_undo_.clear();
        rc_undo_.clear();
        sc_undo_.clear();
        results[i] = std::move(s);
    }

    prefetched_.clear();

    // Each key once, at its state after the group (see ABSORPTION in rocks_store.h).
    size_t bytes = 0;
    for (const auto& m : g.kv) {
        for (const auto& [key, kv] : m) {
            bytes += key.size() + kv.value.size() + 16;  // + tag, family, two varint lengths
        }
    }
    rocksdb::WriteBatch wb(bytes + 1024);
    rocksdb::Status ws;
    std::vector<const std::pair<const std::string, Kv>*> sorted;
    for (size_t c = 0; c < kNumCf && ws.ok(); ++c) {
        // In key order: each memtable insert then starts next to the previous one.
        sorted.clear();
        for (const auto& e : g.kv[c]) {
            if (e.second.live || e.second.in_db) {  // else created and removed in this group
                sorted.push_back(&e);
            }
        }
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto* a, const auto* b) { return a->first < b->first; });
        for (const auto* e : sorted) {
            const std::string& key = e->first;
            const Kv& kv = e->second;
            if (kv.live) {
                ws = wb.Put(handles_[c], key, kv.value);
            } else if (kv.in_db) {
                ws = wb.Delete(handles_[c], key);
            }
            if (!ws.ok()) {
                break;
            }
        }
    }

    // Derived state of the group, in the same write.
    rocksdb::ColumnFamilyHandle* meta = cf(Cf::Meta);
    std::array<uint64_t, kNumCounted> new_counts{};
    for (size_t i = 0; i < kNumCounted && ws.ok(); ++i) {
        int64_t v = static_cast<int64_t>(counts_[i].load(std::memory_order_relaxed)) + g.delta[i];
        new_counts[i] = v < 0 ? 0 : static_cast<uint64_t>(v);
        if (g.delta[i] != 0) {
            ws = wb.Put(meta, keys::count(static_cast<uint8_t>(i)),
                        values::encode_u64(new_counts[i]));
        }
    }
    for (auto& [client, st] : g.sc) {
        if (!ws.ok()) {
            break;
        }
        ws = st.erased ? wb.Delete(meta, keys::session_counts(client))
                       : wb.Put(meta, keys::session_counts(client), values::encode(st.c));
    }
    for (auto& [id, st] : g.rc) {
        if (!ws.ok()) {
            break;
        }
        if (st.live) {
            ws = wb.Put(meta, keys::refcount(id), values::encode_u64(st.rc));
        } else if (st.in_db) {
            ws = wb.Delete(meta, keys::refcount(id));
        }
    }
    uint64_t new_hwm = hwm_persisted_;
    if (ws.ok() && g.has_message && g.max_message_id + 1 > hwm_persisted_) {
        new_hwm = g.max_message_id + 1;
        ws = wb.Put(meta, std::string(keys::kNextMessageId), values::encode_u64(new_hwm));
    }

    if (ws.ok() && options_.fail_write_for_test && options_.fail_write_for_test()) {
        ws = rocksdb::Status::IOError("injected write failure (test hook)");
    }
    if (ws.ok() && wb.Count() > 0) {
        ws = db_->Write(write_options_, &wb);
    }

    if (!ws.ok()) {
        Status cause = Status::io_error("write to " + options_.dir + " failed: " + ws.ToString());
        fail_sticky(cause);
        for (auto& r : results) {
            if (r.is_ok()) {
                r = cause;
            }
        }
    } else {
        for (size_t i = 0; i < kNumCounted; ++i) {
            counts_[i].store(new_counts[i], std::memory_order_relaxed);
            if (new_counts[i] > counts_max_[i].load(std::memory_order_relaxed)) {
                counts_max_[i].store(new_counts[i], std::memory_order_relaxed);
            }
        }
        {
            std::lock_guard lock(sc_mu_);
            if (sc_cache_.size() + g.sc.size() > kMaxScCache) {
                sc_cache_.clear();
            }
            for (auto& [client, st] : g.sc) {
                if (st.erased) {
                    sc_cache_.erase(client);
                } else {
                    sc_cache_[client] = st.c;
                }
            }
        }
        if (rc_cache_.size() + g.rc.size() > kMaxRcCache) {
            // Unknown ids below the new floor are read from disk from now on.
            rc_cache_.clear();
            id_floor_ = next_id_.load(std::memory_order_relaxed);
        }
        for (auto& [id, st] : g.rc) {
            if (st.live) {
                rc_cache_[id] = st.rc;
            } else {
                rc_cache_.erase(id);
            }
        }
        hwm_persisted_ = new_hwm;
        auto& written = g.kv[static_cast<size_t>(Cf::Queues)];
        while (!written.empty()) {
            auto node = written.extract(written.begin());
            if (!node.mapped().live) {
                // A key that was not on disk (in_db false: created in this group) is not cached.
                if (node.mapped().in_db) {
                    recent_queue_.erase(node.key());
                }
                continue;
            }
            recent_queue_bytes_ += node.key().size() + node.mapped().value.size();
            auto r = recent_queue_.insert(std::move(node));
            if (!r.inserted) {
                r.position->second = std::move(r.node.mapped());
            }
        }
        if (recent_queue_bytes_ > kMaxRecentBytes) {
            recent_queue_.clear();
            recent_queue_bytes_ = 0;
        }
    }
    for (size_t i = 0; i < group.size(); ++i) {
        if (group[i].done) {
            group[i].done(results[i]);
        }
    }
}

void RocksStore::prefetch_removals(const std::vector<Pending>& group) {
    std::vector<std::string> keys;
    size_t removals = 0;
    for (const auto& p : group) {
        for (const Op& o : p.batch.ops()) {
            if (const auto* r = std::get_if<op::RemoveQueued>(&o)) {
                removals += r->seqs.size();
            }
        }
    }
    if (removals == 0) {
        return;
    }
    keys.reserve(removals);
    {
        // A seq at or above the session's committed next_seq is not on disk: it was enqueued
        // in this group (most acks of an online session are; the overlay has them) or never.
        // Sessions not in sc_cache_ are read whatever the seq.
        std::lock_guard lock(sc_mu_);
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
                    auto c = sc_cache_.find(client);
                    next_seq = c == sc_cache_.end() ? UINT64_MAX : c->second.next_seq;
                }
                for (uint64_t seq : r->seqs) {
                    if (seq >= next_seq) {
                        continue;
                    }
                    std::string k = keys::queue(r->client_id, seq);
                    if (!recent_queue_.contains(k)) {
                        keys.push_back(std::move(k));
                    }
                }
            }
        }
    }
    if (keys.size() < 2) {
        return;  // a single read is as cheap as a MultiGet
    }
    if (!std::is_sorted(keys.begin(), keys.end())) {  // one session's acks come in seq order
        std::sort(keys.begin(), keys.end());
    }
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
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
        db_->MultiGet(ro, cf(Cf::Queues), n, slices.data(), values.data(), statuses.data(),
                      /*sorted_input=*/true);
        for (size_t i = 0; i < n; ++i) {
            if (statuses[i].ok()) {
                prefetched_.emplace(std::move(keys[at + i]), values[i].ToString());
            } else if (statuses[i].IsNotFound()) {
                prefetched_.emplace(std::move(keys[at + i]), std::nullopt);
            }  // an error: read_kv reads the key again and reports it
        }
    }
    for (auto& v : values) {
        v.Reset();
    }
}

Status RocksStore::apply_batch(BatchCtx& ctx, const WriteBatch& batch) {
    const auto& ops = batch.ops();
    new_messages_.clear();
    for (const Op& o : ops) {
        if (const auto* m = std::get_if<op::PutMessage>(&o)) {
            new_messages_.push_back(NewMessage{m->rec->id, 0, nullptr});
        }
    }
    if (!new_messages_.empty()) {
        std::sort(new_messages_.begin(), new_messages_.end(),
                  [](const NewMessage& a, const NewMessage& b) { return a.id < b.id; });
        for (const Op& o : ops) {
            if (const auto* e = std::get_if<op::Enqueue>(&o)) {
                if (NewMessage* m = new_message(e->rec.message_id)) {
                    m->enqueues++;
                }
            }
        }
    }
    for (const Op& o : ops) {
        Status s = std::visit([&](const auto& x) { return apply_op(ctx, x); }, o);
        if (!s.is_ok()) {
            return s;
        }
    }
    // A message left with no reference is not stored (write_batch.h).
    for (uint64_t id : ctx.new_messages) {
        RcState* st = nullptr;
        Status s = rc_of(ctx, id, st);
        if (!s.is_ok()) {
            return s;
        }
        if (st->live && st->rc == 0) {
            erase_kv(ctx, Cf::Messages, keys::message(id), st->in_db);
            st->live = false;
            ctx.batch.delta[static_cast<size_t>(Counted::Messages)]--;
        }
    }
    return Status::ok();
}

RocksStore::NewMessage* RocksStore::new_message(uint64_t id) {
    auto it = std::lower_bound(new_messages_.begin(), new_messages_.end(), id,
                               [](const NewMessage& m, uint64_t v) { return m.id < v; });
    return it != new_messages_.end() && it->id == id ? &*it : nullptr;
}

Status RocksStore::read_kv(BatchCtx& ctx,
                           Cf c,
                           std::string_view key,
                           const std::string** value,
                           bool& found,
                           bool& in_db) {
    const size_t i = static_cast<size_t>(c);
    if (auto it = ctx.group.kv[i].find(key); it != ctx.group.kv[i].end()) {
        found = it->second.live;
        in_db = it->second.in_db;
        if (found && value) {
            *value = &it->second.value;
        }
        return Status::ok();
    }
    if (c == Cf::Queues) {
        const std::string* cached = nullptr;
        if (auto it = recent_queue_.find(key); it != recent_queue_.end()) {
            cached = &it->second.value;
        } else if (auto p = prefetched_.find(key); p != prefetched_.end()) {
            if (!p->second) {
                found = false;
                in_db = false;
                return Status::ok();
            }
            cached = &*p->second;
        }
        if (cached) {
            found = true;
            in_db = true;
            if (value) {
                *value = cached;
            }
            return Status::ok();
        }
    }
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(c), key, &read_buf_);
    found = s.ok();
    in_db = found;
    if (found && value) {
        *value = &read_buf_;
    }
    if (s.ok() || s.IsNotFound()) {
        return Status::ok();
    }
    return Status::io_error("read of " + options_.dir + " failed: " + s.ToString());
}

RocksStore::Kv& RocksStore::staged(BatchCtx& ctx, Cf c, std::string_view key, bool in_db) {
    const size_t i = static_cast<size_t>(c);
    KvMap& m = ctx.group.kv[i];
    auto it = m.find(key);
    if (it == m.end()) {
        it = m.emplace(std::string(key), Kv{{}, false, in_db, batch_stamp_}).first;
        kv_undo_.push_back(KvUndo{i, &*it, true, {}});
    } else if (it->second.stamp != batch_stamp_) {
        // The old value moves to the journal: every caller overwrites or clears it next, and
        // live/in_db stay as they were.
        kv_undo_.push_back(KvUndo{i, &*it, false, {}});
        Kv& old = kv_undo_.back().old;
        old.value = std::move(it->second.value);
        old.live = it->second.live;
        old.in_db = it->second.in_db;
        old.stamp = it->second.stamp;
        it->second.stamp = batch_stamp_;
    }
    return it->second;
}

void RocksStore::put_kv(BatchCtx& ctx, Cf c, std::string_view key, std::string value, bool in_db) {
    Kv& kv = staged(ctx, c, key, in_db);
    kv.value = std::move(value);
    kv.live = true;
}

void RocksStore::erase_kv(BatchCtx& ctx, Cf c, std::string_view key, bool in_db) {
    Kv& kv = staged(ctx, c, key, in_db);
    kv.value.clear();
    kv.live = false;
}

Status RocksStore::put_tracked(
        BatchCtx& ctx, Cf c, std::string_view key, std::string value, bool& created) {
    bool found = false;
    bool in_db = false;
    Status s = read_kv(ctx, c, key, nullptr, found, in_db);
    if (!s.is_ok()) {
        return s;
    }
    put_kv(ctx, c, key, std::move(value), in_db);
    created = !found;
    return Status::ok();
}

Status RocksStore::erase_tracked(BatchCtx& ctx, Cf c, std::string_view key, bool& erased) {
    bool in_db = false;
    Status s = read_kv(ctx, c, key, nullptr, erased, in_db);
    if (s.is_ok() && erased) {
        erase_kv(ctx, c, key, in_db);
    }
    return s;
}

Status RocksStore::put_counted(
        BatchCtx& ctx, Cf c, Counted counted, std::string_view key, std::string value) {
    bool created = false;
    Status s = put_tracked(ctx, c, key, std::move(value), created);
    if (created) {
        ctx.batch.delta[static_cast<size_t>(counted)]++;
    }
    return s;
}

Status RocksStore::delete_counted(BatchCtx& ctx, Cf c, Counted counted, std::string_view key) {
    bool erased = false;
    Status s = erase_tracked(ctx, c, key, erased);
    if (erased) {
        ctx.batch.delta[static_cast<size_t>(counted)]--;
    }
    return s;
}

Status RocksStore::rc_of(BatchCtx& ctx, uint64_t id, RcState*& out) {
    if (auto it = ctx.group.rc.find(id); it != ctx.group.rc.end()) {
        if (it->second.stamp != batch_stamp_) {
            rc_undo_.push_back(RcUndo{&*it, false, it->second});
            it->second.stamp = batch_stamp_;
        }
        out = &it->second;
        return Status::ok();
    }
    RcState st;
    Status s = rc_peek(ctx, id, st);
    if (!s.is_ok()) {
        return s;
    }
    st.stamp = batch_stamp_;
    auto it = ctx.group.rc.emplace(id, st).first;
    rc_undo_.push_back(RcUndo{&*it, true, {}});
    out = &it->second;
    return Status::ok();
}

Status RocksStore::rc_peek(BatchCtx& ctx, uint64_t id, RcState& st) {
    st = RcState{};
    if (auto g = ctx.group.rc.find(id); g != ctx.group.rc.end()) {
        st = g->second;
    } else if (auto c = rc_cache_.find(id); c != rc_cache_.end()) {
        st = RcState{c->second, true, true};
    } else if (id < id_floor_) {
        std::string v;
        rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(Cf::Meta), keys::refcount(id), &v);
        if (s.ok()) {
            auto n = values::decode_u64(v);
            if (!n) {
                return Status::corruption("bad reference count of message " + std::to_string(id) +
                                          " in " + options_.dir);
            }
            st = RcState{*n, true, true};
        } else if (!s.IsNotFound()) {
            return Status::io_error("read of " + options_.dir + " failed: " + s.ToString());
        }
    }
    return Status::ok();
}

Status RocksStore::sc_of(BatchCtx& ctx, const std::string& client_id, ScState*& out) {
    if (auto it = ctx.group.sc.find(client_id); it != ctx.group.sc.end()) {
        if (it->second.stamp != batch_stamp_) {  // first touch by this batch
            sc_undo_.push_back(ScUndo{&*it, false, it->second});
            it->second.stamp = batch_stamp_;
            it->second.erased = false;
        }
        out = &it->second;
        return Status::ok();
    }
    ScState st;
    {
        bool cached = false;
        {
            std::lock_guard lock(sc_mu_);
            if (auto c = sc_cache_.find(client_id); c != sc_cache_.end()) {
                st.c = c->second;
                cached = true;
            }
        }
        if (!cached) {
            std::string v;
            rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(Cf::Meta),
                                         keys::session_counts(client_id), &v);
            if (s.ok()) {
                auto c = values::decode_counts(v);
                if (!c) {
                    return Status::corruption("bad session counts of " + client_id + " in " +
                                              options_.dir);
                }
                st.c = *c;
            } else if (!s.IsNotFound()) {
                return Status::io_error("read of " + options_.dir + " failed: " + s.ToString());
            }
        }
    }
    st.erased = false;
    st.stamp = batch_stamp_;
    auto it = ctx.group.sc.emplace(client_id, st).first;
    sc_undo_.push_back(ScUndo{&*it, true, {}});
    out = &it->second;
    return Status::ok();
}

Status RocksStore::unref(BatchCtx& ctx, uint64_t id) {
    RcState* st = nullptr;
    Status s = rc_of(ctx, id, st);
    if (!s.is_ok()) {
        return s;
    }
    if (!st->live || st->rc == 0) {
        return Status::ok();  // dangling reference: nothing to release
    }
    if (--st->rc == 0) {
        erase_kv(ctx, Cf::Messages, keys::message(id), st->in_db);
        st->live = false;
        ctx.batch.delta[static_cast<size_t>(Counted::Messages)]--;
    }
    return Status::ok();
}

Status RocksStore::release_entry(BatchCtx& ctx, const std::optional<values::QueueEntryRef>& entry) {
    if (!entry) {
        return Status::ok();  // unreadable entry: dropped without releasing a reference
    }
    if (entry->inline_message) {
        ctx.batch.delta[static_cast<size_t>(Counted::Messages)]--;
        return Status::ok();
    }
    return unref(ctx, entry->message_id);
}

namespace {
Status bad_component(const char* what, std::string_view s) {
    return Status::invalid_argument(std::string(what) + " contains U+0000: " +
                                    std::string(s.substr(0, s.find('\0'))) + "...");
}
Status rs(const rocksdb::Status& s) {
    return s.ok() ? Status::ok() : Status::io_error(s.ToString());
}
}  // namespace

#define MQTTD_CHECK_CLIENT(id)                 \
    if (!keys::valid_component(id)) {          \
        return bad_component("client id", id); \
    }

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutSession& o) {
    MQTTD_CHECK_CLIENT(o.rec->client_id)
    return put_counted(ctx, Cf::Sessions, Counted::Sessions, o.rec->client_id,
                       values::encode(*o.rec));
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::DeleteSession& o) {
    MQTTD_CHECK_CLIENT(o.client_id)
    Status s = delete_counted(ctx, Cf::Sessions, Counted::Sessions, o.client_id);
    if (!s.is_ok()) {
        return s;
    }
    const std::string prefix = keys::client_prefix(o.client_id);
    // The session's keys of a family as the ops so far left them: the DB's, then the overlay
    // on top.
    auto collect = [&](Cf c, std::map<std::string, std::string>& out) {
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(c)));
        for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
            out.emplace(it->key().ToString(), it->value().ToString());
        }
        for (const auto& [k, v] : ctx.group.kv[static_cast<size_t>(c)]) {
            if (!k.starts_with(prefix)) {
                continue;
            }
            if (v.live) {
                out[k] = v.value;
            } else {
                out.erase(k);
            }
        }
        return rs(it->status());
    };
    std::map<std::string, std::string> kv;
    for (Cf c : {Cf::Subscriptions, Cf::Queues, Cf::Inflight}) {
        kv.clear();
        s = collect(c, kv);
        if (!s.is_ok()) {
            return s;
        }
        for (auto& [k, v] : kv) {
            erase_kv(ctx, c, k, true);
            if (c == Cf::Subscriptions) {
                ctx.batch.delta[static_cast<size_t>(Counted::Subscriptions)]--;
            } else if (c == Cf::Queues) {
                ctx.batch.delta[static_cast<size_t>(Counted::QueueEntries)]--;
                s = release_entry(ctx, values::peek_queue_entry(v));
                if (!s.is_ok()) {
                    return s;
                }
            }
        }
    }
    ScState* sc = nullptr;
    s = sc_of(ctx, o.client_id, sc);
    if (!s.is_ok()) {
        return s;
    }
    sc->c = SessionCounts{};
    sc->erased = true;
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutSubscription& o) {
    MQTTD_CHECK_CLIENT(o.rec.client_id)
    bool created = false;
    Status s = put_tracked(ctx, Cf::Subscriptions,
                           keys::subscription(o.rec.client_id, o.rec.topic_filter),
                           values::encode(o.rec), created);
    if (!s.is_ok() || !created) {
        return s;
    }
    ScState* sc = nullptr;
    s = sc_of(ctx, o.rec.client_id, sc);
    if (!s.is_ok()) {
        return s;
    }
    sc->c.subscriptions++;
    ctx.batch.delta[static_cast<size_t>(Counted::Subscriptions)]++;
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::DeleteSubscription& o) {
    MQTTD_CHECK_CLIENT(o.client_id)
    bool erased = false;
    Status s = erase_tracked(ctx, Cf::Subscriptions,
                             keys::subscription(o.client_id, o.topic_filter), erased);
    if (!s.is_ok() || !erased) {
        return s;
    }
    ScState* sc = nullptr;
    s = sc_of(ctx, o.client_id, sc);
    if (!s.is_ok()) {
        return s;
    }
    sc->c.subscriptions = sat_dec(sc->c.subscriptions);
    ctx.batch.delta[static_cast<size_t>(Counted::Subscriptions)]--;
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutMessage& o) {
    const uint64_t id = o.rec->id;
    ctx.batch.max_message_id = ctx.batch.has_message ? std::max(ctx.batch.max_message_id, id) : id;
    ctx.batch.has_message = true;
    if (NewMessage* m = new_message(id); m != nullptr && m->enqueues == 1) {
        RcState peek;
        Status s = rc_peek(ctx, id, peek);
        if (!s.is_ok()) {
            return s;
        }
        if (!peek.live) {
            m->inline_rec = o.rec.get();  // one reference: kept in its queue entry
            return Status::ok();
        }
    }
    RcState* st = nullptr;
    Status s = rc_of(ctx, id, st);
    if (!s.is_ok()) {
        return s;
    }
    put_kv(ctx, Cf::Messages, keys::message(id), values::encode(*o.rec), st->in_db);
    if (!st->live) {
        st->live = true;
        st->rc = 0;
        ctx.batch.delta[static_cast<size_t>(Counted::Messages)]++;
        ctx.new_messages.push_back(id);
    }
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::Enqueue& o) {
    const QueueEntry& e = o.rec;
    MQTTD_CHECK_CLIENT(e.client_id)
    ScState* sc = nullptr;
    Status s = sc_of(ctx, e.client_id, sc);
    if (!s.is_ok()) {
        return s;
    }
    key_buf_.clear();
    keys::append_queue(key_buf_, e.client_id, e.seq);
    const std::string_view key = key_buf_;
    bool found = false;
    bool in_db = false;
    std::optional<values::QueueEntryRef> replaced;
    if (e.seq < sc->c.next_seq) {  // only a seq below the high-water mark can exist already
        const std::string* old = nullptr;
        s = read_kv(ctx, Cf::Queues, key, &old, found, in_db);
        if (!s.is_ok()) {
            return s;
        }
        if (found) {
            replaced = values::peek_queue_entry(*old);
        }
    }
    const MessageRecord* inline_message = nullptr;
    if (NewMessage* m = new_message(e.message_id); m != nullptr && m->inline_rec != nullptr) {
        inline_message = m->inline_rec;
        m->inline_rec = nullptr;
        ctx.batch.delta[static_cast<size_t>(Counted::Messages)]++;
    } else {
        RcState* st = nullptr;
        s = rc_of(ctx, e.message_id, st);
        if (!s.is_ok()) {
            return s;
        }
        if (!st->live) {
            return Status::invalid_argument("enqueue for " + e.client_id +
                                            " references unknown message " +
                                            std::to_string(e.message_id));
        }
        st->rc++;
    }
    put_kv(ctx, Cf::Queues, key, values::encode(e, inline_message), in_db);
    if (found) {
        return release_entry(ctx, replaced);  // the entry it replaces
    }
    sc->c.queued++;
    sc->c.enqueued_total++;
    sc->c.next_seq = std::max(sc->c.next_seq, e.seq + 1);
    ctx.batch.delta[static_cast<size_t>(Counted::QueueEntries)]++;
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::RemoveQueued& o) {
    MQTTD_CHECK_CLIENT(o.client_id)
    ScState* sc = nullptr;
    key_buf_.clear();
    keys::append_queue(key_buf_, o.client_id, 0);
    const size_t seq_at = key_buf_.size() - 8;
    for (uint64_t seq : o.seqs) {
        key_buf_.resize(seq_at);
        put_be64(key_buf_, seq);
        bool found = false;
        bool in_db = false;
        const std::string* old = nullptr;
        Status s = read_kv(ctx, Cf::Queues, key_buf_, &old, found, in_db);
        if (!s.is_ok()) {
            return s;
        }
        if (!found) {
            continue;
        }
        const auto entry = values::peek_queue_entry(*old);  // before the erase clears it
        erase_kv(ctx, Cf::Queues, key_buf_, in_db);
        ctx.batch.delta[static_cast<size_t>(Counted::QueueEntries)]--;
        if (sc == nullptr) {
            s = sc_of(ctx, o.client_id, sc);
            if (!s.is_ok()) {
                return s;
            }
        }
        sc->c.queued = sat_dec(sc->c.queued);
        if (o.dropped) {
            sc->c.dropped_total++;
        }
        s = release_entry(ctx, entry);
        if (!s.is_ok()) {
            return s;
        }
    }
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutInflight& o) {
    MQTTD_CHECK_CLIENT(o.rec.client_id)
    bool created = false;
    Status s = put_tracked(ctx, Cf::Inflight,
                           keys::inflight(o.rec.client_id, o.rec.direction, o.rec.packet_id),
                           values::encode(o.rec), created);
    if (!s.is_ok() || !created) {
        return s;
    }
    ScState* sc = nullptr;
    s = sc_of(ctx, o.rec.client_id, sc);
    if (!s.is_ok()) {
        return s;
    }
    if (o.rec.direction == Direction::Inbound) {
        sc->c.awaiting_rel++;
    } else {
        sc->c.awaiting_comp++;
    }
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::DeleteInflight& o) {
    MQTTD_CHECK_CLIENT(o.client_id)
    bool erased = false;
    Status s = erase_tracked(ctx, Cf::Inflight,
                             keys::inflight(o.client_id, o.direction, o.packet_id), erased);
    if (!s.is_ok() || !erased) {
        return s;
    }
    ScState* sc = nullptr;
    s = sc_of(ctx, o.client_id, sc);
    if (!s.is_ok()) {
        return s;
    }
    if (o.direction == Direction::Inbound) {
        sc->c.awaiting_rel = sat_dec(sc->c.awaiting_rel);
    } else {
        sc->c.awaiting_comp = sat_dec(sc->c.awaiting_comp);
    }
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutRetained& o) {
    if (!keys::valid_component(o.rec->topic)) {
        return bad_component("retained topic", o.rec->topic);
    }
    return put_counted(ctx, Cf::Retained, Counted::Retained, keys::retained(o.rec->topic),
                       values::encode(*o.rec));
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::DeleteRetained& o) {
    if (!keys::valid_component(o.topic)) {
        return bad_component("retained topic", o.topic);
    }
    return delete_counted(ctx, Cf::Retained, Counted::Retained, keys::retained(o.topic));
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutRoute& o) {
    return put_counted(ctx, Cf::Routes, Counted::Routes, o.rec.topic_filter, values::encode(o.rec));
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::DeleteRoute& o) {
    return delete_counted(ctx, Cf::Routes, Counted::Routes, o.topic_filter);
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutConfig& o) {
    put_kv(ctx, Cf::Config, o.rec.key, values::encode_config(o.rec.value), true);
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::DeleteConfig& o) {
    erase_kv(ctx, Cf::Config, o.key, true);
    return Status::ok();
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::PutUser& o) {
    return put_counted(ctx, Cf::Users, Counted::Users, o.rec->username, values::encode(*o.rec));
}

Status RocksStore::apply_op(BatchCtx& ctx, const op::DeleteUser& o) {
    return delete_counted(ctx, Cf::Users, Counted::Users, o.username);
}

#undef MQTTD_CHECK_CLIENT

}  // namespace mqttd::storage
