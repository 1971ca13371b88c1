#include "broker/auth/password_hash.h"

#include <array>
#include <charconv>
#include <optional>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace mqttd::broker::auth {

namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

std::string to_hex(const unsigned char* p, size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        out.push_back(kHex[p[i] >> 4]);
        out.push_back(kHex[p[i] & 0x0F]);
    }
    return out;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

std::optional<std::vector<unsigned char>> from_hex(std::string_view s) {
    if (s.size() % 2 != 0) {
        return std::nullopt;
    }
    std::vector<unsigned char> out(s.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = hex_digit(s[2 * i]);
        int lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out[i] = static_cast<unsigned char>((hi << 4) | lo);
    }
    return out;
}

bool derive(std::string_view password,
            const unsigned char* salt,
            size_t salt_len,
            uint32_t iterations,
            unsigned char* out) {
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt,
                             static_cast<int>(salt_len), static_cast<int>(iterations), EVP_sha256(),
                             static_cast<int>(kHashBytes), out) == 1;
}

}  // namespace

std::string hash_password(std::string_view password, uint32_t iterations) {
    if (iterations == 0 || iterations > kMaxIterations) {
        return {};
    }
    std::array<unsigned char, kSaltBytes> salt{};
    std::array<unsigned char, kHashBytes> hash{};
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1 ||
        !derive(password, salt.data(), salt.size(), iterations, hash.data())) {
        return {};
    }
    return std::string(kScheme) + "$" + std::to_string(iterations) + "$" +
           to_hex(salt.data(), salt.size()) + "$" + to_hex(hash.data(), hash.size());
}

bool verify_password(std::string_view password, std::string_view encoded) {
    std::array<std::string_view, 4> parts;
    for (size_t i = 0; i < 4; ++i) {
        size_t pos = i < 3 ? encoded.find('$') : std::string_view::npos;
        if (i < 3 && pos == std::string_view::npos) {
            return false;
        }
        parts[i] = encoded.substr(0, pos);
        encoded = pos == std::string_view::npos ? std::string_view{} : encoded.substr(pos + 1);
    }
    if (parts[0] != kScheme) {
        return false;
    }
    uint32_t iterations = 0;
    auto [ptr, ec] =
            std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), iterations);
    if (ec != std::errc() || ptr != parts[1].data() + parts[1].size() || iterations == 0 ||
        iterations > kMaxIterations) {
        return false;
    }
    auto salt = from_hex(parts[2]);
    auto expected = from_hex(parts[3]);
    if (!salt || !expected || salt->empty() || expected->size() != kHashBytes) {
        return false;
    }
    std::array<unsigned char, kHashBytes> got{};
    if (!derive(password, salt->data(), salt->size(), iterations, got.data())) {
        return false;
    }
    return CRYPTO_memcmp(got.data(), expected->data(), kHashBytes) == 0;
}

}  // namespace mqttd::broker::auth
