// broker::Hooks: what a worker tells the extensions on its events — emq_web_hook's HTTP
// events, emq_modules' topic rewrite, presence messages and automatic subscriptions — behind
// one "is it on" check each, so a stopped plugin costs one relaxed load and nothing else.
//
// Thread-safety: any worker thread; the extensions swap their configuration atomically.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "broker/auth/modules.h"
#include "broker/auth/web_hook.h"

namespace mqttd::broker {

class Connection;
struct Extensions;
class Message;

class Hooks {
public:
    explicit Hooks(Extensions& ext) : ext_(ext) {}

    // emq_web_hook running?
    bool web_hook_on() const;
    // A message or subscription event (message.publish / delivered / acked,
    // client.subscribe / unsubscribe): sent when emq_web_hook runs and wants it for `topic`.
    // `qos` is the subscription's for subscribe events (a message's QoS otherwise).
    void message(auth::HookEvent event,
                 const Connection& conn,
                 std::string_view topic,
                 const Message* msg,
                 uint8_t qos = 0) const;
    // Client events (client.connected / disconnected, session.created / terminated), each
    // sent when its flag is set and the hook wants it; `reason` for the disconnects.
    void client(const Connection& conn,
                std::initializer_list<std::pair<auth::HookEvent, bool>> events,
                const char* reason) const;
    // emq_modules while it runs, else nullptr.
    std::shared_ptr<const auth::Modules> modules() const;
    // emq_modules' rewrite of a topic or filter, if a rule applies.
    std::optional<std::string> rewrite(std::string_view topic) const;

private:
    Extensions& ext_;
};

}  // namespace mqttd::broker
