#include "net/proxy_protocol.h"

#include <string>

#include <gtest/gtest.h>

#include "net/address.h"

namespace mqttd::net {
namespace {

using Status = ProxyResult::Status;

ProxyResult parse(const std::string& s) {
    return parse_proxy_header(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST(ProxyProtocol, Version1) {
    std::string h = "PROXY TCP4 203.0.113.7 10.0.0.1 5555 1883\r\n";
    auto r = parse(h + "\x10rest");
    ASSERT_EQ(r.status, Status::Done) << r.reason;
    EXPECT_EQ(r.consumed, h.size());
    ASSERT_TRUE(r.has_source);
    EXPECT_EQ(format_ip(r.source), "203.0.113.7");
    EXPECT_EQ(port_of(r.source), 5555);
    r = parse("PROXY TCP6 2001:db8::9 2001:db8::1 6000 1883\r\n");
    ASSERT_EQ(r.status, Status::Done) << r.reason;
    EXPECT_EQ(format_ip(r.source), "2001:db8::9");
    r = parse("PROXY UNKNOWN\r\n");
    ASSERT_EQ(r.status, Status::Done);
    EXPECT_FALSE(r.has_source);
    // Every prefix needs more; none reads past the header.
    for (size_t n = 1; n < h.size(); ++n) {
        EXPECT_EQ(parse(h.substr(0, n)).status, Status::NeedMore) << n;
    }
}

TEST(ProxyProtocol, Version2) {
    std::string h("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
    h += std::string("\xC6\x33\x64\x09\x0A\x00\x00\x01\x1F\x90\x07\x5B", 12);
    auto r = parse(h + "after");
    ASSERT_EQ(r.status, Status::Done) << r.reason;
    EXPECT_EQ(r.consumed, 28u);
    EXPECT_EQ(format_ip(r.source), "198.51.100.9");
    EXPECT_EQ(port_of(r.source), 8080);
    for (size_t n = 1; n < h.size(); ++n) {
        EXPECT_EQ(parse(h.substr(0, n)).status, Status::NeedMore) << n;
    }
    std::string local("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16);
    r = parse(local);
    ASSERT_EQ(r.status, Status::Done);
    EXPECT_FALSE(r.has_source);
}

TEST(ProxyProtocol, RefusesWhatIsNotAHeader) {
    EXPECT_EQ(parse(std::string("\x10\x0c\x00\x04MQTT", 8)).status, Status::Error);
    EXPECT_EQ(parse("PROXI TCP4").status, Status::Error);
    EXPECT_EQ(parse("PROXY TCP4 1.2.3 10.0.0.1 1 2\r\n").status, Status::Error);
    EXPECT_EQ(parse("PROXY TCP4 1.2.3.4 10.0.0.1 99999 2\r\n").status, Status::Error);
    EXPECT_EQ(parse("PROXY " + std::string(200, 'x')).status, Status::Error);
    std::string too_long("\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff", 16);
    EXPECT_EQ(parse(too_long).status, Status::Error);
}

TEST(Address, HostPortForms) {
    auto a = parse_host_port("127.0.0.1:1883");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 1883);
    a = parse_host_port("[::1]:8883");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "::1");
    a = parse_host_port("8083");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "0.0.0.0");
    EXPECT_EQ(a->port, 8083);
    EXPECT_FALSE(parse_host_port("host:99999"));
    EXPECT_FALSE(parse_host_port("host:12ab"));
}

}  // namespace
}  // namespace mqttd::net
