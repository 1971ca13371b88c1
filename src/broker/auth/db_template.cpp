#include "broker/auth/db_template.h"

namespace mqttd::broker::auth {

bool is_placeholder(char letter) {
    return letter == 'u' || letter == 'c' || letter == 'a' || letter == 'C' || letter == 'd';
}

std::string placeholder_value(char letter, const ClientIdentity& id) {
    switch (letter) {
        case 'u':
            return id.username.value_or("");
        case 'c':
            return id.client_id;
        case 'a':
            return id.ip;
        case 'C':
            return id.cert ? id.cert->cn : std::string();
        case 'd':
            return id.cert ? id.cert->dn : std::string();
        default:
            break;
    }
    return {};
}

std::string expand(std::string_view tmpl, const ClientIdentity& id) {
    std::string out;
    out.reserve(tmpl.size() + 32);
    for (size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] == '%' && i + 1 < tmpl.size() && is_placeholder(tmpl[i + 1])) {
            out += placeholder_value(tmpl[++i], id);
        } else {
            out.push_back(tmpl[i]);
        }
    }
    return out;
}

Result<SqlQuery, std::string> compile_sql(std::string_view query, SqlDialect dialect) {
    SqlQuery q;
    size_t first = query.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return q;
    }
    if (query.size() > kMaxQueryBytes) {
        return Err(std::string("query longer than 4096 bytes"));
    }
    auto marker = [&](char letter) {
        q.params.push_back(letter);
        if (dialect == SqlDialect::MySql) {
            q.text.push_back('?');
        } else {
            q.text.push_back('$');
            q.text += std::to_string(q.params.size());
        }
    };
    size_t i = 0;
    while (i < query.size()) {
        char ch = query[i];
        if (ch == '\'' || ch == '"') {
            // A quoted literal: find its end ('' / "" doubling and, for MySQL, backslashes).
            size_t j = i + 1;
            bool closed = false;
            while (j < query.size()) {
                if (dialect == SqlDialect::MySql && query[j] == '\\' && j + 1 < query.size()) {
                    j += 2;
                    continue;
                }
                if (query[j] == ch) {
                    if (j + 1 < query.size() && query[j + 1] == ch) {
                        j += 2;
                        continue;
                    }
                    closed = true;
                    break;
                }
                ++j;
            }
            if (!closed) {
                return Err(std::string("unterminated quoted string in query"));
            }
            std::string_view body = query.substr(i + 1, j - i - 1);
            if (body.size() == 2 && body[0] == '%' && is_placeholder(body[1])) {
                marker(body[1]);
            } else {
                for (size_t k = 0; k + 1 < body.size(); ++k) {
                    if (body[k] == '%' && is_placeholder(body[k + 1])) {
                        std::string p{'%', body[k + 1]};
                        std::string msg = "placeholder ";
                        msg += p;
                        msg += " inside a longer quoted string; write it as a whole value ('";
                        msg += p;
                        msg += "')";
                        return Err(std::move(msg));
                    }
                }
                q.text.append(query.substr(i, j - i + 1));
            }
            i = j + 1;
            continue;
        }
        if (ch == '%' && i + 1 < query.size() && is_placeholder(query[i + 1])) {
            marker(query[i + 1]);
            i += 2;
            continue;
        }
        if (dialect == SqlDialect::Postgres && ch == '$' && i + 1 < query.size() &&
            query[i + 1] >= '0' && query[i + 1] <= '9') {
            return Err(std::string("a literal $n outside quotes would clash with the parameters"));
        }
        if (dialect == SqlDialect::MySql && ch == '?') {
            return Err(std::string("a literal '?' outside quotes would be a parameter marker"));
        }
        q.text.push_back(ch);
        ++i;
    }
    return q;
}

std::vector<std::string> bind_values(const SqlQuery& q, const ClientIdentity& id) {
    std::vector<std::string> out;
    out.reserve(q.params.size());
    for (char p : q.params) {
        out.push_back(placeholder_value(p, id));
    }
    return out;
}

Result<RedisCommand, std::string> compile_redis(std::string_view command) {
    RedisCommand cmd;
    if (command.size() > kMaxQueryBytes) {
        return Err(std::string("command longer than 4096 bytes"));
    }
    size_t i = 0;
    while (i < command.size()) {
        while (i < command.size() && (command[i] == ' ' || command[i] == '\t')) {
            ++i;
        }
        size_t start = i;
        while (i < command.size() && command[i] != ' ' && command[i] != '\t') {
            ++i;
        }
        if (i > start) {
            cmd.words.emplace_back(command.substr(start, i - start));
        }
    }
    return cmd;
}

std::vector<std::string> expand(const RedisCommand& cmd, const ClientIdentity& id) {
    std::vector<std::string> out;
    out.reserve(cmd.words.size());
    for (const auto& w : cmd.words) {
        out.push_back(expand(std::string_view(w), id));
    }
    return out;
}

std::string ldap_escape(std::string_view value) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(value.size());
    for (char ch : value) {
        if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' || ch == '\0') {
            auto b = static_cast<unsigned char>(ch);
            out.push_back('\\');
            out.push_back(kHex[b >> 4]);
            out.push_back(kHex[b & 0x0F]);
        } else {
            out.push_back(ch);
        }
    }
    return out;
}

}  // namespace mqttd::broker::auth
