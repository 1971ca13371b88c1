// The database plugins' password checks (password_check.h): EMQ 2.x's hash names parsed and
// printed back, every hash against digests computed here with OpenSSL and crypt_r, salts,
// malformed stored values, LDAP schemes.
#include "broker/auth/password_check.h"

#include <memory>
#include <string>

#include <crypt.h>

#include <gtest/gtest.h>
#include <openssl/evp.h>

namespace mqttd::broker::auth {
namespace {

std::string raw(const EVP_MD* md, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
    return std::string(reinterpret_cast<char*>(out), len);
}

std::string hex(const std::string& r) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : r) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
    return out;
}

std::string b64(const std::string& r) {
    std::string out(4 * ((r.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(r.data()),
                            static_cast<int>(r.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

HashSpec spec(const std::string& text) {
    auto s = HashSpec::parse(text);
    EXPECT_TRUE(s.ok()) << text << ": " << (s.ok() ? "" : s.error());
    return s.ok() ? *s : HashSpec{};
}

TEST(HashSpec, ParsesEmqSyntaxAndPrintsItBack) {
    for (const char* t :
         {"plain", "md5", "sha", "sha256", "sha512", "bcrypt", "salt,sha256", "sha256,salt",
          "salt,md5", "salt,bcrypt", "pbkdf2,sha256,1000,20", "pbkdf2,sha512,1,1024"}) {
        EXPECT_EQ(spec(t).text(), t);
    }
    EXPECT_EQ(spec(" SHA256 ").text(), "sha256");
    EXPECT_EQ(spec("salt, sha").text(), "salt,sha");
    EXPECT_TRUE(spec("salt,sha256").uses_salt());
    EXPECT_FALSE(spec("sha256").uses_salt());
    for (const char* bad :
         {"", "rot13", "salt", "salt,salt", "sha256,sha256", "salt,plain", "bcrypt,salt", "pbkdf2",
          "pbkdf2,sha256,0,20", "pbkdf2,sha256,10,0", "pbkdf2,sha256,10,1025", "pbkdf2,whirl,10,20",
          "pbkdf2,sha256,x,20", "md5,salt,x"}) {
        auto r = HashSpec::parse(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_NE(r.error().find("expected"), std::string::npos) << r.error();
        }
    }
}

TEST(CheckPassword, EveryDigestGoodAndBad) {
    struct Case {
        const char* spec;
        const EVP_MD* md;
    };
    for (const Case& c : {Case{"md5", EVP_md5()}, Case{"sha", EVP_sha1()},
                          Case{"sha256", EVP_sha256()}, Case{"sha512", EVP_sha512()}}) {
        std::string stored = hex(raw(c.md, "secret"));
        EXPECT_TRUE(check_password(spec(c.spec), "secret", stored)) << c.spec;
        EXPECT_FALSE(check_password(spec(c.spec), "secreT", stored)) << c.spec;
        EXPECT_FALSE(check_password(spec(c.spec), "", stored)) << c.spec;
        std::string upper = stored;
        for (auto& ch : upper) {
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        }
        EXPECT_TRUE(check_password(spec(c.spec), "secret", upper)) << "upper-case hex";
        EXPECT_FALSE(check_password(spec(c.spec), "secret", stored.substr(1))) << "truncated";
    }
    EXPECT_TRUE(check_password(spec("plain"), "a b", "a b"));
    EXPECT_FALSE(check_password(spec("plain"), "a b", "a b "));
    EXPECT_FALSE(check_password(spec("plain"), "", "")) << "no stored password never matches";
    EXPECT_FALSE(check_password(spec("sha256"), "x", ""));
}

TEST(CheckPassword, SaltPrefixAndSuffix) {
    std::string pre = hex(raw(EVP_sha256(), std::string("NaCl") + "pw"));
    std::string post = hex(raw(EVP_sha256(), std::string("pw") + "NaCl"));
    EXPECT_TRUE(check_password(spec("salt,sha256"), "pw", pre, "NaCl"));
    EXPECT_FALSE(check_password(spec("salt,sha256"), "pw", post, "NaCl"));
    EXPECT_TRUE(check_password(spec("sha256,salt"), "pw", post, "NaCl"));
    EXPECT_FALSE(check_password(spec("sha256,salt"), "pw", pre, "NaCl"));
    EXPECT_FALSE(check_password(spec("salt,sha256"), "pw", pre, "NaCL")) << "wrong salt";
    EXPECT_FALSE(check_password(spec("salt,sha256"), "pw", pre, "")) << "missing salt";
}

TEST(CheckPassword, BcryptWithCryptR) {
    char setting[64];
    const char rnd[16] = "0123456789abcde";
    ASSERT_NE(crypt_gensalt_rn("$2b$", 5, rnd, sizeof rnd, setting, sizeof setting), nullptr);
    auto data = std::make_unique<crypt_data>();
    std::string hash = crypt_r("b-pw", setting, data.get());
    EXPECT_TRUE(check_password(spec("bcrypt"), "b-pw", hash));
    EXPECT_FALSE(check_password(spec("bcrypt"), "b-pW", hash));
    EXPECT_FALSE(check_password(spec("bcrypt"), std::string("b-pw\0x", 6), hash)) << "NUL";
    EXPECT_TRUE(check_password(spec("salt,bcrypt"), "b-pw", hash, hash.substr(0, 29)));
    EXPECT_FALSE(
            check_password(spec("salt,bcrypt"), "b-pw", hash, "$2b$05$wrongsaltwrongsaltwron"));
    EXPECT_FALSE(check_password(spec("bcrypt"), "b-pw", "$1$abc$notbcrypt")) << "only bcrypt";
    EXPECT_FALSE(check_password(spec("bcrypt"), "b-pw", "garbage"));
}

TEST(CheckPassword, Pbkdf2WithEmqParameters) {
    unsigned char out[20];
    const std::string salt = "salty";
    PKCS5_PBKDF2_HMAC("pw", 2, reinterpret_cast<const unsigned char*>(salt.data()),
                      static_cast<int>(salt.size()), 1000, EVP_sha256(), sizeof out, out);
    std::string stored = hex(std::string(reinterpret_cast<char*>(out), sizeof out));
    EXPECT_EQ(stored.size(), 40u) << "dklen is bytes";
    EXPECT_TRUE(check_password(spec("pbkdf2,sha256,1000,20"), "pw", stored, salt));
    EXPECT_FALSE(check_password(spec("pbkdf2,sha256,1001,20"), "pw", stored, salt));
    EXPECT_FALSE(check_password(spec("pbkdf2,sha512,1000,20"), "pw", stored, salt));
    EXPECT_FALSE(check_password(spec("pbkdf2,sha256,1000,20"), "pw", stored, "other"));
    EXPECT_FALSE(check_password(spec("pbkdf2,sha256,1000,20"), "px", stored, salt));
}

TEST(CheckLdapPassword, Schemes) {
    const std::string salt = "4sa";
    EXPECT_TRUE(check_ldap_password("pw", "pw"));
    EXPECT_FALSE(check_ldap_password("pw", "pW"));
    EXPECT_TRUE(check_ldap_password("pw", "{SHA}" + b64(raw(EVP_sha1(), "pw"))));
    EXPECT_TRUE(check_ldap_password("pw", "{sha}" + b64(raw(EVP_sha1(), "pw"))));
    EXPECT_FALSE(check_ldap_password("px", "{SHA}" + b64(raw(EVP_sha1(), "pw"))));
    EXPECT_TRUE(check_ldap_password("pw", "{SSHA}" + b64(raw(EVP_sha1(), "pw" + salt) + salt)));
    EXPECT_FALSE(check_ldap_password("pw", "{SSHA}" + b64(raw(EVP_sha1(), "pw" + salt) + "x")));
    EXPECT_TRUE(check_ldap_password("pw", "{SHA512}" + b64(raw(EVP_sha512(), "pw"))));
    EXPECT_TRUE(
            check_ldap_password("pw", "{SSHA256}" + b64(raw(EVP_sha256(), "pw" + salt) + salt)));
    EXPECT_TRUE(check_ldap_password("pw", "{MD5}" + b64(raw(EVP_md5(), "pw"))));
    EXPECT_TRUE(check_ldap_password("pw", "{SMD5}" + b64(raw(EVP_md5(), "pw" + salt) + salt)));
    EXPECT_FALSE(check_ldap_password("pw", "{SHA}" + b64(raw(EVP_sha1(), "pw") + salt)))
            << "{SHA} is unsalted: extra bytes are malformed";
    EXPECT_FALSE(check_ldap_password("pw", "{SHA}not base64!"));
    EXPECT_FALSE(check_ldap_password("pw", "{NOPE}cHc="));
    EXPECT_FALSE(check_ldap_password("pw", "{SHA"));
    EXPECT_FALSE(check_ldap_password("pw", ""));
    auto data = std::make_unique<crypt_data>();
    std::string c = crypt_r("pw", "$5$saltsalt$", data.get());
    EXPECT_TRUE(check_ldap_password("pw", "{CRYPT}" + c));
    EXPECT_FALSE(check_ldap_password("px", "{CRYPT}" + c));
}

TEST(EqualConstantTime, AnyLengths) {
    EXPECT_TRUE(equal_constant_time("", ""));
    EXPECT_TRUE(equal_constant_time("abc", "abc"));
    EXPECT_FALSE(equal_constant_time("abc", "abd"));
    EXPECT_FALSE(equal_constant_time("abc", "abcd"));
    EXPECT_FALSE(equal_constant_time("abc", ""));
}

}  // namespace
}  // namespace mqttd::broker::auth
