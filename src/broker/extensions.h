// broker::Extensions: authentication, ACL, web hook and modules, as the workers use them.
// Built by main (build_extensions) and owned by it; shared by every worker and the REST API.
//
// Thread-safety: the chains are internally synchronized (providers swap atomically); the
// optional web hook and modules are atomic shared_ptrs, null while their plugin is stopped,
// replaced whole when reconfigured; the flags are atomics. Callbacks of the chains may run on
// pool threads: workers post their results back to themselves.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/auth/acl.h"
#include "broker/auth/auth_chain.h"
#include "broker/auth/backend_auth.h"
#include "broker/auth/credential_store.h"
#include "broker/auth/modules.h"
#include "broker/auth/web_hook.h"
#include "common/result.h"

namespace mqttd::broker {

class PluginRegistry;
struct Settings;

struct Extensions {
    auth::AuthChain auth;
    auth::AclChain acl;
    // The "internal" ACL (mqtt.acl_file); replaced whole when the key changes at run time.
    std::atomic<std::shared_ptr<auth::AclFile>> acl_file;
    std::shared_ptr<auth::CredentialStore> usernames;           // emq_auth_username
    std::shared_ptr<auth::CredentialStore> client_ids;          // emq_auth_clientid
    std::atomic<std::shared_ptr<auth::WebHook>> web_hook;       // emq_web_hook, null = off
    std::atomic<std::shared_ptr<const auth::Modules>> modules;  // emq_modules, null = off

    // Cheap checks for the hot path before loading the shared_ptrs above.
    std::atomic<bool> web_hook_on{false};
    std::atomic<bool> modules_on{false};

    std::atomic<bool> acl_nomatch_allow{true};  // mqtt.acl_nomatch
    std::atomic<bool> cache_acl{true};          // mqtt.cache_acl
    // Counters of emq_auth_redis, _mysql, _pgsql, _ldap (metrics "auth/<db>/..."); filled by
    // build_extensions before any other thread runs, read-only after.
    std::vector<std::shared_ptr<auth::BackendStats>> backend_stats;

    std::atomic<uint64_t> acl_denied_publish{0};
    std::atomic<uint64_t> acl_denied_subscribe{0};
    std::atomic<uint64_t> auth_refused{0};
};

// Builds the internal ACL from `acl_file` (an error is one line naming the file and line),
// the credential stores (seeded from `seeds`: auth.user.N.username/password and
// auth.client.N.clientid/password pairs), and registers the plugins emq_auth_username,
// emq_auth_clientid, emq_auth_jwt, emq_auth_redis, emq_auth_mysql, emq_auth_pgsql,
// emq_auth_ldap, emq_auth_http, emq_web_hook and emq_modules with `registry`, whose hooks
// switch and configure them. `seeds` also carries the configuration's auth.redis.*,
// auth.mysql.*, auth.pgsql.* and auth.ldap.* values: they replace those plugins' built-in
// defaults (a value saved through plugin_configs still wins). Returns warnings to log.
// Switches the internal ACL to `path` (mqtt.acl_file changed at run time). On error (one
// line) the current file and rules stay.
std::string switch_acl_file(Extensions& ext, const std::string& path);

Result<std::vector<std::string>, std::string> build_extensions(
        Extensions& ext,
        PluginRegistry& registry,
        storage::Store& store,
        const std::string& node_name,
        const std::string& acl_file,
        const std::vector<std::pair<std::string, std::string>>& seeds);

}  // namespace mqttd::broker
