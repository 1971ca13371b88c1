// Backups of the whole store, taken online from a running one, and restoring one into a data
// directory whose broker is stopped.
//
// LAYOUT (format 1). A backup is a directory under the backup directory (storage.backup_dir):
//   <backup_dir>/<name>/db/      a RocksDB checkpoint (Store::checkpoint): a complete store,
//                                table files hard-linked where the file system allows
//   <backup_dir>/<name>/BACKUP   text, one "key value" per line:
//                                  mqttd-backup 1
//                                  sequence <the RocksDB sequence number it is consistent at>
//                                  created_at_ms <Unix time in ms>
//                                  size <bytes of the files in db/>
// A backup is made in <backup_dir>/.<name>.partial and renamed to <name> once BACKUP is
// written and synced, so a listed backup is always complete; names starting with '.' are never
// listed. A name is 1..128 of [A-Za-z0-9._-], not starting with '.'.
//
// Thread-safety: the functions may run on any thread; creations are serialised among
// themselves. Cold path (REST, command line).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/status.h"
#include "storage/store.h"

namespace mqttd::storage {

struct BackupInfo {
    std::string name;
    std::string path;       // <backup_dir>/<name>
    uint64_t size = 0;      // bytes of the store's files (hard-linked ones counted in full)
    uint64_t sequence = 0;  // RocksDB sequence number the backup is consistent at
    int64_t created_at_ms = 0;
};

bool is_valid_backup_name(std::string_view name);

// Takes a backup of `store` named `name` (empty: "backup-YYYYMMDD-HHMMSS-mmm", UTC) under
// `backup_dir`, created if missing. Errors: InvalidArgument (bad name, name taken), IoError.
Result<BackupInfo, Status> create_backup(const Store& store,
                                         const std::string& backup_dir,
                                         const std::string& name);

// Every complete backup under `backup_dir`, oldest first; none when the directory is absent.
Result<std::vector<BackupInfo>, Status> list_backups(const std::string& backup_dir);

// Removes backup `name`. NotFound when there is no such backup; InvalidArgument for a bad name.
Status delete_backup(const std::string& backup_dir, const std::string& name);

// Copies the backup at `from` (a backup directory as above, or a store directory itself) into
// `db_dir` (the store directory of a data directory, <data_dir>/db). Refuses a `db_dir` that
// holds anything unless `force`, and even then one that a running mqttd holds. The copy is
// made beside `db_dir`, synced, opened once to check it is a store this mqttd reads, and only
// then put in place (replacing the old store when forced). Every error is one line.
Status restore_backup(const std::string& from, const std::string& db_dir, bool force);

}  // namespace mqttd::storage
