// The emq_auth_username / emq_auth_clientid credential tables and the ACL file (mqttd's
// additions for issue 5; EMQ 2.x served the first two from the plugins themselves):
//   GET    auth_username              -> ["alice", ...] (sorted names; never a hash)
//   POST   auth_username              {"username": u, "password": p}
//   DELETE auth_username/{username}
//   the same three under auth_clientid with "clientid"
//   PUT    acl/reload                 -> {"file": path, "rules": n}
//
// The tables work whether or not their plugin is started (a plugin only decides whether the
// chain asks its table), as EMQ 2.x let an operator fill a table before starting the plugin.
// Writes go to the store synchronously (REST is a cold path) and are visible to the next
// CONNECT. Check-then-add runs under one mutex so two concurrent POSTs of one name cannot
// both succeed.
#include <mutex>

#include "api/detail.h"

namespace mqttd::api::detail {
namespace {

struct Table {
    const char* field;  // "username" / "clientid"
    const char* what;   // for messages
    broker::auth::CredentialStore* (broker::Admin::*store)();
};

const Table kUsernames{"username", "username", &broker::Admin::usernames};
const Table kClientIds{"clientid", "client id", &broker::Admin::client_ids};

std::mutex& add_mutex() {
    static std::mutex m;
    return m;
}

broker::auth::CredentialStore& table(Handler& h, const Table& t) {
    broker::auth::CredentialStore* store = (h.ctx().admin.*t.store)();
    if (store == nullptr) {
        throw ApiError{kUnknownError, std::string(t.what) + " table is not available"};
    }
    return *store;
}

// Bounds as the credential store and the auth chain apply them: a longer name or password
// could never authenticate (the chain refuses it before any provider).
void check_length(const std::string& value, const char* name) {
    if (value.size() > broker::auth::kMaxCredentialBytes) {
        throw ApiError{kBadParam, std::string(name) + " is longer than " +
                                          std::to_string(broker::auth::kMaxCredentialBytes) +
                                          " bytes"};
    }
}

Json list_names(Handler& h, const Table& t) {
    Json list = Json::array();
    for (auto& name : table(h, t).list()) {
        list.push_back(std::move(name));
    }
    return list;
}

Json add_name(Handler& h, Call& c, const Table& t) {
    std::string name = c.str(t.field);
    std::string password = c.str("password");
    if (name.empty() || password.empty()) {
        throw ApiError{kEmptyCredentials, std::string("empty ") + t.field + " or password"};
    }
    check_length(name, t.field);
    check_length(password, "password");
    auto& store = table(h, t);
    std::lock_guard lock(add_mutex());
    if (store.contains(name)) {
        throw ApiError{kUserExists, std::string(t.what) + " " + name + " exists already"};
    }
    if (auto st = store.add(name, password); !st.is_ok()) {
        throw ApiError{kUnknownError, "store write failed: " + st.to_string()};
    }
    return Json::array();
}

Json delete_name(Handler& h, Call& c, const Table& t) {
    const std::string& name = c.param(0);
    auto st = table(h, t).remove(name);
    if (st.is_not_found()) {
        throw ApiError{kNoSuchUser, std::string(t.what) + " " + name + " does not exist"};
    }
    if (!st.is_ok()) {
        throw ApiError{kUnknownError, "store write failed: " + st.to_string()};
    }
    return Json::array();
}

Json reload_acl(Handler& h, Call&) {
    auto r = h.ctx().admin.reload_acl();
    if (!r.error.empty()) {
        // The old rules stay; the message names the file and line ("acl.conf:7: ...").
        throw ApiError{kUnknownError, r.error};
    }
    return Json{{"file", r.path}, {"rules", r.rules}};
}

}  // namespace

void add_auth_routes(std::vector<Route>& r) {
    add(r, "GET", "auth_username", "List the usernames of emq_auth_username",
        [](Handler& h, Call&) { return list_names(h, kUsernames); });
    add(r, "POST", "auth_username",
        "Add a username ({\"username\": u, \"password\": p}) to emq_auth_username",
        [](Handler& h, Call& c) { return add_name(h, c, kUsernames); });
    add(r, "DELETE", "auth_username/:username", "Delete a username from emq_auth_username",
        [](Handler& h, Call& c) { return delete_name(h, c, kUsernames); });
    add(r, "GET", "auth_clientid", "List the client ids of emq_auth_clientid",
        [](Handler& h, Call&) { return list_names(h, kClientIds); });
    add(r, "POST", "auth_clientid",
        "Add a client id ({\"clientid\": c, \"password\": p}) to emq_auth_clientid",
        [](Handler& h, Call& c) { return add_name(h, c, kClientIds); });
    add(r, "DELETE", "auth_clientid/:clientid", "Delete a client id from emq_auth_clientid",
        [](Handler& h, Call& c) { return delete_name(h, c, kClientIds); });
    add(r, "PUT", "acl/reload", "Re-read mqtt.acl_file (a broken file keeps the old rules)",
        reload_acl);
}

}  // namespace mqttd::api::detail
