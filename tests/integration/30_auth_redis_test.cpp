// emq_auth_redis against a real redis-server (started once for this binary, flushed before
// each test) and the real mqttd: every password hash, superuser, ACL fields for publish and
// subscribe, placeholders, usernames that would be injection in a text protocol, the server
// killed and restarted, a server that stops answering past the query timeout, the auth cache,
// run-time start/stop and configuration through the command line and plugin_configs.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "certs.h"
#include "db_auth_fixture.h"
#include "db_servers.h"
#include "server_env.h"

namespace mqttd::dbtest {
namespace {

using itest::RawClient;
using namespace std::chrono_literals;

auto* const g_env = add_server_env<RedisServer>();

class RedisAuth : public DbAuthIt {
public:
    void SetUp() override {
        ASSERT_TRUE(g_env->ok()) << g_env->error();
        ASSERT_EQ(redis({"FLUSHALL"}), "OK");
    }

    std::string redis(const std::vector<std::string>& args) {
        RunResult r = g_env->server().cli(args);
        EXPECT_EQ(r.status, 0) << r.output;
        while (!r.output.empty() && (r.output.back() == '\n' || r.output.back() == '\r')) {
            r.output.pop_back();
        }
        return r.output;
    }

    // A broker whose emq_auth_redis points at the test server (through --set, i.e. the
    // config layer) and is started through REST.
    void start_redis(std::vector<std::string> sets = {}) {
        std::vector<std::string> all = {
                itest::num("auth.redis.server=127.0.0.1:", g_env->server().port())};
        all.insert(all.end(), sets.begin(), sets.end());
        ASSERT_NO_FATAL_FAILURE(start(all));
        ASSERT_EQ(set_plugin("emq_auth_redis", true), 0);
    }

    void add_user(const std::string& name,
                  const std::string& stored,
                  const std::string& salt = "",
                  bool super = false) {
        std::vector<std::string> cmd = {"HSET", "mqtt_user:" + name, "password", stored};
        if (!salt.empty()) {
            cmd.insert(cmd.end(), {"salt", salt});
        }
        if (super) {
            cmd.insert(cmd.end(), {"is_superuser", "1"});
        }
        redis(cmd);
    }
};

TEST_F(RedisAuth, EveryPasswordHashGoodAndBad) {
    ASSERT_NO_FATAL_FAILURE(start_redis({"auth.redis.auth_cmd=HMGET mqtt_user:%u password salt"}));
    EXPECT_EQ(plugin_value("emq_auth_redis", "auth.redis.server"),
              itest::num("127.0.0.1:", g_env->server().port()))
            << "the command line's value is the plugin's";
    auto cases = hash_cases();
    for (size_t i = 0; i < cases.size(); ++i) {
        const HashCase& hc = cases[i];
        std::string user = itest::num("u", static_cast<long long>(i));
        add_user(user, hc.stored, hc.salt);
        ASSERT_EQ(configure("emq_auth_redis", {{"auth.redis.password_hash", hc.spec}}), 0);
        EXPECT_EQ(connect("c" + user, user, hc.password), 0) << hc.spec;
        EXPECT_EQ(connect("c" + user, user, hc.password + "x"), kBadPassword) << hc.spec;
        EXPECT_EQ(connect("c" + user, user, ""), kBadPassword) << hc.spec;
    }
    EXPECT_EQ(connect("nobody", "nobody", "pw"), kNotAuthorized) << "unknown user: ignored";

    // Run-time switch.
    ASSERT_EQ(configure("emq_auth_redis", {{"auth.redis.password_hash", "plain"}}), 0);
    EXPECT_EQ(connect("c0", "u0", "pw plain"), 0);
    EXPECT_EQ(set_plugin("emq_auth_redis", false), 0);
    EXPECT_EQ(connect("c0", "u0", "pw plain"), kNotAuthorized) << "stopped: nobody asks Redis";
    EXPECT_EQ(set_plugin("emq_auth_redis", true), 0);
    EXPECT_EQ(connect("c0", "u0", "pw plain"), 0);

    // A bad value is refused with the spec's code and changes nothing.
    auto r = api("PUT", "nodes/" + node() + "/plugin_configs/emq_auth_redis",
                 R"({"auth.redis.password_hash": "rot13"})");
    EXPECT_NE(r.code(), 0);
    EXPECT_NE(r.message().find("auth.redis.password_hash"), std::string::npos) << r.message();
    EXPECT_EQ(plugin_value("emq_auth_redis", "auth.redis.password_hash"), "plain");
    EXPECT_EQ(connect("c0", "u0", "pw plain"), 0);
    EXPECT_GT(backend_metric("redis", "queries"), 0u);
    EXPECT_EQ(backend_metric("redis", "errors"), 0u);
}

TEST_F(RedisAuth, SuperuserAndAclFields) {
    ASSERT_NO_FATAL_FAILURE(start_redis());
    add_user("root", "rootpw", "", true);
    add_user("alice", "alicepw");
    add_user("bob", "bobpw");
    redis({"HSET", "mqtt_acl:alice", "alice/pub/#", "2", "alice/sub/+", "1", "both/%u", "3",
           "marker/#", "2"});

    RawClient sub;
    ASSERT_EQ(authtest::connect_rc(sub, port(), "root-sub", "root", "rootpw"), 0);
    EXPECT_EQ(suback(sub, "#"), 1) << "a superuser skips the ACL";

    RawClient alice;
    ASSERT_EQ(authtest::connect_rc(alice, port(), "alice-1", "alice", "alicepw"), 0);
    EXPECT_TRUE(delivered(alice, sub, "alice/pub/x", "marker/1"));
    EXPECT_FALSE(delivered(alice, sub, "alice/other", "marker/2")) << "no field grants it";
    EXPECT_FALSE(delivered(alice, sub, "alice/sub/x", "marker/3")) << "1 = subscribe only";
    EXPECT_TRUE(delivered(alice, sub, "both/alice", "marker/4")) << "%u substituted";
    EXPECT_EQ(suback(alice, "alice/sub/x"), 1);
    EXPECT_EQ(suback(alice, "alice/sub/+"), 1);
    EXPECT_EQ(suback(alice, "alice/sub/#"), 1)
            << "EMQ 2.x: the filter as written matches alice/sub/+";
    EXPECT_EQ(suback(alice, "alice/pub/x"), 0x80) << "2 = publish only";
    EXPECT_EQ(suback(alice, "both/alice"), 1);
    EXPECT_EQ(suback(alice, "#"), 0x80);

    // bob has no ACL fields: Redis has no opinion, mqtt.acl_nomatch (deny) decides.
    RawClient bob;
    ASSERT_EQ(authtest::connect_rc(bob, port(), "bob-1", "bob", "bobpw"), 0);
    EXPECT_EQ(suback(bob, "alice/sub/x"), 0x80);
    EXPECT_EQ(suback(bob, "anything"), 0x80);
    EXPECT_FALSE(broker_->exited());
}

TEST_F(RedisAuth, PlaceholdersClientIdAndAddress) {
    ASSERT_NO_FATAL_FAILURE(start_redis({"auth.redis.auth_cmd=HMGET mqtt_client:%c password",
                                         "auth.redis.super_cmd=HGET mqtt_ip:%a super",
                                         "auth.redis.acl_cmd=HGETALL mqtt_acl:%c"}));
    redis({"HSET", "mqtt_client:dev-7", "password", "devpw"});
    redis({"HSET", "mqtt_acl:dev-7", "devices/%c/#", "3", "users/%u/#", "2"});
    EXPECT_EQ(connect("dev-7", "any-name", "devpw"), 0) << "%c keys the lookup";
    EXPECT_EQ(connect("dev-8", "any-name", "devpw"), kNotAuthorized);

    RawClient dev;
    ASSERT_EQ(authtest::connect_rc(dev, port(), "dev-7", "carol", "devpw"), 0);
    EXPECT_EQ(suback(dev, "devices/dev-7/cmd"), 1);
    EXPECT_EQ(suback(dev, "devices/dev-8/cmd"), 0x80);
    EXPECT_EQ(suback(dev, "users/carol/x"), 0x80) << "publish only";

    // %a: the peer address keys the superuser lookup.
    redis({"HSET", "mqtt_ip:127.0.0.1", "super", "1"});
    RawClient dev2;
    ASSERT_EQ(authtest::connect_rc(dev2, port(), "dev-7", "carol", "devpw"), 0);
    EXPECT_EQ(suback(dev2, "devices/dev-8/cmd"), 1) << "superuser from 127.0.0.1";
}

// %C / %d: the verified client certificate's subject CN and DN (a TLS listener with
// verify_peer); empty without a certificate, so a TCP client finds no entry.
TEST_F(RedisAuth, PlaceholdersOfTheClientCertificate) {
    itest::TestCerts certs;
    itest::make_test_certs(certs);
    ASSERT_FALSE(HasFatalFailure());
    const uint16_t tls_port = itest::free_port();
    std::vector<std::string> sets =
            itest::tls_listener_sets("listener.ssl.external", tls_port, certs);
    sets.emplace_back("listener.ssl.external.verify=verify_peer");
    sets.emplace_back("auth.redis.auth_cmd=HMGET mqtt_cert:%C/%d password");
    ASSERT_NO_FATAL_FAILURE(start_redis(sets));
    redis({"HSET", "mqtt_cert:device-7/CN=device-7,O=acme", "password", "certpw"});
    auto pub = [&](const std::string& password) {
        return itest::run_command({"mosquitto_pub",
                                   "-h",
                                   "localhost",
                                   "-p",
                                   std::to_string(tls_port),
                                   "--cafile",
                                   certs.ca,
                                   "--cert",
                                   certs.client_cert,
                                   "--key",
                                   certs.client_key,
                                   "-i",
                                   "cert-client",
                                   "-u",
                                   "anyone",
                                   "-P",
                                   password,
                                   "-t",
                                   "c/1",
                                   "-m",
                                   "x",
                                   "-q",
                                   "1"},
                                  10s);
    };
    auto ok = pub("certpw");
    EXPECT_EQ(ok.first, 0) << "%C and %d key the password lookup: " << ok.second;
    EXPECT_NE(pub("wrong").first, 0);
    EXPECT_EQ(connect("tcp-client", "anyone", "certpw"), kNotAuthorized)
            << "no certificate: %C and %d are empty";
    EXPECT_EQ(redis({"HSET", "mqtt_cert:/", "password", "certpw"}), "1");
    EXPECT_EQ(connect("tcp-client", "anyone", "certpw"), 0) << "the key with both empty";
}

TEST_F(RedisAuth, InjectionAttemptsAreRefused) {
    ASSERT_NO_FATAL_FAILURE(start_redis());
    add_user("alice", "alicepw");
    add_user("x", "xpw");
    // Split on spaces into words, "alice password" would read alice's hash as a second field.
    EXPECT_EQ(connect("i1", "alice password", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i2", "x' or '1'='1", "xpw"), kNotAuthorized);
    EXPECT_EQ(connect("i3", "*)(uid=*", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i4", "alice\r\nFLUSHALL\r\n", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i5", "*", "alicepw"), kNotAuthorized);
    EXPECT_EQ(redis({"EXISTS", "mqtt_user:alice"}), "1") << "nothing was flushed";
    EXPECT_EQ(connect("i6", "alice", "alicepw"), 0);
}

TEST_F(RedisAuth, KilledAndRestartedWhileTheBrokerServes) {
    ASSERT_NO_FATAL_FAILURE(start_redis({"mqtt.allow_anonymous=true"}));
    add_user("alice", "alicepw");
    EXPECT_EQ(connect("a1", "alice", "alicepw"), 0);
    EXPECT_EQ(connect("a2", "alice", "wrong"), kBadPassword);
    EXPECT_EQ(backend_metric("redis", "down"), 0u);

    g_env->server().kill();
    // on_error = ignore: Redis has no opinion, the chain goes on (to the anonymous rule here).
    EXPECT_EQ(connect("a3", "alice", "wrong"), 0);
    EXPECT_EQ(connect("a4", "alice", "wrong"), 0);
    EXPECT_EQ(backend_metric("redis", "down"), 1u);
    EXPECT_EQ(backend_metric("redis", "outages"), 1u) << "one outage, counted once";
    EXPECT_GE(backend_metric("redis", "errors"), 2u);
    ASSERT_EQ(configure("emq_auth_redis", {{"auth.redis.on_error", "deny"}}), 0);
    EXPECT_EQ(connect("a5", "alice", "alicepw"), kNotAuthorized) << "on_error = deny";
    EXPECT_EQ(connect("a6", std::nullopt, std::nullopt), 0) << "no username: Redis is not asked";
    EXPECT_NE(broker_->log_text().find("emq_auth_redis: backend unavailable"), std::string::npos);

    ASSERT_EQ(g_env->server().start(), "");
    add_user("alice", "alicepw");  // no persistence: the restarted server is empty
    EXPECT_TRUE(itest::eventually([&] { return connect("a7", "alice", "alicepw") == 0; }, 20s));
    EXPECT_EQ(connect("a8", "alice", "wrong"), kBadPassword);
    EXPECT_EQ(backend_metric("redis", "down"), 0u);
    EXPECT_NE(broker_->log_text().find("emq_auth_redis: backend available again"),
              std::string::npos);
    EXPECT_FALSE(broker_->exited());
}

TEST_F(RedisAuth, ServerPastTheQueryTimeout) {
    ASSERT_NO_FATAL_FAILURE(
            start_redis({"auth.redis.query_timeout=500ms", "auth.redis.on_error=deny",
                         "auth.user.1.username=local", "auth.user.1.password=localpw"}));
    ASSERT_EQ(set_plugin("emq_auth_username", true), 0);
    add_user("alice", "alicepw");
    EXPECT_EQ(connect("s1", "alice", "alicepw"), 0);
    // Every command of every client waits 3 s: Redis is there but does not answer in time.
    ASSERT_EQ(redis({"CLIENT", "PAUSE", "3000", "ALL"}), "OK");
    EXPECT_EQ(connect("s2", "alice", "alicepw"), kNotAuthorized) << "timed out: on_error = deny";
    EXPECT_EQ(connect("s3", "local", "localpw"), 0) << "other clients are not held up";
    EXPECT_GE(backend_metric("redis", "timeouts"), 1u);
    EXPECT_TRUE(itest::eventually([&] { return connect("s4", "alice", "alicepw") == 0; }, 20s));

    // DEBUG SLEEP blocks the server itself: the same, for a slow command.
    ASSERT_EQ(configure("emq_auth_redis", {{"auth.redis.auth_cmd", "HMGET mqtt_user:%u password"},
                                           {"auth.redis.super_cmd", "DEBUG SLEEP 2"}}),
              0);
    EXPECT_EQ(connect("s5", "alice", "alicepw"), 0) << "a failed super_cmd withholds superuser";
    EXPECT_GE(backend_metric("redis", "timeouts"), 2u);
    EXPECT_FALSE(broker_->exited());
}

TEST_F(RedisAuth, PasswordAndDatabaseKeys) {
    redis({"-n", "3", "HSET", "mqtt_user:in3", "password", "pw3"});
    add_user("in0", "pw0");
    ASSERT_NO_FATAL_FAILURE(start_redis({"auth.redis.database=3"}));
    EXPECT_EQ(connect("d1", "in3", "pw3"), 0) << "SELECT 3 after connecting";
    EXPECT_EQ(connect("d2", "in0", "pw0"), kNotAuthorized) << "database 0 is not read";

    // A server that requires a password: AUTH with auth.redis.password.
    ASSERT_EQ(redis({"CONFIG", "SET", "requirepass", "s3cret"}), "OK");
    struct Reset {
        RedisAuth* t;
        ~Reset() {
            t->redis({"-a", "s3cret", "--no-auth-warning", "CONFIG", "SET", "requirepass", ""});
        }
    } reset{this};
    ASSERT_EQ(configure("emq_auth_redis", {{"auth.redis.password", "s3cret"}}), 0);
    EXPECT_EQ(connect("d3", "in3", "pw3"), 0);
    ASSERT_EQ(configure("emq_auth_redis", {{"auth.redis.password", "wrong"}}), 0);
    EXPECT_EQ(connect("d4", "in3", "pw3"), kNotAuthorized) << "AUTH refused: on_error = ignore";
    EXPECT_EQ(backend_metric("redis", "down"), 1u);
}

TEST_F(RedisAuth, AuthCacheAnswersRepeatedConnects) {
    ASSERT_NO_FATAL_FAILURE(start_redis({"auth.redis.cache_ttl=60"}));
    add_user("alice", "alicepw");
    EXPECT_EQ(connect("k1", "alice", "alicepw"), 0);
    uint64_t queries = backend_metric("redis", "queries");
    EXPECT_EQ(connect("k1", "alice", "alicepw"), 0);
    EXPECT_EQ(backend_metric("redis", "cache_hits"), 1u);
    EXPECT_EQ(backend_metric("redis", "queries"), queries) << "answered from the cache";
    EXPECT_EQ(connect("k1", "alice", "wrong"), kBadPassword) << "a wrong password is asked";
    EXPECT_EQ(connect("k2", "alice", "alicepw"), 0) << "the commands use %u only";
    EXPECT_EQ(backend_metric("redis", "cache_hits"), 2u);

    // With %c in a command the client id is part of the entry.
    ASSERT_EQ(configure("emq_auth_redis", {{"auth.redis.super_cmd", "HGET mqtt_super:%c x"}}), 0);
    EXPECT_EQ(connect("k1", "alice", "alicepw"), 0);
    EXPECT_EQ(connect("k1", "alice", "alicepw"), 0);
    EXPECT_EQ(backend_metric("redis", "cache_hits"), 3u);
    EXPECT_EQ(connect("k2", "alice", "alicepw"), 0);
    EXPECT_EQ(backend_metric("redis", "cache_hits"), 3u) << "another client id, another entry";
}

}  // namespace
}  // namespace mqttd::dbtest
