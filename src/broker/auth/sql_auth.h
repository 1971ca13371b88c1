// emq_auth_mysql (MariaDB Connector/C, libmariadb-dev; MySQL and MariaDB servers) and
// emq_auth_pgsql (libpq, libpq-dev): users and ACL rows in SQL tables, with EMQ 2.x's keys
// under auth.mysql.* / auth.pgsql.*:
//   server (host:port), pool, username, password, database,
//   auth_query     "select password from mqtt_user where username = '%u' limit 1": the first
//                  column is the stored password/hash, an optional second the salt; no row =
//                  unknown user
//   password_hash  password_check.h (sha256)
//   super_query    "select is_superuser from mqtt_user where username = '%u' limit 1":
//                  1 / true = superuser; empty = no superusers
//   acl_query      "select allow, ipaddr, username, clientid, access, topic from mqtt_acl
//                  where ipaddr = '%a' or username = '%u' or username = '$all' or clientid =
//                  '%c'"; empty = no ACL
//   query_timeout, on_error, cache_ttl (backend_auth.h)
//   pgsql only: encoding (client_encoding, utf8), ssl (true: sslmode=require)
// The schemas are data/schema/mysql.sql and data/schema/pgsql.sql (EMQ's mqtt_user and
// mqtt_acl). Queries are prepared once per connection; placeholders are bound parameters
// (db_template.h), never SQL text.
//
// ACL ROWS (EMQ 2.x): allow 1/0; access 1 subscribe, 2 publish, 3 both; topic a filter (%u /
// %c levels substituted) or "eq <topic>" for a literal topic; who = username "$all" -> every
// client, else every non-empty column of ipaddr (address or CIDR), username, clientid must
// match. Rows are tried LAST FIRST, as EMQ 2.x does (in EMQ's sample data the dashboard row,
// last, grants $SYS/# before the deny-all row above it); add ORDER BY to the query to control
// the order. First match decides; no match -> Ignore (the next checker, then
// mqtt.acl_nomatch).
//
// Thread-safety: SqlConfig is a value; the providers are BackendAuth (any thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/auth/backend_auth.h"
#include "broker/auth/db_template.h"

namespace mqttd::broker::auth {

struct SqlConfig {
    SqlDialect dialect;
    std::string host = "127.0.0.1";
    uint16_t port = 3306;
    std::string username;
    std::string password;
    std::string database = "mqtt";
    std::string encoding = "utf8";  // pgsql
    bool ssl = false;               // pgsql
    SqlQuery auth_query;
    SqlQuery super_query;
    SqlQuery acl_query;
    BackendOptions options;

    explicit SqlConfig(SqlDialect d);
    // Sets one "auth.mysql.*" / "auth.pgsql.*" key; returns an error line, or "" when applied.
    std::string set(std::string_view key, std::string_view value);
    std::string_view prefix() const;
};

// The two dialects with their built-in defaults.
struct MysqlConfig : SqlConfig {
    MysqlConfig() : SqlConfig(SqlDialect::MySql) {}
};
struct PgsqlConfig : SqlConfig {
    PgsqlConfig() : SqlConfig(SqlDialect::Postgres) {}
};

const std::vector<std::pair<std::string, std::string>>& mysql_defaults();
const std::vector<std::pair<std::string, std::string>>& pgsql_defaults();

std::shared_ptr<BackendAuth> make_mysql_auth(const SqlConfig& config,
                                             std::shared_ptr<BackendStats> stats);
std::shared_ptr<BackendAuth> make_pgsql_auth(const SqlConfig& config,
                                             std::shared_ptr<BackendStats> stats);

// The options of `config` with cache_letters from its auth and super queries.
BackendOptions with_cache_letters(const SqlConfig& config);

using SqlRow = std::vector<std::optional<std::string>>;

// The ACL decision for the rows of acl_query. Exposed for tests.
Verdict sql_acl_decide(const std::vector<SqlRow>& rows,
                       const ClientIdentity& id,
                       Access access,
                       std::string_view topic);

}  // namespace mqttd::broker::auth
