// api::Users: the REST admin users (rest-api-v2.md, "User Management") in the store's `users`
// family, and the Basic-auth check every request makes.
//
// Passwords are stored as "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>": PBKDF2-HMAC-
// SHA256 over a random 16-byte salt, kIterations rounds (~50 ms), compared in constant time;
// never the password itself. Because Basic auth runs on every request, a verified (user,
// password) pair is cached in memory under a fast hash of the pair; the entry holds an
// HMAC-SHA256 of the pair under a per-process random key (never the password), compared in
// constant time on a hit. change_pwd and delete drop the user's entries.
//
// Ownership: owned by the api::Server; refers to the store, which outlives it.
// Thread-safety: every member may be called from any thread; writers are serialized.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/login_limiter.h"
#include "storage/records.h"
#include "storage/store.h"

namespace mqttd::api {

class Users {
public:
    static constexpr uint32_t kIterations = 100000;

    enum class Outcome { Ok, Exists, NotFound, WrongPassword, Protected, StoreFailed };

    explicit Users(storage::Store& store);
    Users(const Users&) = delete;
    Users& operator=(const Users&) = delete;

    // Creates `user` with `password` when the store has no user at all. Returns true when
    // `user` exists and still has `password` (the caller logs a warning).
    bool ensure_default(const std::string& user, const std::string& password);

    // True when `user` exists and `password` is its password (cached after the first check).
    bool verify(std::string_view user, std::string_view password);
    // verify() with the hash behind `limiter`'s global cap: Busy, without hashing, when the cap
    // is reached (a cached pair needs no hash and is never Busy).
    enum class Check { Ok, Wrong, Busy };
    Check check(std::string_view user, std::string_view password, LoginLimiter* limiter);

    std::vector<storage::UserRecord> list() const;
    Outcome add(const std::string& user, const std::string& password, const std::string& tags);
    Outcome set_tags(const std::string& user, const std::string& tags);
    // `protected_user` (the default admin) cannot be deleted.
    Outcome remove(const std::string& user, const std::string& protected_user);
    Outcome change_password(const std::string& user,
                            const std::string& old_password,
                            const std::string& new_password);

    // "pbkdf2-sha256$iter$salt$hash" for `password` with a fresh random salt.
    static std::string hash_password(std::string_view password, uint32_t iterations);
    // Constant-time check of `password` against a stored hash string.
    static bool check_password(std::string_view password, std::string_view stored);

private:
    using Digest = std::array<unsigned char, 32>;
    struct Cached {
        std::string user;
        Digest mac;
    };
    Digest mac_of(std::string_view user, std::string_view password) const;
    void forget(std::string_view user);

    storage::Store& store_;
    std::array<unsigned char, 32> cache_key_{};
    std::mutex write_mu_;  // serializes add/set_tags/remove/change_password
    mutable std::mutex cache_mu_;
    std::unordered_map<uint64_t, Cached> cache_;  // guarded by cache_mu_
};

}  // namespace mqttd::api
