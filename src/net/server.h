// net::Server: the worker threads (one io_context each) and the MQTT listeners — MQTT over
// TCP, TLS, WebSocket and WebSocket over TLS. Only this folder sees Asio, OpenSSL's TLS and
// wslay. A connection is accepted onto a worker, finishes its handshakes and reads its
// CONNECT there, then moves (its socket leaves one worker's epoll set for another's) to the
// home worker of its client id, where it stays for its whole life with its session
// (DESIGN.md, Threads). See src/net/README.md for the files and the transport seam.
//
// Thread-safety: listen() and start() before any traffic, from the main thread; stop() from
// the main thread; listeners() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker.h"

namespace mqttd::net {

enum class ListenerKind : uint8_t { Tcp, Ssl, Ws, Wss };

// "mqtt:tcp", "mqtt:ssl", "mqtt:ws", "mqtt:wss".
const char* protocol_name(ListenerKind kind);

struct TlsSettings {
    std::string keyfile;     // PEM private key
    std::string certfile;    // PEM certificate chain
    std::string cacertfile;  // PEM CA certificates that client certificates are checked with
    std::string password;    // of an encrypted keyfile
    bool verify_peer = false;
    bool fail_if_no_peer_cert = false;
    std::string tls_versions = "tlsv1.3,tlsv1.2";
    std::string ciphers;  // OpenSSL names, comma-separated; empty = OpenSSL's defaults
};

enum class PeerCertAsUsername : uint8_t { Off, Cn, Dn };

// EMQ's rate_limit: reading pauses while a connection is over its budget. 0 = no limit.
struct RateLimit {
    uint64_t bytes_per_second = 0;
    uint64_t burst = 0;
};

struct ListenerConfig {
    ListenerKind kind = ListenerKind::Tcp;
    std::string key;      // "listener.tcp.external": names the listener in messages
    std::string address;  // "host:port", "[v6]:port" or "port"
    uint64_t max_clients = 1024000;
    uint32_t acceptors = 1;
    int64_t handshake_timeout_ms = 15000;  // TLS handshake, WebSocket upgrade, PROXY header
    RateLimit rate_limit;
    bool proxy_protocol = false;      // a HAProxy PROXY v1/v2 header precedes everything
    std::string mqtt_path = "/mqtt";  // WebSocket
    TlsSettings tls;                  // Ssl, Wss
    PeerCertAsUsername peer_cert_as_username = PeerCertAsUsername::Off;
};

struct ListenerInfo {
    std::string protocol;  // "mqtt:tcp", "mqtt:ssl", "mqtt:ws", "mqtt:wss"
    std::string address;   // "0.0.0.0:1883"
    uint32_t acceptors = 0;
    uint64_t max_clients = 0;
    uint64_t current_clients = 0;
    uint64_t closed = 0;            // connections that ended after their handshake
    uint64_t refused = 0;           // refused at accept: max_clients reached
    uint64_t handshake_failed = 0;  // TLS handshake, WebSocket upgrade or PROXY header failed
};

class Server {
public:
    explicit Server(broker::Broker& broker);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Sets up and binds a listener (port 0 picks a free one). Returns an empty string or one
    // line saying why it failed, naming the listener's key (and file, for TLS material).
    std::string listen(const ListenerConfig& config);
    // The port actually bound by the listener number `i` (in listen order).
    uint16_t bound_port(size_t i) const;

    // Starts the worker threads.
    void start();
    // Closes the listeners, then the connections (each once the acks it waits for are sent;
    // broker::Worker::shutdown), waiting at most `timeout_ms` before the loops stop, and joins
    // the workers. Idempotent.
    void stop(int64_t timeout_ms = 2000);

    std::vector<ListenerInfo> listeners() const;

    struct Impl;  // server_impl.h; public so the other parts of net can name it

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace mqttd::net
