// net::Server::Impl: what the pieces of net share — the broker, the worker loops and the
// listeners. Internal to src/net.
//
// Ownership: the Server owns the Impl; the Impl owns the loops and the listeners. Loops and
// listeners are created before start() and never added or removed after it, so their
// vectors may be read from any worker thread without a lock.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "broker/broker.h"
#include "net/listener.h"
#include "net/server.h"
#include "net/worker_loop.h"

namespace mqttd::net {

struct Server::Impl {
    explicit Impl(broker::Broker& b);
    ~Impl();
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    broker::Broker& broker;
    std::vector<std::unique_ptr<WorkerLoop>> loops;
    std::vector<std::unique_ptr<Listener>> listeners;
    bool started = false;
    bool stopped = false;
};

}  // namespace mqttd::net
