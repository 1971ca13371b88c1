// emq_web_hook: POSTs broker events as JSON to `web.hook.api.url`, in EMQ 2.x's format.
//
// RULES (EMQ 2.x keys): web.hook.rule.<event>.<N> = {"action": "on_<event with _>"[, "topic":
// "filter"]}, e.g.
//   web.hook.rule.client.connected.1 = {"action": "on_client_connected"}
//   web.hook.rule.message.publish.1  = {"action": "on_message_publish", "topic": "sensors/#"}
// An event is sent only if it has at least one rule. For the message.* events a rule with a
// "topic" filter restricts it to matching topics (topic_match); a rule without one takes all.
// Events: client.connected, client.disconnected, client.subscribe, client.unsubscribe,
// session.created, session.terminated, message.publish, message.delivered, message.acked.
//
// BODIES (EMQ 2.x web_hook field names; "action" is the event with '_' for '.'):
//   client_connected    {action, client_id, username, conn_ack, ts}
//   client_disconnected {action, client_id, username, reason, ts}
//   client_subscribe / client_unsubscribe {action, client_id, username, topic, opts:{qos}}
//   session_created / session_terminated  {action, client_id, username[, reason], ts}
//   message_publish     {action, from_client_id, from_username, topic, qos, retain, payload, ts}
//   message_delivered / message_acked: the publish fields plus client_id, username
// ts is Unix seconds (EMQ 2.x). A payload that is not UTF-8 has its bad bytes replaced (U+FFFD).
//
// DELIVERY: emit() appends to a bounded queue (max_queue) and returns; it never blocks and
// never touches the network. Sender threads (`threads`) POST with a timeout; a failed POST
// (no answer or a non-2xx status) is retried `retries` times with backoff, 2x each time, then
// dropped and counted. A full queue drops the event at once (counted as dropped_full).
//
// Thread-safety: emit/wants/counters from any thread. Destruction drops what is still queued
// (counted) and waits for the POSTs in progress (at most timeout_ms).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/auth/task_pool.h"

namespace mqttd::broker::auth {

enum class HookEvent : uint8_t {
    ClientConnected,
    ClientDisconnected,
    ClientSubscribe,
    ClientUnsubscribe,
    SessionCreated,
    SessionTerminated,
    MessagePublish,
    MessageDelivered,
    MessageAcked,
};
inline constexpr size_t kNumHookEvents = 9;

// "client.connected", ...
std::string_view hook_event_name(HookEvent e);
std::optional<HookEvent> hook_event_from_name(std::string_view name);

// One event; fields an event does not use are ignored.
struct HookEventData {
    HookEvent event = HookEvent::ClientConnected;
    std::string client_id;
    std::string username;
    std::string from_client_id;  // message.*: the publisher
    std::string from_username;
    std::string topic;
    std::string payload;
    std::string reason;  // client.disconnected, session.terminated
    uint8_t qos = 0;
    bool retain = false;
    int conn_ack = 0;
    int64_t ts = 0;  // Unix seconds; 0 = now, at emit()
};

struct WebHookConfig {
    std::string url;  // web.hook.api.url
    // Per event: the topic filters of its rules; an empty filter string means "all topics".
    // An event with no entry is not sent.
    std::array<std::vector<std::string>, kNumHookEvents> rules;
    size_t max_queue = 10000;
    size_t threads = 1;
    int retries = 3;
    std::chrono::milliseconds backoff{200};
    long timeout_ms = 5000;

    // Sets one "web.hook.*" key (web.hook.api.url, web.hook.rule.<event>.<N>,
    // web.hook.timeout, web.hook.retries); returns an error line, or "" when applied.
    std::string set(std::string_view key, std::string_view value);
};

struct WebHookCounters {
    uint64_t queued = 0;
    uint64_t sent = 0;
    uint64_t retried = 0;
    uint64_t dropped_full = 0;    // queue full at emit()
    uint64_t dropped_failed = 0;  // every attempt failed, or the hook stopped
};

class WebHook {
public:
    explicit WebHook(WebHookConfig config);
    ~WebHook();
    WebHook(const WebHook&) = delete;
    WebHook& operator=(const WebHook&) = delete;

    // Cheap check before building an event: is `event` (on `topic`, for message events)
    // selected by a rule?
    bool wants(HookEvent event, std::string_view topic = {}) const;
    // Queues the event if wants(); false when not wanted or dropped (queue full).
    bool emit(HookEventData data);

    WebHookCounters counters() const;
    // The JSON body sent for `data` (exposed for tests and docs).
    static std::string body_of(const HookEventData& data);

private:
    void deliver(const std::string& body);

    WebHookConfig config_;
    std::atomic<uint64_t> queued_{0}, sent_{0}, retried_{0}, dropped_full_{0}, dropped_failed_{0};
    std::unique_ptr<TaskPool> pool_;
};

}  // namespace mqttd::broker::auth
