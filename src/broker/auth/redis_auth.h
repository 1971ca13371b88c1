// emq_auth_redis: users and ACL in Redis, with EMQ 2.x's keys (hiredis, libhiredis-dev):
//   auth.redis.server         host:port (default 127.0.0.1:6379)
//   auth.redis.pool           connections = threads (8)
//   auth.redis.database       SELECT after connecting (0)
//   auth.redis.password       AUTH after connecting (empty: none)
//   auth.redis.auth_cmd       "HMGET mqtt_user:%u password": the first value is the stored
//                             password/hash, an optional second the salt; nil = unknown user
//   auth.redis.password_hash  password_check.h (plain)
//   auth.redis.super_cmd      "HGET mqtt_user:%u is_superuser": "1"/"true" = superuser;
//                             empty = no superusers
//   auth.redis.acl_cmd        "HGETALL mqtt_acl:%u": field = topic filter (%u / %c levels
//                             substituted), value 1 = subscribe, 2 = publish, 3 = both;
//                             empty = no ACL
//   auth.redis.query_timeout, .on_error, .cache_ttl   backend_auth.h
// Commands are sent with redisCommandArgv, one word per element (db_template.h): a username
// can never add an argument or a command.
//
// ACL (EMQ 2.x): no fields for the client -> Ignore (the next checker decides); fields but
// none matching the topic and access -> Deny; a match -> Allow. Topics and subscribed filters
// are matched as acl.h does (EMQ 2.x: a filter as written, its wildcards words).
//
// Thread-safety: RedisConfig is a value; the provider is a BackendAuth (any thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/auth/backend_auth.h"
#include "broker/auth/db_template.h"

namespace mqttd::broker::auth {

struct RedisConfig {
    std::string host = "127.0.0.1";
    uint16_t port = 6379;
    int database = 0;
    std::string password;
    RedisCommand auth_cmd;
    RedisCommand super_cmd;
    RedisCommand acl_cmd;
    BackendOptions options;

    RedisConfig();
    // Sets one "auth.redis.*" key; returns an error line, or "" when applied.
    std::string set(std::string_view key, std::string_view value);
};

// The plugin's keys with EMQ 2.x's defaults, in the order the REST API lists them.
const std::vector<std::pair<std::string, std::string>>& redis_defaults();

std::shared_ptr<BackendAuth> make_redis_auth(const RedisConfig& config,
                                             std::shared_ptr<BackendStats> stats);

// The ACL decision for `fields` (field, value pairs of acl_cmd's answer). Exposed for tests.
Verdict redis_acl_decide(const std::vector<std::pair<std::string, std::string>>& fields,
                         const ClientIdentity& id,
                         Access access,
                         std::string_view topic);

}  // namespace mqttd::broker::auth
