#include "broker/auth/web_hook.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http_server.h"
#include "sockets.h"

namespace mqttd::broker::auth {
namespace {

using test::HttpRequest;
using test::HttpServer;

HookEventData event(HookEvent e, std::string client_id = "c", std::string topic = {}) {
    HookEventData d;
    d.event = e;
    d.client_id = std::move(client_id);
    d.topic = std::move(topic);
    return d;
}

WebHookConfig config_for(const std::string& url) {
    WebHookConfig c;
    EXPECT_EQ(c.set("web.hook.api.url", url), "");
    EXPECT_EQ(c.set("web.hook.rule.client.connected.1", R"({"action": "on_client_connected"})"),
              "");
    EXPECT_EQ(c.set("web.hook.rule.message.publish.1",
                    R"({"action": "on_message_publish", "topic": "sensors/#"})"),
              "");
    c.backoff = std::chrono::milliseconds(10);
    return c;
}

TEST(WebHookConfig, Rules) {
    WebHookConfig c;
    EXPECT_NE(c.set("web.hook.rule.client.bogus.1", R"({"action":"x"})"), "");
    EXPECT_NE(c.set("web.hook.rule.client.connected.1", "not json"), "");
    EXPECT_NE(c.set("web.hook.rule.message.publish.1", R"({"action":"x","topic":"a/#/b"})"), "");
    EXPECT_NE(c.set("web.hook.api.url", "file:///etc/passwd"), "");
    EXPECT_EQ(hook_event_name(HookEvent::MessageAcked), "message.acked");
    EXPECT_EQ(hook_event_from_name("session.created"), HookEvent::SessionCreated);
}

TEST(WebHook, SelectsEventsAndTopics) {
    WebHook hook(config_for("http://127.0.0.1:1/"));
    EXPECT_TRUE(hook.wants(HookEvent::ClientConnected));
    EXPECT_FALSE(hook.wants(HookEvent::ClientDisconnected));
    EXPECT_TRUE(hook.wants(HookEvent::MessagePublish, "sensors/1"));
    EXPECT_FALSE(hook.wants(HookEvent::MessagePublish, "other"));
    EXPECT_FALSE(hook.emit(event(HookEvent::ClientDisconnected)));
}

TEST(WebHook, BodiesUseEmqFieldNames) {
    HookEventData d;
    d.event = HookEvent::MessageDelivered;
    d.client_id = "sub";
    d.username = "su";
    d.from_client_id = "pub";
    d.from_username = "pu";
    d.topic = "t";
    d.payload = std::string("hi\xff", 3);
    d.qos = 1;
    d.retain = true;
    d.ts = 1500000000;
    auto j = nlohmann::json::parse(WebHook::body_of(d));
    EXPECT_EQ(j["action"], "message_delivered");
    EXPECT_EQ(j["client_id"], "sub");
    EXPECT_EQ(j["from_client_id"], "pub");
    EXPECT_EQ(j["from_username"], "pu");
    EXPECT_EQ(j["qos"], 1);
    EXPECT_EQ(j["retain"], true);
    EXPECT_EQ(j["payload"], "hi\xEF\xBF\xBD");  // invalid UTF-8 replaced
    EXPECT_EQ(j["ts"], 1500000000);
    HookEventData s = event(HookEvent::ClientSubscribe, "c", "a/+");
    s.qos = 2;
    j = nlohmann::json::parse(WebHook::body_of(s));
    EXPECT_EQ(j["action"], "client_subscribe");
    EXPECT_EQ(j["opts"]["qos"], 2);
}

TEST(WebHook, DeliversToServer) {
    HttpServer server([](const HttpRequest&) { return test::reply(200); });
    WebHook hook(config_for(server.url("/hook")));
    HookEventData c;
    c.event = HookEvent::ClientConnected;
    c.client_id = "c1";
    c.username = "u1";
    EXPECT_TRUE(hook.emit(c));
    HookEventData m;
    m.event = HookEvent::MessagePublish;
    m.from_client_id = "c1";
    m.topic = "sensors/temp";
    m.payload = "21.5";
    EXPECT_TRUE(hook.emit(m));
    m.topic = "not/selected";
    EXPECT_FALSE(hook.emit(m));
    ASSERT_TRUE(server.wait_count(2));
    auto reqs = server.requests();
    EXPECT_EQ(reqs[0].method, "POST");
    EXPECT_EQ(reqs[0].path, "/hook");
    EXPECT_EQ(reqs[0].header("content-type"), "application/json");
    auto j0 = nlohmann::json::parse(reqs[0].body);
    EXPECT_EQ(j0["action"], "client_connected");
    EXPECT_EQ(j0["client_id"], "c1");
    EXPECT_EQ(j0["username"], "u1");
    EXPECT_EQ(j0["conn_ack"], 0);
    EXPECT_GT(j0["ts"].get<int64_t>(), 0);
    auto j1 = nlohmann::json::parse(reqs[1].body);
    EXPECT_EQ(j1["action"], "message_publish");
    EXPECT_EQ(j1["topic"], "sensors/temp");
    EXPECT_EQ(j1["payload"], "21.5");
    for (int i = 0; i < 200 && hook.counters().sent < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(hook.counters().sent, 2u);
}

TEST(WebHook, RetriesThenSucceeds) {
    std::atomic<int> n{0};
    HttpServer server([&](const HttpRequest&) { return test::reply(++n < 3 ? 500 : 200, ""); });
    WebHook hook(config_for(server.url("/hook")));
    EXPECT_TRUE(hook.emit(event(HookEvent::ClientConnected)));
    ASSERT_TRUE(server.wait_count(3));
    for (int i = 0; i < 200 && hook.counters().sent < 1; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto c = hook.counters();
    EXPECT_EQ(c.sent, 1u);
    EXPECT_EQ(c.retried, 2u);
    EXPECT_EQ(c.dropped_failed, 0u);
}

TEST(WebHook, GivesUpAfterRetriesWhenDown) {
    WebHookConfig cfg = config_for("http://127.0.0.1:" + std::to_string(test::free_port()) + "/h");
    cfg.retries = 2;
    WebHook hook(cfg);
    EXPECT_TRUE(hook.emit(event(HookEvent::ClientConnected)));
    for (int i = 0; i < 500 && hook.counters().dropped_failed < 1; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto c = hook.counters();
    EXPECT_EQ(c.dropped_failed, 1u);
    EXPECT_EQ(c.retried, 2u);
    EXPECT_EQ(c.sent, 0u);
}

TEST(WebHook, FullQueueDropsWithoutBlocking) {
    HttpServer server([](const HttpRequest&) { return test::hang(); });
    WebHookConfig cfg = config_for(server.url("/hook"));
    cfg.max_queue = 5;
    cfg.timeout_ms = 200;
    cfg.retries = 0;
    auto hook = std::make_unique<WebHook>(cfg);
    auto start = std::chrono::steady_clock::now();
    int accepted = 0;
    for (int i = 0; i < 100; ++i) {
        accepted += hook->emit(event(HookEvent::ClientConnected)) ? 1 : 0;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
    EXPECT_LE(accepted, 6);
    EXPECT_EQ(hook->counters().dropped_full, static_cast<uint64_t>(100 - accepted));
    hook.reset();  // drops what is queued, waits for the POST in progress
}

}  // namespace
}  // namespace mqttd::broker::auth
