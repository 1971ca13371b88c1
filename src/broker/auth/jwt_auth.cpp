#include "broker/auth/jwt_auth.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

namespace mqttd::broker::auth {

namespace {

int b64url_value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// A JSON NumericDate: integer or floating seconds.
std::optional<double> numeric_date(const nlohmann::json& claims, const char* key) {
    auto it = claims.find(key);
    if (it == claims.end() || !it->is_number()) {
        return std::nullopt;
    }
    return it->get<double>();
}

}  // namespace

std::optional<std::string> base64url_decode(std::string_view s) {
    if (s.size() % 4 == 1) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(s.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        int v = b64url_value(c);
        if (v < 0) {
            return std::nullopt;
        }
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
        }
    }
    return out;
}

Result<std::shared_ptr<JwtAuth>, std::string> JwtAuth::create(JwtConfig config) {
    EVP_PKEY* key = nullptr;
    if (!config.pubkey.empty()) {
        std::string pem = config.pubkey;
        if (pem.find("-----BEGIN") == std::string::npos) {
            std::ifstream in(config.pubkey);
            if (!in) {
                return Err("auth.jwt.pubkey: cannot open " + config.pubkey);
            }
            std::ostringstream ss;
            ss << in.rdbuf();
            pem = ss.str();
        }
        std::unique_ptr<BIO, BioDeleter> bio(
                BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
        key = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
        if (key == nullptr || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
            EVP_PKEY_free(key);
            return Err(std::string("auth.jwt.pubkey: not a PEM RSA public key"));
        }
    }
    if (key == nullptr && config.secret.empty()) {
        return Err(std::string("emq_auth_jwt: set auth.jwt.secret or auth.jwt.pubkey"));
    }
    return std::shared_ptr<JwtAuth>(new JwtAuth(std::move(config), key));
}

JwtAuth::~JwtAuth() {
    EVP_PKEY_free(key_);
}

void JwtAuth::authenticate(const ClientIdentity& id, DecisionCallback done) {
    if (!id.password) {
        done(Decision::ignore());
        return;
    }
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    done(verify(*id.password, id.username, now));
}

Decision JwtAuth::verify(std::string_view token,
                         const std::optional<std::string>& username,
                         int64_t now_s) const {
    size_t d1 = token.find('.');
    size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos ||
        d1 == 0 || d2 == d1 + 1) {
        return Decision::ignore();
    }
    std::string_view header_b64 = token.substr(0, d1);
    std::string_view payload_b64 = token.substr(d1 + 1, d2 - d1 - 1);
    std::string_view sig_b64 = token.substr(d2 + 1);
    auto header_text = base64url_decode(header_b64);
    auto payload_text = base64url_decode(payload_b64);
    auto sig = base64url_decode(sig_b64);
    if (!header_text || !payload_text || !sig) {
        return Decision::ignore();
    }
    auto header = nlohmann::json::parse(*header_text, nullptr, false);
    if (header.is_discarded() || !header.is_object() || !header.contains("alg") ||
        !header["alg"].is_string()) {
        return Decision::ignore();
    }
    const std::string alg = header["alg"].get<std::string>();
    std::string_view signing_input = token.substr(0, d2);
    if (alg == "HS256") {
        if (config_.secret.empty()) {
            return Decision::deny("jwt: HS256 not configured");
        }
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        if (HMAC(EVP_sha256(), config_.secret.data(), static_cast<int>(config_.secret.size()),
                 reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
                 mac, &mac_len) == nullptr ||
            sig->size() != mac_len || CRYPTO_memcmp(mac, sig->data(), mac_len) != 0) {
            return Decision::deny("jwt: bad signature");
        }
    } else if (alg == "RS256") {
        if (key_ == nullptr) {
            return Decision::deny("jwt: RS256 not configured");
        }
        std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
        if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_) != 1 ||
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                             sig->size(),
                             reinterpret_cast<const unsigned char*>(signing_input.data()),
                             signing_input.size()) != 1) {
            return Decision::deny("jwt: bad signature");
        }
    } else {
        return Decision::deny("jwt: unsupported alg");
    }
    auto claims = nlohmann::json::parse(*payload_text, nullptr, false);
    if (claims.is_discarded() || !claims.is_object()) {
        return Decision::deny("jwt: claims are not a JSON object");
    }
    auto exp = numeric_date(claims, "exp");
    if (claims.contains("exp") && !exp) {
        return Decision::deny("jwt: bad exp");
    }
    if (!exp && config_.require_exp) {
        return Decision::deny("jwt: no exp");
    }
    const auto now = static_cast<double>(now_s);
    const auto leeway = static_cast<double>(config_.leeway_s);
    if (exp && now >= *exp + leeway) {
        return Decision::deny("jwt: expired");
    }
    auto nbf = numeric_date(claims, "nbf");
    if (claims.contains("nbf") && !nbf) {
        return Decision::deny("jwt: bad nbf");
    }
    if (nbf && now + leeway < *nbf) {
        return Decision::deny("jwt: not yet valid");
    }
    if (config_.verify_username_claim) {
        auto it = claims.find(config_.username_claim);
        if (!username || it == claims.end() || !it->is_string() ||
            it->get<std::string>() != *username) {
            return Decision::deny("jwt: username claim mismatch");
        }
    }
    return Decision::allow("emq_auth_jwt");
}

}  // namespace mqttd::broker::auth
