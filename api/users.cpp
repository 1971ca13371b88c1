#include "api/users.h"

#include <charconv>
#include <functional>
#include <optional>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/clock.h"

namespace mqttd::api {
namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr size_t kSaltLen = 16;
constexpr size_t kHashLen = 32;
constexpr size_t kMaxCached = 4096;

std::string to_hex(const unsigned char* p, size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (size_t i = 0; i < n; ++i) {
        out += kDigits[p[i] >> 4];
        out += kDigits[p[i] & 0x0f];
    }
    return out;
}

std::optional<std::string> from_hex(std::string_view s) {
    if (s.size() % 2 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(s.size() / 2);
    for (size_t i = 0; i < s.size(); i += 2) {
        unsigned v = 0;
        auto [end, ec] = std::from_chars(s.data() + i, s.data() + i + 2, v, 16);
        if (ec != std::errc() || end != s.data() + i + 2) {
            return std::nullopt;
        }
        out += static_cast<char>(v);
    }
    return out;
}

bool pbkdf2(std::string_view password,
            std::string_view salt,
            uint32_t iterations,
            unsigned char* out,
            size_t out_len) {
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                             reinterpret_cast<const unsigned char*>(salt.data()),
                             static_cast<int>(salt.size()), static_cast<int>(iterations),
                             EVP_sha256(), static_cast<int>(out_len), out) == 1;
}

}  // namespace

Users::Users(storage::Store& store) : store_(store) {
    if (RAND_bytes(cache_key_.data(), static_cast<int>(cache_key_.size())) != 1) {
        throw std::runtime_error("api: no random bytes for the credential cache key");
    }
}

std::string Users::hash_password(std::string_view password, uint32_t iterations) {
    std::array<unsigned char, kSaltLen> salt{};
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
        throw std::runtime_error("api: no random bytes for a password salt");
    }
    std::array<unsigned char, kHashLen> hash{};
    std::string_view salt_view(reinterpret_cast<const char*>(salt.data()), salt.size());
    if (!pbkdf2(password, salt_view, iterations, hash.data(), hash.size())) {
        throw std::runtime_error("api: PBKDF2 failed");
    }
    return std::string(kScheme) + "$" + std::to_string(iterations) + "$" +
           to_hex(salt.data(), salt.size()) + "$" + to_hex(hash.data(), hash.size());
}

bool Users::check_password(std::string_view password, std::string_view stored) {
    // scheme$iter$salt$hash
    std::array<std::string_view, 4> parts;
    for (size_t i = 0; i < 3; ++i) {
        size_t d = stored.find('$');
        if (d == std::string_view::npos) {
            return false;
        }
        parts[i] = stored.substr(0, d);
        stored.remove_prefix(d + 1);
    }
    parts[3] = stored;
    if (parts[0] != kScheme) {
        return false;
    }
    uint32_t iterations = 0;
    auto [end, ec] =
            std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), iterations);
    if (ec != std::errc() || end != parts[1].data() + parts[1].size() || iterations == 0 ||
        iterations > 10'000'000) {
        return false;
    }
    auto salt = from_hex(parts[2]);
    auto expected = from_hex(parts[3]);
    if (!salt || !expected || expected->empty() || expected->size() > 64) {
        return false;
    }
    std::array<unsigned char, 64> got{};
    if (!pbkdf2(password, *salt, iterations, got.data(), expected->size())) {
        return false;
    }
    return CRYPTO_memcmp(got.data(), expected->data(), expected->size()) == 0;
}

Users::Digest Users::mac_of(std::string_view user, std::string_view password) const {
    std::string msg;
    msg.reserve(user.size() + 1 + password.size());
    msg += user;
    msg += '\0';
    msg += password;
    Digest d{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), cache_key_.data(), static_cast<int>(cache_key_.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), d.data(), &len);
    return d;
}

bool Users::ensure_default(const std::string& user, const std::string& password) {
    std::lock_guard lock(write_mu_);
    if (store_.count(storage::Counted::Users) == 0 && !store_.get_user(user)) {
        storage::WriteBatch batch;
        batch.put_user(storage::UserRecord{user, hash_password(password, kIterations),
                                           "administrator", unix_ms()});
        if (auto st = store_.write(std::move(batch)); !st.is_ok()) {
            throw std::runtime_error("api: cannot create the default REST user " + user + ": " +
                                     st.to_string());
        }
    }
    auto rec = store_.get_user(user);
    return rec && check_password(password, rec->password_hash);
}

bool Users::verify(std::string_view user, std::string_view password) {
    return check(user, password, nullptr) == Check::Ok;
}

Users::Check Users::check(std::string_view user, std::string_view password, LoginLimiter* limiter) {
    uint64_t key = std::hash<std::string_view>{}(user)*31 + std::hash<std::string_view>{}(password);
    Digest mac = mac_of(user, password);
    {
        std::lock_guard lock(cache_mu_);
        auto it = cache_.find(key);
        if (it != cache_.end() && it->second.user == user &&
            CRYPTO_memcmp(it->second.mac.data(), mac.data(), mac.size()) == 0) {
            return Check::Ok;
        }
    }
    if (limiter != nullptr && !limiter->admit_hash()) {
        return Check::Busy;
    }
    auto rec = store_.get_user(user);
    const bool ok = rec && check_password(password, rec->password_hash);
    if (limiter != nullptr) {
        limiter->end_hash();
    }
    if (!ok) {
        return Check::Wrong;
    }
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= kMaxCached) {
        cache_.clear();
    }
    cache_[key] = Cached{std::string(user), mac};
    return Check::Ok;
}

void Users::forget(std::string_view user) {
    std::lock_guard lock(cache_mu_);
    std::erase_if(cache_, [&](const auto& kv) { return kv.second.user == user; });
}

std::vector<storage::UserRecord> Users::list() const {
    std::vector<storage::UserRecord> out;
    storage::PageRequest req;
    req.limit = 1000;
    while (true) {
        auto page = store_.users(req);
        for (auto& u : page.items) {
            out.push_back(std::move(u));
        }
        if (page.next_cursor.empty()) {
            break;
        }
        req.cursor = page.next_cursor;
    }
    return out;
}

Users::Outcome Users::add(const std::string& user,
                          const std::string& password,
                          const std::string& tags) {
    std::lock_guard lock(write_mu_);
    if (store_.get_user(user)) {
        return Outcome::Exists;
    }
    storage::WriteBatch batch;
    batch.put_user(
            storage::UserRecord{user, hash_password(password, kIterations), tags, unix_ms()});
    return store_.write(std::move(batch)).is_ok() ? Outcome::Ok : Outcome::StoreFailed;
}

Users::Outcome Users::set_tags(const std::string& user, const std::string& tags) {
    std::lock_guard lock(write_mu_);
    auto rec = store_.get_user(user);
    if (!rec) {
        return Outcome::NotFound;
    }
    rec->tags = tags;
    storage::WriteBatch batch;
    batch.put_user(std::move(*rec));
    return store_.write(std::move(batch)).is_ok() ? Outcome::Ok : Outcome::StoreFailed;
}

Users::Outcome Users::remove(const std::string& user, const std::string& protected_user) {
    std::lock_guard lock(write_mu_);
    if (!store_.get_user(user)) {
        return Outcome::NotFound;
    }
    if (user == protected_user) {
        return Outcome::Protected;
    }
    storage::WriteBatch batch;
    batch.delete_user(user);
    if (!store_.write(std::move(batch)).is_ok()) {
        return Outcome::StoreFailed;
    }
    forget(user);
    return Outcome::Ok;
}

Users::Outcome Users::change_password(const std::string& user,
                                      const std::string& old_password,
                                      const std::string& new_password) {
    std::lock_guard lock(write_mu_);
    auto rec = store_.get_user(user);
    if (!rec) {
        return Outcome::NotFound;
    }
    if (!check_password(old_password, rec->password_hash)) {
        return Outcome::WrongPassword;
    }
    rec->password_hash = hash_password(new_password, kIterations);
    storage::WriteBatch batch;
    batch.put_user(std::move(*rec));
    if (!store_.write(std::move(batch)).is_ok()) {
        return Outcome::StoreFailed;
    }
    forget(user);
    return Outcome::Ok;
}

}  // namespace mqttd::api
