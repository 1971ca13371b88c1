#include "net/address.h"

#include <charconv>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace mqttd::net {

Result<HostPort, std::string> parse_host_port(std::string_view address) {
    const std::string text(address);
    const auto colon = text.rfind(':');
    std::string host;
    size_t port_at = 0;  // "port" alone: every address
    if (colon != std::string::npos) {
        host = text.substr(0, colon);
        port_at = colon + 1;
    }
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned port = 0;
    const char* first = text.data() + port_at;
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (first == last || ec != std::errc{} || end != last || port > 65535) {
        return Err{"listener address \"" + text + "\" has no valid port"};
    }
    return HostPort{host.empty() ? "0.0.0.0" : host, static_cast<uint16_t>(port)};
}

std::string format_ip(const sockaddr_storage& addr) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET6) {
        const auto& a6 = reinterpret_cast<const sockaddr_in6&>(addr);
        if (::inet_ntop(AF_INET6, &a6.sin6_addr, buf, sizeof(buf)) == nullptr) {
            return {};
        }
        return buf;
    }
    if (addr.ss_family == AF_INET) {
        const auto& a4 = reinterpret_cast<const sockaddr_in&>(addr);
        if (::inet_ntop(AF_INET, &a4.sin_addr, buf, sizeof(buf)) == nullptr) {
            return {};
        }
        return buf;
    }
    return {};
}

uint16_t port_of(const sockaddr_storage& addr) {
    if (addr.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
    }
    if (addr.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
    }
    return 0;
}

}  // namespace mqttd::net
