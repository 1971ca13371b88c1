#include "broker/auth/jwt_auth.h"

#include <chrono>
#include <memory>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "test_util.h"

namespace mqttd::broker::auth {
namespace {

using testing::identity;

std::string b64url(std::string_view in) {
    static constexpr char kAlphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(kAlphabet[(acc >> bits) & 0x3F]);
        }
    }
    if (bits > 0) {
        out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
    }
    return out;
}

int64_t now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
}

std::string hs256(const std::string& header, const std::string& claims, const std::string& key) {
    std::string input = b64url(header) + "." + b64url(claims);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return input + "." + b64url(std::string(reinterpret_cast<char*>(mac), len));
}

struct PkeyDeleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey rsa_key() {
    return Pkey(EVP_RSA_gen(2048));
}

std::string public_pem(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(n));
    BIO_free(bio);
    return pem;
}

std::string rs256(const std::string& claims, EVP_PKEY* key) {
    std::string input = b64url(R"({"alg":"RS256","typ":"JWT"})") + "." + b64url(claims);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    return input + "." + b64url(sig);
}

std::shared_ptr<JwtAuth> make(JwtConfig c) {
    auto r = JwtAuth::create(std::move(c));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() ? *r : nullptr;
}

Decision ask(JwtAuth& jwt, const ClientIdentity& id) {
    Decision out;
    bool called = false;
    jwt.authenticate(id, [&](Decision d) {
        out = std::move(d);
        called = true;
    });
    EXPECT_TRUE(called);  // answers inline
    return out;
}

const std::string kHs = R"({"alg":"HS256","typ":"JWT"})";

TEST(Base64Url, Decode) {
    EXPECT_EQ(base64url_decode(b64url("hello world!?")), "hello world!?");
    EXPECT_EQ(base64url_decode(""), "");
    EXPECT_FALSE(base64url_decode("ab+c").has_value());
    EXPECT_FALSE(base64url_decode("abcde").has_value());
}

TEST(JwtAuth, Hs256) {
    JwtConfig c;
    c.secret = "s3cret";
    auto jwt = make(c);
    ASSERT_TRUE(jwt);
    std::string claims = R"({"username":"u","exp":)" + std::to_string(now() + 60) + "}";
    EXPECT_EQ(ask(*jwt, identity("c", "u", hs256(kHs, claims, "s3cret"))).verdict, Verdict::Allow);
    auto bad = ask(*jwt, identity("c", "u", hs256(kHs, claims, "other")));
    EXPECT_EQ(bad.verdict, Verdict::Deny);
    EXPECT_EQ(bad.reason, "jwt: bad signature");
    // A tampered payload with the old signature.
    std::string tok = hs256(kHs, claims, "s3cret");
    std::string forged =
            b64url(kHs) + "." + b64url(R"({"username":"admin"})") + tok.substr(tok.rfind('.'));
    EXPECT_EQ(ask(*jwt, identity("c", "u", forged)).verdict, Verdict::Deny);
}

TEST(JwtAuth, ExpiryAndNotBefore) {
    JwtConfig c;
    c.secret = "k";
    auto jwt = make(c);
    auto expired = ask(
            *jwt,
            identity("c", "u", hs256(kHs, R"({"exp":)" + std::to_string(now() - 10) + "}", "k")));
    EXPECT_EQ(expired.verdict, Verdict::Deny);
    EXPECT_EQ(expired.reason, "jwt: expired");
    auto early = ask(
            *jwt,
            identity("c", "u", hs256(kHs, R"({"nbf":)" + std::to_string(now() + 600) + "}", "k")));
    EXPECT_EQ(early.verdict, Verdict::Deny);
    EXPECT_EQ(early.reason, "jwt: not yet valid");
    EXPECT_EQ(ask(*jwt, identity("c", "u", hs256(kHs, R"({"exp":"soon"})", "k"))).verdict,
              Verdict::Deny);
    EXPECT_EQ(ask(*jwt, identity("c", "u", hs256(kHs, R"({"sub":"x"})", "k"))).verdict,
              Verdict::Allow);  // no exp: allowed unless require_exp
    c.require_exp = true;
    auto strict = make(c);
    EXPECT_EQ(ask(*strict, identity("c", "u", hs256(kHs, R"({"sub":"x"})", "k"))).verdict,
              Verdict::Deny);
    // Leeway.
    EXPECT_EQ(jwt->verify(hs256(kHs, R"({"exp":1000})", "k"), "u", 999).verdict, Verdict::Allow);
    EXPECT_EQ(jwt->verify(hs256(kHs, R"({"exp":1000})", "k"), "u", 1000).verdict, Verdict::Deny);
}

TEST(JwtAuth, Rs256WithKeyMadeInTheTest) {
    Pkey key = rsa_key();
    ASSERT_TRUE(key);
    JwtConfig c;
    c.pubkey = public_pem(key.get());
    auto jwt = make(c);
    ASSERT_TRUE(jwt);
    std::string claims = R"({"exp":)" + std::to_string(now() + 60) + "}";
    EXPECT_EQ(ask(*jwt, identity("c", "u", rs256(claims, key.get()))).verdict, Verdict::Allow);
    Pkey other = rsa_key();
    EXPECT_EQ(ask(*jwt, identity("c", "u", rs256(claims, other.get()))).verdict, Verdict::Deny);
    // HS256 is not configured: a token claiming it is refused, never checked with the PEM.
    auto confused = ask(*jwt, identity("c", "u", hs256(kHs, claims, c.pubkey)));
    EXPECT_EQ(confused.verdict, Verdict::Deny);
    EXPECT_EQ(confused.reason, "jwt: HS256 not configured");
    // From a file path as well.
    testing::TempDir dir;
    std::string path = dir.path() + "/pub.pem";
    {
        FILE* f = fopen(path.c_str(), "w");
        fputs(c.pubkey.c_str(), f);
        fclose(f);
    }
    JwtConfig from_file;
    from_file.pubkey = path;
    auto jwt2 = make(from_file);
    ASSERT_TRUE(jwt2);
    EXPECT_EQ(ask(*jwt2, identity("c", "u", rs256(claims, key.get()))).verdict, Verdict::Allow);
}

TEST(JwtAuth, NotAJwtIsIgnored) {
    JwtConfig c;
    c.secret = "k";
    auto jwt = make(c);
    for (const char* pw : {"", "password", "a.b", "a.b.c.d", "..", "a..c", "!!.??.##",
                           "YWJj.YWJj.YWJj" /* base64url but header is not JSON */}) {
        EXPECT_EQ(ask(*jwt, identity("c", "u", std::string(pw))).verdict, Verdict::Ignore) << pw;
    }
    EXPECT_EQ(ask(*jwt, identity("c", "u")).verdict, Verdict::Ignore);  // no password
    // A JWT with alg none is refused, not ignored.
    std::string none = b64url(R"({"alg":"none"})") + "." + b64url("{}") + ".";
    EXPECT_EQ(ask(*jwt, identity("c", "u", none)).verdict, Verdict::Deny);
    EXPECT_EQ(ask(*jwt, identity("c", "u", none + "eA")).verdict, Verdict::Deny);
}

TEST(JwtAuth, UsernameClaim) {
    JwtConfig c;
    c.secret = "k";
    c.verify_username_claim = true;
    auto jwt = make(c);
    std::string tok = hs256(kHs, R"({"username":"alice"})", "k");
    EXPECT_EQ(ask(*jwt, identity("c", "alice", tok)).verdict, Verdict::Allow);
    EXPECT_EQ(ask(*jwt, identity("c", "bob", tok)).verdict, Verdict::Deny);
    EXPECT_EQ(ask(*jwt, identity("c", std::nullopt, tok)).verdict, Verdict::Deny);
}

TEST(JwtAuth, BadConfig) {
    EXPECT_FALSE(JwtAuth::create(JwtConfig{}).ok());
    JwtConfig c;
    c.pubkey = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n";
    EXPECT_FALSE(JwtAuth::create(c).ok());
    c.pubkey = "/nonexistent/key.pem";
    EXPECT_FALSE(JwtAuth::create(c).ok());
}

TEST(JwtAuth, OversizedTokenIsHandled) {
    JwtConfig c;
    c.secret = "k";
    auto jwt = make(c);
    std::string big = hs256(kHs, R"({"pad":")" + std::string(100000, 'x') + "\"}", "k");
    EXPECT_EQ(ask(*jwt, identity("c", "u", big)).verdict, Verdict::Allow);  // provider itself
    std::string junk(200000, 'A');
    EXPECT_EQ(ask(*jwt, identity("c", "u", junk)).verdict, Verdict::Ignore);
}

}  // namespace
}  // namespace mqttd::broker::auth
