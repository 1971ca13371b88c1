// acl.conf parsing in two steps: a tokenizer + recursive-descent reader turns the text into
// Erlang-like terms (atoms, strings, tuples, lists), each remembering its line; then each
// top-level term is compiled into an AclRule, so every error names the line of the term at
// fault.
#include "broker/auth/acl.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include <arpa/inet.h>

#include "broker/auth/topic_filter.h"

namespace mqttd::broker::auth {

namespace {

constexpr int kMaxDepth = 16;

struct Term {
    enum class Kind { Atom, String, Tuple, List };
    Kind kind = Kind::Atom;
    std::string text;         // Atom, String
    std::vector<Term> items;  // Tuple, List
    int line = 0;
};

class Reader {
public:
    Reader(std::string_view text, std::string_view name) : s_(text), name_(name) {}

    // Reads the next top-level term followed by '.'; nullopt at end of input or on error
    // (then error() is set).
    std::optional<Term> next_rule() {
        skip_space();
        if (pos_ >= s_.size()) {
            return std::nullopt;
        }
        auto t = term(0);
        if (!t) {
            return std::nullopt;
        }
        skip_space();
        if (!eat('.')) {
            fail("expected '.' after the rule");
            return std::nullopt;
        }
        return t;
    }
    const std::string& error() const { return error_; }
    bool failed() const { return !error_.empty(); }

private:
    void fail(const std::string& what) {
        if (error_.empty()) {
            error_ = std::string(name_) + ":" + std::to_string(line_) + ": " + what;
        }
    }
    void skip_space() {
        while (pos_ < s_.size()) {
            char c = s_[pos_];
            if (c == '\n') {
                ++line_;
                ++pos_;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                ++pos_;
            } else if (c == '%') {
                while (pos_ < s_.size() && s_[pos_] != '\n') {
                    ++pos_;
                }
            } else {
                break;
            }
        }
    }
    bool eat(char c) {
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    static bool atom_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '@';
    }
    std::optional<Term> term(int depth) {
        if (depth > kMaxDepth) {
            fail("terms nested too deeply");
            return std::nullopt;
        }
        skip_space();
        Term t;
        t.line = line_;
        if (pos_ >= s_.size()) {
            fail("unexpected end of file");
            return std::nullopt;
        }
        char c = s_[pos_];
        if (c == '{' || c == '[') {
            ++pos_;
            t.kind = c == '{' ? Term::Kind::Tuple : Term::Kind::List;
            const char close = c == '{' ? '}' : ']';
            skip_space();
            if (eat(close)) {
                return t;
            }
            for (;;) {
                auto item = term(depth + 1);
                if (!item) {
                    return std::nullopt;
                }
                t.items.push_back(std::move(*item));
                skip_space();
                if (eat(',')) {
                    continue;
                }
                if (eat(close)) {
                    return t;
                }
                fail(std::string("expected ',' or '") + close + "'");
                return std::nullopt;
            }
        }
        if (c == '"') {
            t.kind = Term::Kind::String;
            ++pos_;
            while (pos_ < s_.size() && s_[pos_] != '"') {
                char ch = s_[pos_++];
                if (ch == '\n') {
                    ++line_;
                } else if (ch == '\\') {
                    if (pos_ >= s_.size()) {
                        break;
                    }
                    char e = s_[pos_++];
                    ch = e == 'n' ? '\n' : e == 't' ? '\t' : e;
                }
                t.text.push_back(ch);
            }
            if (!eat('"')) {
                fail("unterminated string");
                return std::nullopt;
            }
            return t;
        }
        if (c == '\'') {
            t.kind = Term::Kind::Atom;
            ++pos_;
            while (pos_ < s_.size() && s_[pos_] != '\'' && s_[pos_] != '\n') {
                t.text.push_back(s_[pos_++]);
            }
            if (!eat('\'')) {
                fail("unterminated quoted atom");
                return std::nullopt;
            }
            return t;
        }
        if (c >= 'a' && c <= 'z') {
            t.kind = Term::Kind::Atom;
            while (pos_ < s_.size() && atom_char(s_[pos_])) {
                t.text.push_back(s_[pos_++]);
            }
            return t;
        }
        fail(std::string("unexpected character '") + c + "'");
        return std::nullopt;
    }

    std::string_view s_;
    std::string_view name_;
    size_t pos_ = 0;
    int line_ = 1;
    std::string error_;
};

std::string at(std::string_view name, int line, const std::string& what) {
    return std::string(name) + ":" + std::to_string(line) + ": " + what;
}

bool is_atom(const Term& t, std::string_view a) {
    return t.kind == Term::Kind::Atom && t.text == a;
}

bool parse_cidr(const std::string& text, AclWho& who) {
    std::string addr = text;
    int len = -1;
    size_t slash = text.find('/');
    if (slash != std::string::npos) {
        addr = text.substr(0, slash);
        std::string l = text.substr(slash + 1);
        if (l.empty() || l.size() > 3 ||
            !std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return false;
        }
        len = std::stoi(l);
    }
    if (inet_pton(AF_INET, addr.c_str(), who.addr.data()) == 1) {
        who.family = 4;
        if (len > 32) {
            return false;
        }
        who.prefix_len = static_cast<uint8_t>(len < 0 ? 32 : len);
    } else if (inet_pton(AF_INET6, addr.c_str(), who.addr.data()) == 1) {
        who.family = 6;
        if (len > 128) {
            return false;
        }
        who.prefix_len = static_cast<uint8_t>(len < 0 ? 128 : len);
    } else {
        return false;
    }
    return true;
}

Result<AclWho, std::string> compile_who(const Term& t, std::string_view name) {
    AclWho who;
    if (is_atom(t, "all")) {
        return who;
    }
    if (t.kind != Term::Kind::Tuple || t.items.size() != 2 || t.items[0].kind != Term::Kind::Atom) {
        return Err(at(name, t.line,
                      "expected all, {user, \"..\"}, {client, \"..\"}, {ipaddr, \"..\"}, "
                      "{'and', [..]} or {'or', [..]}"));
    }
    const std::string& kind = t.items[0].text;
    const Term& arg = t.items[1];
    if (kind == "and" || kind == "or") {
        if (arg.kind != Term::Kind::List || arg.items.empty()) {
            return Err(at(name, arg.line, "'" + kind + "' needs a non-empty list"));
        }
        who.kind = kind == "and" ? AclWho::Kind::And : AclWho::Kind::Or;
        for (const auto& sub : arg.items) {
            auto c = compile_who(sub, name);
            if (!c) {
                return Err(c.error());
            }
            who.children.push_back(std::move(c).value());
        }
        return who;
    }
    if (arg.kind != Term::Kind::String) {
        return Err(at(name, arg.line, "expected a string after " + kind));
    }
    who.value = arg.text;
    if (kind == "user") {
        who.kind = AclWho::Kind::User;
    } else if (kind == "client") {
        who.kind = AclWho::Kind::Client;
    } else if (kind == "ipaddr") {
        who.kind = AclWho::Kind::IpAddr;
        if (!parse_cidr(arg.text, who)) {
            return Err(at(name, arg.line, "bad address \"" + arg.text + "\""));
        }
    } else {
        return Err(at(name, t.items[0].line, "unknown who '" + kind + "'"));
    }
    return who;
}

bool has_var_level(std::string_view topic) {
    size_t start = 0;
    for (;;) {
        size_t end = topic.find('/', start);
        std::string_view level = topic.substr(start, end - start);
        if (level == "%u" || level == "%c") {
            return true;
        }
        if (end == std::string_view::npos) {
            return false;
        }
        start = end + 1;
    }
}

Result<AclTopic, std::string> compile_topic(const Term& t, std::string_view name) {
    AclTopic topic;
    if (t.kind == Term::Kind::String) {
        if (!valid_filter(t.text)) {
            return Err(at(name, t.line, "bad topic filter \"" + t.text + "\""));
        }
        topic.text = t.text;
        topic.has_vars = has_var_level(t.text);
        return topic;
    }
    if (t.kind == Term::Kind::Tuple && t.items.size() == 2 && is_atom(t.items[0], "eq") &&
        t.items[1].kind == Term::Kind::String && !t.items[1].text.empty()) {
        topic.text = t.items[1].text;
        topic.eq = true;
        return topic;
    }
    return Err(at(name, t.line, "expected a topic string or {eq, \"topic\"}"));
}

Result<AclRule, std::string> compile_rule(const Term& t, std::string_view name) {
    AclRule rule;
    rule.line = t.line;
    if (t.kind != Term::Kind::Tuple || (t.items.size() != 2 && t.items.size() != 4)) {
        return Err(at(name, t.line,
                      "expected {allow|deny, Who, Access, Topics} or {allow|deny, all}"));
    }
    const Term& perm = t.items[0];
    if (is_atom(perm, "allow")) {
        rule.allow = true;
    } else if (!is_atom(perm, "deny")) {
        return Err(at(name, perm.line, "expected allow or deny"));
    }
    if (t.items.size() == 2) {
        if (!is_atom(t.items[1], "all")) {
            return Err(at(name, t.items[1].line, "a two-element rule must be {allow|deny, all}"));
        }
        rule.all_topics = true;
        return rule;
    }
    auto who = compile_who(t.items[1], name);
    if (!who) {
        return Err(who.error());
    }
    rule.who = std::move(who).value();
    const Term& access = t.items[2];
    if (is_atom(access, "subscribe")) {
        rule.access = Access::Subscribe;
    } else if (is_atom(access, "publish")) {
        rule.access = Access::Publish;
    } else if (is_atom(access, "pubsub")) {
        rule.access = Access::PubSub;
    } else {
        return Err(at(name, access.line, "expected subscribe, publish or pubsub"));
    }
    const Term& topics = t.items[3];
    if (topics.kind == Term::Kind::List) {
        for (const auto& item : topics.items) {
            auto tp = compile_topic(item, name);
            if (!tp) {
                return Err(tp.error());
            }
            rule.topics.push_back(std::move(tp).value());
        }
    } else {
        auto tp = compile_topic(topics, name);
        if (!tp) {
            return Err(tp.error());
        }
        rule.topics.push_back(std::move(tp).value());
    }
    return rule;
}

bool ip_matches(const AclWho& who, const std::string& ip) {
    std::array<uint8_t, 16> addr{};
    uint8_t family = 0;
    if (inet_pton(AF_INET, ip.c_str(), addr.data()) == 1) {
        family = 4;
    } else if (inet_pton(AF_INET6, ip.c_str(), addr.data()) == 1) {
        family = 6;
        // An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches IPv4 rules.
        static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (who.family == 4 && std::equal(kMapped, kMapped + 12, addr.begin())) {
            std::copy(addr.begin() + 12, addr.end(), addr.begin());
            family = 4;
        }
    }
    if (family == 0 || family != who.family) {
        return false;
    }
    size_t full = who.prefix_len / 8u;
    if (!std::equal(addr.begin(), addr.begin() + static_cast<std::ptrdiff_t>(full),
                    who.addr.begin())) {
        return false;
    }
    size_t bits = who.prefix_len % 8u;
    if (bits == 0) {
        return true;
    }
    auto mask = static_cast<uint8_t>(0xFFu << (8 - bits));
    return (addr[full] & mask) == (who.addr[full] & mask);
}

bool who_matches(const AclWho& who, const ClientIdentity& id) {
    switch (who.kind) {
        case AclWho::Kind::All:
            return true;
        case AclWho::Kind::User:
            return id.username && *id.username == who.value;
        case AclWho::Kind::Client:
            return id.client_id == who.value;
        case AclWho::Kind::IpAddr:
            return ip_matches(who, id.ip);
        case AclWho::Kind::And:
            return std::all_of(who.children.begin(), who.children.end(),
                               [&](const AclWho& c) { return who_matches(c, id); });
        case AclWho::Kind::Or:
            return std::any_of(who.children.begin(), who.children.end(),
                               [&](const AclWho& c) { return who_matches(c, id); });
    }
    return false;
}

bool safe_level(const std::string& v) {
    return !v.empty() && v.find_first_of("/+#") == std::string::npos;
}

// Replaces whole "%u" / "%c" levels; nullopt when a value is missing or unsafe.
std::optional<std::string> substitute(const std::string& filter, const ClientIdentity& id) {
    std::string out;
    out.reserve(filter.size() + 32);
    size_t start = 0;
    for (;;) {
        size_t end = filter.find('/', start);
        std::string_view level = std::string_view(filter).substr(start, end - start);
        if (level == "%u") {
            if (!id.username || !safe_level(*id.username)) {
                return std::nullopt;
            }
            out += *id.username;
        } else if (level == "%c") {
            if (!safe_level(id.client_id)) {
                return std::nullopt;
            }
            out += id.client_id;
        } else {
            out += level;
        }
        if (end == std::string::npos) {
            return out;
        }
        out.push_back('/');
        start = end + 1;
    }
}

// EMQ 2.x (emqttd_access_rule): the topic of a PUBLISH, and the filter of a SUBSCRIBE as
// written, are matched against the rule's filter as names: the subscribed filter's '+' and '#'
// are words like any other, which only a rule's own wildcards match.
bool topic_matches(const AclTopic& t, const ClientIdentity& id, std::string_view topic) {
    if (t.eq) {
        return topic == t.text;
    }
    if (!t.has_vars) {
        return topic_match(topic, t.text);
    }
    auto filter = substitute(t.text, id);
    return filter && topic_match(topic, *filter);
}

// Whether some topic is both matched by rule topic `t` (as a filter, or {eq} as a name) and
// by the subscription filter `filter`.
bool topic_overlaps(const AclTopic& t, const ClientIdentity& id, std::string_view filter) {
    if (t.eq) {
        // {eq, "a/b"} denies that topic; {eq, "a/#"} only the literal filter "a/#".
        return t.text.find_first_of("+#") == std::string::npos && topic_match(t.text, filter);
    }
    if (!t.has_vars) {
        return filter_overlaps(t.text, filter);
    }
    auto rule_filter = substitute(t.text, id);
    return rule_filter && filter_overlaps(*rule_filter, filter);
}

bool applies(const AclRule& rule, Access want, const ClientIdentity& id) {
    const auto w = static_cast<uint8_t>(want);
    return (static_cast<uint8_t>(rule.access) & w) == w && who_matches(rule.who, id);
}

}  // namespace

Result<AclRules, std::string> AclRules::parse(std::string_view text, std::string_view name) {
    if (text.size() > kMaxAclBytes) {
        return Err(std::string(name) + ":1: file larger than " + std::to_string(kMaxAclBytes) +
                   " bytes");
    }
    AclRules rules;
    Reader reader(text, name);
    for (;;) {
        auto term = reader.next_rule();
        if (!term) {
            break;
        }
        auto rule = compile_rule(*term, name);
        if (!rule) {
            return Err(rule.error());
        }
        if (rules.rules_.size() >= kMaxAclRules) {
            return Err(
                    at(name, term->line, "more than " + std::to_string(kMaxAclRules) + " rules"));
        }
        rules.rules_.push_back(std::move(rule).value());
    }
    if (reader.failed()) {
        return Err(reader.error());
    }
    return rules;
}

std::optional<AclMatch> AclRules::match(const ClientIdentity& id,
                                        Access access,
                                        std::string_view topic) const {
    for (const auto& rule : rules_) {
        if (rule.all_topics) {
            return AclMatch{rule.allow, rule.line};
        }
        if (!applies(rule, access, id)) {
            continue;
        }
        for (const auto& t : rule.topics) {
            if (topic_matches(t, id, topic)) {
                return AclMatch{rule.allow, rule.line};
            }
        }
    }
    return std::nullopt;
}

bool AclRules::overlaps_subscribe_deny(const ClientIdentity& id, std::string_view filter) const {
    for (const auto& rule : rules_) {
        if (rule.allow) {
            continue;
        }
        if (rule.all_topics) {
            return true;
        }
        if (!applies(rule, Access::Subscribe, id)) {
            continue;
        }
        for (const auto& t : rule.topics) {
            if (topic_overlaps(t, id, filter)) {
                return true;
            }
        }
    }
    return false;
}

bool AclRules::denies_subscribe_topic(const ClientIdentity& id, std::string_view topic) const {
    auto m = match(id, Access::Subscribe, topic);
    return m && !m->allow;
}

AclRules AclRules::from_rules(std::vector<AclRule> rules) {
    AclRules out;
    out.rules_ = std::move(rules);
    return out;
}

bool parse_ip_who(const std::string& text, AclWho& who) {
    who.kind = AclWho::Kind::IpAddr;
    who.value = text;
    return parse_cidr(text, who);
}

std::optional<AclTopic> make_acl_topic(std::string_view text, bool eq) {
    AclTopic topic;
    topic.text = std::string(text);
    topic.eq = eq;
    if (eq) {
        return text.empty() ? std::nullopt : std::optional<AclTopic>(std::move(topic));
    }
    if (!valid_filter(text)) {
        return std::nullopt;
    }
    topic.has_vars = has_var_level(text);
    return topic;
}

AclFile::AclFile(std::string path, std::function<void()> on_change)
    : path_(std::move(path)),
      on_change_(std::move(on_change)),
      rules_(std::make_shared<const AclRules>()) {}

void AclFile::check(const ClientIdentity& id,
                    Access access,
                    std::string_view topic,
                    DecisionCallback done) {
    auto m = match(id, access, topic);
    if (!m) {
        done(Decision::ignore());
        return;
    }
    std::string why = "acl.conf line " + std::to_string(m->line);
    done(m->allow ? Decision::allow(std::move(why)) : Decision::deny(std::move(why)));
}

std::optional<Verdict> AclFile::verdict_now(const ClientIdentity& id,
                                            Access access,
                                            std::string_view topic) const {
    auto m = match(id, access, topic);
    if (!m) {
        return Verdict::Ignore;
    }
    return m->allow ? Verdict::Allow : Verdict::Deny;
}

Result<size_t, std::string> AclFile::reload() {
    std::string display = path_.substr(path_.find_last_of('/') + 1);
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
        return Err(path_ + ": cannot open");
    }
    std::string text;
    in.seekg(0, std::ios::end);
    auto size = in.tellg();
    if (size < 0 || static_cast<uint64_t>(size) > kMaxAclBytes) {
        return Err(path_ + ": too large or unreadable");
    }
    text.resize(static_cast<size_t>(size));
    in.seekg(0);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (!in) {
        return Err(path_ + ": read failed");
    }
    return load_text(text, display);
}

Result<size_t, std::string> AclFile::load_text(std::string_view text, std::string_view name) {
    auto parsed = AclRules::parse(text, name);
    if (!parsed) {
        return Err(parsed.error());
    }
    auto rules = std::make_shared<const AclRules>(std::move(parsed).value());
    size_t n = rules->size();
    rules_.store(std::move(rules));
    if (on_change_) {
        on_change_();
    }
    return n;
}

void AclCache::sync_epoch(uint64_t epoch) {
    if (epoch != epoch_) {
        entries_.clear();
        epoch_ = epoch;
    }
}

AclCache::Entry* AclCache::find(std::string_view topic, size_t hash) {
    for (auto& e : entries_) {
        if (e.hash == hash && e.topic == topic) {
            return &e;
        }
    }
    return nullptr;
}

std::optional<bool> AclCache::get(std::string_view topic, uint64_t epoch) {
    sync_epoch(epoch);
    if (entries_.empty()) {
        return std::nullopt;
    }
    if (Entry* e = find(topic, std::hash<std::string_view>{}(topic))) {
        e->last_use = ++tick_;
        return e->allow;
    }
    return std::nullopt;
}

void AclCache::put(std::string_view topic, bool allow, uint64_t epoch) {
    if (capacity_ == 0) {
        return;
    }
    sync_epoch(epoch);
    const size_t hash = std::hash<std::string_view>{}(topic);
    if (Entry* e = find(topic, hash)) {
        e->allow = allow;
        e->last_use = ++tick_;
        return;
    }
    if (entries_.size() < capacity_) {
        entries_.push_back(Entry{std::string(topic), hash, allow, ++tick_});
        return;
    }
    auto lru = std::min_element(
            entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; });
    lru->topic.assign(topic.data(), topic.size());
    lru->hash = hash;
    lru->allow = allow;
    lru->last_use = ++tick_;
}

void AclCache::clear(std::string_view topic) {
    std::erase_if(entries_, [&](const Entry& e) { return e.topic == topic; });
}

void AclCache::clear_all() {
    entries_.clear();
}

}  // namespace mqttd::broker::auth
