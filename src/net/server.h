// net::Server: the worker threads (one io_context each) and the MQTT listeners, on Boost.Asio.
// Only this folder sees Asio. A connection is accepted onto a worker, reads its CONNECT there,
// then moves (its socket leaves one worker's epoll set for another's) to the home worker of its
// client id, where it stays for its whole life with its session (DESIGN.md, Threads). Client
// sockets are not registered with Asio one by one: each worker watches its own epoll set
// through one Asio descriptor, so an idle connection costs no Asio state.
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

struct ListenerInfo {
    std::string protocol;  // "mqtt:tcp", "mqtt:ssl", "mqtt:ws", ...
    std::string address;   // "0.0.0.0:1883"
    uint32_t acceptors = 0;
    uint64_t max_clients = 0;
    uint64_t current_clients = 0;
    uint64_t shutdown_count = 0;
};

class Server {
public:
    Server(broker::Broker& broker, uint64_t max_clients);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds an MQTT-over-TCP listener on "host:port" (port 0 picks a free one). Returns an
    // empty string or one line saying why it failed.
    std::string listen_tcp(const std::string& address);
    // The port actually bound by the listener number `i` (in listen order).
    uint16_t bound_port(size_t i) const;

    // Starts the worker threads.
    void start();
    // Closes listeners and connections, stops and joins the workers. Idempotent.
    void stop();

    std::vector<ListenerInfo> listeners() const;

    struct Impl;  // server_impl.h; public so the other parts of net can name it

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace mqttd::net
