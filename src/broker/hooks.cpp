#include "broker/hooks.h"

#include "broker/connection.h"
#include "broker/extensions.h"
#include "broker/message.h"

namespace mqttd::broker {

bool Hooks::web_hook_on() const {
    return ext_.web_hook_on.load(std::memory_order_relaxed);
}

void Hooks::message(auth::HookEvent event,
                    const Connection& conn,
                    std::string_view topic,
                    const Message* msg,
                    uint8_t qos) const {
    if (!web_hook_on()) {
        return;
    }
    auto hook = ext_.web_hook.load();
    if (!hook || !hook->wants(event, topic)) {
        return;
    }
    auth::HookEventData e;
    e.event = event;
    e.client_id = conn.client_id();
    e.username = conn.username();
    e.topic.assign(topic);
    e.qos = qos;
    if (msg) {
        e.from_client_id.assign(msg->from_client());
        e.from_username.assign(msg->from_username());
        e.payload.assign(msg->payload());
        e.qos = msg->qos;
        e.retain = msg->retain;
    }
    hook->emit(std::move(e));
}

void Hooks::client(const Connection& conn,
                   std::initializer_list<std::pair<auth::HookEvent, bool>> events,
                   const char* reason) const {
    if (!web_hook_on()) {
        return;
    }
    auto hook = ext_.web_hook.load();
    if (!hook) {
        return;
    }
    auth::HookEventData e;
    e.client_id = conn.client_id();
    e.username = conn.username();
    e.reason = reason;
    for (const auto& [event, on] : events) {
        if (on && hook->wants(event)) {
            e.event = event;
            hook->emit(e);
        }
    }
}

std::shared_ptr<const auth::Modules> Hooks::modules() const {
    if (!ext_.modules_on.load(std::memory_order_relaxed)) {
        return nullptr;
    }
    return ext_.modules.load();
}

std::optional<std::string> Hooks::rewrite(std::string_view topic) const {
    if (auto m = modules()) {
        return m->rewrite(topic);
    }
    return std::nullopt;
}

}  // namespace mqttd::broker
