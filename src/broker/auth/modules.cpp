#include "broker/auth/modules.h"

#include <charconv>

#include <nlohmann/json.hpp>

#include "broker/auth/topic_filter.h"

namespace mqttd::broker::auth {

namespace {

std::optional<int> parse_int(std::string_view s) {
    int v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

std::optional<bool> parse_on_off(std::string_view s) {
    if (s == "on" || s == "true") {
        return true;
    }
    if (s == "off" || s == "false") {
        return false;
    }
    return std::nullopt;
}

std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string Modules::set(std::string_view key, std::string_view value) {
    auto bad = [&](std::string_view what) {
        return std::string(key) + ": " + std::string(what);
    };
    if (key == "module.presence") {
        auto v = parse_on_off(value);
        if (!v) {
            return bad("expected on or off");
        }
        presence_ = *v;
        return {};
    }
    if (key == "module.presence.qos") {
        auto q = parse_int(value);
        if (!q || *q < 0 || *q > 2) {
            return bad("expected 0, 1 or 2");
        }
        presence_qos_ = static_cast<uint8_t>(*q);
        return {};
    }
    constexpr std::string_view kSub = "module.subscription.";
    if (key.substr(0, kSub.size()) == kSub) {
        std::string_view rest = key.substr(kSub.size());
        size_t dot = rest.find('.');
        auto n = parse_int(rest.substr(0, dot));
        std::string_view field = dot == std::string_view::npos ? "" : rest.substr(dot + 1);
        if (!n) {
            return bad("expected module.subscription.<N>.topic or .qos");
        }
        if (field == "topic") {
            if (!valid_filter(value)) {
                return bad("bad topic filter");
            }
            subscriptions_[*n].topic = std::string(value);
            return {};
        }
        if (field == "qos") {
            auto q = parse_int(value);
            if (!q || *q < 0 || *q > 2) {
                return bad("expected 0, 1 or 2");
            }
            subscriptions_[*n].qos = static_cast<uint8_t>(*q);
            return {};
        }
        return bad("expected module.subscription.<N>.topic or .qos");
    }
    constexpr std::string_view kRewrite = "module.rewrite.rule.";
    if (key.substr(0, kRewrite.size()) == kRewrite) {
        auto n = parse_int(key.substr(kRewrite.size()));
        if (!n) {
            return bad("expected module.rewrite.rule.<N>");
        }
        // "<filter> <regex> <replacement>", separated by blanks.
        std::vector<std::string> parts;
        size_t i = 0;
        while (i < value.size()) {
            while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) {
                ++i;
            }
            size_t start = i;
            while (i < value.size() && value[i] != ' ' && value[i] != '\t') {
                ++i;
            }
            if (i > start) {
                parts.emplace_back(value.substr(start, i - start));
            }
        }
        if (parts.size() != 3 || !valid_filter(parts[0])) {
            return bad("expected \"<filter> <regex> <replacement>\"");
        }
        RewriteRule rule;
        try {
            rule.regex = std::regex(parts[1], std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            return bad(std::string("bad regex: ") + e.what());
        }
        rule.filter = parts[0];
        rule.pattern = parts[1];
        rule.replacement = parts[2];
        rewrite_[*n] = std::move(rule);
        return {};
    }
    if (key == "module.subscription" || key == "module.rewrite") {
        return parse_on_off(value) ? std::string() : bad("expected on or off");
    }
    return bad("unknown key");
}

PresenceMessage Modules::connected(const ClientIdentity& id,
                                   bool clean_session,
                                   int connack,
                                   int64_t ts_s) const {
    nlohmann::json j;
    j["clientid"] = id.client_id;
    j["username"] = id.username.value_or("undefined");
    j["ipaddress"] = id.ip;
    j["clean_sess"] = clean_session;
    j["protocol"] = id.proto_ver;
    j["connack"] = connack;
    j["ts"] = ts_s;
    return {"$SYS/brokers/" + node_ + "/clients/" + id.client_id + "/connected", dump(j),
            presence_qos_};
}

PresenceMessage Modules::disconnected(const ClientIdentity& id,
                                      std::string_view reason,
                                      int64_t ts_s) const {
    nlohmann::json j;
    j["clientid"] = id.client_id;
    j["username"] = id.username.value_or("undefined");
    j["reason"] = std::string(reason);
    j["ts"] = ts_s;
    return {"$SYS/brokers/" + node_ + "/clients/" + id.client_id + "/disconnected", dump(j),
            presence_qos_};
}

std::vector<AutoSubscription> Modules::subscriptions_for(const ClientIdentity& id) const {
    std::vector<AutoSubscription> out;
    for (const auto& [n, sub] : subscriptions_) {
        if (sub.topic.empty()) {
            continue;
        }
        std::string topic;
        bool ok = true;
        for (size_t i = 0; i < sub.topic.size(); ++i) {
            if (sub.topic[i] == '%' && i + 1 < sub.topic.size() &&
                (sub.topic[i + 1] == 'c' || sub.topic[i + 1] == 'u')) {
                const std::optional<std::string> v =
                        sub.topic[i + 1] == 'c' ? std::optional<std::string>(id.client_id)
                                                : id.username;
                // A value with wildcards or separators would subscribe to more than meant.
                if (!v || v->empty() || v->find_first_of("/+#") != std::string::npos) {
                    ok = false;
                    break;
                }
                topic += *v;
                ++i;
            } else {
                topic.push_back(sub.topic[i]);
            }
        }
        if (ok) {
            out.push_back({std::move(topic), sub.qos});
        }
    }
    return out;
}

std::optional<std::string> Modules::rewrite(std::string_view topic) const {
    for (const auto& [n, rule] : rewrite_) {
        if (!topic_match(topic, rule.filter)) {
            continue;
        }
        std::match_results<std::string_view::const_iterator> m;
        if (!std::regex_search(topic.begin(), topic.end(), m, rule.regex)) {
            return std::nullopt;
        }
        std::string out;
        const std::string& r = rule.replacement;
        for (size_t i = 0; i < r.size(); ++i) {
            if (r[i] == '$' && i + 1 < r.size() && r[i + 1] >= '0' && r[i + 1] <= '9') {
                auto g = static_cast<size_t>(r[i + 1] - '0');
                if (g < m.size()) {
                    out += m[g].str();
                }
                ++i;
            } else {
                out.push_back(r[i]);
            }
        }
        return out;
    }
    return std::nullopt;
}

}  // namespace mqttd::broker::auth
