// One LDAP handle per connection, bound once as bind_dn (simple bind), searched synchronously
// with the query timeout (LDAP_OPT_TIMEOUT and the search's own time limit); the connect is
// bounded by auth.ldap.timeout (LDAP_OPT_NETWORK_TIMEOUT).
#include "broker/auth/ldap_auth.h"

#include <charconv>

#include <ldap.h>

#include "broker/auth/acl.h"
#include "broker/auth/db_template.h"

namespace mqttd::broker::auth {

namespace {

constexpr std::string_view kPrefix = "auth.ldap.";
constexpr const char* kSuperAttr = "isSuperuser";
constexpr const char* kPubAttr = "mqttPublishTopic";
constexpr const char* kSubAttr = "mqttSubscriptionTopic";
constexpr const char* kPubSubAttr = "mqttPubSubTopic";

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

// An attribute description or object class name (RFC 4512 descr / numericoid).
bool valid_attr(std::string_view s) {
    if (s.empty() || s.size() > 128) {
        return false;
    }
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == ';';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

BackendError ldap_failure(std::string_view what, int rc) {
    return BackendError{std::string(what) + ": " + ldap_err2string(rc),
                        rc == LDAP_TIMEOUT || rc == LDAP_TIMELIMIT_EXCEEDED};
}

struct MessageFree {
    void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using MessagePtr = std::unique_ptr<LDAPMessage, MessageFree>;

// The user's entry: the attribute values that were asked for.
struct Entry {
    std::vector<std::pair<std::string, std::vector<std::string>>> attrs;
    const std::vector<std::string>* get(std::string_view name) const {
        for (const auto& [k, v] : attrs) {
            if (k.size() == name.size() &&
                std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
                    return std::tolower(static_cast<unsigned char>(a)) ==
                           std::tolower(static_cast<unsigned char>(b));
                })) {
                return &v;
            }
        }
        return nullptr;
    }
};

class LdapConnection final : public BackendConnection {
public:
    LdapConnection(LDAP* ld, const LdapConfig& config) : ld_(ld), config_(config) {}
    ~LdapConnection() override { ldap_unbind_ext_s(ld_, nullptr, nullptr); }
    LdapConnection(const LdapConnection&) = delete;
    LdapConnection& operator=(const LdapConnection&) = delete;

    static Result<std::unique_ptr<BackendConnection>, BackendError> open(const LdapConfig& cfg) {
        std::string uri;
        for (const auto& host : cfg.servers) {
            uri += uri.empty() ? "" : " ";
            uri += (cfg.ssl ? "ldaps://" : "ldap://") + host + ":" + std::to_string(cfg.port);
        }
        LDAP* ld = nullptr;
        int rc = ldap_initialize(&ld, uri.c_str());
        if (rc != LDAP_SUCCESS || ld == nullptr) {
            return Err(ldap_failure("ldap_initialize " + uri, rc));
        }
        auto conn = std::make_unique<LdapConnection>(ld, cfg);
        int version = LDAP_VERSION3;
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
        ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
        timeval net =
                to_timeval(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeout));
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &net);
        timeval op = to_timeval(cfg.options.query_timeout);
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op);
        berval cred{};
        cred.bv_val = const_cast<char*>(cfg.bind_password.c_str());  // NOLINT: libldap's API
        cred.bv_len = cfg.bind_password.size();
        rc = ldap_sasl_bind_s(ld, cfg.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr,
                              nullptr);
        if (rc != LDAP_SUCCESS) {
            return Err(ldap_failure("bind " + uri + " as " + cfg.bind_dn, rc));
        }
        return std::unique_ptr<BackendConnection>(std::move(conn));
    }

    Result<std::optional<StoredCredentials>, BackendError> credentials(
            const ClientIdentity& id) override {
        auto e = lookup(*id.username, {config_.password_attr.c_str(), kSuperAttr});
        if (!e) {
            return Err(e.error());
        }
        if (!*e) {
            return std::optional<StoredCredentials>();
        }
        StoredCredentials sc;
        sc.ldap_scheme = true;
        const auto* pw = (*e)->get(config_.password_attr);
        if (pw != nullptr && !pw->empty()) {
            sc.hash = pw->front();
        }
        const auto* su = (*e)->get(kSuperAttr);
        sc.superuser = su != nullptr && !su->empty() && truthy(su->front());
        return std::optional<StoredCredentials>(std::move(sc));
    }

    Result<bool, BackendError> superuser(const ClientIdentity& id) override {
        auto e = lookup(*id.username, {kSuperAttr});
        if (!e) {
            return Err(e.error());
        }
        const auto* su = *e ? (*e)->get(kSuperAttr) : nullptr;
        return su != nullptr && !su->empty() && truthy(su->front());
    }

    Result<Verdict, BackendError> acl(const ClientIdentity& id,
                                      Access access,
                                      std::string_view topic) override {
        if (!id.username || id.username->empty()) {
            return Verdict::Ignore;
        }
        auto e = lookup(*id.username, {kPubAttr, kSubAttr, kPubSubAttr});
        if (!e) {
            return Err(e.error());
        }
        if (!*e) {
            return Verdict::Ignore;
        }
        std::vector<AclRule> rules;
        for (auto [attr, a] :
             {std::pair{kPubAttr, Access::Publish}, std::pair{kSubAttr, Access::Subscribe},
              std::pair{kPubSubAttr, Access::PubSub}}) {
            const auto* values = (*e)->get(attr);
            if (values == nullptr) {
                continue;
            }
            for (const auto& v : *values) {
                auto t = make_acl_topic(v, false);
                if (!t) {
                    continue;
                }
                AclRule rule;
                rule.allow = true;
                rule.access = a;
                rule.topics.push_back(std::move(*t));
                rules.push_back(std::move(rule));
            }
        }
        auto m = AclRules::from_rules(std::move(rules)).match(id, access, topic);
        return m && m->allow ? Verdict::Allow : Verdict::Ignore;
    }

private:
    Result<std::optional<Entry>, BackendError> lookup(const std::string& username,
                                                      std::vector<const char*> wanted) {
        std::string filter = config_.filter_for(username);
        wanted.push_back(nullptr);
        timeval tv = to_timeval(config_.options.query_timeout);
        LDAPMessage* raw = nullptr;
        int rc = ldap_search_ext_s(ld_, config_.device_dn.c_str(), LDAP_SCOPE_SUBTREE,
                                   filter.c_str(), const_cast<char**>(wanted.data()),  // NOLINT
                                   0, nullptr, nullptr, &tv, 1, &raw);
        MessagePtr res(raw);
        if (rc == LDAP_NO_SUCH_OBJECT) {
            return std::optional<Entry>();
        }
        if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
            return Err(ldap_failure("search " + config_.device_dn, rc));
        }
        LDAPMessage* first = res ? ldap_first_entry(ld_, res.get()) : nullptr;
        if (first == nullptr) {
            return std::optional<Entry>();
        }
        Entry entry;
        for (const char* attr : wanted) {
            if (attr == nullptr) {
                break;
            }
            berval** vals = ldap_get_values_len(ld_, first, attr);
            if (vals == nullptr) {
                continue;
            }
            std::vector<std::string> out;
            for (berval** v = vals; *v != nullptr && out.size() < kMaxAclRows; ++v) {
                out.emplace_back((*v)->bv_val, std::min<size_t>((*v)->bv_len, kMaxValueBytes));
            }
            ldap_value_free_len(vals);
            entry.attrs.emplace_back(attr, std::move(out));
        }
        return std::optional<Entry>(std::move(entry));
    }

    LDAP* ld_;
    const LdapConfig& config_;  // owned by the provider's connector, which outlives this
};

}  // namespace

const std::vector<std::pair<std::string, std::string>>& ldap_defaults() {
    static const std::vector<std::pair<std::string, std::string>> kDefaults = {
            {"auth.ldap.servers", "127.0.0.1"},
            {"auth.ldap.port", "389"},
            {"auth.ldap.pool", "8"},
            {"auth.ldap.bind_dn", "cn=root,dc=emqtt,dc=io"},
            {"auth.ldap.bind_password", "public"},
            {"auth.ldap.timeout", "30"},
            {"auth.ldap.device_dn", "ou=device,dc=emqtt,dc=io"},
            {"auth.ldap.match_objectclass", "mqttUser"},
            {"auth.ldap.username.attributetype", "uid"},
            {"auth.ldap.password.attributetype", "userPassword"},
            {"auth.ldap.ssl", "false"},
            {"auth.ldap.query_timeout", "5s"},
            {"auth.ldap.on_error", "ignore"},
            {"auth.ldap.cache_ttl", "0"},
    };
    return kDefaults;
}

LdapConfig::LdapConfig() {
    options.has_super = true;  // from the same entry
    for (const auto& [k, v] : ldap_defaults()) {
        set(k, v);
    }
}

std::string LdapConfig::filter_for(std::string_view username) const {
    std::string f("(&(objectClass=");
    f += ldap_escape(match_objectclass);
    f += ")(";
    f += username_attr;
    f += '=';
    f += ldap_escape(username);
    f += "))";
    return f;
}

std::string LdapConfig::set(std::string_view key, std::string_view value) {
    if (key.substr(0, kPrefix.size()) != kPrefix) {
        return std::string(key) + ": not an auth.ldap key";
    }
    std::string_view k = key.substr(kPrefix.size());
    auto fail = [&](std::string_view why) {
        return std::string(key) + ": " + std::string(why);
    };
    if (k == "password_hash") {
        return fail("unknown key");  // userPassword values carry their own scheme
    }
    bool consumed = false;
    if (auto err = set_backend_option(options, k, value, &consumed); !err.empty()) {
        return fail(err);
    }
    if (consumed) {
        return {};
    }
    std::string_view v = trim(value);
    if (k == "servers") {
        std::vector<std::string> list;
        while (!v.empty()) {
            size_t comma = v.find(',');
            std::string_view host = trim(v.substr(0, comma));
            if (host.empty() || host.find_first_of(" /:") != std::string_view::npos) {
                return fail("expected host names separated by commas");
            }
            list.emplace_back(host);
            v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
        }
        if (list.empty()) {
            return fail("expected at least one server");
        }
        servers = std::move(list);
    } else if (k == "port") {
        uint16_t p = 0;
        auto [e, ec] = std::from_chars(v.data(), v.data() + v.size(), p);
        if (ec != std::errc() || e != v.data() + v.size() || p == 0) {
            return fail("expected a port 1..65535");
        }
        port = p;
    } else if (k == "bind_dn") {
        bind_dn = std::string(v);
    } else if (k == "bind_password") {
        bind_password = std::string(value);
    } else if (k == "timeout") {
        auto d = parse_duration_ms(v, 3600000);
        if (!d || d->count() < 1000) {
            return fail("expected seconds 1..3600");
        }
        timeout = std::chrono::duration_cast<std::chrono::seconds>(*d);
    } else if (k == "device_dn") {
        if (v.empty()) {
            return fail("must not be empty");
        }
        device_dn = std::string(v);
    } else if (k == "match_objectclass" || k == "username.attributetype" ||
               k == "password.attributetype") {
        if (!valid_attr(v)) {
            return fail("expected an attribute or object class name");
        }
        (k == "match_objectclass"        ? match_objectclass
         : k == "username.attributetype" ? username_attr
                                         : password_attr) = std::string(v);
    } else if (k == "ssl") {
        if (v != "true" && v != "false") {
            return fail("expected true or false");
        }
        ssl = v == "true";
    } else {
        return fail("unknown key");
    }
    return {};
}

std::shared_ptr<BackendAuth> make_ldap_auth(const LdapConfig& config,
                                            std::shared_ptr<BackendStats> stats) {
    auto cfg = std::make_shared<const LdapConfig>(config);
    BackendOptions options = cfg->options;
    options.cache_letters.assign(1, 'u');  // the filter uses the username only
    return std::make_shared<BackendAuth>(
            "emq_auth_ldap", options, [cfg]() { return LdapConnection::open(*cfg); },
            std::move(stats));
}

}  // namespace mqttd::broker::auth
