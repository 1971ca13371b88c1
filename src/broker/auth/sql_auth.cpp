#include "broker/auth/sql_auth.h"

#include <charconv>

#include "broker/auth/acl.h"

namespace mqttd::broker::auth {

namespace {

std::vector<std::pair<std::string, std::string>> sql_defaults(std::string_view db,
                                                              std::string_view port,
                                                              std::string_view user) {
    std::string p("auth.");
    p += db;
    p += '.';
    std::string server("127.0.0.1:");
    server += port;
    std::vector<std::pair<std::string, std::string>> out = {
            {p + "server", server}, {p + "pool", "8"},        {p + "username", std::string(user)},
            {p + "password", ""},   {p + "database", "mqtt"},
    };
    if (db == "pgsql") {
        out.emplace_back(p + "encoding", "utf8");
        out.emplace_back(p + "ssl", "false");
    }
    out.insert(out.end(),
               {{p + "auth_query", "select password from mqtt_user where username = '%u' limit 1"},
                {p + "password_hash", "sha256"},
                {p + "super_query",
                 "select is_superuser from mqtt_user where username = '%u' limit 1"},
                {p + "acl_query",
                 "select allow, ipaddr, username, clientid, access, topic from mqtt_acl where "
                 "ipaddr = '%a' or username = '%u' or username = '$all' or clientid = '%c'"},
                {p + "query_timeout", "5s"},
                {p + "on_error", "ignore"},
                {p + "cache_ttl", "0"}});
    return out;
}

bool empty_value(const std::optional<std::string>& v) {
    return !v || v->empty();
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& mysql_defaults() {
    static const auto kDefaults = sql_defaults("mysql", "3306", "");
    return kDefaults;
}

const std::vector<std::pair<std::string, std::string>>& pgsql_defaults() {
    static const auto kDefaults = sql_defaults("pgsql", "5432", "root");
    return kDefaults;
}

SqlConfig::SqlConfig(SqlDialect d) : dialect(d) {
    for (const auto& [k, v] : d == SqlDialect::MySql ? mysql_defaults() : pgsql_defaults()) {
        set(k, v);
    }
}

std::string_view SqlConfig::prefix() const {
    return dialect == SqlDialect::MySql ? "auth.mysql." : "auth.pgsql.";
}

std::string SqlConfig::set(std::string_view key, std::string_view value) {
    std::string_view pre = prefix();
    if (key.substr(0, pre.size()) != pre) {
        return std::string(key) + ": not an " + std::string(pre) + "* key";
    }
    std::string_view k = key.substr(pre.size());
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
        auto hp = parse_host_port(value, dialect == SqlDialect::MySql ? 3306 : 5432);
        if (!hp) {
            return fail("expected host:port");
        }
        host = hp->first;
        port = hp->second;
    } else if (k == "username") {
        username = std::string(value);
    } else if (k == "password") {
        password = std::string(value);
    } else if (k == "database") {
        database = std::string(value);
    } else if (dialect == SqlDialect::Postgres && k == "encoding") {
        if (value.empty() || value.find_first_of(" '\\\t") != std::string_view::npos) {
            return fail("expected an encoding name (utf8)");
        }
        encoding = std::string(value);
    } else if (dialect == SqlDialect::Postgres && k == "ssl") {
        if (value != "true" && value != "false") {
            return fail("expected true or false");
        }
        ssl = value == "true";
    } else if (k == "auth_query" || k == "super_query" || k == "acl_query") {
        auto q = compile_sql(value, dialect);
        if (!q) {
            return fail(q.error());
        }
        if (k == "auth_query") {
            auth_query = std::move(q).value();
            options.has_auth = !auth_query.empty();
        } else if (k == "super_query") {
            super_query = std::move(q).value();
            options.has_super = !super_query.empty();
        } else {
            acl_query = std::move(q).value();
            options.has_acl = !acl_query.empty();
        }
    } else {
        return fail("unknown key");
    }
    return {};
}

BackendOptions with_cache_letters(const SqlConfig& config) {
    BackendOptions o = config.options;
    o.cache_letters.clear();
    for (const SqlQuery* q : {&config.auth_query, &config.super_query}) {
        o.cache_letters.append(q->params.begin(), q->params.end());
    }
    return o;
}

Verdict sql_acl_decide(const std::vector<SqlRow>& rows,
                       const ClientIdentity& id,
                       Access access,
                       std::string_view topic) {
    std::vector<AclRule> rules;
    rules.reserve(rows.size());
    // EMQ 2.x compiles the rows into a list in reverse: the last row is tried first.
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
        const SqlRow& row = *it;
        if (row.size() < 6 || empty_value(row[0]) || empty_value(row[4]) || empty_value(row[5])) {
            continue;
        }
        AclRule rule;
        rule.allow = truthy(*row[0]);
        int a = 0;
        const std::string& av = *row[4];
        auto [p, ec] = std::from_chars(av.data(), av.data() + av.size(), a);
        if (ec != std::errc() || p != av.data() + av.size() || a < 1 || a > 3) {
            continue;
        }
        rule.access = static_cast<Access>(a);
        const std::string& t = *row[5];
        auto topic_rule = t.rfind("eq ", 0) == 0 ? make_acl_topic(t.substr(3), true)
                                                 : make_acl_topic(t, false);
        if (!topic_rule) {
            continue;
        }
        rule.topics.push_back(std::move(*topic_rule));
        if (row[2] && *row[2] == "$all") {
            rule.who.kind = AclWho::Kind::All;
        } else {
            std::vector<AclWho> conds;
            if (!empty_value(row[1])) {
                AclWho w;
                if (!parse_ip_who(*row[1], w)) {
                    continue;  // an address that never matches: no rule
                }
                conds.push_back(std::move(w));
            }
            if (!empty_value(row[2])) {
                AclWho w;
                w.kind = AclWho::Kind::User;
                w.value = *row[2];
                conds.push_back(std::move(w));
            }
            if (!empty_value(row[3])) {
                AclWho w;
                w.kind = AclWho::Kind::Client;
                w.value = *row[3];
                conds.push_back(std::move(w));
            }
            if (conds.empty()) {
                continue;  // EMQ 2.x refuses a row naming nobody
            }
            if (conds.size() == 1) {
                rule.who = std::move(conds.front());
            } else {
                rule.who.kind = AclWho::Kind::And;
                rule.who.children = std::move(conds);
            }
        }
        rules.push_back(std::move(rule));
    }
    auto m = AclRules::from_rules(std::move(rules)).match(id, access, topic);
    if (!m) {
        return Verdict::Ignore;
    }
    return m->allow ? Verdict::Allow : Verdict::Deny;
}

}  // namespace mqttd::broker::auth
