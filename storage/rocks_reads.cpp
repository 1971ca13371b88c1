// Reads of RocksStore: point lookups, paging from one snapshot, and the retained-topic
// wildcard walk.
//
// match_retained (a SUBSCRIBE's retained messages) asks the in-memory RetainedIndex
// (retained_index.h) which topics match and reads only those; the walk below answers the
// paged REST listing, whose cursor resumes from one snapshot.
//
// RETAINED WALK. Retained keys are level-encoded (keys.h: '/' -> 0x00), so the topics under
// "a/b/" are exactly the keys with prefix "a" 0x00 "b" 0x00, and for two different values L1 < L2
// of one level every key below L1 sorts before every key below L2. The walk goes level by
// level with prefix P (the levels matched so far, each followed by 0x00):
//   literal L   -> recurse with P L 0x00 (last level: one point seek for P L);
//   '+'         -> Seek(P); read the level value L of the key found; recurse (or, at the last
//                  level, match the key P L itself); then Seek(P L 0x01) to skip the whole
//                  subtree of L. One seek per distinct value of that level, never per topic;
//   '#'         -> the parent P without its 0x00 ("a/#" matches "a" [MQTT-4.7.1-2]), then every
//                  key with prefix P.
// A filter starting with '+' or '#' skips first-level values starting with '$'
// [MQTT-4.7.2-1] with one Seek past them. The walk emits keys in ascending order, so paging
// resumes after the cursor key by starting each level's seek at the cursor.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "storage/keys.h"
#include "storage/rocks_store.h"
#include "storage/values.h"

namespace mqttd::storage {
namespace {

// Holds a snapshot for the lifetime of one paged read. A secondary instance (Options::
// secondary_dir) refuses iterators on a snapshot, and needs none: it does not move on unless
// told to catch up with the primary, so every read sees one state.
class SnapshotGuard {
public:
    SnapshotGuard(rocksdb::DB* db, bool take)
        : db_(db), snap_(take ? db->GetSnapshot() : nullptr) {}
    ~SnapshotGuard() {
        if (snap_ != nullptr) {
            db_->ReleaseSnapshot(snap_);
        }
    }
    SnapshotGuard(const SnapshotGuard&) = delete;
    SnapshotGuard& operator=(const SnapshotGuard&) = delete;
    const rocksdb::Snapshot* get() const { return snap_; }

private:
    rocksdb::DB* db_;
    const rocksdb::Snapshot* snap_;
};

std::vector<std::string_view> split_levels(std::string_view filter) {
    std::vector<std::string_view> levels;
    size_t start = 0;
    for (;;) {
        size_t slash = filter.find('/', start);
        if (slash == std::string_view::npos) {
            levels.push_back(filter.substr(start));
            return levels;
        }
        levels.push_back(filter.substr(start, slash - start));
        start = slash + 1;
    }
}

using Emit = std::function<bool(std::string_view, std::string_view)>;

class RetainedWalk {
public:
    RetainedWalk(rocksdb::Iterator* it,
                 std::vector<std::string_view> levels,
                 const std::string* after,
                 const Emit& emit)
        : it_(it), levels_(std::move(levels)), after_(after), emit_(emit) {}

    // Returns false when emit asked to stop.
    bool walk(size_t i, std::string& prefix) {
        const std::string_view lvl = levels_[i];
        const bool last = i + 1 == levels_.size();
        if (lvl == "#") {
            if (i > 0) {
                std::string parent = prefix.substr(0, prefix.size() - 1);
                if (!point(parent)) {
                    return false;
                }
            }
            return scan(prefix, i == 0);
        }
        if (lvl == "+") {
            return each_value(i, prefix, last);
        }
        const size_t mark = prefix.size();
        prefix.append(lvl);
        bool go_on = true;
        if (last) {
            go_on = point(prefix);
        } else {
            prefix.push_back(keys::kSep);
            go_on = walk(i + 1, prefix);
        }
        prefix.resize(mark);
        return go_on;
    }

private:
    bool wanted(std::string_view key) const { return after_ == nullptr || key > *after_; }

    bool point(const std::string& key) {
        if (!wanted(key)) {
            return true;
        }
        it_->Seek(key);
        if (it_->Valid() && it_->key().ToStringView() == key) {
            return emit_(key, it_->value().ToStringView());
        }
        return true;
    }

    // Every key with `prefix`, in order.
    bool scan(const std::string& prefix, bool skip_dollar) {
        std::string start = prefix;
        if (after_ != nullptr && *after_ > start) {
            start = *after_;
        }
        for (it_->Seek(start); it_->Valid(); it_->Next()) {
            std::string_view key = it_->key().ToStringView();
            if (key.substr(0, prefix.size()) != prefix) {
                break;
            }
            if (skip_dollar && !key.empty() && key[0] == '$') {
                it_->Seek(keys::prefix_end("$"));
                if (!it_->Valid()) {
                    break;
                }
                key = it_->key().ToStringView();
                if (key.substr(0, prefix.size()) != prefix) {
                    break;
                }
            }
            if (wanted(key) && !emit_(key, it_->value().ToStringView())) {
                return false;
            }
        }
        return true;
    }

    // '+' at level i: one visit per distinct level value under `prefix`.
    bool each_value(size_t i, std::string& prefix, bool last) {
        std::string target = prefix;
        if (after_ != nullptr && after_->compare(0, prefix.size(), prefix) == 0) {
            size_t end = after_->find(keys::kSep, prefix.size());
            target = after_->substr(0, end);  // P + the cursor's value at this level
        }
        const size_t mark = prefix.size();
        it_->Seek(target);
        while (it_->Valid()) {
            std::string_view key = it_->key().ToStringView();
            if (key.substr(0, mark) != std::string_view(prefix).substr(0, mark)) {
                break;
            }
            size_t end = key.find(keys::kSep, mark);
            std::string value(key.substr(
                    mark, end == std::string_view::npos ? key.size() - mark : end - mark));
            if (i == 0 && !value.empty() && value[0] == '$') {
                it_->Seek(keys::prefix_end("$"));
                continue;
            }
            bool go_on = true;
            prefix.append(value);
            if (last) {
                // The iterator is at P value itself when that topic exists (it sorts first).
                if (end == std::string_view::npos && wanted(key)) {
                    go_on = emit_(key, it_->value().ToStringView());
                }
            } else {
                prefix.push_back(keys::kSep);
                go_on = walk(i + 1, prefix);
                prefix.pop_back();
            }
            prefix.push_back('\x01');
            it_->Seek(prefix);  // past the subtree of this value
            prefix.resize(mark);
            if (!go_on) {
                return false;
            }
        }
        return true;
    }

    rocksdb::Iterator* it_;
    std::vector<std::string_view> levels_;
    const std::string* after_;
    const Emit& emit_;
};

}  // namespace

std::optional<std::string> RocksStore::get_raw(Cf c, std::string_view key) const {
    std::string v;
    rocksdb::Status s = db_.db().Get(rocksdb::ReadOptions(), db_.cf(c), rocksdb::Slice(key), &v);
    if (!s.ok()) {
        return std::nullopt;
    }
    return v;
}

template <typename T, typename Decode>
Page<T> RocksStore::page_of(Cf c,
                            std::string_view prefix,
                            const PageRequest& req,
                            Decode decode) const {
    Page<T> page;
    SnapshotGuard snap(&db_.db(), options_.secondary_dir.empty());
    rocksdb::ReadOptions ro;
    ro.snapshot = snap.get();
    std::string upper = keys::prefix_end(prefix);
    rocksdb::Slice upper_slice(upper);
    if (!upper.empty()) {
        ro.iterate_upper_bound = &upper_slice;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(ro, db_.cf(c)));
    if (!req.cursor.empty()) {
        auto after = keys::from_cursor(req.cursor);
        if (!after) {
            return page;
        }
        // The smallest key greater than `after` is `after` 0x00: one seek.
        after->push_back('\0');
        it->Seek(std::max(*after, std::string(prefix)));
    } else {
        it->Seek(rocksdb::Slice(prefix));
        for (uint64_t n = 0; n < req.skip && it->Valid(); ++n) {
            it->Next();
        }
    }
    std::string last;
    for (; it->Valid() && page.items.size() < req.limit; it->Next()) {
        if (auto rec = decode(it->key().ToStringView(), it->value().ToStringView())) {
            page.items.push_back(std::move(*rec));
        }
        last = it->key().ToString();
    }
    if (it->Valid() && !last.empty()) {
        page.next_cursor = keys::to_cursor(last);
    }
    return page;
}

std::optional<SessionRecord> RocksStore::get_session(std::string_view client_id) const {
    auto v = get_raw(Cf::Sessions, client_id);
    if (!v) {
        return std::nullopt;
    }
    return values::decode_session(client_id, *v);
}

SessionCounts RocksStore::session_counts(std::string_view client_id) const {
    if (auto cached = session_counts_.find(client_id)) {
        return *cached;
    }
    if (auto v = get_raw(Cf::Meta, keys::session_counts(client_id))) {
        if (auto c = values::decode_counts(*v)) {
            return *c;
        }
    }
    return {};
}

Page<SessionRecord> RocksStore::sessions(const PageRequest& req) const {
    return page_of<SessionRecord>(
            Cf::Sessions, "", req,
            [](std::string_view k, std::string_view v) { return values::decode_session(k, v); });
}

Status RocksStore::for_each_session(const std::function<void(SessionRecord&&)>& fn) const {
    std::unique_ptr<rocksdb::Iterator> it(
            db_.db().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::Sessions)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        auto rec = values::decode_session(it->key().ToStringView(), it->value().ToStringView());
        if (!rec) {
            return Status::corruption("bad session record in " + options_.dir);
        }
        fn(std::move(*rec));
    }
    return it->status().ok() ? Status::ok() : Status::io_error(it->status().ToString());
}

namespace {
std::optional<SubscriptionRecord> decode_sub_kv(std::string_view k, std::string_view v) {
    auto parts = keys::parse_subscription(k);
    if (!parts) {
        return std::nullopt;
    }
    return values::decode_subscription(parts->first, parts->second, v);
}
}  // namespace

std::vector<SubscriptionRecord> RocksStore::subscriptions_of(std::string_view client_id) const {
    std::vector<SubscriptionRecord> out;
    const std::string prefix = keys::client_prefix(client_id);
    std::unique_ptr<rocksdb::Iterator> it(
            db_.db().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::Subscriptions)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        if (auto r = decode_sub_kv(it->key().ToStringView(), it->value().ToStringView())) {
            out.push_back(std::move(*r));
        }
    }
    return out;
}

Page<SubscriptionRecord> RocksStore::subscriptions(const PageRequest& req) const {
    return page_of<SubscriptionRecord>(Cf::Subscriptions, "", req, decode_sub_kv);
}

Status RocksStore::for_each_subscription(
        const std::function<void(SubscriptionRecord&&)>& fn) const {
    std::unique_ptr<rocksdb::Iterator> it(
            db_.db().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::Subscriptions)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        auto rec = decode_sub_kv(it->key().ToStringView(), it->value().ToStringView());
        if (!rec) {
            return Status::corruption("bad subscription record in " + options_.dir);
        }
        fn(std::move(*rec));
    }
    return it->status().ok() ? Status::ok() : Status::io_error(it->status().ToString());
}

std::vector<QueuedMessage> RocksStore::read_queue(std::string_view client_id,
                                                  uint64_t from_seq,
                                                  uint32_t limit) const {
    std::vector<QueuedMessage> out;
    SnapshotGuard snap(&db_.db(), options_.secondary_dir.empty());
    rocksdb::ReadOptions ro;
    ro.snapshot = snap.get();
    const std::string prefix = keys::client_prefix(client_id);
    std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(ro, db_.cf(Cf::Queues)));
    for (it->Seek(keys::queue(client_id, from_seq));
         it->Valid() && it->key().starts_with(prefix) && out.size() < limit; it->Next()) {
        auto k = keys::parse_queue(it->key().ToStringView());
        if (!k) {
            continue;
        }
        std::optional<MessageRecord> m;
        if (auto e = values::decode_queue_entry(client_id, k->second, it->value().ToStringView(),
                                                &m)) {
            out.push_back(QueuedMessage{std::move(*e), m ? std::move(*m) : MessageRecord{}});
        }
    }
    join_messages(ro, out);
    // A dangling reference (no message): the entry is skipped.
    std::erase_if(out, [](const QueuedMessage& q) { return q.message.id == 0; });
    return out;
}

void RocksStore::join_messages(const rocksdb::ReadOptions& ro,
                               std::vector<QueuedMessage>& entries) const {
    std::vector<std::string> key_store;
    std::vector<size_t> at;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].message.id == 0) {  // not inline: in `messages`
            key_store.push_back(keys::message(entries[i].entry.message_id));
            at.push_back(i);
        }
    }
    if (at.empty()) {
        return;
    }
    std::vector<rocksdb::Slice> key_slices(key_store.begin(), key_store.end());
    std::vector<rocksdb::PinnableSlice> vals(at.size());
    std::vector<rocksdb::Status> statuses(at.size());
    db_.db().MultiGet(ro, db_.cf(Cf::Messages), key_slices.size(), key_slices.data(), vals.data(),
                      statuses.data());
    for (size_t j = 0; j < at.size(); ++j) {
        QueuedMessage& q = entries[at[j]];
        if (!statuses[j].ok()) {
            continue;
        }
        if (auto m = values::decode_message(q.entry.message_id, vals[j].ToStringView())) {
            q.message = std::move(*m);
        }
    }
}

Page<QueuedMessage> RocksStore::queue_page(std::string_view client_id,
                                           const PageRequest& req) const {
    const std::string prefix = keys::client_prefix(client_id);
    auto page = page_of<QueuedMessage>(
            Cf::Queues, prefix, req, [](std::string_view k, std::string_view v) {
                std::optional<QueuedMessage> r;
                if (auto key = keys::parse_queue(k)) {
                    std::optional<MessageRecord> m;
                    if (auto e = values::decode_queue_entry(key->first, key->second, v, &m)) {
                        r = QueuedMessage{std::move(*e), m ? std::move(*m) : MessageRecord{}};
                    }
                }
                return r;
            });
    join_messages(rocksdb::ReadOptions(), page.items);
    return page;
}

std::vector<InflightRecord> RocksStore::inflight_of(std::string_view client_id) const {
    std::vector<InflightRecord> out;
    const std::string prefix = keys::client_prefix(client_id);
    std::unique_ptr<rocksdb::Iterator> it(
            db_.db().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::Inflight)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        auto r = keys::parse_inflight(it->key().ToStringView());
        if (r && values::decode_inflight(it->value().ToStringView(), *r)) {
            out.push_back(std::move(*r));
        }
    }
    return out;
}

std::optional<MessageRecord> RocksStore::get_message(uint64_t id) const {
    auto v = get_raw(Cf::Messages, keys::message(id));
    if (!v) {
        return std::nullopt;
    }
    return values::decode_message(id, *v);
}

std::optional<RetainedRecord> RocksStore::get_retained(std::string_view topic) const {
    auto v = get_raw(Cf::Retained, keys::retained(topic));
    if (!v) {
        return std::nullopt;
    }
    return values::decode_retained(topic, *v);
}

Status RocksStore::walk_retained(std::string_view filter,
                                 const rocksdb::ReadOptions& ro,
                                 const std::string* after,
                                 const Emit& fn) const {
    if (filter.empty() || !keys::valid_component(filter)) {
        return Status::invalid_argument("bad topic filter");
    }
    std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(ro, db_.cf(Cf::Retained)));
    RetainedWalk walk(it.get(), split_levels(filter), after, fn);
    std::string prefix;
    walk.walk(0, prefix);
    return it->status().ok() ? Status::ok() : Status::io_error(it->status().ToString());
}

// A filter without '+' is a literal prefix, maybe with a trailing '#': one Get, or the walk
// (one range scan), which the index cannot improve. A filter with '+' goes through the
// retained index: the matching keys, ascending, then their records. Ending in '#', it reads
// them with one iterator: each key is normally the Next() of the previous one (a subtree is
// contiguous in the family), else a Seek. Otherwise as point lookups (bloom-filtered), one
// MultiGet per chunk of sorted keys: a '+' costs one lookup per message instead of the walk's
// two or three seeks per value of its level. A key the index holds but the family has not
// (retained_index.h, INVARIANT) is skipped.
Status RocksStore::match_retained(std::string_view filter,
                                  const std::function<bool(RetainedRecord&&)>& fn) const {
    if (filter.empty() || !keys::valid_component(filter)) {
        return Status::invalid_argument("bad topic filter");
    }
    auto emit = [&](std::string_view key, std::string_view value) {
        auto rec = values::decode_retained(keys::retained_topic(key), value);
        return rec ? fn(std::move(*rec)) : true;
    };
    if (filter.find('+') == std::string_view::npos) {
        if (filter.find('#') == std::string_view::npos) {
            const std::string key = keys::retained(filter);
            if (auto v = get_raw(Cf::Retained, key)) {
                emit(key, *v);
            }
            return Status::ok();
        }
        return walk_retained(filter, rocksdb::ReadOptions(), nullptr, emit);
    }
    std::vector<std::string> found;
    retained_index_.match(filter, found);
    if (filter.ends_with('#')) {
        std::unique_ptr<rocksdb::Iterator> it(
                db_.db().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::Retained)));
        for (const std::string& key : found) {
            if (it->Valid() && it->key().compare(rocksdb::Slice(key)) < 0) {
                it->Next();
            }
            if (!it->Valid() || it->key().compare(rocksdb::Slice(key)) != 0) {
                it->Seek(key);
            }
            if (!it->status().ok()) {
                return Status::io_error(it->status().ToString());
            }
            if (it->Valid() && it->key().ToStringView() == key &&
                !emit(key, it->value().ToStringView())) {
                break;
            }
        }
        return Status::ok();
    }
    constexpr size_t kChunk = 64;
    const size_t cap = std::min(found.size(), kChunk);
    std::vector<rocksdb::Slice> chunk;
    chunk.reserve(cap);
    std::vector<rocksdb::PinnableSlice> vals(cap);
    std::vector<rocksdb::Status> statuses(cap);
    for (size_t at = 0; at < found.size(); at += kChunk) {
        const size_t n = std::min(kChunk, found.size() - at);
        chunk.assign(found.begin() + static_cast<std::ptrdiff_t>(at),
                     found.begin() + static_cast<std::ptrdiff_t>(at + n));
        db_.db().MultiGet(rocksdb::ReadOptions(), db_.cf(Cf::Retained), n, chunk.data(),
                          vals.data(), statuses.data(), /*sorted_input=*/true);
        for (size_t j = 0; j < n; ++j) {
            if (statuses[j].IsNotFound()) {
                continue;
            }
            if (!statuses[j].ok()) {
                return Status::io_error(statuses[j].ToString());
            }
            const bool go_on = emit(found[at + j], vals[j].ToStringView());
            vals[j].Reset();
            if (!go_on) {
                return Status::ok();
            }
        }
    }
    return Status::ok();
}

Page<RetainedRecord> RocksStore::retained(std::string_view filter, const PageRequest& req) const {
    Page<RetainedRecord> page;
    SnapshotGuard snap(&db_.db(), options_.secondary_dir.empty());
    rocksdb::ReadOptions ro;
    ro.snapshot = snap.get();
    std::optional<std::string> after;
    if (!req.cursor.empty()) {
        after = keys::from_cursor(req.cursor);
        if (!after) {
            return page;
        }
    }
    uint64_t skip = after ? 0 : req.skip;
    std::string last;
    bool more = false;
    walk_retained(filter, ro, after ? &*after : nullptr,
                  [&](std::string_view k, std::string_view v) {
                      if (skip > 0) {
                          --skip;
                          return true;
                      }
                      if (page.items.size() >= req.limit) {
                          more = true;
                          return false;
                      }
                      if (auto rec = values::decode_retained(keys::retained_topic(k), v)) {
                          page.items.push_back(std::move(*rec));
                      }
                      last = std::string(k);
                      return true;
                  })
            .ignore();
    if (more && !last.empty()) {
        page.next_cursor = keys::to_cursor(last);
    }
    return page;
}

Page<RouteRecord> RocksStore::routes(const PageRequest& req) const {
    return page_of<RouteRecord>(Cf::Routes, "", req, [](std::string_view k, std::string_view v) {
        return values::decode_route(k, v);
    });
}

std::optional<RouteRecord> RocksStore::get_route(std::string_view topic_filter) const {
    auto v = get_raw(Cf::Routes, topic_filter);
    if (!v) {
        return std::nullopt;
    }
    return values::decode_route(topic_filter, *v);
}

std::optional<std::string> RocksStore::get_config(std::string_view key) const {
    auto v = get_raw(Cf::Config, key);
    if (!v) {
        return std::nullopt;
    }
    return values::decode_config(*v);
}

std::vector<ConfigRecord> RocksStore::config_with_prefix(std::string_view prefix) const {
    std::vector<ConfigRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(
            db_.db().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::Config)));
    for (it->Seek(rocksdb::Slice(prefix)); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
        if (auto v = values::decode_config(it->value().ToStringView())) {
            out.push_back(ConfigRecord{it->key().ToString(), std::move(*v)});
        }
    }
    return out;
}

std::optional<UserRecord> RocksStore::get_user(std::string_view username) const {
    auto v = get_raw(Cf::Users, username);
    if (!v) {
        return std::nullopt;
    }
    return values::decode_user(username, *v);
}

Page<UserRecord> RocksStore::users(const PageRequest& req) const {
    return page_of<UserRecord>(Cf::Users, "", req, [](std::string_view k, std::string_view v) {
        return values::decode_user(k, v);
    });
}

}  // namespace mqttd::storage
