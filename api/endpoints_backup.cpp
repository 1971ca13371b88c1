// Backups (an addition to the spec, api/README.md): POST takes an online snapshot of the whole
// store through broker::Admin while the broker serves, GET lists them, DELETE removes one. They
// live under storage.backup_dir (default <node.data_dir>/backups); `mqttd --restore` puts one
// back (README.md).
#include "api/detail.h"
#include "api/node_info.h"

namespace mqttd::api::detail {
namespace {

Json backup_json(const storage::BackupInfo& b) {
    return Json{{"name", b.name},
                {"path", b.path},
                {"size", b.size},
                {"sequence", b.sequence},
                {"created_at", format_datetime(b.created_at_ms)},
                {"created_at_ms", b.created_at_ms}};
}

[[noreturn]] void backup_error(const storage::Status& s) {
    const std::string msg = s.message().empty() ? s.to_string() : s.message();
    throw ApiError{s.code() == storage::Status::Code::InvalidArgument ||
                                   s.code() == storage::Status::Code::NotFound
                           ? kBadParam
                           : kUnknownError,
                   msg};
}

Json create(Handler& h, Call& c) {
    std::string name;
    if (!c.body_empty()) {
        name = c.opt_str("name").value_or("");
    }
    auto r = h.ctx().admin.backup(h.ctx().config.backup_dir(), name);
    if (!r) {
        backup_error(r.error());
    }
    return backup_json(*r);
}

Json list(Handler& h, Call&) {
    auto r = h.ctx().admin.backups(h.ctx().config.backup_dir());
    if (!r) {
        backup_error(r.error());
    }
    Json out = Json::array();
    for (const auto& b : *r) {
        out.push_back(backup_json(b));
    }
    return out;
}

Json remove(Handler& h, Call& c) {
    if (auto s = h.ctx().admin.delete_backup(h.ctx().config.backup_dir(), c.param(0)); !s.is_ok()) {
        backup_error(s);
    }
    return Json::array();
}

}  // namespace

void add_backup_routes(std::vector<Route>& r) {
    add(r, "POST", "backup",
        "Take a consistent online backup of the whole store ({\"name\": optional}); the "
        "result gives its path, size and sequence number",
        create);
    add(r, "GET", "backup", "List the backups", list);
    add(r, "DELETE", "backup/:name", "Delete a backup", remove);
}

}  // namespace mqttd::api::detail
