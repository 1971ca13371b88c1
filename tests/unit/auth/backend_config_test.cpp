// The database plugins' configuration (EMQ 2.x keys, their defaults equal to the config
// file's), their ACL decisions from rows and fields, the LDAP filter, and BackendAuth's
// answers while its backend cannot be reached.
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "broker/auth/backend_auth.h"
#include "broker/auth/ldap_auth.h"
#include "broker/auth/redis_auth.h"
#include "broker/auth/sql_auth.h"
#include "config/keys.h"

namespace mqttd::broker::auth {
namespace {

using namespace std::chrono_literals;

ClientIdentity who(const std::string& user, const std::string& client, const std::string& ip) {
    ClientIdentity id;
    id.username = user;
    id.client_id = client;
    id.ip = ip;
    return id;
}

TEST(BackendConfig, DefaultsAreTheConfigFilesDefaults) {
    for (const auto* list :
         {&redis_defaults(), &mysql_defaults(), &pgsql_defaults(), &ldap_defaults()}) {
        for (const auto& [k, v] : *list) {
            const config::KeyDef* def = config::find_key(k);
            ASSERT_NE(def, nullptr) << k << " is not a config key";
            EXPECT_EQ(def->default_text, v) << k;
        }
    }
    size_t db_keys = 0;
    for (const auto& def : config::all_keys()) {
        for (const char* p : {"auth.redis.", "auth.mysql.", "auth.pgsql.", "auth.ldap."}) {
            db_keys += def.name.rfind(p, 0) == 0 ? 1 : 0;
        }
    }
    EXPECT_EQ(db_keys, redis_defaults().size() + mysql_defaults().size() + pgsql_defaults().size() +
                               ldap_defaults().size());
}

TEST(BackendConfig, ParsesAndRefusesValues) {
    RedisConfig r;
    EXPECT_EQ(r.host, "127.0.0.1");
    EXPECT_EQ(r.port, 6379);
    EXPECT_EQ(r.options.pool, 8u);
    EXPECT_EQ(r.options.query_timeout, 5000ms);
    EXPECT_EQ(r.options.on_error, OnError::Ignore);
    EXPECT_EQ(r.options.cache_ttl.count(), 0);
    EXPECT_EQ(r.set("auth.redis.server", "redis.local:7000"), "");
    EXPECT_EQ(r.host, "redis.local");
    EXPECT_EQ(r.port, 7000);
    EXPECT_EQ(r.set("auth.redis.query_timeout", "250ms"), "");
    EXPECT_EQ(r.options.query_timeout, 250ms);
    EXPECT_EQ(r.set("auth.redis.query_timeout", "2"), "");
    EXPECT_EQ(r.options.query_timeout, 2000ms);
    EXPECT_EQ(r.set("auth.redis.on_error", "deny"), "");
    EXPECT_EQ(r.options.on_error, OnError::Deny);
    EXPECT_EQ(r.set("auth.redis.super_cmd", ""), "");
    EXPECT_FALSE(r.options.has_super);
    for (auto [k, v] :
         std::vector<std::pair<std::string, std::string>>{{"auth.redis.server", "a:b"},
                                                          {"auth.redis.server", ""},
                                                          {"auth.redis.pool", "0"},
                                                          {"auth.redis.pool", "65"},
                                                          {"auth.redis.database", "-1"},
                                                          {"auth.redis.query_timeout", "0"},
                                                          {"auth.redis.query_timeout", "5 hours"},
                                                          {"auth.redis.on_error", "maybe"},
                                                          {"auth.redis.cache_ttl", "2d"},
                                                          {"auth.redis.password_hash", "rot13"},
                                                          {"auth.redis.bogus", "1"},
                                                          {"auth.mysql.server", "x"}}) {
        RedisConfig c;
        std::string err = c.set(k, v);
        EXPECT_NE(err, "") << k << "=" << v;
        EXPECT_EQ(err.rfind(k, 0), 0u) << "the error names the key: " << err;
    }

    MysqlConfig m;
    EXPECT_EQ(m.port, 3306);
    EXPECT_EQ(m.auth_query.text, "select password from mqtt_user where username = ? limit 1");
    EXPECT_EQ(m.options.hash.text(), "sha256");
    EXPECT_NE(m.set("auth.mysql.auth_query", "select 1 where a = 'x%u'"), "");
    EXPECT_NE(m.set("auth.mysql.ssl", "true"), "") << "pgsql only";
    PgsqlConfig p;
    EXPECT_EQ(p.port, 5432);
    EXPECT_EQ(p.username, "root");
    EXPECT_EQ(p.auth_query.text, "select password from mqtt_user where username = $1 limit 1");
    EXPECT_EQ(p.set("auth.pgsql.ssl", "true"), "");
    EXPECT_TRUE(p.ssl);
    EXPECT_NE(p.set("auth.pgsql.ssl", "yes"), "");

    LdapConfig l;
    EXPECT_EQ(l.servers, std::vector<std::string>{"127.0.0.1"});
    EXPECT_EQ(l.set("auth.ldap.servers", "a.example, b.example"), "");
    EXPECT_EQ(l.servers, (std::vector<std::string>{"a.example", "b.example"}));
    EXPECT_NE(l.set("auth.ldap.username.attributetype", "uid)(x"), "");
    EXPECT_NE(l.set("auth.ldap.password_hash", "plain"), "") << "schemes are in the values";
    EXPECT_NE(l.set("auth.ldap.timeout", "0"), "");
}

TEST(LdapConfig, FilterEscapesTheUsername) {
    LdapConfig l;
    EXPECT_EQ(l.filter_for("alice"), "(&(objectClass=mqttUser)(uid=alice))");
    EXPECT_EQ(l.filter_for("*)(uid=*"), "(&(objectClass=mqttUser)(uid=\\2a\\29\\28uid=\\2a))");
}

TEST(RedisAcl, FieldsGrantOrDeny) {
    std::vector<std::pair<std::string, std::string>> f = {
            {"a/pub/#", "2"}, {"a/sub/+", "1"}, {"both/%u", "3"}, {"bad/#", "x"}, {"bad/+/#", "4"}};
    ClientIdentity id = who("al", "c1", "1.2.3.4");
    EXPECT_EQ(redis_acl_decide({}, id, Access::Publish, "a/pub/1"), Verdict::Ignore);
    EXPECT_EQ(redis_acl_decide(f, id, Access::Publish, "a/pub/1"), Verdict::Allow);
    EXPECT_EQ(redis_acl_decide(f, id, Access::Subscribe, "a/pub/1"), Verdict::Deny);
    EXPECT_EQ(redis_acl_decide(f, id, Access::Subscribe, "a/sub/x"), Verdict::Allow);
    // EMQ 2.x: the subscribed filter as written, its '#' a word that the rule's '+' matches.
    EXPECT_EQ(redis_acl_decide(f, id, Access::Subscribe, "a/sub/#"), Verdict::Allow);
    EXPECT_EQ(redis_acl_decide(f, id, Access::Publish, "both/al"), Verdict::Allow);
    EXPECT_EQ(redis_acl_decide(f, id, Access::Publish, "both/bo"), Verdict::Deny);
    EXPECT_EQ(redis_acl_decide(f, id, Access::Publish, "bad/x"), Verdict::Deny)
            << "a malformed access value grants nothing";
}

TEST(SqlAcl, RowsAsEmqReadsThem) {
    auto row = [](const char* allow, const char* ip, const char* user, const char* client,
                  const char* access, const char* topic) {
        auto v = [](const char* s) {
            return s ? std::optional<std::string>(s) : std::nullopt;
        };
        return SqlRow{v(allow), v(ip), v(user), v(client), v(access), v(topic)};
    };
    std::vector<SqlRow> rows = {
            row("1", nullptr, "$all", nullptr, "2", "#"),
            row("0", nullptr, "$all", nullptr, "1", "$SYS/#"),
            row("0", nullptr, "$all", nullptr, "1", "eq #"),
            row("1", "127.0.0.1", nullptr, nullptr, "2", "$SYS/#"),
            row("1", nullptr, "dashboard", nullptr, "1", "$SYS/#"),
            row("1", "10.0.0.0/8", "al", "c1", "1", "and/%c"),
            row(nullptr, nullptr, "$all", nullptr, "1", "null/allow"),
            row("1", nullptr, nullptr, nullptr, "1", "nobody"),
    };
    ClientIdentity dash = who("dashboard", "d", "9.9.9.9");
    ClientIdentity al = who("al", "c1", "10.1.2.3");
    EXPECT_EQ(sql_acl_decide(rows, dash, Access::Subscribe, "$SYS/brokers"), Verdict::Allow)
            << "EMQ's sample: the last row (dashboard) is tried first";
    EXPECT_EQ(sql_acl_decide(rows, al, Access::Subscribe, "$SYS/brokers"), Verdict::Deny);
    EXPECT_EQ(sql_acl_decide(rows, al, Access::Subscribe, "#"), Verdict::Deny) << "eq #";
    EXPECT_EQ(sql_acl_decide(rows, al, Access::Publish, "any/thing"), Verdict::Allow);
    EXPECT_EQ(sql_acl_decide(rows, al, Access::Subscribe, "and/c1"), Verdict::Allow);
    EXPECT_EQ(sql_acl_decide(rows, who("al", "c2", "10.1.2.3"), Access::Subscribe, "and/c2"),
              Verdict::Ignore)
            << "every named column must match";
    EXPECT_EQ(sql_acl_decide(rows, who("al", "c1", "11.0.0.1"), Access::Subscribe, "and/c1"),
              Verdict::Ignore);
    EXPECT_EQ(sql_acl_decide(rows, al, Access::Subscribe, "null/allow"), Verdict::Ignore);
    EXPECT_EQ(sql_acl_decide(rows, al, Access::Subscribe, "nobody"), Verdict::Ignore);
    EXPECT_EQ(sql_acl_decide({}, al, Access::Publish, "x"), Verdict::Ignore);
    EXPECT_EQ(sql_acl_decide(rows, who("x", "y", "127.0.0.1"), Access::Publish, "$SYS/a"),
              Verdict::Allow);
}

TEST(BackendAuth, UnreachableBackendFollowsOnErrorAndBacksOff) {
    std::atomic<int> attempts{0};
    Connector fail = [&]() -> Result<std::unique_ptr<BackendConnection>, BackendError> {
        attempts.fetch_add(1);
        return Err(BackendError{"connection refused", false});
    };
    auto ask = [](BackendAuth& b, const ClientIdentity& id) {
        std::promise<Decision> p;
        b.authenticate(id, [&p](Decision d) { p.set_value(std::move(d)); });
        return p.get_future().get();
    };
    ClientIdentity id = who("u", "c", "1.1.1.1");
    id.password = std::make_shared<const std::string>("pw");

    auto stats = std::make_shared<BackendStats>("auth/test/");
    BackendOptions o;
    o.pool = 2;
    {
        BackendAuth ignore("emq_auth_test", o, fail, stats);
        EXPECT_EQ(ask(ignore, id).verdict, Verdict::Ignore);
        EXPECT_EQ(ask(ignore, id).verdict, Verdict::Ignore);
        EXPECT_EQ(attempts.load(), 1) << "the second is inside the backoff: not tried";
        ClientIdentity anon = id;
        anon.username.reset();
        EXPECT_EQ(ask(ignore, anon).verdict, Verdict::Ignore);
        EXPECT_EQ(attempts.load(), 1) << "no username: not asked";
    }
    o.on_error = OnError::Deny;
    BackendAuth deny("emq_auth_test", o, fail, stats);
    Decision d = ask(deny, id);
    EXPECT_EQ(d.verdict, Verdict::Deny);
    EXPECT_TRUE(d.error);
    EXPECT_NE(d.reason.find("connection refused"), std::string::npos) << d.reason;
    auto m = stats->metrics();
    auto get = [&](const std::string& name) {
        for (const auto& [k, v] : m) {
            if (k == "auth/test/" + name) {
                return v;
            }
        }
        return uint64_t{999};
    };
    EXPECT_EQ(get("outages"), 1u) << "one outage, however many failures";
    EXPECT_EQ(get("errors"), 3u);
    EXPECT_EQ(get("down"), 1u);
    EXPECT_EQ(get("queries"), 0u);
}

}  // namespace
}  // namespace mqttd::broker::auth
