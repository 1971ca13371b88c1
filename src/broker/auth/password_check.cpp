#include "broker/auth/password_check.h"

#include <array>
#include <charconv>
#include <memory>
#include <vector>

#include <crypt.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace mqttd::broker::auth {

namespace {

const EVP_MD* md_of(HashAlgo algo) {
    switch (algo) {
        case HashAlgo::Md5:
            return EVP_md5();
        case HashAlgo::Sha:
            return EVP_sha1();
        case HashAlgo::Sha224:
            return EVP_sha224();
        case HashAlgo::Sha256:
            return EVP_sha256();
        case HashAlgo::Sha384:
            return EVP_sha384();
        case HashAlgo::Sha512:
            return EVP_sha512();
        case HashAlgo::Plain:
        case HashAlgo::Bcrypt:
        case HashAlgo::Pbkdf2:
            break;
    }
    return nullptr;
}

std::optional<HashAlgo> digest_named(std::string_view name) {
    static constexpr std::pair<std::string_view, HashAlgo> kNames[] = {
            {"md5", HashAlgo::Md5},       {"sha", HashAlgo::Sha},
            {"sha224", HashAlgo::Sha224}, {"sha256", HashAlgo::Sha256},
            {"sha384", HashAlgo::Sha384}, {"sha512", HashAlgo::Sha512},
    };
    for (const auto& [n, a] : kNames) {
        if (n == name) {
            return a;
        }
    }
    return std::nullopt;
}

std::string_view name_of(HashAlgo algo) {
    switch (algo) {
        case HashAlgo::Plain:
            return "plain";
        case HashAlgo::Md5:
            return "md5";
        case HashAlgo::Sha:
            return "sha";
        case HashAlgo::Sha224:
            return "sha224";
        case HashAlgo::Sha256:
            return "sha256";
        case HashAlgo::Sha384:
            return "sha384";
        case HashAlgo::Sha512:
            return "sha512";
        case HashAlgo::Bcrypt:
            return "bcrypt";
        case HashAlgo::Pbkdf2:
            return "pbkdf2";
    }
    return "plain";
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

std::vector<std::string_view> split_commas(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        size_t comma = s.find(',');
        out.push_back(trim(s.substr(0, comma)));
        if (comma == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(comma + 1);
    }
}

std::optional<uint32_t> parse_u32(std::string_view s, uint32_t max) {
    uint32_t n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size() || n == 0 || n > max) {
        return std::nullopt;
    }
    return n;
}

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

std::string raw_digest(const EVP_MD* md, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (md == nullptr || EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

// crypt_r with `setting` (a full stored hash or just its salt part); "" on failure. Passwords
// with a NUL byte cannot be passed to crypt and never match.
std::string crypt_with(std::string_view password, std::string_view setting) {
    if (password.find('\0') != std::string_view::npos ||
        setting.find('\0') != std::string_view::npos || setting.empty()) {
        return {};
    }
    auto data = std::make_unique<crypt_data>();  // about 32 KiB: not on the stack
    std::string pw(password);
    std::string st(setting);
    const char* out = crypt_r(pw.c_str(), st.c_str(), data.get());
    // libxcrypt returns a string starting with '*' on failure (never a valid hash).
    if (out == nullptr || out[0] == '*' || out[0] == '\0') {
        return {};
    }
    return out;
}

bool is_bcrypt_setting(std::string_view s) {
    return s.size() >= 7 &&
           (s.substr(0, 4) == "$2a$" || s.substr(0, 4) == "$2b$" || s.substr(0, 4) == "$2y$");
}

std::optional<std::string> base64_decode(std::string_view in) {
    if (in.empty() || in.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out(in.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    if (n < 0) {
        return std::nullopt;
    }
    size_t pad = 0;
    if (in.back() == '=') {
        pad = in[in.size() - 2] == '=' ? 2 : 1;
    }
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

}  // namespace

Result<HashSpec, std::string> HashSpec::parse(std::string_view text) {
    const std::string t = lower_ascii(trim(text));
    auto parts = split_commas(t);
    HashSpec spec;
    auto bad = [&](std::string_view why) {
        std::string msg(1, '"');
        msg += text;
        msg += "\": ";
        msg += why;
        msg += " (expected plain, md5, sha, sha256, sha512, bcrypt, salt,<hash>, <hash>,salt or "
               "pbkdf2,<mac>,<iterations>,<dklen>)";
        return Err(std::move(msg));
    };
    auto single = [](std::string_view name) -> std::optional<HashAlgo> {
        if (name == "plain") {
            return HashAlgo::Plain;
        }
        if (name == "bcrypt") {
            return HashAlgo::Bcrypt;
        }
        return digest_named(name);
    };
    if (parts.size() == 1) {
        auto a = single(parts[0]);
        if (!a) {
            return bad("unknown hash");
        }
        spec.algo = *a;
        return spec;
    }
    if (parts.size() == 2) {
        bool prefix = parts[0] == "salt";
        bool suffix = parts[1] == "salt";
        if (prefix == suffix) {
            return bad("a two-part hash is salt,<hash> or <hash>,salt");
        }
        auto a = single(prefix ? parts[1] : parts[0]);
        if (!a || *a == HashAlgo::Plain) {
            return bad("unknown hash");
        }
        if (*a == HashAlgo::Bcrypt && !prefix) {
            return bad("bcrypt takes its salt as salt,bcrypt");
        }
        spec.algo = *a;
        spec.salt = prefix ? SaltPos::Prefix : SaltPos::Suffix;
        return spec;
    }
    if (parts.size() == 4 && parts[0] == "pbkdf2") {
        auto mac = digest_named(parts[1]);
        if (!mac) {
            return bad("unknown pbkdf2 mac");
        }
        auto it = parse_u32(parts[2], kMaxPbkdf2Iterations);
        auto len = parse_u32(parts[3], kMaxPbkdf2Bytes);
        if (!it || !len) {
            return bad("pbkdf2 iterations must be 1..10000000 and dklen 1..1024");
        }
        spec.algo = HashAlgo::Pbkdf2;
        spec.pbkdf2_mac = *mac;
        spec.iterations = *it;
        spec.dklen = *len;
        return spec;
    }
    return bad("unknown hash");
}

std::string HashSpec::text() const {
    if (algo == HashAlgo::Pbkdf2) {
        std::string out("pbkdf2,");
        out += name_of(pbkdf2_mac);
        out += ',';
        out += std::to_string(iterations);
        out += ',';
        out += std::to_string(dklen);
        return out;
    }
    switch (salt) {
        case SaltPos::Prefix: {
            std::string out("salt,");
            out += name_of(algo);
            return out;
        }
        case SaltPos::Suffix:
            return std::string(name_of(algo)) + ",salt";
        case SaltPos::None:
            break;
    }
    return std::string(name_of(algo));
}

std::string hex_digest(HashAlgo algo, std::string_view data) {
    std::string raw = raw_digest(md_of(algo), data);
    return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    std::string da = raw_digest(EVP_sha256(), a);
    std::string db = raw_digest(EVP_sha256(), b);
    if (da.size() != 32 || db.size() != 32) {
        return false;
    }
    return CRYPTO_memcmp(da.data(), db.data(), 32) == 0;
}

bool check_password(const HashSpec& spec,
                    std::string_view password,
                    std::string_view stored,
                    std::string_view salt) {
    if (stored.empty()) {
        return false;  // a user without a stored password never logs in
    }
    switch (spec.algo) {
        case HashAlgo::Plain:
            return equal_constant_time(password, stored);
        case HashAlgo::Bcrypt: {
            // bcrypt: the stored hash is its own setting; salt,bcrypt: the salt field is.
            std::string_view setting = spec.salt == SaltPos::Prefix ? salt : stored;
            if (!is_bcrypt_setting(setting)) {
                return false;
            }
            std::string got = crypt_with(password, setting);
            return !got.empty() && equal_constant_time(got, stored);
        }
        case HashAlgo::Pbkdf2: {
            std::vector<unsigned char> out(spec.dklen);
            if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                                  reinterpret_cast<const unsigned char*>(salt.data()),
                                  static_cast<int>(salt.size()), static_cast<int>(spec.iterations),
                                  md_of(spec.pbkdf2_mac), static_cast<int>(out.size()),
                                  out.data()) != 1) {
                return false;
            }
            return equal_constant_time(to_hex(out.data(), out.size()), lower_ascii(stored));
        }
        case HashAlgo::Md5:
        case HashAlgo::Sha:
        case HashAlgo::Sha224:
        case HashAlgo::Sha256:
        case HashAlgo::Sha384:
        case HashAlgo::Sha512:
            break;
    }
    std::string input;
    input.reserve(password.size() + salt.size());
    if (spec.salt == SaltPos::Prefix) {
        input.append(salt).append(password);
    } else if (spec.salt == SaltPos::Suffix) {
        input.append(password).append(salt);
    } else {
        input.append(password);
    }
    std::string got = hex_digest(spec.algo, input);
    return !got.empty() && equal_constant_time(got, lower_ascii(stored));
}

bool check_ldap_password(std::string_view password, std::string_view stored) {
    if (stored.empty()) {
        return false;
    }
    if (stored.front() != '{') {
        return equal_constant_time(password, stored);
    }
    size_t close = stored.find('}');
    if (close == std::string_view::npos) {
        return false;
    }
    const std::string scheme = lower_ascii(stored.substr(1, close - 1));
    std::string_view value = stored.substr(close + 1);
    if (scheme == "crypt") {
        std::string got = crypt_with(password, value);
        return !got.empty() && equal_constant_time(got, value);
    }
    static constexpr std::pair<std::string_view, HashAlgo> kSchemes[] = {
            {"md5", HashAlgo::Md5},       {"sha", HashAlgo::Sha},
            {"sha256", HashAlgo::Sha256}, {"sha384", HashAlgo::Sha384},
            {"sha512", HashAlgo::Sha512},
    };
    auto md_named = [](std::string_view n) -> const EVP_MD* {
        for (const auto& [name, a] : kSchemes) {
            if (name == n) {
                return md_of(a);
            }
        }
        return nullptr;
    };
    // {SHA} is unsalted, {SSHA} is SHA with a salt after the digest; likewise {SMD5}, ...
    bool salted = false;
    const EVP_MD* md = md_named(scheme);
    if (md == nullptr && scheme.size() > 1 && scheme.front() == 's') {
        md = md_named(std::string_view(scheme).substr(1));
        salted = true;
    }
    if (md == nullptr) {
        return false;
    }
    auto decoded = base64_decode(value);
    const auto digest_len = static_cast<size_t>(EVP_MD_get_size(md));
    if (!decoded || decoded->size() < digest_len || (!salted && decoded->size() != digest_len)) {
        return false;
    }
    std::string_view want = std::string_view(*decoded).substr(0, digest_len);
    std::string_view salt = std::string_view(*decoded).substr(digest_len);
    std::string input(password);
    input.append(salt);
    return equal_constant_time(raw_digest(md, input), want);
}

}  // namespace mqttd::broker::auth
