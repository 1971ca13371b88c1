// emq_modules: presence messages, subscriptions made for every client on connect, and topic
// rewrite rules (EMQ 2.x emq_mod_presence, emq_mod_subscription, emq_mod_rewrite). This class
// computes topics and payloads; the broker publishes and subscribes.
//
// CONFIG KEYS (EMQ 2.x):
//   module.presence = on|off, module.presence.qos = 0..2
//   module.subscription.<N>.topic = "$client/%c" (%c client id, %u username; a client
//     without a username gets no subscription whose topic uses %u), module.subscription.<N>.qos
//   module.rewrite.rule.<N> = "<filter> <regex> <replacement>", e.g. "x/# ^x/y/(.+)$ z/y/$1"
//
// PRESENCE (EMQ 2.x payloads, ts in Unix seconds, published by the broker, not retained):
//   $SYS/brokers/<node>/clients/<id>/connected
//     {"clientid":..,"username":..,"ipaddress":..,"clean_sess":..,"protocol":..,"connack":..,
//      "ts":..}
//   $SYS/brokers/<node>/clients/<id>/disconnected {"clientid":..,"username":..,"reason":..,"ts":..}
//
// REWRITE: rules are tried in order N; the first rule whose filter matches the topic
// (topic_match) applies its regex (ECMAScript, searched, compiled once at set()): on a match
// the topic becomes the replacement with $1..$9 filled from the capture groups; no regex
// match leaves the topic unchanged. Later rules are not tried. EMQ applies rewrite to PUBLISH
// topics and to SUBSCRIBE/UNSUBSCRIBE filters; the broker should too.
//
// Thread-safety: configure (set) before sharing; afterwards const and safe from any thread.
// To change config at run time, build a new Modules and swap a shared_ptr.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "broker/auth/auth_chain.h"

namespace mqttd::broker::auth {

struct PresenceMessage {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
};

struct AutoSubscription {
    std::string topic;
    uint8_t qos = 0;
};

struct RewriteRule {
    std::string filter;
    std::string pattern;
    std::regex regex;
    std::string replacement;
};

class Modules {
public:
    explicit Modules(std::string node) : node_(std::move(node)) {}

    // Sets one "module.*" key; returns an error line, or "" when applied.
    std::string set(std::string_view key, std::string_view value);

    bool presence_enabled() const { return presence_; }
    PresenceMessage connected(const ClientIdentity& id,
                              bool clean_session,
                              int connack,
                              int64_t ts_s) const;
    PresenceMessage disconnected(const ClientIdentity& id,
                                 std::string_view reason,
                                 int64_t ts_s) const;

    // The subscriptions to make for `id` on connect, in N order.
    std::vector<AutoSubscription> subscriptions_for(const ClientIdentity& id) const;

    // The rewritten topic, or nullopt when no rule changed it.
    std::optional<std::string> rewrite(std::string_view topic) const;

private:
    std::string node_;
    bool presence_ = true;
    uint8_t presence_qos_ = 0;
    std::map<int, AutoSubscription> subscriptions_;
    std::map<int, RewriteRule> rewrite_;
};

}  // namespace mqttd::broker::auth
