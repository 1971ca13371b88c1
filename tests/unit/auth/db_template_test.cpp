// Placeholders of the database plugins (db_template.h): SQL placeholders become bound
// parameters (never text), Redis commands become argv words, LDAP values are RFC 4515
// escaped.
#include "broker/auth/db_template.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd::broker::auth {
namespace {

ClientIdentity identity() {
    ClientIdentity id;
    id.client_id = "dev-1";
    id.username = "alice";
    id.ip = "10.0.0.7";
    id.cert = std::make_shared<const ClientIdentity::CertSubject>(
            ClientIdentity::CertSubject{"cn-a", "CN=cn-a,O=x"});
    return id;
}

TEST(Placeholders, EveryLetter) {
    ClientIdentity id = identity();
    EXPECT_EQ(expand(std::string_view("%u|%c|%a|%C|%d|%P|%%|%"), id),
              "alice|dev-1|10.0.0.7|cn-a|CN=cn-a,O=x|%P|%%|%");
    id.username.reset();
    id.cert.reset();
    EXPECT_EQ(expand(std::string_view("[%u][%C][%d]"), id), "[][][]") << "missing values are empty";
}

TEST(CompileSql, QuotedAndBarePlaceholdersBecomeParameters) {
    auto q = compile_sql("select password from mqtt_user where username = '%u' limit 1",
                         SqlDialect::MySql);
    ASSERT_TRUE(q.ok()) << q.error();
    EXPECT_EQ(q->text, "select password from mqtt_user where username = ? limit 1");
    EXPECT_EQ(q->params, std::vector<char>{'u'});

    auto acl = compile_sql(
            "select allow from mqtt_acl where ipaddr = '%a' or username = '%u' or "
            "username = '$all' or clientid = \"%c\" or x = %C",
            SqlDialect::Postgres);
    ASSERT_TRUE(acl.ok()) << acl.error();
    EXPECT_EQ(acl->text,
              "select allow from mqtt_acl where ipaddr = $1 or username = $2 or username = '$all' "
              "or clientid = $3 or x = $4");
    EXPECT_EQ(acl->params, (std::vector<char>{'a', 'u', 'c', 'C'}));
    ClientIdentity id = identity();
    EXPECT_EQ(bind_values(*acl, id),
              (std::vector<std::string>{"10.0.0.7", "alice", "dev-1", "cn-a"}));
    // The value is never in the text, whatever it holds.
    id.username = "x' or '1'='1";
    EXPECT_EQ(bind_values(*q, id), std::vector<std::string>{"x' or '1'='1"});
    EXPECT_EQ(q->text.find("or '1'"), std::string::npos);
}

TEST(CompileSql, LiteralsAreLeftAlone) {
    auto q =
            compile_sql("select 'it''s %', \"a\\\"b\", '50%' from t where a like 'x%' and b = '%u'",
                        SqlDialect::MySql);
    ASSERT_TRUE(q.ok()) << q.error();
    EXPECT_EQ(q->text, "select 'it''s %', \"a\\\"b\", '50%' from t where a like 'x%' and b = ?");
    EXPECT_TRUE(compile_sql("   ", SqlDialect::MySql)->empty()) << "empty = feature off";
}

TEST(CompileSql, RefusesWhatCannotBeAParameter) {
    for (const char* bad : {"select 1 where a = 'pre%u'", "select 1 where a = '%u%c'",
                            "select 'unterminated", "select 1 where a = ?"}) {
        auto q = compile_sql(bad, SqlDialect::MySql);
        EXPECT_FALSE(q.ok()) << bad;
    }
    EXPECT_NE(compile_sql("select 1 where a = 'pre%u'", SqlDialect::MySql).error().find("%u"),
              std::string::npos);
    EXPECT_FALSE(compile_sql("select 1 where a = $1", SqlDialect::Postgres).ok());
    EXPECT_TRUE(compile_sql("select '$1' where a = '%u'", SqlDialect::Postgres).ok());
    EXPECT_FALSE(compile_sql(std::string(5000, 'x'), SqlDialect::MySql).ok());
}

TEST(RedisCommand, WordsStayWholeArguments) {
    auto cmd = compile_redis("  HMGET   mqtt_user:%u password salt ");
    ASSERT_TRUE(cmd.ok());
    EXPECT_EQ(cmd->words, (std::vector<std::string>{"HMGET", "mqtt_user:%u", "password", "salt"}));
    ClientIdentity id = identity();
    id.username = "a b\r\nFLUSHALL";
    EXPECT_EQ(expand(*cmd, id),
              (std::vector<std::string>{"HMGET", "mqtt_user:a b\r\nFLUSHALL", "password", "salt"}));
    EXPECT_TRUE(compile_redis("")->empty());
}

TEST(LdapEscape, Rfc4515) {
    EXPECT_EQ(ldap_escape("alice"), "alice");
    EXPECT_EQ(ldap_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
    EXPECT_EQ(ldap_escape("a\\b"), "a\\5cb");
    EXPECT_EQ(ldap_escape(std::string("a\0b", 3)), "a\\00b");
    EXPECT_EQ(ldap_escape("x' or '1'='1"), "x' or '1'='1") << "quotes mean nothing in a filter";
    EXPECT_EQ(ldap_escape("é"), "é") << "UTF-8 is valid in a filter value";
}

}  // namespace
}  // namespace mqttd::broker::auth
