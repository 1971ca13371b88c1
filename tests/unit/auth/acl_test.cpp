#include "broker/auth/acl.h"

#include <fstream>

#include <gtest/gtest.h>

#include "broker/auth/topic_filter.h"
#include "test_util.h"

namespace mqttd::broker::auth {
namespace {

using testing::identity;

// EMQ 2.x's default acl.conf (also data/acl.conf).
constexpr const char* kDefault = R"(
%% comment
{allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.

{allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.

{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.

{allow, all}.
)";

AclRules parse_ok(std::string_view text) {
    auto r = AclRules::parse(text, "acl.conf");
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() ? std::move(r).value() : AclRules();
}

std::string parse_error(std::string_view text) {
    auto r = AclRules::parse(text, "acl.conf");
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.error();
}

std::optional<bool> decide(const AclRules& rules,
                           const ClientIdentity& id,
                           Access a,
                           std::string_view topic) {
    auto m = rules.match(id, a, topic);
    return m ? std::optional<bool>(m->allow) : std::nullopt;
}

TEST(TopicMatch, EmqSemantics) {
    EXPECT_TRUE(topic_match("a/b", "a/b"));
    EXPECT_TRUE(topic_match("a/b", "a/+"));
    EXPECT_TRUE(topic_match("a/b/c", "a/#"));
    EXPECT_TRUE(topic_match("a", "a/#"));
    EXPECT_TRUE(topic_match("a/", "a/+"));
    EXPECT_FALSE(topic_match("a", "a/+"));
    EXPECT_FALSE(topic_match("a/b/c", "a/+"));
    EXPECT_FALSE(topic_match("a/b", "a/b/c"));
    EXPECT_TRUE(topic_match("anything/at/all", "#"));
    // [MQTT-4.7.2-1]: leading wildcards do not match '$' topics.
    EXPECT_FALSE(topic_match("$SYS/x", "#"));
    EXPECT_FALSE(topic_match("$SYS/x", "+/x"));
    EXPECT_TRUE(topic_match("$SYS/x", "$SYS/#"));
}

TEST(TopicMatch, FilterOverlaps) {
    EXPECT_TRUE(filter_overlaps("a/b", "a/+"));
    EXPECT_TRUE(filter_overlaps("a/b", "#"));
    EXPECT_FALSE(filter_overlaps("a/b", "a/c"));
    EXPECT_FALSE(filter_overlaps("$SYS/#", "#"));
    EXPECT_FALSE(filter_overlaps("$SYS/#", "+/x"));
    EXPECT_TRUE(filter_overlaps("$SYS/#", "$SYS/brokers/+"));
    EXPECT_TRUE(filter_overlaps("a/+/c", "a/b/+"));
    EXPECT_TRUE(filter_overlaps("a", "a/#"));
    EXPECT_TRUE(filter_overlaps("a/#", "a"));
    EXPECT_FALSE(filter_overlaps("a/b/c", "a/+"));
    EXPECT_FALSE(filter_overlaps("a/b", "a"));
    EXPECT_TRUE(valid_filter("a/+/#"));
    EXPECT_FALSE(valid_filter("a/#/b"));
    EXPECT_FALSE(valid_filter("a/b+"));
    EXPECT_FALSE(valid_filter(""));
}

TEST(AclRules, DefaultFile) {
    AclRules rules = parse_ok(kDefault);
    ASSERT_EQ(rules.size(), 4u);
    EXPECT_EQ(rules.rules()[0].line, 3);
    auto dashboard = identity("c1", "dashboard", std::nullopt, "10.1.1.1");
    auto local = identity("c2", "bob", std::nullopt, "127.0.0.1");
    auto remote = identity("c3", "eve", std::nullopt, "10.1.1.2");

    EXPECT_EQ(decide(rules, dashboard, Access::Subscribe, "$SYS/brokers/x"), true);
    EXPECT_EQ(decide(rules, local, Access::Subscribe, "$SYS/brokers/x"), true);
    EXPECT_EQ(decide(rules, local, Access::Subscribe, "#"), true);
    EXPECT_EQ(decide(rules, local, Access::Publish, "a/b"), true);
    EXPECT_EQ(decide(rules, remote, Access::Subscribe, "$SYS/brokers/x"), false);
    EXPECT_EQ(decide(rules, remote, Access::Subscribe, "#"), false);    // {eq, "#"}
    EXPECT_EQ(decide(rules, remote, Access::Subscribe, "a/#"), true);   // not eq "#"
    EXPECT_EQ(decide(rules, remote, Access::Publish, "$SYS/x"), true);  // subscribe-only deny
    EXPECT_EQ(decide(rules, dashboard, Access::Publish, "$SYS/x"), true);
    EXPECT_EQ(rules.match(remote, Access::Subscribe, "#")->line, 7);
}

TEST(AclRules, FirstMatchWinsAndNoMatch) {
    AclRules rules = parse_ok(R"(
{deny, {user, "u"}, publish, ["a/#"]}.
{allow, {user, "u"}, publish, ["a/b"]}.
{allow, all, subscribe, ["x"]}.
)");
    auto u = identity("c", "u");
    EXPECT_EQ(decide(rules, u, Access::Publish, "a/b"), false);
    EXPECT_EQ(rules.match(u, Access::Publish, "a/b")->line, 2);
    EXPECT_EQ(decide(rules, u, Access::Subscribe, "x"), true);
    EXPECT_EQ(decide(rules, u, Access::Publish, "x"), std::nullopt);  // nomatch
    EXPECT_EQ(decide(rules, u, Access::Publish, "zzz"), std::nullopt);
}

TEST(AclRules, EveryWhoForm) {
    AclRules rules = parse_ok(R"(
{allow, {client, "cid"}, publish, ["c"]}.
{allow, {ipaddr, "192.168.0.0/24"}, publish, ["net"]}.
{allow, {ipaddr, "fd00::/8"}, publish, ["net6"]}.
{allow, {'and', [{user, "u"}, {ipaddr, "10.0.0.1"}]}, publish, ["and"]}.
{allow, {'or', [{user, "v"}, {client, "w"}]}, publish, ["or"]}.
{deny, all, pubsub, ["#"]}.
)");
    EXPECT_EQ(decide(rules, identity("cid"), Access::Publish, "c"), true);
    EXPECT_EQ(decide(rules, identity("other"), Access::Publish, "c"), false);
    EXPECT_EQ(decide(rules, identity("x", {}, {}, "192.168.0.77"), Access::Publish, "net"), true);
    EXPECT_EQ(decide(rules, identity("x", {}, {}, "192.168.1.77"), Access::Publish, "net"), false);
    EXPECT_EQ(decide(rules, identity("x", {}, {}, "::ffff:192.168.0.5"), Access::Publish, "net"),
              true);
    EXPECT_EQ(decide(rules, identity("x", {}, {}, "fd12::1"), Access::Publish, "net6"), true);
    EXPECT_EQ(decide(rules, identity("x", {}, {}, "fe80::1"), Access::Publish, "net6"), false);
    EXPECT_EQ(decide(rules, identity("x", "u", {}, "10.0.0.1"), Access::Publish, "and"), true);
    EXPECT_EQ(decide(rules, identity("x", "u", {}, "10.0.0.2"), Access::Publish, "and"), false);
    EXPECT_EQ(decide(rules, identity("x", "v"), Access::Publish, "or"), true);
    EXPECT_EQ(decide(rules, identity("w"), Access::Publish, "or"), true);
    EXPECT_EQ(decide(rules, identity("x"), Access::Publish, "or"), false);
    EXPECT_EQ(decide(rules, identity("x", {}, {}, "garbage"), Access::Publish, "net"), false);
}

TEST(AclRules, Substitution) {
    AclRules rules = parse_ok(R"(
{allow, all, pubsub, ["users/%u/#", "clients/%c/+", "x%u"]}.
{deny, all}.
)");
    auto u = identity("c1", "alice");
    EXPECT_EQ(decide(rules, u, Access::Publish, "users/alice/x"), true);
    EXPECT_EQ(decide(rules, u, Access::Publish, "users/bob/x"), false);
    EXPECT_EQ(decide(rules, u, Access::Subscribe, "clients/c1/in"), true);
    EXPECT_EQ(decide(rules, u, Access::Subscribe, "clients/c2/in"), false);
    // Only whole levels are placeholders.
    EXPECT_EQ(decide(rules, u, Access::Publish, "xalice"), false);
    EXPECT_EQ(decide(rules, u, Access::Publish, "x%u"), true);
    // No username: a %u rule does not match.
    EXPECT_EQ(decide(rules, identity("c1"), Access::Publish, "users/%u/x"), false);
    // A username with wildcards stays literal and does not widen the rule.
    EXPECT_EQ(decide(rules, identity("c1", "+"), Access::Publish, "users/bob/x"), false);
    EXPECT_EQ(decide(rules, identity("c1", "#"), Access::Publish, "users/anything"), false);
}

// EMQ 2.x: the subscribed filter, as written, is matched against each rule's filter, its own
// wildcards being words; "#" and "a/+" pass a deny of "a/secret" (and allow "a/+" grants
// "a/#"). Such a subscription overlaps the deny rule, which the broker marks; a delivery
// through it is dropped when subscribing to its topic is denied.
TEST(AclRules, SubscribeMatchesTheFilterAsWrittenAsEmqDid) {
    AclRules rules = parse_ok(R"(
{deny, all, subscribe, ["a/secret", {eq, "c/#"}]}.
{allow, all, subscribe, ["a/+", "b/#"]}.
)");
    auto c = identity("c");
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/open"), true);
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/secret"), false);
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/+"), true);
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/#"), true);
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "#"), std::nullopt);  // mqtt.acl_nomatch
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "b/+/x"), true);
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/x/#"), std::nullopt);
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "c/#"), false);

    EXPECT_TRUE(rules.overlaps_subscribe_deny(c, "a/+"));
    EXPECT_TRUE(rules.overlaps_subscribe_deny(c, "#"));
    EXPECT_TRUE(rules.overlaps_subscribe_deny(c, "+/secret"));
    EXPECT_FALSE(rules.overlaps_subscribe_deny(c, "a/open"));
    EXPECT_FALSE(rules.overlaps_subscribe_deny(c, "b/#"));
    EXPECT_FALSE(rules.overlaps_subscribe_deny(c, "c/x")) << "{eq, \"c/#\"} is one filter";
    EXPECT_FALSE(rules.overlaps_subscribe_deny(c, "$SYS/#")) << "'#' does not cover $ topics";

    EXPECT_TRUE(rules.denies_subscribe_topic(c, "a/secret"));
    EXPECT_FALSE(rules.denies_subscribe_topic(c, "a/open"));
    EXPECT_FALSE(rules.denies_subscribe_topic(c, "z"));
}

// A trailing {deny, all} overlaps every subscription: the delivery check then follows the
// rules in order, so a topic an earlier rule allows still arrives.
TEST(AclRules, DenyAllMarksEverySubscription) {
    AclRules rules = parse_ok(R"(
{allow, all, subscribe, ["a/+"]}.
{deny, all}.
)");
    auto c = identity("c");
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/#"), true);  // EMQ's word match
    EXPECT_TRUE(rules.overlaps_subscribe_deny(c, "a/#"));
    EXPECT_FALSE(rules.denies_subscribe_topic(c, "a/b"));
    EXPECT_TRUE(rules.denies_subscribe_topic(c, "a/b/c"));
}

TEST(AclRules, EqIsLiteral) {
    AclRules rules = parse_ok(R"(
{deny, all, subscribe, [{eq, "a/+"}]}.
{allow, all}.
)");
    auto c = identity("c");
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/+"), false);
    EXPECT_EQ(decide(rules, c, Access::Subscribe, "a/b"), true);
}

TEST(AclRules, SingleTopicAndDenyAll) {
    AclRules rules = parse_ok("{allow, all, publish, \"t\"}.\n{deny, all}.");
    EXPECT_EQ(decide(rules, identity("c"), Access::Publish, "t"), true);
    EXPECT_EQ(decide(rules, identity("c"), Access::Subscribe, "t"), false);
    EXPECT_EQ(parse_ok("").size(), 0u);
    EXPECT_EQ(parse_ok("% only a comment\n").size(), 0u);
}

TEST(AclRules, ErrorsCarryLineNumbers) {
    EXPECT_EQ(parse_error("{allow, all}.\n\n{allow, {user, \"a\"}, publish, [\"t\"]\n."),
              "acl.conf:4: expected ',' or '}'");
    EXPECT_EQ(parse_error("{allow, all}\n{deny, all}."), "acl.conf:2: expected '.' after the rule");
    EXPECT_EQ(parse_error("\n\n{permit, all}."), "acl.conf:3: expected allow or deny");
    EXPECT_EQ(parse_error("{allow, {user, \"a\"}, write, [\"t\"]}."),
              "acl.conf:1: expected subscribe, publish or pubsub");
    EXPECT_EQ(parse_error("{allow, {ipaddr, \"300.1.1.1\"}, publish, [\"t\"]}."),
              "acl.conf:1: bad address \"300.1.1.1\"");
    EXPECT_EQ(parse_error("{allow, {ipaddr, \"10.0.0.0/33\"}, publish, [\"t\"]}."),
              "acl.conf:1: bad address \"10.0.0.0/33\"");
    EXPECT_EQ(parse_error("{allow, {group, \"a\"}, publish, [\"t\"]}."),
              "acl.conf:1: unknown who 'group'");
    EXPECT_EQ(parse_error("{allow, all, publish, [\"a/#/b\"]}."),
              "acl.conf:1: bad topic filter \"a/#/b\"");
    EXPECT_EQ(parse_error("\n{allow, all, publish, [\"unterminated]}."),
              "acl.conf:2: unterminated string");
    EXPECT_EQ(parse_error("{allow, all, publish, [\"t\"]}. $"),
              "acl.conf:1: unexpected character '$'");
    EXPECT_EQ(parse_error("{allow, foo}."),
              "acl.conf:1: a two-element rule must be {allow|deny, all}");
    EXPECT_EQ(parse_error("{allow, all, publish"), "acl.conf:1: expected ',' or '}'");
    std::string deep(100, '{');
    EXPECT_EQ(parse_error(deep), "acl.conf:1: terms nested too deeply");
}

TEST(AclFile, ReloadIsAtomicAndKeepsOldRulesOnError) {
    testing::TempDir dir;
    std::string path = dir.path() + "/acl.conf";
    int changes = 0;
    AclFile file(path, [&] { ++changes; });
    EXPECT_FALSE(file.reload().ok());  // missing file
    EXPECT_EQ(file.rules()->size(), 0u);
    { std::ofstream(path) << kDefault; }
    auto r = file.reload();
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(*r, 4u);
    EXPECT_EQ(changes, 1);
    { std::ofstream(path) << "{allow, all}.\n{deny, all, publish, [\"x\"]\n"; }
    auto bad = file.reload();
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error(), "acl.conf:3: expected ',' or '}'");
    EXPECT_EQ(file.rules()->size(), 4u);
    EXPECT_EQ(changes, 1);

    auto remote = identity("c", "eve", std::nullopt, "10.1.1.2");
    auto d = testing::wait_decision(
            [&](DecisionCallback cb) { file.check(remote, Access::Subscribe, "#", cb); });
    ASSERT_TRUE(d.called);
    EXPECT_EQ(d.decision.verdict, Verdict::Deny);
    EXPECT_EQ(d.decision.reason, "acl.conf line 7");
    EXPECT_EQ(file.verdict_now(remote, Access::Subscribe, "#"), Verdict::Deny);
    ASSERT_TRUE(file.load_text("{deny, {user, \"x\"}, publish, [\"t\"]}.", "upload").ok());
    d = testing::wait_decision(
            [&](DecisionCallback cb) { file.check(remote, Access::Subscribe, "#", cb); });
    EXPECT_EQ(d.decision.verdict, Verdict::Ignore);
    EXPECT_EQ(file.verdict_now(remote, Access::Subscribe, "#"), Verdict::Ignore);
    EXPECT_EQ(file.verdict_now(identity("c", "x"), Access::Publish, "t"), Verdict::Deny);
}

TEST(AclCache, LruBoundedClearAndEpoch) {
    AclCache cache(2);
    EXPECT_EQ(cache.get("a", 1), std::nullopt);
    cache.put("a", true, 1);
    cache.put("b", false, 1);
    EXPECT_EQ(cache.get("a", 1), true);  // a is now most recent
    cache.put("c", true, 1);             // evicts b
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_EQ(cache.get("b", 1), std::nullopt);
    EXPECT_EQ(cache.get("c", 1), true);
    cache.clear("c");
    EXPECT_EQ(cache.get("c", 1), std::nullopt);
    EXPECT_EQ(cache.get("a", 1), true);
    EXPECT_EQ(cache.get("a", 2), std::nullopt);  // new epoch: stale entries dropped
    EXPECT_EQ(cache.size(), 0u);
    cache.put("a", false, 2);
    cache.clear_all();
    EXPECT_EQ(cache.size(), 0u);
    // Topics of one length, told apart by their bytes.
    AclCache many(32);
    for (int i = 0; i < 32; ++i) {
        many.put("t/" + std::to_string(i % 10) + std::to_string(i / 10), i % 2 == 0, 1);
    }
    for (int i = 0; i < 32; ++i) {
        EXPECT_EQ(many.get("t/" + std::to_string(i % 10) + std::to_string(i / 10), 1), i % 2 == 0);
    }
    EXPECT_EQ(many.get("t/99", 1), std::nullopt);
    AclCache off(0);
    off.put("a", true, 1);
    EXPECT_EQ(off.get("a", 1), std::nullopt);
}

TEST(AclFile, ShippedDefaultParses) {
    AclFile file(std::string(MQTTD_SOURCE_DIR) + "/data/acl.conf");
    auto r = file.reload();
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(*r, 4u);
}

}  // namespace
}  // namespace mqttd::broker::auth
