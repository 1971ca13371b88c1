// emq_auth_pgsql against a real PostgreSQL 15 server (initdb + postgres, started once for
// this binary) loaded with EMQ's schema (data/schema/pgsql.sql), and the real mqttd. The test
// bodies are SqlAuthIt's (db_auth_fixture.h), shared with emq_auth_mysql.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "db_auth_fixture.h"
#include "db_servers.h"
#include "server_env.h"

namespace mqttd::dbtest {
namespace {

std::string schema() {
    std::ifstream in(source_dir() + "/data/schema/pgsql.sql");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

auto* const g_env = add_server_env<PostgresServer>(
        [] { return std::make_unique<PostgresServer>(); },
        [](PostgresServer& db) -> std::string {
            RunResult r =
                    db.sql("create database mqtt; create role mqttd login password 'mqttd-pw';");
            if (r.status == 0) {
                r = db.sql(schema() + "grant select on mqtt_user, mqtt_acl to mqttd;", "mqtt");
            }
            return r.status == 0 ? "" : "loading data/schema/pgsql.sql: " + r.output;
        });

class PgsqlAuth : public SqlAuthIt {
protected:
    void SetUp() override {
        ASSERT_TRUE(g_env->ok()) << g_env->error();
        exec("delete from mqtt_user; delete from mqtt_acl;");
    }
    std::string db() const override { return "pgsql"; }
    void exec(const std::string& sql) override {
        RunResult r = g_env->server().sql(sql, "mqtt");
        ASSERT_EQ(r.status, 0) << sql << ": " << r.output;
    }
    void kill_server() override { g_env->server().kill(); }
    std::string restart_server() override { return g_env->server().start(); }
    std::vector<std::string> server_sets() const override {
        return {itest::num("auth.pgsql.server=127.0.0.1:", g_env->server().port()),
                "auth.pgsql.username=mqttd", "auth.pgsql.password=mqttd-pw",
                "auth.pgsql.database=mqtt"};
    }
    std::string slow_auth_query() const override {
        return "select password from mqtt_user, pg_sleep(3) where username = '%u'";
    }
};

TEST_F(PgsqlAuth, EveryPasswordHashGoodAndBad) {
    every_password_hash();
}
TEST_F(PgsqlAuth, SuperuserAndAclRows) {
    superuser_and_acl_rows();
}
TEST_F(PgsqlAuth, Placeholders) {
    placeholders();
}
TEST_F(PgsqlAuth, InjectionAttemptsAreRefused) {
    injection_attempts();
}
TEST_F(PgsqlAuth, KilledAndRestartedWhileTheBrokerServes) {
    killed_and_restarted();
}
TEST_F(PgsqlAuth, ServerPastTheQueryTimeout) {
    past_the_query_timeout();
}

}  // namespace
}  // namespace mqttd::dbtest
