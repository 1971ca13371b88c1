// broker::Connection: the broker's side of one MQTT network connection after CONNECT — the
// protocol state the session does not outlive (keepalive, will, the ordered responses still
// waiting for the store). Owned by its worker; touched only on that worker's thread.
//
// Responses that depend on the store wait in `responses` (response_queue.h).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/auth/acl.h"
#include "broker/auth/auth_chain.h"
#include "broker/auth/scram.h"
#include "broker/link.h"
#include "broker/response_queue.h"
#include "broker/session.h"
#include "common/lazy_deque.h"
#include "mqtt/packets.h"

namespace mqttd::broker {

// MQTT 5 Receive Maximum given to clients when mqtt.max_inflight is 0 (no fixed window).
inline constexpr uint16_t kReceiveMaximum = 1024;

// MQTT 5 topic aliases a client may set (Topic Alias Maximum in CONNACK).
inline constexpr uint16_t kTopicAliasMaximum = 10;

// A client's topic aliases (MQTT 5 3.3.2.3.4), allocated on the first PUBLISH that uses one.
struct TopicAliases {
    std::array<std::string, kTopicAliasMaximum> topics;  // alias n at n - 1
    std::string properties;  // the PUBLISH's properties without its Topic Alias, while handled
};

// Topic aliases the server sets on the PUBLISHes it sends one MQTT 5 client, which allowed them
// with a Topic Alias Maximum in CONNECT (3.3.2.3.4): the first PUBLISH of a topic carries the
// topic and an alias, the next ones the alias and an empty topic. The table is bounded by the
// client's maximum (and kMaxOutboundAliases); when it is full the least recently sent topic
// gives up its alias. Allocated on the first PUBLISH sent.
inline constexpr uint16_t kMaxOutboundAliases = 32;

class OutboundAliases {
public:
    explicit OutboundAliases(uint16_t max) : max_(std::min(max, kMaxOutboundAliases)) {}

    struct Assigned {
        uint16_t alias = 0;
        bool known = false;  // the client has this alias for the topic: send an empty topic
    };
    // REQUIRES: called only for a PUBLISH that is then written.
    Assigned assign(std::string_view topic) {
        ++clock_;
        if (auto it = by_topic_.find(topic); it != by_topic_.end()) {
            slots_[it->second - 1].used = clock_;
            return {it->second, true};
        }
        uint16_t alias;
        if (slots_.size() < max_) {
            slots_.push_back({});
            alias = static_cast<uint16_t>(slots_.size());
        } else {
            alias = 1;
            for (uint16_t a = 2; a <= slots_.size(); ++a) {
                if (slots_[a - 1].used < slots_[alias - 1].used) {
                    alias = a;
                }
            }
            by_topic_.erase(by_topic_.find(*slots_[alias - 1].topic));
        }
        auto it = by_topic_.emplace(std::string(topic), alias).first;
        slots_[alias - 1] = Slot{&it->first, clock_};
        return {alias, false};
    }

private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Slot {
        const std::string* topic = nullptr;  // its key in by_topic_
        uint64_t used = 0;
    };
    std::unordered_map<std::string, uint16_t, Hash, std::equal_to<>> by_topic_;
    std::vector<Slot> slots_;  // alias n at n - 1
    uint64_t clock_ = 0;
    const uint16_t max_;
};

// MQTT 5 enhanced authentication in progress (4.12), SCRAM-SHA-256 (auth/scram.h): during
// the first one the CONNECT it completes waits here, and the connection has no session yet.
struct AuthExchange {
    auth::ScramServer scram;
    std::unique_ptr<mqtt::Connect> connect;  // the first authentication only; null when re-
    auth::ClientIdentity identity;           // authenticating
    bool assigned = false;                   // the client id was assigned by the server
    int64_t started_ms = 0;                  // mono
};

class Connection {
public:
    Connection(uint64_t id, Link* link) : id_(id), link_(link) {}
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    uint64_t id() const { return id_; }
    Link& link() { return *link_; }
    const Link& link() const { return *link_; }

    // The client id and user name live once, in `identity`, which the auth chain is given.
    const std::string& client_id() const { return identity.client_id; }
    // Empty when the client gave none.
    const std::string& username() const {
        static const std::string kNone;
        return identity.username ? *identity.username : kNone;
    }

    // What few connections have, in one block allocated on first use: an idle connection pays
    // one pointer for all of it.
    struct Extras {
        std::unique_ptr<mqtt::Will> will;  // the client has one
        std::unique_ptr<TopicAliases> topic_aliases;
        std::unique_ptr<OutboundAliases> outbound_aliases;
        std::unique_ptr<AuthExchange> auth;         // an AUTH exchange in progress
        std::unique_ptr<auth::AclCache> acl_cache;  // publish decisions (mqtt.cache_acl)
    };
    Extras& extras() {
        if (!extras_) {
            extras_ = std::make_unique<Extras>();
        }
        return *extras_;
    }
    // Null when none.
    mqtt::Will* will() const { return extras_ ? extras_->will.get() : nullptr; }
    AuthExchange* auth() const { return extras_ ? extras_->auth.get() : nullptr; }

    // Publish decisions (mqtt.cache_acl), allocated on the first one cached.
    auth::AclCache& acl_cache() {
        auto& c = extras().acl_cache;
        if (!c) {
            c = std::make_unique<auth::AclCache>();
        }
        return *c;
    }
    // nullptr while nothing has been cached.
    auth::AclCache* acl_cache_if_any() { return extras_ ? extras_->acl_cache.get() : nullptr; }

    auth::ClientIdentity identity;  // as authenticated (password dropped)
    SessionPtr session;
    bool enhanced_auth = false;               // CONNECT used SCRAM-SHA-256: may re-authenticate
    uint16_t client_topic_alias_maximum = 0;  // MQTT 5: aliases the client lets us set
    ResponseQueue responses;                  // acks waiting for the store, in order
    int64_t connected_at_ms = 0;
    int64_t last_activity_ms = 0;
    uint32_t max_packet_size = 0;  // MQTT 5: the client's Maximum Packet Size, 0 = no limit
    uint16_t keepalive = 0;
    uint16_t receive_maximum = 0;  // MQTT 5: the client's Receive Maximum, 0 = none given
    // MQTT 5 flow control of what the client sends (4.9): the Receive Maximum CONNACK gave it
    // (0 for 3.x: not enforced) and its QoS 1/2 PUBLISHes not yet answered with PUBACK,
    // PUBCOMP or an error PUBREC.
    uint16_t server_receive_maximum = 0;
    uint16_t inbound_unacked = 0;
    mqtt::Version version = mqtt::Version::V311;
    bool clean_start = true;
    bool superuser = false;  // from authentication: the ACL does not apply
    bool disconnect_received = false;
    bool retain_unavailable = false;   // MQTT 5: CONNACK said Retain Available 0 (retainer off)
    bool connect_expiry_zero = false;  // MQTT 5: CONNECT's Session Expiry Interval was 0
    bool closing = false;

    // Reading is paused while holds > 0 (Worker::hold/release): a decision taken elsewhere,
    // or too many acks waiting for the store (acks_held).
    uint8_t holds = 0;
    bool acks_held = false;

private:
    std::unique_ptr<Extras> extras_;
    const uint64_t id_;
    Link* const link_;
};

}  // namespace mqttd::broker
