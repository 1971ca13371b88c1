// OpApplier: applies the ops of one logical batch (write_batch.h) to the group's Overlay
// (internal to storage/). Each op becomes changes of keys, message reference counts, session
// counts and global count deltas in the overlay; the group writer later turns the overlay into
// one rocksdb::WriteBatch. What the group has not touched yet is read from the committed state:
// the caches (QueueEntryCache, RefCountCache, SessionCountsCache), then RocksDB.
//
// REFERENCES AND INLINE MESSAGES (write_batch.h, contract 5). enqueue adds a reference to its
// message and remove_queued drops one; the message goes with its last reference. A message put
// by a batch that enqueues it exactly once, and not stored before, is kept inline in that one
// queue entry (values.h, kInlineQueueFormat): no `messages` record and no reference count. A
// message the batch puts and leaves with no reference is not stored.
//
// HOT PATH. put_message + enqueue of a new seq read nothing; remove_queued reads its entry
// (from the overlay, the caches, or one RocksDB Get) to learn its message. Reused buffers keep
// the per-op work free of allocations beyond the encoded values and new map nodes.
//
// Ownership: owned by the group writer; refers to the overlay, the caches and the DB, which it
// does not own and which outlive it. Thread-safety: none; the committer thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/counts.h"
#include "storage/overlay.h"
#include "storage/queue_cache.h"
#include "storage/status.h"
#include "storage/values.h"
#include "storage/write_batch.h"

namespace mqttd::storage {

class RocksDb;

class OpApplier {
public:
    OpApplier(const RocksDb& db,
              const std::string& dir,
              Overlay& overlay,
              const QueueEntryCache& queues,
              const RefCountCache& refs,
              const SessionCountsCache& sessions)
        : db_(db), dir_(dir), g_(overlay), queues_(queues), refs_(refs), sessions_(sessions) {}
    OpApplier(const OpApplier&) = delete;
    OpApplier& operator=(const OpApplier&) = delete;

    // Applies every op of `batch`, in order, to the overlay's open batch. Not ok: the batch is
    // invalid (InvalidArgument: a client id or topic with U+0000, an enqueue of an unknown
    // message) or a read failed; the caller then rolls the batch back.
    // REQUIRES: a batch is open in the overlay (Overlay::begin_batch).
    Status apply(const WriteBatch& batch);

private:
    // A message put by the batch being applied: how many of its enqueues the batch holds, and
    // its record while it waits for the one enqueue that stores it inline.
    struct NewMessage {
        uint64_t id = 0;
        uint32_t enqueues = 0;
        const MessageRecord* inline_rec = nullptr;
    };
    // A key's state after the ops applied so far.
    struct KeyState {
        // Its value when it exists; valid until the next read() or the next change of the key.
        const std::string* value = nullptr;
        bool in_db = false;  // it may be on disk before this group
        bool found() const { return value != nullptr; }
    };

    // Refuses a key component with U+0000 ([MQTT-1.5.4-2]; keys.h); ok for ops without one.
    template <typename O>
    static Status validate(const O&) {
        return Status::ok();
    }
    static Status validate(const op::PutSession& o);
    static Status validate(const op::DeleteSession& o);
    static Status validate(const op::PutSubscription& o);
    static Status validate(const op::DeleteSubscription& o);
    static Status validate(const op::Enqueue& o);
    static Status validate(const op::RemoveQueued& o);
    static Status validate(const op::PutInflight& o);
    static Status validate(const op::DeleteInflight& o);
    static Status validate(const op::PutRetained& o);
    static Status validate(const op::DeleteRetained& o);

    // One function per op (op_applier.cpp). REQUIRES: validate(o) is ok.
    Status apply_op(const op::PutSession& o);
    Status apply_op(const op::DeleteSession& o);
    Status apply_op(const op::PutSubscription& o);
    Status apply_op(const op::DeleteSubscription& o);
    Status apply_op(const op::PutMessage& o);
    Status apply_op(const op::Enqueue& o);
    Status apply_op(const op::RemoveQueued& o);
    Status apply_op(const op::PutInflight& o);
    Status apply_op(const op::DeleteInflight& o);
    Status apply_op(const op::PutRetained& o);
    Status apply_op(const op::DeleteRetained& o);
    Status apply_op(const op::PutRoute& o);
    Status apply_op(const op::DeleteRoute& o);
    Status apply_op(const op::PutConfig& o);
    Status apply_op(const op::DeleteConfig& o);
    Status apply_op(const op::PutUser& o);
    Status apply_op(const op::DeleteUser& o);

    // --- keys ---
    Result<KeyState, Status> read(Cf c, std::string_view key);
    // A put / removal after reading the key: true when the put created it / it existed.
    Result<bool, Status> put_tracked(Cf c, std::string_view key, std::string value);
    Result<bool, Status> erase_tracked(Cf c, std::string_view key);
    // put_tracked / erase_tracked that also count the key in the `counted` total.
    Status put_counted(Cf c, Counted counted, std::string_view key, std::string value);
    Status delete_counted(Cf c, Counted counted, std::string_view key);
    // The session's keys of family `c` (key -> value) as the ops so far left them.
    Result<std::map<std::string, std::string>, Status> client_keys(Cf c, const std::string& prefix);

    // --- references and session counts ---
    // The reference state of message `id` for this batch to change (staged in the overlay);
    // peek_refs only reads it.
    Result<Overlay::Refs*, Status> refs(uint64_t id);
    Result<Overlay::Refs, Status> peek_refs(uint64_t id);
    Result<Overlay::Refs, Status> committed_refs(uint64_t id) const;
    Result<Overlay::SessionState*, Status> session(std::string_view client_id);
    // When `changed` (a put created / a removal removed a key of the session), applies
    // `adjust` to the session's counts.
    template <typename Adjust>
    Status count_in_session(std::string_view client_id,
                            const Result<bool, Status>& changed,
                            Adjust adjust);
    Status unref(uint64_t id);
    // Releases what a removed queue entry held (`entry`: values::peek_queue_entry of its stored
    // value): its inline message, or its reference to a `messages` record. An unreadable entry
    // (nullopt) releases nothing.
    Status release_entry(const std::optional<values::QueueEntryRef>& entry);
    // Indexes the batch's put_message ops and counts their enqueues (NewMessage).
    void index_new_messages(const WriteBatch& batch);
    NewMessage* new_message(uint64_t id);
    // Drops the messages the batch put and left with no reference (write_batch.h).
    Status drop_unreferenced();
    Deltas& deltas() { return g_.batch_deltas(); }

    const RocksDb& db_;
    const std::string& dir_;  // for error messages
    Overlay& g_;
    const QueueEntryCache& queues_;
    const RefCountCache& refs_;
    const SessionCountsCache& sessions_;

    // Scratch of the batch being applied, reused: its new messages (sorted by id), the ids of
    // the `messages` records it put, a key buffer, and the value of the last read() that came
    // from RocksDB.
    std::vector<NewMessage> new_messages_;
    std::vector<uint64_t> put_records_;
    std::string key_buf_;
    std::string read_buf_;
};

}  // namespace mqttd::storage
