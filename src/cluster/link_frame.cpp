#include "cluster/link_frame.h"

#include "common/byte_order.h"

namespace mqttd::cluster {
namespace {

// Writes the frame header with a length patched in by finish().
size_t begin(std::string& out, FrameType type) {
    size_t at = out.size();
    put_be32(out, 0);
    out.push_back(static_cast<char>(type));
    return at;
}

void finish(std::string& out, size_t at) {
    const auto n = static_cast<uint32_t>(out.size() - at - 4);
    for (int i = 0; i < 4; ++i) {
        out[at + static_cast<size_t>(i)] = static_cast<char>((n >> (24 - 8 * i)) & 0xff);
    }
}

class Reader {
public:
    explicit Reader(std::string_view s) : s_(s) {}
    bool u8(uint8_t& v) {
        if (!need(1)) {
            return false;
        }
        v = static_cast<uint8_t>(s_[pos_++]);
        return true;
    }
    bool u16(uint16_t& v) {
        if (!need(2)) {
            return false;
        }
        v = get_be16(data());
        pos_ += 2;
        return true;
    }
    bool u32(uint32_t& v) {
        if (!need(4)) {
            return false;
        }
        v = get_be32(data());
        pos_ += 4;
        return true;
    }
    bool u64(uint64_t& v) {
        if (!need(8)) {
            return false;
        }
        v = get_be64(data());
        pos_ += 8;
        return true;
    }
    bool bytes(size_t n, std::string_view& v) {
        if (!need(n)) {
            return false;
        }
        v = s_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    bool done() const { return pos_ == s_.size(); }
    bool i64(int64_t& v) {
        uint64_t u = 0;
        if (!u64(u)) {
            return false;
        }
        v = static_cast<int64_t>(u);
        return true;
    }
    // A string of a u16 (short) or u32 length: a view into the body, or copied.
    bool str16(std::string_view& v) {
        uint16_t n = 0;
        return u16(n) && bytes(n, v);
    }
    bool str32(std::string_view& v) {
        uint32_t n = 0;
        return u32(n) && bytes(n, v);
    }
    bool str16(std::string& v) {
        std::string_view b;
        if (!str16(b)) {
            return false;
        }
        v.assign(b);
        return true;
    }
    bool str32(std::string& v) {
        std::string_view b;
        if (!str32(b)) {
            return false;
        }
        v.assign(b);
        return true;
    }
    size_t left() const { return s_.size() - pos_; }

private:
    bool need(size_t n) const { return n <= s_.size() - pos_; }
    const unsigned char* data() const {
        return reinterpret_cast<const unsigned char*>(s_.data()) + pos_;
    }
    std::string_view s_;
    size_t pos_ = 0;
};

void put_str16(std::string& out, std::string_view v) {
    put_be16(out, static_cast<uint16_t>(v.size()));
    out.append(v);
}

void put_str32(std::string& out, std::string_view v) {
    put_be32(out, static_cast<uint32_t>(v.size()));
    out.append(v);
}

void put_i64(std::string& out, int64_t v) {
    put_be64(out, static_cast<uint64_t>(v));
}

void encode_transfer(std::string& out, const broker::SessionTransfer& t) {
    const auto& r = t.session;
    put_str16(out, r.client_id);
    out.push_back(static_cast<char>(r.protocol_level));
    put_be32(out, r.expiry_interval_s);
    put_i64(out, r.created_at_ms);
    put_i64(out, r.disconnected_at_ms);
    put_be16(out, r.max_inflight);
    put_be64(out, r.deliver_msg);
    put_str16(out, r.username);
    out.push_back(static_cast<char>(r.will ? 1 : 0));
    if (r.will) {
        const auto& w = *r.will;
        put_str16(out, w.topic);
        put_str32(out, w.payload);
        put_str32(out, w.properties);
        out.push_back(static_cast<char>(w.qos));
        out.push_back(static_cast<char>(w.retain ? 1 : 0));
        put_be32(out, w.message_expiry_s);
        put_i64(out, w.due_at_ms);
    }
    put_be32(out, static_cast<uint32_t>(t.subscriptions.size()));
    for (const auto& s : t.subscriptions) {
        put_str16(out, s.topic_filter);
        out.push_back(static_cast<char>(s.qos));
        out.push_back(static_cast<char>((s.no_local ? 1 : 0) | (s.retain_as_published ? 2 : 0)));
        out.push_back(static_cast<char>(s.retain_handling));
        put_be32(out, s.subscription_id);
    }
    put_be32(out, static_cast<uint32_t>(t.queue.size()));
    for (const auto& q : t.queue) {
        put_be64(out, q.entry.seq);
        put_be64(out, q.entry.message_id);
        out.push_back(static_cast<char>(q.entry.qos));
        out.push_back(static_cast<char>(q.entry.retain ? 1 : 0));
        put_be32(out, q.entry.subscription_id);
        put_be16(out, static_cast<uint16_t>(q.entry.more_subscription_ids.size()));
        for (uint32_t id : q.entry.more_subscription_ids) {
            put_be32(out, id);
        }
        const auto& m = q.message;
        put_str16(out, m.topic);
        put_str32(out, m.payload);
        put_str32(out, m.properties);
        out.push_back(static_cast<char>(m.qos));
        out.push_back(static_cast<char>(m.retain ? 1 : 0));
        put_str16(out, m.from_client);
        put_i64(out, m.created_at_ms);
        put_i64(out, m.expiry_at_ms);
    }
    put_be32(out, static_cast<uint32_t>(t.inflight.size()));
    for (const auto& f : t.inflight) {
        out.push_back(static_cast<char>(f.direction));
        put_be16(out, f.packet_id);
        put_i64(out, f.at_ms);
    }
}

bool decode_transfer(Reader& rd, broker::SessionTransfer& t) {
    auto& r = t.session;
    uint8_t has_will = 0;
    if (!rd.str16(r.client_id) || r.client_id.empty() || !rd.u8(r.protocol_level) ||
        !rd.u32(r.expiry_interval_s) || !rd.i64(r.created_at_ms) || !rd.i64(r.disconnected_at_ms) ||
        !rd.u16(r.max_inflight) || !rd.u64(r.deliver_msg) || !rd.str16(r.username) ||
        !rd.u8(has_will) || has_will > 1) {
        return false;
    }
    if (has_will == 1) {
        storage::WillRecord w;
        uint8_t retain = 0;
        if (!rd.str16(w.topic) || !rd.str32(w.payload) || !rd.str32(w.properties) ||
            !rd.u8(w.qos) || w.qos > 2 || !rd.u8(retain) || !rd.u32(w.message_expiry_s) ||
            !rd.i64(w.due_at_ms)) {
            return false;
        }
        w.retain = retain != 0;
        r.will = std::move(w);
    }
    // Counts are bounded by what is left to read (each element takes bytes), before any
    // reservation.
    uint32_t n = 0;
    if (!rd.u32(n) || n > rd.left()) {
        return false;
    }
    for (uint32_t i = 0; i < n; ++i) {
        storage::SubscriptionRecord s;
        s.client_id = r.client_id;
        uint8_t flags = 0;
        if (!rd.str16(s.topic_filter) || !rd.u8(s.qos) || s.qos > 2 || !rd.u8(flags) ||
            !rd.u8(s.retain_handling) || s.retain_handling > 2 || !rd.u32(s.subscription_id)) {
            return false;
        }
        s.no_local = (flags & 1) != 0;
        s.retain_as_published = (flags & 2) != 0;
        t.subscriptions.push_back(std::move(s));
    }
    if (!rd.u32(n) || n > rd.left()) {
        return false;
    }
    for (uint32_t i = 0; i < n; ++i) {
        storage::QueuedMessage q;
        q.entry.client_id = r.client_id;
        uint8_t retain = 0;
        uint16_t more = 0;
        if (!rd.u64(q.entry.seq) || !rd.u64(q.entry.message_id) || !rd.u8(q.entry.qos) ||
            q.entry.qos > 2 || !rd.u8(retain) || !rd.u32(q.entry.subscription_id) ||
            !rd.u16(more)) {
            return false;
        }
        q.entry.retain = retain != 0;
        for (uint16_t k = 0; k < more; ++k) {
            uint32_t id = 0;
            if (!rd.u32(id)) {
                return false;
            }
            q.entry.more_subscription_ids.push_back(id);
        }
        auto& m = q.message;
        m.id = q.entry.message_id;
        uint8_t mretain = 0;
        if (!rd.str16(m.topic) || !rd.str32(m.payload) || !rd.str32(m.properties) ||
            !rd.u8(m.qos) || m.qos > 2 || !rd.u8(mretain) || !rd.str16(m.from_client) ||
            !rd.i64(m.created_at_ms) || !rd.i64(m.expiry_at_ms)) {
            return false;
        }
        m.retain = mretain != 0;
        t.queue.push_back(std::move(q));
    }
    if (!rd.u32(n) || n > rd.left()) {
        return false;
    }
    for (uint32_t i = 0; i < n; ++i) {
        storage::InflightRecord f;
        f.client_id = r.client_id;
        uint8_t dir = 0;
        if (!rd.u8(dir) || (dir != 'O' && dir != 'I') || !rd.u16(f.packet_id) || !rd.i64(f.at_ms)) {
            return false;
        }
        f.direction = static_cast<storage::Direction>(dir);
        t.inflight.push_back(f);
    }
    return true;
}

}  // namespace

void encode_hello(std::string& out, const HelloFrame& f) {
    size_t at = begin(out, FrameType::Hello);
    out.push_back(static_cast<char>(kLinkVersion));
    put_str16(out, f.node);
    put_be64(out, f.incarnation);
    finish(out, at);
}

void encode_publish(std::string& out, const PublishFrame& f) {
    out.reserve(out.size() + 48 + f.topic.size() + f.from_client.size() + f.properties.size() +
                f.payload.size());
    size_t at = begin(out, FrameType::Publish);
    put_be64(out, f.seq);
    out.push_back(static_cast<char>((f.qos & 3) | (f.retain ? 4 : 0) | (f.want_ack ? 8 : 0) |
                                    (f.groups.empty() ? 0 : 16) | (f.retained_copy ? 32 : 0) |
                                    (f.relay ? 64 : 0)));
    put_be64(out, static_cast<uint64_t>(f.created_at_ms));
    put_be64(out, static_cast<uint64_t>(f.expiry_at_ms));
    put_i64(out, f.stamp);
    put_str16(out, f.topic);
    put_str16(out, f.from_client);
    put_str32(out, f.properties);
    put_str32(out, f.payload);
    if (!f.groups.empty()) {
        put_be16(out, static_cast<uint16_t>(f.groups.size()));
        for (std::string_view g : f.groups) {
            put_str16(out, g);
        }
    }
    if (f.relay) {
        put_str16(out, f.relay->client_id);
        out.push_back(static_cast<char>(f.relay->qos));
        out.push_back(static_cast<char>(f.relay->retain ? 1 : 0));
        put_be16(out, static_cast<uint16_t>(f.relay->subscription_ids.size()));
        for (uint32_t id : f.relay->subscription_ids) {
            put_be32(out, id);
        }
    }
    finish(out, at);
}

void encode_retained_request(std::string& out) {
    finish(out, begin(out, FrameType::RetainedRequest));
}

void encode_ack(std::string& out, const AckFrame& f) {
    size_t at = begin(out, FrameType::Ack);
    put_be64(out, f.seq);
    out.push_back(static_cast<char>(f.ok ? 0 : 1));
    finish(out, at);
}

void encode_takeover_request(std::string& out, const TakeoverRequestFrame& f) {
    size_t at = begin(out, FrameType::TakeoverRequest);
    put_be64(out, f.request);
    out.push_back(static_cast<char>(f.drop ? 1 : 0));
    put_str16(out, f.client_id);
    finish(out, at);
}

void encode_session_state(std::string& out, const SessionStateFrame& f) {
    size_t at = begin(out, FrameType::SessionState);
    put_be64(out, f.request);
    out.push_back(static_cast<char>(f.status));
    if (f.status == SessionStateFrame::Status::Session) {
        encode_transfer(out, f.session);
    }
    finish(out, at);
}

void encode_takeover_done(std::string& out, const TakeoverDoneFrame& f) {
    size_t at = begin(out, FrameType::TakeoverDone);
    put_be64(out, f.request);
    out.push_back(static_cast<char>(f.moved ? 0 : 1));
    put_str16(out, f.client_id);
    put_i64(out, f.revision);
    finish(out, at);
}

void encode_owner_query(std::string& out, const OwnerQueryFrame& f) {
    size_t at = begin(out, FrameType::OwnerQuery);
    put_be64(out, f.request);
    put_str16(out, f.client_id);
    finish(out, at);
}

void encode_owner_answer(std::string& out, const OwnerAnswerFrame& f) {
    size_t at = begin(out, FrameType::OwnerAnswer);
    put_be64(out, f.request);
    out.push_back(static_cast<char>(f.owns ? 1 : 0));
    finish(out, at);
}

std::optional<RawFrame> next_frame(std::string_view in, std::string& error) {
    if (in.size() < 5) {
        return std::nullopt;
    }
    const uint32_t n = get_be32(reinterpret_cast<const unsigned char*>(in.data()));
    if (n == 0 || n > kMaxFrame) {
        error = "frame length " + std::to_string(n) + " out of bounds";
        return std::nullopt;
    }
    const auto type = static_cast<uint8_t>(in[4]);
    if (type < 1 || type > static_cast<uint8_t>(FrameType::RetainedRequest)) {
        error = "unknown frame type " + std::to_string(type);
        return std::nullopt;
    }
    if (in.size() - 4 < n) {
        return std::nullopt;
    }
    return RawFrame{static_cast<FrameType>(type), in.substr(5, n - 1), size_t{n} + 4};
}

std::optional<HelloFrame> decode_hello(std::string_view body) {
    Reader r(body);
    uint8_t version = 0;
    HelloFrame f;
    if (!r.u8(version) || version != kLinkVersion || !r.str16(f.node) || !r.u64(f.incarnation) ||
        !r.done()) {
        return std::nullopt;
    }
    return f;
}

std::optional<PublishFrame> decode_publish(std::string_view body) {
    Reader r(body);
    PublishFrame f;
    uint8_t flags = 0;
    uint64_t created = 0;
    uint64_t expiry = 0;
    if (!r.u64(f.seq) || !r.u8(flags) || flags > 127 || !r.u64(created) || !r.u64(expiry) ||
        !r.i64(f.stamp) || !r.str16(f.topic) || !r.str16(f.from_client) || !r.str32(f.properties) ||
        !r.str32(f.payload)) {
        return std::nullopt;
    }
    if ((flags & 16) != 0) {
        uint16_t count = 0;
        if (!r.u16(count) || count == 0) {
            return std::nullopt;
        }
        f.groups.reserve(count);
        for (uint16_t i = 0; i < count; ++i) {
            std::string_view g;
            if (!r.str16(g) || g.empty()) {
                return std::nullopt;
            }
            f.groups.push_back(g);
        }
    }
    if ((flags & 64) != 0) {
        RelayTarget t;
        uint8_t retain = 0;
        uint16_t count = 0;
        if (!r.str16(t.client_id) || t.client_id.empty() || !r.u8(t.qos) || t.qos > 2 ||
            !r.u8(retain) || retain > 1 || !r.u16(count) || count > r.left() / 4) {
            return std::nullopt;
        }
        t.retain = retain == 1;
        t.subscription_ids.resize(count);
        for (auto& id : t.subscription_ids) {
            if (!r.u32(id)) {
                return std::nullopt;
            }
        }
        f.relay = std::move(t);
    }
    if (!r.done()) {
        return std::nullopt;
    }
    f.qos = flags & 3;
    if (f.qos == 3 || f.topic.empty()) {
        return std::nullopt;
    }
    f.retain = (flags & 4) != 0;
    f.want_ack = (flags & 8) != 0;
    f.retained_copy = (flags & 32) != 0;
    f.created_at_ms = static_cast<int64_t>(created);
    f.expiry_at_ms = static_cast<int64_t>(expiry);
    return f;
}

std::optional<AckFrame> decode_ack(std::string_view body) {
    Reader r(body);
    AckFrame f;
    uint8_t status = 0;
    if (!r.u64(f.seq) || !r.u8(status) || !r.done()) {
        return std::nullopt;
    }
    f.ok = status == 0;
    return f;
}

std::optional<TakeoverRequestFrame> decode_takeover_request(std::string_view body) {
    Reader r(body);
    TakeoverRequestFrame f;
    uint8_t flags = 0;
    if (!r.u64(f.request) || !r.u8(flags) || flags > 1 || !r.str16(f.client_id) ||
        f.client_id.empty() || !r.done()) {
        return std::nullopt;
    }
    f.drop = flags == 1;
    return f;
}

std::optional<SessionStateFrame> decode_session_state(std::string_view body) {
    Reader r(body);
    SessionStateFrame f;
    uint8_t status = 0;
    if (!r.u64(f.request) || !r.u8(status) || status > 2) {
        return std::nullopt;
    }
    f.status = static_cast<SessionStateFrame::Status>(status);
    if (f.status == SessionStateFrame::Status::Session && !decode_transfer(r, f.session)) {
        return std::nullopt;
    }
    if (!r.done()) {
        return std::nullopt;
    }
    return f;
}

std::optional<TakeoverDoneFrame> decode_takeover_done(std::string_view body) {
    Reader r(body);
    TakeoverDoneFrame f;
    uint8_t status = 0;
    if (!r.u64(f.request) || !r.u8(status) || status > 1 || !r.str16(f.client_id) ||
        f.client_id.empty() || !r.i64(f.revision) || !r.done()) {
        return std::nullopt;
    }
    f.moved = status == 0;
    return f;
}

std::optional<OwnerQueryFrame> decode_owner_query(std::string_view body) {
    Reader r(body);
    OwnerQueryFrame f;
    if (!r.u64(f.request) || !r.str16(f.client_id) || f.client_id.empty() || !r.done()) {
        return std::nullopt;
    }
    return f;
}

std::optional<OwnerAnswerFrame> decode_owner_answer(std::string_view body) {
    Reader r(body);
    OwnerAnswerFrame f;
    uint8_t owns = 0;
    if (!r.u64(f.request) || !r.u8(owns) || owns > 1 || !r.done()) {
        return std::nullopt;
    }
    f.owns = owns == 1;
    return f;
}

}  // namespace mqttd::cluster
