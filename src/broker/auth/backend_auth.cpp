#include "broker/auth/backend_auth.h"

#include <algorithm>
#include <charconv>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "broker/auth/db_template.h"

namespace mqttd::broker::auth {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{5000};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
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

}  // namespace

bool truthy(std::string_view v) {
    std::string s = lower(trim(v));
    return s == "1" || s == "true" || s == "t" || s == "yes" || s == "on";
}

std::optional<milliseconds> parse_duration_ms(std::string_view text, int64_t max_ms) {
    std::string t = lower(trim(text));
    int64_t n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec != std::errc() || p == t.data() || n < 0) {
        return std::nullopt;
    }
    std::string_view unit(p, static_cast<size_t>(t.data() + t.size() - p));
    int64_t mult = 0;
    if (unit.empty() || unit == "s") {
        mult = 1000;
    } else if (unit == "ms") {
        mult = 1;
    } else if (unit == "m") {
        mult = 60000;
    } else {
        return std::nullopt;
    }
    if (n > max_ms / mult) {
        return std::nullopt;
    }
    return milliseconds(n * mult);
}

std::optional<std::pair<std::string, uint16_t>> parse_host_port(std::string_view text,
                                                                uint16_t default_port) {
    std::string_view t = trim(text);
    std::string host;
    std::string_view port;
    if (!t.empty() && t.front() == '[') {
        size_t close = t.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        host = std::string(t.substr(1, close - 1));
        std::string_view rest = t.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return std::nullopt;
            }
            port = rest.substr(1);
        }
    } else {
        size_t colon = t.rfind(':');
        if (colon != std::string_view::npos && t.find(':') == colon) {
            host = std::string(t.substr(0, colon));
            port = t.substr(colon + 1);
        } else {
            host = std::string(t);
        }
    }
    if (host.empty() || host.find_first_of(" \t,") != std::string::npos) {
        return std::nullopt;
    }
    uint16_t p = default_port;
    if (!port.empty()) {
        auto [e, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || e != port.data() + port.size() || p == 0) {
            return std::nullopt;
        }
    }
    return std::pair{host, p};
}

std::string set_backend_option(BackendOptions& o,
                               std::string_view key,
                               std::string_view value,
                               bool* consumed) {
    *consumed = true;
    std::string v = lower(trim(value));
    if (key == "pool") {
        size_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 64) {
            return "expected a pool size 1..64";
        }
        o.pool = n;
    } else if (key == "query_timeout") {
        auto d = parse_duration_ms(v, 600000);
        if (!d || d->count() < 1) {
            return "expected a duration 1ms..10m (5s, 500ms; a plain number is seconds)";
        }
        o.query_timeout = *d;
    } else if (key == "on_error") {
        if (v != "ignore" && v != "deny") {
            return "expected ignore or deny";
        }
        o.on_error = v == "deny" ? OnError::Deny : OnError::Ignore;
    } else if (key == "cache_ttl") {
        auto d = parse_duration_ms(v, 86400000);
        if (!d) {
            return "expected a duration up to 1d (0 = off; 30s, 5m; a plain number is seconds)";
        }
        o.cache_ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
    } else if (key == "password_hash") {
        auto h = HashSpec::parse(value);
        if (!h) {
            return h.error();
        }
        o.hash = *h;
    } else {
        *consumed = false;
    }
    return {};
}

// ---- BackendStats ----

void BackendStats::failed(std::string_view plugin, const BackendError& e, OnError on_error) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (e.timeout) {
        timeouts_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!down_.exchange(true, std::memory_order_acq_rel)) {
        outages_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("{}: backend unavailable ({}); answering \"{}\" until it is back", plugin,
                     e.message, on_error == OnError::Deny ? "deny" : "ignore");
    }
}

void BackendStats::succeeded(std::string_view plugin) {
    if (down_.load(std::memory_order_relaxed) && down_.exchange(false, std::memory_order_acq_rel)) {
        spdlog::info("{}: backend available again", plugin);
    }
}

std::vector<std::pair<std::string, uint64_t>> BackendStats::metrics() const {
    auto get = [](const std::atomic<uint64_t>& a) {
        return a.load(std::memory_order_relaxed);
    };
    return {{prefix_ + "queries", get(queries_)},   {prefix_ + "errors", get(errors_)},
            {prefix_ + "timeouts", get(timeouts_)}, {prefix_ + "outages", get(outages_)},
            {prefix_ + "busy", get(busy_)},         {prefix_ + "cache_hits", get(cache_hits_)},
            {prefix_ + "down", down() ? 1u : 0u}};
}

// ---- BackendAuth ----

BackendAuth::BackendAuth(std::string name,
                         BackendOptions options,
                         Connector connect,
                         std::shared_ptr<BackendStats> stats)
    : name_(std::move(name)),
      options_(std::move(options)),
      connect_(std::move(connect)),
      stats_(std::move(stats)) {
    // Without a secret key the cache tag would be a plain hash of the password: no cache.
    cache_on_ = options_.cache_ttl.count() > 0 && RAND_bytes(cache_key_, sizeof(cache_key_)) == 1;
    pool_ = std::make_unique<TaskPool>(std::max<size_t>(1, options_.pool), options_.max_queue);
}

BackendAuth::~BackendAuth() {
    pool_->stop();
}

Decision BackendAuth::on_error(const BackendError& e) const {
    if (options_.on_error == OnError::Ignore) {
        return Decision::ignore();
    }
    return Decision::failed(name_ + " unavailable: " + e.message);
}

Result<std::unique_ptr<BackendConnection>, BackendError> BackendAuth::acquire() {
    {
        std::lock_guard lock(conn_mu_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return c;
        }
        if (Clock::now() < next_connect_) {
            return Err(BackendError{"not connected (reconnecting with backoff)", false});
        }
    }
    auto c = connect_();
    std::lock_guard lock(conn_mu_);
    if (!c) {
        backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
        next_connect_ = Clock::now() + backoff_;
        return Err(c.error());
    }
    backoff_ = milliseconds(0);
    return std::move(c).value();
}

void BackendAuth::release(std::unique_ptr<BackendConnection> conn) {
    std::lock_guard lock(conn_mu_);
    idle_.push_back(std::move(conn));
}

void BackendAuth::submit(std::shared_ptr<DecisionCallback> done, Work work) {
    auto enqueued = Clock::now();
    bool queued = pool_->submit([this, done, work = std::move(work), enqueued](bool run) {
        if (!run) {
            (*done)(Decision::failed(name_ + " stopped"));
            return;
        }
        if (Clock::now() - enqueued > options_.query_timeout) {
            BackendError e{"timed out waiting in the queue", true};
            stats_->failed(name_, e, options_.on_error);
            (*done)(on_error(e));
            return;
        }
        auto conn = acquire();
        if (!conn) {
            stats_->failed(name_, conn.error(), options_.on_error);
            (*done)(on_error(conn.error()));
            return;
        }
        stats_->count_query();
        auto started = Clock::now();
        Outcome out = work(**conn);
        if (out.error && Clock::now() - started >= options_.query_timeout) {
            out.error->timeout = true;  // the server's own timeout, or the socket's
        }
        if (out.error) {
            stats_->failed(name_, *out.error, options_.on_error);
            conn->reset();  // state unknown: close it
        } else {
            stats_->succeeded(name_);
            release(std::move(conn).value());
        }
        (*done)(out.decision ? std::move(*out.decision) : on_error(*out.error));
    });
    if (!queued) {
        stats_->count_busy();
        (*done)(on_error(BackendError{"queue full", false}));
    }
}

std::string BackendAuth::cache_key(const ClientIdentity& id) const {
    std::string k;
    for (char letter : std::string_view("ucaCd")) {
        k.push_back('\0');
        if (options_.cache_letters.find(letter) != std::string::npos) {
            k += placeholder_value(letter, id);
        }
    }
    return k;
}

std::string BackendAuth::cache_tag(const std::string& key, std::string_view password) const {
    std::string input = key;
    input.push_back('\0');
    input.append(password);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), cache_key_, sizeof(cache_key_),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), out,
             &len) == nullptr) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::optional<bool> BackendAuth::cache_get(const std::string& key, const std::string& tag) {
    std::lock_guard lock(cache_mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
        return std::nullopt;
    }
    if (Clock::now() >= it->second.expires) {
        cache_.erase(it);
        return std::nullopt;
    }
    if (it->second.tag.size() != tag.size() ||
        CRYPTO_memcmp(it->second.tag.data(), tag.data(), tag.size()) != 0) {
        return std::nullopt;
    }
    return it->second.superuser;
}

void BackendAuth::cache_put(std::string key, std::string tag, bool superuser) {
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= kMaxCacheEntries) {
        cache_.clear();
    }
    cache_[std::move(key)] =
            CacheEntry{std::move(tag), superuser, Clock::now() + options_.cache_ttl};
}

void BackendAuth::authenticate(const ClientIdentity& id, DecisionCallback done) {
    if (!options_.has_auth || !id.username || id.username->empty() || !id.password) {
        done(Decision::ignore());
        return;
    }
    std::string key;
    std::string tag;
    if (cache_on_) {
        key = cache_key(id);
        tag = cache_tag(key, *id.password);
        if (auto super = cache_get(key, tag)) {
            stats_->count_cache_hit();
            done(Decision::allow(name_, *super));
            return;
        }
    }
    submit(std::make_shared<DecisionCallback>(std::move(done)),
           [this, id, key = std::move(key), tag = std::move(tag)](BackendConnection& c) mutable {
               Outcome out;
               auto creds = c.credentials(id);
               if (!creds) {
                   out.error = creds.error();
                   return out;
               }
               if (!*creds) {
                   out.decision = Decision::ignore();
                   return out;
               }
               const StoredCredentials& sc = **creds;
               bool ok = sc.ldap_scheme
                                 ? check_ldap_password(*id.password, sc.hash)
                                 : check_password(options_.hash, *id.password, sc.hash, sc.salt);
               if (!ok) {
                   out.decision = Decision::deny("bad password");
                   return out;
               }
               bool super = false;
               if (sc.superuser) {
                   super = *sc.superuser;
               } else if (options_.has_super) {
                   auto s = c.superuser(id);
                   if (s) {
                       super = *s;
                   } else {
                       out.error = s.error();  // closes the connection; superuser withheld
                   }
               }
               if (cache_on_ && !tag.empty()) {
                   cache_put(std::move(key), std::move(tag), super);
               }
               out.decision = Decision::allow(name_, super);
               return out;
           });
}

void BackendAuth::check(const ClientIdentity& id,
                        Access access,
                        std::string_view topic,
                        DecisionCallback done) {
    if (!options_.has_acl) {
        done(Decision::ignore());
        return;
    }
    submit(std::make_shared<DecisionCallback>(std::move(done)),
           [this, id, access, t = std::string(topic)](BackendConnection& c) {
               Outcome out;
               auto v = c.acl(id, access, t);
               if (!v) {
                   out.error = v.error();
                   return out;
               }
               switch (*v) {
                   case Verdict::Allow:
                       out.decision = Decision::allow(name_ + " acl");
                       break;
                   case Verdict::Deny:
                       out.decision = Decision::deny(name_ + " acl");
                       break;
                   case Verdict::Ignore:
                       out.decision = Decision::ignore();
                       break;
               }
               return out;
           });
}

}  // namespace mqttd::broker::auth
