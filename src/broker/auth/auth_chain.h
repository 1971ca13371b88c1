// The authentication and ACL chains of mqttd (issue 5): the provider interfaces every auth
// plugin implements, and the two chains the broker asks on CONNECT, PUBLISH and SUBSCRIBE.
//
// AUTHENTICATION ORDER (fixed, documented in src/broker/auth/README.md):
//   1. emq_auth_username  - local store lookup; decides only for usernames it knows
//   2. emq_auth_clientid  - local store lookup; decides only for client ids it knows
//   3. emq_auth_jwt       - local CPU (one signature check); decides only for JWT passwords
//   4. emq_auth_redis     - one in-memory lookup over the network; decides for users it has
//   5. emq_auth_mysql     - one SQL query; decides for users it has
//   6. emq_auth_pgsql     - one SQL query; decides for users it has
//   7. emq_auth_ldap      - one directory search; decides for users it has
//   8. emq_auth_http      - a network round trip; decides for every client it is asked about
// Cheap, local, narrow providers come first: a client a local table knows is decided without
// a network round trip. The databases come next, fastest first; each ignores users it does
// not have, so they can be combined. The HTTP server (slowest, and deciding for everyone) is
// asked only about clients nobody else claimed. Providers with other names follow, in the
// order added.
// The first Allow or Deny decides; when every enabled provider answers Ignore the anonymous
// rule applies: allow iff mqtt.allow_anonymous.
//
// ACL ORDER: the ACL file (emq's internal ACL) first, then emq_auth_redis, emq_auth_mysql,
// emq_auth_pgsql, emq_auth_ldap, then emq_auth_http's acl_req, then others in the order added. A
// superuser is allowed without asking. First Allow or Deny decides; all Ignore -> mqtt.acl_nomatch.
//
// Run-time changes: set/remove/enable build a new immutable provider list under a mutex and
// publish it with an atomic shared_ptr store; a check in flight keeps the list (and the
// providers in it) it started with, so a provider stopped from the REST thread is destroyed
// only after its last in-flight check has answered.
//
// Thread-safety: every member function of AuthChain and AclChain may be called from any
// thread. Callbacks (DecisionCallback) run either inline, before the call returns (local
// providers, cache hits), or on a provider's pool thread; the caller posts back to its own
// thread. Each callback is called exactly once.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mqttd::broker::auth {

// User names and passwords longer than this are refused by the chains before any provider
// sees them (MQTT allows 65535 bytes; no legitimate username or token comes close).
inline constexpr size_t kMaxCredentialBytes = 8192;

struct ClientIdentity {
    std::string client_id;
    std::optional<std::string> username;
    // Only while authenticating (a connection keeps its identity without it); behind a pointer
    // so that the identity every connection keeps is 24 bytes smaller.
    std::shared_ptr<const std::string> password;
    std::string ip;  // textual IPv4 or IPv6 address of the peer
    uint16_t port = 0;
    uint8_t proto_ver = 4;  // 3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0
    // The client certificate's subject on a TLS listener that verified one (EMQ's %C and %d
    // placeholders); null otherwise (behind a pointer: most connections have none).
    struct CertSubject {
        std::string cn;
        std::string dn;  // RFC 2253
    };
    std::shared_ptr<const CertSubject> cert;
};

enum class Verdict { Allow, Deny, Ignore };  // Ignore = not my business, ask the next

struct Decision {
    Verdict verdict = Verdict::Ignore;
    bool superuser = false;
    // The provider could not decide properly (auth server down, queue full): the verdict is
    // Deny and the chains count it as an error as well.
    bool error = false;
    std::string reason;
    // Decided by the anonymous rule (every provider ignored the client), not by a provider.
    bool anonymous_rule = false;

    static Decision allow(std::string why = {}, bool super = false) {
        return {Verdict::Allow, super, false, std::move(why)};
    }
    static Decision deny(std::string why) { return {Verdict::Deny, false, false, std::move(why)}; }
    static Decision failed(std::string why) { return {Verdict::Deny, false, true, std::move(why)}; }
    static Decision ignore() { return {}; }
};

using DecisionCallback = std::function<void(Decision)>;

class Authenticator {
public:
    virtual ~Authenticator() = default;
    // The plugin name as the REST API lists it ("emq_auth_username", ...).
    virtual std::string_view name() const = 0;
    // Decides about `id`; calls `done` exactly once, inline or from another thread.
    // Must not block the calling thread.
    virtual void authenticate(const ClientIdentity& id, DecisionCallback done) = 0;
};

enum class Access : uint8_t { Subscribe = 1, Publish = 2, PubSub = 3 };

class AclChecker {
public:
    virtual ~AclChecker() = default;
    virtual std::string_view name() const = 0;
    // `topic` is the topic name for Publish and the requested filter for Subscribe.
    // Calls `done` exactly once, inline or from another thread. Must not block.
    virtual void check(const ClientIdentity& id,
                       Access access,
                       std::string_view topic,
                       DecisionCallback done) = 0;
    // The verdict (Ignore included) when this checker has it at once, without a callback and
    // without a reason text (a rule file in memory); nullopt when it answers only through
    // check(). Must not block; the default answers only through check().
    virtual std::optional<Verdict> verdict_now(const ClientIdentity& /*id*/,
                                               Access /*access*/,
                                               std::string_view /*topic*/) const {
        return std::nullopt;
    }
};

struct ChainCounters {
    uint64_t allowed = 0;
    uint64_t denied = 0;
    uint64_t ignored = 0;  // every provider ignored: the anonymous / nomatch rule decided
    uint64_t errors = 0;   // decisions flagged `error` (also counted in denied)
};

namespace detail {

struct AtomicCounters {
    std::atomic<uint64_t> allowed{0}, denied{0}, ignored{0}, errors{0};
    void count(const Decision& d, bool fell_through);
    ChainCounters snapshot() const;
};

// An ordered set of named providers, published as an immutable snapshot.
template <typename P>
class ProviderList {
public:
    using Snapshot = std::vector<std::shared_ptr<P>>;

    ProviderList() : current_(std::make_shared<const Snapshot>()) {}

    // Installs or replaces the provider named p->name(), at `rank` (lower is asked first).
    void set(std::shared_ptr<P> p, int rank, bool enabled) {
        std::lock_guard lock(mu_);
        for (auto& e : entries_) {
            if (e.provider->name() == p->name()) {
                e.provider = std::move(p);
                e.enabled = enabled;
                publish();
                return;
            }
        }
        entries_.push_back({std::move(p), rank, next_seq_++, enabled});
        publish();
    }
    bool remove(std::string_view name) {
        std::lock_guard lock(mu_);
        size_t n =
                std::erase_if(entries_, [&](const Entry& e) { return e.provider->name() == name; });
        publish();
        return n > 0;
    }
    bool enable(std::string_view name, bool on) {
        std::lock_guard lock(mu_);
        for (auto& e : entries_) {
            if (e.provider->name() == name) {
                e.enabled = on;
                publish();
                return true;
            }
        }
        return false;
    }
    bool enabled(std::string_view name) const {
        std::lock_guard lock(mu_);
        for (const auto& e : entries_) {
            if (e.provider->name() == name) {
                return e.enabled;
            }
        }
        return false;
    }
    std::shared_ptr<const Snapshot> snapshot() const {
        std::lock_guard lock(snap_mu_);
        return current_;
    }
    uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

private:
    struct Entry {
        std::shared_ptr<P> provider;
        int rank;
        uint64_t seq;
        bool enabled;
    };
    // REQUIRES: mu_ held.
    void publish() {
        std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
            return a.rank != b.rank ? a.rank < b.rank : a.seq < b.seq;
        });
        auto snap = std::make_shared<Snapshot>();
        for (const auto& e : entries_) {
            if (e.enabled) {
                snap->push_back(e.provider);
            }
        }
        {
            std::lock_guard lock(snap_mu_);
            current_ = std::move(snap);
        }
        epoch_.fetch_add(1, std::memory_order_acq_rel);
    }

    mutable std::mutex mu_;
    std::vector<Entry> entries_;
    uint64_t next_seq_ = 0;
    // A plain mutex, not std::atomic<std::shared_ptr>: libstdc++ 12 implements that with a
    // lock bit ThreadSanitizer cannot see, and the critical section is one pointer copy.
    mutable std::mutex snap_mu_;
    std::shared_ptr<const Snapshot> current_;
    std::atomic<uint64_t> epoch_{0};
};

}  // namespace detail

class AuthChain {
public:
    AuthChain() = default;
    AuthChain(const AuthChain&) = delete;
    AuthChain& operator=(const AuthChain&) = delete;

    // The rank of a provider name in the fixed order above; unknown names rank last.
    static int rank_of(std::string_view name);

    // Installs (or replaces, by name) a provider; it is asked only while enabled.
    void set(std::shared_ptr<Authenticator> provider, bool enabled = true);
    void remove(std::string_view name);
    // Returns false when no provider has that name.
    bool enable(std::string_view name, bool on);
    bool enabled(std::string_view name) const;

    // Asks the enabled providers in order; `done` gets the first Allow/Deny, or the anonymous
    // rule's decision (reason "anonymous") when all ignore. Oversized credentials are denied
    // at once (reason "credentials too long").
    void authenticate(const ClientIdentity& id, bool allow_anonymous, DecisionCallback done);

    ChainCounters counters() const { return counters_.snapshot(); }

private:
    detail::ProviderList<Authenticator> providers_;
    std::shared_ptr<detail::AtomicCounters> counters_ptr_ =
            std::make_shared<detail::AtomicCounters>();
    detail::AtomicCounters& counters_ = *counters_ptr_;
};

class AclChain {
public:
    AclChain() = default;
    AclChain(const AclChain&) = delete;
    AclChain& operator=(const AclChain&) = delete;

    // The ACL file ("internal") ranks first, the databases next, emq_auth_http after them,
    // others last.
    static int rank_of(std::string_view name);

    void set(std::shared_ptr<AclChecker> checker, bool enabled = true);
    void remove(std::string_view name);
    bool enable(std::string_view name, bool on);
    bool enabled(std::string_view name) const;

    // Superusers are allowed at once. Otherwise the first Allow/Deny decides; all Ignore ->
    // allow iff nomatch_allow (mqtt.acl_nomatch), reason "nomatch".
    void check(const ClientIdentity& id,
               bool superuser,
               Access access,
               std::string_view topic,
               bool nomatch_allow,
               DecisionCallback done);
    // check()'s verdict for a client that is not a superuser, Allow or Deny, when every checker
    // it asks has its answer at once (AclChecker::verdict_now), counted as check() counts it;
    // nullopt when one of them answers only through check() (or the credentials are too
    // long): call check() then. The PUBLISH path's way around the walk's allocations.
    std::optional<Verdict> verdict_now(const ClientIdentity& id,
                                       Access access,
                                       std::string_view topic,
                                       bool nomatch_allow);

    // Changes whenever the checker list changes or bump_epoch() is called (the ACL file was
    // reloaded): per-connection AclCaches compare it and drop stale entries.
    uint64_t epoch() const {
        return providers_.epoch() + extra_epoch_.load(std::memory_order_acquire);
    }
    void bump_epoch() { extra_epoch_.fetch_add(1, std::memory_order_acq_rel); }

    ChainCounters counters() const { return counters_.snapshot(); }

private:
    detail::ProviderList<AclChecker> providers_;
    std::atomic<uint64_t> extra_epoch_{0};
    std::shared_ptr<detail::AtomicCounters> counters_ptr_ =
            std::make_shared<detail::AtomicCounters>();
    detail::AtomicCounters& counters_ = *counters_ptr_;
};

}  // namespace mqttd::broker::auth
