// The Server facade: builds the worker loops and listeners (server_impl.h), starts and stops
// them. The event loop is in worker_loop.cpp, accepting in listener.cpp, the connection in
// client_link.cpp, its transports in tls_transport.cpp and ws_transport.cpp.
#include "net/server.h"

#include <limits>

#include "common/clock.h"
#include "net/server_impl.h"

namespace mqttd::net {

const char* protocol_name(ListenerKind kind) {
    switch (kind) {
        case ListenerKind::Tcp:
            return "mqtt:tcp";
        case ListenerKind::Ssl:
            return "mqtt:ssl";
        case ListenerKind::Ws:
            return "mqtt:ws";
        case ListenerKind::Wss:
            return "mqtt:wss";
    }
    return "mqtt:tcp";
}

Server::Impl::Impl(broker::Broker& b) : broker(b) {
    for (uint32_t i = 0; i < b.worker_count(); ++i) {
        loops.push_back(std::make_unique<WorkerLoop>(*this, i));
    }
}

Server::Impl::~Impl() {
    // Acceptors go before the contexts they are bound to; links still listed as waiting for
    // CONNECT must not unlist themselves while the contexts are destroyed, and links still
    // open (stop() timed out) give up their sockets first.
    for (auto& l : listeners) {
        l->release_io();
    }
    for (auto& loop : loops) {
        loop->abandon_links();
    }
    loops.clear();
}

Server::Server(broker::Broker& broker) : impl_(std::make_unique<Impl>(broker)) {}

Server::~Server() {
    stop();
}

std::string Server::listen(const ListenerConfig& config) {
    if (impl_->listeners.size() >= std::numeric_limits<uint8_t>::max()) {
        return config.key + ": too many listeners";
    }
    auto l = std::make_unique<Listener>(*impl_, static_cast<uint8_t>(impl_->listeners.size()),
                                        config);
    if (auto err = l->bind(); !err.empty()) {
        return err;
    }
    impl_->listeners.push_back(std::move(l));
    return {};
}

uint16_t Server::bound_port(size_t i) const {
    return impl_->listeners.at(i)->port();
}

void Server::start() {
    if (impl_->started) {
        return;
    }
    impl_->started = true;
    for (auto& l : impl_->listeners) {
        l->start();
    }
    for (auto& loop : impl_->loops) {
        loop->start();
    }
}

void Server::stop(int64_t timeout_ms) {
    if (!impl_->started || impl_->stopped) {
        return;
    }
    impl_->stopped = true;
    for (auto& l : impl_->listeners) {
        l->close();
    }
    for (auto& loop : impl_->loops) {
        loop->request_stop();
    }
    // Give connections until the deadline to get their acks and write what they have, then
    // stop the loops.
    for (auto& loop : impl_->loops) {
        loop->release_guard();
    }
    int64_t deadline = mono_ms() + timeout_ms;
    for (auto& loop : impl_->loops) {
        loop->finish_stop(deadline);
    }
    for (auto& loop : impl_->loops) {
        loop->join();
    }
}

std::vector<ListenerInfo> Server::listeners() const {
    std::vector<ListenerInfo> out;
    for (const auto& l : impl_->listeners) {
        const auto& cfg = l->config();
        out.push_back(ListenerInfo{protocol_name(cfg.kind), cfg.address, l->acceptors(),
                                   cfg.max_clients, l->current.load(), l->closed.load(),
                                   l->refused.load(), l->handshake_failed.load()});
    }
    return out;
}

}  // namespace mqttd::net
