#include "net/proxy_protocol.h"

#include <array>
#include <charconv>
#include <cstring>
#include <string_view>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace mqttd::net {

namespace {

constexpr std::array<uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kMaxV1 = 107;  // "PROXY TCP6 " + two full v6 addresses and ports + CRLF

ProxyResult error(std::string reason) {
    ProxyResult r;
    r.status = ProxyResult::Status::Error;
    r.reason = std::move(reason);
    return r;
}

bool prefix_matches(std::span<const uint8_t> bytes, std::span<const uint8_t> want) {
    size_t n = std::min(bytes.size(), want.size());
    return std::memcmp(bytes.data(), want.data(), n) == 0;
}

bool parse_port(std::string_view s, uint16_t& port) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || v > 65535 ||
        (s.size() > 1 && s.front() == '0')) {
        return false;
    }
    port = static_cast<uint16_t>(v);
    return true;
}

ProxyResult parse_v1(std::span<const uint8_t> bytes) {
    std::string_view text(reinterpret_cast<const char*>(bytes.data()),
                          std::min(bytes.size(), kMaxV1));
    size_t crlf = text.find("\r\n");
    if (crlf == std::string_view::npos) {
        if (bytes.size() >= kMaxV1) {
            return error("PROXY v1 header longer than 107 bytes");
        }
        return {};
    }
    ProxyResult r;
    r.status = ProxyResult::Status::Done;
    r.consumed = crlf + 2;
    std::string_view line = text.substr(6, crlf - 6);  // after "PROXY "
    std::array<std::string_view, 5> f;
    size_t n = 0;
    while (!line.empty() && n < f.size()) {
        size_t sp = line.find(' ');
        f[n++] = line.substr(0, sp);
        line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    }
    if (n >= 1 && f[0] == "UNKNOWN") {
        return r;  // the balancer's own connection: keep the socket's peer
    }
    if (n != 5 || !line.empty() || (f[0] != "TCP4" && f[0] != "TCP6")) {
        return error("malformed PROXY v1 header");
    }
    uint16_t port = 0;
    uint16_t dport = 0;
    if (!parse_port(f[3], port) || !parse_port(f[4], dport)) {
        return error("malformed PROXY v1 port");
    }
    std::string src(f[1]);
    std::string dst(f[2]);
    if (f[0] == "TCP4") {
        auto& a = reinterpret_cast<sockaddr_in&>(r.source);
        in_addr ignored{};
        if (::inet_pton(AF_INET, src.c_str(), &a.sin_addr) != 1 ||
            ::inet_pton(AF_INET, dst.c_str(), &ignored) != 1) {
            return error("malformed PROXY v1 TCP4 address");
        }
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
    } else {
        auto& a = reinterpret_cast<sockaddr_in6&>(r.source);
        in6_addr ignored{};
        if (::inet_pton(AF_INET6, src.c_str(), &a.sin6_addr) != 1 ||
            ::inet_pton(AF_INET6, dst.c_str(), &ignored) != 1) {
            return error("malformed PROXY v1 TCP6 address");
        }
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
    }
    r.has_source = true;
    return r;
}

ProxyResult parse_v2(std::span<const uint8_t> bytes) {
    if (bytes.size() < 16) {
        return {};
    }
    uint8_t ver_cmd = bytes[12];
    uint8_t fam = bytes[13];
    size_t len = (size_t{bytes[14]} << 8) | bytes[15];
    if ((ver_cmd & 0xF0) != 0x20) {
        return error("PROXY v2 header of an unknown version");
    }
    if (16 + len > kMaxProxyHeader) {
        return error("PROXY v2 header longer than " + std::to_string(kMaxProxyHeader) + " bytes");
    }
    if (bytes.size() < 16 + len) {
        return {};
    }
    ProxyResult r;
    r.status = ProxyResult::Status::Done;
    r.consumed = 16 + len;
    uint8_t cmd = ver_cmd & 0x0F;
    if (cmd == 0x0) {
        return r;  // LOCAL: the balancer's own connection (health check)
    }
    if (cmd != 0x1) {
        return error("PROXY v2 header with an unknown command");
    }
    const uint8_t* p = bytes.data() + 16;
    if (fam == 0x11) {  // TCP over IPv4
        if (len < 12) {
            return error("PROXY v2 TCP4 address block too short");
        }
        auto& a = reinterpret_cast<sockaddr_in&>(r.source);
        a.sin_family = AF_INET;
        std::memcpy(&a.sin_addr, p, 4);
        std::memcpy(&a.sin_port, p + 8, 2);
        r.has_source = true;
    } else if (fam == 0x21) {  // TCP over IPv6
        if (len < 36) {
            return error("PROXY v2 TCP6 address block too short");
        }
        auto& a = reinterpret_cast<sockaddr_in6&>(r.source);
        a.sin6_family = AF_INET6;
        std::memcpy(&a.sin6_addr, p, 16);
        std::memcpy(&a.sin6_port, p + 32, 2);
        r.has_source = true;
    }
    // Other families (UNSPEC, UDP, unix sockets): no address to show; the socket's peer stays.
    return r;
}

}  // namespace

ProxyResult parse_proxy_header(std::span<const uint8_t> bytes) {
    static constexpr std::array<uint8_t, 6> kV1 = {'P', 'R', 'O', 'X', 'Y', ' '};
    if (bytes.empty()) {
        return {};
    }
    if (bytes[0] == 'P') {
        if (!prefix_matches(bytes, kV1)) {
            return error("no PROXY header");
        }
        return bytes.size() < kV1.size() ? ProxyResult{} : parse_v1(bytes);
    }
    if (!prefix_matches(bytes, kV2Signature)) {
        return error("no PROXY header");
    }
    return bytes.size() < kV2Signature.size() ? ProxyResult{} : parse_v2(bytes);
}

}  // namespace mqttd::net
