// api::Dashboard: the web dashboard (plugin emq_dashboard) on dashboard.listener.http, a second
// Pistache endpoint beside the REST API's. It serves the files of its docroot
// (api/static_files.h) and, on the same origin, the REST API's own Handler under /api/v2/ (the
// same users, the same login limiter), so the pages need no CORS. A 401 there carries no
// WWW-Authenticate, so a wrong password on the login page does not open the browser's own
// password dialog. While it listens, monitoring/listeners has a `dashboard:http` row.
//
// Start and stop: set_enabled() is what the plugin's hooks call; the endpoint is started or
// stopped on the dashboard's own control thread, because a stop may come from one of the
// dashboard's own request threads (unloading emq_dashboard from the dashboard), which Pistache
// cannot join. A caller on another thread waits until it is done; a request thread of the
// dashboard does not wait, and the endpoint stops once the requests in progress (that one
// included) have been answered.
//
// Ownership: built by main after the api::Server whose Handler it shares; destroyed (or
// stop()ped) before it. Thread-safety: every method from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace mqttd::api {

class Handler;

class Dashboard {
public:
    // `address` is dashboard.listener.http (empty = never listens); `docroot` a real directory
    // (resolve_docroot()), or empty when there is none (then it does not listen either).
    Dashboard(std::shared_ptr<Handler> handler, std::string address, std::string docroot);
    ~Dashboard();
    Dashboard(const Dashboard&) = delete;
    Dashboard& operator=(const Dashboard&) = delete;

    // Until arm(), set_enabled() only records the wanted state (the plugins load before the
    // REST API listens). arm() then applies it and returns an error line when it could not
    // listen (a startup error).
    std::string arm();
    void set_enabled(bool enabled);
    // Stops listening for good (shutdown). Idempotent.
    void stop();
    // The bound port, 0 when not listening.
    uint16_t port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mqttd::api
