// The REST API's Pistache endpoint; the request/response glue is api/pistache_glue.h.
#include "api/server.h"

#include <charconv>
#include <chrono>
#include <exception>
#include <thread>

#include "api/handler.h"
#include "api/pistache_glue.h"

namespace mqttd::api {

namespace glue {

bool split_address(const std::string& address, std::string& host, uint16_t& port) {
    host = "0.0.0.0";
    std::string port_text = address;
    if (auto colon = address.rfind(':'); colon != std::string::npos) {
        host = address.substr(0, colon);
        port_text = address.substr(colon + 1);
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    return !port_text.empty() && ec == std::errc() && end == port_text.data() + port_text.size();
}

}  // namespace glue

using namespace Pistache;

// Requests that ask other members of the cluster at once, at most (api/task_pool.h); more
// waiting are answered 503.
constexpr size_t kClusterThreads = 4;
constexpr size_t kClusterQueue = 64;

struct Server::Impl {
    std::shared_ptr<api::Handler> handler;
    std::shared_ptr<glue::Tarpit> tarpit;
    std::shared_ptr<TaskPool> cluster_pool;  // in a cluster only
    std::unique_ptr<Http::Endpoint> endpoint;
    bool serving = false;
};

Server::Server(Context ctx) : impl_(std::make_unique<Impl>()) {
    impl_->handler = std::make_shared<api::Handler>(std::move(ctx));
}

Server::~Server() {
    stop();
}

std::string Server::start(const std::string& address, int threads) {
    std::string host;
    uint16_t port = 0;
    if (!glue::split_address(address, host, port)) {
        return "listener.api.mgmt: \"" + address + "\" is not host:port";
    }
    // The endpoint's threads (and the tarpit's) start on a thread of their own that runs at
    // api.nice first, so they inherit it and the main thread keeps its priority.
    std::string error;
    std::thread([&] {
        glue::prepare_api_thread(
                "mqttd-rest", static_cast<int>(impl_->handler->ctx().config.get_int("api.nice")));
        try {
            impl_->endpoint = std::make_unique<Http::Endpoint>(Address(host, Port(port)));
            impl_->endpoint->init(Http::Endpoint::options()
                                          .threads(threads)
                                          .flags(Tcp::Options::ReuseAddr)
                                          .maxRequestSize(kMaxRequestSize)
                                          .headerTimeout(std::chrono::seconds(10))
                                          .bodyTimeout(std::chrono::seconds(30)));
            auto handler = impl_->handler;
            impl_->tarpit = std::make_shared<glue::Tarpit>(
                    static_cast<size_t>(handler->ctx().config.get_int("api.auth.max_delayed")));
            std::function<bool(const Request&)> off_thread;
            if (handler->ctx().admin.cluster() != nullptr) {
                impl_->cluster_pool = std::make_shared<TaskPool>(kClusterThreads, kClusterQueue);
                off_thread = [handler](const Request& req) {
                    return handler->asks_peers(req);
                };
            }
            impl_->endpoint->setHandler(Http::make_handler<glue::Glue>(
                    std::make_shared<glue::Serve>(
                            [handler](const Request& req) { return handler->handle(req); }),
                    std::function<void()>{}, impl_->tarpit, impl_->cluster_pool,
                    std::move(off_thread)));
            impl_->endpoint->serveThreaded();
            impl_->serving = true;
        } catch (const std::exception& e) {
            impl_->endpoint.reset();
            error = "REST API: cannot listen on " + address + ": " + e.what();
        }
    }).join();
    if (!error.empty()) {
        return error;
    }
    impl_->handler->set_api_listener(host + ":" + std::to_string(this->port()),
                                     static_cast<uint32_t>(threads), 0);
    return {};
}

std::shared_ptr<Handler> Server::handler() const {
    return impl_->handler;
}

uint16_t Server::port() const {
    return impl_->endpoint ? static_cast<uint16_t>(impl_->endpoint->getPort()) : 0;
}

void Server::stop() {
    if (impl_ && impl_->serving) {
        // Requests on the cluster pool and held answers refer to the endpoint's transport:
        // finished or dropped before it goes (the pool first: it may hand answers to the
        // tarpit).
        if (impl_->cluster_pool) {
            impl_->cluster_pool->stop();
        }
        impl_->tarpit->stop();
        impl_->endpoint->shutdown();
        impl_->serving = false;
    }
}

}  // namespace mqttd::api
