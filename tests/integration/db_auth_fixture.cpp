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

}  // namespace mqttd::dbtest
