// emq_auth_mysql against a real MariaDB server (mariadb-install-db + mariadbd, started once for
// this binary) loaded with EMQ's schema (data/schema/mysql.sql), and the real mqttd. The test
// bodies are SqlAuthIt's (db_auth_fixture.h), shared with emq_auth_pgsql.
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
    std::ifstream in(source_dir() + "/data/schema/mysql.sql");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

auto* const g_env = add_server_env<MariaDbServer>(
        [] { return std::make_unique<MariaDbServer>(); },
        [](MariaDbServer& db) -> std::string {
            RunResult r =
                    db.sql("create database mqtt; create user 'mqttd'@'%' identified by 'mqttd-pw';"
                           "grant select on mqtt.* to 'mqttd'@'%'; use mqtt;" +
                           schema());
            return r.status == 0 ? "" : "loading data/schema/mysql.sql: " + r.output;
        });

class MysqlAuth : public SqlAuthIt {
protected:
    void SetUp() override {
        ASSERT_TRUE(g_env->ok()) << g_env->error();
        exec("delete from mqtt_user; delete from mqtt_acl;");
    }
    std::string db() const override { return "mysql"; }
    void exec(const std::string& sql) override {
        RunResult r = g_env->server().sql("use mqtt;" + sql);
        ASSERT_EQ(r.status, 0) << sql << ": " << r.output;
    }
    void kill_server() override { g_env->server().kill(); }
    std::string restart_server() override { return g_env->server().start(); }
    std::vector<std::string> server_sets() const override {
        return {itest::num("auth.mysql.server=127.0.0.1:", g_env->server().port()),
                "auth.mysql.username=mqttd", "auth.mysql.password=mqttd-pw",
                "auth.mysql.database=mqtt"};
    }
    std::string slow_auth_query() const override {
        return "select password from mqtt_user where username = '%u' and sleep(3) = 0";
    }
};

TEST_F(MysqlAuth, EveryPasswordHashGoodAndBad) {
    every_password_hash();
}
TEST_F(MysqlAuth, SuperuserAndAclRows) {
    superuser_and_acl_rows();
}
TEST_F(MysqlAuth, Placeholders) {
    placeholders();
}
TEST_F(MysqlAuth, InjectionAttemptsAreRefused) {
    injection_attempts();
}
TEST_F(MysqlAuth, KilledAndRestartedWhileTheBrokerServes) {
    killed_and_restarted();
}
TEST_F(MysqlAuth, ServerPastTheQueryTimeout) {
    past_the_query_timeout();
}

}  // namespace
}  // namespace mqttd::dbtest
