// The REST API across the members of a cluster (src/cluster/README.md, "Cluster-wide REST").
// A member is asked through broker::ClusterView::ask, which carries the caller's Authorization
// and marks the request as passed on (Request::from_peer), so the member answers for itself
// and never passes it on again. Members are asked in parallel; the slowest bounds the answer
// (ClusterView's timeout).
#include <future>
#include <stdexcept>
#include <utility>

#include <spdlog/spdlog.h>

#include "api/detail.h"
#include "api/url.h"

namespace mqttd::api::detail {
namespace {

using PeerRequest = broker::ClusterView::PeerRequest;

// The request as `call` received it, for a member: same method, path, query and body.
PeerRequest peer_request(const Call& call) {
    const Request& req = call.request();
    PeerRequest out{req.method, req.path, req.authorization, req.body};
    char sep = '?';
    for (const auto& [k, v] : req.query) {
        out.target += sep;
        out.target += percent_encode(k);
        out.target += '=';
        out.target += percent_encode(v);
        sep = '&';
    }
    return out;
}

// One member's answer: its `result`, or why there is none.
struct PeerResult {
    std::string node;
    std::optional<Json> result;
    int code = kBadRpc;  // the member's error code when it answered one
    std::string error;
};

PeerResult parse_answer(const std::string& node,
                        const std::optional<broker::ClusterView::PeerAnswer>& answer,
                        const std::string& why) {
    PeerResult r{node, std::nullopt, kBadRpc, why};
    if (!answer) {
        return r;
    }
    Json body = Json::parse(answer->body, nullptr, false);
    if (!body.is_object() || !body.contains("code") || !body["code"].is_number_integer()) {
        r.error = "node " + node + " answered HTTP " + std::to_string(answer->status);
        return r;
    }
    r.code = body["code"].get<int>();
    if (r.code == kOk) {
        r.result = body.contains("result") ? std::move(body["result"]) : Json();
    } else {
        r.error = body.value("message", std::string("error"));
    }
    return r;
}

// Every running member but this node, asked the same request at once.
std::vector<PeerResult> ask_members(Handler& h,
                                    const broker::ClusterView& cluster,
                                    const Call& call) {
    PeerRequest req = peer_request(call);
    std::vector<std::pair<std::string, std::future<PeerResult>>> pending;
    for (const auto& n : cluster.nodes()) {
        if (!n.running || n.name == h.ctx().admin.node_name()) {
            continue;
        }
        pending.emplace_back(n.name,
                             std::async(std::launch::async, [&cluster, &req, name = n.name] {
                                 std::string why;
                                 auto answer = cluster.ask(name, req, &why);
                                 return parse_answer(name, answer, why);
                             }));
    }
    std::vector<PeerResult> out;
    for (auto& [name, f] : pending) {
        out.push_back(f.get());
    }
    return out;
}

// A member that could not answer a gathered request is left out of it, with a warning.
void warn_left_out(const Call& call, const PeerResult& r) {
    spdlog::warn("REST {} {}: node {} left out of the answer: {}", call.request().method,
                 call.request().path, r.node, r.error);
}

// Adds `more` (a member's result) to `into` (the results so far) for Scope::Gather.
void join(Json& into, Json more) {
    if (into.is_array() && more.is_array()) {
        for (auto& e : more) {
            into.push_back(std::move(e));
        }
    } else if (into.is_object() && more.is_object()) {
        auto a = into.find("objects");
        auto b = more.find("objects");
        if (a != into.end() && b != more.end() && a->is_array() && b->is_array()) {
            for (auto& e : *b) {
                a->push_back(std::move(e));
            }
        } else {
            into.update(more);
        }
    }
}

// Adds `more`'s numbers to `into`'s, key by key (Scope::Sum).
void add_numbers(Json& into, const Json& more) {
    if (!into.is_object() || !more.is_object()) {
        return;
    }
    for (const auto& [k, v] : more.items()) {
        auto it = into.find(k);
        if (it == into.end()) {
            into[k] = v;
        } else if (it->is_number_unsigned() && v.is_number_unsigned()) {
            *it = it->get<uint64_t>() + v.get<uint64_t>();
        } else if (it->is_number() && v.is_number()) {
            *it = it->get<double>() + v.get<double>();
        }
    }
}

// The position of `name` (":node") among a route's parameters, if it has it.
std::optional<size_t> param_index(const Route& route, std::string_view name) {
    size_t i = 0;
    for (const auto& seg : route.pattern) {
        if (!seg.empty() && (seg[0] == ':' || seg[0] == '*')) {
            if (std::string_view(seg).substr(1) == name) {
                return i;
            }
            ++i;
        }
    }
    return std::nullopt;
}

}  // namespace

void set_cluster_scopes(std::vector<Route>& routes) {
    struct Entry {
        const char* method;
        const char* path;
        Scope scope;
    };
    // Routes not listed answer for the node asked (Scope::Node): the per-node forms (which a
    // ":node" passes on), the paged lists of clients, sessions, subscriptions and routes, the
    // retained messages (stored on every node), publish (forwarded by the cluster layer) and
    // backups (of one node's store).
    static constexpr Entry kScopes[] = {
            {"GET", "management/nodes", Scope::Members},
            {"GET", "monitoring/nodes", Scope::Gather},
            {"GET", "monitoring/listeners", Scope::Gather},
            {"GET", "monitoring/metrics", Scope::Sum},
            {"GET", "monitoring/stats", Scope::Gather},
            {"GET", "configs", Scope::Gather},
            {"PUT", "configs/:app", Scope::Every},
            {"GET", "clients/:client_id", Scope::Gather},
            {"DELETE", "clients/:client_id", Scope::FirstFound},
            {"PUT", "clients/:client_id/clean_acl_cache", Scope::FirstFound},
            {"GET", "sessions/:client_id", Scope::Gather},
            {"DELETE", "sessions/:client_id", Scope::FirstFound},
            {"GET", "sessions/:client_id/mqueue", Scope::FirstFound},
            {"GET", "subscriptions/:client_id", Scope::Gather},
            {"GET", "routes/*topic", Scope::Gather},
            {"POST", "mqtt/subscribe", Scope::FirstFound},
            {"POST", "mqtt/unsubscribe", Scope::FirstFound},
            {"DELETE", "retained/*topic", Scope::Every},
            // Admin users and the auth plugins' lists are the cluster's, as the ACL file is:
            // changed through one node, changed on all.
            {"POST", "users", Scope::Every},
            {"PUT", "users/:username", Scope::Every},
            {"DELETE", "users/:username", Scope::Every},
            {"PUT", "change_pwd/:username", Scope::Every},
            {"POST", "auth_username", Scope::Every},
            {"DELETE", "auth_username/:username", Scope::Every},
            {"POST", "auth_clientid", Scope::Every},
            {"DELETE", "auth_clientid/:clientid", Scope::Every},
            {"PUT", "acl/reload", Scope::Every},
    };
    for (const auto& e : kScopes) {
        auto pattern = split_path(e.path);
        bool found = false;
        for (auto& r : routes) {
            if (r.method == e.method && r.pattern == pattern) {
                r.scope = e.scope;
                found = true;
            }
        }
        if (!found) {
            throw std::logic_error(std::string("cluster scope for no route: ") + e.path);
        }
    }
    for (auto& r : routes) {
        if (r.method == "GET" && r.pattern == split_path("management/nodes/:node")) {
            r.member_record = true;
        }
    }
}

bool asks_peers(const std::string& self,
                const Route& route,
                const std::vector<std::string>& params) {
    if (route.scope != Scope::Node) {
        return true;
    }
    auto idx = param_index(route, "node");
    return idx && *idx < params.size() && params[*idx] != self;
}

std::optional<Response> pass_on(Handler& h,
                                const broker::ClusterView& cluster,
                                const Route& route,
                                const Call& call) {
    auto idx = param_index(route, "node");
    if (!idx) {
        return std::nullopt;
    }
    const std::string& node = call.param(*idx);
    if (node == h.ctx().admin.node_name()) {
        return std::nullopt;
    }
    std::optional<broker::ClusterView::Node> member;
    for (auto& n : cluster.nodes()) {
        if (n.name == node) {
            member = std::move(n);
        }
    }
    if (!member) {
        throw ApiError{kBadRpc, "badrpc: unknown node " + node};
    }
    if (!member->running) {
        if (route.member_record) {
            return std::nullopt;
        }
        throw ApiError{kBadRpc, "badrpc: node " + node + " is not running"};
    }
    std::string why;
    auto answer = cluster.ask(node, peer_request(call), &why);
    if (!answer) {
        throw ApiError{kBadRpc, "badrpc: " + why};
    }
    Response r;
    r.status = answer->status;
    r.body = std::move(answer->body);
    return r;
}

Json answer(Handler& h, const broker::ClusterView& cluster, const Route& route, Call& call) {
    switch (route.scope) {
        case Scope::Node:
            break;
        case Scope::Gather:
        case Scope::Sum: {
            Json result = route.fn(h, call);
            for (auto& r : ask_members(h, cluster, call)) {
                if (!r.result) {
                    warn_left_out(call, r);
                } else if (route.scope == Scope::Gather) {
                    join(result, std::move(*r.result));
                } else {
                    add_numbers(result, *r.result);
                }
            }
            return result;
        }
        case Scope::Members: {
            // Each member lists every member; a running one's own entry is its live figures.
            Json result = route.fn(h, call);
            for (auto& r : ask_members(h, cluster, call)) {
                if (!r.result || !r.result->is_array()) {
                    warn_left_out(call, r);
                    continue;
                }
                for (auto& theirs : *r.result) {
                    if (!theirs.is_object() || theirs.value("name", "") != r.node) {
                        continue;
                    }
                    for (auto& ours : result) {
                        if (ours.is_object() && ours.value("name", "") == r.node) {
                            ours = std::move(theirs);
                            break;
                        }
                    }
                    break;
                }
            }
            return result;
        }
        case Scope::FirstFound: {
            try {
                return route.fn(h, call);
            } catch (const ApiError& here) {
                if (here.code != kClientOffline) {
                    throw;
                }
                const PeerResult* other_error = nullptr;
                auto results = ask_members(h, cluster, call);
                for (auto& r : results) {
                    if (r.result) {
                        return std::move(*r.result);
                    }
                    if (r.code != kClientOffline && other_error == nullptr) {
                        other_error = &r;
                    }
                }
                if (other_error != nullptr) {
                    throw ApiError{other_error->code, other_error->code == kBadRpc
                                                              ? "badrpc: " + other_error->error
                                                              : other_error->error};
                }
                throw;
            }
        }
        case Scope::Every: {
            Json result = route.fn(h, call);
            std::string failed;
            for (const auto& r : ask_members(h, cluster, call)) {
                if (!r.result) {
                    failed += (failed.empty() ? "" : "; ") + r.node + ": " + r.error;
                }
            }
            if (!failed.empty()) {
                throw ApiError{kBadRpc, "badrpc: done on " + h.ctx().admin.node_name() +
                                                " but not on every node (" + failed + ")"};
            }
            return result;
        }
    }
    return route.fn(h, call);
}

}  // namespace mqttd::api::detail
