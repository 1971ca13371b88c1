// net::Listener: one listening socket. Accepts every connection waiting, refuses those beyond
// the listener's max_clients (closed before anything is allocated for them), and hands the
// others to the workers in turn; counts its open connections and its closes for REST
// (monitoring/listeners). The acceptor is watched through worker 0's io_context.
//
// Thread-safety: bind() and port() before start(), from the main thread; start() and close()
// run the accept loop on worker 0's thread; the counters are atomics, read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "net/server.h"

namespace mqttd::net {

class Listener {
public:
    Listener(Server::Impl& server, uint8_t index, std::string address, uint64_t max_clients);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Opens, binds and listens. Returns an empty string or one line saying why it failed.
    std::string bind();
    uint16_t port() const;

    // Starts accepting (posts to worker 0).
    void start();
    // Stops accepting; on worker 0's thread.
    void close();
    // The server is destroyed: the acceptor goes before the context it is bound to.
    void release_io();

    uint8_t index() const { return index_; }
    const std::string& address() const { return address_; }
    uint64_t max_clients() const { return max_clients_; }

    // Open connections of this listener, and connections closed so far.
    std::atomic<uint64_t> current{0};
    std::atomic<uint64_t> shutdowns{0};

private:
    struct Io;  // acceptor and retry timer, in listener.cpp
    void accept();
    // Accepts every connection waiting (the acceptor's readiness is edge-triggered in Asio),
    // then waits again; out of descriptors, retries in 100 ms.
    void accept_ready();

    Server::Impl& server_;
    const uint8_t index_;
    const std::string address_;
    const uint64_t max_clients_;
    uint32_t next_worker_ = 0;
    std::unique_ptr<Io> io_;
};

}  // namespace mqttd::net
