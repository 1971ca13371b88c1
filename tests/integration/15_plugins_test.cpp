// emq_web_hook against a test HTTP server (every event, its fields, retries, run-time stop)
// and emq_modules (presence messages, auto subscriptions with %c, topic rewrite), including a
// restart that keeps their state and config.
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "auth_fixture.h"

namespace mqttd::authtest {
namespace {

using itest::RawClient;

// The first hook event with `action` whose JSON body satisfies `pred`.
std::optional<Json> wait_event(HttpServer& srv,
                               const std::string& action,
                               const std::function<bool(const Json&)>& pred = {},
                               std::chrono::milliseconds timeout = 5000ms) {
    std::optional<Json> found;
    srv.wait_for(
            "/hook",
            [&](const HttpRequest& r) {
                Json j = Json::parse(r.body, nullptr, false);
                if (j.is_object() && j.value("action", std::string()) == action &&
                    (!pred || pred(j))) {
                    found = j;
                    return true;
                }
                return false;
            },
            timeout);
    if (!found) {
        ADD_FAILURE() << "no " << action << " event";
    }
    return found;
}

size_t count_events(HttpServer& srv, const std::string& action, const std::string& client) {
    size_t n = 0;
    for (const auto& r : srv.requests_to("/hook")) {
        Json j = Json::parse(r.body, nullptr, false);
        if (j.is_object() && j.value("action", std::string()) == action &&
            (j.value("client_id", std::string()) == client ||
             j.value("from_client_id", std::string()) == client)) {
            ++n;
        }
    }
    return n;
}

TEST_F(AuthIt, WebHookEventsFieldsAndRetries) {
    HttpServer srv;
    ASSERT_NO_FATAL_FAILURE(start_broker("{allow, all}.\n"));
    configure("emq_web_hook", {{"web.hook.api.url", srv.url("/hook")}});
    EXPECT_EQ(set_plugin("emq_web_hook", true), 0);

    auto by_client = [](const std::string& id) {
        return [id](const Json& j) {
            return j.value("client_id", std::string()) == id;
        };
    };
    RawClient sub;
    ASSERT_EQ(connect_rc(sub, port(), "hook-sub", "su", "pw"), 0);
    auto e = wait_event(srv, "client_connected", by_client("hook-sub"));
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["username"], "su");
    EXPECT_EQ((*e)["conn_ack"], 0);
    EXPECT_TRUE((*e)["ts"].is_number());
    auto req = srv.requests_to("/hook").front();
    EXPECT_EQ(req.method, "POST");
    EXPECT_NE(req.headers["content-type"].find("application/json"), std::string::npos);
    EXPECT_TRUE(wait_event(srv, "session_created", by_client("hook-sub")));

    ASSERT_EQ(sub.subscribe({{"h/#", 1}}), std::vector<uint8_t>{1});
    e = wait_event(srv, "client_subscribe", by_client("hook-sub"));
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["topic"], "h/#");

    RawClient pub;
    ASSERT_EQ(connect_rc(pub, port(), "hook-pub", "pu", "pw"), 0);
    pub.publish("h/1", "hello", 1);
    auto m = sub.receive_and_ack();
    ASSERT_TRUE(m);
    e = wait_event(srv, "message_publish",
                   [](const Json& j) { return j.value("topic", std::string()) == "h/1"; });
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["from_client_id"], "hook-pub");
    EXPECT_EQ((*e)["payload"], "hello");
    EXPECT_EQ((*e)["qos"], 1);
    EXPECT_EQ((*e)["retain"], false);
    e = wait_event(srv, "message_delivered", by_client("hook-sub"));
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["from_client_id"], "hook-pub");
    EXPECT_EQ((*e)["topic"], "h/1");
    e = wait_event(srv, "message_acked", by_client("hook-sub"));
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["topic"], "h/1");

    sub.unsubscribe({"h/#"});
    e = wait_event(srv, "client_unsubscribe", by_client("hook-sub"));
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["topic"], "h/#");
    sub.disconnect();
    EXPECT_TRUE(wait_event(srv, "client_disconnected", by_client("hook-sub")));
    EXPECT_TRUE(wait_event(srv, "session_terminated", by_client("hook-sub")));

    // Retries: the first two POSTs of this event fail, the third is taken.
    std::atomic<int> failures{0};
    srv.set_responder([&failures](const HttpRequest& r) {
        if (r.body.find("\"h/retry\"") != std::string::npos && failures.fetch_add(1) < 2) {
            return reply(500, "try again");
        }
        return reply(200, "");
    });
    pub.publish("h/retry", "again", 0);
    EXPECT_TRUE(itest::eventually(
            [&] {
                size_t n = 0;
                for (const auto& r : srv.requests_to("/hook")) {
                    n += r.body.find("\"h/retry\"") != std::string::npos ? 1 : 0;
                }
                return n == 3;
            },
            5s))
            << "two failed POSTs and one retry that succeeds";

    // Stopped at run time: the next CONNECT sends nothing.
    EXPECT_EQ(set_plugin("emq_web_hook", false), 0);
    RawClient late;
    ASSERT_EQ(connect_rc(late, port(), "hook-late"), 0);
    late.publish("h/late", "x", 1);
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(count_events(srv, "client_connected", "hook-late"), 0u);
    EXPECT_EQ(count_events(srv, "message_publish", "hook-late"), 0u);
}

// EMQ 2.x's web hook sends the subscription's QoS in client.subscribe ("opts": {"qos": 1})
// and the publisher's username in message.* ("from_username").
TEST_F(AuthIt, WebHookSubscribeQosAndPublisherUsername) {
    HttpServer srv;
    ASSERT_NO_FATAL_FAILURE(start_broker("{allow, all}.\n"));
    configure("emq_web_hook", {{"web.hook.api.url", srv.url("/hook")}});
    EXPECT_EQ(set_plugin("emq_web_hook", true), 0);
    RawClient sub;
    ASSERT_EQ(connect_rc(sub, port(), "q-sub", "su", "pw"), 0);
    ASSERT_EQ(sub.subscribe({{"q/#", 1}}), std::vector<uint8_t>{1});
    auto e = wait_event(srv, "client_subscribe");
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["opts"]["qos"], 1) << "client.subscribe: the requested QoS";
    RawClient pub;
    ASSERT_EQ(connect_rc(pub, port(), "q-pub", "pu", "pw"), 0);
    pub.publish("q/1", "x", 1);
    ASSERT_TRUE(sub.receive_and_ack());
    for (const char* action : {"message_publish", "message_delivered", "message_acked"}) {
        e = wait_event(srv, action);
        ASSERT_TRUE(e);
        EXPECT_EQ((*e)["from_username"], "pu") << action << ": the publisher's username";
    }
}

// Publishes to `topic` until `target` receives it (an auto subscription is made just after
// CONNACK, so the first publish may race it).
std::optional<itest::Publish> deliver_to(RawClient& from,
                                         RawClient& target,
                                         const std::string& topic) {
    for (int i = 0; i < 5; ++i) {
        from.publish(topic, "to-inbox", 1);
        if (auto p = target.read(800ms)) {
            if (p->type() == itest::kPublish) {
                auto pub = itest::parse_publish(*p);
                target.ack(pub);
                return pub;
            }
        }
    }
    return std::nullopt;
}

TEST_F(AuthIt, ModulesPresenceAutoSubscriptionRewriteAndRestart) {
    ASSERT_NO_FATAL_FAILURE(start_broker("{allow, all}.\n"));
    configure("emq_modules", {{"module.subscription.1.topic", "inbox/%c"},
                              {"module.subscription.1.qos", "1"},
                              {"module.rewrite.rule.1", "old/# ^old/(.+)$ new/$1"}});
    RawClient watch;
    ASSERT_EQ(connect_rc(watch, port(), "watch"), 0);
    ASSERT_EQ(watch.subscribe({{"$SYS/brokers/+/clients/#", 0}, {"new/#", 0}, {"old/#", 0}}),
              (std::vector<uint8_t>{0, 0, 0}));
    EXPECT_EQ(set_plugin("emq_modules", true), 0);
    const std::string prefix = "$SYS/brokers/" + node() + "/clients/";

    RawClient p1;
    ASSERT_EQ(connect_rc(p1, port(), "p1", "pu", "x"), 0);
    auto m = watch.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, prefix + "p1/connected");
    Json j = Json::parse(m->payload, nullptr, false);
    EXPECT_EQ(j["clientid"], "p1");
    EXPECT_EQ(j["username"], "pu");
    EXPECT_EQ(j["ipaddress"], "127.0.0.1");
    EXPECT_EQ(j["connack"], 0);
    EXPECT_FALSE(m->retain);

    auto in = deliver_to(watch, p1, "inbox/p1");
    ASSERT_TRUE(in) << "auto subscription inbox/%c";
    EXPECT_EQ(in->topic, "inbox/p1");

    // Rewrite: old/x is published as new/x (and watch's "old/#" predates the rule).
    p1.publish("old/x", "moved", 0);
    m = watch.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "new/x");
    EXPECT_EQ(m->payload, "moved");

    p1.disconnect();
    m = watch.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, prefix + "p1/disconnected");
    EXPECT_EQ(Json::parse(m->payload, nullptr, false)["clientid"], "p1");

    // A restart keeps the plugin started and its config.
    watch.close();
    broker_->restart();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    EXPECT_EQ(plugin_active("emq_modules"), std::optional<bool>(true));
    EXPECT_EQ(plugin_value("emq_modules", "module.subscription.1.topic"), "inbox/%c");
    ASSERT_EQ(connect_rc(watch, port(), "watch"), 0);
    ASSERT_EQ(watch.subscribe({{"$SYS/brokers/+/clients/#", 0}}), std::vector<uint8_t>{0});
    RawClient p2;
    ASSERT_EQ(connect_rc(p2, port(), "p2"), 0);
    m = watch.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, prefix + "p2/connected");
    EXPECT_TRUE(deliver_to(watch, p2, "inbox/p2"));

    // Stopped at run time: no presence, no auto subscription for the next client.
    EXPECT_EQ(set_plugin("emq_modules", false), 0);
    RawClient p3;
    ASSERT_EQ(connect_rc(p3, port(), "p3"), 0);
    watch.publish("inbox/p3", "nobody", 1);
    p3.expect_silence();
    watch.expect_silence();
}

}  // namespace
}  // namespace mqttd::authtest
