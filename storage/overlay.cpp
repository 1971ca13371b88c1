// Overlay: the batch boundaries and the group's release; the per-key operations are in
// storage/overlay.h with the invariants they keep.
#include "storage/overlay.h"

namespace mqttd::storage {

void Overlay::commit_batch() {
    group_.add(batch_);
    clear_journal();
}

void Overlay::rollback_batch() {
    // Each entry is journaled once (invariant 4), so every record restores or removes a
    // different entry; newest first is the order of an undo log all the same.
    for (auto it = kv_undo_.rbegin(); it != kv_undo_.rend(); ++it) {
        KvMap& m = kv_[it->cf];
        if (it->created) {
            // By a copy of the key: erase(find(key)) trips GCC 12's -Wnull-dereference.
            const std::string key = it->node->first;
            m.erase(key);
        } else {
            it->node->second = std::move(it->old);
        }
    }
    for (auto it = refs_undo_.rbegin(); it != refs_undo_.rend(); ++it) {
        if (it->created) {
            const uint64_t id = it->node->first;
            refs_.erase(id);
        } else {
            it->node->second = it->old;
        }
    }
    for (auto it = sessions_undo_.rbegin(); it != sessions_undo_.rend(); ++it) {
        if (it->created) {
            const std::string client = it->node->first;
            sessions_.erase(client);
        } else {
            it->node->second = it->old;
        }
    }
    batch_ = Deltas{};
    clear_journal();
}

namespace {

// A fresh map rather than clear(): clear() keeps a bucket array sized for the largest group and
// then zeroes it for every later one. A map the group never touched is left as it is.
template <typename Map>
void release(Map& m) {
    if (!m.empty() || m.bucket_count() > 1) {
        m = Map{};
    }
}

}  // namespace

void Overlay::end_group() {
    for (KvMap& m : kv_) {
        release(m);
    }
    release(refs_);
    release(sessions_);
    group_ = Deltas{};
    batch_ = Deltas{};
}

size_t Overlay::write_bytes() const {
    size_t bytes = 0;
    for (const KvMap& m : kv_) {
        for (const auto& [key, e] : m) {
            bytes += key.size() + e.state.value.size() + 16;  // + tag, family, two varint lengths
        }
    }
    return bytes;
}

void Overlay::clear_journal() {
    kv_undo_.clear();
    refs_undo_.clear();
    sessions_undo_.clear();
}

}  // namespace mqttd::storage
