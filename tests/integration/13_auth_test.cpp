// Authentication against the real binary: emq_auth_username / emq_auth_clientid through the
// REST tables, emq_auth_jwt with tokens signed here (HS256 and RS256, OpenSSL), emq_auth_http
// against a test HTTP server (the requests it receives, and a server that refuses, hangs,
// answers garbage or is down), run-time start/stop, and a restart keeping plugin state.
#include <chrono>
#include <ctime>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth_fixture.h"

namespace mqttd::authtest {
namespace {

using itest::RawClient;

constexpr int kBadPassword = 4;    // CONNACK "bad user name or password"
constexpr int kNotAuthorized = 5;  // CONNACK "not authorized"

// ---- JWT, signed by the test ----

std::string b64url(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    for (auto& ch : out) {
        ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    }
    return out;
}

std::string hs256(const std::string& alg, const Json& claims, const std::string& secret) {
    std::string input =
            b64url(Json{{"alg", alg}, {"typ", "JWT"}}.dump()) + "." + b64url(claims.dump());
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return input + "." + b64url(std::string(reinterpret_cast<char*>(mac), len));
}

struct RsaKey {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, &EVP_PKEY_free};
    std::string public_pem;
};

RsaKey make_rsa_key() {
    RsaKey k;
    k.key.reset(EVP_RSA_gen(2048));
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), k.key.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    k.public_pem.assign(data, static_cast<size_t>(n));
    return k;
}

std::string rs256(const Json& claims, EVP_PKEY* key) {
    std::string input =
            b64url(Json{{"alg", "RS256"}, {"typ", "JWT"}}.dump()) + "." + b64url(claims.dump());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    size_t len = 0;
    EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key);
    EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    return input + "." + b64url(sig);
}

int64_t now_s() {
    return static_cast<int64_t>(std::time(nullptr));
}

// ---- emq_auth_username / emq_auth_clientid ----

TEST_F(AuthIt, UsernameAndClientIdTablesThroughRest) {
    ASSERT_NO_FATAL_FAILURE(start_broker(
            "{allow, all}.\n", {"mqtt.allow_anonymous=false", "auth.user.1.username=seeded",
                                "auth.user.1.password=seedpw"}));
    RawClient c;
    EXPECT_EQ(connect_rc(c, port(), "anon"), kNotAuthorized);

    EXPECT_EQ(api("POST", "auth_username", R"({"username":"alice","password":"pw1"})").code(), 0);
    EXPECT_EQ(api("POST", "auth_username", R"({"username":"alice","password":"x"})").code(), 113);
    EXPECT_EQ(api("POST", "auth_username", R"({"username":"","password":"x"})").code(), 104);
    EXPECT_EQ(api("POST", "auth_username", R"({"username":"bob"})").code(), 107);
    EXPECT_EQ(api("POST", "auth_username", R"({"username":7,"password":"x"})").code(), 108);
    EXPECT_EQ(api("POST", "auth_username", "not json").code(), 109);
    std::string big(9000, 'u');
    EXPECT_EQ(
            api("POST", "auth_username", Json{{"username", big}, {"password", "x"}}.dump()).code(),
            108);
    EXPECT_EQ(api("POST", "auth_username", R"({"username":"a b/c","password":"pw"})").code(), 0);
    auto list = api("GET", "auth_username");
    ASSERT_EQ(list.code(), 0);
    EXPECT_EQ(list.json["result"], Json::array({"a b/c", "alice", "seeded"}));
    EXPECT_EQ(list.json.dump().find("pbkdf2"), std::string::npos) << "no hash is ever listed";
    EXPECT_EQ(api("DELETE", "auth_username/a%20b%2Fc").code(), 0);
    EXPECT_EQ(api("DELETE", "auth_username/a%20b%2Fc").code(), 105);

    // The table is filled but the plugin is stopped: nobody asks it.
    EXPECT_EQ(connect_rc(c, port(), "c1", "alice", "pw1"), kNotAuthorized);
    EXPECT_EQ(set_plugin("emq_auth_username", true), 0);
    EXPECT_EQ(set_plugin("emq_auth_username", true), 110);
    EXPECT_EQ(connect_rc(c, port(), "c1", "alice", "pw1"), 0);
    EXPECT_EQ(connect_rc(c, port(), "c1", "alice", "wrong"), kBadPassword);
    EXPECT_EQ(connect_rc(c, port(), "c2", "seeded", "seedpw"), 0) << "auth.user.1 seeded";
    EXPECT_EQ(connect_rc(c, port(), "c3", "nobody", "x"), kNotAuthorized);
    EXPECT_EQ(connect_rc(c, port(), "c4"), kNotAuthorized);

    // Client ids.
    EXPECT_EQ(api("POST", "auth_clientid", R"({"clientid":"dev-1","password":"cpw"})").code(), 0);
    EXPECT_EQ(api("POST", "auth_clientid", R"({"clientid":"dev-1","password":"cpw"})").code(), 113);
    EXPECT_EQ(api("POST", "auth_clientid", R"({"password":"cpw"})").code(), 107);
    EXPECT_EQ(api("GET", "auth_clientid").json["result"], Json::array({"dev-1"}));
    EXPECT_EQ(set_plugin("emq_auth_clientid", true), 0);
    // MQTT 3.1.1 needs a user name with a password [MQTT-3.1.2-22]; "anyone" is unknown to
    // emq_auth_username, which passes to emq_auth_clientid.
    EXPECT_EQ(connect_rc(c, port(), "dev-1", "anyone", "cpw"), 0);
    EXPECT_EQ(connect_rc(c, port(), "dev-1", "anyone", "nope"), kBadPassword);
    EXPECT_EQ(connect_rc(c, port(), "dev-2", "anyone", "cpw"), kNotAuthorized);

    // Removing a name applies to the next CONNECT.
    EXPECT_EQ(api("DELETE", "auth_username/alice").code(), 0);
    EXPECT_EQ(api("DELETE", "auth_username/alice").code(), 105);
    EXPECT_EQ(connect_rc(c, port(), "c1", "alice", "pw1"), kNotAuthorized);

    // Stopping the plugin applies to the next CONNECT.
    EXPECT_EQ(set_plugin("emq_auth_username", false), 0);
    EXPECT_EQ(set_plugin("emq_auth_username", false), 111);
    EXPECT_EQ(connect_rc(c, port(), "c2", "seeded", "seedpw"), kNotAuthorized);

    // Oversized credentials: refused, nothing else affected.
    std::string huge(60000, 'x');
    int rc = connect_rc(c, port(), "big-user", huge, "pw");
    EXPECT_TRUE(rc == kBadPassword || rc == kNotAuthorized || rc == -1) << rc;
    rc = connect_rc(c, port(), "dev-1", "anyone", huge);
    EXPECT_TRUE(rc == kBadPassword || rc == kNotAuthorized || rc == -1) << rc;
    EXPECT_EQ(connect_rc(c, port(), "dev-1", "anyone", "cpw"), 0);
    EXPECT_FALSE(broker_->exited());
    EXPECT_GE(metric("messages/received"), 0u);
}

TEST_F(AuthIt, RestartKeepsPluginStateConfigAndTables) {
    ASSERT_NO_FATAL_FAILURE(start_broker("{allow, all}.\n", {"mqtt.allow_anonymous=false"}));
    EXPECT_EQ(api("POST", "auth_username", R"({"username":"keep","password":"kpw"})").code(), 0);
    EXPECT_EQ(set_plugin("emq_auth_username", true), 0);
    configure("emq_auth_jwt", {{"auth.jwt.secret", "after-restart"}});
    EXPECT_EQ(set_plugin("emq_auth_jwt", true), 0);
    EXPECT_EQ(set_plugin("emq_auth_jwt", false), 0);

    broker_->restart();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    EXPECT_EQ(plugin_active("emq_auth_username"), std::optional<bool>(true));
    EXPECT_EQ(plugin_active("emq_auth_jwt"), std::optional<bool>(false));
    EXPECT_EQ(plugin_value("emq_auth_jwt", "auth.jwt.secret"), "after-restart");
    EXPECT_EQ(api("GET", "auth_username").json["result"], Json::array({"keep"}));
    RawClient c;
    EXPECT_EQ(connect_rc(c, port(), "k1", "keep", "kpw"), 0);
    EXPECT_EQ(connect_rc(c, port(), "k1", "keep", "bad"), kBadPassword);
    // The stored secret is the one the provider uses after the restart.
    EXPECT_EQ(set_plugin("emq_auth_jwt", true), 0);
    std::string token = hs256("HS256", {{"exp", now_s() + 60}}, "after-restart");
    EXPECT_EQ(connect_rc(c, port(), "k2", "jwt-user", token), 0);
}

// ---- emq_auth_jwt ----

TEST_F(AuthIt, JwtHs256AndRs256SignedByTheTest) {
    ASSERT_NO_FATAL_FAILURE(start_broker("{allow, all}.\n", {"mqtt.allow_anonymous=false"}));
    RsaKey rsa = make_rsa_key();
    ASSERT_TRUE(rsa.key);
    configure("emq_auth_jwt",
              {{"auth.jwt.secret", "jwt-secret"}, {"auth.jwt.pubkey", rsa.public_pem}});
    Json claims{{"username", "u"}, {"exp", now_s() + 60}};
    std::string good_hs = hs256("HS256", claims, "jwt-secret");
    std::string good_rs = rs256(claims, rsa.key.get());

    RawClient c;
    EXPECT_EQ(connect_rc(c, port(), "j0", "u", good_hs), kNotAuthorized) << "plugin stopped";
    EXPECT_EQ(set_plugin("emq_auth_jwt", true), 0);
    EXPECT_EQ(connect_rc(c, port(), "j1", "u", good_hs), 0);
    EXPECT_EQ(connect_rc(c, port(), "j2", "u", good_rs), 0);
    EXPECT_EQ(connect_rc(c, port(), "j3", "u", hs256("HS256", claims, "other-secret")),
              kBadPassword);
    Json expired{{"username", "u"}, {"exp", now_s() - 60}};
    EXPECT_EQ(connect_rc(c, port(), "j4", "u", hs256("HS256", expired, "jwt-secret")),
              kBadPassword);
    EXPECT_EQ(connect_rc(c, port(), "j5", "u", rs256(expired, rsa.key.get())), kBadPassword);
    // Tampered payload, RS256 signature kept.
    std::string tampered = good_rs;
    size_t d1 = tampered.find('.');
    size_t d2 = tampered.find('.', d1 + 1);
    tampered.replace(d1 + 1, d2 - d1 - 1, b64url(Json{{"username", "root"}}.dump()));
    EXPECT_EQ(connect_rc(c, port(), "j6", "u", tampered), kBadPassword);
    // alg none, and alg confusion (HS256 keyed with the RSA public key).
    std::string none = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(claims.dump()) + ".";
    int rc = connect_rc(c, port(), "j7", "u", none);
    EXPECT_NE(rc, 0);
    EXPECT_EQ(connect_rc(c, port(), "j8", "u", hs256("HS256", claims, rsa.public_pem)),
              kBadPassword);
    // Not a JWT: not the plugin's business; anonymous is off.
    EXPECT_EQ(connect_rc(c, port(), "j9", "u", "plain-password"), kNotAuthorized);

    EXPECT_EQ(set_plugin("emq_auth_jwt", false), 0);
    EXPECT_EQ(connect_rc(c, port(), "j1", "u", good_hs), kNotAuthorized);
    EXPECT_EQ(set_plugin("emq_auth_jwt", true), 0);
    EXPECT_EQ(connect_rc(c, port(), "j1", "u", good_hs), 0);
}

// ---- emq_auth_http ----

Json http_config(const HttpServer& srv, const std::string& timeout_ms) {
    return Json{
            {"auth.http.auth_req", srv.url("/mqtt/auth")},
            {"auth.http.auth_req.method", "post"},
            {"auth.http.auth_req.params", "clientid=%c,username=%u,password=%P,ip=%a"},
            {"auth.http.super_req", srv.url("/mqtt/superuser")},
            {"auth.http.super_req.method", "post"},
            {"auth.http.super_req.params", "clientid=%c,username=%u"},
            {"auth.http.acl_req", srv.url("/mqtt/acl")},
            {"auth.http.acl_req.method", "get"},
            {"auth.http.acl_req.params", "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t"},
            {"auth.http.timeout", timeout_ms}};
}

HttpAnswer normal_answer(const HttpRequest& r) {
    if (r.path == "/mqtt/auth") {
        return reply(r.param("password") == "good" ? 200 : 401);
    }
    if (r.path == "/mqtt/superuser") {
        return reply(r.param("username") == "root" ? 200 : 403);
    }
    if (r.path == "/mqtt/acl") {
        return reply(r.param("topic").rfind("ok/", 0) == 0 ? 200 : 403);
    }
    return reply(404);
}

TEST_F(AuthIt, HttpAuthAskedWithTheRightParameters) {
    HttpServer srv;
    srv.set_responder(normal_answer);
    // No ACL rules: the internal ACL passes every decision on to acl_req.
    ASSERT_NO_FATAL_FAILURE(start_broker("", {"mqtt.allow_anonymous=true"}));
    configure("emq_auth_http", http_config(srv, "1000"));
    RawClient c;
    EXPECT_EQ(connect_rc(c, port(), "h0", "alice", "bad"), 0) << "plugin stopped: anonymous";
    EXPECT_EQ(srv.requests().size(), 0u);
    EXPECT_EQ(set_plugin("emq_auth_http", true), 0);

    EXPECT_EQ(connect_rc(c, port(), "h0", "alice", "bad"), kBadPassword) << "4xx denies";
    RawClient alice;
    ASSERT_EQ(connect_rc(alice, port(), "h1", "alice", "good"), 0);
    auto auth = srv.wait_for("/mqtt/auth",
                             [](const HttpRequest& r) { return r.param("clientid") == "h1"; });
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->method, "POST");
    EXPECT_EQ(auth->param("username"), "alice");
    EXPECT_EQ(auth->param("password"), "good");
    EXPECT_EQ(auth->param("ip"), "127.0.0.1");
    auto super = srv.wait_for("/mqtt/superuser",
                              [](const HttpRequest& r) { return r.param("clientid") == "h1"; });
    ASSERT_TRUE(super);
    EXPECT_EQ(super->method, "POST");
    EXPECT_EQ(super->param("username"), "alice");

    // root is a superuser: its subscriptions and publishes skip the ACL.
    RawClient root;
    ASSERT_EQ(connect_rc(root, port(), "h-root", "root", "good"), 0);
    EXPECT_EQ(root.subscribe({{"ok/#", 0}, {"no/#", 0}}), (std::vector<uint8_t>{0, 0}));

    auto got = publish_and_collect(alice, root, "no/1", 1, "ok/marker");
    EXPECT_EQ(got, std::vector<std::string>{"ok/marker"}) << "denied by acl_req";
    auto acl = srv.wait_for("/mqtt/acl",
                            [](const HttpRequest& r) { return r.param("topic") == "no/1"; });
    ASSERT_TRUE(acl);
    EXPECT_EQ(acl->method, "GET");
    EXPECT_EQ(acl->param("access"), "2");
    EXPECT_EQ(acl->param("username"), "alice");
    EXPECT_EQ(acl->param("clientid"), "h1");
    EXPECT_EQ(acl->param("ipaddr"), "127.0.0.1");
    got = publish_and_collect(alice, root, "ok/1", 1, "ok/marker");
    EXPECT_EQ(got, (std::vector<std::string>{"ok/1", "ok/marker"}));

    EXPECT_EQ(alice.subscribe({{"ok/#", 1}, {"no/#", 1}}), (std::vector<uint8_t>{1, 0x80}));
    auto sub = srv.wait_for("/mqtt/acl",
                            [](const HttpRequest& r) { return r.param("topic") == "no/#"; });
    ASSERT_TRUE(sub);
    EXPECT_EQ(sub->param("access"), "1");

    got = publish_and_collect(root, root, "no/2", 0, "ok/marker");
    EXPECT_EQ(got, (std::vector<std::string>{"no/2", "ok/marker"})) << "superuser";
    for (const auto& r : srv.requests_to("/mqtt/acl")) {
        EXPECT_NE(r.param("username"), "root") << "a superuser's ACL is never asked";
    }
}

TEST_F(AuthIt, HttpAuthServerHangsAnswersGarbageOrIsDown) {
    HttpServer srv;
    ASSERT_NO_FATAL_FAILURE(start_broker("{allow, all}.\n", {"mqtt.allow_anonymous=true"}));
    configure("emq_auth_http", http_config(srv, "500"));
    EXPECT_EQ(set_plugin("emq_auth_http", true), 0);
    RawClient c;

    // Anonymous is allowed, yet a failing auth server never opens the door.
    srv.set_responder([](const HttpRequest&) { return hang(); });
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(connect_rc(c, port(), "hang", "u", "good"), kNotAuthorized);
    auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, 400ms);
    EXPECT_LT(waited, 5s) << "auth.http.timeout is 500 ms";

    srv.set_responder([](const HttpRequest&) { return garbage("SSH-2.0-not-http\r\n\r\n"); });
    EXPECT_EQ(connect_rc(c, port(), "garbage", "u", "good"), kNotAuthorized);

    srv.set_responder([](const HttpRequest&) { return reply(500, "boom"); });
    EXPECT_EQ(connect_rc(c, port(), "five-hundred", "u", "good"), kNotAuthorized);

    srv.set_responder(normal_answer);
    EXPECT_EQ(connect_rc(c, port(), "fine", "u", "good"), 0);

    srv.stop();
    EXPECT_EQ(connect_rc(c, port(), "down", "u", "good"), kNotAuthorized);
    EXPECT_GE(metric("messages/received"), 0u);
    EXPECT_NE(broker_->log_text().find("auth server unavailable"), std::string::npos)
            << "refusals are logged";

    // Stopping the plugin at run time: the next CONNECT is anonymous again.
    EXPECT_EQ(set_plugin("emq_auth_http", false), 0);
    EXPECT_EQ(connect_rc(c, port(), "down", "u", "good"), 0);
}

}  // namespace
}  // namespace mqttd::authtest
