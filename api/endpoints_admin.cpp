// Nodes, monitoring, plugins, hot configuration and admin users (rest-api-v2.md "Nodes",
// "Plugins", "List all Listeners", metrics, stats, "Hot configuration", "User Management").
// In a cluster, the cluster-wide forms join this node's answer with every running member's
// (api/cluster_calls.cpp), in the spec's shapes (a list for monitoring/stats, an object keyed
// by node for listeners and configs).
#include "api/detail.h"
#include "api/node_info.h"
#include "common/clock.h"

namespace mqttd::api::detail {
namespace {

const std::string& node_name(Handler& h) {
    return h.ctx().admin.node_name();
}

// The connection limit: the max_clients of the MQTT listeners together.
uint64_t mqtt_max_clients(Handler& h) {
    uint64_t n = 0;
    for (const auto& l : h.listeners()) {
        if (l.protocol.rfind("mqtt:", 0) == 0 && l.protocol != "mqtt:api") {
            n += l.max_clients;
        }
    }
    return n;
}

// node_status: EMQ's "Running", or "Degraded" while the store takes no writes (out of space,
// or failed); store_status and store_error (additions) say which and why (api/README.md).
void add_store_status(Handler& h, Json& o) {
    const storage::StoreHealth health = h.ctx().store.health();
    const bool writable = health.state == storage::StoreHealth::State::Writable;
    o["node_status"] = writable ? "Running" : "Degraded";
    o["store_status"] = storage::state_name(health.state);
    if (!writable) {
        o["store_error"] = health.error;
    }
}

Json node_json(Handler& h, bool with_name) {
    auto& admin = h.ctx().admin;
    int64_t now = unix_ms();
    Json o;
    if (with_name) {
        o["name"] = node_name(h);
    }
    o["version"] = admin.version();
    o["sysdescr"] = "mqttd MQTT broker";
    o["uptime"] = format_uptime((now - admin.started_at_ms()) / 1000);
    o["datetime"] = format_datetime(now);
    o["otp_release"] = build_description();
    add_store_status(h, o);
    return o;
}

// Another member of the cluster, from the record it keeps in etcd (src/cluster/README.md),
// in node_json's shape.
Json member_json(const broker::ClusterView::Node& n) {
    Json rec = Json::parse(n.info, nullptr, false);
    if (!rec.is_object()) {
        rec = Json::object();
    }
    const int64_t now = unix_ms();
    const int64_t started = rec.value("started_at_ms", int64_t{0});
    return Json{{"name", n.name},
                {"version", rec.value("version", "")},
                {"sysdescr", rec.value("sysdescr", "mqttd MQTT broker")},
                {"uptime", n.running && started > 0 ? format_uptime((now - started) / 1000) : ""},
                {"datetime", format_datetime(now)},
                {"otp_release", rec.value("otp_release", "")},
                {"node_status", n.running ? "Running" : "Stopped"}};
}

// management/nodes: this node as it is now, the others as the cluster knows them.
Json nodes_json(Handler& h) {
    Json list = Json::array({node_json(h, true)});
    if (const auto* cluster = h.ctx().admin.cluster()) {
        for (const auto& n : cluster->nodes()) {
            if (n.name != node_name(h)) {
                list.push_back(member_json(n));
            }
        }
    }
    return list;
}

Json one_node_json(Handler& h, const std::string& name) {
    if (name != node_name(h)) {
        if (const auto* cluster = h.ctx().admin.cluster()) {
            for (const auto& n : cluster->nodes()) {
                if (n.name == name) {
                    return member_json(n);
                }
            }
        }
    }
    check_node(h, name);
    return node_json(h, true);
}

Json node_stats_json(Handler& h) {
    auto f = process_figures();
    uint64_t clients = h.ctx().admin.client_count();
    Json o{{"name", node_name(h)},
           {"otp_release", build_description()},
           {"memory_total", format_megabytes(f.memory_total)},
           {"memory_used", format_megabytes(f.memory_used)},
           {"process_available", mqtt_max_clients(h)},
           {"process_used", clients},
           {"max_fds", f.max_fds},
           {"clients", clients},
           {"load1", f.load1},
           {"load5", f.load5},
           {"load15", f.load15}};
    add_store_status(h, o);
    return o;
}

Json listeners_json(Handler& h) {
    Json list = Json::array();
    for (const auto& l : h.listeners()) {
        Json shutdowns = Json::array();
        for (const auto& [reason, count] : {std::pair<const char*, uint64_t>{"closed", l.closed},
                                            {"max_clients", l.refused},
                                            {"handshake_error", l.handshake_failed}}) {
            if (count > 0) {
                shutdowns.push_back(Json{{"reason", reason}, {"count", count}});
            }
        }
        list.push_back(Json{{"protocol", l.protocol},
                            {"listen", l.address},
                            {"acceptors", l.acceptors},
                            {"max_clients", l.max_clients},
                            {"current_clients", l.current_clients},
                            {"shutdown_count", std::move(shutdowns)}});
    }
    return list;
}

Json metrics_json(Handler& h) {
    auto m = h.ctx().admin.metrics();
    Json o = Json::object();
    for (size_t i = 0; i < broker::kMetricCount; ++i) {
        o[std::string(broker::kMetricNames[i])] = m[i];
    }
    // Additions to the spec's list: the database auth plugins' counters, and the REST API's
    // failed and refused logins (api/login_limiter.h).
    for (const auto& [name, value] : h.ctx().admin.auth_metrics()) {
        o[name] = value;
    }
    o["api/auth/failed"] = h.limiter().failures();
    o["api/auth/throttled"] = h.limiter().throttled();
    o["api/auth/busy"] = h.limiter().busy();
    return o;
}

Json stats_json(Handler& h) {
    Json o = Json::object();
    for (const auto& [k, v] : h.ctx().admin.stats()) {
        o[k] = v;
    }
    return o;
}

// ---- plugins ----

Json plugin_json(const broker::PluginInfo& p) {
    return Json{{"name", p.name},
                {"version", p.version},
                {"description", p.description},
                {"active", p.active}};
}

[[noreturn]] void plugin_error(const broker::PluginError& e) {
    using Kind = broker::PluginError::Kind;
    switch (e.kind) {
        case Kind::AlreadyStarted:
            throw ApiError{kPluginStarted, e.message};
        case Kind::AlreadyStopped:
            throw ApiError{kPluginStopped, e.message};
        case Kind::UnknownKey:
        case Kind::BadValue:
            throw ApiError{kBadParam, e.message};
        case Kind::NotFound:
        case Kind::StoreFailed:
            break;
    }
    throw ApiError{kUnknownError, e.message};
}

Json list_plugins(Handler& h, Call& c) {
    check_node(h, c.param(0));
    Json list = Json::array();
    for (const auto& p : h.ctx().admin.plugins().list()) {
        list.push_back(plugin_json(p));
    }
    return list;
}

Json set_plugin(Handler& h, Call& c) {
    check_node(h, c.param(0));
    auto active = c.opt_bool("active");
    if (!active) {
        throw ApiError{kMissingParam, "missing parameter: active"};
    }
    auto& plugins = h.ctx().admin.plugins();
    auto r = *active ? plugins.start(c.param(1)) : plugins.stop(c.param(1));
    if (!r) {
        plugin_error(r.error());
    }
    return Json::array();
}

Json plugin_configs(Handler& h, Call& c) {
    check_node(h, c.param(0));
    auto p = h.ctx().admin.plugins().find(c.param(1));
    if (!p) {
        throw ApiError{kUnknownError, "no such plugin: " + c.param(1)};
    }
    Json list = Json::array();
    for (const auto& item : p->config) {
        list.push_back(Json{{"key", item.key},
                            {"value", item.value},
                            {"desc", item.desc},
                            {"required", item.required}});
    }
    return list;
}

// A config value as text: strings as they are, integers and booleans written out.
std::string value_text(const std::string& key, const Json& v) {
    if (v.is_string()) {
        return v.get<std::string>();
    }
    if (v.is_boolean()) {
        return v.get<bool>() ? "true" : "false";
    }
    if (v.is_number_integer()) {
        return v.dump();
    }
    throw ApiError{kBadParam, key + " must be a string"};
}

Json set_plugin_configs(Handler& h, Call& c) {
    check_node(h, c.param(0));
    std::vector<std::pair<std::string, std::string>> kv;
    for (const auto& [k, v] : c.body().items()) {
        kv.emplace_back(k, value_text(k, v));
    }
    if (kv.empty()) {
        throw ApiError{kMissingParam, "no config key given"};
    }
    auto r = h.ctx().admin.plugins().set_config(c.param(1), kv);
    if (!r) {
        plugin_error(r.error());
    }
    return Json::array();
}

// ---- configs ----

Json configs_json(Handler& h) {
    Json list = Json::array();
    for (const auto& item : h.ctx().config.items()) {
        if (item.hot) {
            list.push_back(Json{{"key", item.key},
                                {"value", item.value},
                                {"datatpye", item.datatpye},
                                {"app", item.app}});
        }
    }
    return list;
}

Json set_config(Handler& h, Call& c, const std::string& app) {
    std::string key = c.str("key");
    const Json& body = c.body();
    auto it = body.find("value");
    if (it == body.end() || it->is_null()) {
        throw ApiError{kMissingParam, "missing parameter: value"};
    }
    std::string value = value_text("value", *it);
    auto& cfg = h.ctx().config;
    bool found = false;
    for (const auto& item : cfg.items()) {
        if (item.key == key && item.hot) {
            if (item.app != app) {
                throw ApiError{kBadParam, key + " belongs to app " + item.app + ", not " + app};
            }
            found = true;
        }
    }
    if (!found) {
        throw ApiError{kBadParam, key + ": not a modifiable configuration key"};
    }
    auto r = cfg.set_runtime(key, value, &h.ctx().store);
    if (!r) {
        using Kind = config::SetError::Kind;
        throw ApiError{r.error().kind == Kind::StoreFailed ? kUnknownError : kBadParam,
                       r.error().message};
    }
    return Json::array();
}

// ---- users ----

[[noreturn]] void user_error(Users::Outcome o, const std::string& user) {
    switch (o) {
        case Users::Outcome::Exists:
            throw ApiError{kUserExists, "user " + user + " exists already"};
        case Users::Outcome::NotFound:
            throw ApiError{kNoSuchUser, "user " + user + " does not exist"};
        case Users::Outcome::WrongPassword:
            throw ApiError{kWrongOldPassword, "old password is wrong"};
        case Users::Outcome::Protected:
            throw ApiError{kAdminProtected, "user " + user + " can not be deleted"};
        case Users::Outcome::Ok:
        case Users::Outcome::StoreFailed:
            break;
    }
    throw ApiError{kUnknownError,
                   "store write failed: the store takes no writes (out of space, or failed: "
                   "store_status of management/nodes)"};
}

Json check(Users::Outcome o, const std::string& user) {
    if (o != Users::Outcome::Ok) {
        user_error(o, user);
    }
    return Json::array();
}

Json list_users(Handler& h, Call&) {
    Json list = Json::array();
    for (const auto& u : h.users().list()) {
        list.push_back(Json{{"username", u.username}, {"tags", u.tags}});
    }
    return list;
}

Json add_user(Handler& h, Call& c) {
    std::string user = c.str("username");
    std::string password = c.str("password");
    std::string tags = c.opt_str("tags").value_or("");
    if (user.empty() || password.empty()) {
        throw ApiError{kEmptyCredentials, "empty username or password"};
    }
    return check(h.users().add(user, password, tags), user);
}

Json update_user(Handler& h, Call& c) {
    std::string tags = c.str("tags");
    return check(h.users().set_tags(c.param(0), tags), c.param(0));
}

Json delete_user(Handler& h, Call& c) {
    return check(h.users().remove(c.param(0), h.default_user()), c.param(0));
}

Json auth(Handler& h, Call& c) {
    std::string user = c.str("username");
    std::string password = c.str("password");
    if (user.empty() || password.empty()) {
        throw ApiError{kEmptyCredentials, "empty username or password"};
    }
    if (!h.login(c.request().peer, user, password)) {
        throw ApiError{kBadLogin, "username or password error"};
    }
    return Json::array();
}

Json change_password(Handler& h, Call& c) {
    std::string new_pwd = c.str("new_pwd");
    std::string old_pwd = c.str("old_pwd");
    if (new_pwd.empty()) {
        throw ApiError{kEmptyCredentials, "empty password"};
    }
    return check(h.users().change_password(c.param(0), old_pwd, new_pwd), c.param(0));
}

}  // namespace

void add_admin_routes(std::vector<Route>& r) {
    add(r, "GET", "management/nodes", "List the nodes of the cluster",
        [](Handler& h, Call&) { return nodes_json(h); });
    add(r, "GET", "management/nodes/:node", "A node's information",
        [](Handler& h, Call& c) { return one_node_json(h, c.param(0)); });
    add(r, "GET", "monitoring/nodes", "Statistics of every node", [](Handler& h, Call& c) {
        // The running members add their own (Scope::Gather); the others are listed stopped.
        Json list = Json::array({node_stats_json(h)});
        const auto* cluster = h.ctx().admin.cluster();
        if (cluster != nullptr && !c.request().from_peer) {
            for (const auto& n : cluster->nodes()) {
                if (!n.running) {
                    list.push_back(Json{{"name", n.name}, {"node_status", "Stopped"}});
                }
            }
        }
        return list;
    });
    add(r, "GET", "monitoring/nodes/:node", "A node's statistics", [](Handler& h, Call& c) {
        check_node(h, c.param(0));
        return node_stats_json(h);
    });
    add(r, "GET", "monitoring/listeners", "Listeners of every node", [](Handler& h, Call&) {
        return Json{{node_name(h), listeners_json(h)}};
    });
    add(r, "GET", "monitoring/listeners/:node", "Listeners of a node", [](Handler& h, Call& c) {
        check_node(h, c.param(0));
        return listeners_json(h);
    });
    add(r, "GET", "monitoring/metrics", "Packet and message counters of the cluster",
        [](Handler& h, Call&) { return metrics_json(h); });
    add(r, "GET", "monitoring/metrics/:node", "Packet and message counters of a node",
        [](Handler& h, Call& c) {
            check_node(h, c.param(0));
            return metrics_json(h);
        });
    add(r, "GET", "monitoring/stats", "Client, session, topic counts of every node",
        [](Handler& h, Call&) {
            return Json::array({Json{{node_name(h), stats_json(h)}}});
        });
    add(r, "GET", "monitoring/stats/:node", "Client, session, topic counts of a node",
        [](Handler& h, Call& c) {
            check_node(h, c.param(0));
            return stats_json(h);
        });

    add(r, "GET", "nodes/:node/plugins", "List the plugins of a node", list_plugins);
    add(r, "PUT", "nodes/:node/plugins/:name", "Start or stop a plugin ({\"active\": bool})",
        set_plugin);
    add(r, "GET", "nodes/:node/plugin_configs/:name", "A plugin's configuration", plugin_configs);
    add(r, "PUT", "nodes/:node/plugin_configs/:name", "Change a plugin's configuration",
        set_plugin_configs);

    add(r, "GET", "configs", "Modifiable configuration of every node", [](Handler& h, Call&) {
        return Json{{node_name(h), configs_json(h)}};
    });
    add(r, "GET", "nodes/:node/configs", "Modifiable configuration of a node",
        [](Handler& h, Call& c) {
            check_node(h, c.param(0));
            return configs_json(h);
        });
    add(r, "PUT", "configs/:app", "Change a configuration key on every node",
        [](Handler& h, Call& c) { return set_config(h, c, c.param(0)); });
    add(r, "PUT", "nodes/:node/configs/:app", "Change a configuration key on a node",
        [](Handler& h, Call& c) {
            check_node(h, c.param(0));
            return set_config(h, c, c.param(1));
        });

    add(r, "GET", "users", "List the admin users", list_users);
    add(r, "POST", "users", "Add an admin user", add_user);
    add(r, "PUT", "users/:username", "Change an admin user's tags", update_user);
    add(r, "DELETE", "users/:username", "Delete an admin user", delete_user);
    add(r, "POST", "auth", "Check a username and password (no Basic auth needed)", auth);
    add(r, "PUT", "change_pwd/:username", "Change an admin user's password", change_password);
}

Json openapi(const std::vector<Route>& routes) {
    Json paths = Json::object();
    for (const auto& route : routes) {
        std::string path = "/api/v2";
        Json params = Json::array();
        for (const auto& seg : route.pattern) {
            path += '/';
            if (!seg.empty() && (seg[0] == ':' || seg[0] == '*')) {
                std::string name = seg.substr(1);
                path += "{" + name + "}";
                Json p{{"name", name},
                       {"in", "path"},
                       {"required", true},
                       {"schema", {{"type", "string"}}}};
                if (seg[0] == '*') {
                    p["description"] = "may contain '/' (percent-encode other reserved bytes)";
                }
                params.push_back(std::move(p));
            } else {
                path += seg;
            }
        }
        if (route.paged) {
            params.push_back(
                    Json{{"name", "curr_page"},
                         {"in", "query"},
                         {"schema", {{"type", "integer"}, {"minimum", 1}, {"default", 1}}}});
            params.push_back(Json{{"name", "page_size"},
                                  {"in", "query"},
                                  {"schema",
                                   {{"type", "integer"},
                                    {"minimum", 1},
                                    {"maximum", kMaxPageSize},
                                    {"default", 20}}}});
            params.push_back(Json{{"name", "cursor"},
                                  {"in", "query"},
                                  {"description", "the \"cursor\" of the previous page"},
                                  {"schema", {{"type", "string"}}}});
        }
        for (const auto& [name, desc] : route.query) {
            params.push_back(Json{{"name", name},
                                  {"in", "query"},
                                  {"description", desc},
                                  {"schema", {{"type", "string"}}}});
        }
        std::string method = route.method;
        std::transform(method.begin(), method.end(), method.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        Json op{{"summary", route.summary},
                {"parameters", std::move(params)},
                {"responses",
                 {{"200",
                   {{"description",
                     "{\"code\": 0, \"result\": ...} or {\"code\": N, \"message\": ...}"}}}}}};
        if (method == "post" || method == "put") {
            op["requestBody"] = {
                    {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
        }
        if (!(route.method == "POST" && route.pattern == std::vector<std::string>{"auth"})) {
            op["security"] = Json::array({Json{{"basic", Json::array()}}});
        }
        paths[path][method] = std::move(op);
    }
    // Outside /api/v2: the Prometheus scrape (api/prometheus.h); Basic auth unless
    // api.metrics.auth = off.
    paths["/metrics"]["get"] = Json{
            {"summary", "Metrics, stats, listeners and the store in the Prometheus text format"},
            {"parameters", Json::array()},
            {"responses",
             {{"200",
               {{"description", "Prometheus text exposition format 0.0.4"},
                {"content", {{"text/plain; version=0.0.4", {{"schema", {{"type", "string"}}}}}}}}},
              {"401", {{"description", "missing or wrong Basic credentials"}}}}},
            {"security", Json::array({Json{{"basic", Json::array()}}, Json::object()})}};
    return Json{{"openapi", "3.0.3"},
                {"info", {{"title", "mqttd REST API v2 (EMQ 2.x compatible)"}, {"version", "2"}}},
                {"components",
                 {{"securitySchemes", {{"basic", {{"type", "http"}, {"scheme", "basic"}}}}}}},
                {"paths", std::move(paths)}};
}

}  // namespace mqttd::api::detail
