// Internals shared by the endpoint files: the error type, the call context and argument
// readers, the paging parameters and envelope, the route table entry. Not for use outside
// api/.
//
// Errors: an endpoint throws ApiError{code, message}; Handler::handle turns it into
// {"code": N, "message": "..."} with HTTP 200 (as EMQ 2.x), or the HTTP status it names.
// Throwing keeps the endpoints linear; REST is a cold path.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/handler.h"
#include "api/http.h"

namespace mqttd::api::detail {

using Json = nlohmann::json;

// The spec's error codes (rest-api-v2.md, "Error Code"), plus 114.
enum Code : int {
    kOk = 0,
    kBadRpc = 101,        // also: unknown node name
    kUnknownError = 102,  // also: unknown plugin, store write failed, broker timeout
    kBadLogin = 103,
    kEmptyCredentials = 104,
    kNoSuchUser = 105,
    kAdminProtected = 106,
    kMissingParam = 107,
    kBadParam = 108,
    kNotJson = 109,
    kPluginStarted = 110,
    kPluginStopped = 111,
    kClientOffline = 112,
    kUserExists = 113,
    kWrongOldPassword = 114,
};

struct ApiError {
    int code;
    std::string message;
    int http_status = 200;
    uint32_t retry_after_s = 0;  // > 0: a Retry-After header (429)
    uint32_t delay_ms = 0;       // > 0: the answer is held this long (Response::delay_ms)
};

// One request as an endpoint sees it: the decoded path parameters and lazy JSON body access.
class Call {
public:
    Call(const Request& req, std::vector<std::string> params)
        : req_(req), params_(std::move(params)) {}

    const std::string& param(size_t i) const { return params_.at(i); }
    const Request& request() const { return req_; }
    std::optional<std::string> query(const std::string& name) const;

    // True when there is no body (or only whitespace): optional bodies.
    bool body_empty() const { return req_.body.find_first_not_of(" \t\r\n") == std::string::npos; }
    // The body as a JSON object. Not JSON: 109; JSON but not an object: 108.
    const Json& body();
    // Fields of the body. Absent (or null) required field: 107; wrong type or range: 108.
    std::string str(const char* name);
    std::optional<std::string> opt_str(const char* name);
    std::optional<int64_t> opt_int(const char* name, int64_t min, int64_t max);
    std::optional<bool> opt_bool(const char* name);

private:
    const Request& req_;
    std::vector<std::string> params_;
    std::optional<Json> body_;
};

using Endpoint = std::function<Json(Handler&, Call&)>;

// What a route answers for in a cluster (api/cluster_calls.cpp; src/cluster/README.md). A
// ":node" parameter naming another member passes the whole request on to it, whatever the
// scope; a request passed on by a member (Request::from_peer) is answered as Node.
enum class Scope : uint8_t {
    Node,        // this node
    Gather,      // every running member: arrays and "objects" lists joined, objects merged
    Sum,         // every running member: numbers added (cluster-wide counters)
    Members,     // this node's member list, each running member's entry from that member
    FirstFound,  // this node, unless it answers 112 (not here): then the member that has it
    Every,       // done on every running member; answers this node's result
};

struct Route {
    std::string method;
    // Segments after /api/v2/: a literal, ":name" (one decoded segment) or "*name" (the rest
    // of the path, '/' included, decoded; must be last).
    std::vector<std::string> pattern;
    std::string summary;
    Endpoint fn;
    // The spec's paging parameters apply (for openapi.json).
    bool paged = false;
    // The result is the whole body, without the {"code": 0, "result": ...} envelope.
    bool raw = false;
    // Other query parameters (name, description), for openapi.json.
    std::vector<std::pair<std::string, std::string>> query = {};
    Scope scope = Scope::Node;
    // A ":node" naming a member that is not running is answered here (from its record), not
    // refused.
    bool member_record = false;
};

// Adds a route; `path` like "nodes/:node/clients/:client_id".
void add(std::vector<Route>& routes,
         std::string method,
         std::string_view path,
         std::string summary,
         Endpoint fn,
         bool paged = false);

void add_live_routes(std::vector<Route>& routes);    // clients, sessions, subscriptions, ...
void add_admin_routes(std::vector<Route>& routes);   // nodes, monitoring, plugins, configs, users
void add_auth_routes(std::vector<Route>& routes);    // auth_username, auth_clientid, acl/reload
void add_backup_routes(std::vector<Route>& routes);  // backup
Json openapi(const std::vector<Route>& routes);

// Paging (curr_page, page_size, cursor). curr_page >= 1, 1 <= page_size <= kMaxPageSize,
// anything else 108; a cursor must be one this API produced (108 otherwise).
inline constexpr uint32_t kMaxPageSize = 10000;
struct Paging {
    uint64_t page = 1;
    uint32_t size = 20;
    std::string cursor;  // as given; empty = none
    uint64_t offset() const { return (page - 1) * size; }
};
Paging paging(const Call& c);
// The spec's envelope plus "cursor" (empty when the list is exhausted).
Json envelope(const Paging& p, uint64_t total, Json objects, const std::string& next_cursor);

// Cursors that are not a store key: "o<offset>" (an offset into a live list).
std::string offset_cursor(uint64_t offset);
std::optional<uint64_t> parse_offset_cursor(std::string_view cursor);
bool is_store_cursor(std::string_view cursor);

// 101 unless `node` is this node's name.
void check_node(Handler& h, const std::string& node);

// The cluster's part of a request (api/cluster_calls.cpp). pass_on: when `route`'s ":node"
// names another member, that member's answer (101 when it is unknown, not running or does not
// answer). answer: the route's endpoint run for `route.scope` across the running members.
// Whether `route` with `params` asks other members when this node is `self`: its scope is not
// Node, or its ":node" names another node.
bool asks_peers(const std::string& self,
                const Route& route,
                const std::vector<std::string>& params);
// Sets each route's Scope and member_record (the table is in cluster_calls.cpp).
void set_cluster_scopes(std::vector<Route>& routes);
std::optional<Response> pass_on(Handler& h,
                                const broker::ClusterView& cluster,
                                const Route& route,
                                const Call& call);
Json answer(Handler& h, const broker::ClusterView& cluster, const Route& route, Call& call);

}  // namespace mqttd::api::detail
