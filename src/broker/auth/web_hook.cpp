#include "broker/auth/web_hook.h"

#include <algorithm>
#include <charconv>

#include <nlohmann/json.hpp>

#include "broker/auth/http_client.h"
#include "broker/auth/topic_filter.h"

namespace mqttd::broker::auth {

namespace {

constexpr std::array<std::string_view, kNumHookEvents> kEventNames = {
        "client.connected",   "client.disconnected", "client.subscribe",
        "client.unsubscribe", "session.created",     "session.terminated",
        "message.publish",    "message.delivered",   "message.acked"};

bool is_message_event(HookEvent e) {
    return e == HookEvent::MessagePublish || e == HookEvent::MessageDelivered ||
           e == HookEvent::MessageAcked;
}

int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
}

}  // namespace

std::string_view hook_event_name(HookEvent e) {
    return kEventNames[static_cast<size_t>(e)];
}

std::optional<HookEvent> hook_event_from_name(std::string_view name) {
    for (size_t i = 0; i < kEventNames.size(); ++i) {
        if (kEventNames[i] == name) {
            return static_cast<HookEvent>(i);
        }
    }
    return std::nullopt;
}

std::string WebHookConfig::set(std::string_view key, std::string_view value) {
    if (key == "web.hook.api.url") {
        if (!value.empty() && value.substr(0, 7) != "http://" && value.substr(0, 8) != "https://") {
            return std::string(key) + ": expected an http:// or https:// URL";
        }
        url = std::string(value);
        return {};
    }
    if (key == "web.hook.timeout" || key == "web.hook.retries") {
        long n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || p != value.data() + value.size() || n < 0 || n > 600000) {
            return std::string(key) + ": expected a number";
        }
        if (key == "web.hook.timeout") {
            timeout_ms = std::max(1L, n);
        } else {
            retries = static_cast<int>(std::min(n, 10L));
        }
        return {};
    }
    constexpr std::string_view kRule = "web.hook.rule.";
    if (key.substr(0, kRule.size()) != kRule) {
        return std::string(key) + ": unknown key";
    }
    std::string_view rest = key.substr(kRule.size());
    size_t dot = rest.rfind('.');
    auto event = hook_event_from_name(rest.substr(0, dot));
    if (dot == std::string_view::npos || !event) {
        return std::string(key) + ": unknown event";
    }
    auto rule = nlohmann::json::parse(value, nullptr, false);
    if (rule.is_discarded() || !rule.is_object() || !rule.contains("action") ||
        !rule["action"].is_string()) {
        return std::string(key) + ": expected {\"action\": \"...\"[, \"topic\": \"filter\"]}";
    }
    std::string filter;
    if (rule.contains("topic")) {
        if (!rule["topic"].is_string() || !valid_filter(rule["topic"].get<std::string>())) {
            return std::string(key) + ": bad topic filter";
        }
        filter = rule["topic"].get<std::string>();
    }
    rules[static_cast<size_t>(*event)].push_back(std::move(filter));
    return {};
}

WebHook::WebHook(WebHookConfig config)
    : config_(std::move(config)),
      pool_(std::make_unique<TaskPool>(std::max<size_t>(1, config_.threads), config_.max_queue)) {}

WebHook::~WebHook() {
    pool_->stop();
}

bool WebHook::wants(HookEvent event, std::string_view topic) const {
    if (config_.url.empty()) {
        return false;
    }
    const auto& filters = config_.rules[static_cast<size_t>(event)];
    if (filters.empty()) {
        return false;
    }
    if (!is_message_event(event)) {
        return true;
    }
    return std::any_of(filters.begin(), filters.end(),
                       [&](const std::string& f) { return f.empty() || topic_match(topic, f); });
}

std::string WebHook::body_of(const HookEventData& d) {
    nlohmann::json j;
    std::string action(hook_event_name(d.event));
    std::replace(action.begin(), action.end(), '.', '_');
    j["action"] = action;
    switch (d.event) {
        case HookEvent::ClientConnected:
            j["client_id"] = d.client_id;
            j["username"] = d.username;
            j["conn_ack"] = d.conn_ack;
            break;
        case HookEvent::ClientDisconnected:
        case HookEvent::SessionTerminated:
            j["client_id"] = d.client_id;
            j["username"] = d.username;
            j["reason"] = d.reason;
            break;
        case HookEvent::ClientSubscribe:
        case HookEvent::ClientUnsubscribe:
            j["client_id"] = d.client_id;
            j["username"] = d.username;
            j["topic"] = d.topic;
            j["opts"] = {{"qos", d.qos}};
            break;
        case HookEvent::SessionCreated:
            j["client_id"] = d.client_id;
            j["username"] = d.username;
            break;
        case HookEvent::MessageDelivered:
        case HookEvent::MessageAcked:
            j["client_id"] = d.client_id;
            j["username"] = d.username;
            [[fallthrough]];
        case HookEvent::MessagePublish:
            j["from_client_id"] = d.from_client_id;
            j["from_username"] = d.from_username;
            j["topic"] = d.topic;
            j["qos"] = d.qos;
            j["retain"] = d.retain;
            j["payload"] = d.payload;
            break;
    }
    j["ts"] = d.ts;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool WebHook::emit(HookEventData data) {
    if (!wants(data.event, data.topic)) {
        return false;
    }
    if (data.ts == 0) {
        data.ts = now_s();
    }
    auto shared = std::make_shared<HookEventData>(std::move(data));
    bool queued = pool_->submit([this, shared](bool run) {
        if (!run) {
            dropped_failed_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        deliver(body_of(*shared));
    });
    if (!queued) {
        dropped_full_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    queued_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void WebHook::deliver(const std::string& body) {
    HttpRequest req;
    req.post = true;
    req.url = config_.url;
    req.body = body;
    req.content_type = "application/json";
    req.timeout_ms = config_.timeout_ms;
    auto backoff = config_.backoff;
    for (int attempt = 0;; ++attempt) {
        HttpResponse resp = http_perform(req);
        if (resp.status >= 200 && resp.status < 300) {
            sent_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (attempt >= config_.retries || !pool_->sleep_for(backoff)) {
            dropped_failed_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        retried_.fetch_add(1, std::memory_order_relaxed);
        backoff *= 2;
    }
}

WebHookCounters WebHook::counters() const {
    return {queued_.load(std::memory_order_relaxed), sent_.load(std::memory_order_relaxed),
            retried_.load(std::memory_order_relaxed), dropped_full_.load(std::memory_order_relaxed),
            dropped_failed_.load(std::memory_order_relaxed)};
}

}  // namespace mqttd::broker::auth
