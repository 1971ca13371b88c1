// Derived counts; see storage/counts.h.
#include "storage/counts.h"

#include "storage/keys.h"
#include "storage/rocks_db.h"
#include "storage/values.h"

namespace mqttd::storage {

void Deltas::add(const Deltas& o) {
    for (size_t i = 0; i < count.size(); ++i) {
        count[i] += o.count[i];
    }
    if (o.has_message) {
        add_message(o.max_message_id);
    }
}

Counts::Counts(const PerCounted<uint64_t>& loaded) {
    for (size_t i = 0; i < loaded.size(); ++i) {
        now_[i].store(loaded[i], std::memory_order_relaxed);
        max_[i].store(loaded[i], std::memory_order_relaxed);
    }
}

PerCounted<uint64_t> Counts::after(const Deltas& d) const {
    PerCounted<uint64_t> totals{};
    for (size_t i = 0; i < totals.size(); ++i) {
        const int64_t v =
                static_cast<int64_t>(now_[i].load(std::memory_order_relaxed)) + d.count[i];
        totals[i] = v < 0 ? 0 : static_cast<uint64_t>(v);
    }
    return totals;
}

void Counts::publish(const PerCounted<uint64_t>& totals) {
    for (size_t i = 0; i < totals.size(); ++i) {
        now_[i].store(totals[i], std::memory_order_relaxed);
        if (totals[i] > max_[i].load(std::memory_order_relaxed)) {
            max_[i].store(totals[i], std::memory_order_relaxed);
        }
    }
}

const SessionCounts* SessionCountsCache::Locked::find(std::string_view client_id) const {
    auto it = map_.find(client_id);
    return it == map_.end() ? nullptr : &it->second;
}

void SessionCountsCache::Locked::put(std::string_view client_id, const SessionCounts& c) {
    if (auto it = map_.find(client_id); it != map_.end()) {
        it->second = c;
        return;
    }
    map_.emplace(std::string(client_id), c);
}

void SessionCountsCache::Locked::erase(std::string_view client_id) {
    if (auto it = map_.find(client_id); it != map_.end()) {
        map_.erase(it);
    }
}

void SessionCountsCache::Locked::make_room(size_t incoming) {
    if (map_.size() + incoming > kMaxEntries) {
        map_.clear();
    }
}

std::optional<SessionCounts> SessionCountsCache::find(std::string_view client_id) const {
    std::lock_guard lock(mu_);
    auto it = map_.find(client_id);
    return it == map_.end() ? std::nullopt : std::optional<SessionCounts>(it->second);
}

Result<SessionCounts, Status> SessionCountsCache::load(const RocksDb& db,
                                                       const std::string& dir,
                                                       std::string_view client_id) const {
    if (auto cached = find(client_id)) {
        return *cached;
    }
    std::string v;
    rocksdb::Status s = db.db().Get(rocksdb::ReadOptions(), db.cf(Cf::Meta),
                                    keys::session_counts(client_id), &v);
    if (s.IsNotFound()) {
        return SessionCounts{};
    }
    if (!s.ok()) {
        return Err{Status::io_error("read of " + dir + " failed: " + s.ToString())};
    }
    auto c = values::decode_counts(v);
    if (!c) {
        return Err{Status::corruption("bad session counts of " + std::string(client_id) + " in " +
                                      dir)};
    }
    return *c;
}

Result<std::optional<uint64_t>, Status> RefCountCache::read(const RocksDb& db,
                                                            const std::string& dir,
                                                            uint64_t id) const {
    std::string v;
    rocksdb::Status s =
            db.db().Get(rocksdb::ReadOptions(), db.cf(Cf::Meta), keys::refcount(id), &v);
    if (s.IsNotFound()) {
        return std::optional<uint64_t>();
    }
    if (!s.ok()) {
        return Err{Status::io_error("read of " + dir + " failed: " + s.ToString())};
    }
    auto n = values::decode_u64(v);
    if (!n) {
        return Err{Status::corruption("bad reference count of message " + std::to_string(id) +
                                      " in " + dir)};
    }
    return std::optional<uint64_t>(*n);
}

void RefCountCache::make_room(size_t incoming, uint64_t next_id) {
    if (map_.size() + incoming > kMaxEntries) {
        map_.clear();
        floor_ = next_id;
    }
}

}  // namespace mqttd::storage
