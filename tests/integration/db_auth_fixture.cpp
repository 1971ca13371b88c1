#include "db_auth_fixture.h"

#include <memory>

#include <crypt.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace mqttd::dbtest {

std::string raw_digest(const std::string& algo, const std::string& data) {
    const EVP_MD* md = EVP_get_digestbyname(algo.c_str());
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
    return std::string(reinterpret_cast<char*>(out), len);
}

namespace {

std::string to_hex(const std::string& raw) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
    return out;
}

std::string pbkdf2(const std::string& algo,
                   const std::string& pw,
                   const std::string& salt,
                   int iterations,
                   int len) {
    std::string out(static_cast<size_t>(len), '\0');
    PKCS5_PBKDF2_HMAC(pw.data(), static_cast<int>(pw.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()),
                      static_cast<int>(salt.size()), iterations, EVP_get_digestbyname(algo.c_str()),
                      len, reinterpret_cast<unsigned char*>(out.data()));
    return to_hex(out);
}

}  // namespace

std::string hex_digest(const std::string& algo, const std::string& data) {
    return to_hex(raw_digest(algo, data));
}

std::string base64(const std::string& raw) {
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string bcrypt(const std::string& password, int cost) {
    unsigned char rnd[16];
    RAND_bytes(rnd, sizeof rnd);
    char setting[64];
    crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), reinterpret_cast<char*>(rnd),
                     sizeof rnd, setting, sizeof setting);
    auto data = std::make_unique<crypt_data>();
    return crypt_r(password.c_str(), setting, data.get());
}

std::vector<HashCase> hash_cases() {
    std::vector<HashCase> out;
    auto add = [&](std::string spec, std::string pw, std::string stored, std::string salt) {
        out.push_back({std::move(spec), std::move(pw), std::move(stored), std::move(salt)});
    };
    add("plain", "pw plain", "pw plain", "");
    add("md5", "pw-md5", hex_digest("md5", "pw-md5"), "");
    add("sha", "pw-sha", hex_digest("sha1", "pw-sha"), "");
    add("sha256", "pw-sha256", hex_digest("sha256", "pw-sha256"), "");
    add("sha512", "pw-sha512", hex_digest("sha512", "pw-sha512"), "");
    add("salt,sha256", "pw-ss", hex_digest("sha256", "NaCl" + std::string("pw-ss")), "NaCl");
    add("sha256,salt", "pw-sss", hex_digest("sha256", std::string("pw-sss") + "NaCl"), "NaCl");
    add("salt,md5", "pw-sm", hex_digest("md5", "s1" + std::string("pw-sm")), "s1");
    std::string b = bcrypt("pw-bcrypt", 5);
    add("bcrypt", "pw-bcrypt", b, "");
    std::string b2 = bcrypt("pw-bcrypt2", 5);
    add("salt,bcrypt", "pw-bcrypt2", b2, b2.substr(0, 29));
    add("pbkdf2,sha256,1000,20", "pw-pbkdf2", pbkdf2("sha256", "pw-pbkdf2", "salty", 1000, 20),
        "salty");
    add("pbkdf2,sha512,500,32", "pw-pbkdf2b", pbkdf2("sha512", "pw-pbkdf2b", "s2", 500, 32), "s2");
    return out;
}

void DbAuthIt::start(std::vector<std::string> sets) {
    std::vector<std::string> all = {"mqtt.allow_anonymous=false", "mqtt.acl_nomatch=deny"};
    all.insert(all.end(), sets.begin(), sets.end());
    ASSERT_NO_FATAL_FAILURE(start_broker(std::string(), all));
}

int DbAuthIt::connect(const std::string& client_id,
                      const std::optional<std::string>& user,
                      const std::optional<std::string>& password) {
    itest::RawClient c;
    return authtest::connect_rc(c, port(), client_id, user, password);
}

bool DbAuthIt::delivered(itest::RawClient& pub,
                         itest::RawClient& sub,
                         const std::string& topic,
                         const std::string& marker) {
    auto got = authtest::publish_and_collect(pub, sub, topic, 1, marker);
    for (const auto& t : got) {
        if (t == topic) {
            return true;
        }
    }
    return false;
}

uint8_t DbAuthIt::suback(itest::RawClient& c, const std::string& filter) {
    auto codes = c.subscribe(filter, 1);
    return codes.empty() ? 0xFF : codes.front();
}

uint64_t DbAuthIt::backend_metric(const std::string& db, const std::string& name) {
    return metric("auth/" + db + "/" + name);
}

// ---- SqlAuthIt ----

void SqlAuthIt::start_sql(std::vector<std::string> sets) {
    std::vector<std::string> all = server_sets();
    all.insert(all.end(), sets.begin(), sets.end());
    ASSERT_NO_FATAL_FAILURE(start(all));
    ASSERT_EQ(set_plugin(plugin(), true), 0);
}

void SqlAuthIt::add_user(const std::string& name,
                         const std::string& stored,
                         const std::string& salt,
                         bool super) {
    exec("insert into mqtt_user (username, password, salt, is_superuser) values ('" + name +
         "', '" + stored + "', '" + salt + "', '" + (super ? "1" : "0") + "');");
}

void SqlAuthIt::every_password_hash() {
    ASSERT_NO_FATAL_FAILURE(
            start_sql({key("auth_query") +
                       "=select password, salt from mqtt_user where username = '%u' limit 1"}));
    auto cases = hash_cases();
    for (size_t i = 0; i < cases.size(); ++i) {
        const HashCase& hc = cases[i];
        std::string user = itest::num("u", static_cast<long long>(i));
        add_user(user, hc.stored, hc.salt);
        ASSERT_EQ(configure(plugin(), {{key("password_hash"), hc.spec}}), 0);
        EXPECT_EQ(connect("c" + user, user, hc.password), 0) << hc.spec;
        EXPECT_EQ(connect("c" + user, user, hc.password + "x"), kBadPassword) << hc.spec;
        EXPECT_EQ(connect("c" + user, user, ""), kBadPassword) << hc.spec;
    }
    EXPECT_EQ(connect("nobody", "nobody", "pw"), kNotAuthorized) << "no row: ignored";

    ASSERT_EQ(configure(plugin(), {{key("password_hash"), "plain"}}), 0);
    EXPECT_EQ(connect("c0", "u0", "pw plain"), 0);
    EXPECT_EQ(set_plugin(plugin(), false), 0);
    EXPECT_EQ(connect("c0", "u0", "pw plain"), kNotAuthorized) << "stopped: not asked";
    EXPECT_EQ(set_plugin(plugin(), true), 0);
    EXPECT_EQ(connect("c0", "u0", "pw plain"), 0);

    // A placeholder inside a longer literal cannot be a parameter: refused, nothing changed.
    auto r = api("PUT", "nodes/" + node() + "/plugin_configs/" + plugin(),
                 authtest::Json{{key("auth_query"),
                                 "select password from mqtt_user where username = 'a%u'"}}
                         .dump());
    EXPECT_NE(r.code(), 0);
    EXPECT_NE(r.message().find("placeholder %u"), std::string::npos) << r.message();
    EXPECT_EQ(connect("c0", "u0", "pw plain"), 0);
    EXPECT_GT(backend_metric(db(), "queries"), 0u);
    EXPECT_EQ(backend_metric(db(), "errors"), 0u);
}

void SqlAuthIt::superuser_and_acl_rows() {
    ASSERT_NO_FATAL_FAILURE(start_sql());
    add_user("root", hex_digest("sha256", "rootpw"), "", true);
    add_user("alice", hex_digest("sha256", "alicepw"));
    add_user("bob", hex_digest("sha256", "bobpw"));
    exec("insert into mqtt_acl (allow, ipaddr, username, clientid, access, topic) values "
         "(1, NULL, '$all', NULL, 2, 'marker/#'),"
         "(1, NULL, 'alice', NULL, 2, 'alice/pub/#'),"
         "(1, NULL, 'alice', NULL, 1, 'alice/sub/+'),"
         "(0, NULL, 'alice', NULL, 3, 'alice/pub/secret'),"
         "(1, NULL, NULL, 'dev-1', 3, 'devices/%c/#'),"
         "(1, '127.0.0.1', NULL, NULL, 1, 'local/#'),"
         "(0, NULL, '$all', NULL, 1, 'eq #'),"
         "(1, NULL, 'alice', 'alice-1', 1, 'both/cond');");

    itest::RawClient sub;
    ASSERT_EQ(authtest::connect_rc(sub, port(), "root-sub", "root", "rootpw"), 0);
    EXPECT_EQ(suback(sub, "#"), 1) << "a superuser skips the ACL";

    itest::RawClient alice;
    ASSERT_EQ(authtest::connect_rc(alice, port(), "alice-1", "alice", "alicepw"), 0);
    EXPECT_TRUE(delivered(alice, sub, "alice/pub/x", "marker/1"));
    EXPECT_FALSE(delivered(alice, sub, "alice/pub/secret", "marker/2"))
            << "the later deny row is tried first";
    EXPECT_FALSE(delivered(alice, sub, "other/x", "marker/3")) << "no row: nomatch = deny";
    EXPECT_EQ(suback(alice, "alice/sub/x"), 1);
    EXPECT_EQ(suback(alice, "alice/sub/#"), 1)
            << "EMQ 2.x: the filter as written matches alice/sub/+";
    EXPECT_EQ(suback(alice, "alice/pub/x"), 0x80) << "access 2 is publish only";
    EXPECT_EQ(suback(alice, "local/x"), 1) << "the ipaddr row";
    EXPECT_EQ(suback(alice, "#"), 0x80) << "eq # denied";
    EXPECT_EQ(suback(alice, "both/cond"), 1) << "username and clientid both match";

    itest::RawClient alice2;
    ASSERT_EQ(authtest::connect_rc(alice2, port(), "alice-2", "alice", "alicepw"), 0);
    EXPECT_EQ(suback(alice2, "both/cond"), 0x80) << "clientid does not match";

    itest::RawClient dev;
    ASSERT_EQ(authtest::connect_rc(dev, port(), "dev-1", "bob", "bobpw"), 0);
    EXPECT_EQ(suback(dev, "devices/dev-1/x"), 1) << "%c substituted";
    EXPECT_EQ(suback(dev, "devices/dev-2/x"), 0x80);
    EXPECT_TRUE(delivered(dev, sub, "devices/dev-1/up", "marker/4"));
    EXPECT_FALSE(broker_->exited());
}

void SqlAuthIt::placeholders() {
    ASSERT_NO_FATAL_FAILURE(start_sql(
            {key("auth_query") + "=select password from mqtt_user where username = %c",
             key("super_query") +
                     "=select is_superuser from mqtt_user where username = '%u' and salt = '%a'"}));
    add_user("dev-9", hex_digest("sha256", "devpw"));
    add_user("carol", hex_digest("sha256", "x"), "127.0.0.1", true);
    EXPECT_EQ(connect("dev-9", "whoever", "devpw"), 0) << "a bare %c is a parameter too";
    EXPECT_EQ(connect("dev-8", "whoever", "devpw"), kNotAuthorized);

    // %u and %a in the super query: carol@127.0.0.1 is a superuser (her "salt" column holds
    // the address here), through the client id dev-9's password.
    ASSERT_EQ(
            configure(plugin(), {{key("auth_query"),
                                  "select password from mqtt_user where username = '%c' limit 1"}}),
            0);
    itest::RawClient c;
    ASSERT_EQ(authtest::connect_rc(c, port(), "dev-9", "carol", "devpw"), 0);
    EXPECT_EQ(suback(c, "anything/at/all"), 1) << "superuser by %u and %a";
    itest::RawClient d;
    ASSERT_EQ(authtest::connect_rc(d, port(), "dev-9", "dave", "devpw"), 0);
    EXPECT_EQ(suback(d, "anything/at/all"), 0x80);
}

void SqlAuthIt::injection_attempts() {
    ASSERT_NO_FATAL_FAILURE(start_sql());
    add_user("alice", hex_digest("sha256", "alicepw"));
    // Pasted into the SQL text, these would select alice's row (or every row).
    EXPECT_EQ(connect("i1", "x' or '1'='1", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i2", "x' or 1=1 -- ", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i3", "alice' -- ", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i4", "*)(uid=*", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i5", "x'; delete from mqtt_user; --", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i6", "alice\\", "alicepw"), kNotAuthorized);
    EXPECT_EQ(connect("i7", "alice", "alicepw"), 0) << "the table is intact";
}

void SqlAuthIt::killed_and_restarted() {
    ASSERT_NO_FATAL_FAILURE(start_sql({"mqtt.allow_anonymous=true"}));
    add_user("alice", hex_digest("sha256", "alicepw"));
    EXPECT_EQ(connect("a1", "alice", "alicepw"), 0);
    EXPECT_EQ(connect("a2", "alice", "wrong"), kBadPassword);

    kill_server();
    EXPECT_EQ(connect("a3", "alice", "wrong"), 0) << "on_error = ignore: the chain goes on";
    EXPECT_EQ(connect("a4", "alice", "wrong"), 0);
    EXPECT_EQ(backend_metric(db(), "down"), 1u);
    EXPECT_EQ(backend_metric(db(), "outages"), 1u);
    ASSERT_EQ(configure(plugin(), {{key("on_error"), "deny"}}), 0);
    EXPECT_EQ(connect("a5", "alice", "alicepw"), kNotAuthorized) << "on_error = deny";
    EXPECT_EQ(connect("a6", std::nullopt, std::nullopt), 0) << "no username: not asked";
    EXPECT_NE(broker_->log_text().find(plugin() + ": backend unavailable"), std::string::npos);

    ASSERT_EQ(restart_server(), "");
    EXPECT_TRUE(itest::eventually([&] { return connect("a7", "alice", "alicepw") == 0; },
                                  std::chrono::seconds(30)));
    EXPECT_EQ(connect("a8", "alice", "wrong"), kBadPassword);
    EXPECT_EQ(backend_metric(db(), "down"), 0u);
    EXPECT_NE(broker_->log_text().find(plugin() + ": backend available again"), std::string::npos);
    EXPECT_FALSE(broker_->exited());
}

void SqlAuthIt::past_the_query_timeout() {
    ASSERT_NO_FATAL_FAILURE(
            start_sql({key("query_timeout") + "=1s", key("on_error") + "=deny",
                       "auth.user.1.username=local", "auth.user.1.password=localpw"}));
    ASSERT_EQ(set_plugin("emq_auth_username", true), 0);
    add_user("alice", hex_digest("sha256", "alicepw"));
    EXPECT_EQ(connect("s1", "alice", "alicepw"), 0);
    ASSERT_EQ(configure(plugin(), {{key("auth_query"), slow_auth_query()}}), 0);
    EXPECT_EQ(connect("s2", "alice", "alicepw"), kNotAuthorized) << "timed out: on_error = deny";
    EXPECT_EQ(connect("s3", "local", "localpw"), 0) << "other clients are not held up";
    EXPECT_GE(backend_metric(db(), "timeouts"), 1u);
    ASSERT_EQ(
            configure(plugin(), {{key("auth_query"),
                                  "select password from mqtt_user where username = '%u' limit 1"}}),
            0);
    EXPECT_TRUE(itest::eventually([&] { return connect("s4", "alice", "alicepw") == 0; },
                                  std::chrono::seconds(20)));
    EXPECT_FALSE(broker_->exited());
}

}  // namespace mqttd::dbtest
