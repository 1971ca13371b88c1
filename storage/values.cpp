#include "storage/values.h"

#include <algorithm>

#include "common/byte_order.h"

namespace mqttd::storage::values {
namespace {

class Writer {
public:
    explicit Writer(size_t reserve, uint8_t format = kValueFormat) {
        out_.reserve(reserve + 1);
        out_.push_back(static_cast<char>(format));
    }
    Writer& u8(uint8_t v) {
        out_.push_back(static_cast<char>(v));
        return *this;
    }
    Writer& u16(uint16_t v) {
        put_be16(out_, v);
        return *this;
    }
    Writer& u32(uint32_t v) {
        put_be32(out_, v);
        return *this;
    }
    Writer& u64(uint64_t v) {
        put_be64(out_, v);
        return *this;
    }
    Writer& i64(int64_t v) { return u64(static_cast<uint64_t>(v)); }
    Writer& str(std::string_view s) {
        put_be32(out_, static_cast<uint32_t>(s.size()));
        out_.append(s);
        return *this;
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

// Bounds-checked reader: every read checks pos + n <= end; a failure sticks.
class Reader {
public:
    explicit Reader(std::string_view v, uint8_t format = kValueFormat) : v_(v) {
        if (v_.empty() || static_cast<uint8_t>(v_[0]) != format) {
            ok_ = false;
        } else {
            pos_ = 1;
        }
    }
    bool has(size_t n) {
        if (!ok_ || v_.size() - pos_ < n) {
            ok_ = false;
        }
        return ok_;
    }
    uint8_t u8() {
        if (!has(1)) {
            return 0;
        }
        return static_cast<uint8_t>(v_[pos_++]);
    }
    uint16_t u16() {
        if (!has(2)) {
            return 0;
        }
        uint16_t r = get_be16(bytes_of(v_.substr(pos_)));
        pos_ += 2;
        return r;
    }
    uint32_t u32() {
        if (!has(4)) {
            return 0;
        }
        uint32_t r = get_be32(bytes_of(v_.substr(pos_)));
        pos_ += 4;
        return r;
    }
    uint64_t u64() {
        if (!has(8)) {
            return 0;
        }
        uint64_t r = get_be64(bytes_of(v_.substr(pos_)));
        pos_ += 8;
        return r;
    }
    int64_t i64() { return static_cast<int64_t>(u64()); }
    bool boolean() { return u8() != 0; }
    std::string str() {
        uint32_t n = u32();
        if (!has(n)) {
            return {};
        }
        std::string r(v_.substr(pos_, n));
        pos_ += n;
        return r;
    }
    void skip_str() {
        uint32_t n = u32();
        if (has(n)) {
            pos_ += n;
        }
    }
    // True when every read succeeded and nothing is left over.
    bool done() const { return ok_ && pos_ == v_.size(); }

private:
    std::string_view v_;
    size_t pos_ = 0;
    bool ok_ = true;
};

template <typename T>
std::optional<T> finish(const Reader& r, T&& value) {
    if (!r.done()) {
        return std::nullopt;
    }
    return std::optional<T>(std::forward<T>(value));
}

}  // namespace

std::string encode(const SessionRecord& r) {
    const WillRecord* w = r.will ? &*r.will : nullptr;
    Writer out(35 + r.username.size() +
                       (w ? 30 + w->topic.size() + w->payload.size() + w->properties.size() : 0),
               w ? kSessionWillFormat : kValueFormat);
    out.u8(r.protocol_level)
            .u32(r.expiry_interval_s)
            .i64(r.created_at_ms)
            .i64(r.disconnected_at_ms)
            .u16(r.max_inflight)
            .u64(r.deliver_msg)
            .str(r.username);
    if (w) {
        out.str(w->topic)
                .str(w->payload)
                .str(w->properties)
                .u8(w->qos)
                .u8(w->retain ? 1 : 0)
                .u32(w->message_expiry_s)
                .i64(w->due_at_ms);
    }
    return out.take();
}

std::optional<SessionRecord> decode_session(std::string_view client_id, std::string_view v) {
    const bool with_will = !v.empty() && static_cast<uint8_t>(v[0]) == kSessionWillFormat;
    Reader in(v, with_will ? kSessionWillFormat : kValueFormat);
    SessionRecord r;
    r.client_id = std::string(client_id);
    r.protocol_level = in.u8();
    r.expiry_interval_s = in.u32();
    r.created_at_ms = in.i64();
    r.disconnected_at_ms = in.i64();
    r.max_inflight = in.u16();
    r.deliver_msg = in.u64();
    r.username = in.str();
    if (with_will) {
        WillRecord& w = r.will.emplace();
        w.topic = in.str();
        w.payload = in.str();
        w.properties = in.str();
        w.qos = in.u8();
        w.retain = in.boolean();
        w.message_expiry_s = in.u32();
        w.due_at_ms = in.i64();
    }
    return finish(in, std::move(r));
}

std::string encode(const SubscriptionRecord& r) {
    uint8_t flags = static_cast<uint8_t>((r.no_local ? 1 : 0) | (r.retain_as_published ? 2 : 0));
    return Writer(7).u8(r.qos).u8(flags).u8(r.retain_handling).u32(r.subscription_id).take();
}

std::optional<SubscriptionRecord> decode_subscription(std::string_view client_id,
                                                      std::string_view topic_filter,
                                                      std::string_view v) {
    Reader in(v);
    SubscriptionRecord r;
    r.client_id = std::string(client_id);
    r.topic_filter = std::string(topic_filter);
    r.qos = in.u8();
    uint8_t flags = in.u8();
    r.no_local = (flags & 1) != 0;
    r.retain_as_published = (flags & 2) != 0;
    r.retain_handling = in.u8();
    r.subscription_id = in.u32();
    return finish(in, std::move(r));
}

namespace {
size_t message_size(const MessageRecord& r) {
    return 34 + r.topic.size() + r.from_client.size() + r.properties.size() + r.payload.size();
}

Writer& put_message_fields(Writer& w, const MessageRecord& r) {
    return w.u8(r.qos)
            .u8(r.retain ? 1 : 0)
            .i64(r.created_at_ms)
            .i64(r.expiry_at_ms)
            .str(r.topic)
            .str(r.from_client)
            .str(r.properties)
            .str(r.payload);
}

void get_message_fields(Reader& in, MessageRecord& r) {
    r.qos = in.u8();
    r.retain = in.boolean();
    r.created_at_ms = in.i64();
    r.expiry_at_ms = in.i64();
    r.topic = in.str();
    r.from_client = in.str();
    r.properties = in.str();
    r.payload = in.str();
}
}  // namespace

std::string encode(const MessageRecord& r) {
    Writer w(message_size(r));
    return put_message_fields(w, r).take();
}

std::optional<MessageRecord> decode_message(uint64_t id, std::string_view v) {
    Reader in(v);
    MessageRecord r;
    r.id = id;
    get_message_fields(in, r);
    return finish(in, std::move(r));
}

namespace {

struct QueueFormat {
    bool inline_message = false;
    bool more_ids = false;
    bool known = false;
};

QueueFormat queue_format(std::string_view v) {
    switch (v.empty() ? 0 : static_cast<uint8_t>(v[0])) {
        case kValueFormat:
            return {false, false, true};
        case kInlineQueueFormat:
            return {true, false, true};
        case kQueueIdsFormat:
            return {false, true, true};
        case kInlineQueueIdsFormat:
            return {true, true, true};
        default:
            return {};
    }
}

}  // namespace

std::string encode(const QueueEntry& r, const MessageRecord* inline_message) {
    const size_t more = std::min(r.more_subscription_ids.size(), kMaxMoreSubscriptionIds);
    uint8_t format = inline_message ? (more ? kInlineQueueIdsFormat : kInlineQueueFormat)
                                    : (more ? kQueueIdsFormat : kValueFormat);
    Writer w(14 + (more ? 2 + 4 * more : 0) + (inline_message ? message_size(*inline_message) : 0),
             format);
    w.u64(r.message_id).u8(r.qos).u8(r.retain ? 1 : 0).u32(r.subscription_id);
    if (more) {
        w.u16(static_cast<uint16_t>(more));
        for (size_t i = 0; i < more; ++i) {
            w.u32(r.more_subscription_ids[i]);
        }
    }
    if (inline_message) {
        put_message_fields(w, *inline_message);
    }
    return w.take();
}

std::optional<QueueEntry> decode_queue_entry(std::string_view client_id,
                                             uint64_t seq,
                                             std::string_view v,
                                             std::optional<MessageRecord>* inline_message) {
    const QueueFormat f = queue_format(v);
    const bool with_message = f.inline_message;
    Reader in(v, f.known ? static_cast<uint8_t>(v[0]) : kValueFormat);
    QueueEntry r;
    r.client_id = std::string(client_id);
    r.seq = seq;
    r.message_id = in.u64();
    r.qos = in.u8();
    r.retain = in.boolean();
    r.subscription_id = in.u32();
    if (f.more_ids) {
        uint16_t n = in.u16();
        if (in.has(size_t{4} * n)) {
            r.more_subscription_ids.reserve(n);
            for (uint16_t i = 0; i < n; ++i) {
                r.more_subscription_ids.push_back(in.u32());
            }
        }
    }
    std::optional<MessageRecord> m;
    if (with_message) {
        m.emplace();
        m->id = r.message_id;
        get_message_fields(in, *m);
    }
    if (inline_message) {
        *inline_message = std::move(m);
    }
    return finish(in, std::move(r));
}

std::optional<QueueEntryRef> peek_queue_entry(std::string_view v) {
    const QueueFormat f = queue_format(v);
    const bool with_message = f.inline_message;
    Reader in(v, f.known ? static_cast<uint8_t>(v[0]) : kValueFormat);
    QueueEntryRef r;
    r.message_id = in.u64();
    r.inline_message = with_message;
    in.u8();   // qos
    in.u8();   // retain
    in.u32();  // subscription_id
    if (f.more_ids) {
        uint16_t n = in.u16();
        for (uint16_t i = 0; i < n; ++i) {
            in.u32();
        }
    }
    if (with_message) {  // the fields of get_message_fields
        in.u8();
        in.u8();
        in.i64();
        in.i64();
        for (int i = 0; i < 4; ++i) {
            in.skip_str();
        }
    }
    return finish(in, std::move(r));
}

std::string encode(const InflightRecord& r) {
    return Writer(8).i64(r.at_ms).take();
}

bool decode_inflight(std::string_view v, InflightRecord& rec) {
    Reader in(v);
    rec.at_ms = in.i64();
    return in.done();
}

std::string encode(const RetainedRecord& r) {
    return Writer(25 + r.properties.size() + r.payload.size())
            .u8(r.qos)
            .i64(r.stored_at_ms)
            .i64(r.expiry_at_ms)
            .str(r.properties)
            .str(r.payload)
            .take();
}

std::optional<RetainedRecord> decode_retained(std::string_view topic, std::string_view v) {
    Reader in(v);
    RetainedRecord r;
    r.topic = std::string(topic);
    r.qos = in.u8();
    r.stored_at_ms = in.i64();
    r.expiry_at_ms = in.i64();
    r.properties = in.str();
    r.payload = in.str();
    return finish(in, std::move(r));
}

std::string encode(const RouteRecord& r) {
    return Writer(4 + r.node.size()).str(r.node).take();
}

std::optional<RouteRecord> decode_route(std::string_view topic_filter, std::string_view v) {
    Reader in(v);
    RouteRecord r;
    r.topic_filter = std::string(topic_filter);
    r.node = in.str();
    return finish(in, std::move(r));
}

std::string encode_config(std::string_view value) {
    return Writer(4 + value.size()).str(value).take();
}

std::optional<std::string> decode_config(std::string_view v) {
    Reader in(v);
    std::string s = in.str();
    return finish(in, std::move(s));
}

std::string encode(const UserRecord& r) {
    return Writer(16 + r.password_hash.size() + r.tags.size())
            .str(r.password_hash)
            .str(r.tags)
            .i64(r.created_at_ms)
            .take();
}

std::optional<UserRecord> decode_user(std::string_view username, std::string_view v) {
    Reader in(v);
    UserRecord r;
    r.username = std::string(username);
    r.password_hash = in.str();
    r.tags = in.str();
    r.created_at_ms = in.i64();
    return finish(in, std::move(r));
}

std::string encode(const SessionCounts& c) {
    return Writer(56)
            .u64(c.subscriptions)
            .u64(c.queued)
            .u64(c.awaiting_rel)
            .u64(c.awaiting_comp)
            .u64(c.enqueued_total)
            .u64(c.dropped_total)
            .u64(c.next_seq)
            .take();
}

std::optional<SessionCounts> decode_counts(std::string_view v) {
    Reader in(v);
    SessionCounts c;
    c.subscriptions = in.u64();
    c.queued = in.u64();
    c.awaiting_rel = in.u64();
    c.awaiting_comp = in.u64();
    c.enqueued_total = in.u64();
    c.dropped_total = in.u64();
    c.next_seq = in.u64();
    return finish(in, std::move(c));
}

std::string encode_u64(uint64_t v) {
    return Writer(8).u64(v).take();
}

std::optional<uint64_t> decode_u64(std::string_view v) {
    Reader in(v);
    uint64_t r = in.u64();
    return finish(in, std::move(r));
}

std::string encode_u32(uint32_t v) {
    return Writer(4).u32(v).take();
}

std::optional<uint32_t> decode_u32(std::string_view v) {
    Reader in(v);
    uint32_t r = in.u32();
    return finish(in, std::move(r));
}

}  // namespace mqttd::storage::values
