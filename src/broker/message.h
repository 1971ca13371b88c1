// broker::Message: one published message, immutable once built and shared by every
// subscriber, queue and retry that holds it (STYLE.md 8). Created once per PUBLISH on the
// publisher's worker; read from any worker afterwards, so it is never modified after
// make_message() returns.
//
// One heap allocation per message: the fixed fields, the reference count and the bytes (topic,
// payload, properties, publisher's client id and user name, back to back) are one block, and
// MessagePtr is an intrusive reference-counting pointer to it (a std::shared_ptr would add the
// string buffers and its control block).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace mqttd::broker {

class Message;
struct MessageInit;

// Shared ownership of a Message through the count inside it.
class MessagePtr {
public:
    MessagePtr() = default;
    MessagePtr(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): like shared_ptr
    MessagePtr(const MessagePtr& o) : p_(o.p_) { add_ref(); }
    MessagePtr(MessagePtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    MessagePtr& operator=(MessagePtr o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~MessagePtr() { release(); }

    const Message* get() const { return p_; }
    const Message& operator*() const { return *p_; }
    const Message* operator->() const { return p_; }
    explicit operator bool() const { return p_ != nullptr; }
    void reset() { MessagePtr().swap(*this); }
    void swap(MessagePtr& o) noexcept { std::swap(p_, o.p_); }

    friend bool operator==(const MessagePtr& a, std::nullptr_t) { return a.p_ == nullptr; }
    friend bool operator==(const MessagePtr& a, const MessagePtr& b) { return a.p_ == b.p_; }

private:
    friend MessagePtr make_message(const MessageInit& in, std::string_view from_username);
    explicit MessagePtr(const Message* adopt) : p_(adopt) { add_ref(); }
    inline void add_ref() const;
    inline void release();

    const Message* p_ = nullptr;
};

struct MessageInit {
    std::string_view topic;
    std::string_view payload;
    uint8_t qos = 0;
    bool retain = false;
    std::string_view properties;  // MQTT 5 PUBLISH properties, wire-encoded
    std::string_view from_client;
    int64_t created_at_ms = 0;
    int64_t expiry_at_ms = 0;
    uint64_t store_id = 0;
};

class Message {
public:
    uint8_t qos = 0;
    bool retain = false;
    uint64_t store_id = 0;  // id in the store's `messages` family; 0 until assigned
    int64_t created_at_ms = 0;
    int64_t expiry_at_ms = 0;  // 0 = never

    std::string_view topic() const { return {bytes(), topic_len_}; }
    std::string_view payload() const { return {bytes() + topic_len_, payload_len_}; }
    std::string_view properties() const {  // MQTT 5 PUBLISH properties, wire-encoded
        return {bytes() + topic_len_ + payload_len_, properties_len_};
    }
    std::string_view from_client() const {  // publisher, for no-local
        return {bytes() + topic_len_ + payload_len_ + properties_len_, client_len_};
    }
    std::string_view from_username() const {  // publisher's user name (web hook events)
        return {bytes() + topic_len_ + payload_len_ + properties_len_ + client_len_, user_len_};
    }
    // Topic + payload + properties: what a PUBLISH of it carries besides its headers.
    size_t wire_size() const { return size_t{topic_len_} + payload_len_ + properties_len_; }

    Message(const Message&) = delete;
    Message& operator=(const Message&) = delete;

private:
    explicit Message(const MessageInit& in, std::string_view user)
        : qos(in.qos),
          retain(in.retain),
          store_id(in.store_id),
          created_at_ms(in.created_at_ms),
          expiry_at_ms(in.expiry_at_ms),
          topic_len_(static_cast<uint32_t>(in.topic.size())),
          payload_len_(static_cast<uint32_t>(in.payload.size())),
          properties_len_(static_cast<uint32_t>(in.properties.size())),
          client_len_(static_cast<uint32_t>(in.from_client.size())),
          user_len_(static_cast<uint32_t>(user.size())) {}
    ~Message() = default;

    const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }

    friend class MessagePtr;
    friend MessagePtr make_message(const MessageInit& in, std::string_view from_username);

    mutable std::atomic<uint32_t> refs_{0};
    uint32_t topic_len_;
    uint32_t payload_len_;
    uint32_t properties_len_;
    uint32_t client_len_;
    uint32_t user_len_;
};

inline void MessagePtr::add_ref() const {
    if (p_ != nullptr) {
        p_->refs_.fetch_add(1, std::memory_order_relaxed);
    }
}

inline void MessagePtr::release() {
    if (p_ != nullptr && p_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        p_->~Message();
        ::operator delete(const_cast<Message*>(p_));
    }
    p_ = nullptr;
}

inline MessagePtr make_message(const MessageInit& in, std::string_view from_username = {}) {
    static_assert(sizeof(Message) % alignof(Message) == 0);
    const std::string_view parts[] = {in.topic, in.payload, in.properties, in.from_client,
                                      from_username};
    size_t n = 0;
    for (auto p : parts) {
        n += p.size();
    }
    void* block = ::operator new(sizeof(Message) + n);
    auto* m = new (block) Message(in, from_username);
    char* out = static_cast<char*>(block) + sizeof(Message);
    for (auto p : parts) {
        if (!p.empty()) {
            std::memcpy(out, p.data(), p.size());
            out += p.size();
        }
    }
    return MessagePtr(m);
}

}  // namespace mqttd::broker
