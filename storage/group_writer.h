// RocksGroupWriter: turns one group of logical batches into ONE rocksdb DB::Write (internal to
// storage/; see rocks_store.h, GROUP COMMIT). For each group, on the committer thread:
//   1. QueueEntryCache::prefetch   reads ahead, in one MultiGet, the queue entries its
//                                  removals may find on disk;
//   2. OpApplier::apply            applies each batch to the Overlay in queue order; a batch
//                                  that fails is rolled back alone (Overlay::rollback_batch)
//                                  and the others commit;
//   3. write                       the overlay's keys (each once, at its final state, in key
//                                  order) and the derived state they change (counts, session
//                                  counts, reference counts, the message id high-water mark)
//                                  into one rocksdb::WriteBatch, written with
//                                  WriteOptions.sync = Options::sync;
//   4. publish                     once the write succeeded: the counts and caches take the
//                                  group's state (after a failed write they stay as they were).
// The retained index (retained_index.h) takes the group's retained puts before step 3 and its
// deletes in step 4, so it always holds every retained key on disk.
// Completions and the sticky error are the Committer's.
//
// Ownership: owned by RocksStore with the DB, counts and session-count cache it refers to.
// Thread-safety: the committer thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include <rocksdb/options.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include "storage/committer.h"
#include "storage/counts.h"
#include "storage/op_applier.h"
#include "storage/overlay.h"
#include "storage/queue_cache.h"
#include "storage/retained_index.h"
#include "storage/store.h"

namespace mqttd::storage {

class RocksDb;

// A failed DB::Write or DB::Resume as the store's Status: NoSpace for a full file system (ENOSPC,
// recoverable: committer.h, OUT OF SPACE), Corruption, else IoError (read-only or vanished file
// system, EIO: sticky).
Status write_error(const std::string& dir, const rocksdb::Status& s);

class RocksGroupWriter final : public GroupWriter {
public:
    // `next_id` is the store's message id counter (read when a cache is trimmed).
    RocksGroupWriter(const Options& options,
                     const RocksDb& db,
                     Counts& counts,
                     SessionCountsCache& sessions,
                     const std::atomic<uint64_t>& next_id,
                     const MessageIdState& ids,
                     RetainedIndex& retained);

    Status write_group(std::span<const PendingCommit> group, std::span<Status> results) override;
    void end_group() override;
    Status resume() override;

private:
    rocksdb::Status add_keys(rocksdb::WriteBatch& wb);
    rocksdb::Status add_derived(rocksdb::WriteBatch& wb,
                                const PerCounted<uint64_t>& totals,
                                uint64_t hwm);
    void publish(const PerCounted<uint64_t>& totals, uint64_t hwm);

    const Options& options_;
    const RocksDb& db_;
    rocksdb::WriteOptions write_options_;
    Counts& counts_;
    SessionCountsCache& sessions_;
    const std::atomic<uint64_t>& next_id_;
    RefCountCache refs_;
    QueueEntryCache queues_;
    Overlay overlay_;
    OpApplier applier_;
    RetainedIndex& retained_;
    uint64_t hwm_persisted_;  // meta "next_message_id" as last written
};

}  // namespace mqttd::storage
