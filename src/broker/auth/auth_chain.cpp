// The chain walk: provider i answers through a continuation that asks provider i+1 on Ignore.
// The walk state (snapshot, identity copy, final callback) is one shared allocation per
// CONNECT or ACL miss, kept alive by the continuations, so a provider answering from its own
// thread after the caller returned is safe.
#include "broker/auth/auth_chain.h"

#include <array>
#include <utility>

namespace mqttd::broker::auth {

namespace detail {

void AtomicCounters::count(const Decision& d, bool fell_through) {
    if (fell_through) {
        ignored.fetch_add(1, std::memory_order_relaxed);
    }
    if (d.verdict == Verdict::Allow) {
        allowed.fetch_add(1, std::memory_order_relaxed);
    } else {
        denied.fetch_add(1, std::memory_order_relaxed);
    }
    if (d.error) {
        errors.fetch_add(1, std::memory_order_relaxed);
    }
}

ChainCounters AtomicCounters::snapshot() const {
    return {allowed.load(std::memory_order_relaxed), denied.load(std::memory_order_relaxed),
            ignored.load(std::memory_order_relaxed), errors.load(std::memory_order_relaxed)};
}

}  // namespace detail

namespace {

constexpr int kUnknownRank = 1000;

// The client id is not a credential: its length is bounded by mqtt.max_clientid_len (up to the
// 65535 bytes MQTT allows), which the broker checks with "identifier rejected".
bool oversized(const ClientIdentity& id) {
    return (id.username && id.username->size() > kMaxCredentialBytes) ||
           (id.password && id.password->size() > kMaxCredentialBytes);
}

int rank_in(std::string_view name, const auto& order) {
    for (size_t i = 0; i < order.size(); ++i) {
        if (order[i] == name) {
            return static_cast<int>(i);
        }
    }
    return kUnknownRank;
}

struct AuthWalk : std::enable_shared_from_this<AuthWalk> {
    std::shared_ptr<const std::vector<std::shared_ptr<Authenticator>>> providers;
    ClientIdentity id;
    bool allow_anonymous = false;
    DecisionCallback done;
    std::shared_ptr<detail::AtomicCounters> counters;

    void next(size_t i) {
        if (i >= providers->size()) {
            Decision d = allow_anonymous ? Decision::allow("anonymous")
                                         : Decision::deny("anonymous not allowed");
            d.anonymous_rule = true;
            counters->count(d, true);
            done(std::move(d));
            return;
        }
        (*providers)[i]->authenticate(id, [self = shared_from_this(), i](Decision d) {
            if (d.verdict == Verdict::Ignore) {
                self->next(i + 1);
                return;
            }
            self->counters->count(d, false);
            self->done(std::move(d));
        });
    }
};

struct AclWalk : std::enable_shared_from_this<AclWalk> {
    std::shared_ptr<const std::vector<std::shared_ptr<AclChecker>>> checkers;
    ClientIdentity id;
    Access access = Access::Publish;
    std::string topic;
    bool nomatch_allow = false;
    DecisionCallback done;
    std::shared_ptr<detail::AtomicCounters> counters;

    void next(size_t i) {
        if (i >= checkers->size()) {
            Decision d = nomatch_allow ? Decision::allow("nomatch") : Decision::deny("nomatch");
            counters->count(d, true);
            done(std::move(d));
            return;
        }
        (*checkers)[i]->check(id, access, topic, [self = shared_from_this(), i](Decision d) {
            if (d.verdict == Verdict::Ignore) {
                self->next(i + 1);
                return;
            }
            self->counters->count(d, false);
            self->done(std::move(d));
        });
    }
};

}  // namespace

int AuthChain::rank_of(std::string_view name) {
    static constexpr std::array<std::string_view, 8> kOrder = {
            "emq_auth_username", "emq_auth_clientid", "emq_auth_jwt",  "emq_auth_redis",
            "emq_auth_mysql",    "emq_auth_pgsql",    "emq_auth_ldap", "emq_auth_http"};
    return rank_in(name, kOrder);
}

void AuthChain::set(std::shared_ptr<Authenticator> provider, bool enabled) {
    int rank = rank_of(provider->name());
    providers_.set(std::move(provider), rank, enabled);
}

void AuthChain::remove(std::string_view name) {
    providers_.remove(name);
}

bool AuthChain::enable(std::string_view name, bool on) {
    return providers_.enable(name, on);
}

bool AuthChain::enabled(std::string_view name) const {
    return providers_.enabled(name);
}

void AuthChain::authenticate(const ClientIdentity& id,
                             bool allow_anonymous,
                             DecisionCallback done) {
    if (oversized(id)) {
        Decision d = Decision::deny("credentials too long");
        counters_.count(d, false);
        done(std::move(d));
        return;
    }
    auto walk = std::make_shared<AuthWalk>();
    walk->providers = providers_.snapshot();
    walk->id = id;
    walk->allow_anonymous = allow_anonymous;
    walk->done = std::move(done);
    walk->counters = counters_ptr_;
    walk->next(0);
}

int AclChain::rank_of(std::string_view name) {
    static constexpr std::array<std::string_view, 6> kOrder = {"internal",       "emq_auth_redis",
                                                               "emq_auth_mysql", "emq_auth_pgsql",
                                                               "emq_auth_ldap",  "emq_auth_http"};
    return rank_in(name, kOrder);
}

void AclChain::set(std::shared_ptr<AclChecker> checker, bool enabled) {
    int rank = rank_of(checker->name());
    providers_.set(std::move(checker), rank, enabled);
}

void AclChain::remove(std::string_view name) {
    providers_.remove(name);
}

bool AclChain::enable(std::string_view name, bool on) {
    return providers_.enable(name, on);
}

bool AclChain::enabled(std::string_view name) const {
    return providers_.enabled(name);
}

void AclChain::check(const ClientIdentity& id,
                     bool superuser,
                     Access access,
                     std::string_view topic,
                     bool nomatch_allow,
                     DecisionCallback done) {
    if (superuser) {
        Decision d = Decision::allow("superuser", true);
        counters_.count(d, false);
        done(std::move(d));
        return;
    }
    if (oversized(id)) {
        Decision d = Decision::deny("credentials too long");
        counters_.count(d, false);
        done(std::move(d));
        return;
    }
    auto walk = std::make_shared<AclWalk>();
    walk->checkers = providers_.snapshot();
    walk->id = id;
    walk->access = access;
    walk->topic = std::string(topic);
    walk->nomatch_allow = nomatch_allow;
    walk->done = std::move(done);
    walk->counters = counters_ptr_;
    walk->next(0);
}

std::optional<Verdict> AclChain::verdict_now(const ClientIdentity& id,
                                             Access access,
                                             std::string_view topic,
                                             bool nomatch_allow) {
    if (oversized(id)) {
        return std::nullopt;
    }
    // Nothing is counted until the verdict is known, so falling back to check() after an
    // inline Ignore counts the decision once.
    auto checkers = providers_.snapshot();
    for (const auto& c : *checkers) {
        std::optional<Verdict> v = c->verdict_now(id, access, topic);
        if (!v) {
            return std::nullopt;
        }
        if (*v != Verdict::Ignore) {
            Decision d;
            d.verdict = *v;
            counters_.count(d, false);
            return v;
        }
    }
    Decision d;
    d.verdict = nomatch_allow ? Verdict::Allow : Verdict::Deny;
    counters_.count(d, true);
    return d.verdict;
}

}  // namespace mqttd::broker::auth
