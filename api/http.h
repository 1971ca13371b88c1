// The HTTP request and response as the handlers see them: plain values with no Pistache type,
// so the handlers build without Pistache and tests can call them in-process. server.cpp
// converts to and from Pistache's types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mqttd::api {

struct Request {
    std::string method;  // "GET", "POST", "PUT", "DELETE", ...
    std::string path;    // raw resource, still percent-encoded, without the query
    // Query parameters, percent-decoded ('+' = space); the first of a repeated key wins.
    std::map<std::string, std::string> query;
    std::string authorization;  // raw Authorization header value, empty when absent
    std::string peer;           // the client's address (host only), for the login limiter
    std::string if_none_match;  // raw If-None-Match header value (the dashboard's files)
    // Passed on by another member of the cluster (ClusterView::kScopeHeader): answered by this
    // node alone.
    bool from_peer = false;
    std::string body;
};

struct Response {
    int status = 200;
    std::string body;          // JSON text, unless content_type says otherwise
    std::string content_type;  // empty = application/json
    std::vector<std::pair<std::string, std::string>> headers;
    // > 0: the server holds the answer this long before sending it (the tarpit for refused
    // and failed logins, the Tarpit in api/pistache_glue.h) without holding a request thread,
    // and asks the client to close the connection after it.
    uint32_t delay_ms = 0;
};

}  // namespace mqttd::api
