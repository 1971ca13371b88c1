// broker::Link: what the broker needs from one network connection, implemented by net (TCP,
// and later TLS and WebSocket). The broker appends encoded packets to out() and calls flush();
// net writes them in one gather per loop turn. Touched only on the connection's worker thread.
#pragma once

#include <cstdint>
#include <string>

namespace mqttd::broker {

class Connection;

// Why the broker refused a CONNECT; net puts it on the wire (the CONNACK code of the client's
// protocol version) and closes.
enum class ConnectRefusal : uint8_t {
    ClientIdentifierNotValid,  // [MQTT-3.1.3-8], or longer than mqtt.max_clientid_len
    BadAuthenticationMethod,   // MQTT 5 enhanced authentication: a method not offered
    BadUserNameOrPassword,     // a provider knew the name and refused the password
    NotAuthorized,             // no provider, nor the anonymous rule, accepts the client
    ProtocolError,             // MQTT 5: a packet other than AUTH during enhanced authentication
    StoreUnavailable,          // the session must be stored and the store takes no writes (0x97)
    ServerUnavailable,         // a cluster member cannot decide who owns the client id (0x88)
};

class Link {
public:
    virtual ~Link() = default;
    // The buffer to append encoded packets to; net owns and reuses it.
    virtual std::string& out() = 0;
    // Requests a write of out() at the end of the current loop turn.
    virtual void flush() = 0;
    // Writes what is pending, then closes. The broker learns of the close through
    // Worker::on_closed(), exactly once, whoever started it.
    virtual void close() = 0;
    // Formatted on each call (links keep the address as bytes).
    virtual std::string peer_ip() const = 0;
    virtual uint16_t peer_port() const = 0;
    virtual const char* transport() const = 0;  // "tcp", "ssl", "ws", "wss"
    // The verified client certificate's subject CN (`dn` false) or RFC 2253 DN; empty when the
    // transport has none.
    virtual std::string peer_subject(bool dn) const = 0;

    // Flow control for decisions taken elsewhere (authentication, ACL): after pause(), net
    // decodes no further packet and keeps the bytes already received (so views into them stay
    // valid) until resume(). A paused link stays alive until resumed or closed.
    virtual void pause() = 0;
    virtual void resume() = 0;
    // A CONNECT that was pending (see Worker::on_connect) has been accepted: packets from now
    // on go to `conn`.
    virtual void attach(Connection* conn) = 0;
    // A CONNECT that was pending, or whose AUTH exchange failed, has been refused: net writes
    // the refusal and closes.
    virtual void refuse(ConnectRefusal why) = 0;
};

}  // namespace mqttd::broker
