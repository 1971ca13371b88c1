// Routing: the path after /api/v2/ is split on its raw '/' and each segment decoded, then
// matched against the route table in order (literals, ":param", "*rest"). Pistache's router is
// not used: it matches a splat to one segment only and decodes nothing, and topics such as
// "/World" ("routes//World") or "a/b/c" need both (DEPENDENCIES.md, Pistache quirks).
#include "api/handler.h"

#include <algorithm>
#include <charconv>
#include <exception>

#include <spdlog/spdlog.h>

#include "api/detail.h"
#include "api/prometheus.h"
#include "api/url.h"

namespace mqttd::api {

using detail::ApiError;
using detail::Json;

namespace {

constexpr std::string_view kBase = "/api/v2/";

Response json_response(int status, const Json& body) {
    Response r;
    r.status = status;
    r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    return r;
}

Response error_response(const ApiError& e) {
    Response r = json_response(e.http_status, Json{{"code", e.code}, {"message", e.message}});
    if (e.retry_after_s > 0) {
        r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_s));
    }
    r.delay_ms = e.delay_ms;
    return r;
}

// How late this thread's current request is answered because a login failed in it (set by
// Handler::login, applied by Handler::handle; both run on the request's thread).
thread_local uint32_t t_failed_login_delay_ms = 0;

LoginLimiter::Options limiter_options(const config::Config& cfg) {
    LoginLimiter::Options o;
    o.burst = static_cast<double>(cfg.get_int("api.auth.failure_burst"));
    o.refill_per_s = static_cast<double>(cfg.get_int("api.auth.failure_refill_per_min")) / 60.0;
    o.max_hashing = static_cast<int>(cfg.get_int("api.auth.max_concurrent_hashes"));
    o.max_hash_wait_ms = cfg.get_int("api.auth.max_hash_wait_ms");
    return o;
}

// Basic credentials from an Authorization value; the scheme is case-insensitive (RFC 7617).
std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view value) {
    if (value.size() < 6) {
        return std::nullopt;
    }
    std::string scheme(value.substr(0, 6));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (scheme != "basic ") {
        return std::nullopt;
    }
    value.remove_prefix(6);
    while (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    while (!value.empty() && value.back() == ' ') {
        value.remove_suffix(1);
    }
    auto decoded = base64_decode(value);
    if (!decoded) {
        return std::nullopt;
    }
    size_t colon = decoded->find(':');
    if (colon == std::string::npos) {
        return std::nullopt;
    }
    return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

// Matches `segs` against `pattern`; fills the decoded parameters.
bool match(const std::vector<std::string>& pattern,
           const std::vector<std::string>& segs,
           std::vector<std::string>& params) {
    params.clear();
    for (size_t i = 0; i < pattern.size(); ++i) {
        const std::string& p = pattern[i];
        if (!p.empty() && p[0] == '*') {
            if (i >= segs.size()) {
                return false;
            }
            std::string rest;
            for (size_t j = i; j < segs.size(); ++j) {
                if (j > i) {
                    rest += '/';
                }
                rest += segs[j];
            }
            if (rest.empty()) {
                return false;
            }
            params.push_back(std::move(rest));
            return true;
        }
        if (i >= segs.size()) {
            return false;
        }
        if (!p.empty() && p[0] == ':') {
            if (segs[i].empty()) {
                return false;  // "metrics/" is "metrics" with a trailing '/', not node ""
            }
            params.push_back(segs[i]);
        } else if (p != segs[i]) {
            return false;
        }
    }
    return pattern.size() == segs.size();
}

}  // namespace

namespace detail {

void add(std::vector<Route>& routes,
         std::string method,
         std::string_view path,
         std::string summary,
         Endpoint fn,
         bool paged) {
    routes.push_back(
            Route{std::move(method), split_path(path), std::move(summary), std::move(fn), paged});
}

std::optional<std::string> Call::query(const std::string& name) const {
    auto it = req_.query.find(name);
    if (it == req_.query.end()) {
        return std::nullopt;
    }
    return it->second;
}

const Json& Call::body() {
    if (!body_) {
        Json j = Json::parse(req_.body, nullptr, false);
        if (j.is_discarded()) {
            throw ApiError{kNotJson, "request body is not JSON"};
        }
        if (!j.is_object()) {
            throw ApiError{kBadParam, "request body must be a JSON object"};
        }
        body_ = std::move(j);
    }
    return *body_;
}

std::optional<std::string> Call::opt_str(const char* name) {
    const Json& b = body();
    auto it = b.find(name);
    if (it == b.end() || it->is_null()) {
        return std::nullopt;
    }
    if (!it->is_string()) {
        throw ApiError{kBadParam, std::string(name) + " must be a string"};
    }
    return it->get<std::string>();
}

std::string Call::str(const char* name) {
    auto v = opt_str(name);
    if (!v) {
        throw ApiError{kMissingParam, std::string("missing parameter: ") + name};
    }
    return *v;
}

std::optional<int64_t> Call::opt_int(const char* name, int64_t min, int64_t max) {
    const Json& b = body();
    auto it = b.find(name);
    if (it == b.end() || it->is_null()) {
        return std::nullopt;
    }
    if (!it->is_number_integer()) {
        throw ApiError{kBadParam, std::string(name) + " must be an integer"};
    }
    int64_t v = 0;
    if (it->is_number_unsigned()) {
        auto u = it->get<uint64_t>();
        if (u > static_cast<uint64_t>(max)) {
            throw ApiError{kBadParam, std::string(name) + " is out of range"};
        }
        v = static_cast<int64_t>(u);
    } else {
        v = it->get<int64_t>();
    }
    if (v < min || v > max) {
        throw ApiError{kBadParam, std::string(name) + " must be between " + std::to_string(min) +
                                          " and " + std::to_string(max)};
    }
    return v;
}

std::optional<bool> Call::opt_bool(const char* name) {
    const Json& b = body();
    auto it = b.find(name);
    if (it == b.end() || it->is_null()) {
        return std::nullopt;
    }
    if (!it->is_boolean()) {
        throw ApiError{kBadParam, std::string(name) + " must be true or false"};
    }
    return it->get<bool>();
}

namespace {

uint64_t query_number(const Call& c, const char* name, uint64_t def, uint64_t min, uint64_t max) {
    auto v = c.query(name);
    if (!v) {
        return def;
    }
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < min || n > max) {
        throw ApiError{kBadParam, std::string(name) + " must be an integer from " +
                                          std::to_string(min) + " to " + std::to_string(max)};
    }
    return n;
}

}  // namespace

Paging paging(const Call& c) {
    Paging p;
    // Pages beyond 2^40 would overflow the offset at the largest page size.
    p.page = query_number(c, "curr_page", 1, 1, uint64_t{1} << 40);
    p.size = static_cast<uint32_t>(query_number(c, "page_size", 20, 1, kMaxPageSize));
    if (auto cur = c.query("cursor"); cur && !cur->empty()) {
        if (!is_store_cursor(*cur) && !parse_offset_cursor(*cur)) {
            throw ApiError{kBadParam, "cursor is not one this API returned"};
        }
        p.cursor = *cur;
    }
    return p;
}

Json envelope(const Paging& p, uint64_t total, Json objects, const std::string& next_cursor) {
    return Json{{"current_page", p.page},
                {"page_size", p.size},
                {"total_num", total},
                {"total_page", (total + p.size - 1) / p.size},
                {"objects", std::move(objects)},
                {"cursor", next_cursor}};
}

std::string offset_cursor(uint64_t offset) {
    std::string out = std::to_string(offset);
    out.insert(out.begin(), 'o');  // not "o" + ...: GCC 12 -O3 warns -Wrestrict on it
    return out;
}

std::optional<uint64_t> parse_offset_cursor(std::string_view cursor) {
    if (cursor.size() < 2 || cursor.size() > 21 || cursor[0] != 'o') {
        return std::nullopt;
    }
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(cursor.data() + 1, cursor.data() + cursor.size(), n);
    if (ec != std::errc() || end != cursor.data() + cursor.size()) {
        return std::nullopt;
    }
    return n;
}

bool is_store_cursor(std::string_view cursor) {
    return !cursor.empty() && cursor.size() % 2 == 0 && cursor.size() <= 2 * 70000 &&
           std::all_of(cursor.begin(), cursor.end(), [](char ch) {
               return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
           });
}

void check_node(Handler& h, const std::string& node) {
    if (node != h.ctx().admin.node_name()) {
        throw ApiError{kBadRpc, "badrpc: unknown node " + node};
    }
}

}  // namespace detail

Handler::Handler(Context ctx)
    : ctx_(std::move(ctx)),
      users_(ctx_.store),
      limiter_(limiter_options(ctx_.config)),
      failure_delay_ms_(static_cast<uint32_t>(
              std::min<int64_t>(ctx_.config.get_int("api.auth.failure_delay_ms"), 60000))),
      default_user_(ctx_.config.get_string("api.default_user")),
      metrics_auth_(ctx_.config.get_string("api.metrics.auth") != "off") {
    std::string password = ctx_.config.get_string("api.default_password");
    if (users_.ensure_default(default_user_, password)) {
        spdlog::warn(
                "REST API user {} still has its default password; change it with PUT "
                "/api/v2/change_pwd/{}",
                default_user_, default_user_);
    }
    detail::add_live_routes(routes_);
    detail::add_admin_routes(routes_);
    detail::add_auth_routes(routes_);
    detail::add_backup_routes(routes_);
    detail::add(routes_, "GET", "openapi.json", "This API described as OpenAPI 3.0",
                [](Handler& h, detail::Call&) { return detail::openapi(h.routes()); });
    routes_.back().raw = true;
    detail::set_cluster_scopes(routes_);
}

Handler::~Handler() = default;

void Handler::set_api_listener(const std::string& address, uint32_t threads, uint64_t max_clients) {
    std::lock_guard lock(api_listener_mutex_);
    api_listener_ = ListenerView{"mqtt:api", address, threads, max_clients, 0, 0, 0, 0};
}

std::vector<ListenerView> Handler::listeners() {
    std::vector<ListenerView> out;
    if (ctx_.listeners) {
        out = ctx_.listeners();
    }
    std::lock_guard lock(api_listener_mutex_);
    if (!api_listener_.address.empty()) {
        ListenerView self = api_listener_;
        self.current_clients = in_flight_.load();
        out.push_back(std::move(self));
    }
    if (!dashboard_listener_.address.empty()) {
        ListenerView row = dashboard_listener_;
        row.current_clients = dashboard_in_flight_ ? dashboard_in_flight_->load() : 0;
        out.push_back(std::move(row));
    }
    return out;
}

void Handler::set_dashboard_listener(std::optional<ListenerView> row,
                                     std::shared_ptr<const std::atomic<uint64_t>> in_flight) {
    std::lock_guard lock(api_listener_mutex_);
    dashboard_listener_ = row ? std::move(*row) : ListenerView{};
    dashboard_in_flight_ = std::move(in_flight);
}

Response Handler::unauthorized() {
    Response r = error_response(ApiError{detail::kBadLogin, "authentication required", 401});
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"mqttd\"");
    return r;
}

bool Handler::login(const std::string& source, std::string_view user, std::string_view password) {
    // Over its budget, a source is refused before any hash: the right password too, so
    // guessing costs the broker nothing (api/login_limiter.h). Refusals and failures are
    // answered late (the tarpit, api/pistache_glue.h): a client that waits for its answers
    // guesses at most once per api.auth.failure_delay_ms per connection, and a 429 is never
    // held past its Retry-After.
    if (auto a = limiter_.admit(source); !a.allowed) {
        throw ApiError{detail::kBadLogin, "too many failed logins from this address", 429,
                       a.retry_after_s, std::min(failure_delay_ms_, a.retry_after_s * 1000)};
    }
    switch (users_.check(user, password, &limiter_)) {
        case Users::Check::Ok:
            return true;
        case Users::Check::Busy:
            throw ApiError{detail::kBadLogin, "too many logins being checked at once", 429, 1,
                           std::min<uint32_t>(failure_delay_ms_, 1000)};
        case Users::Check::Wrong:
            break;
    }
    limiter_.failed(source);
    t_failed_login_delay_ms = failure_delay_ms_;
    return false;
}

Response Handler::handle(const Request& req) noexcept {
    in_flight_.fetch_add(1);
    t_failed_login_delay_ms = 0;
    Response r;
    try {
        r = dispatch(req);
    } catch (const ApiError& e) {
        r = error_response(e);
    } catch (const std::exception& e) {
        spdlog::error("REST {} {}: {}", req.method, req.path, e.what());
        r = error_response(ApiError{detail::kUnknownError, "internal error", 500});
    } catch (...) {
        r = error_response(ApiError{detail::kUnknownError, "internal error", 500});
    }
    r.delay_ms = std::max(r.delay_ms, t_failed_login_delay_ms);
    in_flight_.fetch_sub(1);
    return r;
}

std::optional<Response> Handler::check_auth(const Request& req) {
    auto cred = basic_credentials(req.authorization);
    if (cred && login(req.peer, cred->first, cred->second)) {
        return std::nullopt;
    }
    return unauthorized();
}

Response Handler::metrics(const Request& req) {
    if (req.method != "GET") {
        throw ApiError{405, "method " + req.method + " not allowed here", 405};
    }
    if (metrics_auth_) {
        if (auto denied = check_auth(req)) {
            return std::move(*denied);
        }
    }
    Response r;
    r.body = metrics_text(*this);
    r.content_type = std::string(kPrometheusContentType);
    return r;
}

Handler::Match Handler::match_route(const Request& req) const {
    if (!req.path.starts_with(kBase)) {
        return {};
    }
    auto raw = split_path(std::string_view(req.path).substr(kBase.size() - 1));
    std::vector<std::string> segs;
    segs.reserve(raw.size());
    for (const auto& s : raw) {
        auto d = percent_decode(s, false);
        if (!d) {
            throw ApiError{detail::kBadParam, "malformed percent-encoding in the path"};
        }
        segs.push_back(std::move(*d));
    }

    // A trailing '/' is ignored unless a route needs it ("routes/a/" names the topic "a/").
    Match m;
    for (int attempt = 0; attempt < 2 && m.route == nullptr; ++attempt) {
        if (attempt == 1) {
            if (segs.size() < 2 || !segs.back().empty()) {
                break;
            }
            segs.pop_back();
        }
        for (const auto& route : routes_) {
            if (match(route.pattern, segs, m.params)) {
                m.path_known = true;
                if (route.method == req.method) {
                    m.route = &route;
                    break;
                }
            }
        }
    }
    return m;
}

bool Handler::asks_peers(const Request& req) const {
    const broker::ClusterView* cluster = req.from_peer ? nullptr : ctx_.admin.cluster();
    if (cluster == nullptr) {
        return false;
    }
    try {
        Match m = match_route(req);
        return m.route != nullptr && detail::asks_peers(ctx_.admin.node_name(), *m.route, m.params);
    } catch (const ApiError&) {
        return false;  // answered with its error on the HTTP thread
    }
}

Response Handler::dispatch(const Request& req) {
    if (req.path == "/metrics" || req.path == "/metrics/") {
        return metrics(req);
    }
    if (!req.path.starts_with(kBase)) {
        throw ApiError{404, "no such endpoint: " + req.path, 404};
    }
    Match m = match_route(req);
    const detail::Route* found = m.route;
    if (found == nullptr) {
        if (m.path_known) {
            throw ApiError{405, "method " + req.method + " not allowed here", 405};
        }
        throw ApiError{404, "no such endpoint: " + req.path, 404};
    }
    std::vector<std::string> params = std::move(m.params);

    bool is_auth =
            req.method == "POST" && found->pattern.size() == 1 && found->pattern[0] == "auth";
    if (!is_auth) {
        if (auto denied = check_auth(req)) {
            return std::move(*denied);
        }
    }

    detail::Call call(req, std::move(params));
    const broker::ClusterView* cluster = req.from_peer ? nullptr : ctx_.admin.cluster();
    if (cluster != nullptr) {
        if (auto passed = detail::pass_on(*this, *cluster, *found, call)) {
            return std::move(*passed);
        }
    }
    Json result = cluster != nullptr && found->scope != detail::Scope::Node
                          ? detail::answer(*this, *cluster, *found, call)
                          : found->fn(*this, call);
    if (found->raw) {
        return json_response(200, result);
    }
    return json_response(200, Json{{"code", 0}, {"result", std::move(result)}});
}

}  // namespace mqttd::api
