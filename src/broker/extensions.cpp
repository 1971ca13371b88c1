#include "broker/extensions.h"

#include <filesystem>
#include <map>
#include <mutex>

#include "broker/auth/http_auth.h"
#include "broker/auth/jwt_auth.h"
#include "broker/auth/ldap_auth.h"
#include "broker/auth/redis_auth.h"
#include "broker/auth/sql_auth.h"
#include "broker/plugins.h"

namespace mqttd::broker {
namespace {

// The current configuration of one plugin whose provider is rebuilt whole on every change
// (providers are immutable once built, so checks in flight finish on the old one).
struct PluginState {
    std::mutex mutex;
    std::map<std::string, std::string> values;
    bool active = false;
};

std::vector<PluginConfigItem> items(
        const std::vector<std::pair<std::string, std::string>>& defaults) {
    std::vector<PluginConfigItem> out;
    for (const auto& [k, v] : defaults) {
        out.push_back(PluginConfigItem{k, v, "", true});
    }
    return out;
}

// Registers a plugin whose config is checked and applied through `apply`: it builds a new
// provider from every value, or returns an error line. `on_active` switches it.
void add_rebuilt_plugin(
        PluginRegistry& registry,
        std::string name,
        std::string description,
        const std::vector<std::pair<std::string, std::string>>& defaults,
        std::function<std::string(const std::map<std::string, std::string>&, bool apply)> build,
        std::function<void(bool)> on_active) {
    auto state = std::make_shared<PluginState>();
    for (const auto& [k, v] : defaults) {
        state->values[k] = v;
    }
    PluginInfo info;
    info.name = std::move(name);
    info.version = "1.0";
    info.description = std::move(description);
    info.active = false;
    info.config = items(defaults);
    PluginHooks hooks;
    hooks.on_start = [state, on_active] {
        {
            std::lock_guard lock(state->mutex);
            state->active = true;
        }
        on_active(true);
    };
    hooks.on_stop = [state, on_active] {
        {
            std::lock_guard lock(state->mutex);
            state->active = false;
        }
        on_active(false);
    };
    hooks.validate = [state, build](const std::string& key,
                                    const std::string& value) -> Result<std::string, std::string> {
        std::map<std::string, std::string> scratch;
        {
            std::lock_guard lock(state->mutex);
            scratch = state->values;
        }
        scratch[key] = value;
        if (auto err = build(scratch, false); !err.empty()) {
            return Err(err);
        }
        return value;
    };
    hooks.on_config = [state, build](const std::string& key, const std::string& value) {
        std::map<std::string, std::string> values;
        {
            std::lock_guard lock(state->mutex);
            state->values[key] = value;
            values = state->values;
        }
        build(values, true);
    };
    registry.add(std::move(info), std::move(hooks));
}

std::string jwt_config(const std::map<std::string, std::string>& values, auth::JwtConfig& c) {
    for (const auto& [k, v] : values) {
        if (k == "auth.jwt.secret") {
            c.secret = v;
        } else if (k == "auth.jwt.pubkey") {
            c.pubkey = v;
        } else if (k == "auth.jwt.verify_claims.username" || k == "auth.jwt.require_exp") {
            if (v != "true" && v != "false") {
                return k + ": \"" + v + "\" is not true or false";
            }
            (k == "auth.jwt.require_exp" ? c.require_exp : c.verify_username_claim) = v == "true";
        } else {
            return k + ": unknown key";
        }
    }
    return {};
}

// A database plugin (emq_auth_redis, _mysql, _pgsql, _ldap). Its provider exists only while
// the plugin is started (a stopped one holds no threads or connections); each config change
// while started builds a new provider from the whole config (checks in flight finish on the
// old one). `Config` has a default constructor with the built-in defaults and
// `std::string set(key, value)`. Returns the error line of a bad value in `overrides`.
template <typename Config>
std::string add_backend_plugin(Extensions& ext,
                               PluginRegistry& registry,
                               const std::string& name,
                               const std::string& description,
                               const std::vector<std::pair<std::string, std::string>>& builtin,
                               const std::vector<std::pair<std::string, std::string>>& overrides,
                               std::function<std::shared_ptr<auth::BackendAuth>(
                                       const Config&, std::shared_ptr<auth::BackendStats>)> make) {
    struct State {
        std::mutex mutex;
        std::map<std::string, std::string> values;
        bool active = false;
    };
    auto state = std::make_shared<State>();
    std::vector<std::pair<std::string, std::string>> defaults = builtin;
    for (auto& [k, v] : defaults) {
        for (const auto& [ok, ov] : overrides) {
            if (ok != k) {
                continue;
            }
            Config probe;
            if (auto err = probe.set(ok, ov); !err.empty()) {
                return err;
            }
            v = ov;
        }
        state->values[k] = v;
    }
    std::string prefix = name.substr(std::string("emq_").size());  // "auth_redis"
    prefix[4] = '/';
    auto stats = std::make_shared<auth::BackendStats>(prefix + "/");
    ext.backend_stats.push_back(stats);

    auto config_of = [](const std::map<std::string, std::string>& values,
                        Config& c) -> std::string {
        for (const auto& [k, v] : values) {
            if (auto err = c.set(k, v); !err.empty()) {
                return err;
            }
        }
        return {};
    };
    // REQUIRES: state->mutex held.
    auto install = [&ext, name, state, stats, make, config_of] {
        Config c;
        if (!config_of(state->values, c).empty()) {
            return;  // validated before it was stored: cannot happen
        }
        std::shared_ptr<auth::BackendAuth> p = make(c, stats);
        ext.auth.set(p, true);
        ext.acl.set(std::static_pointer_cast<auth::AclChecker>(p), true);
    };

    PluginInfo info;
    info.name = name;
    info.version = "1.0";
    info.description = description;
    info.active = false;
    info.config = items(defaults);
    PluginHooks hooks;
    hooks.on_start = [state, install] {
        std::lock_guard lock(state->mutex);
        state->active = true;
        install();
    };
    hooks.on_stop = [&ext, state, name] {
        std::lock_guard lock(state->mutex);
        state->active = false;
        ext.auth.remove(name);
        ext.acl.remove(name);
    };
    hooks.validate = [state, config_of](
                             const std::string& key,
                             const std::string& value) -> Result<std::string, std::string> {
        std::map<std::string, std::string> scratch;
        {
            std::lock_guard lock(state->mutex);
            scratch = state->values;
        }
        scratch[key] = value;
        Config c;
        if (auto err = config_of(scratch, c); !err.empty()) {
            return Err(err);
        }
        return value;
    };
    hooks.on_config = [state, install](const std::string& key, const std::string& value) {
        std::lock_guard lock(state->mutex);
        state->values[key] = value;
        if (state->active) {
            install();
        }
    };
    registry.add(std::move(info), std::move(hooks));
    return {};
}

}  // namespace

std::string switch_acl_file(Extensions& ext, const std::string& path) {
    auto file = std::make_shared<auth::AclFile>(path, [&ext] { ext.acl.bump_epoch(); });
    if (auto r = file->reload(); !r) {
        return r.error();
    }
    ext.acl_file.store(file);
    ext.acl.set(file, true);  // replaces "internal" by name; bumps the cache epoch
    return {};
}

Result<std::vector<std::string>, std::string> build_extensions(
        Extensions& ext,
        PluginRegistry& registry,
        storage::Store& store,
        const std::string& node_name,
        const std::string& acl_file,
        const std::vector<std::pair<std::string, std::string>>& seeds) {
    std::vector<std::string> warnings;

    // The internal ACL: always on; a missing or broken file stops startup with one line.
    auto file = std::make_shared<auth::AclFile>(acl_file, [&ext] { ext.acl.bump_epoch(); });
    ext.acl_file.store(file);
    if (auto r = file->reload(); !r) {
        std::error_code ec;
        if (std::filesystem::exists(acl_file, ec)) {
            return Err(r.error());
        }
        // No file: no rules, so mqtt.acl_nomatch decides everything.
        warnings.push_back("ACL file " + acl_file + " not found: mqtt.acl_nomatch applies to all");
    }
    ext.acl.set(file, true);

    ext.usernames = std::make_shared<auth::CredentialStore>(store, auth::CredentialKind::Username);
    ext.client_ids = std::make_shared<auth::CredentialStore>(store, auth::CredentialKind::ClientId);
    for (auto* cs : {ext.usernames.get(), ext.client_ids.get()}) {
        auto seeded = cs->seed(seeds);
        if (!seeded.status.is_ok()) {
            return Err("seeding " + std::string(cs->name()) + ": " + seeded.status.to_string());
        }
        warnings.insert(warnings.end(), seeded.warnings.begin(), seeded.warnings.end());
    }
    ext.auth.set(ext.usernames, false);
    ext.auth.set(ext.client_ids, false);
    for (auto [name, desc] :
         {std::pair{"emq_auth_username", "Authentication with Username/Password"},
          std::pair{"emq_auth_clientid", "Authentication with ClientId/Password"}}) {
        PluginInfo info;
        info.name = name;
        info.version = "1.0";
        info.description = desc;
        info.active = false;
        PluginHooks hooks;
        std::string n = name;
        hooks.on_start = [&ext, n] {
            ext.auth.enable(n, true);
        };
        hooks.on_stop = [&ext, n] {
            ext.auth.enable(n, false);
        };
        registry.add(std::move(info), std::move(hooks));
    }

    add_rebuilt_plugin(
            registry, "emq_auth_jwt", "Authentication with JWT",
            {{"auth.jwt.secret", "emqsecret"},
             {"auth.jwt.pubkey", ""},
             {"auth.jwt.verify_claims.username", "false"},
             {"auth.jwt.require_exp", "false"}},
            [&ext](const std::map<std::string, std::string>& values, bool apply) -> std::string {
                auth::JwtConfig c;
                if (auto err = jwt_config(values, c); !err.empty()) {
                    return err;
                }
                auto jwt = auth::JwtAuth::create(c);
                if (!jwt) {
                    return jwt.error();
                }
                if (apply) {
                    ext.auth.set(*jwt, ext.auth.enabled("emq_auth_jwt"));
                }
                return {};
            },
            [&ext](bool on) { ext.auth.enable("emq_auth_jwt", on); });

    for (const std::string& err :
         {add_backend_plugin<auth::RedisConfig>(
                  ext, registry, "emq_auth_redis", "Authentication/ACL with Redis",
                  auth::redis_defaults(), seeds, auth::make_redis_auth),
          add_backend_plugin<auth::MysqlConfig>(
                  ext, registry, "emq_auth_mysql", "Authentication/ACL with MySQL",
                  auth::mysql_defaults(), seeds, auth::make_mysql_auth),
          add_backend_plugin<auth::PgsqlConfig>(
                  ext, registry, "emq_auth_pgsql", "Authentication/ACL with PostgreSQL",
                  auth::pgsql_defaults(), seeds, auth::make_pgsql_auth),
          add_backend_plugin<auth::LdapConfig>(
                  ext, registry, "emq_auth_ldap", "Authentication/ACL with LDAP",
                  auth::ldap_defaults(), seeds, auth::make_ldap_auth)}) {
        if (!err.empty()) {
            return Err(err);
        }
    }

    add_rebuilt_plugin(
            registry, "emq_auth_http", "Authentication/ACL with HTTP API",
            {{"auth.http.auth_req", "http://127.0.0.1:8991/mqtt/auth"},
             {"auth.http.auth_req.method", "post"},
             {"auth.http.auth_req.params", "clientid=%c,username=%u,password=%P"},
             {"auth.http.super_req", "http://127.0.0.1:8991/mqtt/superuser"},
             {"auth.http.super_req.method", "post"},
             {"auth.http.super_req.params", "clientid=%c,username=%u"},
             {"auth.http.acl_req", "http://127.0.0.1:8991/mqtt/acl"},
             {"auth.http.acl_req.method", "get"},
             {"auth.http.acl_req.params", "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t"},
             {"auth.http.timeout", "5000"}},
            [&ext](const std::map<std::string, std::string>& values, bool apply) -> std::string {
                auth::HttpAuthConfig c;
                for (const auto& [k, v] : values) {
                    if (auto err = c.set(k, v); !err.empty()) {
                        return err;
                    }
                }
                if (apply) {
                    auto http = std::make_shared<auth::HttpAuth>(std::move(c));
                    bool on = ext.auth.enabled("emq_auth_http");
                    ext.auth.set(http, on);
                    ext.acl.set(std::static_pointer_cast<auth::AclChecker>(http), on);
                }
                return {};
            },
            [&ext](bool on) {
                ext.auth.enable("emq_auth_http", on);
                ext.acl.enable("emq_auth_http", on);
            });

    auto hook_state = std::make_shared<std::shared_ptr<auth::WebHook>>();
    add_rebuilt_plugin(
            registry, "emq_web_hook", "EMQ Web Hook",
            {{"web.hook.api.url", "http://127.0.0.1:8991/webhook"},
             {"web.hook.timeout", "5000"},
             {"web.hook.retries", "3"},
             {"web.hook.rule.client.connected.1", "{\"action\": \"on_client_connected\"}"},
             {"web.hook.rule.client.disconnected.1", "{\"action\": \"on_client_disconnected\"}"},
             {"web.hook.rule.client.subscribe.1", "{\"action\": \"on_client_subscribe\"}"},
             {"web.hook.rule.client.unsubscribe.1", "{\"action\": \"on_client_unsubscribe\"}"},
             {"web.hook.rule.session.created.1", "{\"action\": \"on_session_created\"}"},
             {"web.hook.rule.session.terminated.1", "{\"action\": \"on_session_terminated\"}"},
             {"web.hook.rule.message.publish.1", "{\"action\": \"on_message_publish\"}"},
             {"web.hook.rule.message.delivered.1", "{\"action\": \"on_message_delivered\"}"},
             {"web.hook.rule.message.acked.1", "{\"action\": \"on_message_acked\"}"}},
            [&ext, hook_state](const std::map<std::string, std::string>& values,
                               bool apply) -> std::string {
                auth::WebHookConfig c;
                for (const auto& [k, v] : values) {
                    if (auto err = c.set(k, v); !err.empty()) {
                        return err;
                    }
                }
                if (apply) {
                    bool on = ext.web_hook.load() != nullptr;
                    *hook_state = std::make_shared<auth::WebHook>(std::move(c));
                    if (on) {
                        ext.web_hook.store(*hook_state);
                    }
                }
                return {};
            },
            [&ext, hook_state](bool on) {
                ext.web_hook.store(on ? *hook_state : nullptr);
                ext.web_hook_on.store(on);
            });

    auto modules_state = std::make_shared<std::shared_ptr<const auth::Modules>>(
            std::make_shared<auth::Modules>(node_name));
    add_rebuilt_plugin(
            registry, "emq_modules", "EMQ Modules",
            {{"module.presence", "on"},
             {"module.presence.qos", "0"},
             {"module.subscription.1.topic", ""},
             {"module.subscription.1.qos", "1"},
             {"module.rewrite.rule.1", ""}},
            [&ext, modules_state, node_name](const std::map<std::string, std::string>& values,
                                             bool apply) -> std::string {
                auto m = std::make_shared<auth::Modules>(node_name);
                for (const auto& [k, v] : values) {
                    if (v.empty()) {
                        continue;  // an empty rule or topic is no rule
                    }
                    if (auto err = m->set(k, v); !err.empty()) {
                        return err;
                    }
                }
                if (apply) {
                    bool on = ext.modules.load() != nullptr;
                    *modules_state = m;
                    if (on) {
                        ext.modules.store(*modules_state);
                    }
                }
                return {};
            },
            [&ext, modules_state](bool on) {
                ext.modules.store(on ? *modules_state : nullptr);
                ext.modules_on.store(on);
            });

    return warnings;
}

}  // namespace mqttd::broker
