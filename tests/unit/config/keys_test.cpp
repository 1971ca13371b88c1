#include "config/keys.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace mqttd::config {
namespace {

const KeyDef& key(std::string_view name) {
    const KeyDef* def = find_key(name);
    EXPECT_NE(def, nullptr) << name;
    return *def;
}

std::string parse_error(std::string_view name, std::string_view text) {
    auto v = parse_value(key(name), text);
    EXPECT_FALSE(v.ok()) << name << " = " << text;
    return v.ok() ? std::string() : v.error();
}

int64_t parse_number(std::string_view name, std::string_view text) {
    auto v = parse_value(key(name), text);
    EXPECT_TRUE(v.ok()) << name << " = " << text << ": " << (v.ok() ? "" : v.error());
    return v.ok() ? v->number : -1;
}

TEST(Keys, EveryDefaultParsesToItself) {
    std::set<std::string_view> names;
    for (const KeyDef& def : all_keys()) {
        EXPECT_TRUE(names.insert(def.name).second) << "duplicate " << def.name;
        auto v = parse_value(def, def.default_text);
        ASSERT_TRUE(v.ok()) << def.name << ": " << v.error();
        EXPECT_EQ(v->text, def.default_text) << def.name << ": default is not canonical";
        EXPECT_FALSE(def.description.empty()) << def.name;
        EXPECT_EQ(def.app, "emqttd");
    }
}

TEST(Keys, SpecHotKeysAndDatatypes) {
    // rest-api-v2.md "Hot configuration" example.
    EXPECT_EQ(datatpye(key("log.console.level")), "enum");
    EXPECT_EQ(datatpye(key("mqtt.acl_file")), "string");
    EXPECT_EQ(datatpye(key("mqtt.acl_nomatch")), "enum");
    EXPECT_EQ(datatpye(key("mqtt.allow_anonymous")), "enum");
    EXPECT_EQ(datatpye(key("mqtt.broker.sys_interval")), "integer");
    EXPECT_EQ(datatpye(key("mqtt.cache_acl")), "enum");
    std::set<std::string_view> hot;
    for (const KeyDef& def : all_keys()) {
        if (def.hot) {
            hot.insert(def.name);
        }
    }
    EXPECT_EQ(hot, (std::set<std::string_view>{"log.console.level", "mqtt.acl_file",
                                               "mqtt.acl_nomatch", "mqtt.allow_anonymous",
                                               "mqtt.broker.sys_interval", "mqtt.cache_acl"}));
    EXPECT_EQ(find_key("no.such.key"), nullptr);
}

TEST(Keys, Integers) {
    EXPECT_EQ(parse_number("mqtt.max_inflight", "1"), 1);
    EXPECT_EQ(parse_number("mqtt.max_inflight", "65535"), 65535);
    EXPECT_EQ(parse_number("mqtt.max_inflight", "+7"), 7);
    EXPECT_EQ(parse_error("mqtt.max_inflight", "abc"), "\"abc\" is not an integer");
    EXPECT_EQ(parse_error("mqtt.max_inflight", "12x"), "\"12x\" is not an integer");
    EXPECT_EQ(parse_error("mqtt.max_inflight", ""), "\"\" is not an integer");
    EXPECT_EQ(parse_error("mqtt.max_inflight", "1.5"), "\"1.5\" is not an integer");
    EXPECT_EQ(parse_number("mqtt.max_inflight", "0"), 0);  // no fixed window
    EXPECT_EQ(parse_error("mqtt.max_inflight", "65536"), "65536 is out of range 0..65535");
    EXPECT_EQ(parse_error("mqtt.max_clientid_len", "0"), "0 is out of range 23..65535");
    EXPECT_EQ(parse_error("node.workers", "-1"), "-1 is out of range 0..256");
    EXPECT_EQ(parse_error("node.workers", "99999999999999999999"),
              "\"99999999999999999999\" is out of range 0..256");
    // Integers take no unit.
    EXPECT_EQ(parse_error("mqtt.max_inflight", "10s"), "\"10s\" is not an integer");
}

TEST(Keys, Durations) {
    EXPECT_EQ(parse_number("mqtt.connect_timeout", "15"), 15);
    EXPECT_EQ(parse_number("mqtt.connect_timeout", "15s"), 15);
    EXPECT_EQ(parse_number("mqtt.session.expiry_interval", "2h"), 7200);
    EXPECT_EQ(parse_number("mqtt.session.expiry_interval", "30m"), 1800);
    EXPECT_EQ(parse_number("mqtt.session.expiry_interval", "10s"), 10);
    EXPECT_EQ(parse_number("mqtt.session.expiry_interval", "1d"), 86400);
    EXPECT_EQ(parse_number("mqtt.session.expiry_interval", "2H"), 7200);
    EXPECT_EQ(parse_number("mqtt.session.expiry_interval", "0"), 0);
    EXPECT_EQ(parse_value(key("mqtt.session.expiry_interval"), "2h")->text, "7200");
    EXPECT_EQ(parse_error("mqtt.connect_timeout", "soon"),
              "\"soon\" is not a duration (seconds, or a number with s, m, h or d)");
    EXPECT_EQ(parse_error("mqtt.connect_timeout", "5w"),
              "\"5w\" is not a duration (seconds, or a number with s, m, h or d)");
    EXPECT_EQ(parse_error("mqtt.connect_timeout", "2h"), "\"2h\" = 7200 is out of range 1..3600");
    EXPECT_EQ(parse_error("mqtt.connect_timeout", "0s"), "\"0s\" = 0 is out of range 1..3600");
    EXPECT_EQ(parse_error("mqtt.session.expiry_interval", "9223372036854775807d"),
              "\"9223372036854775807d\" is out of range 0..4294967295");
}

TEST(Keys, Sizes) {
    EXPECT_EQ(parse_number("mqtt.max_packet_size", "1048576"), 1048576);
    EXPECT_EQ(parse_number("mqtt.max_packet_size", "1MB"), 1048576);
    EXPECT_EQ(parse_number("mqtt.max_packet_size", "1mb"), 1048576);
    EXPECT_EQ(parse_number("mqtt.max_packet_size", "64KB"), 65536);
    EXPECT_EQ(parse_number("mqtt.max_packet_size", "64K"), 65536);
    EXPECT_EQ(parse_number("mqtt.max_packet_size", "100B"), 100);
    EXPECT_EQ(parse_number("mqtt.max_packet_size", "255 MB"), 255 * 1048576);
    EXPECT_EQ(parse_error("mqtt.max_packet_size", "256MB"),
              "\"256MB\" = 268435456 is out of range 2..268435455");
    EXPECT_EQ(parse_error("mqtt.max_packet_size", "1"), "1 is out of range 2..268435455");
    EXPECT_EQ(parse_error("mqtt.max_packet_size", "1TB"),
              "\"1TB\" is not a size (bytes, or a number with KB, MB or GB)");
    EXPECT_EQ(parse_error("mqtt.max_packet_size", "MB"),
              "\"MB\" is not a size (bytes, or a number with KB, MB or GB)");
}

TEST(Keys, BoolsEnumsStringsAddresses) {
    EXPECT_EQ(parse_number("mqtt.allow_anonymous", "true"), 1);
    EXPECT_EQ(parse_number("mqtt.allow_anonymous", "false"), 0);
    EXPECT_EQ(parse_error("mqtt.allow_anonymous", "yes"),
              "\"yes\" is not a boolean (true or false)");
    EXPECT_EQ(parse_number("log.console.level", "debug"), 0);
    EXPECT_EQ(parse_number("log.console.level", "off"), 5);
    EXPECT_EQ(parse_error("log.console.level", "verbose"),
              "\"verbose\" is not one of debug|info|warning|error|critical|off");
    EXPECT_EQ(parse_error("mqtt.acl_nomatch", "Allow"), "\"Allow\" is not one of allow|deny");
    EXPECT_EQ(parse_value(key("mqtt.acl_file"), "")->text, "");
    EXPECT_EQ(parse_error("node.name", ""), "value must not be empty");
    EXPECT_EQ(parse_value(key("node.name"), "a b")->text, "a b");

    EXPECT_TRUE(parse_value(key("listener.tcp.external"), "0.0.0.0:1883").ok());
    EXPECT_TRUE(parse_value(key("listener.tcp.external"), "1883").ok());
    EXPECT_TRUE(parse_value(key("listener.tcp.external"), "[::]:1883").ok());
    EXPECT_TRUE(parse_value(key("listener.tcp.external"), "localhost:1").ok());
    EXPECT_TRUE(parse_value(key("listener.ssl.external"), "").ok());
    EXPECT_EQ(parse_error("listener.api.mgmt", ""), "value must not be empty");
    EXPECT_EQ(parse_error("listener.tcp.external", "0.0.0.0:"),
              "\"0.0.0.0:\" is not an address (host:port or port)");
    EXPECT_EQ(parse_error("listener.tcp.external", ":1883"),
              "\":1883\" is not an address (host:port or port)");
    EXPECT_EQ(parse_error("listener.tcp.external", "::1883"),
              "\"::1883\" is not an address (host:port or port)");
    EXPECT_EQ(parse_error("listener.tcp.external", "[::1883"),
              "\"[::1883\" is not an address (host:port or port)");
    EXPECT_EQ(parse_error("listener.tcp.external", "0.0.0.0:70000"),
              "port 70000 is out of range 1..65535");
    EXPECT_EQ(parse_error("listener.tcp.external", "0"), "port 0 is out of range 1..65535");
}

TEST(Keys, RateLimit) {
    auto r = parse_rate_limit("100KB,1MB");
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->bytes_per_second, 100u * 1024);
    EXPECT_EQ(r->burst, 1024u * 1024);
    r = parse_rate_limit("2048");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->burst, 2048u);  // one second's worth
    r = parse_rate_limit("");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->bytes_per_second, 0u);
    EXPECT_FALSE(parse_rate_limit("fast").ok());
    EXPECT_FALSE(parse_rate_limit("10,").ok());
    EXPECT_FALSE(parse_rate_limit("0,10").ok());
}

}  // namespace
}  // namespace mqttd::config
