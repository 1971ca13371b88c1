#include "storage/keys.h"

#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd::storage {
namespace {

TEST(Keys, QueueKeysSortBySeqWithinClient) {
    std::vector<uint64_t> seqs = {0, 1, 255, 256, 65535, 1ull << 32, (1ull << 63) + 5, ~0ull};
    std::vector<std::string> k;
    for (uint64_t s : seqs) {
        k.push_back(keys::queue("client", s));
    }
    EXPECT_TRUE(std::is_sorted(k.begin(), k.end()));
    for (uint64_t s : seqs) {
        auto parsed = keys::parse_queue(keys::queue("client", s));
        ASSERT_TRUE(parsed);
        EXPECT_EQ(parsed->first, "client");
        EXPECT_EQ(parsed->second, s);
    }
}

TEST(Keys, ClientsDoNotInterleave) {
    // Every key of "a" sorts before every key of "a0" / "ab" thanks to the 0x00 separator.
    EXPECT_LT(keys::queue("a", ~0ull), keys::queue("a0", 0));
    EXPECT_LT(keys::queue("a", ~0ull), keys::queue("a\x01", 0));
    EXPECT_LT(keys::subscription("a", "zzz"), keys::subscription("ab", ""));
    std::string p = keys::client_prefix("a");
    EXPECT_TRUE(keys::queue("a", 7).starts_with(p));
    EXPECT_FALSE(keys::queue("ab", 7).starts_with(p));
}

TEST(Keys, MessageKeysSortNumerically) {
    std::mt19937_64 rng(42);
    std::vector<uint64_t> ids(200);
    for (auto& id : ids) {
        id = rng();
    }
    std::sort(ids.begin(), ids.end());
    for (size_t i = 1; i < ids.size(); ++i) {
        EXPECT_LE(keys::message(ids[i - 1]), keys::message(ids[i]));
        EXPECT_EQ(keys::parse_message(keys::message(ids[i])), ids[i]);
    }
    EXPECT_FALSE(keys::parse_message("short"));
}

TEST(Keys, SubscriptionRoundTrip) {
    auto p = keys::parse_subscription(keys::subscription("c/1 ü", "a/+/#"));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->first, "c/1 ü");
    EXPECT_EQ(p->second, "a/+/#");
}

TEST(Keys, InflightRoundTripAndOrder) {
    auto k = keys::inflight("cl", Direction::Inbound, 0x1234);
    auto r = keys::parse_inflight(k);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->client_id, "cl");
    EXPECT_EQ(r->direction, Direction::Inbound);
    EXPECT_EQ(r->packet_id, 0x1234);
    EXPECT_LT(keys::inflight("cl", Direction::Outbound, 1),
              keys::inflight("cl", Direction::Outbound, 256));
    EXPECT_FALSE(keys::parse_inflight("x"));
}

TEST(Keys, RetainedLevelEncoding) {
    for (std::string t : {"a", "a/b", "/a", "a/", "a//b", "$SYS/x/y", "ü/ß"}) {
        std::string k = keys::retained(t);
        EXPECT_EQ(k.find('/'), std::string::npos);
        EXPECT_EQ(keys::retained_topic(k), t);
    }
    // The subtree of "a/" is exactly the keys with prefix "a" 0x00.
    std::string prefix = std::string("a") + '\0';
    EXPECT_TRUE(keys::retained("a/b/c").starts_with(prefix));
    EXPECT_FALSE(keys::retained("ab/c").starts_with(prefix));
    EXPECT_LT(keys::retained("a/zzz"), keys::retained("a0"));
}

TEST(Keys, ComponentValidation) {
    EXPECT_TRUE(keys::valid_component("any utf-8 ü"));
    EXPECT_FALSE(keys::valid_component(std::string("a\0b", 3)));
}

TEST(Keys, CursorRoundTrip) {
    std::string k = keys::queue("c", 12345);
    auto back = keys::from_cursor(keys::to_cursor(k));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, k);
    EXPECT_FALSE(keys::from_cursor("abc"));
    EXPECT_FALSE(keys::from_cursor("zz"));
}

TEST(Keys, PrefixEnd) {
    EXPECT_EQ(keys::prefix_end("ab"), "ac");
    EXPECT_EQ(keys::prefix_end(std::string("a\xff", 2)), "b");
    EXPECT_EQ(keys::prefix_end(""), "");
}

}  // namespace
}  // namespace mqttd::storage
