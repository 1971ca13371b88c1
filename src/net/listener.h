// net::Listener: one MQTT listener — `acceptors` listening sockets on the same address
// (SO_REUSEPORT, so the kernel spreads connections over them), each watched by a different
// worker. Accepts every connection waiting, refuses those beyond the listener's max_clients
// (closed before anything is allocated for them), and hands the others to the workers in
// turn; holds what its links share (the TLS context, the WebSocket path, the limits) and the
// counters REST shows (monitoring/listeners).
//
// Thread-safety: bind() and port() before start(), from the main thread; the accept loops
// run on their workers' threads; config() is immutable after bind(); the counters are
// atomics, read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/server.h"

namespace mqttd::net {

class TlsContext;

class Listener {
public:
    Listener(Server::Impl& server, uint8_t index, ListenerConfig config);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Sets up TLS, opens, binds and listens. Returns an empty string or one line saying why
    // it failed (naming the configuration key, and the file when one is at fault).
    std::string bind();
    uint16_t port() const;

    // Starts accepting (before the worker threads run).
    void start();
    // Stops accepting; posted to each acceptor's worker.
    void close();
    // The server is destroyed: acceptors go before the contexts they are bound to.
    void release_io();

    uint8_t index() const { return index_; }
    const ListenerConfig& config() const { return config_; }
    // Null unless the listener speaks TLS.
    TlsContext* tls() const { return tls_.get(); }
    // A link of this listener needs LinkExtras (a transport, a PROXY header, a read budget).
    bool needs_extras() const {
        return config_.kind != ListenerKind::Tcp || config_.proxy_protocol ||
               config_.rate_limit.bytes_per_second > 0;
    }
    bool has_handshake() const {
        return config_.kind != ListenerKind::Tcp || config_.proxy_protocol;
    }
    uint32_t acceptors() const { return static_cast<uint32_t>(io_.size()); }

    // Open connections of this listener; connections closed so far, by why.
    std::atomic<uint64_t> current{0};
    std::atomic<uint64_t> closed{0};            // after the handshake
    std::atomic<uint64_t> refused{0};           // beyond max_clients, at accept
    std::atomic<uint64_t> handshake_failed{0};  // TLS, WebSocket upgrade or PROXY header

private:
    struct Io;  // acceptor and retry timer, in listener.cpp
    void accept(Io& io);
    // Accepts every connection waiting (the acceptor's readiness is edge-triggered in Asio),
    // then waits again; out of descriptors, retries in 100 ms.
    void accept_ready(Io& io);

    Server::Impl& server_;
    const uint8_t index_;
    ListenerConfig config_;
    std::shared_ptr<TlsContext> tls_;
    std::atomic<uint32_t> next_worker_{0};
    std::vector<std::unique_ptr<Io>> io_;
};

}  // namespace mqttd::net
