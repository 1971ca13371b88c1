// EMQ 2.x placeholders in the database plugins' queries, turned into values that can never
// change the query's meaning:
//   %u username   %c client id   %a peer IP address   %C certificate CN   %d certificate DN
// (a missing username or certificate gives ""; any other '%' is kept as written).
//
// SQL (compile_sql): EMQ 2.x pasted the values into the SQL text. Here a placeholder becomes
// a parameter of a prepared statement: `'%u'` (a string literal that is exactly one
// placeholder, quoted with ' or ") or a bare %u becomes `?` (MySQL) or `$n` (PostgreSQL), and
// the values are bound at execution. A placeholder inside a longer literal ('a%u') cannot be a
// parameter and is refused with a one-line error; so is a query without any statement text.
// Quotes are tracked ('' and \' escapes, "..." strings or identifiers), so a '%' inside an
// ordinary literal (LIKE 'a%') is left alone.
//
// Redis (compile_redis): the command is split on spaces into words; each word may contain
// placeholders and is sent as one argv element (redisCommandArgv), so a value with spaces,
// quotes or CRLF stays one argument.
//
// LDAP (ldap_escape): a value put into a search filter is escaped as RFC 4515 section 3
// requires: '*', '(', ')', '\' and NUL become \2a \28 \29 \5c \00.
//
// Thread-safety: pure functions and immutable values.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "broker/auth/auth_chain.h"
#include "common/result.h"

namespace mqttd::broker::auth {

enum class SqlDialect { MySql, Postgres };

inline constexpr size_t kMaxQueryBytes = 4096;

struct SqlQuery {
    std::string text;          // with ? or $n markers
    std::vector<char> params;  // placeholder letter per marker, in order
    bool empty() const { return text.empty(); }
};

// The value of one placeholder letter ('u', 'c', 'a', 'C', 'd').
std::string placeholder_value(char letter, const ClientIdentity& id);
// True for the letters above.
bool is_placeholder(char letter);

// An empty `query` gives an empty SqlQuery (the feature is off).
Result<SqlQuery, std::string> compile_sql(std::string_view query, SqlDialect dialect);
std::vector<std::string> bind_values(const SqlQuery& q, const ClientIdentity& id);

struct RedisCommand {
    std::vector<std::string> words;  // with placeholders
    bool empty() const { return words.empty(); }
};
Result<RedisCommand, std::string> compile_redis(std::string_view command);
// The argv of `cmd` for `id`.
std::vector<std::string> expand(const RedisCommand& cmd, const ClientIdentity& id);
// Substitutes placeholders in one template string.
std::string expand(std::string_view tmpl, const ClientIdentity& id);

std::string ldap_escape(std::string_view value);

}  // namespace mqttd::broker::auth
