// What the REST API works on: the broker through broker::Admin (live state, actions, plugins),
// the store (durable state, paged straight from its iterators, read only) and the
// configuration, plus the listeners that main knows about. Everything referred to outlives the
// api::Server.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "broker/admin.h"
#include "config/config.h"
#include "storage/store.h"

namespace mqttd::api {

// One row of monitoring/listeners.
struct ListenerView {
    // "mqtt:tcp", "mqtt:ssl", "mqtt:ws", "mqtt:wss", "mqtt:api", "dashboard:http"
    std::string protocol;
    std::string address;  // "127.0.0.1:1883"
    uint32_t acceptors = 0;
    uint64_t max_clients = 0;
    uint64_t current_clients = 0;
    // Connections closed so far, by why (monitoring/listeners `shutdown_count`).
    uint64_t closed = 0;            // after their handshake
    uint64_t refused = 0;           // at accept: max_clients reached
    uint64_t handshake_failed = 0;  // TLS handshake, WebSocket upgrade or PROXY header
};

struct Context {
    broker::Admin& admin;  // the broker, as the API may see and change it
    storage::Store& store;
    config::Config& config;
    // The MQTT listeners (from net::Server::listeners()); the API adds its own row. May be
    // empty. Called on a Pistache thread.
    std::function<std::vector<ListenerView>()> listeners;
};

}  // namespace mqttd::api
