// Overlay: the state, after the batches applied so far, of every key, message reference count
// and session count that one group commit touches, with the undo journal that rolls a failed
// batch back alone (internal to storage/; see rocks_store.h, GROUP COMMIT and ABSORPTION).
//
// INVARIANTS
//  1. One state per key (per column family), per message id (Refs) and per client id
//     (SessionState) for the whole group: batches apply their ops to it in queue order, so each
//     sees what the earlier batches of its group left, and the group writes each key once, at
//     its final state.
//  2. in_db says whether the key may exist on disk before this group. It is set when the group
//     first touches the key and never changes for the rest of the group; rollback restores it
//     with the rest of the entry.
//  3. What the group writes (for_each_write): a live key is a Put of its value; a removed key
//     is a Delete only when in_db; a key created and removed within the group (in_db false) is
//     not written at all.
//  4. Between begin_batch() and commit_batch() / rollback_batch() exactly one batch is open.
//     The first change the batch makes to an entry journals the entry's state before the batch
//     (or that the batch created it); later changes by the same batch are not journaled, so
//     the journal holds each entry at most once, at its pre-batch state.
//  5. rollback_batch() restores every entry the batch changed to exactly its pre-batch state,
//     newest first, removes the entries it created, and drops the batch's Deltas: the group is
//     as if the batch had never been applied. commit_batch() keeps the changes as they are (no
//     merge, no copy) and adds the batch's Deltas to the group's. Both empty the journal, which
//     keeps its capacity for the next batch (no allocation per batch once warm).
//  6. A value returned by find() stays valid until the next change of that key, rollback,
//     take_family() of its family, or end_group().
//
// The per-key operations are defined in this header: they run for every op of every batch,
// and the committer's hot path must not pay a call across translation units for them.
//
// Ownership: owned by the group writer, reused for every group; the maps of a group are
// released by end_group(). Thread-safety: none; the committer thread only.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/counts.h"
#include "storage/records.h"
#include "storage/schema.h"
#include "storage/string_map.h"

namespace mqttd::storage {

class Overlay {
public:
    // A key's state: its value when live; in_db when it may be on disk before this group.
    struct Kv {
        std::string value;
        bool live = false;
        bool in_db = true;
    };
    // A message's references; live when its `messages` record exists; in_db when the record
    // and its count may be on disk before this group.
    struct Refs {
        uint64_t rc = 0;
        bool live = false;
        bool in_db = false;
    };
    // A session's counts; erased when delete_session drops its meta key.
    struct SessionState {
        SessionCounts c;
        bool erased = false;
    };
    // An entry with the number of the batch that last journaled it.
    template <typename T>
    struct Stamped {
        T state;
        uint64_t stamp = 0;
    };
    using KvMap = StringMap<Stamped<Kv>>;

    Overlay() = default;
    Overlay(const Overlay&) = delete;
    Overlay& operator=(const Overlay&) = delete;

    // --- groups and batches (invariants 4, 5) ---
    void begin_batch() {
        ++stamp_;
        batch_ = Deltas{};
    }
    void commit_batch();
    void rollback_batch();
    // Releases the group's state. REQUIRES: no batch open.
    void end_group();

    // --- keys ---
    // The key's state after the ops applied so far; nullptr when the group has not touched it.
    const Kv* find(Cf c, std::string_view key) const {
        const KvMap& m = kv_[static_cast<size_t>(c)];
        auto it = m.find(key);
        return it == m.end() ? nullptr : &it->second.state;
    }
    // `in_db` applies when the group has not touched the key yet (invariant 2).
    void put(Cf c, std::string_view key, std::string value, bool in_db) {
        Kv& kv = stage(c, key, in_db);
        kv.value = std::move(value);
        kv.live = true;
    }
    void erase(Cf c, std::string_view key, bool in_db) {
        Kv& kv = stage(c, key, in_db);
        kv.value.clear();
        kv.live = false;
    }
    // Every key of family `c` the group touched, as the ops so far left it.
    const KvMap& family(Cf c) const { return kv_[static_cast<size_t>(c)]; }
    // Moves the entries of family `c` out (after the group's write). REQUIRES: no batch open.
    KvMap take_family(Cf c) { return std::exchange(kv_[static_cast<size_t>(c)], KvMap{}); }
    // Calls fn(const std::string& key, const Kv&) for each key of family `c` the group writes
    // (invariant 3), in key order, until fn returns false. Returns false when fn did.
    template <typename Fn>
    bool for_each_write(Cf c, Fn&& fn);
    // An upper bound of the bytes the group's keys take in a rocksdb::WriteBatch.
    size_t write_bytes() const;

    // --- message references ---
    const Refs* find_refs(uint64_t id) const {
        auto it = refs_.find(id);
        return it == refs_.end() ? nullptr : &it->second.state;
    }
    // The entry of `id` for the open batch to change (journaled); nullptr when the group has
    // not touched it.
    Refs* touch_refs(uint64_t id) {
        auto it = refs_.find(id);
        if (it == refs_.end()) {
            return nullptr;
        }
        if (it->second.stamp != stamp_) {
            refs_undo_.push_back(RefsUndo{&*it, false, it->second});
            it->second.stamp = stamp_;
        }
        return &it->second.state;
    }
    // Adds the entry of `id` with its committed state, journaled as created.
    // REQUIRES: find_refs(id) == nullptr.
    Refs& add_refs(uint64_t id, const Refs& committed) {
        auto it = refs_.emplace(id, Stamped<Refs>{committed, stamp_}).first;
        refs_undo_.push_back(RefsUndo{&*it, true, {}});
        return it->second.state;
    }
    // fn(uint64_t id, const Refs&) for each, until fn returns false.
    template <typename Fn>
    bool for_each_refs(Fn&& fn) const {
        for (const auto& [id, e] : refs_) {
            if (!fn(id, e.state)) {
                return false;
            }
        }
        return true;
    }
    size_t refs_size() const { return refs_.size(); }

    // --- session counts ---
    // As touch_refs. The first touch by a batch also clears `erased`: a later batch than the
    // one that deleted the session writes the counts it leaves.
    SessionState* touch_session(std::string_view client_id) {
        auto it = sessions_.find(client_id);
        if (it == sessions_.end()) {
            return nullptr;
        }
        if (it->second.stamp != stamp_) {
            sessions_undo_.push_back(SessionUndo{&*it, false, it->second});
            it->second.stamp = stamp_;
            it->second.state.erased = false;
        }
        return &it->second.state;
    }
    // As add_refs. REQUIRES: touch_session(client_id) == nullptr.
    SessionState& add_session(std::string_view client_id, const SessionCounts& committed) {
        auto it = sessions_
                          .emplace(std::string(client_id),
                                   Stamped<SessionState>{SessionState{committed, false}, stamp_})
                          .first;
        sessions_undo_.push_back(SessionUndo{&*it, true, {}});
        return it->second.state;
    }
    // fn(const std::string& client_id, const SessionState&) for each, until fn returns false.
    template <typename Fn>
    bool for_each_session(Fn&& fn) const {
        for (const auto& [client, e] : sessions_) {
            if (!fn(client, e.state)) {
                return false;
            }
        }
        return true;
    }
    size_t sessions_size() const { return sessions_.size(); }

    // --- global count changes ---
    // Of the open batch.
    Deltas& batch_deltas() { return batch_; }
    // Of the group's committed batches.
    const Deltas& deltas() const { return group_; }

private:
    using RefsMap = std::unordered_map<uint64_t, Stamped<Refs>>;
    using SessionMap = StringMap<Stamped<SessionState>>;
    // Journal entries: the node the batch changed, and its pre-batch state unless it created
    // it. Node pointers stay valid: nodes of an unordered_map do not move on rehash.
    struct KvUndo {
        size_t cf;
        KvMap::value_type* node;
        bool created;
        Stamped<Kv> old;
    };
    struct RefsUndo {
        RefsMap::value_type* node;
        bool created;
        Stamped<Refs> old;
    };
    struct SessionUndo {
        SessionMap::value_type* node;
        bool created;
        Stamped<SessionState> old;
    };

    // The entry of `key` for the open batch to change, journaled on its first change by the
    // batch. A journaled entry's old value moves to the journal: put and erase overwrite or
    // clear it next, and live/in_db stay as they were until they do.
    Kv& stage(Cf c, std::string_view key, bool in_db) {
        const size_t i = static_cast<size_t>(c);
        KvMap& m = kv_[i];
        auto it = m.find(key);
        if (it == m.end()) {
            it = m.emplace(std::string(key), Stamped<Kv>{Kv{{}, false, in_db}, stamp_}).first;
            kv_undo_.push_back(KvUndo{i, &*it, true, {}});
        } else if (it->second.stamp != stamp_) {
            kv_undo_.push_back(KvUndo{i, &*it, false, {}});
            Stamped<Kv>& old = kv_undo_.back().old;
            old.state.value = std::move(it->second.state.value);
            old.state.live = it->second.state.live;
            old.state.in_db = it->second.state.in_db;
            old.stamp = it->second.stamp;
            it->second.stamp = stamp_;
        }
        return it->second.state;
    }
    void clear_journal();

    std::array<KvMap, kNumCf> kv_;
    RefsMap refs_;
    SessionMap sessions_;
    Deltas group_;
    Deltas batch_;
    uint64_t stamp_ = 0;  // numbers the batches; the open batch has the highest
    std::vector<KvUndo> kv_undo_;
    std::vector<RefsUndo> refs_undo_;
    std::vector<SessionUndo> sessions_undo_;
    std::vector<const KvMap::value_type*> sorted_;  // scratch of for_each_write
};

template <typename Fn>
bool Overlay::for_each_write(Cf c, Fn&& fn) {
    // In key order: each memtable insert then starts next to the previous one.
    sorted_.clear();
    for (const auto& e : kv_[static_cast<size_t>(c)]) {
        if (e.second.state.live || e.second.state.in_db) {
            sorted_.push_back(&e);
        }
    }
    std::sort(sorted_.begin(), sorted_.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    for (const auto* e : sorted_) {
        if (!fn(e->first, e->second.state)) {
            return false;
        }
    }
    return true;
}

}  // namespace mqttd::storage
