// RocksDb: an open rocksdb::DB with its column family handles (internal to storage/). Opened by
// open_rocks_db (rocks_open.h), owned by RocksStore; the committer's parts and the reads hold
// references to it. close() destroys every handle before closing the DB, as RocksDB requires.
// Thread-safety: that of rocksdb::DB (reads and writes from any thread); close() only once no
// other thread uses it.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <rocksdb/db.h>

#include "common/histogram.h"
#include "storage/schema.h"

namespace mqttd::storage {

// What the committer and RocksDB's event listener measure (StoreStats), and how the listener
// reports a background job that ran out of space. Shared by the DB's listener, which RocksDB
// may call until the DB is closed, and the store.
struct StoreTimings {
    // Set by the store once its committer exists; called by the listener (a RocksDB thread)
    // with the error when a flush or compaction fails for want of space. Guarded by hook_mu.
    std::mutex hook_mu;
    std::function<void(const std::string&)> on_background_no_space;

    // Batches per group: 1 .. 4096.
    Histogram group_batches{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
    // Microseconds: 10 us .. 1 s.
    Histogram write_us{10,   25,    50,    100,   250,    500,    1000,   2500,
                       5000, 10000, 25000, 50000, 100000, 250000, 1000000};
    Histogram wal_sync_us{10,   25,    50,    100,   250,    500,    1000,   2500,
                          5000, 10000, 25000, 50000, 100000, 250000, 1000000};
};

class RocksDb {
public:
    // REQUIRES: handles[i] is family i of kCfNames (Cf order); the rest (default and unknown
    // families) follow. `timings` are fed by the DB's listeners; a DB opened only for a
    // repair step has none and gets empty ones.
    RocksDb(std::unique_ptr<rocksdb::DB> db,
            std::vector<rocksdb::ColumnFamilyHandle*> handles,
            std::shared_ptr<StoreTimings> timings = std::make_shared<StoreTimings>())
        : db_(std::move(db)), handles_(std::move(handles)), timings_(std::move(timings)) {}
    ~RocksDb() { close(); }
    RocksDb(RocksDb&& o) noexcept
        : db_(std::move(o.db_)), handles_(std::move(o.handles_)), timings_(std::move(o.timings_)) {
        o.handles_.clear();
    }
    RocksDb& operator=(RocksDb&&) = delete;
    RocksDb(const RocksDb&) = delete;
    RocksDb& operator=(const RocksDb&) = delete;

    // REQUIRES: not closed.
    rocksdb::DB& db() const { return *db_; }
    rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles_[static_cast<size_t>(c)]; }
    StoreTimings& timings() const { return *timings_; }

    // Idempotent.
    void close() {
        if (!db_) {
            return;
        }
        for (auto* h : handles_) {
            db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
        }
        handles_.clear();
        db_->Close().PermitUncheckedError();
        db_.reset();
    }

private:
    std::unique_ptr<rocksdb::DB> db_;
    std::vector<rocksdb::ColumnFamilyHandle*> handles_;
    std::shared_ptr<StoreTimings> timings_;  // never null while open
};

}  // namespace mqttd::storage
