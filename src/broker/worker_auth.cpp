// Worker: MQTT 5 enhanced authentication (4.12) with SCRAM-SHA-256 (auth/scram.h), checked
// against emq_auth_username's SCRAM credentials.
//
// FIRST AUTHENTICATION. CONNECT carries Authentication Method "SCRAM-SHA-256" and the client's
// first message as Authentication Data. The connection is attached at once, with no session,
// and answered AUTH 0x18 (server-first); until CONNACK it may send only AUTH 0x18 (its final
// message) or DISCONNECT. A valid proof completes the CONNECT as any accepted one (takeover,
// session, CONNACK 0 carrying the server-final message); a wrong one gets CONNACK 0x87, a
// malformed exchange CONNACK 0x82 or 0x87, a name differing from CONNECT's User Name 0x86;
// one that stalls is closed after mqtt.connect_timeout. The other providers of the auth
// chain are not asked: the SCRAM proof is the authentication.
//
// RE-AUTHENTICATION [MQTT-4.12.1-1]. After CONNACK a client that authenticated this way may
// send AUTH 0x19 with the same method and a new client-first message (for the same user name),
// then AUTH 0x18 with its final one; the server answers AUTH 0x18 and then AUTH 0x00 with its
// final message. Other packets flow meanwhile. A failed re-authentication is DISCONNECT 0x87
// [MQTT-4.12.1-2]; AUTH from a client that did not authenticate this way, or with another
// method, is a Protocol Error.
#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "broker/worker.h"
#include "common/clock.h"
#include "mqtt/encoder.h"

namespace mqttd::broker {

using mqtt::ReasonCode;
using mqtt::Version;

void Worker::write_auth(Connection& conn, ReasonCode reason, std::string data) {
    mqtt::Auth a;
    a.reason = reason;
    a.properties.authentication_method = std::string(auth::kScramMethod);
    a.properties.authentication_data = std::move(data);
    mqtt::encode_auth(conn.link().out(), a);
    metrics_.add(Metric::PacketsSent);
    conn.link().flush();
}

ConnectOutcome Worker::begin_enhanced_auth(Link& link,
                                           mqtt::Connect&& c,
                                           auth::ClientIdentity&& identity,
                                           bool assigned) {
    auto ex = std::make_unique<AuthExchange>();
    auto user = ex->scram.start(c.properties.authentication_data.value_or(""));
    if (!user) {
        spdlog::debug("client {} from {}: SCRAM refused: {}", c.client_id, link.peer_ip(),
                      user.error());
        broker_.extensions().auth_refused.fetch_add(1, std::memory_order_relaxed);
        return {ConnectResult::Refused, ConnectRefusal::NotAuthorized};
    }
    if (c.username && *c.username != *user) {
        broker_.extensions().auth_refused.fetch_add(1, std::memory_order_relaxed);
        return {ConnectResult::Refused, ConnectRefusal::BadUserNameOrPassword};
    }
    std::string first =
            ex->scram.challenge(broker_.extensions().usernames->scram_credential(*user));
    identity.username = std::move(user).value();
    identity.password.reset();
    ex->identity = std::move(identity);
    ex->assigned = assigned;
    ex->started_ms = mono_ms();
    auto conn_ptr = std::make_unique<Connection>(broker_.next_connection_id(), &link);
    Connection& conn = *conn_ptr;
    conn.version = Version::V5;
    conn.keepalive = c.keepalive;
    conn.last_activity_ms = mono_ms();
    ex->connect = std::make_unique<mqtt::Connect>(std::move(c));
    conn.extras().auth = std::move(ex);
    connections_.emplace(conn.id(), std::move(conn_ptr));
    connections_changed();
    link.attach(&conn);
    write_auth(conn, ReasonCode::ContinueAuthentication, std::move(first));
    return {ConnectResult::Accepted};
}

ReasonCode Worker::continue_connect_auth(Connection& conn, mqtt::Packet& packet) {
    if (std::holds_alternative<mqtt::Disconnect>(packet)) {
        conn.disconnect_received = true;
        close_connection(conn);
        return ReasonCode::Success;
    }
    auto* a = std::get_if<mqtt::Auth>(&packet);
    Link& link = conn.link();
    if (a == nullptr || a->reason != ReasonCode::ContinueAuthentication ||
        a->properties.authentication_method != auth::kScramMethod) {
        // Before CONNACK the answer to a Protocol Error is CONNACK 0x82 (MQTT 5 4.13.1).
        link.refuse(ConnectRefusal::ProtocolError);
        conn.closing = true;
        return ReasonCode::Success;
    }
    auto final = conn.auth()->scram.finish(a->properties.authentication_data.value_or(""));
    if (!final) {
        spdlog::debug("client {} from {}: SCRAM refused: {}", conn.auth()->connect->client_id,
                      link.peer_ip(), final.error());
        broker_.extensions().auth_refused.fetch_add(1, std::memory_order_relaxed);
        link.refuse(ConnectRefusal::NotAuthorized);
        conn.closing = true;
        return ReasonCode::Success;
    }
    // Authenticated: the CONNECT completes on a Connection of its own. This one leaves the
    // table now and is freed after the current packet (net is still inside on_packet for it).
    std::unique_ptr<AuthExchange> ex = std::move(conn.extras().auth);
    auto it = connections_.find(conn.id());
    std::shared_ptr<Connection> retired(std::move(it->second));
    connections_.erase(it);
    connections_changed();
    post([retired] {});
    auto outcome = conclude_connect(
            link, std::move(*ex->connect), std::move(ex->identity), ex->assigned,
            auth::Decision::allow(std::string(auth::kScramMethod)), &final.value());
    if (outcome.result == ConnectResult::Refused) {
        link.refuse(outcome.refusal);
    }
    return ReasonCode::Success;
}

ReasonCode Worker::handle_auth(Connection& conn, const mqtt::Auth& a) {
    if (!conn.enhanced_auth || a.properties.authentication_method != auth::kScramMethod) {
        return ReasonCode::ProtocolError;  // [MQTT-4.12.1-1]: only by the CONNECT's method
    }
    const std::string data = a.properties.authentication_data.value_or("");
    if (a.reason == ReasonCode::ReAuthenticate) {
        if (conn.auth()) {
            return ReasonCode::ProtocolError;  // one exchange at a time
        }
        auto ex = std::make_unique<AuthExchange>();
        auto user = ex->scram.start(data);
        if (!user || *user != conn.username()) {
            return ReasonCode::NotAuthorized;  // [MQTT-4.12.1-2]
        }
        std::string first =
                ex->scram.challenge(broker_.extensions().usernames->scram_credential(*user));
        ex->started_ms = mono_ms();
        conn.extras().auth = std::move(ex);
        write_auth(conn, ReasonCode::ContinueAuthentication, std::move(first));
        return ReasonCode::Success;
    }
    if (a.reason != ReasonCode::ContinueAuthentication || !conn.auth()) {
        return ReasonCode::ProtocolError;
    }
    auto final = conn.auth()->scram.finish(data);
    conn.extras().auth.reset();
    if (!final) {
        broker_.extensions().auth_refused.fetch_add(1, std::memory_order_relaxed);
        return ReasonCode::NotAuthorized;  // DISCONNECT 0x87, then close [MQTT-4.12.1-2]
    }
    write_auth(conn, ReasonCode::Success, std::move(final).value());
    return ReasonCode::Success;
}

}  // namespace mqttd::broker
