// A single-threaded epoll event loop owning many non-blocking TCP connections.
//
// Reads: level-triggered EPOLLIN, one large read per ready connection per turn into a buffer
// shared by all connections, then every whole packet in it is dispatched; only a trailing
// partial packet is copied into the connection, so an idle connection holds no read memory.
// Writes: handlers append to Connection::out and call Loop::want_flush(); at the end of the turn
// each dirty connection gets one send() of everything pending (acks and publishes produced by a
// whole read batch go out together). EPOLLOUT is armed only while a send was short.
//
// Ownership: the Loop owns every Connection until the Loop is destroyed; a closed connection
// keeps its object (fd == -1) so that handlers may hold plain pointers.
// Thread-safety: none; everything runs on the thread that calls run_once().
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <netinet/in.h>

#include "wire.h"

namespace mqttd::load {

class Connection;

// What every connection of a loop speaks under MQTT (--tls, --ws). TLS does not verify the
// broker's certificate (a benchmark, not a client); WebSocket frames are masked as RFC 6455
// requires of clients, one binary frame per send.
struct TransportOptions {
    bool tls = false;
    bool ws = false;
    std::string ws_path = "/mqtt";
};

// Receives the events of one connection.
class ConnectionHandler {
public:
    virtual ~ConnectionHandler() = default;
    virtual void on_open(Connection& c) = 0;  // TCP connected
    virtual void on_packet(Connection& c, const Packet& p) = 0;
    // Closed by the peer, by an error (errno value, 0 for EOF) or after a requested shutdown.
    virtual void on_closed(Connection& c, int err) = 0;
};

class Connection {
public:
    Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    [[nodiscard]] bool is_open() const { return fd_ >= 0 && connected_; }
    [[nodiscard]] bool is_closed() const { return fd_ < 0; }
    [[nodiscard]] std::uint64_t last_send_ns() const { return last_send_ns_; }

    OutBuffer out;

private:
    friend class Loop;
    int fd_ = -1;
    bool connected_ = false;
    bool dirty_ = false;
    bool out_armed_ = false;
    bool closing_ = false;  // shut down our side once `out` is sent, then wait for EOF
    // --tls / --ws: the connect is done, the TLS handshake or the upgrade is not.
    enum class Phase : std::uint8_t { Ready, TlsHandshake, WsUpgrade };
    Phase phase_ = Phase::Ready;
    ConnectionHandler* handler_ = nullptr;
    std::vector<std::uint8_t> partial_;
    std::uint64_t last_send_ns_ = 0;
    void* ssl_ = nullptr;                 // SSL, with --tls
    std::vector<std::uint8_t> wire_in_;   // --ws: received, not yet a whole frame
    std::vector<std::uint8_t> wire_out_;  // --ws: framed, not yet sent
    std::uint32_t mask_ = 0;
};

class Loop {
public:
    Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;
    ~Loop();

    // Starts a non-blocking connect to `to`, optionally from source address `from` (network
    // order, 0 = kernel's choice). Errors are reported through handler.on_closed.
    Connection* connect(const sockaddr_in& to, in_addr_t from, ConnectionHandler* handler);

    // Schedules a flush of c.out at the end of this turn.
    void want_flush(Connection& c);
    // Flushes c.out, half-closes, and reports on_closed once the peer closes too.
    void close_gracefully(Connection& c);
    // Closes at once (reported through on_closed with err).
    void abort(Connection& c, int err);

    // One turn: waits up to timeout_ms for events, dispatches them, flushes dirty connections.
    void run_once(int timeout_ms);

    // Time at which the current read batch was taken off the socket.
    [[nodiscard]] std::uint64_t read_time_ns() const { return read_time_ns_; }
    [[nodiscard]] std::size_t open_connections() const { return open_; }
    // Connections whose last send is older than idle_ns get a PINGREQ.
    void ping_idle(std::uint64_t idle_ns);
    // Largest packet accepted from the broker.
    void set_max_packet(std::size_t n) { max_packet_ = n; }
    // Before the first connect.
    void set_transport(const TransportOptions& t);

private:
    void on_readable(Connection& c);
    void on_writable(Connection& c);
    void flush(Connection& c);
    void finish_close(Connection& c, int err);
    void set_out_armed(Connection& c, bool armed);
    // The TCP connect is done: TLS handshake, WebSocket upgrade, then on_open.
    void start_transport(Connection& c);
    void step_handshake(Connection& c);
    void opened(Connection& c);
    // Reads bytes off the socket (through TLS); >0, 0 at EOF, -1 would block, -2 error.
    long raw_read(Connection& c, std::uint8_t* buf, std::size_t n);
    long raw_write(Connection& c, const std::uint8_t* data, std::size_t n);
    // --ws: MQTT bytes of the whole frames in wire_in_, appended at rbuf_[at]; false on close.
    bool unframe(Connection& c, std::size_t& at);

    int epfd_ = -1;
    std::vector<std::unique_ptr<Connection>> conns_;
    std::vector<Connection*> dirty_;
    std::vector<std::uint8_t> rbuf_;
    std::uint64_t read_time_ns_ = 0;
    std::size_t open_ = 0;
    std::size_t max_packet_ = 16U << 20;
    TransportOptions transport_;
    void* ssl_ctx_ = nullptr;        // SSL_CTX, with --tls
    std::vector<std::uint8_t> raw_;  // --ws: bytes off the socket before unframing
};

// Parses "a.b.c.d" into network order; throws std::invalid_argument.
in_addr_t parse_ipv4(const char* s);
// Raises RLIMIT_NOFILE as far as allowed; returns the resulting soft limit.
std::uint64_t raise_fd_limit(std::uint64_t want);

}  // namespace mqttd::load
