// SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, for MQTT 5 enhanced authentication: the
// Authentication Method "SCRAM-SHA-256" with the SCRAM messages as Authentication Data of
// CONNECT, AUTH and CONNACK (MQTT 5 4.12). Checked against the credentials of
// emq_auth_username, which keeps a ScramCredential next to each password hash.
//
// EXCHANGE (no channel binding: gs2 header "n,," or "y,,"):
//   C: client-first  "n,,n=<user>,r=<cnonce>"                       (CONNECT / AUTH 0x19)
//   S: server-first  "r=<cnonce><snonce>,s=<base64 salt>,i=<iterations>"   (AUTH 0x18)
//   C: client-final  "c=biws,r=<cnonce><snonce>,p=<base64 ClientProof>"      (AUTH 0x18)
//   S: server-final  "v=<base64 ServerSignature>"            (CONNACK 0 / AUTH 0x00)
// with SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i), ClientKey = HMAC(SaltedPassword,
// "Client Key"), StoredKey = SHA-256(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key"),
// AuthMessage = client-first-bare "," server-first "," client-final-without-proof,
// ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage), ServerSignature =
// HMAC(ServerKey, AuthMessage). The server keeps StoredKey and ServerKey only, never the
// password or SaltedPassword; the proof is compared in constant time. All primitives are
// OpenSSL's.
//
// FORMAT of a stored credential: "scram-sha-256$<iterations>$<salt hex>$<StoredKey hex>$
// <ServerKey hex>" (version 1, the only one).
//
// Thread-safety: functions are pure; a ScramServer is one exchange, used by one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mqttd::broker::auth {

inline constexpr std::string_view kScramMethod = "SCRAM-SHA-256";
// RFC 7677 5: at least 4096.
inline constexpr uint32_t kDefaultScramIterations = 4096;

struct ScramCredential {
    uint32_t iterations = 0;
    std::string salt;        // raw bytes
    std::string stored_key;  // 32 raw bytes
    std::string server_key;  // 32 raw bytes
};

// A credential for `password` with a fresh random salt; nullopt if OpenSSL fails.
std::optional<ScramCredential> make_scram_credential(std::string_view password,
                                                     uint32_t iterations);
// The same with a given salt (RFC test vectors).
std::optional<ScramCredential> make_scram_credential(std::string_view password,
                                                     std::string_view salt,
                                                     uint32_t iterations);
std::string encode_scram_credential(const ScramCredential& c);
std::optional<ScramCredential> decode_scram_credential(std::string_view encoded);

std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

class ScramServer {
public:
    // Parses the client-first message; returns the user name it names, or why it is refused.
    Result<std::string, std::string> start(std::string_view client_first);
    // The server-first message for `cred`, or, for a user without a credential, for a made-up
    // one (the exchange then fails at the proof, without telling whether the user exists).
    // `server_nonce` is for tests; empty = random. REQUIRES: start() succeeded.
    std::string challenge(const std::optional<ScramCredential>& cred,
                          std::string_view server_nonce = {});
    // Verifies the client-final message; returns the server-final message, or why it failed.
    // REQUIRES: challenge() was called.
    Result<std::string, std::string> finish(std::string_view client_final);

private:
    std::string gs2_header_;
    std::string client_first_bare_;
    std::string client_nonce_;
    std::string nonce_;  // client nonce + server nonce
    std::string server_first_;
    std::optional<ScramCredential> cred_;
};

}  // namespace mqttd::broker::auth
