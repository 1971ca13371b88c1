// Backups and restore; the layout is described in storage/backup.h.
#include "storage/backup.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "storage/rocks_open.h"

namespace mqttd::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kInfoFile = "BACKUP";
constexpr const char* kFormatLine = "mqttd-backup 1";

std::mutex& create_mutex() {
    static std::mutex m;
    return m;
}

std::string errno_text() {
    return std::strerror(errno);
}

// fsync of a file or directory, so a rename or a copy survives a power cut.
Status sync_path(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return Status::io_error("cannot open " + p.string() + ": " + errno_text());
    }
    const int rc = ::fsync(fd);
    const std::string err = rc != 0 ? errno_text() : std::string();
    ::close(fd);
    if (rc != 0) {
        return Status::io_error("cannot sync " + p.string() + ": " + err);
    }
    return Status::ok();
}

uint64_t files_size(const fs::path& dir) {
    uint64_t total = 0;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
        std::error_code fec;
        if (e.is_regular_file(fec)) {
            total += static_cast<uint64_t>(e.file_size(fec));
        }
    }
    return total;
}

std::string generated_name(int64_t now_ms) {
    const std::time_t secs = static_cast<std::time_t>(now_ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "backup-%Y%m%d-%H%M%S", &tm);
    char ms[8];
    std::snprintf(ms, sizeof ms, "-%03d", static_cast<int>(now_ms % 1000));
    return std::string(buf) + ms;
}

Status write_info(const fs::path& file, const BackupInfo& info) {
    {
        std::ofstream out(file, std::ios::trunc);
        out << kFormatLine << "\nsequence " << info.sequence << "\ncreated_at_ms "
            << info.created_at_ms << "\nsize " << info.size << "\n";
        out.flush();
        if (!out) {
            return Status::io_error("cannot write " + file.string());
        }
    }
    return sync_path(file);
}

// Reads <dir>/BACKUP; nullopt-like error when it is not a backup of this format.
Result<BackupInfo, Status> read_info(const fs::path& dir) {
    std::ifstream in(dir / kInfoFile);
    std::string line;
    if (!in || !std::getline(in, line) || line != kFormatLine) {
        return Err{Status::not_found(dir.string() + " is not an mqttd backup")};
    }
    BackupInfo info;
    info.name = dir.filename().string();
    info.path = dir.string();
    while (std::getline(in, line)) {
        const size_t sp = line.find(' ');
        if (sp == std::string::npos) {
            continue;
        }
        const std::string key = line.substr(0, sp);
        const std::string value = line.substr(sp + 1);
        uint64_t u = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), u);
        if (ec != std::errc() || p != value.data() + value.size()) {
            continue;
        }
        if (key == "sequence") {
            info.sequence = u;
        } else if (key == "created_at_ms") {
            info.created_at_ms = static_cast<int64_t>(u);
        } else if (key == "size") {
            info.size = u;
        }
    }
    return info;
}

bool has_entries(const fs::path& dir) {
    std::error_code ec;
    return fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
}

// Copies the flat store directory `from` into the new directory `to`, every file synced.
Status copy_store(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::create_directories(to, ec);
    if (ec) {
        return Status::io_error("cannot create " + to.string() + ": " + ec.message());
    }
    for (const auto& e : fs::directory_iterator(from, ec)) {
        std::error_code fec;
        if (!e.is_regular_file(fec)) {
            continue;
        }
        const fs::path target = to / e.path().filename();
        fs::copy_file(e.path(), target, fs::copy_options::overwrite_existing, fec);
        if (fec) {
            return Status::io_error("cannot copy " + e.path().string() + " to " + target.string() +
                                    ": " + fec.message());
        }
        if (Status s = sync_path(target); !s.is_ok()) {
            return s;
        }
    }
    if (ec) {
        return Status::io_error("cannot read " + from.string() + ": " + ec.message());
    }
    return sync_path(to);
}

// Opens the store at `dir` as the broker would, and closes it: a lock held by a running
// mqttd, a corrupt store or a newer schema is reported here.
Status open_and_close(const std::string& dir) {
    Options o;
    o.dir = dir;
    o.create_if_missing = false;
    auto db = open_rocks_db(o);
    if (!db) {
        return db.error();
    }
    auto state = load_stored_state(*db, dir);
    if (!state) {
        return state.error();
    }
    return Status::ok();
}

}  // namespace

bool is_valid_backup_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '.') {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

Result<BackupInfo, Status> create_backup(const Store& store,
                                         const std::string& backup_dir,
                                         const std::string& name) {
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
    std::lock_guard lock(create_mutex());
    std::error_code ec;
    fs::create_directories(backup_dir, ec);
    if (ec) {
        return Err{Status::io_error("cannot create backup directory " + backup_dir + ": " +
                                    ec.message())};
    }
    std::string chosen = name;
    if (chosen.empty()) {
        chosen = generated_name(now_ms);
        for (int n = 2; fs::exists(fs::path(backup_dir) / chosen, ec); ++n) {
            chosen = generated_name(now_ms) + "-" + std::to_string(n);
        }
    } else if (!is_valid_backup_name(chosen)) {
        return Err{Status::invalid_argument(
                "backup name " + chosen +
                " is not 1..128 of A-Z a-z 0-9 . _ - (not starting with '.')")};
    }
    const fs::path final_dir = fs::path(backup_dir) / chosen;
    if (fs::exists(final_dir, ec)) {
        return Err{Status::invalid_argument("backup " + chosen + " exists")};
    }
    const fs::path partial = fs::path(backup_dir) / ("." + chosen + ".partial");
    fs::remove_all(partial, ec);  // left by an earlier attempt that did not finish
    fs::create_directories(partial, ec);
    if (ec) {
        return Err{Status::io_error("cannot create " + partial.string() + ": " + ec.message())};
    }
    auto fail = [&partial](Status s) -> Result<BackupInfo, Status> {
        std::error_code rec;
        fs::remove_all(partial, rec);
        return Err{std::move(s)};
    };
    auto sequence = store.checkpoint((partial / "db").string());
    if (!sequence) {
        return fail(sequence.error());
    }
    BackupInfo info;
    info.name = chosen;
    info.path = final_dir.string();
    info.sequence = *sequence;
    info.created_at_ms = now_ms;
    info.size = files_size(partial / "db");
    if (Status s = write_info(partial / kInfoFile, info); !s.is_ok()) {
        return fail(std::move(s));
    }
    fs::rename(partial, final_dir, ec);
    if (ec) {
        return fail(Status::io_error("cannot rename " + partial.string() + " to " +
                                     final_dir.string() + ": " + ec.message()));
    }
    if (Status s = sync_path(backup_dir); !s.is_ok()) {
        return Err{std::move(s)};
    }
    return info;
}

Result<std::vector<BackupInfo>, Status> list_backups(const std::string& backup_dir) {
    std::vector<BackupInfo> out;
    std::error_code ec;
    if (!fs::exists(backup_dir, ec)) {
        return out;
    }
    for (const auto& e : fs::directory_iterator(backup_dir, ec)) {
        const std::string n = e.path().filename().string();
        std::error_code dec;
        if (n.empty() || n.front() == '.' || !e.is_directory(dec)) {
            continue;
        }
        if (auto info = read_info(e.path())) {
            out.push_back(std::move(*info));
        }
    }
    if (ec) {
        return Err{Status::io_error("cannot read backup directory " + backup_dir + ": " +
                                    ec.message())};
    }
    std::sort(out.begin(), out.end(), [](const BackupInfo& a, const BackupInfo& b) {
        return a.created_at_ms != b.created_at_ms ? a.created_at_ms < b.created_at_ms
                                                  : a.name < b.name;
    });
    return out;
}

Status delete_backup(const std::string& backup_dir, const std::string& name) {
    if (!is_valid_backup_name(name)) {
        return Status::invalid_argument("backup name " + name + " is not valid");
    }
    const fs::path dir = fs::path(backup_dir) / name;
    if (!read_info(dir)) {
        return Status::not_found("no backup " + name + " in " + backup_dir);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) {
        return Status::io_error("cannot delete " + dir.string() + ": " + ec.message());
    }
    return Status::ok();
}

Status restore_backup(const std::string& from, const std::string& db_dir, bool force) {
    std::error_code ec;
    fs::path source = fs::path(from) / "db";
    if (!fs::exists(source / "CURRENT", ec)) {
        source = fs::path(from);
        if (!fs::exists(source / "CURRENT", ec)) {
            return Status::not_found(from + " is not an mqttd backup (no db/CURRENT in it)");
        }
    }
    const fs::path target = fs::path(db_dir).lexically_normal();
    const bool occupied = has_entries(target);
    if (occupied) {
        if (!force) {
            return Status::invalid_argument("data directory store " + target.string() +
                                            " is not empty; --force replaces it");
        }
        // Refuses a store a running mqttd holds; a damaged one may be replaced.
        if (Status s = open_and_close(target.string()); s.code() == Status::Code::Busy) {
            return s;
        }
    }
    const fs::path staging = target.string() + ".restoring";
    fs::remove_all(staging, ec);
    if (Status s = copy_store(source, staging); !s.is_ok()) {
        fs::remove_all(staging, ec);
        return s;
    }
    if (Status s = open_and_close(staging.string()); !s.is_ok()) {
        fs::remove_all(staging, ec);
        return Status::corruption("backup " + from + " does not open: " +
                                  (s.message().empty() ? s.to_string() : s.message()));
    }
    if (occupied || fs::exists(target, ec)) {
        fs::remove_all(target, ec);
        if (ec) {
            return Status::io_error("cannot remove " + target.string() + ": " + ec.message());
        }
    }
    fs::rename(staging, target, ec);
    if (ec) {
        return Status::io_error("cannot rename " + staging.string() + " to " + target.string() +
                                ": " + ec.message());
    }
    return sync_path(target.parent_path().empty() ? fs::path(".") : target.parent_path());
}

}  // namespace mqttd::storage
