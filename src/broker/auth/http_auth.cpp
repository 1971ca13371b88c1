#include "broker/auth/http_auth.h"

#include <algorithm>
#include <charconv>

#include "broker/auth/http_client.h"

namespace mqttd::broker::auth {

namespace {

constexpr std::string_view kPrefix = "auth.http.";

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

}  // namespace

std::string HttpAuthConfig::set(std::string_view key, std::string_view value) {
    if (key.substr(0, kPrefix.size()) != kPrefix) {
        return std::string(key) + ": not an auth.http key";
    }
    std::string_view k = key.substr(kPrefix.size());
    if (k == "timeout") {
        long ms = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
        if (ec != std::errc() || p != value.data() + value.size() || ms <= 0 || ms > 600000) {
            return std::string(key) + ": expected milliseconds 1..600000";
        }
        timeout_ms = ms;
        return {};
    }
    size_t dot = k.find('.');
    std::string_view which = k.substr(0, dot);
    std::string_view field = dot == std::string_view::npos ? "" : k.substr(dot + 1);
    HttpReqSpec* spec = which == "auth_req"    ? &auth_req
                        : which == "super_req" ? &super_req
                        : which == "acl_req"   ? &acl_req
                                               : nullptr;
    if (spec == nullptr) {
        return std::string(key) + ": unknown key";
    }
    if (field.empty()) {
        std::string_view v = trim(value);
        if (!v.empty() && v.substr(0, 7) != "http://" && v.substr(0, 8) != "https://") {
            return std::string(key) + ": expected an http:// or https:// URL";
        }
        spec->url = std::string(v);
    } else if (field == "method") {
        std::string m = lower(trim(value));
        if (m != "get" && m != "post") {
            return std::string(key) + ": expected get or post";
        }
        spec->post = m == "post";
    } else if (field == "params") {
        spec->params = std::string(trim(value));
    } else {
        return std::string(key) + ": unknown key";
    }
    return {};
}

HttpAuth::HttpAuth(HttpAuthConfig config)
    : config_(std::move(config)),
      pool_(std::make_unique<TaskPool>(std::max<size_t>(1, config_.threads), config_.max_queue)) {}

HttpAuth::~HttpAuth() {
    pool_->stop();
}

std::vector<std::pair<std::string, std::string>> HttpAuth::expand(std::string_view params,
                                                                  const ClientIdentity& id,
                                                                  int access,
                                                                  std::string_view topic) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!params.empty()) {
        size_t comma = params.find(',');
        std::string_view item = trim(params.substr(0, comma));
        params = comma == std::string_view::npos ? std::string_view{} : params.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        size_t eq = item.find('=');
        std::string name(trim(item.substr(0, eq)));
        std::string_view tmpl = eq == std::string_view::npos ? "" : trim(item.substr(eq + 1));
        std::string value;
        for (size_t i = 0; i < tmpl.size(); ++i) {
            if (tmpl[i] != '%' || i + 1 == tmpl.size()) {
                value.push_back(tmpl[i]);
                continue;
            }
            switch (tmpl[++i]) {
                case 'u':
                    value += id.username.value_or("");
                    break;
                case 'c':
                    value += id.client_id;
                    break;
                case 'P':
                    value += id.password ? *id.password : std::string();
                    break;
                case 'a':
                    value += id.ip;
                    break;
                case 'A':
                    value += std::to_string(access);
                    break;
                case 't':
                    value += topic;
                    break;
                default:
                    value.push_back('%');
                    value.push_back(tmpl[i]);
                    break;
            }
        }
        out.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

HttpAuth::Answer HttpAuth::ask(const HttpReqSpec& spec,
                               const ClientIdentity& id,
                               int access,
                               std::string_view topic) {
    requests_.fetch_add(1, std::memory_order_relaxed);
    HttpRequest req;
    req.post = spec.post;
    req.timeout_ms = config_.timeout_ms;
    std::string form = form_encode(expand(spec.params, id, access, topic));
    if (spec.post) {
        req.url = spec.url;
        req.body = std::move(form);
        req.content_type = "application/x-www-form-urlencoded";
    } else {
        req.url = spec.url;
        if (!form.empty()) {
            req.url += spec.url.find('?') == std::string::npos ? '?' : '&';
            req.url += form;
        }
    }
    HttpResponse resp = http_perform(req);
    if (resp.status == 200) {
        return std::string_view(trim(resp.body)) == "ignore" ? Answer::Ignore : Answer::Allow;
    }
    if (resp.status >= 400 && resp.status < 500) {
        return Answer::Deny;
    }
    unavailable_.fetch_add(1, std::memory_order_relaxed);
    return Answer::Unavailable;
}

void HttpAuth::submit(std::shared_ptr<DecisionCallback> done, std::function<Decision()> work) {
    bool queued = pool_->submit([done, work = std::move(work)](bool run) {
        (*done)(run ? work() : Decision::failed("auth stopped"));
    });
    if (!queued) {
        busy_.fetch_add(1, std::memory_order_relaxed);
        (*done)(Decision::failed("auth busy"));
    }
}

void HttpAuth::authenticate(const ClientIdentity& id, DecisionCallback done) {
    if (config_.auth_req.url.empty()) {
        done(Decision::ignore());
        return;
    }
    submit(std::make_shared<DecisionCallback>(std::move(done)), [this, id] {
        switch (ask(config_.auth_req, id, 0, {})) {
            case Answer::Ignore:
                return Decision::ignore();
            case Answer::Deny:
                return Decision::deny("auth_req refused");
            case Answer::Unavailable:
                return Decision::failed("auth server unavailable");
            case Answer::Allow:
                break;
        }
        bool super = !config_.super_req.url.empty() &&
                     ask(config_.super_req, id, 0, {}) == Answer::Allow;
        return Decision::allow("emq_auth_http", super);
    });
}

void HttpAuth::check(const ClientIdentity& id,
                     Access access,
                     std::string_view topic,
                     DecisionCallback done) {
    if (config_.acl_req.url.empty()) {
        done(Decision::ignore());
        return;
    }
    // EMQ 2.x sends 1 for subscribe and 2 for publish.
    int a = access == Access::Subscribe ? 1 : 2;
    submit(std::make_shared<DecisionCallback>(std::move(done)),
           [this, id, a, t = std::string(topic)] {
               switch (ask(config_.acl_req, id, a, t)) {
                   case Answer::Allow:
                       return Decision::allow("acl_req allowed");
                   case Answer::Deny:
                       return Decision::deny("acl_req refused");
                   case Answer::Ignore:
                       return Decision::ignore();
                   case Answer::Unavailable:
                       break;
               }
               return Decision::failed("auth server unavailable");
           });
}

HttpAuthCounters HttpAuth::counters() const {
    return {requests_.load(std::memory_order_relaxed), unavailable_.load(std::memory_order_relaxed),
            busy_.load(std::memory_order_relaxed)};
}

}  // namespace mqttd::broker::auth
