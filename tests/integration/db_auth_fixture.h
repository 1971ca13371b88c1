// What the database auth suites (30..33) share: password hashes computed here, independently
// of the broker (OpenSSL EVP, PKCS5_PBKDF2_HMAC, libxcrypt's crypt_r), one case per hash EMQ
// 2.x names; and DbAuthIt, the AuthIt fixture (auth_fixture.h) plus MQTT-level checks (may this
// client publish / subscribe?) and the backend counters of the metrics. Thread-safety: test thread
// only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth_fixture.h"
#include "harness.h"

namespace mqttd::dbtest {

struct HashCase {
    std::string spec;      // auth.<db>.password_hash
    std::string password;  // the right password
    std::string stored;    // what the password column / field holds
    std::string salt;      // the salt column / field ("" when none)
};

// plain, md5, sha, sha256, sha512, salt,sha256, sha256,salt, salt,md5, bcrypt, salt,bcrypt,
// pbkdf2,sha256,1000,20, pbkdf2,sha512,500,32.
std::vector<HashCase> hash_cases();

std::string hex_digest(const std::string& algo, const std::string& data);
std::string base64(const std::string& raw);
std::string raw_digest(const std::string& algo, const std::string& data);
std::string bcrypt(const std::string& password, int cost);

inline constexpr int kBadPassword = 4;
inline constexpr int kNotAuthorized = 5;

class DbAuthIt : public authtest::AuthIt {
protected:
    // A broker with an empty ACL file, anonymous clients refused and mqtt.acl_nomatch = deny
    // (so an ACL answer of "no opinion" is visible as a refusal), plus `sets`.
    void start(std::vector<std::string> sets = {});

    int connect(const std::string& client_id,
                const std::optional<std::string>& user,
                const std::optional<std::string>& password);
    // `pub` (connected) publishes `topic` and then `marker` (which it must be allowed);
    // true when `sub` (subscribed to "#") received `topic` before the marker.
    bool delivered(itest::RawClient& pub,
                   itest::RawClient& sub,
                   const std::string& topic,
                   const std::string& marker);
    // The SUBACK return code for one filter.
    uint8_t suback(itest::RawClient& c, const std::string& filter);
    // metric("auth/<db>/<name>").
    uint64_t backend_metric(const std::string& db, const std::string& name);
};

// The tests emq_auth_mysql and emq_auth_pgsql share (31, 32): the same EMQ schema, rows and
// expectations; a subclass says how to reach its server.
class SqlAuthIt : public DbAuthIt {
protected:
    virtual std::string db() const = 0;  // "mysql" / "pgsql"
    virtual void exec(const std::string& sql) = 0;
    virtual void kill_server() = 0;
    virtual std::string restart_server() = 0;
    // auth.<db>.server/username/password/database for the test server.
    virtual std::vector<std::string> server_sets() const = 0;
    // A query that takes 2 s to return alice's password row.
    virtual std::string slow_auth_query() const = 0;

    std::string key(const std::string& k) const { return "auth." + db() + "." + k; }
    std::string plugin() const { return "emq_auth_" + db(); }
    void start_sql(std::vector<std::string> sets = {});
    void add_user(const std::string& name,
                  const std::string& stored,
                  const std::string& salt = "",
                  bool super = false);

    void every_password_hash();
    void superuser_and_acl_rows();
    void placeholders();
    void injection_attempts();
    void killed_and_restarted();
    void past_the_query_timeout();
};

}  // namespace mqttd::dbtest
