// 03 SUBSCRIBE / UNSUBSCRIBE, topic filters and wildcards (MQTT 3.1.1 sections 3.8-3.11, 4.7).
#include <csignal>
#include <fstream>
#include <memory>
#include <set>

#include <poll.h>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

// Reads QoS 0 publishes until `quiet` passes with nothing; returns their topics.
std::set<std::string> drain_topics(RawClient& c, std::chrono::milliseconds quiet = kQuiet) {
    std::set<std::string> topics;
    for (;;) {
        auto p = c.next(quiet);
        if (!p) {
            return topics;
        }
        if (p->type() != kPublish) {
            ADD_FAILURE() << "expected PUBLISH, got " << describe(*p);
            continue;
        }
        auto m = parse_publish(*p);
        EXPECT_TRUE(topics.insert(m.topic).second) << "delivered twice: " << m.topic;
    }
}

struct MatchCase {
    std::string filter;
    std::set<std::string> matches;
};

// [MQTT-4.7.1-2] '#' matches the parent level and any number of child levels; [MQTT-4.7.1-3]
// '+' matches exactly one level (also an empty one); examples of MQTT 3.1.1 section 4.7.1.
TEST(Subscribe, WildcardMatching_MQTT_4_7_1_2_MQTT_4_7_1_3) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    const std::vector<std::string> topics = {
            "sport",
            "sport/",
            "sport/tennis",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
            "/finance",
            "finance",
            "a",
            "a/b",
            "a/b/c",
            "a//c",
            "/",
    };
    const std::vector<MatchCase> cases = {
            {"sport/tennis/player1/#",
             {"sport/tennis/player1", "sport/tennis/player1/ranking",
              "sport/tennis/player1/score/wimbledon"}},
            {"sport/#",
             {"sport", "sport/", "sport/tennis", "sport/tennis/player1",
              "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"}},
            {"#", std::set<std::string>(topics.begin(), topics.end())},
            {"sport/tennis/+", {"sport/tennis/player1"}},
            {"sport/+", {"sport/", "sport/tennis"}},
            {"+", {"sport", "finance", "a"}},
            {"+/+", {"sport/", "sport/tennis", "/finance", "a/b", "/"}},
            {"/+", {"/finance", "/"}},
            {"a/#", {"a", "a/b", "a/b/c", "a//c"}},
            {"a/+/c", {"a/b/c", "a//c"}},
            {"+/b/#", {"a/b", "a/b/c"}},
            {"a/b", {"a/b"}},
            {"sport/tennis/player1/#/", {}},  // invalid; must not match anything
    };
    std::vector<std::unique_ptr<RawClient>> subs;
    for (size_t i = 0; i < cases.size(); ++i) {
        auto c = std::make_unique<RawClient>();
        c->connect_ok(broker.port(), num("wc", i));
        auto granted = c->subscribe(cases[i].filter, 0);
        if (i + 1 < cases.size()) {
            EXPECT_EQ(granted, Bytes{0}) << cases[i].filter;
        }
        subs.push_back(std::move(c));
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "wc-pub");
    for (const auto& t : topics) {
        pub.publish(t, t, 1);
    }
    for (size_t i = 0; i < cases.size(); ++i) {
        EXPECT_EQ(drain_topics(*subs[i]), cases[i].matches) << "filter " << cases[i].filter;
    }
}

// [MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$';
// an explicit "$..." filter does.
TEST(Subscribe, DollarTopicsNotMatchedByLeadingWildcards_MQTT_4_7_2_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient hash;
    hash.connect_ok(broker.port(), "d-hash");
    hash.subscribe({{"#", 0}, {"+/x", 0}, {"+/+", 0}, {"+", 0}});
    RawClient dollar;
    dollar.connect_ok(broker.port(), "d-dollar");
    dollar.subscribe({{"$test/#", 0}});
    RawClient plus;
    plus.connect_ok(broker.port(), "d-plus");
    plus.subscribe({{"$test/+", 0}});
    RawClient pub;
    pub.connect_ok(broker.port(), "d-pub");
    pub.publish("$test/x", "dollar", 1);
    pub.publish("normal/x", "normal", 1);
    EXPECT_EQ(drain_topics(hash), std::set<std::string>{"normal/x"});
    EXPECT_EQ(drain_topics(dollar), std::set<std::string>{"$test/x"});
    EXPECT_EQ(drain_topics(plus), std::set<std::string>{"$test/x"});
}

// Invalid topic filters ([MQTT-4.7.1-2] '#' not last / not a whole level, [MQTT-4.7.1-3] '+'
// not a whole level) get the failure return code 0x80 in the SUBACK, next to a valid one, and
// [MQTT-3.8.4-5] one return code per filter, in order.
TEST(Subscribe, InvalidFiltersGetSuback0x80_MQTT_4_7_1_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "badfilter");
    auto granted = c.subscribe({{"a/#/b", 1},
                                {"ok/+", 1},
                                {"a#", 0},
                                {"a/b+", 2},
                                {"+a/b", 0},
                                {"ok/#", 2},
                                {"#/", 1}});
    EXPECT_EQ(granted, (Bytes{0x80, 1, 0x80, 0x80, 0x80, 2, 0x80}));
    // The connection keeps working and the valid subscriptions are active.
    RawClient pub;
    pub.connect_ok(broker.port(), "badfilter-pub");
    pub.publish("ok/x", "fine", 1);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "fine");
    EXPECT_EQ(m->qos, 1);
    c.expect_silence();
}

// [MQTT-3.8.3-4] requested QoS 3 (or reserved bits) is malformed: close.
TEST(Subscribe, RequestedQos3ClosesConnection_MQTT_3_8_3_4) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    for (uint8_t bad : {uint8_t{3}, uint8_t{0x05}}) {
        RawClient c;
        c.connect_ok(broker.port(), "qos3");
        c.send(pkt::subscribe(1, {{"x", bad}}));
        int skipped = 0;
        EXPECT_TRUE(c.wait_closed(kWait, &skipped)) << "options byte " << int{bad};
        EXPECT_EQ(skipped, 0) << "options byte " << int{bad};
    }
}

// [MQTT-3.8.1-1] SUBSCRIBE fixed header flags must be 0010.
TEST(Subscribe, WrongFixedHeaderFlagsCloseConnection_MQTT_3_8_1_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "subflags");
    Bytes bad = pkt::subscribe(1, {{"x", 0}});
    bad[0] = 0x80;
    c.send(bad);
    int skipped = 0;
    EXPECT_TRUE(c.wait_closed(kWait, &skipped));
    EXPECT_EQ(skipped, 0);
}

// [MQTT-3.8.3-3] a SUBSCRIBE without any filter is a protocol violation.
TEST(Subscribe, EmptySubscribeClosesConnection_MQTT_3_8_3_3) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "subempty");
    c.send(pkt::subscribe(1, {}));
    int skipped = 0;
    EXPECT_TRUE(c.wait_closed(kWait, &skipped));
    EXPECT_EQ(skipped, 0);
}

// [MQTT-2.3.1-1] SUBSCRIBE needs a non-zero packet id.
TEST(Subscribe, ZeroPacketIdClosesConnection_MQTT_2_3_1_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "subzero");
    c.send(pkt::subscribe(0, {{"x", 0}}));
    int skipped = 0;
    EXPECT_TRUE(c.wait_closed(kWait, &skipped));
    EXPECT_EQ(skipped, 0);
}

// [MQTT-4.7.3-1] an empty topic filter is not valid: either SUBACK 0x80 or a close.
TEST(Subscribe, EmptyFilterRejected_MQTT_4_7_3_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "emptyfilter");
    c.send(pkt::subscribe(3, {{"", 0}}));
    auto p = c.read();
    if (p) {
        ASSERT_EQ(p->type(), kSuback) << describe(*p);
        EXPECT_EQ(p->body, (Bytes{0, 3, 0x80}));
    } else {
        EXPECT_TRUE(c.closed());
    }
}

// [MQTT-3.10.4-4] UNSUBACK with the same id; [MQTT-3.10.4-2] no more deliveries;
// [MQTT-3.10.4-5] UNSUBACK also when nothing was subscribed.
TEST(Unsubscribe, StopsDeliveryAndIsAcknowledged_MQTT_3_10_4_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "unsub");
    c.subscribe({{"un/a", 1}, {"un/b", 1}});
    RawClient pub;
    pub.connect_ok(broker.port(), "unsub-pub");
    pub.publish("un/a", "1", 1);
    ASSERT_TRUE(c.receive_and_ack());
    c.unsubscribe({"un/a"}, 0x4242);
    pub.publish("un/a", "2", 1);
    pub.publish("un/b", "3", 1);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "un/b") << "[MQTT-3.10.4-2] delivery after UNSUBSCRIBE";
    c.expect_silence();
    c.unsubscribe({"never/subscribed"});  // [MQTT-3.10.4-5]
}

// [MQTT-3.10.4-1] UNSUBSCRIBE compares filters character by character: "un/x" does not remove
// the subscription "un/+".
TEST(Unsubscribe, ComparesFiltersLiterally_MQTT_3_10_4_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "unsub-lit");
    c.subscribe("un/+", 1);
    c.unsubscribe({"un/x"});
    RawClient pub;
    pub.connect_ok(broker.port(), "unsub-lit-pub");
    pub.publish("un/x", "still", 1);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "still");
    c.unsubscribe({"un/+"});
    pub.publish("un/x", "gone", 1);
    c.expect_silence();
}

// [MQTT-3.10.1-1] UNSUBSCRIBE fixed header flags must be 0010.
TEST(Unsubscribe, WrongFixedHeaderFlagsCloseConnection_MQTT_3_10_1_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "unsubflags");
    Bytes bad = pkt::unsubscribe(1, {"x"});
    bad[0] = 0xa0;
    c.send(bad);
    int skipped = 0;
    EXPECT_TRUE(c.wait_closed(kWait, &skipped));
    EXPECT_EQ(skipped, 0);
}

// [MQTT-3.8.4-3] a SUBSCRIBE with an existing filter replaces the subscription (new QoS), and
// does not create a second one.
TEST(Subscribe, ResubscribeReplacesSubscription_MQTT_3_8_4_3) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "resub");
    EXPECT_EQ(c.subscribe("rs/t", 0), Bytes{0});
    EXPECT_EQ(c.subscribe("rs/t", 2), Bytes{2});
    RawClient pub;
    pub.connect_ok(broker.port(), "resub-pub");
    pub.publish("rs/t", "x", 2);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->qos, 2);
    c.expect_silence();
    EXPECT_EQ(c.subscribe("rs/t", 1), Bytes{1});
    pub.publish("rs/t", "y", 2);
    m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->qos, 1);
    c.expect_silence();
}

// A client receives its own publications (MQTT 3.1.1 has no no-local option).
TEST(Subscribe, PublisherReceivesOwnMessage) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient c;
    c.connect_ok(broker.port(), "self");
    c.subscribe("self/t", 1);
    c.publish("self/t", "me", 1);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "me");
}

// libmosquitto with wildcard filters.
TEST(Subscribe, LibmosquittoWildcards) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    MosqClient sub("mosq-wc");
    ASSERT_EQ(sub.connect(broker.port()), 0);
    EXPECT_EQ(sub.subscribe("home/+/temp", 1), std::vector<int>{1});
    EXPECT_EQ(sub.subscribe("office/#", 1), std::vector<int>{1});
    MosqClient pub("mosq-wc-pub");
    ASSERT_EQ(pub.connect(broker.port()), 0);
    pub.publish("home/kitchen/temp", "21", 1);
    pub.publish("home/kitchen/humidity", "40", 1);
    pub.publish("office", "o", 1);
    pub.publish("office/desk/lamp", "on", 1);
    std::set<std::string> got;
    for (int i = 0; i < 3; ++i) {
        auto m = sub.wait_message();
        ASSERT_TRUE(m) << "message " << i;
        got.insert(m->topic);
    }
    EXPECT_EQ(got, (std::set<std::string>{"home/kitchen/temp", "office", "office/desk/lamp"}));
    EXPECT_FALSE(sub.wait_message(kQuiet));
}

// Shared subscriptions (MQTT 5 4.8.2; EMQ 2.x also takes "$share/" from 3.1.1 clients): each
// message goes to one member of the group, the plain subscribers get theirs as usual, and a
// new shared subscription gets no retained messages.
TEST(Subscribe, SharedSubscriptionDeliversEachMessageToOneMember) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "sh-pub");
    pub.publish("sh/retained", "kept", 1, true);
    RawClient m1;
    RawClient m2;
    RawClient plain;
    m1.connect_ok(broker.port(), "sh-m1");
    m2.connect_ok(broker.port(), "sh-m2");
    plain.connect_ok(broker.port(), "sh-plain");
    EXPECT_EQ(m1.subscribe("$share/grp/sh/#", 1), std::vector<uint8_t>{1});
    EXPECT_EQ(m2.subscribe("$share/grp/sh/#", 1), std::vector<uint8_t>{1});
    EXPECT_EQ(plain.subscribe("sh/#", 1), std::vector<uint8_t>{1});
    auto m = plain.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "sh/retained");
    constexpr int kMessages = 20;
    for (int i = 0; i < kMessages; ++i) {
        pub.publish(num("sh/n/", i), num("p", i), 1);
    }
    std::set<std::string> seen;
    int per_member[2] = {0, 0};
    RawClient* members[2] = {&m1, &m2};
    for (int k = 0; k < 2; ++k) {
        while (auto packet = members[k]->next(300ms)) {
            ASSERT_EQ(packet->type(), kPublish);
            auto p = parse_publish(*packet);
            members[k]->ack(p);
            EXPECT_NE(p.topic, "sh/retained") << "no retained message for a shared subscription";
            EXPECT_TRUE(seen.insert(p.topic).second) << "delivered to both members: " << p.topic;
            ++per_member[k];
        }
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(kMessages)) << "each message to one member";
    EXPECT_GT(per_member[0], 0);
    EXPECT_GT(per_member[1], 0);
    for (int i = 0; i < kMessages; ++i) {
        auto p = plain.receive_and_ack();
        ASSERT_TRUE(p) << "plain subscriber, message " << i;
    }
    // Unsubscribing the shared filter leaves the other member alone in the group.
    m1.unsubscribe({"$share/grp/sh/#"});
    pub.publish("sh/after", "x", 1);
    auto p = m2.receive_and_ack();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->topic, "sh/after");
    m1.expect_silence(300ms);
}

// A real MQTT 5 client (mosquitto_sub -V 5) subscribes to a shared filter and receives.
TEST(Subscribe, SharedSubscriptionWithMosquittoSubV5) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    std::string port = std::to_string(broker.port());
    Child sub = spawn_child({"mosquitto_sub", "-V", "5", "-h", "127.0.0.1", "-p", port, "-t",
                             "$share/cli/shcli/#", "-q", "1", "-C", "3", "-F", "%t %p"});
    RawClient pub;
    pub.connect_ok(broker.port(), "shcli-pub");
    // Publish until the subscriber has had its three messages (it subscribes asynchronously).
    int sent = 0;
    EXPECT_TRUE(eventually(
            [&] {
                pub.publish("shcli/t", "m", 1);
                ++sent;
                return child_exited(sub);
            },
            8s));
    std::string out = finish_child(sub);
    EXPECT_EQ(out, "shcli/t m\nshcli/t m\nshcli/t m\n") << "after " << sent << " publishes";
    EXPECT_EQ(sub.status, 0);
}

// MQTT 5 3.3.2.3.8: a PUBLISH matched by a subscription made with a Subscription Identifier
// carries it (mosquitto_sub -V 5 prints it with %S).
TEST(Subscribe, SubscriptionIdentifierIsSentWithMatchingMessages) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "sid-pub");
    pub.publish("sid/retained", "r", 1, true);
    Child sub =
            spawn_child({"mosquitto_sub", "-V", "5", "-h", "127.0.0.1", "-p",
                         std::to_string(broker.port()), "-t", "sid/#", "-q", "1", "-D", "subscribe",
                         "subscription-identifier", "300", "-C", "2", "-F", "%t %p sid=%S"});
    pollfd pfd{sub.out_fd, POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "no retained message";
    pub.publish("sid/live", "l", 1);
    EXPECT_EQ(finish_child(sub, 5s), "sid/retained r sid=300\nsid/live l sid=300\n");
}

// ACL file semantics for SUBSCRIBE (EMQ 2.x, compatibility contract): with a deny of one exact
// topic, "#" and "+/+" are granted and only the topic itself is refused (0x80). Beyond EMQ, a
// message on the denied topic does not reach the broad subscriptions either: not live, not
// from an offline session's queue, not as a retained message; and an ACL reload applies to
// existing subscriptions.
TEST(Subscribe, AclDenyOfOneTopicGrantsWildcardsButWithholdsTheTopic) {
    TempDir dir;
    const std::string acl = dir.path() + "/acl.conf";
    std::ofstream(acl) << "{deny, all, subscribe, [\"test/nosubscribe\"]}.\n{allow, all}.\n";
    BrokerProcess broker({"mqtt.acl_file=" + acl});
    ASSERT_TRUE(broker.running());
    RawClient pub;
    pub.connect_ok(broker.port(), "acl-pub");
    pub.publish("test/nosubscribe", "retained secret", 1, true);
    pub.publish("test/open", "retained open", 1, true);

    RawClient all;
    all.connect_ok(broker.port(), "acl-all", false);
    EXPECT_EQ(all.subscribe({{"#", 1}, {"+/+", 1}, {"test/nosubscribe", 1}}),
              (std::vector<uint8_t>{1, 1, 0x80}));
    for (const char* filter : {"#", "+/+"}) {  // the retained messages of each filter
        auto retained = all.receive_and_ack();
        ASSERT_TRUE(retained) << filter;
        EXPECT_EQ(retained->payload, "retained open") << filter;
    }
    all.expect_silence();

    pub.publish("test/nosubscribe", "live secret", 1);
    pub.publish("test/open", "live open", 1);
    auto live = all.receive_and_ack();
    ASSERT_TRUE(live);
    EXPECT_EQ(live->payload, "live open");
    all.expect_silence();

    all.disconnect();
    pub.publish("test/nosubscribe", "queued secret", 1);
    pub.publish("test/open", "queued open", 1);
    RawClient back;
    EXPECT_TRUE(back.connect_ok(broker.port(), "acl-all", false));
    auto queued = back.receive_and_ack();
    ASSERT_TRUE(queued);
    EXPECT_EQ(queued->payload, "queued open");
    back.expect_silence();

    // A reload that denies test/open too: the existing "#" subscription stops receiving it.
    std::ofstream(acl, std::ios::trunc)
            << "{deny, all, subscribe, [\"test/nosubscribe\", \"test/open\"]}.\n{allow, all}.\n";
    ASSERT_EQ(::kill(broker.pid(), SIGHUP), 0);
    EXPECT_TRUE(eventually(
            [&] { return broker.log_text().find("ACL reloaded") != std::string::npos; }));
    pub.publish("test/open", "after reload", 1);
    pub.publish("test/other", "still open", 1);
    auto after = back.receive_and_ack();
    ASSERT_TRUE(after);
    EXPECT_EQ(after->payload, "still open");
    back.expect_silence();
}

}  // namespace
}  // namespace mqttd::itest
