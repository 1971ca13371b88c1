// The HAProxy PROXY protocol header (versions 1 and 2, haproxy.org/download/2.8/doc/
// proxy-protocol.txt) that a load balancer sends before anything else on a connection, so
// the broker sees the client's address instead of the balancer's. Parsed sans-I/O: feed the
// bytes received so far (from the start of the connection).
//
// NeedMore is only ever answered while every byte fed is part of the header, so a reader may
// take all it fed off the socket and never reads into what follows the header (the TLS
// ClientHello, the MQTT CONNECT). A v1 header is at most 107 bytes; a v2 header is bounded by
// kMaxProxyHeader. PROXY v1 "UNKNOWN" and v2 LOCAL (health checks) carry no address: the
// socket's peer is kept.
//
// Thread-safety: stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <sys/socket.h>

namespace mqttd::net {

inline constexpr size_t kMaxProxyHeader = 16 + 2048;

struct ProxyResult {
    enum class Status : uint8_t { NeedMore, Done, Error };
    Status status = Status::NeedMore;
    size_t consumed = 0;        // Done: the header's length
    bool has_source = false;    // Done: `source` is the client's address
    sockaddr_storage source{};  // AF_INET or AF_INET6, with the port
    std::string reason;         // Error: one line
};

ProxyResult parse_proxy_header(std::span<const uint8_t> bytes);

}  // namespace mqttd::net
