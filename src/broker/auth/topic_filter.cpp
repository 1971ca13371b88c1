#include "broker/auth/topic_filter.h"

namespace mqttd::broker::auth {

namespace {

// Splits off the next level; `rest` becomes the remainder, `more` says if a '/' followed.
std::string_view next_level(std::string_view& rest, bool& more) {
    size_t pos = rest.find('/');
    std::string_view level = rest.substr(0, pos);
    more = pos != std::string_view::npos;
    rest = more ? rest.substr(pos + 1) : std::string_view{};
    return level;
}

}  // namespace

bool topic_match(std::string_view name, std::string_view filter) {
    if (!name.empty() && name.front() == '$' && !filter.empty() &&
        (filter.front() == '+' || filter.front() == '#')) {
        return false;
    }
    bool name_more = true;
    bool filter_more = true;
    while (filter_more) {
        std::string_view f = next_level(filter, filter_more);
        if (f == "#") {
            return true;
        }
        if (!name_more) {
            return false;  // filter is longer than the name
        }
        std::string_view n = next_level(name, name_more);
        if (f != "+" && f != n) {
            return false;
        }
    }
    return !name_more;
}

namespace {

bool wild(std::string_view level) {
    return level == "+" || level == "#";
}

// Leading wildcards never reach '$' topics [MQTT-4.7.2-1]: a filter starting with a wildcard
// and one starting with a literal '$' level share no topic.
bool dollar_split(std::string_view a, std::string_view b) {
    auto starts_wild = [](std::string_view f) {
        return !f.empty() && (f.front() == '+' || f.front() == '#');
    };
    auto starts_dollar = [](std::string_view f) {
        return !f.empty() && f.front() == '$';
    };
    return (starts_wild(a) && starts_dollar(b)) || (starts_dollar(a) && starts_wild(b));
}

}  // namespace

bool filter_overlaps(std::string_view rule, std::string_view sub) {
    if (dollar_split(rule, sub)) {
        return false;
    }
    bool rule_more = true;
    bool sub_more = true;
    while (rule_more && sub_more) {
        std::string_view r = next_level(rule, rule_more);
        std::string_view s = next_level(sub, sub_more);
        if (r == "#" || s == "#") {
            return true;
        }
        if (!wild(r) && !wild(s) && r != s) {
            return false;
        }
    }
    if (rule_more == sub_more) {
        return true;  // both ended together
    }
    // One ended: the other must have exactly "#" left ("a/#" matches "a").
    std::string_view rest = rule_more ? rule : sub;
    return rest == "#";
}

bool valid_filter(std::string_view filter) {
    if (filter.empty()) {
        return false;
    }
    bool more = true;
    while (more) {
        std::string_view level = next_level(filter, more);
        if (level.find('#') != std::string_view::npos && (level.size() != 1 || more)) {
            return false;
        }
        if (level.find('+') != std::string_view::npos && level.size() != 1) {
            return false;
        }
    }
    return true;
}

}  // namespace mqttd::broker::auth
