// broker::Connection: the broker's side of one MQTT network connection after CONNECT — the
// protocol state the session does not outlive (keepalive, will, the ordered responses still
// waiting for the store). Owned by its worker; touched only on that worker's thread.
//
// Responses that depend on the store (PUBACK / PUBREC / PUBCOMP / PUBREL / SUBACK / UNSUBACK)
// wait in `responses` until every store write they depend on has committed, and leave in the
// order their requests arrived ([MQTT-4.6.0-2], [MQTT-4.6.0-3]).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/auth/acl.h"
#include "broker/auth/auth_chain.h"
#include "broker/link.h"
#include "broker/session.h"
#include "common/lazy_deque.h"
#include "mqtt/packets.h"

namespace mqttd::broker {

struct PendingResponse {
    mqtt::PacketType type = mqtt::PacketType::Puback;
    uint16_t packet_id = 0;
    uint32_t remaining = 0;                 // store commits still to wait for
    std::vector<mqtt::ReasonCode> reasons;  // SUBACK / UNSUBACK
    // SUBACK: filters whose retained messages go out after the SUBACK.
    std::vector<std::pair<std::string, mqtt::SubscribeOptions>> retained_for;
    std::vector<uint32_t> subscription_ids;
};

// MQTT 5 topic aliases a client may set (Topic Alias Maximum in CONNACK).
inline constexpr uint16_t kTopicAliasMaximum = 10;

// A client's topic aliases (MQTT 5 3.3.2.3.4), allocated on the first PUBLISH that uses one.
struct TopicAliases {
    std::array<std::string, kTopicAliasMaximum> topics;  // alias n at n - 1
    std::string properties;  // the PUBLISH's properties without its Topic Alias, while handled
};

inline PendingResponse response_for(mqtt::PacketType type, uint16_t packet_id) {
    PendingResponse r;
    r.type = type;
    r.packet_id = packet_id;
    return r;
}

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

    // Publish decisions (mqtt.cache_acl), allocated on the first one cached.
    auth::AclCache& acl_cache() {
        if (!acl_cache_) {
            acl_cache_ = std::make_unique<auth::AclCache>();
        }
        return *acl_cache_;
    }
    // nullptr while nothing has been cached.
    auth::AclCache* acl_cache_if_any() { return acl_cache_.get(); }

    auth::ClientIdentity identity;  // as authenticated (password dropped)
    SessionPtr session;
    std::unique_ptr<mqtt::Will> will;  // allocated only when the client has one
    std::unique_ptr<TopicAliases> topic_aliases;
    LazyDeque<PendingResponse> responses;
    uint64_t responses_base = 0;  // response number of responses.front()
    int64_t connected_at_ms = 0;
    int64_t last_activity_ms = 0;
    uint32_t max_packet_size = 0;  // MQTT 5: the client's Maximum Packet Size, 0 = no limit
    uint16_t keepalive = 0;
    uint16_t receive_maximum = 0;  // MQTT 5: the client's Receive Maximum, 0 = none given
    mqtt::Version version = mqtt::Version::V311;
    bool clean_start = true;
    bool superuser = false;  // from authentication: the ACL does not apply
    bool disconnect_received = false;
    bool retain_unavailable = false;  // MQTT 5: CONNACK said Retain Available 0 (retainer off)
    bool closing = false;

    // Reading is paused while holds > 0 (Worker::hold/release): a decision taken elsewhere,
    // or too many acks waiting for the store (acks_held).
    uint8_t holds = 0;
    bool acks_held = false;

private:
    std::unique_ptr<auth::AclCache> acl_cache_;
    const uint64_t id_;
    Link* const link_;
};

}  // namespace mqttd::broker
