#include "broker/auth/scram.h"

#include <charconv>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace mqttd::broker::auth {

namespace {

constexpr size_t kKeyBytes = 32;  // SHA-256
constexpr size_t kSaltBytes = 16;
constexpr size_t kNonceBytes = 18;  // 24 base64 characters
constexpr uint32_t kMaxScramIterations = 10000000;
constexpr size_t kMaxMessageBytes = 8192;

std::string hmac(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
             &len) == nullptr) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string sha256(std::string_view data) {
    unsigned char out[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::string random_bytes(size_t n) {
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
        return {};
    }
    return out;
}

std::string to_hex(std::string_view raw) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(raw.size() * 2);
    for (unsigned char c : raw) {
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 0xF]);
    }
    return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        return std::nullopt;
    }
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        return -1;
    };
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
        int hi = nibble(hex[i]);
        int lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(hi << 4 | lo));
    }
    return out;
}

// Splits "k=v,k=v,..." into its attributes (RFC 5802 5.1); nullopt when one is not "x=...".
std::optional<std::vector<std::pair<char, std::string_view>>> attributes(std::string_view s) {
    std::vector<std::pair<char, std::string_view>> out;
    size_t pos = 0;
    while (true) {
        size_t comma = s.find(',', pos);
        std::string_view a = s.substr(pos, comma == std::string_view::npos ? s.npos : comma - pos);
        if (a.size() < 2 || a[1] != '=') {
            return std::nullopt;
        }
        out.emplace_back(a[0], a.substr(2));
        if (comma == std::string_view::npos) {
            return out;
        }
        pos = comma + 1;
    }
}

// saslname (RFC 5802 5.1): "=2C" is ',' and "=3D" is '='; any other '=' is malformed.
std::optional<std::string> decode_saslname(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '=') {
            out.push_back(s[i]);
            continue;
        }
        std::string_view esc = s.substr(i + 1, 2);
        if (esc == "2C") {
            out.push_back(',');
        } else if (esc == "3D") {
            out.push_back('=');
        } else {
            return std::nullopt;
        }
        i += 2;
    }
    return out;
}

bool printable_nonce(std::string_view n) {
    if (n.empty()) {
        return false;
    }
    for (char c : n) {
        if (c < 0x21 || c > 0x7E || c == ',') {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string base64_encode(std::string_view raw) {
    std::string out(4 * ((raw.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    for (char c : text) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        if (!ok) {
            return std::nullopt;
        }
    }
    std::string out(text.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0) {
        return std::nullopt;
    }
    // EVP_DecodeBlock counts the padding as decoded zero bytes.
    size_t pad = 0;
    if (!text.empty() && text.back() == '=') {
        pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
    }
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

std::optional<ScramCredential> make_scram_credential(std::string_view password,
                                                     std::string_view salt,
                                                     uint32_t iterations) {
    if (iterations == 0 || iterations > kMaxScramIterations || salt.empty()) {
        return std::nullopt;
    }
    unsigned char salted[kKeyBytes];
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                          sizeof salted, salted) != 1) {
        return std::nullopt;
    }
    std::string_view salted_password(reinterpret_cast<const char*>(salted), sizeof salted);
    ScramCredential c;
    c.iterations = iterations;
    c.salt = std::string(salt);
    c.stored_key = sha256(hmac(salted_password, "Client Key"));
    c.server_key = hmac(salted_password, "Server Key");
    OPENSSL_cleanse(salted, sizeof salted);
    if (c.server_key.size() != kKeyBytes) {
        return std::nullopt;
    }
    return c;
}

std::optional<ScramCredential> make_scram_credential(std::string_view password,
                                                     uint32_t iterations) {
    std::string salt = random_bytes(kSaltBytes);
    if (salt.empty()) {
        return std::nullopt;
    }
    return make_scram_credential(password, salt, iterations);
}

std::string encode_scram_credential(const ScramCredential& c) {
    return "scram-sha-256$" + std::to_string(c.iterations) + "$" + to_hex(c.salt) + "$" +
           to_hex(c.stored_key) + "$" + to_hex(c.server_key);
}

std::optional<ScramCredential> decode_scram_credential(std::string_view encoded) {
    constexpr std::string_view kPrefix = "scram-sha-256$";
    if (!encoded.starts_with(kPrefix)) {
        return std::nullopt;
    }
    std::string_view rest = encoded.substr(kPrefix.size());
    std::string_view parts[4];
    for (size_t i = 0; i < 4; ++i) {
        size_t d = rest.find('$');
        if ((i < 3) == (d == std::string_view::npos)) {
            return std::nullopt;
        }
        parts[i] = rest.substr(0, d);
        rest = i < 3 ? rest.substr(d + 1) : std::string_view{};
    }
    ScramCredential c;
    auto [p, ec] =
            std::from_chars(parts[0].data(), parts[0].data() + parts[0].size(), c.iterations);
    auto salt = from_hex(parts[1]);
    auto stored = from_hex(parts[2]);
    auto server = from_hex(parts[3]);
    if (ec != std::errc() || p != parts[0].data() + parts[0].size() || c.iterations == 0 ||
        c.iterations > kMaxScramIterations || !salt || salt->empty() || !stored ||
        stored->size() != kKeyBytes || !server || server->size() != kKeyBytes) {
        return std::nullopt;
    }
    c.salt = std::move(*salt);
    c.stored_key = std::move(*stored);
    c.server_key = std::move(*server);
    return c;
}

Result<std::string, std::string> ScramServer::start(std::string_view msg) {
    if (msg.size() > kMaxMessageBytes) {
        return Err(std::string("client-first message too long"));
    }
    // gs2-header: cbind flag "n" or "y" (this server binds no channel), optional authzid.
    size_t c1 = msg.find(',');
    size_t c2 = c1 == std::string_view::npos ? c1 : msg.find(',', c1 + 1);
    if (c2 == std::string_view::npos) {
        return Err(std::string("malformed client-first message"));
    }
    std::string_view flag = msg.substr(0, c1);
    if (flag != "n" && flag != "y") {
        return Err(std::string("channel binding is not supported"));
    }
    std::string_view authzid = msg.substr(c1 + 1, c2 - c1 - 1);
    if (!authzid.empty() && !authzid.starts_with("a=")) {
        return Err(std::string("malformed client-first message"));
    }
    gs2_header_ = std::string(msg.substr(0, c2 + 1));
    client_first_bare_ = std::string(msg.substr(c2 + 1));
    auto attrs = attributes(client_first_bare_);
    if (!attrs || attrs->size() < 2 || (*attrs)[0].first != 'n' || (*attrs)[1].first != 'r') {
        return Err(std::string("client-first message needs n= and r="));  // also m= (5.1)
    }
    auto user = decode_saslname((*attrs)[0].second);
    if (!user || user->empty()) {
        return Err(std::string("malformed user name"));
    }
    if (!printable_nonce((*attrs)[1].second)) {
        return Err(std::string("malformed nonce"));
    }
    if (!authzid.empty() && authzid.substr(2) != (*attrs)[0].second) {
        return Err(std::string("authorization identity differs from the user name"));
    }
    client_nonce_ = std::string((*attrs)[1].second);
    return std::move(*user);
}

std::string ScramServer::challenge(const std::optional<ScramCredential>& cred,
                                   std::string_view server_nonce) {
    cred_ = cred;
    std::string salt;
    uint32_t iterations = kDefaultScramIterations;
    if (cred_) {
        salt = cred_->salt;
        iterations = cred_->iterations;
    } else {
        salt = random_bytes(kSaltBytes);
    }
    std::string snonce = server_nonce.empty() ? base64_encode(random_bytes(kNonceBytes))
                                              : std::string(server_nonce);
    nonce_ = client_nonce_ + snonce;
    server_first_ =
            "r=" + nonce_ + ",s=" + base64_encode(salt) + ",i=" + std::to_string(iterations);
    return server_first_;
}

Result<std::string, std::string> ScramServer::finish(std::string_view msg) {
    if (msg.size() > kMaxMessageBytes) {
        return Err(std::string("client-final message too long"));
    }
    size_t p = msg.rfind(",p=");
    if (p == std::string_view::npos) {
        return Err(std::string("client-final message has no proof"));
    }
    std::string_view without_proof = msg.substr(0, p);
    auto attrs = attributes(without_proof);
    if (!attrs || attrs->size() < 2 || (*attrs)[0].first != 'c' || (*attrs)[1].first != 'r') {
        return Err(std::string("client-final message needs c= and r="));
    }
    auto binding = base64_decode((*attrs)[0].second);
    if (!binding || *binding != gs2_header_) {
        return Err(std::string("channel binding does not match"));
    }
    if ((*attrs)[1].second != nonce_) {
        return Err(std::string("nonce does not match"));
    }
    auto proof = base64_decode(msg.substr(p + 3));
    if (!proof || proof->size() != kKeyBytes) {
        return Err(std::string("malformed proof"));
    }
    if (!cred_) {
        return Err(std::string("unknown user or wrong password"));
    }
    std::string auth_message =
            client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
    std::string signature = hmac(cred_->stored_key, auth_message);
    if (signature.size() != kKeyBytes) {
        return Err(std::string("HMAC failed"));
    }
    std::string client_key(kKeyBytes, '\0');
    for (size_t i = 0; i < kKeyBytes; ++i) {
        client_key[i] = static_cast<char>((*proof)[i] ^ signature[i]);
    }
    std::string stored = sha256(client_key);
    OPENSSL_cleanse(client_key.data(), client_key.size());
    if (CRYPTO_memcmp(stored.data(), cred_->stored_key.data(), kKeyBytes) != 0) {
        return Err(std::string("unknown user or wrong password"));
    }
    return "v=" + base64_encode(hmac(cred_->server_key, auth_message));
}

}  // namespace mqttd::broker::auth
