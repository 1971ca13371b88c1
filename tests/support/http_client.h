// A blocking HTTP/1.1 client for the tests: one request on a fresh loopback connection
// ("Connection: close"), the whole reply read (Content-Length or chunked). Independent of the
// code under test. Thread-safe (no shared state).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mqttd::test {

struct HttpReply {
    int status = 0;                                            // 0: no connection or no HTTP reply
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
    std::string body;                                          // de-chunked
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string header(const std::string& lower_name) const;
};

// `auth` is "user:password" (Basic) or empty for none. A POST or PUT (or any request with a
// body) carries Content-Type: application/json.
HttpReply http(uint16_t port,
               const std::string& method,
               const std::string& path,
               const std::string& body = "",
               const std::string& auth = "admin:public",
               std::chrono::milliseconds timeout = std::chrono::seconds(15));

// The same with more request headers: `headers` is "Name: value\r\n" lines.
HttpReply http_with_headers(uint16_t port,
                            const std::string& method,
                            const std::string& path,
                            const std::string& headers,
                            const std::string& body = "",
                            const std::string& auth = "",
                            std::chrono::milliseconds timeout = std::chrono::seconds(15));

// x-www-form-urlencoded / query decoding ('+' = space) and percent-encoding.
std::string percent_decode(const std::string& s);
std::string url_encode(const std::string& s);

}  // namespace mqttd::test
