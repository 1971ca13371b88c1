// The HTTP/1.1 request that opens a WebSocket (RFC 6455 section 4.2.1), parsed sans-I/O and
// bounded: feed the bytes received so far; the answer is need-more, a request to accept
// (101 Switching Protocols), or a refusal with its HTTP status.
//
// Why not Beast's http::request_parser: the upgrade needs the request line and five headers,
// once per connection; a small parser that looks only for those, bounded in size before it
// allocates, is a few dozen lines and keeps Beast (the heaviest TU of the probe build) out.
//
// Accepted: GET, HTTP/1.1, the configured path (query ignored), Upgrade: websocket,
// Connection: upgrade (among other tokens), Sec-WebSocket-Version: 13, a Sec-WebSocket-Key,
// and a Sec-WebSocket-Protocol list that offers "mqtt" or "mqttv3.1" (the first offered of
// those is echoed; an upgrade without one is refused, as EMQ 2.x does). Header names are
// case-insensitive, a header may repeat (lists are joined), the request ends at CRLF CRLF.
//
// Thread-safety: stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mqttd::net {

// Longest upgrade request accepted, headers included (browsers send under 1 KB).
inline constexpr size_t kMaxUpgradeRequest = 8192;

struct UpgradeResult {
    enum class Status : uint8_t { NeedMore, Accept, Refuse };
    Status status = Status::NeedMore;
    size_t consumed = 0;      // Accept: bytes of the request (what follows is WebSocket)
    int http_status = 0;      // Refuse: 400, 404, 426, 431
    std::string reason;       // Refuse: one line, for the log
    std::string key;          // Accept: Sec-WebSocket-Key
    std::string subprotocol;  // Accept: "mqtt" or "mqttv3.1"
};

UpgradeResult parse_upgrade(std::string_view bytes, std::string_view path);

// base64(SHA-1(key + the RFC 6455 GUID)).
std::string websocket_accept(std::string_view key);
// The 101 answer for an accepted request.
std::string upgrade_response(const UpgradeResult& r);
// The answer for a refused one (the connection closes after it).
std::string refusal_response(const UpgradeResult& r);

}  // namespace mqttd::net
