// api::Server: the REST API v2 on Pistache (the only place that sees Pistache), listening on
// listener.api.mgmt. Every request goes to api::Handler; Pistache's own router is not used
// (see handler.cpp). Bodies are limited to kMaxRequestSize (Pistache answers 413 above it);
// keep-alive works when the client sends "Connection: keep-alive" (Pistache 0.0.5 closes
// otherwise).
//
// Ownership: built by main after the Broker and the PluginRegistry; stop() before the MQTT
// server stops. Thread-safety: start/stop/port from the main thread; requests run on
// `threads` Pistache threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "api/context.h"

namespace mqttd::api {

class Handler;

inline constexpr size_t kMaxRequestSize = 1024 * 1024;

class Server {
public:
    // Creates the default admin user if the store has none. Throws on a store failure.
    explicit Server(Context ctx);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Listens on `address` ("host:port" or "port"; port 0 picks a free one) and serves in the
    // background. Returns an empty string, or one line saying why it could not listen.
    std::string start(const std::string& address, int threads = 2);
    uint16_t port() const;
    // The handler requests go to; the dashboard serves the same one under /api/v2/.
    std::shared_ptr<Handler> handler() const;
    // Stops serving and joins the threads. Idempotent. Not from a request handler.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mqttd::api
