// Listener addresses ("host:port", "[v6]:port", ":port", "port") and peer addresses as text.
// Pure functions, no sockets: the listener binds what parse_host_port returns, a link formats
// the peer's address only when asked (the broker keeps what it needs).
//
// Thread-safety: stateless.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sys/socket.h>

#include "common/result.h"

namespace mqttd::net {

struct HostPort {
    std::string host;  // numeric IPv4 or IPv6, brackets removed; "0.0.0.0" when none was given
    uint16_t port = 0;
};

// Splits a listener address. The error is one line naming the address.
Result<HostPort, std::string> parse_host_port(std::string_view address);

// The numeric address of an AF_INET / AF_INET6 socket address ("" for anything else).
std::string format_ip(const sockaddr_storage& addr);
uint16_t port_of(const sockaddr_storage& addr);

}  // namespace mqttd::net
