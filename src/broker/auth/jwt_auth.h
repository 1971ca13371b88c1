// emq_auth_jwt: the MQTT password is a JSON Web Token (RFC 7519) signed with HS256
// (auth.jwt.secret) or RS256 (auth.jwt.pubkey: a PEM public key, or the path of a PEM file).
//
// DECISIONS:
//   - no password, or a password that is not three non-empty base64url parts whose first
//     part decodes to a JSON object with "alg" -> Ignore (not a JWT: the next provider decides);
//   - alg other than HS256/RS256 (including "none"), or an alg whose key is not configured,
//     bad signature, payload not a JSON object, "exp" in the past, "nbf" in the future (both
//     NumericDate seconds, with `leeway_s`) -> Deny;
//   - verify_username_claim and the `username_claim` claim differs from the MQTT username
//     -> Deny;
//   - otherwise Allow.
// The alg chooses the key, never the reverse: a token claiming HS256 is checked only against
// the secret, so an RS256 public key can never be used as an HMAC secret (alg confusion).
// Signatures are computed and compared by OpenSSL (HMAC, EVP_DigestVerify, CRYPTO_memcmp).
//
// Thread-safety: immutable after construction; authenticate() answers inline (one RS256
// verification is about 30 microseconds) from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "broker/auth/auth_chain.h"
#include "common/result.h"

typedef struct evp_pkey_st EVP_PKEY;  // NOLINT(modernize-use-using): OpenSSL's own spelling

namespace mqttd::broker::auth {

struct JwtConfig {
    std::string secret;                  // auth.jwt.secret: enables HS256 when non-empty
    std::string pubkey;                  // auth.jwt.pubkey: PEM text or a file path; enables RS256
    bool verify_username_claim = false;  // auth.jwt.verify_claims.username
    std::string username_claim = "username";
    bool require_exp = false;  // auth.jwt.require_exp: refuse tokens without "exp"
    int64_t leeway_s = 0;
};

class JwtAuth final : public Authenticator {
public:
    // Fails with one line when the public key cannot be read or parsed, or neither key is set.
    static Result<std::shared_ptr<JwtAuth>, std::string> create(JwtConfig config);
    ~JwtAuth() override;
    JwtAuth(const JwtAuth&) = delete;
    JwtAuth& operator=(const JwtAuth&) = delete;

    std::string_view name() const override { return "emq_auth_jwt"; }
    void authenticate(const ClientIdentity& id, DecisionCallback done) override;

    // The decision for one token at time `now_s` (Unix seconds); for tests and REST.
    Decision verify(std::string_view token,
                    const std::optional<std::string>& username,
                    int64_t now_s) const;

private:
    JwtAuth(JwtConfig config, EVP_PKEY* key) : config_(std::move(config)), key_(key) {}

    JwtConfig config_;
    EVP_PKEY* key_ = nullptr;  // owned; RS256 public key or null
};

// base64url without padding (RFC 4648 section 5); nullopt on a character outside the alphabet
// or an impossible length. Exposed for tests.
std::optional<std::string> base64url_decode(std::string_view s);

}  // namespace mqttd::broker::auth
