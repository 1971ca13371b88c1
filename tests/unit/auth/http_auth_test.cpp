#include "broker/auth/http_auth.h"

#include <map>

#include <gtest/gtest.h>

#include "broker/auth/http_client.h"
#include "http_server.h"
#include "sockets.h"
#include "test_util.h"

namespace mqttd::broker::auth {
namespace {

using test::HttpRequest;
using test::HttpServer;
using testing::identity;
using testing::wait_decision;

std::map<std::string, std::string> as_map(
        const std::vector<std::pair<std::string, std::string>>& v) {
    return {v.begin(), v.end()};
}

HttpAuthConfig config_for(const HttpServer& server) {
    HttpAuthConfig c;
    EXPECT_EQ(c.set("auth.http.auth_req", server.url("/mqtt/auth")), "");
    EXPECT_EQ(c.set("auth.http.auth_req.method", "post"), "");
    EXPECT_EQ(c.set("auth.http.auth_req.params", "clientid=%c,username=%u,password=%P,ip=%a"), "");
    EXPECT_EQ(c.set("auth.http.super_req", server.url("/mqtt/superuser")), "");
    EXPECT_EQ(c.set("auth.http.super_req.method", "get"), "");
    EXPECT_EQ(c.set("auth.http.super_req.params", "clientid=%c,username=%u"), "");
    EXPECT_EQ(c.set("auth.http.acl_req", server.url("/mqtt/acl")), "");
    EXPECT_EQ(c.set("auth.http.acl_req.method", "GET"), "");
    EXPECT_EQ(c.set("auth.http.acl_req.params",
                    "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t"),
              "");
    EXPECT_EQ(c.set("auth.http.timeout", "2000"), "");
    return c;
}

Decision auth(HttpAuth& h, const ClientIdentity& id) {
    auto w = wait_decision([&](DecisionCallback cb) { h.authenticate(id, cb); });
    EXPECT_TRUE(w.called);
    return w.decision;
}

Decision acl(HttpAuth& h, const ClientIdentity& id, Access a, const std::string& topic) {
    auto w = wait_decision([&](DecisionCallback cb) { h.check(id, a, topic, cb); });
    EXPECT_TRUE(w.called);
    return w.decision;
}

TEST(HttpAuthConfig, Keys) {
    HttpAuthConfig c;
    EXPECT_NE(c.set("auth.http.auth_req.method", "put"), "");
    EXPECT_NE(c.set("auth.http.auth_req", "ftp://x"), "");
    EXPECT_NE(c.set("auth.http.nope", "x"), "");
    EXPECT_NE(c.set("auth.http.timeout", "-1"), "");
    EXPECT_NE(c.set("other.key", "x"), "");
    EXPECT_EQ(c.set("auth.http.auth_req", ""), "");  // empty URL: not asked
}

TEST(HttpAuth, ExpandParams) {
    auto id = identity("c 1", "u&=", "p%w", "10.0.0.9");
    auto p = as_map(HttpAuth::expand("clientid=%c, username=%u,password=%P,ip=%a,acc=%A,t=%t,x=%z",
                                     id, 2, "a/b"));
    EXPECT_EQ(p["clientid"], "c 1");
    EXPECT_EQ(p["username"], "u&=");
    EXPECT_EQ(p["password"], "p%w");
    EXPECT_EQ(p["ip"], "10.0.0.9");
    EXPECT_EQ(p["acc"], "2");
    EXPECT_EQ(p["t"], "a/b");
    EXPECT_EQ(p["x"], "%z");
    EXPECT_EQ(form_encode({{"a b", "c/d&e"}}), "a%20b=c%2Fd%26e");
    auto none = as_map(HttpAuth::expand("u=%u,p=%P", identity("c"), 0, ""));
    EXPECT_EQ(none["u"], "");
    EXPECT_EQ(none["p"], "");
}

TEST(HttpAuth, AllowDenyIgnoreAndReceivedParams) {
    HttpServer server([](const HttpRequest& r) {
        auto form = (test::decode_form(r.method == "POST" ? r.body : r.query));
        if (r.path == "/mqtt/auth") {
            if (form["username"] == "nobody") {
                return test::reply(200, "ignore");
            }
            return test::reply(form["password"] == "good pw&" ? 200 : 403, "");
        }
        if (r.path == "/mqtt/superuser") {
            return test::reply(form["username"] == "root" ? 200 : 404, "");
        }
        return test::reply(form["topic"] == "allowed/t" ? 200 : 403, "");
    });
    HttpAuth h(config_for(server));

    auto ok = auth(h, identity("cid/1", "alice", "good pw&", "127.0.0.1"));
    EXPECT_EQ(ok.verdict, Verdict::Allow);
    EXPECT_FALSE(ok.superuser);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 2u);  // auth_req, then super_req
    EXPECT_EQ(reqs[0].method, "POST");
    EXPECT_EQ(reqs[0].path, "/mqtt/auth");
    EXPECT_EQ(reqs[0].header("content-type"), "application/x-www-form-urlencoded");
    auto form = (test::decode_form(reqs[0].body));
    EXPECT_EQ(form["clientid"], "cid/1");
    EXPECT_EQ(form["username"], "alice");
    EXPECT_EQ(form["password"], "good pw&");
    EXPECT_EQ(form["ip"], "127.0.0.1");
    EXPECT_EQ(reqs[0].body.find("good pw&"), std::string::npos);  // encoded on the wire
    EXPECT_EQ(reqs[1].method, "GET");
    EXPECT_EQ(reqs[1].path, "/mqtt/superuser");
    EXPECT_EQ((test::decode_form(reqs[1].query))["clientid"], "cid/1");

    EXPECT_TRUE(auth(h, identity("c", "root", "good pw&")).superuser);
    auto denied = auth(h, identity("c", "alice", "bad"));
    EXPECT_EQ(denied.verdict, Verdict::Deny);
    EXPECT_FALSE(denied.error);
    EXPECT_EQ(auth(h, identity("c", "nobody", "x")).verdict, Verdict::Ignore);

    size_t before = server.count();
    EXPECT_EQ(acl(h, identity("c", "alice"), Access::Publish, "allowed/t").verdict, Verdict::Allow);
    EXPECT_EQ(acl(h, identity("c", "alice"), Access::Subscribe, "other/#").verdict, Verdict::Deny);
    reqs = server.requests();
    ASSERT_EQ(reqs.size(), before + 2);
    auto pub = (test::decode_form(reqs[before].query));
    EXPECT_EQ(reqs[before].method, "GET");
    EXPECT_EQ(pub["access"], "2");
    EXPECT_EQ(pub["topic"], "allowed/t");
    EXPECT_EQ(pub["username"], "alice");
    EXPECT_EQ(pub["ipaddr"], "10.0.0.1");
    auto sub = (test::decode_form(reqs[before + 1].query));
    EXPECT_EQ(sub["access"], "1");
    EXPECT_EQ(sub["topic"], "other/#");
    EXPECT_EQ(h.counters().unavailable, 0u);
}

TEST(HttpAuth, ServerHangsTimesOutAndDenies) {
    HttpServer server([](const HttpRequest&) { return test::hang(); });
    HttpAuthConfig c = config_for(server);
    ASSERT_EQ(c.set("auth.http.timeout", "300"), "");
    HttpAuth h(c);
    auto start = std::chrono::steady_clock::now();
    auto d = auth(h, identity("c", "u", "p"));
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(d.verdict, Verdict::Deny);
    EXPECT_TRUE(d.error);
    EXPECT_EQ(d.reason, "auth server unavailable");
    EXPECT_LT(took, std::chrono::seconds(5));
    EXPECT_EQ(h.counters().unavailable, 1u);
}

TEST(HttpAuth, GarbageAnd5xxAndServerDown) {
    HttpServer garbage([](const HttpRequest&) { return test::garbage(); });
    HttpAuth g(config_for(garbage));
    auto d = auth(g, identity("c", "u", "p"));
    EXPECT_EQ(d.verdict, Verdict::Deny);
    EXPECT_TRUE(d.error);

    HttpServer err([](const HttpRequest&) { return test::reply(503, "down"); });
    HttpAuth e(config_for(err));
    EXPECT_EQ(auth(e, identity("c", "u", "p")).reason, "auth server unavailable");
    EXPECT_EQ(acl(e, identity("c", "u"), Access::Publish, "t").reason, "auth server unavailable");

    HttpAuthConfig c;
    ASSERT_EQ(c.set("auth.http.auth_req",
                    "http://127.0.0.1:" + std::to_string(test::free_port()) + "/auth"),
              "");
    HttpAuth down(c);
    d = auth(down, identity("c", "u", "p"));
    EXPECT_EQ(d.verdict, Verdict::Deny);
    EXPECT_TRUE(d.error);
    EXPECT_EQ(down.counters().unavailable, 1u);
    // acl_req not configured: not its business.
    EXPECT_EQ(acl(down, identity("c", "u"), Access::Publish, "t").verdict, Verdict::Ignore);
}

TEST(HttpAuth, OversizedCredentialsArePosted) {
    std::atomic<size_t> seen{0};
    HttpServer server([&](const HttpRequest& r) {
        seen = (test::decode_form(r.body))["password"].size();
        return test::reply(200, "");
    });
    HttpAuthConfig c = config_for(server);
    ASSERT_EQ(c.set("auth.http.super_req", ""), "");
    HttpAuth h(c);
    EXPECT_EQ(auth(h, identity("c", "u", std::string(kMaxCredentialBytes, 'x'))).verdict,
              Verdict::Allow);
    EXPECT_EQ(seen.load(), kMaxCredentialBytes);
}

TEST(HttpAuth, FullQueueDeniesAndDestructionAnswersEveryone) {
    HttpServer server([](const HttpRequest&) { return test::hang(); });
    HttpAuthConfig c = config_for(server);
    c.threads = 1;
    c.max_queue = 2;
    ASSERT_EQ(c.set("auth.http.timeout", "500"), "");
    std::atomic<int> calls{0}, busy{0};
    auto h = std::make_unique<HttpAuth>(c);
    for (int i = 0; i < 10; ++i) {
        h->authenticate(identity("c", "u", "p"), [&](Decision d) {
            if (d.reason == "auth busy") {
                ++busy;
            }
            ++calls;
        });
    }
    EXPECT_GE(busy.load(), 7);
    EXPECT_EQ(h->counters().busy, static_cast<uint64_t>(busy.load()));
    h.reset();
    EXPECT_EQ(calls.load(), 10);
}

}  // namespace
}  // namespace mqttd::broker::auth
