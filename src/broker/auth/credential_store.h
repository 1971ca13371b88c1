// emq_auth_username and emq_auth_clientid: name -> salted slow hash (password_hash.h), kept
// in the store's `config` family so they survive restarts.
//
// KEYS: "auth.username.<name>" / "auth.clientid.<client id>" -> encoded hash; for user names
// also "auth.username_scram.<name>" -> the SCRAM-SHA-256 credential of the same password
// (scram.h: StoredKey and ServerKey, its own salt), for MQTT 5 enhanced authentication. A
// name added before SCRAM keys were kept has none until its password is set again. All
// entries of one kind are loaded into memory at construction; add/remove write through the
// store (blocking write: REST or startup threads only) and then update memory.
//
// DECISIONS: the name (username, or client id) is unknown, or absent -> Ignore (the next
// provider decides); known and the password matches -> Allow; otherwise Deny.
//
// COST: a PBKDF2 verification takes tens of milliseconds, so authenticate() never runs it on
// the caller's thread: it runs on a private pool (verify_threads, bounded queue; a full queue
// denies with error = true, "auth busy"). Successful verifications are cached as
// name -> HMAC-SHA256(random per-process key, password); a cached CONNECT is answered inline
// in about a microsecond. The cache holds no password and no unsalted hash that outlives the
// process; an entry is dropped when its name is changed or removed; it is bounded
// (cache_capacity, cleared when full). Failures are never cached.
//
// Thread-safety: every member from any thread. Ownership: the store must outlive this.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/auth/auth_chain.h"
#include "broker/auth/password_hash.h"
#include "broker/auth/scram.h"
#include "broker/auth/task_pool.h"
#include "storage/status.h"
#include "storage/store.h"

namespace mqttd::broker::auth {

enum class CredentialKind { Username, ClientId };

struct CredentialOptions {
    uint32_t iterations = kDefaultPbkdf2Iterations;
    uint32_t scram_iterations = kDefaultScramIterations;
    size_t cache_capacity = 10000;
    size_t verify_threads = 1;
    size_t max_queue = 256;
};

struct CredentialCounters {
    uint64_t cache_hits = 0;
    uint64_t verifications = 0;  // PBKDF2 computations
    uint64_t busy = 0;           // refused because the verify queue was full
};

class CredentialStore final : public Authenticator {
public:
    // Loads the existing entries of `kind` from `store`.
    CredentialStore(storage::Store& store, CredentialKind kind, CredentialOptions options = {});
    ~CredentialStore() override;
    CredentialStore(const CredentialStore&) = delete;
    CredentialStore& operator=(const CredentialStore&) = delete;

    std::string_view name() const override;
    void authenticate(const ClientIdentity& id, DecisionCallback done) override;

    // Adds or replaces. Invalid: empty name, name or password over kMaxCredentialBytes.
    [[nodiscard]] storage::Status add(std::string_view name, std::string_view password);
    // NotFound when absent.
    [[nodiscard]] storage::Status remove(std::string_view name);
    bool contains(std::string_view name) const;
    std::vector<std::string> list() const;  // sorted
    // Blocking check (REST, tests): Ignore for an unknown name, else Allow or Deny.
    Verdict verify(std::string_view name, std::string_view password);
    // The SCRAM-SHA-256 credential of a user name, if it has one.
    std::optional<ScramCredential> scram_credential(std::string_view name) const;

    // Pre-seeds from configuration pairs: "auth.user.N.username" + "auth.user.N.password"
    // (Username) or "auth.client.N.clientid" + "auth.client.N.password" (ClientId). Only
    // names not yet stored are added, so a password changed through REST survives a restart.
    // Returns the Status of the first failed write and one warning line per incomplete pair.
    struct SeedResult {
        storage::Status status;
        std::vector<std::string> warnings;
        size_t added = 0;
    };
    [[nodiscard]] SeedResult seed(const std::vector<std::pair<std::string, std::string>>& config);

    CredentialCounters counters() const;
    // The store key prefix of `kind` ("auth.username." / "auth.clientid.").
    static std::string_view key_prefix(CredentialKind kind);

private:
    std::string cache_tag(std::string_view password) const;
    bool cache_hit(std::string_view name, const std::string& tag) const;
    void cache_put(std::string_view name, std::string tag);
    void cache_drop(std::string_view name);

    storage::Store& store_;
    const CredentialKind kind_;
    CredentialOptions options_;
    unsigned char cache_key_[32] = {};

    mutable std::shared_mutex mu_;
    std::unordered_map<std::string, std::string> hashes_;  // name -> encoded hash
    std::unordered_map<std::string, std::string> scram_;   // name -> encoded SCRAM credential
    mutable std::shared_mutex cache_mu_;
    std::unordered_map<std::string, std::string> cache_;  // name -> cache_tag(password)

    std::atomic<uint64_t> cache_hits_{0}, verifications_{0}, busy_{0};
    std::unique_ptr<TaskPool> pool_;  // last: stopped first
};

}  // namespace mqttd::broker::auth
