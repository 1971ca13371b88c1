// RocksStore: the Store's write side, delegated to the committer; the design is described in
// storage/rocks_store.h. Opening is in rocks_open.cpp, reads in rocks_reads.cpp.
#include "storage/rocks_store.h"

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

#include <rocksdb/utilities/checkpoint.h>

namespace mqttd::storage {

RocksStore::RocksStore(Options options, RocksDb db, const StoredState& state)
    : options_(std::move(options)),
      db_(std::move(db)),
      counts_(state.counts),
      next_id_(state.ids.next_id),
      writer_(options_, db_, counts_, session_counts_, next_id_, state.ids, retained_index_),
      committer_(writer_,
                 Committer::Callbacks{options_.on_sticky_error, options_.on_no_space,
                                      options_.on_resumed,
                                      std::chrono::milliseconds(options_.resume_interval_ms)}) {
    {
        std::lock_guard lock(db_.timings().hook_mu);
        db_.timings().on_background_no_space = [this](const std::string& what) {
            committer_.background_no_space(
                    Status::no_space("RocksDB stopped writes to " + options_.dir + ": " + what));
        };
    }
    // Keys only; a full pass at open (about 0.5 s per million retained topics here).
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(ro, db_.cf(Cf::Retained)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        retained_index_.insert(it->key().ToStringView());
    }
}

RocksStore::~RocksStore() {
    close();
}

void RocksStore::start() {
    committer_.start();
}

void RocksStore::commit(WriteBatch batch, CommitCallback done) {
    if (!options_.secondary_dir.empty()) {
        if (done) {
            done(Status::stopped("the store is open read-only (secondary instance)"));
        }
        return;
    }
    committer_.commit(std::move(batch), std::move(done));
}

Status RocksStore::write(WriteBatch batch) {
    std::promise<Status> p;
    auto f = p.get_future();
    commit(std::move(batch), [&p](const Status& s) { p.set_value(s); });
    return f.get();
}

Status RocksStore::error() const {
    return committer_.error();
}

StoreHealth RocksStore::health() const {
    return committer_.health();
}

const char* state_name(StoreHealth::State s) {
    switch (s) {
        case StoreHealth::State::Writable:
            return "writable";
        case StoreHealth::State::NoSpace:
            return "no_space";
        case StoreHealth::State::Failed:
            return "failed";
    }
    return "failed";
}

void RocksStore::close() {
    if (committer_.close()) {
        {
            std::lock_guard lock(db_.timings().hook_mu);
            db_.timings().on_background_no_space = nullptr;
        }
        db_.close();
    }
}

uint64_t RocksStore::next_message_id() {
    return next_id_.fetch_add(1, std::memory_order_relaxed);
}

Result<uint64_t, Status> RocksStore::checkpoint(const std::string& dir) const {
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(&db_.db(), &raw);
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    uint64_t sequence = 0;
    if (s.ok()) {
        // log_size_for_flush 0: flush the memtables first, so the snapshot is table files
        // (hard links) and the WAL copied with it stays short.
        s = cp->CreateCheckpoint(dir, 0, &sequence);
    }
    if (!s.ok()) {
        return Err{Status::io_error("checkpoint into " + dir + " failed: " + s.ToString())};
    }
    return sequence;
}

uint64_t RocksStore::count(Counted what) const {
    return counts_.get(what);
}

uint64_t RocksStore::count_max(Counted what) const {
    return counts_.max(what);
}

StoreStats RocksStore::stats() const {
    StoreStats s;
    s.sync = options_.sync;
    const StoreTimings& t = db_.timings();
    s.group_batches = t.group_batches.snapshot();
    s.write_us = t.write_us.snapshot();
    s.wal_sync_us = t.wal_sync_us.snapshot();
    rocksdb::DB& db = db_.db();
    auto sum = [&](const std::string& property) {
        uint64_t total = 0;
        for (size_t i = 0; i < kNumCf; ++i) {
            uint64_t v = 0;
            if (db.GetIntProperty(db_.cf(static_cast<Cf>(i)), property, &v)) {
                total += v;
            }
        }
        return total;
    };
    s.sst_bytes = sum(rocksdb::DB::Properties::kTotalSstFilesSize);
    s.memtable_bytes = sum(rocksdb::DB::Properties::kCurSizeAllMemTables);
    s.pending_compaction_bytes = sum(rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
    s.compactions_pending = sum(rocksdb::DB::Properties::kCompactionPending);
    // A property RocksDB does not have leaves its figure 0.
    db.GetIntProperty(rocksdb::DB::Properties::kNumRunningCompactions, &s.running_compactions);
    db.GetIntProperty(rocksdb::DB::Properties::kNumRunningFlushes, &s.running_flushes);
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(options_.dir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::error_code fe;
        if (it->is_regular_file(fe)) {
            uint64_t size = it->file_size(fe);
            if (!fe) {
                s.disk_bytes += size;
            }
        }
    }
    return s;
}

}  // namespace mqttd::storage
