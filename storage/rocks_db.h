// RocksDb: an open rocksdb::DB with its column family handles (internal to storage/). Opened by
// open_rocks_db (rocks_open.h), owned by RocksStore; the committer's parts and the reads hold
// references to it. close() destroys every handle before closing the DB, as RocksDB requires.
// Thread-safety: that of rocksdb::DB (reads and writes from any thread); close() only once no
// other thread uses it.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <rocksdb/db.h>

#include "storage/schema.h"

namespace mqttd::storage {

class RocksDb {
public:
    // REQUIRES: handles[i] is family i of kCfNames (Cf order); the rest (default and unknown
    // families) follow.
    RocksDb(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
        : db_(std::move(db)), handles_(std::move(handles)) {}
    ~RocksDb() { close(); }
    RocksDb(RocksDb&& o) noexcept : db_(std::move(o.db_)), handles_(std::move(o.handles_)) {
        o.handles_.clear();
    }
    RocksDb& operator=(RocksDb&&) = delete;
    RocksDb(const RocksDb&) = delete;
    RocksDb& operator=(const RocksDb&) = delete;

    // REQUIRES: not closed.
    rocksdb::DB& db() const { return *db_; }
    rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles_[static_cast<size_t>(c)]; }

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
};

}  // namespace mqttd::storage
