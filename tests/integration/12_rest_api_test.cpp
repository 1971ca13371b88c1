// REST API v2 against the real mqttd binary: real HTTP over a socket (tests/support's
// client), real MQTT clients (libmosquitto, harness.h). One broker is shared by the suite
// (started in SetUpTestSuite); tests that restart the broker or change global settings use
// their own.
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "harness.h"
#include "http_client.h"

namespace mqttd::rest_test {
namespace {

using itest::BrokerProcess;
using Mqtt = itest::MosqClient;
using Json = nlohmann::json;
using test::http;
using namespace std::chrono_literals;

// GET / call with admin:public on the broker's API port; the reply's JSON.
Json get_json(const BrokerProcess& b, const std::string& path) {
    return http(b.api_port(), "GET", path).json();
}
Json call_json(const BrokerProcess& b,
               const std::string& method,
               const std::string& path,
               const std::string& body) {
    return http(b.api_port(), method, path, body).json();
}

constexpr const char* kNode = "mqttd@127.0.0.1";

class RestApi : public ::testing::Test {
protected:
    static void SetUpTestSuite() { broker_ = new BrokerProcess(); }
    static void TearDownTestSuite() {
        delete broker_;
        broker_ = nullptr;
    }
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "---- mqttd log ----\n" << broker_->log_text() << "-------------------\n";
        }
    }
    static uint16_t api() { return broker_->api_port(); }
    static Json get(const std::string& path) { return get_json(*broker_, "/api/v2/" + path); }
    static Json call(const std::string& m, const std::string& path, const std::string& body) {
        return call_json(*broker_, m, "/api/v2/" + path, body);
    }
    static int code(const Json& j) { return j.is_object() ? j.value("code", -1) : -1; }

    static BrokerProcess* broker_;
};

BrokerProcess* RestApi::broker_ = nullptr;

// ---- auth ----

TEST_F(RestApi, BasicAuthIsRequiredWith401AndChallenge) {
    for (const char* auth : {"", "admin:wrong", "nobody:public"}) {
        auto r = http(api(), "GET", "/api/v2/management/nodes", "", auth);
        EXPECT_EQ(r.status, 401) << auth;
        EXPECT_EQ(r.header("www-authenticate"), "Basic realm=\"mqttd\"") << auth;
    }
    auto ok = http(api(), "GET", "/api/v2/management/nodes");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.json()["code"], 0);
}

TEST_F(RestApi, PostAuthNeedsNoBasicAuth) {
    auto ok =
            http(api(), "POST", "/api/v2/auth", R"({"username":"admin","password":"public"})", "");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.json(), Json::parse(R"({"code":0,"result":[]})"));
    auto bad = http(api(), "POST", "/api/v2/auth", R"({"username":"admin","password":"x"})", "");
    EXPECT_EQ(bad.json()["code"], 103);
    EXPECT_EQ(code(http(api(), "POST", "/api/v2/auth", R"({"username":"","password":"x"})", "")
                           .json()),
              104);
    EXPECT_EQ(code(http(api(), "POST", "/api/v2/auth", R"({"username":"admin"})", "").json()), 107);
    EXPECT_EQ(code(http(api(), "POST", "/api/v2/auth", "not json", "").json()), 109);
}

// ---- nodes and monitoring ----

TEST_F(RestApi, ManagementNodes) {
    auto j = get("management/nodes");
    ASSERT_EQ(code(j), 0);
    ASSERT_TRUE(j["result"].is_array());
    ASSERT_EQ(j["result"].size(), 1u);
    const auto& n = j["result"][0];
    EXPECT_EQ(n["name"], kNode);
    for (const char* f : {"version", "sysdescr", "uptime", "datetime", "otp_release"}) {
        EXPECT_TRUE(n[f].is_string()) << f;
    }
    EXPECT_EQ(n["node_status"], "Running");
    EXPECT_NE(n["uptime"].get<std::string>().find("seconds"), std::string::npos);
    EXPECT_EQ(n["datetime"].get<std::string>().size(), 19u);
    EXPECT_EQ(n["otp_release"].get<std::string>().find("GCC"), 0u);

    auto one = get(std::string("management/nodes/") + kNode);
    EXPECT_EQ(code(one), 0);
    EXPECT_TRUE(one["result"].is_object());
    EXPECT_EQ(one["result"]["node_status"], "Running");
    EXPECT_EQ(code(get("management/nodes/other@host")), 101);
    // '@' percent-encoded is the same node.
    EXPECT_EQ(code(get("management/nodes/mqttd%40127.0.0.1")), 0);
}

TEST_F(RestApi, MonitoringNodes) {
    auto j = get("monitoring/nodes");
    ASSERT_EQ(code(j), 0);
    ASSERT_TRUE(j["result"].is_array());
    const auto& n = j["result"][0];
    EXPECT_EQ(n["name"], kNode);
    for (const char* f : {"memory_total", "memory_used"}) {
        ASSERT_TRUE(n[f].is_string()) << f;
        EXPECT_EQ(n[f].get<std::string>().back(), 'M') << f;
    }
    for (const char* f : {"process_available", "process_used", "max_fds", "clients"}) {
        EXPECT_TRUE(n[f].is_number_integer()) << f;
    }
    for (const char* f : {"load1", "load5", "load15"}) {
        ASSERT_TRUE(n[f].is_string()) << f;
        EXPECT_NE(n[f].get<std::string>().find('.'), std::string::npos);
    }
    EXPECT_EQ(n["node_status"], "Running");
    EXPECT_TRUE(get(std::string("monitoring/nodes/") + kNode)["result"].is_object());
    EXPECT_EQ(code(get("monitoring/nodes/nope")), 101);
}

TEST_F(RestApi, MonitoringListenersMetricsStats) {
    auto l = get("monitoring/listeners");
    ASSERT_EQ(code(l), 0);
    ASSERT_TRUE(l["result"][kNode].is_array());
    std::set<std::string> protocols;
    for (const auto& row : l["result"][kNode]) {
        protocols.insert(row["protocol"].get<std::string>());
        EXPECT_TRUE(row["listen"].is_string());
        EXPECT_TRUE(row["acceptors"].is_number_integer());
        EXPECT_TRUE(row["max_clients"].is_number_integer());
        EXPECT_TRUE(row["current_clients"].is_number_integer());
        EXPECT_TRUE(row["shutdown_count"].is_array());
    }
    EXPECT_TRUE(protocols.count("mqtt:api"));
    EXPECT_TRUE(get(std::string("monitoring/listeners/") + kNode)["result"].is_array());

    auto m = get("monitoring/metrics");
    ASSERT_EQ(code(m), 0);
    for (const char* f : {"packets/connect", "messages/retained", "bytes/received",
                          "messages/qos2/dropped", "packets/pubcomp/missed"}) {
        EXPECT_TRUE(m["result"][f].is_number_integer()) << f;
    }
    EXPECT_TRUE(get(std::string("monitoring/metrics/") + kNode)["result"].is_object());

    auto s = get("monitoring/stats");
    ASSERT_TRUE(s["result"].is_array());
    const auto& st = s["result"][0][kNode];
    for (const char* f : {"clients/count", "clients/max", "retained/count", "routes/count",
                          "sessions/count", "subscriptions/count", "topics/max"}) {
        EXPECT_TRUE(st[f].is_number_integer()) << f;
    }
    EXPECT_TRUE(get(std::string("monitoring/stats/") + kNode)["result"]["clients/count"]
                        .is_number_integer());
}

// ---- clients, sessions, subscriptions, routes ----

TEST_F(RestApi, ClientsSessionsSubscriptionsRoutes) {
    Mqtt persistent("rest-p1", false);
    ASSERT_EQ(persistent.connect(broker_->port()), 0);
    ASSERT_EQ(persistent.subscribe("/World", 1), std::vector<int>{1});
    Mqtt clean("rest-c1", true);
    ASSERT_EQ(clean.connect(broker_->port()), 0);
    ASSERT_EQ(clean.subscribe("a/b/c", 0), std::vector<int>{0});

    auto list = get(std::string("nodes/") + kNode + "/clients");
    ASSERT_EQ(code(list), 0);
    auto& r = list["result"];
    EXPECT_EQ(r["current_page"], 1);
    EXPECT_EQ(r["page_size"], 20);
    EXPECT_GE(r["total_num"].get<int>(), 2);
    EXPECT_EQ(r["total_page"], 1);
    bool seen = false;
    for (const auto& c : r["objects"]) {
        if (c["client_id"] == "rest-p1") {
            seen = true;
            EXPECT_EQ(c["clean_sess"], false);
            EXPECT_EQ(c["ipaddress"], "127.0.0.1");
            EXPECT_TRUE(c["port"].is_number_integer());
            EXPECT_EQ(c["proto_ver"], 4);
            EXPECT_EQ(c["keepalive"], 30);
            EXPECT_EQ(c["username"], "undefined");
            EXPECT_EQ(c["connected_at"].get<std::string>().size(), 19u);
            EXPECT_EQ(c["protocol"], "mqtt:tcp");
            EXPECT_EQ(c["is_ssl"], false);
        }
    }
    EXPECT_TRUE(seen);

    auto one = get("clients/rest-p1");
    ASSERT_EQ(one["result"]["objects"].size(), 1u);
    EXPECT_EQ(get(std::string("nodes/") + kNode +
                  "/clients/rest-c1")["result"]["objects"][0]["clean_sess"],
              true);
    EXPECT_TRUE(get("clients/nobody")["result"]["objects"].empty());

    // Sessions: both the spec's node/ path and nodes/.
    for (std::string base : {"node/", "nodes/"}) {
        auto s = get(base + kNode + "/sessions");
        ASSERT_EQ(code(s), 0) << base;
        std::set<std::string> ids;
        for (const auto& o : s["result"]["objects"]) {
            ids.insert(o["client_id"].get<std::string>());
            for (const char* f :
                 {"subscriptions", "max_inflight", "inflight_len", "mqueue_len", "mqueue_dropped",
                  "awaiting_rel_len", "deliver_msg", "enqueue_msg"}) {
                EXPECT_TRUE(o[f].is_number_integer()) << f;
            }
            EXPECT_TRUE(o["clean_sess"].is_boolean());
            EXPECT_TRUE(o["created_at"].is_string());
        }
        EXPECT_TRUE(ids.count("rest-p1") && ids.count("rest-c1")) << s.dump();
    }
    auto sess = get("sessions/rest-p1")["result"]["objects"];
    ASSERT_EQ(sess.size(), 1u);
    EXPECT_EQ(sess[0]["subscriptions"], 1);
    EXPECT_EQ(sess[0]["clean_sess"], false);
    EXPECT_EQ(get(std::string("nodes/") + kNode + "/sessions/rest-c1")["result"]["objects"].size(),
              1u);

    auto subs = get(std::string("nodes/") + kNode + "/subscriptions");
    ASSERT_EQ(code(subs), 0);
    std::set<std::string> topics;
    for (const auto& o : subs["result"]["objects"]) {
        topics.insert(o["client_id"].get<std::string>() + " " + o["topic"].get<std::string>());
        EXPECT_TRUE(o["qos"].is_number_integer());
    }
    EXPECT_TRUE(topics.count("rest-p1 /World")) << subs.dump();
    EXPECT_TRUE(topics.count("rest-c1 a/b/c")) << subs.dump();
    auto mine = get("subscriptions/rest-p1")["result"]["objects"];
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0], Json::parse(R"({"client_id":"rest-p1","topic":"/World","qos":1})"));
    EXPECT_EQ(get(std::string("nodes/") + kNode + "/subscriptions/rest-c1")["result"]["objects"]
                      .size(),
              1u);

    auto routes = get("routes");
    ASSERT_EQ(code(routes), 0);
    EXPECT_TRUE(routes["result"]["objects"].is_array());
    EXPECT_TRUE(routes["result"]["total_num"].is_number_integer());
    auto route = get("routes//World");
    ASSERT_EQ(route["result"]["objects"].size(), 1u) << route.dump();
    EXPECT_EQ(route["result"]["objects"][0]["topic"], "/World");
    EXPECT_EQ(route["result"]["objects"][0]["node"], kNode);
    EXPECT_TRUE(get("routes/no/such/topic")["result"]["objects"].empty());
}

TEST_F(RestApi, PagingMathsAndCursor) {
    // 25 offline persistent sessions.
    for (int i = 0; i < 25; ++i) {
        char id[32];
        std::snprintf(id, sizeof id, "page-%02d", i);
        Mqtt m(id, false);
        ASSERT_EQ(m.connect(broker_->port()), 0);
        m.disconnect();
    }
    std::string base = std::string("nodes/") + kNode + "/sessions";
    auto first = get(base + "?page_size=10");
    ASSERT_EQ(code(first), 0);
    auto total = first["result"]["total_num"].get<uint64_t>();
    ASSERT_GE(total, 25u);
    EXPECT_EQ(first["result"]["total_page"], (total + 9) / 10);
    EXPECT_EQ(first["result"]["objects"].size(), 10u);

    // Walk by curr_page and by cursor: the same ids in the same order, no overlap.
    std::vector<std::string> by_page, by_cursor;
    for (uint64_t p = 1; p <= (total + 9) / 10; ++p) {
        auto page = get(base + "?page_size=10&curr_page=" + std::to_string(p));
        for (const auto& o : page["result"]["objects"]) {
            by_page.push_back(o["client_id"]);
        }
    }
    std::string cursor;
    for (int guard = 0; guard < 100; ++guard) {
        auto j = get(base + "?page_size=10" + (cursor.empty() ? "" : "&cursor=" + cursor));
        for (const auto& o : j["result"]["objects"]) {
            by_cursor.push_back(o["client_id"]);
        }
        cursor = j["result"]["cursor"].get<std::string>();
        if (cursor.empty()) {
            break;
        }
    }
    EXPECT_EQ(by_page.size(), total);
    EXPECT_EQ(by_page, by_cursor);
    EXPECT_EQ(std::set<std::string>(by_page.begin(), by_page.end()).size(), by_page.size());

    auto past = get(base + "?page_size=10&curr_page=1000");
    EXPECT_EQ(code(past), 0);
    EXPECT_TRUE(past["result"]["objects"].empty());
    EXPECT_EQ(past["result"]["current_page"], 1000);

    // Errors: 108 for out-of-range or non-numbers, bad cursor.
    for (const char* q : {"?page_size=0", "?page_size=x", "?curr_page=0", "?curr_page=-1",
                          "?page_size=1e3", "?cursor=zz", "?page_size=100000"}) {
        EXPECT_EQ(code(get(base + q)), 108) << q;
    }
    EXPECT_EQ(code(get("routes?cursor=o5")), 108);
}

// ---- publish / subscribe ----

TEST_F(RestApi, PublishReachesSubscriberAndRetainedEndpoints) {
    Mqtt sub("rest-sub", true);
    ASSERT_EQ(sub.connect(broker_->port()), 0);
    ASSERT_EQ(sub.subscribe("/World", 1), std::vector<int>{1});
    auto j = call("POST", "mqtt/publish",
                  R"({"topic":"/World","payload":"hello","qos":1,"retain":false,"client_id":"x"})");
    ASSERT_EQ(code(j), 0) << j.dump();
    EXPECT_EQ(j["result"], Json::array());
    auto m = sub.wait_message();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "/World");
    EXPECT_EQ(m->payload, "hello");

    // Defaults: payload "", qos 0, retain false.
    ASSERT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"/World"})")), 0);
    m = sub.wait_message();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "");

    EXPECT_EQ(code(call("POST", "mqtt/publish", R"({"payload":"x"})")), 107);
    EXPECT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"a","qos":3})")), 108);
    EXPECT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"a","qos":"x"})")), 108);
    EXPECT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"a/#"})")), 108);
    EXPECT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"a/+/b"})")), 108);
    EXPECT_EQ(code(call("POST", "mqtt/publish", R"({"topic":5})")), 108);
    EXPECT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"a","retain":"yes"})")), 108);
    EXPECT_EQ(code(call("POST", "mqtt/publish", "{not json")), 109);
    EXPECT_EQ(code(call("POST", "mqtt/publish", "[1,2]")), 108);
    EXPECT_FALSE(sub.wait_message(300ms)) << "a refused publish was delivered";

    // Retained: stored, listed, looked up (topic with '/'), deleted.
    ASSERT_EQ(code(call("POST", "mqtt/publish",
                        R"({"topic":"rest/ret/one","payload":"kept","retain":true})")),
              0);
    auto list = get("retained?topic=rest/%23");
    ASSERT_EQ(code(list), 0);
    ASSERT_EQ(list["result"]["total_num"], 1) << list.dump();
    const auto& r = list["result"]["objects"][0];
    EXPECT_EQ(r["topic"], "rest/ret/one");
    EXPECT_EQ(r["payload"], "kept");
    EXPECT_EQ(r["encoding"], "utf8");
    EXPECT_EQ(r["qos"], 0);
    EXPECT_TRUE(r["stored_at"].is_string());
    EXPECT_EQ(get("retained/rest/ret/one")["result"]["objects"].size(), 1u);
    EXPECT_EQ(get("retained/rest%2Fret%2Fone")["result"]["objects"].size(), 1u);
    EXPECT_EQ(code(get("retained?topic=a/%23/b")), 108);
    EXPECT_EQ(code(call("DELETE", "retained/rest/ret/one", "")), 0);
    EXPECT_TRUE(get("retained/rest/ret/one")["result"]["objects"].empty());
}

// A retained message deleted through REST right after a QoS 0 retained PUBLISH of its topic was
// delivered (routed, its store write perhaps still committing) stays deleted: the delete waits
// for what was being committed, and goes through the in-flight overlay.
TEST_F(RestApi, RetainedDeleteRightAfterAPublishStaysDeleted) {
    Mqtt pub("race-pub", true);
    ASSERT_EQ(pub.connect(broker_->port()), 0);
    Mqtt watch("race-watch", true);
    ASSERT_EQ(watch.connect(broker_->port()), 0);
    ASSERT_EQ(watch.subscribe("race/#", 0), std::vector<int>{0});
    for (int i = 0; i < 20; ++i) {
        const std::string topic = "race/" + std::to_string(i);
        ASSERT_TRUE(pub.publish(topic, "p", 0, true));
        auto m = watch.wait_message();  // routed: the retained write is in a batch
        ASSERT_TRUE(m) << i;
        ASSERT_EQ(code(call("DELETE", "retained/" + topic, "")), 0);
        auto left = get("retained/" + topic);
        EXPECT_TRUE(left["result"]["objects"].empty()) << topic << ": " << left.dump();
    }
    Mqtt late("race-late", true);
    ASSERT_EQ(late.connect(broker_->port()), 0);
    ASSERT_EQ(late.subscribe("race/#", 0), std::vector<int>{0});
    EXPECT_FALSE(late.wait_message(300ms)) << "a deleted retained message came back";
}

TEST_F(RestApi, SubscribeAndUnsubscribeActOnTheSession) {
    Mqtt c("rest-s1", true);
    ASSERT_EQ(c.connect(broker_->port()), 0);
    ASSERT_EQ(code(call("POST", "mqtt/subscribe",
                        R"({"topic":"rest/sub","qos":1,"client_id":"rest-s1"})")),
              0);
    EXPECT_EQ(get("subscriptions/rest-s1")["result"]["objects"].size(), 1u);
    ASSERT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"rest/sub","payload":"p"})")), 0);
    auto m = c.wait_message();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "p");
    ASSERT_EQ(
            code(call("POST", "mqtt/unsubscribe", R"({"topic":"rest/sub","client_id":"rest-s1"})")),
            0);
    EXPECT_TRUE(get("subscriptions/rest-s1")["result"]["objects"].empty());
    ASSERT_EQ(code(call("POST", "mqtt/publish", R"({"topic":"rest/sub","payload":"q"})")), 0);
    EXPECT_FALSE(c.wait_message(300ms));

    EXPECT_EQ(code(call("POST", "mqtt/subscribe", R"({"topic":"x","client_id":"ghost"})")), 112);
    EXPECT_EQ(code(call("POST", "mqtt/unsubscribe", R"({"topic":"x","client_id":"ghost"})")), 112);
    EXPECT_EQ(code(call("POST", "mqtt/subscribe", R"({"topic":"x"})")), 107);
    EXPECT_EQ(code(call("POST", "mqtt/subscribe", R"({"topic":"a/#/b","client_id":"rest-s1"})")),
              108);
    EXPECT_EQ(
            code(call("POST", "mqtt/subscribe", R"({"topic":"x","qos":3,"client_id":"rest-s1"})")),
            108);
}

TEST_F(RestApi, MqueueOfAnOfflinePersistentSession) {
    {
        Mqtt p("rest-q1", false);
        ASSERT_EQ(p.connect(broker_->port()), 0);
        ASSERT_EQ(p.subscribe("rest/q", 1), std::vector<int>{1});
        p.disconnect();
    }
    // Offline once the broker has handled the DISCONNECT (until then a message is sent, not
    // queued): the client leaves the client list.
    bool offline = false;
    for (int i = 0; i < 250 && !offline; ++i) {
        auto c = get("clients/rest-q1");
        offline = code(c) == 0 && c["result"]["objects"].empty();
        if (!offline) {
            std::this_thread::sleep_for(20ms);
        }
    }
    ASSERT_TRUE(offline);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(
                code(call("POST", "mqtt/publish", R"({"topic":"rest/q","payload":"abc","qos":1})")),
                0);
    }
    auto q = get("sessions/rest-q1/mqueue?page_size=2");
    ASSERT_EQ(code(q), 0) << q.dump();
    EXPECT_EQ(q["result"]["total_num"], 3);
    EXPECT_EQ(q["result"]["total_page"], 2);
    ASSERT_EQ(q["result"]["objects"].size(), 2u);
    EXPECT_EQ(q["result"]["objects"][0]["topic"], "rest/q");
    EXPECT_EQ(q["result"]["objects"][0]["payload_size"], 3);
    EXPECT_EQ(q["result"]["objects"][0]["qos"], 1);
    EXPECT_TRUE(q["result"]["objects"][0]["enqueued_at"].is_string());
    auto rest = get("sessions/rest-q1/mqueue?page_size=2&cursor=" +
                    q["result"]["cursor"].get<std::string>());
    EXPECT_EQ(rest["result"]["objects"].size(), 1u);
    EXPECT_EQ(code(get("sessions/ghost/mqueue")), 112);
}

TEST_F(RestApi, KickPublishesTheWill) {
    Mqtt watcher("rest-watch", true);
    ASSERT_EQ(watcher.connect(broker_->port()), 0);
    ASSERT_EQ(watcher.subscribe("rest/will", 0), std::vector<int>{0});
    Mqtt victim("rest-victim", true);
    victim.set_will("rest/will", "gone", 0, false);
    ASSERT_EQ(victim.connect(broker_->port()), 0);
    EXPECT_EQ(code(call("PUT", "clients/rest-victim/clean_acl_cache", R"({"topic":"a/b"})")), 0);
    EXPECT_EQ(code(call("PUT", "clients/rest-victim/clean_acl_cache", R"({})")), 107);
    EXPECT_EQ(code(call("PUT", "clients/ghost/clean_acl_cache", R"({"topic":"a"})")), 112);

    ASSERT_EQ(code(call("DELETE", "clients/rest-victim", "")), 0);
    EXPECT_TRUE(victim.wait_disconnected());
    auto m = watcher.wait_message();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "gone");
    EXPECT_EQ(code(call("DELETE", "clients/rest-victim", "")), 112);
}

// ---- plugins, users, misc ----

TEST_F(RestApi, UsersLifecycle) {
    auto list = get("users");
    ASSERT_EQ(code(list), 0);
    EXPECT_EQ(list["result"][0]["username"], "admin");
    EXPECT_TRUE(list["result"][0]["tags"].is_string());

    EXPECT_EQ(code(call("POST", "users", R"({"username":"u1","password":"pw1","tags":"user"})")),
              0);
    EXPECT_EQ(code(call("POST", "users", R"({"username":"u1","password":"pw2","tags":"x"})")), 113);
    EXPECT_EQ(code(call("POST", "users", R"({"username":"u2"})")), 107);
    EXPECT_EQ(code(call("POST", "users", R"({"username":"","password":"p"})")), 104);
    EXPECT_EQ(code(call("PUT", "users/u1", R"({"tags":"admin"})")), 0);
    EXPECT_EQ(code(call("PUT", "users/ghost", R"({"tags":"admin"})")), 105);
    EXPECT_EQ(code(call("PUT", "users/u1", R"({})")), 107);

    // The new user can use the API; change_pwd drops the cached credentials.
    EXPECT_EQ(http(api(), "GET", "/api/v2/users", "", "u1:pw1").status, 200);
    EXPECT_EQ(code(call("PUT", "change_pwd/u1", R"({"new_pwd":"pw9","old_pwd":"bad"})")), 114);
    EXPECT_EQ(code(call("PUT", "change_pwd/u1", R"({"new_pwd":"pw9"})")), 107);
    EXPECT_EQ(code(call("PUT", "change_pwd/ghost", R"({"new_pwd":"a","old_pwd":"b"})")), 105);
    EXPECT_EQ(code(call("PUT", "change_pwd/u1", R"({"new_pwd":"pw9","old_pwd":"pw1"})")), 0);
    EXPECT_EQ(http(api(), "GET", "/api/v2/users", "", "u1:pw1").status, 401);
    EXPECT_EQ(http(api(), "GET", "/api/v2/users", "", "u1:pw9").status, 200);

    EXPECT_EQ(code(call("DELETE", "users/admin", "")), 106);
    EXPECT_EQ(code(call("DELETE", "users/ghost", "")), 105);
    EXPECT_EQ(code(call("DELETE", "users/u1", "")), 0);
    EXPECT_EQ(http(api(), "GET", "/api/v2/users", "", "u1:pw9").status, 401);
}

TEST_F(RestApi, PluginsListAndConfig) {
    std::string base = std::string("nodes/") + kNode;
    auto list = get(base + "/plugins");
    ASSERT_EQ(code(list), 0);
    std::map<std::string, bool> active;
    for (const auto& p : list["result"]) {
        EXPECT_TRUE(p["version"].is_string());
        EXPECT_TRUE(p["description"].is_string());
        active[p["name"].get<std::string>()] = p["active"].get<bool>();
    }
    // Every plugin that really works, and only those; the retainer and the dashboard start
    // active.
    EXPECT_EQ(active, (std::map<std::string, bool>{{"emq_auth_clientid", false},
                                                   {"emq_auth_http", false},
                                                   {"emq_auth_jwt", false},
                                                   {"emq_auth_ldap", false},
                                                   {"emq_auth_mysql", false},
                                                   {"emq_auth_pgsql", false},
                                                   {"emq_auth_redis", false},
                                                   {"emq_auth_username", false},
                                                   {"emq_dashboard", true},
                                                   {"emq_modules", false},
                                                   {"emq_retainer", true},
                                                   {"emq_web_hook", false}}));
    EXPECT_EQ(code(get(base + "/plugins/")), 0);

    EXPECT_EQ(code(call("PUT", base + "/plugins/emq_retainer", R"({"active":true})")), 110);
    EXPECT_EQ(code(call("PUT", base + "/plugins/emq_retainer", R"({})")), 107);
    EXPECT_EQ(code(call("PUT", base + "/plugins/emq_retainer", R"({"active":"no"})")), 108);
    EXPECT_EQ(code(call("PUT", base + "/plugins/emq_nope", R"({"active":true})")), 102);

    auto cfg = get(base + "/plugin_configs/emq_retainer");
    ASSERT_EQ(code(cfg), 0);
    std::set<std::string> keys;
    for (const auto& i : cfg["result"]) {
        keys.insert(i["key"].get<std::string>());
        EXPECT_TRUE(i["value"].is_string());
        EXPECT_TRUE(i["desc"].is_string());
        EXPECT_TRUE(i["required"].is_boolean());
    }
    EXPECT_EQ(keys, (std::set<std::string>{"retainer.expiry_interval", "retainer.max_message_num",
                                           "retainer.max_payload_size"}));
    EXPECT_EQ(code(call("PUT", base + "/plugin_configs/emq_retainer",
                        R"({"retainer.max_payload_size":"x","retainer.max_message_num":"5"})")),
              108);
    EXPECT_EQ(code(call("PUT", base + "/plugin_configs/emq_retainer", R"({"nope":"1"})")), 108);
    // Nothing of the refused request was applied.
    // Kept in a variable: a range-for over a temporary's member reads freed memory.
    const auto page1 = get(base + "/plugin_configs/emq_retainer");
    for (const auto& i : page1["result"]) {
        if (i["key"] == "retainer.max_message_num") {
            EXPECT_EQ(i["value"], "0");
        }
    }
    EXPECT_EQ(code(get(base + "/plugin_configs/emq_nope")), 102);
    EXPECT_EQ(code(get("nodes/other/plugins")), 101);
}

TEST_F(RestApi, ConfigsListHotKeys) {
    auto all = get("configs");
    ASSERT_EQ(code(all), 0);
    std::set<std::string> keys;
    for (const auto& i : all["result"][kNode]) {
        keys.insert(i["key"].get<std::string>());
        EXPECT_TRUE(i["value"].is_string());
        EXPECT_TRUE(i["datatpye"].is_string());
        EXPECT_EQ(i["app"], "emqttd");
    }
    EXPECT_EQ(keys, (std::set<std::string>{"log.console.level", "mqtt.acl_file", "mqtt.acl_nomatch",
                                           "mqtt.allow_anonymous", "mqtt.broker.sys_interval",
                                           "mqtt.cache_acl"}));
    EXPECT_EQ(get(std::string("nodes/") + kNode + "/configs")["result"].size(), keys.size());
    EXPECT_EQ(code(call("PUT", "configs/emqttd", R"({"key":"mqtt.nope","value":"1"})")), 108);
    EXPECT_EQ(code(call("PUT", "configs/emqttd", R"({"key":"mqtt.max_inflight","value":"1"})")),
              108);
    EXPECT_EQ(code(call("PUT", "configs/emqttd",
                        R"({"key":"mqtt.allow_anonymous","value":"maybe"})")),
              108);
    EXPECT_EQ(code(call("PUT", "configs/emqttd", R"({"key":"mqtt.allow_anonymous"})")), 107);
    EXPECT_EQ(
            code(call("PUT", "configs/other", R"({"key":"mqtt.allow_anonymous","value":"true"})")),
            108);
    // Kept in a variable: a range-for over a temporary's member reads freed memory.
    const auto page2 = get("configs");
    for (const auto& i : page2["result"][kNode]) {
        if (i["key"] == "mqtt.allow_anonymous") {
            EXPECT_EQ(i["value"], "true");
        }
    }
}

TEST_F(RestApi, BadRequestsNeverAnswer5xx) {
    EXPECT_EQ(http(api(), "GET", "/api/v2/nothing/here").status, 404);
    EXPECT_EQ(http(api(), "GET", "/elsewhere").status, 404);
    EXPECT_EQ(http(api(), "PATCH", "/api/v2/users").status, 405);
    EXPECT_EQ(code(get("clients/%zz")), 108);
    auto big = http(api(), "POST", "/api/v2/mqtt/publish",
                    R"({"topic":"a","payload":")" + std::string(2 << 20, 'x') + "\"}");
    EXPECT_EQ(big.status, 413);
    for (const char* body : {"", "null", "\"s\"", "{\"topic\":null}", "{\"topic\":[1]}",
                             "{\"topic\":\"a\",\"qos\":1e400}", "{\"topic\":\"a\",\"qos\":-1}",
                             "{\"topic\":\"a\",\"qos\":18446744073709551615}"}) {
        auto r = http(api(), "POST", "/api/v2/mqtt/publish", body);
        EXPECT_EQ(r.status, 200) << body;
        EXPECT_NE(r.json()["code"], 0) << body;
    }
    // Still alive and correct afterwards.
    EXPECT_EQ(code(get("management/nodes")), 0);
}

TEST_F(RestApi, OpenApiDescribesEveryEndpoint) {
    auto r = http(api(), "GET", "/api/v2/openapi.json");
    ASSERT_EQ(r.status, 200);
    auto j = r.json();
    ASSERT_TRUE(j["paths"].is_object());
    for (const char* p :
         {"/api/v2/routes/{topic}", "/api/v2/nodes/{node}/clients", "/api/v2/change_pwd/{username}",
          "/api/v2/retained", "/api/v2/sessions/{client_id}/mqueue"}) {
        EXPECT_TRUE(j["paths"].contains(p)) << p;
    }
    EXPECT_TRUE(j["paths"]["/api/v2/auth"]["post"].is_object());
    EXPECT_TRUE(j["paths"]["/metrics"]["get"]["responses"]["200"]["content"].contains(
            "text/plain; version=0.0.4"));
}

// Every path of the spec is served with and without a trailing slash (the spec itself writes
// "monitoring/metrics/"): each GET route without parameters answers the same both ways.
TEST_F(RestApi, EveryPathIsServedWithATrailingSlash) {
    auto j = http(api(), "GET", "/api/v2/openapi.json").json();
    ASSERT_TRUE(j["paths"].is_object());
    size_t checked = 0;
    for (const auto& [path, ops] : j["paths"].items()) {
        if (!ops.contains("get") || path.find('{') != std::string::npos ||
            path == "/api/v2/openapi.json" || !path.starts_with("/api/v2/")) {
            continue;
        }
        auto plain = http(api(), "GET", path);
        auto slash = http(api(), "GET", path + "/");
        EXPECT_EQ(plain.status, 200) << path;
        EXPECT_EQ(slash.status, 200) << path << "/";
        EXPECT_EQ(code(slash.json()), code(plain.json())) << path << "/";
        ++checked;
    }
    EXPECT_GE(checked, 10u);
    const std::string node = kNode;
    for (const std::string& path :
         {std::string("monitoring/metrics/"), std::string("monitoring/stats/"),
          "monitoring/metrics/" + node + "/", "nodes/" + node + "/clients/"}) {
        EXPECT_EQ(code(get(path)), 0) << path;
    }
}

// The maxima of monitoring/stats are the highest values ever reached, not samples: a burst of
// clients that came and went before anyone asked still shows in clients/max.
TEST_F(RestApi, StatsMaximaIncludeBursts) {
    {
        std::vector<std::unique_ptr<Mqtt>> burst;
        for (int i = 0; i < 28; ++i) {
            burst.push_back(std::make_unique<Mqtt>("burst-" + std::to_string(i)));
            ASSERT_EQ(burst.back()->connect(broker_->port()), 0);
        }
        for (auto& c : burst) {
            c->disconnect();
        }
    }
    auto stats = get("monitoring/stats");
    const auto& st = stats["result"][0][kNode];
    EXPECT_GE(st["clients/max"].get<uint64_t>(), 28u);
    EXPECT_GE(st["sessions/max"].get<uint64_t>(), 28u);
    EXPECT_GE(st["clients/max"].get<uint64_t>(), st["clients/count"].get<uint64_t>());
}

TEST_F(RestApi, KeepAliveConnectionServesSeveralRequests) {
    // Pistache keeps the connection only with an explicit header (DEPENDENCIES.md).
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(api());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req =
            "GET /api/v2/management/nodes HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
            "Authorization: Basic YWRtaW46cHVibGlj\r\n\r\n";
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(req.size()));
        char buf[8192];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 12);
        EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 200");
    }
    ::close(fd);
}

// ---- behaviour changes and restarts (own broker) ----

TEST(RestApiRestart, ConfigPluginsAndUsersSurviveARestart) {
    BrokerProcess b;
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    auto put = [&](const std::string& path, const std::string& body) {
        return call_json(b, "PUT", "/api/v2/" + path, body).value("code", -1);
    };
    // allow_anonymous=false: the next anonymous CONNECT gets return code 5.
    ASSERT_EQ(put("configs/emqttd", R"({"key":"mqtt.allow_anonymous","value":"false"})"), 0);
    {
        Mqtt anon("anon-1");
        EXPECT_EQ(anon.connect(b.port()), 5);
    }
    // emq_retainer stopped: a retained publish is delivered but not stored.
    std::string base = std::string("/api/v2/nodes/") + kNode;
    ASSERT_EQ(call_json(b, "PUT", base + "/plugins/emq_retainer", R"({"active":false})")
                      .value("code", -1),
              0);
    EXPECT_EQ(call_json(b, "PUT", base + "/plugins/emq_retainer", R"({"active":false})")
                      .value("code", -1),
              111);
    ASSERT_EQ(call_json(b, "POST", "/api/v2/mqtt/publish",
                        R"({"topic":"r/1","payload":"x","retain":true})")
                      .value("code", -1),
              0);
    EXPECT_TRUE(get_json(b, "/api/v2/retained/r/1")["result"]["objects"].empty());
    ASSERT_EQ(call_json(b, "PUT", base + "/plugin_configs/emq_retainer",
                        R"({"retainer.max_message_num":"7"})")
                      .value("code", -1),
              0);
    ASSERT_EQ(call_json(b, "POST", "/api/v2/users", R"({"username":"keep","password":"me"})")
                      .value("code", -1),
              0);
    ASSERT_EQ(put("change_pwd/admin", R"({"new_pwd":"secret","old_pwd":"public"})"), 0);

    b.restart();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    auto as_admin = [&](const std::string& path) {
        return http(b.api_port(), "GET", path, "", "admin:secret").json();
    };
    EXPECT_EQ(http(b.api_port(), "GET", "/api/v2/users", "", "keep:me").status, 200);
    EXPECT_EQ(http(b.api_port(), "GET", "/api/v2/users", "", "admin:public").status, 401);
    auto plugins = as_admin(base + "/plugins");
    EXPECT_EQ(plugins["result"][0]["active"], false) << plugins.dump();
    // Kept in a variable: a range-for over a temporary's member reads freed memory.
    const auto page3 = as_admin(base + "/plugin_configs/emq_retainer");
    for (const auto& i : page3["result"]) {
        if (i["key"] == "retainer.max_message_num") {
            EXPECT_EQ(i["value"], "7");
        }
    }
    // Kept in a variable: a range-for over a temporary's member reads freed memory.
    const auto page4 = as_admin("/api/v2/configs");
    for (const auto& i : page4["result"][kNode]) {
        if (i["key"] == "mqtt.allow_anonymous") {
            EXPECT_EQ(i["value"], "false");
        }
    }
    Mqtt anon("anon-2");
    EXPECT_EQ(anon.connect(b.port()), 5);
}

}  // namespace
}  // namespace mqttd::rest_test
