// broker::Message: one published message, immutable once built and shared by every
// subscriber, queue and retry that holds it (STYLE.md 8). Created once per PUBLISH on the
// publisher's worker; read from any worker afterwards, so it is never modified after
// make_message() returns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mqttd::broker {

struct Message {
    // topic and payload share one buffer: one allocation besides the shared object itself.
    std::string buffer;
    uint32_t topic_len = 0;
    uint8_t qos = 0;
    bool retain = false;
    uint64_t store_id = 0;  // id in the store's `messages` family; 0 until assigned
    int64_t created_at_ms = 0;
    int64_t expiry_at_ms = 0;   // 0 = never
    std::string properties;     // MQTT 5 PUBLISH properties, wire-encoded
    std::string from_client;    // publisher, for no-local
    std::string from_username;  // publisher's user name (web hook events)

    std::string_view topic() const { return std::string_view(buffer).substr(0, topic_len); }
    std::string_view payload() const { return std::string_view(buffer).substr(topic_len); }
};

using MessagePtr = std::shared_ptr<const Message>;

struct MessageInit {
    std::string_view topic;
    std::string_view payload;
    uint8_t qos = 0;
    bool retain = false;
    std::string_view properties;
    std::string_view from_client;
    int64_t created_at_ms = 0;
    int64_t expiry_at_ms = 0;
    uint64_t store_id = 0;
};

inline MessagePtr make_message(const MessageInit& in, std::string_view from_username = {}) {
    auto m = std::make_shared<Message>();
    m->buffer.reserve(in.topic.size() + in.payload.size());
    m->buffer.append(in.topic);
    m->buffer.append(in.payload);
    m->topic_len = static_cast<uint32_t>(in.topic.size());
    m->qos = in.qos;
    m->retain = in.retain;
    m->store_id = in.store_id;
    m->created_at_ms = in.created_at_ms;
    m->expiry_at_ms = in.expiry_at_ms;
    m->properties.assign(in.properties);
    m->from_client.assign(in.from_client);
    m->from_username.assign(from_username);
    return m;
}

}  // namespace mqttd::broker
