#include "api/dashboard.h"

#include <chrono>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "api/handler.h"
#include "api/pistache_glue.h"
#include "api/server.h"
#include "api/static_files.h"

namespace mqttd::api {
namespace {

using namespace Pistache;

constexpr int kThreads = 2;
constexpr auto kApplyWait = std::chrono::seconds(10);

// True on a dashboard request thread while it serves a request (set_enabled() must not wait
// there for the control thread, which may be stopping that very endpoint).
thread_local bool t_serving_dashboard = false;

}  // namespace

struct Dashboard::Impl {
    std::shared_ptr<Handler> handler;
    std::string address;
    std::string docroot;
    std::shared_ptr<std::atomic<uint64_t>> in_flight = std::make_shared<std::atomic<uint64_t>>(0);

    std::mutex mutex;
    std::condition_variable cv;
    bool armed = false;      // guarded by mutex
    bool wanted = false;     // guarded by mutex
    bool quit = false;       // guarded by mutex
    uint64_t requested = 0;  // guarded by mutex: changes asked for
    uint64_t applied = 0;    // guarded by mutex: changes done
    std::string last_error;  // guarded by mutex
    std::atomic<uint16_t> port{0};
    std::shared_ptr<glue::Tarpit> tarpit;      // control thread only
    std::unique_ptr<Http::Endpoint> endpoint;  // control thread only
    std::thread control;

    Response serve(const Request& req) const {
        if (req.path == "/api/v2" || req.path.starts_with("/api/v2/") || req.path == "/metrics") {
            Response r = handler->handle(req);
            std::erase_if(r.headers, [](const auto& h) { return h.first == "WWW-Authenticate"; });
            r.headers.emplace_back("Cache-Control", "no-store");
            return r;
        }
        return StaticFiles(docroot).serve(req);
    }

    std::string start() {
        std::string host;
        uint16_t want_port = 0;
        if (!glue::split_address(address, host, want_port)) {
            return "dashboard.listener.http: \"" + address + "\" is not host:port";
        }
        try {
            auto ep = std::make_unique<Http::Endpoint>(Address(host, Port(want_port)));
            ep->init(Http::Endpoint::options()
                             .threads(kThreads)
                             .flags(Tcp::Options::ReuseAddr)
                             .maxRequestSize(kMaxRequestSize)
                             .headerTimeout(std::chrono::seconds(10))
                             .bodyTimeout(std::chrono::seconds(30)));
            auto serve_fn = std::make_shared<glue::Serve>([this](const Request& req) {
                in_flight->fetch_add(1);
                t_serving_dashboard = true;
                Response r = serve(req);
                t_serving_dashboard = false;
                return r;
            });
            auto counter = in_flight;
            tarpit = std::make_shared<glue::Tarpit>(
                    static_cast<size_t>(handler->ctx().config.get_int("api.auth.max_delayed")));
            ep->setHandler(Http::make_handler<glue::Glue>(
                    serve_fn, [counter] { counter->fetch_sub(1); }, tarpit));
            ep->serveThreaded();
            endpoint = std::move(ep);
        } catch (const std::exception& e) {
            return "dashboard: cannot listen on " + address + ": " + e.what();
        }
        port = static_cast<uint16_t>(endpoint->getPort());
        std::string bound = host + ":" + std::to_string(port.load());
        handler->set_dashboard_listener(
                ListenerView{"dashboard:http", bound, kThreads, 0, 0, 0, 0, 0}, in_flight);
        spdlog::info("dashboard on http://{}/ (files from {})", bound, docroot);
        return {};
    }

    void stop_endpoint() {
        if (!endpoint) {
            return;
        }
        // The request that asked for the stop (and any other in progress) is answered first.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (in_flight->load() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        handler->set_dashboard_listener(std::nullopt, nullptr);
        tarpit->stop();
        endpoint->shutdown();
        endpoint.reset();
        port = 0;
        spdlog::info("dashboard stopped");
    }

    void run() {
        // The endpoint's threads start from this one and inherit its priority.
        glue::prepare_api_thread("mqttd-dashboard",
                                 static_cast<int>(handler->ctx().config.get_int("api.nice")));
        std::unique_lock lock(mutex);
        while (true) {
            cv.wait(lock, [this] { return quit || applied != requested; });
            if (quit) {
                break;
            }
            uint64_t gen = requested;
            bool on = wanted && armed;
            lock.unlock();
            std::string err;
            if (on && !endpoint) {
                if (address.empty()) {
                    spdlog::info("dashboard.listener.http is empty: the dashboard does not listen");
                } else if (docroot.empty()) {
                    spdlog::warn("dashboard: no files to serve; it does not listen");
                } else {
                    err = start();
                }
            } else if (!on) {
                stop_endpoint();
            }
            lock.lock();
            last_error = err;
            applied = gen;
            cv.notify_all();
        }
        lock.unlock();
        stop_endpoint();
    }

    void request(std::unique_lock<std::mutex>& lock, bool wait) {
        uint64_t gen = ++requested;
        cv.notify_all();
        if (wait) {
            cv.wait_for(lock, kApplyWait, [&] { return applied >= gen; });
        }
    }
};

Dashboard::Dashboard(std::shared_ptr<Handler> handler, std::string address, std::string docroot)
    : impl_(std::make_unique<Impl>()) {
    impl_->handler = std::move(handler);
    impl_->address = std::move(address);
    impl_->docroot = std::move(docroot);
    impl_->control = std::thread([impl = impl_.get()] { impl->run(); });
}

Dashboard::~Dashboard() {
    stop();
}

std::string Dashboard::arm() {
    std::unique_lock lock(impl_->mutex);
    impl_->armed = true;
    impl_->request(lock, true);
    return impl_->last_error;
}

void Dashboard::set_enabled(bool enabled) {
    std::unique_lock lock(impl_->mutex);
    impl_->wanted = enabled;
    if (!impl_->armed) {
        return;
    }
    impl_->request(lock, !t_serving_dashboard);
    if (!impl_->last_error.empty() && !t_serving_dashboard) {
        spdlog::error("{}", impl_->last_error);
    }
}

void Dashboard::stop() {
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->quit && !impl_->control.joinable()) {
            return;
        }
        impl_->quit = true;
        impl_->cv.notify_all();
    }
    if (impl_->control.joinable()) {
        impl_->control.join();
    }
}

uint16_t Dashboard::port() const {
    return impl_->port.load();
}

}  // namespace mqttd::api
