// api::Handler: the REST API v2 (rest-api-v2.md) without the HTTP server around it: takes a
// Request, returns a Response. Routing, Basic auth, the error envelope and the mapping of
// every failure to the spec's codes happen here, in one place; the endpoints live in
// endpoints_*.cpp. No exception leaves handle(): a bug answers 500 with a generic message
// (never the exception text), bad input answers the spec's code with HTTP 200.
//
// Ownership: owned by api::Server (or a test); refers to the Context's objects.
// Thread-safety: handle() may run on several threads at once.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/context.h"
#include "api/http.h"
#include "api/login_limiter.h"
#include "api/users.h"

namespace mqttd::api {

namespace detail {
struct Route;
}

class Handler {
public:
    // Creates the default admin user when the store has none (logs a warning while it keeps
    // its default password). Throws on a store failure (startup error).
    explicit Handler(Context ctx);
    ~Handler();
    Handler(const Handler&) = delete;
    Handler& operator=(const Handler&) = delete;

    Response handle(const Request& req) noexcept;

    // The row of the API listener itself in monitoring/listeners. Set once the endpoint is
    // bound, while requests may already be served (so under a lock).
    void set_api_listener(const std::string& address, uint32_t threads, uint64_t max_clients);

    // For the endpoints.
    Context& ctx() { return ctx_; }
    Users& users() { return users_; }
    LoginLimiter& limiter() { return limiter_; }
    // Checks a login from `source` (an address) within the limiter's bounds: true when the
    // credentials are right, false when wrong (counted against `source`; the request's answer
    // is then held api.auth.failure_delay_ms); throws ApiError 429 with Retry-After (held as
    // long, at most until the Retry-After) when `source` is over its budget or the hash cap is
    // reached.
    bool login(const std::string& source, std::string_view user, std::string_view password);
    const std::string& default_user() const { return default_user_; }
    // The dashboard's row (`dashboard:http`), while it listens; nullopt removes it.
    // `in_flight` counts the dashboard's requests in progress (its current_clients).
    void set_dashboard_listener(std::optional<ListenerView> row,
                                std::shared_ptr<const std::atomic<uint64_t>> in_flight);
    std::vector<ListenerView> listeners();
    const std::vector<detail::Route>& routes() const { return routes_; }

    // Whether answering `req` asks other members of the cluster (api/cluster_calls.cpp): such
    // requests are served off the HTTP threads (api/task_pool.h).
    bool asks_peers(const Request& req) const;

private:
    struct Match {
        const detail::Route* route = nullptr;  // the route for the path and method
        bool path_known = false;               // a route has the path, with another method
        std::vector<std::string> params;
    };
    // The route for `req`'s path under /api/v2/ and method; throws 108 on a malformed escape.
    Match match_route(const Request& req) const;
    Response dispatch(const Request& req);
    static Response unauthorized();
    // GET /metrics (api/prometheus.h); Basic auth unless api.metrics.auth = off.
    Response metrics(const Request& req);
    // unauthorized() unless the request's Basic credentials log in (login(): bounded per
    // source address).
    std::optional<Response> check_auth(const Request& req);

    Context ctx_;
    Users users_;
    LoginLimiter limiter_;
    const uint32_t failure_delay_ms_;  // api.auth.failure_delay_ms
    std::string default_user_;
    const bool metrics_auth_;  // api.metrics.auth
    std::vector<detail::Route> routes_;
    std::mutex api_listener_mutex_;
    ListenerView api_listener_;        // guarded by api_listener_mutex_
    ListenerView dashboard_listener_;  // guarded by api_listener_mutex_; empty address = none
    std::shared_ptr<const std::atomic<uint64_t>> dashboard_in_flight_;  // the same
    std::atomic<uint64_t> in_flight_{0};
};

}  // namespace mqttd::api
