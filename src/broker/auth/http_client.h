// A blocking HTTP/1.1 client on libcurl for the auth plugins' pool threads (emq_auth_http,
// emq_web_hook). Each calling thread keeps one easy handle (thread_local) so consecutive
// requests to the same server reuse the connection. Only http:// and https:// URLs are
// followed; redirects are not. Response bodies are capped at kMaxResponseBody bytes.
//
// Thread-safety: perform() from any thread, never from a broker worker (it blocks up to
// timeout_ms). url_encode/form_encode are pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mqttd::broker::auth {

inline constexpr size_t kMaxResponseBody = 64 * 1024;

struct HttpRequest {
    bool post = false;
    std::string url;  // for GET, already including the query string
    std::string body;
    std::string content_type;  // POST only
    long timeout_ms = 5000;
};

struct HttpResponse {
    long status = 0;    // 0 = no HTTP answer (refused, timeout, malformed reply, ...)
    std::string body;   // at most kMaxResponseBody bytes
    std::string error;  // libcurl's one-line error when status == 0
};

HttpResponse http_perform(const HttpRequest& req);

// RFC 3986 percent-encoding of everything but unreserved characters.
std::string url_encode(std::string_view s);
// "k1=v1&k2=v2" with both sides url-encoded (application/x-www-form-urlencoded).
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace mqttd::broker::auth
