// emq_auth_ldap against a real slapd (a generated slapd.conf with data/schema/mqtt_user.schema,
// entries loaded with slapadd, started once for this binary) and the real mqttd: every
// userPassword scheme, superuser, the topic attributes as ACL, filter injection attempts,
// search scope, the server killed and restarted.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "db_auth_fixture.h"
#include "db_servers.h"
#include "server_env.h"

namespace mqttd::dbtest {
namespace {

using itest::RawClient;
using namespace std::chrono_literals;

constexpr const char* kSuffix = "dc=emqtt,dc=io";

struct LdapUser {
    std::string uid;
    std::string password;
    std::string stored;
};

std::vector<LdapUser> users() {
    std::string salt = "s4lt!";
    return {
            {"plainu", "plain pw", "plain pw"},
            {"shau", "sha-pw", "{SHA}" + base64(raw_digest("sha1", "sha-pw"))},
            {"sshau", "ssha-pw", "{SSHA}" + base64(raw_digest("sha1", "ssha-pw" + salt) + salt)},
            {"sha256u", "sha256-pw", "{SHA256}" + base64(raw_digest("sha256", "sha256-pw"))},
            {"ssha512u", "ssha512-pw",
             "{SSHA512}" + base64(raw_digest("sha512", "ssha512-pw" + salt) + salt)},
            {"md5u", "md5-pw", "{MD5}" + base64(raw_digest("md5", "md5-pw"))},
            {"smd5u", "smd5-pw", "{SMD5}" + base64(raw_digest("md5", "smd5-pw" + salt) + salt)},
            {"cryptu", "crypt-pw", "{CRYPT}" + bcrypt("crypt-pw", 5)},
    };
}

std::string ldif() {
    std::string s = std::string("dn: ") + kSuffix +
                    "\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n"
                    "dc: emqtt\no: emqtt\n\n"
                    "dn: ou=device," +
                    kSuffix +
                    "\nobjectClass: organizationalUnit\nou: device\n\n"
                    "dn: ou=other," +
                    kSuffix + "\nobjectClass: organizationalUnit\nou: other\n\n";
    auto entry = [&](const std::string& ou, const std::string& uid, const std::string& pw,
                     const std::string& extra) {
        s += "dn: uid=" + uid + ",ou=" + ou + "," + kSuffix +
             "\nobjectClass: account\nobjectClass: mqttUser\nuid: " + uid +
             "\nuserPassword: " + pw + "\n" + extra + "\n";
    };
    for (const auto& u : users()) {
        entry("device", u.uid, u.stored, "");
    }
    entry("device", "root", "rootpw", "isSuperuser: TRUE\n");
    entry("device", "alice", "alicepw",
          "mqttPublishTopic: alice/pub/#\nmqttPublishTopic: marker/#\n"
          "mqttSubscriptionTopic: alice/sub/+\nmqttPubSubTopic: both/%u\n");
    entry("other", "outsider", "outpw", "");
    return s;
}

auto* const g_env = add_server_env<SlapdServer>(
        [] { return std::make_unique<SlapdServer>(kSuffix, "ldap-root-pw", ldif()); });

class LdapAuth : public DbAuthIt {
protected:
    void SetUp() override { ASSERT_TRUE(g_env->ok()) << g_env->error(); }

    void start_ldap(std::vector<std::string> sets = {}) {
        std::vector<std::string> all = {"auth.ldap.servers=127.0.0.1",
                                        itest::num("auth.ldap.port=", g_env->server().port()),
                                        "auth.ldap.bind_dn=" + g_env->server().root_dn(),
                                        "auth.ldap.bind_password=ldap-root-pw"};
        all.insert(all.end(), sets.begin(), sets.end());
        ASSERT_NO_FATAL_FAILURE(start(all));
        ASSERT_EQ(set_plugin("emq_auth_ldap", true), 0);
    }
};

TEST_F(LdapAuth, EveryPasswordSchemeGoodAndBad) {
    ASSERT_NO_FATAL_FAILURE(start_ldap());
    EXPECT_EQ(plugin_value("emq_auth_ldap", "auth.ldap.device_dn"), "ou=device,dc=emqtt,dc=io");
    for (const auto& u : users()) {
        EXPECT_EQ(connect("c-" + u.uid, u.uid, u.password), 0) << u.stored;
        EXPECT_EQ(connect("c-" + u.uid, u.uid, u.password + "x"), kBadPassword) << u.stored;
        EXPECT_EQ(connect("c-" + u.uid, u.uid, ""), kBadPassword) << u.stored;
    }
    EXPECT_EQ(connect("n1", "nobody", "x"), kNotAuthorized) << "no entry: ignored";
    EXPECT_EQ(connect("n2", "outsider", "outpw"), kNotAuthorized) << "outside device_dn";

    EXPECT_EQ(set_plugin("emq_auth_ldap", false), 0);
    EXPECT_EQ(connect("c-plainu", "plainu", "plain pw"), kNotAuthorized);
    EXPECT_EQ(set_plugin("emq_auth_ldap", true), 0);
    ASSERT_EQ(configure("emq_auth_ldap", {{"auth.ldap.device_dn", "ou=other,dc=emqtt,dc=io"}}), 0);
    EXPECT_EQ(connect("n3", "outsider", "outpw"), 0) << "device_dn applies at once";
    EXPECT_EQ(connect("c-plainu", "plainu", "plain pw"), kNotAuthorized);

    auto r = api("PUT", "nodes/" + node() + "/plugin_configs/emq_auth_ldap",
                 R"({"auth.ldap.username.attributetype": "uid)(x"})");
    EXPECT_NE(r.code(), 0) << "an attribute name is checked";
    EXPECT_EQ(backend_metric("ldap", "errors"), 0u);
}

TEST_F(LdapAuth, SuperuserAndTopicAttributes) {
    ASSERT_NO_FATAL_FAILURE(start_ldap());
    RawClient sub;
    ASSERT_EQ(authtest::connect_rc(sub, port(), "root-sub", "root", "rootpw"), 0);
    EXPECT_EQ(suback(sub, "#"), 1) << "isSuperuser: TRUE";

    RawClient alice;
    ASSERT_EQ(authtest::connect_rc(alice, port(), "alice-1", "alice", "alicepw"), 0);
    EXPECT_TRUE(delivered(alice, sub, "alice/pub/x", "marker/1"));
    EXPECT_FALSE(delivered(alice, sub, "alice/sub/x", "marker/2")) << "subscribe only";
    EXPECT_TRUE(delivered(alice, sub, "both/alice", "marker/3")) << "%u in mqttPubSubTopic";
    EXPECT_EQ(suback(alice, "alice/sub/x"), 1);
    EXPECT_EQ(suback(alice, "alice/sub/#"), 1) << "EMQ 2.x: the filter as written matches";
    EXPECT_EQ(suback(alice, "alice/pub/x"), 0x80);
    EXPECT_EQ(suback(alice, "both/alice"), 1);
    EXPECT_EQ(suback(alice, "both/bob"), 0x80);

    RawClient plain;
    ASSERT_EQ(authtest::connect_rc(plain, port(), "p1", "plainu", "plain pw"), 0);
    EXPECT_EQ(suback(plain, "alice/sub/x"), 0x80) << "no topic attributes: nomatch = deny";
}

TEST_F(LdapAuth, FilterInjectionAttemptsAreRefused) {
    ASSERT_NO_FATAL_FAILURE(start_ldap());
    // Unescaped, each would turn the filter into one that matches some entry.
    EXPECT_EQ(connect("i1", "*", "plain pw"), kNotAuthorized);
    EXPECT_EQ(connect("i2", "*)(uid=*", "plain pw"), kNotAuthorized);
    EXPECT_EQ(connect("i3", "plainu)(|(uid=*", "plain pw"), kNotAuthorized);
    EXPECT_EQ(connect("i4", "pl*", "plain pw"), kNotAuthorized);
    EXPECT_EQ(connect("i5", "x' or '1'='1", "plain pw"), kNotAuthorized);
    EXPECT_EQ(connect("i6", "plainu\\00", "plain pw"), kNotAuthorized);
    EXPECT_EQ(connect("i7", "plainu", "plain pw"), 0);
    EXPECT_EQ(backend_metric("ldap", "errors"), 0u) << "every filter stayed valid";
}

TEST_F(LdapAuth, KilledAndRestartedWhileTheBrokerServes) {
    ASSERT_NO_FATAL_FAILURE(start_ldap({"mqtt.allow_anonymous=true"}));
    EXPECT_EQ(connect("a1", "plainu", "plain pw"), 0);
    EXPECT_EQ(connect("a2", "plainu", "wrong"), kBadPassword);
    g_env->server().kill();
    EXPECT_EQ(connect("a3", "plainu", "wrong"), 0) << "on_error = ignore: the chain goes on";
    EXPECT_EQ(backend_metric("ldap", "down"), 1u);
    EXPECT_EQ(backend_metric("ldap", "outages"), 1u);
    ASSERT_EQ(configure("emq_auth_ldap", {{"auth.ldap.on_error", "deny"}}), 0);
    EXPECT_EQ(connect("a4", "plainu", "plain pw"), kNotAuthorized) << "on_error = deny";
    EXPECT_NE(broker_->log_text().find("emq_auth_ldap: backend unavailable"), std::string::npos);

    ASSERT_EQ(g_env->server().start(), "");
    EXPECT_TRUE(itest::eventually([&] { return connect("a5", "plainu", "plain pw") == 0; }, 20s));
    EXPECT_EQ(connect("a6", "plainu", "wrong"), kBadPassword);
    EXPECT_EQ(backend_metric("ldap", "down"), 0u);
    EXPECT_FALSE(broker_->exited());
}

}  // namespace
}  // namespace mqttd::dbtest
