// BackendAuth: the part every database auth plugin shares (emq_auth_redis, emq_auth_mysql,
// emq_auth_pgsql, emq_auth_ldap). A backend supplies only a Connector that opens one
// BackendConnection (redis_auth.h, sql_auth.h, ldap_auth.h); BackendAuth runs the lookups on
// its own TaskPool, checks passwords (password_check.h) and turns answers into Decisions.
//
// THREADS AND CONNECTIONS: `pool` threads (auth.<db>.pool, EMQ's pool size) and at most as
// many connections, opened lazily by the threads that need them and kept in an idle list, so
// each connection is used by one thread at a time and the libraries' per-connection rules
// hold. The queue is bounded (max_queue): a full queue answers at once per on_error, counted
// as busy. No caller ever blocks: a CONNECT or ACL miss waits, paused, for its callback, as it
// does for emq_auth_http.
//
// TIMEOUTS: every query is bounded by query_timeout (auth.<db>.query_timeout, default 5 s),
// enforced by the backend on its socket; a task that waited longer than that in the queue is
// answered without querying. A query that failed or timed out closes its connection (its
// state is unknown); the next task opens a new one.
//
// OUTAGES: opening a connection that fails sets a backoff (100 ms doubling to 5 s) during which
// tasks are answered at once without trying; the first task after it tries again. While the
// backend cannot answer, decisions follow auth.<db>.on_error: ignore (default: the next
// provider decides, as if this plugin did not know the client) or deny (refused, error = true).
// The first failure after a success is logged once (warning) and counted as an outage; the
// first success after it is logged once (info). BackendStats keeps the counters across
// provider rebuilds and reports them as metrics ("auth/<db>/queries", ...).
//
// AUTH CACHE: with cache_ttl > 0 an allowed CONNECT is remembered for that many seconds as
// (the identity values the lookups use: cache_letters) -> HMAC-SHA256(random per-process key,
// password) and the superuser flag; a matching CONNECT is answered inline. No password is kept;
// failures are never cached; at most kMaxCacheEntries (cleared when full). ACL answers use the
// per-connection ACL cache of the workers (mqtt.cache_acl), like every other checker.
//
// DECISIONS (EMQ 2.x): no username or no password, or an unknown user -> Ignore; wrong
// password -> Deny ("bad password"); right password -> Allow, superuser from the super query
// (a failing super query only withholds superuser). ACL: as the backend's rules say.
//
// Thread-safety: all public members from any thread. Destruction stops the pool: queued
// tasks are answered "stopped" (Deny, error), running ones finish (each bounded by the
// timeout). Safe on one of its own pool threads (TaskPool detaches that one).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/auth/auth_chain.h"
#include "broker/auth/password_check.h"
#include "broker/auth/task_pool.h"
#include "common/result.h"

namespace mqttd::broker::auth {

enum class OnError : uint8_t { Ignore, Deny };

inline constexpr size_t kMaxCacheEntries = 10000;
// Bounds on what one lookup may return (a value, and rows of an ACL answer).
inline constexpr size_t kMaxValueBytes = 65536;
inline constexpr size_t kMaxAclRows = 1000;

struct BackendError {
    std::string message;
    bool timeout = false;
};

struct StoredCredentials {
    std::string hash;
    std::string salt;
    bool ldap_scheme = false;       // an LDAP userPassword with its own {SCHEME}
    std::optional<bool> superuser;  // known from the same lookup (LDAP)
};

// One open connection. Used by one pool thread at a time; any error return makes BackendAuth
// close it.
class BackendConnection {
public:
    virtual ~BackendConnection() = default;
    // nullopt: the user is unknown.
    virtual Result<std::optional<StoredCredentials>, BackendError> credentials(
            const ClientIdentity& id) = 0;
    virtual Result<bool, BackendError> superuser(const ClientIdentity& id) = 0;
    // Ignore when the backend has no rule for this client.
    virtual Result<Verdict, BackendError> acl(const ClientIdentity& id,
                                              Access access,
                                              std::string_view topic) = 0;
};

using Connector = std::function<Result<std::unique_ptr<BackendConnection>, BackendError>()>;

// The keys every backend has (auth.<db>.pool, .query_timeout, .on_error, .cache_ttl,
// .password_hash) and which lookups are configured.
struct BackendOptions {
    size_t pool = 8;
    std::chrono::milliseconds query_timeout{5000};
    OnError on_error = OnError::Ignore;
    std::chrono::seconds cache_ttl{0};
    size_t max_queue = 1024;
    HashSpec hash;
    bool has_auth = true;
    bool has_super = true;
    bool has_acl = true;
    // The placeholder letters the auth and super lookups use: the auth cache keys on those
    // values only (a CONNECT with another client id hits when only %u is used).
    std::string cache_letters = "ucaCd";
};

// Counters of one plugin, shared by its successive providers. Any thread.
class BackendStats {
public:
    explicit BackendStats(std::string metric_prefix) : prefix_(std::move(metric_prefix)) {}

    void count_query() { queries_.fetch_add(1, std::memory_order_relaxed); }
    void count_busy() { busy_.fetch_add(1, std::memory_order_relaxed); }
    void count_cache_hit() { cache_hits_.fetch_add(1, std::memory_order_relaxed); }
    // A failed lookup; logs the start of an outage once.
    void failed(std::string_view plugin, const BackendError& e, OnError on_error);
    // A successful lookup; logs the end of an outage once.
    void succeeded(std::string_view plugin);
    bool down() const { return down_.load(std::memory_order_relaxed); }

    // ("auth/<db>/queries", n), errors, timeouts, outages, busy, cache_hits, down (0 or 1).
    std::vector<std::pair<std::string, uint64_t>> metrics() const;

private:
    std::string prefix_;
    std::atomic<uint64_t> queries_{0}, errors_{0}, timeouts_{0}, outages_{0}, busy_{0},
            cache_hits_{0};
    std::atomic<bool> down_{false};
};

class BackendAuth final : public Authenticator, public AclChecker {
public:
    BackendAuth(std::string name,
                BackendOptions options,
                Connector connect,
                std::shared_ptr<BackendStats> stats);
    ~BackendAuth() override;
    BackendAuth(const BackendAuth&) = delete;
    BackendAuth& operator=(const BackendAuth&) = delete;

    std::string_view name() const override { return name_; }
    void authenticate(const ClientIdentity& id, DecisionCallback done) override;
    void check(const ClientIdentity& id,
               Access access,
               std::string_view topic,
               DecisionCallback done) override;

    const BackendOptions& options() const { return options_; }

private:
    // A lookup's result: a decision (possibly together with an error that closes the
    // connection), or only an error (then on_error decides).
    struct Outcome {
        std::optional<Decision> decision;
        std::optional<BackendError> error;
    };
    using Work = std::function<Outcome(BackendConnection&)>;

    void submit(std::shared_ptr<DecisionCallback> done, Work work);
    Decision on_error(const BackendError& e) const;
    Result<std::unique_ptr<BackendConnection>, BackendError> acquire();
    void release(std::unique_ptr<BackendConnection> conn);

    std::string cache_key(const ClientIdentity& id) const;
    std::string cache_tag(const std::string& key, std::string_view password) const;
    std::optional<bool> cache_get(const std::string& key, const std::string& tag);
    void cache_put(std::string key, std::string tag, bool superuser);

    const std::string name_;
    const BackendOptions options_;
    const Connector connect_;
    const std::shared_ptr<BackendStats> stats_;
    unsigned char cache_key_[32] = {};
    bool cache_on_ = false;

    std::mutex conn_mu_;
    std::vector<std::unique_ptr<BackendConnection>> idle_;
    std::chrono::steady_clock::time_point next_connect_{};
    std::chrono::milliseconds backoff_{0};

    struct CacheEntry {
        std::string tag;
        bool superuser = false;
        std::chrono::steady_clock::time_point expires;
    };
    std::mutex cache_mu_;
    std::unordered_map<std::string, CacheEntry> cache_;

    std::unique_ptr<TaskPool> pool_;  // last: stopped first
};

// The value of a boolean-ish column or field: "1", "true", "t", "yes", "on" (any case).
bool truthy(std::string_view v);

// Parses the keys shared by all backends; returns "" when `key` (without the "auth.<db>."
// prefix) is not one of them and was not consumed, an error line when its value is bad, and
// sets *consumed.
std::string set_backend_option(BackendOptions& o,
                               std::string_view key,
                               std::string_view value,
                               bool* consumed);
// A duration: "5s", "500ms", "2m", or a plain number of seconds; nullopt when malformed or
// above `max_ms`.
std::optional<std::chrono::milliseconds> parse_duration_ms(std::string_view text, int64_t max_ms);
// host:port with a default port; nullopt when malformed.
std::optional<std::pair<std::string, uint16_t>> parse_host_port(std::string_view text,
                                                                uint16_t default_port);

}  // namespace mqttd::broker::auth
