// Password checks of the database auth plugins (emq_auth_redis, emq_auth_mysql, emq_auth_pgsql,
// emq_auth_ldap), with EMQ 2.x's hash names so stored users work unchanged.
//
// `auth.<db>.password_hash` (HashSpec::parse):
//   plain | md5 | sha | sha256 | sha512     the stored value is the password, or the lowercase
//                                           hex digest of it (upper case hex is accepted too)
//   bcrypt                                  the stored value is a bcrypt hash ($2a$/$2b$/$2y$),
//                                           checked with libxcrypt's crypt_r
//   salt,<hash>  /  <hash>,salt             the digest of salt + password / password + salt;
//                                           the salt is the second value the query returns
//   salt,bcrypt                             bcrypt with the salt ("$2b$12$...") in its own field
//   pbkdf2,<mac>,<iterations>,<dklen>       PBKDF2-HMAC (mac: md5, sha, sha224, sha256, sha384,
//                                           sha512), `dklen` bytes, lowercase hex; salt from the
//                                           second value
// LDAP userPassword values carry their own scheme (check_ldap_password): {SHA}, {SSHA},
// {SHA256}, {SSHA256}, {SHA512}, {SSHA512}, {MD5}, {SMD5} (base64 of digest [+ salt]),
// {CRYPT} (crypt_r), and no prefix = plain text.
//
// Every digest comes from OpenSSL (EVP, PKCS5_PBKDF2_HMAC), bcrypt/crypt from crypt_r; no hash
// is written here. The final comparison is constant-time: both sides are reduced to SHA-256 and
// compared with CRYPTO_memcmp, so neither the content nor the length of the stored value leaks
// through timing. A stored value or salt that is malformed never matches.
//
// Thread-safety: pure functions and an immutable value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mqttd::broker::auth {

enum class HashAlgo : uint8_t { Plain, Md5, Sha, Sha224, Sha256, Sha384, Sha512, Bcrypt, Pbkdf2 };
enum class SaltPos : uint8_t { None, Prefix, Suffix };

// Upper bound for PBKDF2 parameters taken from configuration.
inline constexpr uint32_t kMaxPbkdf2Iterations = 10000000;
inline constexpr uint32_t kMaxPbkdf2Bytes = 1024;

struct HashSpec {
    HashAlgo algo = HashAlgo::Plain;
    SaltPos salt = SaltPos::None;
    HashAlgo pbkdf2_mac = HashAlgo::Sha256;  // Pbkdf2 only
    uint32_t iterations = 0;                 // Pbkdf2 only
    uint32_t dklen = 0;                      // Pbkdf2 only, bytes

    // EMQ 2.x's syntax (above); an error is one line naming what is wrong.
    static Result<HashSpec, std::string> parse(std::string_view text);
    // The canonical text ("salt,sha256", "pbkdf2,sha256,1000,20", ...).
    std::string text() const;
    // True when the check needs the salt value (salt,x / x,salt / pbkdf2).
    bool uses_salt() const { return salt != SaltPos::None || algo == HashAlgo::Pbkdf2; }
};

// True when `password` matches `stored` under `spec`; `salt` is the stored salt (empty when
// the query returned none).
bool check_password(const HashSpec& spec,
                    std::string_view password,
                    std::string_view stored,
                    std::string_view salt = {});

// True when `password` matches an LDAP userPassword value (schemes above).
bool check_ldap_password(std::string_view password, std::string_view stored);

// Lowercase hex of the digest `algo` (Md5..Sha512) of `data`; "" for other algorithms or when
// OpenSSL fails. Exposed for tests and the schema examples.
std::string hex_digest(HashAlgo algo, std::string_view data);

// Constant-time equality of two byte strings of any lengths (SHA-256 of both, CRYPTO_memcmp).
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace mqttd::broker::auth
