// One MQTT 3.1.1 client of the load generator: connect/subscribe handshakes, packet-id
// allocation and the QoS 1/2 acknowledgement flows in both directions. Incoming PUBLISHes are
// acknowledged into the connection's output buffer, so every ack produced by one read goes out
// in the same write at the end of the loop turn.
//
// Ownership: owned by the scenario; the Connection is owned by the Loop.
// Thread-safety: none; loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <netinet/in.h>

#include "loop.h"
#include "wire.h"

namespace mqttd::load {

class Client;

// What a scenario hears from its clients.
class ClientEvents {
public:
    virtual ~ClientEvents() = default;
    virtual void on_connack(Client& c, int return_code, bool session_present) = 0;
    virtual void on_suback(Client& /*c*/) {}
    // An incoming application message, after its ack has been queued.
    virtual void on_message(Client& c, const PublishView& m) = 0;
    // A QoS 1 PUBACK or QoS 2 PUBCOMP released one of our packet ids.
    virtual void on_publish_done(Client& /*c*/) {}
    virtual void on_closed(Client& c, int err) = 0;
};

class Client final : public ConnectionHandler {
public:
    enum class Phase { Idle, Connecting, WaitConnack, Ready, Closed };

    Client(Loop& loop, ClientEvents& events, std::string client_id, std::uint32_t index);
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void start(const sockaddr_in& to, in_addr_t from, bool clean_session, std::uint16_t keepalive);
    void subscribe(std::string_view filter, int qos);
    // Queues a PUBLISH; false when all 65535 packet ids are in use (QoS > 0).
    bool publish(std::string_view topic,
                 int qos,
                 std::uint64_t seq,
                 std::uint64_t ts_ns,
                 std::size_t size);
    void disconnect();  // DISCONNECT, then a graceful close
    void abort();       // close without DISCONNECT

    [[nodiscard]] Phase phase() const { return phase_; }
    [[nodiscard]] std::uint32_t index() const { return index_; }
    [[nodiscard]] const std::string& id() const { return id_; }
    [[nodiscard]] std::uint32_t unacked() const { return unacked_; }
    [[nodiscard]] std::uint32_t pending_subacks() const { return pending_subacks_; }
    [[nodiscard]] int last_error() const { return last_error_; }
    // Whether the last close happened before CONNACK, and whether we asked for it.
    [[nodiscard]] bool closed_in_handshake() const { return closed_in_handshake_; }
    [[nodiscard]] bool close_requested() const { return close_requested_; }

    void on_open(Connection& c) override;
    void on_packet(Connection& c, const Packet& p) override;
    void on_closed(Connection& c, int err) override;

private:
    std::uint16_t take_packet_id();
    void release_packet_id(std::uint16_t id);

    Loop& loop_;
    ClientEvents& events_;
    std::string id_;
    std::uint32_t index_;
    Connection* conn_ = nullptr;
    Phase phase_ = Phase::Idle;
    bool clean_ = true;
    std::uint16_t keepalive_ = 60;
    std::uint16_t next_id_ = 1;
    std::uint32_t unacked_ = 0;
    std::uint32_t pending_subacks_ = 0;
    int last_error_ = 0;
    bool closed_in_handshake_ = false;
    bool close_requested_ = false;
    std::vector<std::uint64_t> ids_in_use_;  // bitmap over packet ids, allocated on first use
};

}  // namespace mqttd::load
