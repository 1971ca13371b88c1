// One hiredis context per connection, blocking, with SO_RCVTIMEO/SO_SNDTIMEO set to the query
// timeout (redisSetTimeout): a command that takes longer fails with EAGAIN and the context is
// closed, so a slow server costs at most one timeout per lookup.
#include "broker/auth/redis_auth.h"

#include <cerrno>
#include <charconv>
#include <cstring>

#include <hiredis/hiredis.h>

#include "broker/auth/acl.h"

namespace mqttd::broker::auth {

namespace {

constexpr std::string_view kPrefix = "auth.redis.";

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

struct ReplyFree {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

struct ContextFree {
    void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

BackendError context_error(const redisContext* c, std::string_view what) {
    BackendError e;
    e.message = std::string(what) + ": " + (c != nullptr ? c->errstr : "out of memory");
    e.timeout = c != nullptr && c->err == REDIS_ERR_IO &&
                (std::strstr(c->errstr, "temporarily unavailable") != nullptr ||
                 std::strstr(c->errstr, "timed out") != nullptr);
    if (e.timeout) {
        e.message = std::string(what) + ": timed out";
    }
    return e;
}

// A string, status or integer reply as text; nullopt for nil and anything else.
std::optional<std::string> text_of(const redisReply* r) {
    if (r == nullptr) {
        return std::nullopt;
    }
    switch (r->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            return std::string(r->str, std::min<size_t>(r->len, kMaxValueBytes));
        case REDIS_REPLY_INTEGER:
            return std::to_string(r->integer);
        default:
            break;
    }
    return std::nullopt;
}

class RedisConnection final : public BackendConnection {
public:
    RedisConnection(ContextPtr ctx, const RedisConfig& config)
        : ctx_(std::move(ctx)), config_(config) {}

    static Result<std::unique_ptr<BackendConnection>, BackendError> open(const RedisConfig& cfg) {
        timeval tv = to_timeval(cfg.options.query_timeout);
        ContextPtr ctx(redisConnectWithTimeout(cfg.host.c_str(), cfg.port, tv));
        if (!ctx || ctx->err != 0) {
            return Err(context_error(ctx.get(),
                                     "connect " + cfg.host + ":" + std::to_string(cfg.port)));
        }
        if (redisSetTimeout(ctx.get(), tv) != REDIS_OK) {
            return Err(context_error(ctx.get(), "set timeout"));
        }
        auto conn = std::make_unique<RedisConnection>(std::move(ctx), cfg);
        if (!cfg.password.empty()) {
            auto r = conn->command({"AUTH", cfg.password});
            if (!r) {
                return Err(r.error());
            }
        }
        if (cfg.database != 0) {
            auto r = conn->command({"SELECT", std::to_string(cfg.database)});
            if (!r) {
                return Err(r.error());
            }
        }
        return std::unique_ptr<BackendConnection>(std::move(conn));
    }

    Result<ReplyPtr, BackendError> command(const std::vector<std::string>& argv) {
        std::vector<const char*> args;
        std::vector<size_t> lens;
        args.reserve(argv.size());
        lens.reserve(argv.size());
        for (const auto& a : argv) {
            args.push_back(a.data());
            lens.push_back(a.size());
        }
        ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(
                ctx_.get(), static_cast<int>(args.size()), args.data(), lens.data())));
        if (!r) {
            return Err(context_error(ctx_.get(), argv.empty() ? "redis" : argv[0]));
        }
        if (r->type == REDIS_REPLY_ERROR) {
            return Err(BackendError{(argv.empty() ? std::string("redis") : argv[0]) + ": " +
                                            std::string(r->str, r->len),
                                    false});
        }
        return r;
    }

    Result<std::optional<StoredCredentials>, BackendError> credentials(
            const ClientIdentity& id) override {
        auto r = command(expand(config_.auth_cmd, id));
        if (!r) {
            return Err(r.error());
        }
        const redisReply* first = r->get();
        const redisReply* second = nullptr;
        if ((*r)->type == REDIS_REPLY_ARRAY) {
            first = (*r)->elements > 0 ? (*r)->element[0] : nullptr;
            second = (*r)->elements > 1 ? (*r)->element[1] : nullptr;
        }
        auto hash = text_of(first);
        if (!hash) {
            return std::optional<StoredCredentials>();
        }
        StoredCredentials sc;
        sc.hash = std::move(*hash);
        sc.salt = text_of(second).value_or("");
        return std::optional<StoredCredentials>(std::move(sc));
    }

    Result<bool, BackendError> superuser(const ClientIdentity& id) override {
        auto r = command(expand(config_.super_cmd, id));
        if (!r) {
            return Err(r.error());
        }
        const redisReply* v = r->get();
        if (v->type == REDIS_REPLY_ARRAY) {
            v = v->elements > 0 ? v->element[0] : nullptr;
        }
        auto t = text_of(v);
        return t && truthy(*t);
    }

    Result<Verdict, BackendError> acl(const ClientIdentity& id,
                                      Access access,
                                      std::string_view topic) override {
        auto r = command(expand(config_.acl_cmd, id));
        if (!r) {
            return Err(r.error());
        }
        std::vector<std::pair<std::string, std::string>> fields;
        if ((*r)->type == REDIS_REPLY_ARRAY) {
            size_t n = std::min<size_t>((*r)->elements / 2, kMaxAclRows);
            for (size_t i = 0; i < n; ++i) {
                auto k = text_of((*r)->element[2 * i]);
                auto v = text_of((*r)->element[2 * i + 1]);
                if (k && v) {
                    fields.emplace_back(std::move(*k), std::move(*v));
                }
            }
        }
        return redis_acl_decide(fields, id, access, topic);
    }

private:
    ContextPtr ctx_;
    const RedisConfig& config_;  // owned by the provider's connector, which outlives this
};

}  // namespace

RedisConfig::RedisConfig() {
    for (const auto& [k, v] : redis_defaults()) {
        set(k, v);
    }
}

const std::vector<std::pair<std::string, std::string>>& redis_defaults() {
    static const std::vector<std::pair<std::string, std::string>> kDefaults = {
            {"auth.redis.server", "127.0.0.1:6379"},
            {"auth.redis.pool", "8"},
            {"auth.redis.database", "0"},
            {"auth.redis.password", ""},
            {"auth.redis.auth_cmd", "HMGET mqtt_user:%u password"},
            {"auth.redis.password_hash", "plain"},
            {"auth.redis.super_cmd", "HGET mqtt_user:%u is_superuser"},
            {"auth.redis.acl_cmd", "HGETALL mqtt_acl:%u"},
            {"auth.redis.query_timeout", "5s"},
            {"auth.redis.on_error", "ignore"},
            {"auth.redis.cache_ttl", "0"},
    };
    return kDefaults;
}

std::string RedisConfig::set(std::string_view key, std::string_view value) {
    if (key.substr(0, kPrefix.size()) != kPrefix) {
        return std::string(key) + ": not an auth.redis key";
    }
    std::string_view k = key.substr(kPrefix.size());
    auto fail = [&](std::string_view why) {
        return std::string(key) + ": " + std::string(why);
    };
    bool consumed = false;
    if (auto err = set_backend_option(options, k, value, &consumed); !err.empty()) {
        return fail(err);
    }
    if (consumed) {
        return {};
    }
    if (k == "server") {
        auto hp = parse_host_port(value, 6379);
        if (!hp) {
            return fail("expected host:port");
        }
        host = hp->first;
        port = hp->second;
    } else if (k == "database") {
        int n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || p != value.data() + value.size() || n < 0 || n > 65535) {
            return fail("expected a database number 0..65535");
        }
        database = n;
    } else if (k == "password") {
        password = std::string(value);
    } else if (k == "auth_cmd" || k == "super_cmd" || k == "acl_cmd") {
        auto cmd = compile_redis(value);
        if (!cmd) {
            return fail(cmd.error());
        }
        if (k == "auth_cmd") {
            auth_cmd = std::move(cmd).value();
            options.has_auth = !auth_cmd.empty();
        } else if (k == "super_cmd") {
            super_cmd = std::move(cmd).value();
            options.has_super = !super_cmd.empty();
        } else {
            acl_cmd = std::move(cmd).value();
            options.has_acl = !acl_cmd.empty();
        }
    } else {
        return fail("unknown key");
    }
    return {};
}

Verdict redis_acl_decide(const std::vector<std::pair<std::string, std::string>>& fields,
                         const ClientIdentity& id,
                         Access access,
                         std::string_view topic) {
    if (fields.empty()) {
        return Verdict::Ignore;
    }
    std::vector<AclRule> rules;
    rules.reserve(fields.size());
    for (const auto& [filter, value] : fields) {
        int a = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), a);
        if (ec != std::errc() || p != value.data() + value.size() || a < 1 || a > 3) {
            continue;  // not an access value: no grant
        }
        auto t = make_acl_topic(filter, false);
        if (!t) {
            continue;
        }
        AclRule rule;
        rule.allow = true;
        rule.access = static_cast<Access>(a);
        rule.topics.push_back(std::move(*t));
        rules.push_back(std::move(rule));
    }
    auto m = AclRules::from_rules(std::move(rules)).match(id, access, topic);
    return m && m->allow ? Verdict::Allow : Verdict::Deny;
}

std::shared_ptr<BackendAuth> make_redis_auth(const RedisConfig& config,
                                             std::shared_ptr<BackendStats> stats) {
    auto cfg = std::make_shared<const RedisConfig>(config);
    BackendOptions options = cfg->options;
    options.cache_letters.clear();
    for (const RedisCommand* cmd : {&cfg->auth_cmd, &cfg->super_cmd}) {
        for (const auto& w : cmd->words) {
            for (size_t i = 0; i + 1 < w.size(); ++i) {
                if (w[i] == '%' && is_placeholder(w[i + 1])) {
                    options.cache_letters.push_back(w[i + 1]);
                }
            }
        }
    }
    return std::make_shared<BackendAuth>(
            "emq_auth_redis", options, [cfg]() { return RedisConnection::open(*cfg); },
            std::move(stats));
}

}  // namespace mqttd::broker::auth
