// OpApplier: each logical op as changes to the group's overlay; see storage/op_applier.h.
#include "storage/op_applier.h"

#include <algorithm>
#include <memory>
#include <variant>

#include "common/byte_order.h"
#include "storage/keys.h"
#include "storage/rocks_db.h"

namespace mqttd::storage {
namespace {

uint64_t sat_dec(uint64_t v) {
    return v == 0 ? 0 : v - 1;
}

Status check_component(const char* what, std::string_view s) {
    if (keys::valid_component(s)) {
        return Status::ok();
    }
    return Status::invalid_argument(std::string(what) + " contains U+0000: " +
                                    std::string(s.substr(0, s.find('\0'))) + "...");
}

Status check_client(std::string_view client_id) {
    return check_component("client id", client_id);
}

}  // namespace

Status OpApplier::apply(const WriteBatch& batch) {
    index_new_messages(batch);
    put_records_.clear();
    for (const Op& o : batch.ops()) {
        Status s = std::visit(
                [this](const auto& x) {
                    Status v = validate(x);
                    return v.is_ok() ? apply_op(x) : v;
                },
                o);
        if (!s.is_ok()) {
            return s;
        }
    }
    return drop_unreferenced();
}

// ---------------------------------------------------------------------------------------------
// Validation

Status OpApplier::validate(const op::PutSession& o) {
    return check_client(o.rec->client_id);
}
Status OpApplier::validate(const op::DeleteSession& o) {
    return check_client(o.client_id);
}
Status OpApplier::validate(const op::PutSubscription& o) {
    return check_client(o.rec.client_id);
}
Status OpApplier::validate(const op::DeleteSubscription& o) {
    return check_client(o.client_id);
}
Status OpApplier::validate(const op::Enqueue& o) {
    return check_client(o.rec.client_id);
}
Status OpApplier::validate(const op::RemoveQueued& o) {
    return check_client(o.client_id);
}
Status OpApplier::validate(const op::PutInflight& o) {
    return check_client(o.rec.client_id);
}
Status OpApplier::validate(const op::DeleteInflight& o) {
    return check_client(o.client_id);
}
Status OpApplier::validate(const op::PutRetained& o) {
    return check_component("retained topic", o.rec->topic);
}
Status OpApplier::validate(const op::DeleteRetained& o) {
    return check_component("retained topic", o.topic);
}

// ---------------------------------------------------------------------------------------------
// Sessions and subscriptions

Status OpApplier::apply_op(const op::PutSession& o) {
    return put_counted(Cf::Sessions, Counted::Sessions, o.rec->client_id, values::encode(*o.rec));
}

// Cascades to the session's subscriptions, queue entries (releasing their messages) and
// in-flight records, and drops its counts.
Status OpApplier::apply_op(const op::DeleteSession& o) {
    Status s = delete_counted(Cf::Sessions, Counted::Sessions, o.client_id);
    if (!s.is_ok()) {
        return s;
    }
    const std::string prefix = keys::client_prefix(o.client_id);
    for (Cf c : {Cf::Subscriptions, Cf::Queues, Cf::Inflight}) {
        auto kv = client_keys(c, prefix);
        if (!kv) {
            return kv.error();
        }
        for (const auto& [k, v] : *kv) {
            g_.erase(c, k, true);
            if (c == Cf::Subscriptions) {
                deltas()[Counted::Subscriptions]--;
            } else if (c == Cf::Queues) {
                deltas()[Counted::QueueEntries]--;
                s = release_entry(values::peek_queue_entry(v));
                if (!s.is_ok()) {
                    return s;
                }
            }
        }
    }
    auto sc = session(o.client_id);
    if (!sc) {
        return sc.error();
    }
    (*sc)->c = SessionCounts{};
    (*sc)->erased = true;
    return Status::ok();
}

Status OpApplier::apply_op(const op::PutSubscription& o) {
    const auto created =
            put_tracked(Cf::Subscriptions, keys::subscription(o.rec.client_id, o.rec.topic_filter),
                        values::encode(o.rec));
    return count_in_session(o.rec.client_id, created, [this](SessionCounts& c) {
        c.subscriptions++;
        deltas()[Counted::Subscriptions]++;
    });
}

Status OpApplier::apply_op(const op::DeleteSubscription& o) {
    const auto erased =
            erase_tracked(Cf::Subscriptions, keys::subscription(o.client_id, o.topic_filter));
    return count_in_session(o.client_id, erased, [this](SessionCounts& c) {
        c.subscriptions = sat_dec(c.subscriptions);
        deltas()[Counted::Subscriptions]--;
    });
}

// ---------------------------------------------------------------------------------------------
// Messages and queues

Status OpApplier::apply_op(const op::PutMessage& o) {
    const uint64_t id = o.rec->id;
    deltas().add_message(id);
    if (NewMessage* m = new_message(id); m != nullptr && m->enqueues == 1) {
        auto peek = peek_refs(id);
        if (!peek) {
            return peek.error();
        }
        if (!peek->live) {
            m->inline_rec = o.rec.get();  // one reference: kept in its queue entry
            return Status::ok();
        }
    }
    auto st = refs(id);
    if (!st) {
        return st.error();
    }
    Overlay::Refs& r = **st;
    g_.put(Cf::Messages, keys::message(id), values::encode(*o.rec), r.in_db);
    if (!r.live) {
        r.live = true;
        r.rc = 0;
        deltas()[Counted::Messages]++;
        put_records_.push_back(id);
    }
    return Status::ok();
}

Status OpApplier::apply_op(const op::Enqueue& o) {
    const QueueEntry& e = o.rec;
    auto sc = session(e.client_id);
    if (!sc) {
        return sc.error();
    }
    SessionCounts& c = (*sc)->c;
    key_buf_.clear();
    keys::append_queue(key_buf_, e.client_id, e.seq);
    const std::string_view key = key_buf_;
    KeyState old;
    std::optional<values::QueueEntryRef> replaced;
    if (e.seq < c.next_seq) {  // only a seq below the high-water mark can exist already
        auto k = read(Cf::Queues, key);
        if (!k) {
            return k.error();
        }
        old = *k;
        if (old.found()) {
            replaced = values::peek_queue_entry(*old.value);
        }
    }
    const MessageRecord* inline_message = nullptr;
    if (NewMessage* m = new_message(e.message_id); m != nullptr && m->inline_rec != nullptr) {
        inline_message = m->inline_rec;
        m->inline_rec = nullptr;
        deltas()[Counted::Messages]++;
    } else {
        auto st = refs(e.message_id);
        if (!st) {
            return st.error();
        }
        if (!(*st)->live) {
            return Status::invalid_argument("enqueue for " + e.client_id +
                                            " references unknown message " +
                                            std::to_string(e.message_id));
        }
        (*st)->rc++;
    }
    g_.put(Cf::Queues, key, values::encode(e, inline_message), old.in_db);
    if (old.found()) {
        return release_entry(replaced);  // the entry it replaces
    }
    c.queued++;
    c.enqueued_total++;
    c.next_seq = std::max(c.next_seq, e.seq + 1);
    deltas()[Counted::QueueEntries]++;
    return Status::ok();
}

Status OpApplier::apply_op(const op::RemoveQueued& o) {
    SessionCounts* c = nullptr;
    key_buf_.clear();
    keys::append_queue(key_buf_, o.client_id, 0);
    const size_t seq_at = key_buf_.size() - 8;
    for (uint64_t seq : o.seqs) {
        key_buf_.resize(seq_at);
        put_be64(key_buf_, seq);
        auto k = read(Cf::Queues, key_buf_);
        if (!k) {
            return k.error();
        }
        if (!k->found()) {
            continue;
        }
        const auto entry = values::peek_queue_entry(*k->value);  // before the erase clears it
        g_.erase(Cf::Queues, key_buf_, k->in_db);
        deltas()[Counted::QueueEntries]--;
        if (c == nullptr) {
            auto sc = session(o.client_id);
            if (!sc) {
                return sc.error();
            }
            c = &(*sc)->c;
        }
        c->queued = sat_dec(c->queued);
        if (o.dropped) {
            c->dropped_total++;
        }
        Status s = release_entry(entry);
        if (!s.is_ok()) {
            return s;
        }
    }
    return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// In-flight, retained, routes, config, users

Status OpApplier::apply_op(const op::PutInflight& o) {
    const auto created = put_tracked(
            Cf::Inflight, keys::inflight(o.rec.client_id, o.rec.direction, o.rec.packet_id),
            values::encode(o.rec));
    const bool inbound = o.rec.direction == Direction::Inbound;
    return count_in_session(o.rec.client_id, created, [inbound](SessionCounts& c) {
        if (inbound) {
            c.awaiting_rel++;
        } else {
            c.awaiting_comp++;
        }
    });
}

Status OpApplier::apply_op(const op::DeleteInflight& o) {
    const auto erased =
            erase_tracked(Cf::Inflight, keys::inflight(o.client_id, o.direction, o.packet_id));
    const bool inbound = o.direction == Direction::Inbound;
    return count_in_session(o.client_id, erased, [inbound](SessionCounts& c) {
        if (inbound) {
            c.awaiting_rel = sat_dec(c.awaiting_rel);
        } else {
            c.awaiting_comp = sat_dec(c.awaiting_comp);
        }
    });
}

Status OpApplier::apply_op(const op::PutRetained& o) {
    return put_counted(Cf::Retained, Counted::Retained, keys::retained(o.rec->topic),
                       values::encode(*o.rec));
}

Status OpApplier::apply_op(const op::DeleteRetained& o) {
    return delete_counted(Cf::Retained, Counted::Retained, keys::retained(o.topic));
}

Status OpApplier::apply_op(const op::PutRoute& o) {
    return put_counted(Cf::Routes, Counted::Routes, o.rec.topic_filter, values::encode(o.rec));
}

Status OpApplier::apply_op(const op::DeleteRoute& o) {
    return delete_counted(Cf::Routes, Counted::Routes, o.topic_filter);
}

Status OpApplier::apply_op(const op::PutConfig& o) {
    g_.put(Cf::Config, o.rec.key, values::encode_config(o.rec.value), true);
    return Status::ok();
}

Status OpApplier::apply_op(const op::DeleteConfig& o) {
    g_.erase(Cf::Config, o.key, true);
    return Status::ok();
}

Status OpApplier::apply_op(const op::PutUser& o) {
    return put_counted(Cf::Users, Counted::Users, o.rec->username, values::encode(*o.rec));
}

Status OpApplier::apply_op(const op::DeleteUser& o) {
    return delete_counted(Cf::Users, Counted::Users, o.username);
}

// ---------------------------------------------------------------------------------------------
// Keys: the overlay first, then the committed state

Result<OpApplier::KeyState, Status> OpApplier::read(Cf c, std::string_view key) {
    if (const Overlay::Kv* kv = g_.find(c, key)) {
        return KeyState{kv->live ? &kv->value : nullptr, kv->in_db};
    }
    if (c == Cf::Queues) {
        if (const auto cached = queues_.find(key); cached.known) {
            return KeyState{cached.value, cached.value != nullptr};
        }
    }
    rocksdb::Status s = db_.db().Get(rocksdb::ReadOptions(), db_.cf(c), key, &read_buf_);
    if (s.ok()) {
        return KeyState{&read_buf_, true};
    }
    if (s.IsNotFound()) {
        return KeyState{};
    }
    return Err{Status::io_error("read of " + dir_ + " failed: " + s.ToString())};
}

Result<bool, Status> OpApplier::put_tracked(Cf c, std::string_view key, std::string value) {
    auto k = read(c, key);
    if (!k) {
        return Err{k.error()};
    }
    const bool created = !k->found();
    g_.put(c, key, std::move(value), k->in_db);
    return created;
}

Result<bool, Status> OpApplier::erase_tracked(Cf c, std::string_view key) {
    auto k = read(c, key);
    if (!k) {
        return Err{k.error()};
    }
    if (!k->found()) {
        return false;
    }
    g_.erase(c, key, k->in_db);
    return true;
}

Status OpApplier::put_counted(Cf c, Counted counted, std::string_view key, std::string value) {
    const auto created = put_tracked(c, key, std::move(value));
    if (!created) {
        return created.error();
    }
    if (*created) {
        deltas()[counted]++;
    }
    return Status::ok();
}

Status OpApplier::delete_counted(Cf c, Counted counted, std::string_view key) {
    const auto erased = erase_tracked(c, key);
    if (!erased) {
        return erased.error();
    }
    if (*erased) {
        deltas()[counted]--;
    }
    return Status::ok();
}

Result<std::map<std::string, std::string>, Status> OpApplier::client_keys(
        Cf c, const std::string& prefix) {
    std::map<std::string, std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_.db().NewIterator(rocksdb::ReadOptions(), db_.cf(c)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        out.emplace(it->key().ToString(), it->value().ToString());
    }
    for (const auto& [k, e] : g_.family(c)) {
        if (!k.starts_with(prefix)) {
            continue;
        }
        if (e.state.live) {
            out[k] = e.state.value;
        } else {
            out.erase(k);
        }
    }
    if (!it->status().ok()) {
        return Err{Status::io_error(it->status().ToString())};
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// References and session counts

Result<Overlay::Refs*, Status> OpApplier::refs(uint64_t id) {
    if (Overlay::Refs* st = g_.touch_refs(id)) {
        return st;
    }
    auto committed = committed_refs(id);
    if (!committed) {
        return Err{committed.error()};
    }
    return &g_.add_refs(id, *committed);
}

Result<Overlay::Refs, Status> OpApplier::peek_refs(uint64_t id) {
    if (const Overlay::Refs* st = g_.find_refs(id)) {
        return *st;
    }
    return committed_refs(id);
}

Result<Overlay::Refs, Status> OpApplier::committed_refs(uint64_t id) const {
    if (auto n = refs_.find(id)) {
        return Overlay::Refs{*n, true, true};
    }
    if (!refs_.may_be_on_disk(id)) {
        return Overlay::Refs{};
    }
    auto n = refs_.read(db_, dir_, id);
    if (!n) {
        return Err{n.error()};
    }
    return *n ? Overlay::Refs{**n, true, true} : Overlay::Refs{};
}

Result<Overlay::SessionState*, Status> OpApplier::session(std::string_view client_id) {
    if (Overlay::SessionState* st = g_.touch_session(client_id)) {
        return st;
    }
    auto committed = sessions_.load(db_, dir_, client_id);
    if (!committed) {
        return Err{committed.error()};
    }
    return &g_.add_session(client_id, *committed);
}

template <typename Adjust>
Status OpApplier::count_in_session(std::string_view client_id,
                                   const Result<bool, Status>& changed,
                                   Adjust adjust) {
    if (!changed) {
        return changed.error();
    }
    if (!*changed) {
        return Status::ok();
    }
    auto sc = session(client_id);
    if (!sc) {
        return sc.error();
    }
    adjust((*sc)->c);
    // Counted after the session's delete in the same batch (it ended and its client came
    // back in one turn): the counts are live again and are written, not deleted.
    (*sc)->erased = false;
    return Status::ok();
}

Status OpApplier::unref(uint64_t id) {
    auto st = refs(id);
    if (!st) {
        return st.error();
    }
    Overlay::Refs& r = **st;
    if (!r.live || r.rc == 0) {
        return Status::ok();  // dangling reference: nothing to release
    }
    if (--r.rc == 0) {
        g_.erase(Cf::Messages, keys::message(id), r.in_db);
        r.live = false;
        deltas()[Counted::Messages]--;
    }
    return Status::ok();
}

Status OpApplier::release_entry(const std::optional<values::QueueEntryRef>& entry) {
    if (!entry) {
        return Status::ok();  // unreadable entry: dropped without releasing a reference
    }
    if (entry->inline_message) {
        deltas()[Counted::Messages]--;
        return Status::ok();
    }
    return unref(entry->message_id);
}

void OpApplier::index_new_messages(const WriteBatch& batch) {
    new_messages_.clear();
    for (const Op& o : batch.ops()) {
        if (const auto* m = std::get_if<op::PutMessage>(&o)) {
            new_messages_.push_back(NewMessage{m->rec->id, 0, nullptr});
        }
    }
    if (new_messages_.empty()) {
        return;
    }
    std::sort(new_messages_.begin(), new_messages_.end(),
              [](const NewMessage& a, const NewMessage& b) { return a.id < b.id; });
    for (const Op& o : batch.ops()) {
        if (const auto* e = std::get_if<op::Enqueue>(&o)) {
            if (NewMessage* m = new_message(e->rec.message_id)) {
                m->enqueues++;
            }
        }
    }
}

OpApplier::NewMessage* OpApplier::new_message(uint64_t id) {
    auto it = std::lower_bound(new_messages_.begin(), new_messages_.end(), id,
                               [](const NewMessage& m, uint64_t v) { return m.id < v; });
    return it != new_messages_.end() && it->id == id ? &*it : nullptr;
}

Status OpApplier::drop_unreferenced() {
    for (uint64_t id : put_records_) {
        auto st = refs(id);
        if (!st) {
            return st.error();
        }
        Overlay::Refs& r = **st;
        if (r.live && r.rc == 0) {
            g_.erase(Cf::Messages, keys::message(id), r.in_db);
            r.live = false;
            deltas()[Counted::Messages]--;
        }
    }
    return Status::ok();
}

}  // namespace mqttd::storage
