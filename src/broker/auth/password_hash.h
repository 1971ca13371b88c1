// Salted slow password hashes for emq_auth_username / emq_auth_clientid.
//
// FORMAT (version 1, the only one): "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>"
//   iterations: decimal, 1..kMaxIterations
//   salt:       16 random bytes (RAND_bytes), lowercase hex
//   hash:       32 bytes of PKCS5_PBKDF2_HMAC(SHA-256), lowercase hex
// Verification recomputes with the stored salt and iterations and compares in constant time
// (CRYPTO_memcmp). A hash in any other format never verifies.
//
// Thread-safety: pure functions. Cost: about iterations x 1 microsecond; run off the workers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mqttd::broker::auth {

inline constexpr uint32_t kDefaultPbkdf2Iterations = 100000;
inline constexpr uint32_t kMaxIterations = 10000000;

// REQUIRES: 1 <= iterations <= kMaxIterations. Returns "" if OpenSSL fails.
std::string hash_password(std::string_view password, uint32_t iterations);
bool verify_password(std::string_view password, std::string_view encoded);

}  // namespace mqttd::broker::auth
