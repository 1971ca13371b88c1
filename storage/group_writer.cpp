// RocksGroupWriter: one group, one DB::Write; see storage/group_writer.h.
#include "storage/group_writer.h"

#include <chrono>
#include <utility>

#include "storage/keys.h"
#include "storage/rocks_db.h"
#include "storage/values.h"

namespace mqttd::storage {

RocksGroupWriter::RocksGroupWriter(const Options& options,
                                   const RocksDb& db,
                                   Counts& counts,
                                   SessionCountsCache& sessions,
                                   const std::atomic<uint64_t>& next_id,
                                   const MessageIdState& ids,
                                   RetainedIndex& retained)
    : options_(options),
      db_(db),
      counts_(counts),
      sessions_(sessions),
      next_id_(next_id),
      refs_(ids.next_id),
      applier_(db, options.dir, overlay_, queues_, refs_, sessions),
      retained_(retained),
      hwm_persisted_(ids.persisted_next) {
    write_options_.sync = options.sync;
}

Status RocksGroupWriter::write_group(std::span<const PendingCommit> group,
                                     std::span<Status> results) {
    queues_.prefetch(db_, group, sessions_);
    for (size_t i = 0; i < group.size(); ++i) {
        overlay_.begin_batch();
        Status s = applier_.apply(group[i].batch);
        if (s.is_ok()) {
            overlay_.commit_batch();
        } else {
            overlay_.rollback_batch();
        }
        results[i] = std::move(s);
    }
    queues_.end_group();

    const Deltas& d = overlay_.deltas();
    const PerCounted<uint64_t> totals = counts_.after(d);
    const uint64_t hwm = d.has_message && d.max_message_id + 1 > hwm_persisted_
                                 ? d.max_message_id + 1
                                 : hwm_persisted_;
    rocksdb::WriteBatch wb(overlay_.write_bytes() + 1024);
    rocksdb::Status ws = add_keys(wb);
    if (ws.ok()) {
        ws = add_derived(wb, totals, hwm);
    }
    if (ws.ok() && options_.fail_write_for_test && options_.fail_write_for_test()) {
        ws = rocksdb::Status::IOError("injected write failure (test hook)");
    }
    if (ws.ok()) {
        overlay_.for_each_write(Cf::Retained, [&](const std::string& key, const Overlay::Kv& kv) {
            if (kv.live) {
                retained_.insert(key);
            }
            return true;
        });
    }
    if (ws.ok() && wb.Count() > 0) {
        const auto t0 = std::chrono::steady_clock::now();
        ws = db_.db().Write(write_options_, &wb);
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - t0);
        db_.timings().write_us.observe(static_cast<uint64_t>(us.count()));
    }
    db_.timings().group_batches.observe(group.size());
    if (!ws.ok()) {
        return write_error(options_.dir, ws);
    }
    publish(totals, hwm);
    return Status::ok();
}

Status RocksGroupWriter::resume() {
    rocksdb::Status s = db_.db().Resume();
    if (!s.ok()) {
        return write_error(options_.dir, s);
    }
    return Status::ok();
}

Status write_error(const std::string& dir, const rocksdb::Status& s) {
    std::string what = "write to " + dir + " failed: " + s.ToString();
    // A full file system: RocksDB's own NoSpace subcode (its posix layer maps ENOSPC to it), or
    // the errno text where a layer lost the subcode.
    if (s.IsNoSpace() || s.ToString().find("No space left on device") != std::string::npos) {
        return Status::no_space(std::move(what));
    }
    if (s.IsCorruption()) {
        return Status::corruption(std::move(what));
    }
    return Status::io_error(std::move(what));
}

void RocksGroupWriter::end_group() {
    overlay_.end_group();
}

// Each key once, at its state after the group (see ABSORPTION in rocks_store.h).
rocksdb::Status RocksGroupWriter::add_keys(rocksdb::WriteBatch& wb) {
    rocksdb::Status ws;
    for (size_t i = 0; i < kNumCf && ws.ok(); ++i) {
        const Cf c = static_cast<Cf>(i);
        rocksdb::ColumnFamilyHandle* h = db_.cf(c);
        overlay_.for_each_write(c, [&](const std::string& key, const Overlay::Kv& kv) {
            ws = kv.live ? wb.Put(h, key, kv.value) : wb.Delete(h, key);
            return ws.ok();
        });
    }
    return ws;
}

// The derived state of the group, in the same write as the data it describes.
rocksdb::Status RocksGroupWriter::add_derived(rocksdb::WriteBatch& wb,
                                              const PerCounted<uint64_t>& totals,
                                              uint64_t hwm) {
    rocksdb::ColumnFamilyHandle* meta = db_.cf(Cf::Meta);
    const Deltas& d = overlay_.deltas();
    rocksdb::Status ws;
    for (size_t i = 0; i < totals.size() && ws.ok(); ++i) {
        if (d.count[i] != 0) {
            ws = wb.Put(meta, keys::count(static_cast<uint8_t>(i)), values::encode_u64(totals[i]));
        }
    }
    overlay_.for_each_session([&](const std::string& client, const Overlay::SessionState& st) {
        if (ws.ok()) {
            ws = st.erased ? wb.Delete(meta, keys::session_counts(client))
                           : wb.Put(meta, keys::session_counts(client), values::encode(st.c));
        }
        return ws.ok();
    });
    overlay_.for_each_refs([&](uint64_t id, const Overlay::Refs& st) {
        if (ws.ok() && st.live) {
            ws = wb.Put(meta, keys::refcount(id), values::encode_u64(st.rc));
        } else if (ws.ok() && st.in_db) {
            ws = wb.Delete(meta, keys::refcount(id));
        }
        return ws.ok();
    });
    if (ws.ok() && hwm != hwm_persisted_) {
        ws = wb.Put(meta, keys::kNextMessageId, values::encode_u64(hwm));
    }
    return ws;
}

void RocksGroupWriter::publish(const PerCounted<uint64_t>& totals, uint64_t hwm) {
    counts_.publish(totals);
    overlay_.for_each_write(Cf::Retained, [&](const std::string& key, const Overlay::Kv& kv) {
        if (!kv.live) {
            retained_.erase(key);
        }
        return true;
    });
    {
        auto cache = sessions_.lock();
        cache.make_room(overlay_.sessions_size());
        overlay_.for_each_session([&](const std::string& client, const Overlay::SessionState& st) {
            if (st.erased) {
                cache.erase(client);
            } else {
                cache.put(client, st.c);
            }
            return true;
        });
    }
    refs_.make_room(overlay_.refs_size(), next_id_.load(std::memory_order_relaxed));
    overlay_.for_each_refs([&](uint64_t id, const Overlay::Refs& st) {
        if (st.live) {
            refs_.put(id, st.rc);
        } else {
            refs_.erase(id);
        }
        return true;
    });
    hwm_persisted_ = hwm;
    queues_.absorb(overlay_.take_family(Cf::Queues));
}

}  // namespace mqttd::storage
