// Opening the store (internal to storage/; Store::open is defined with these in
// rocks_open.cpp): the data directory checks, the RocksDB options and column families, then the
// schema version check and the derived state kept in meta. Every error is one line saying what
// and where (DESIGN.md, Bad input): locked by another process, not writable, corrupt, missing,
// or a newer schema version.
// Cold path; functions of the opening thread.
#pragma once

#include <string>

#include "common/result.h"
#include "storage/counts.h"
#include "storage/rocks_db.h"
#include "storage/status.h"
#include "storage/store.h"

namespace mqttd::storage {

// What the store keeps in meta and loads once at open.
struct StoredState {
    PerCounted<uint64_t> counts{};
    MessageIdState ids;
};

// Checks (and creates, when allowed) options.dir and opens RocksDB with every family of
// kCfNames, plus the default family and any family this version does not know.
Result<RocksDb, Status> open_rocks_db(const Options& options);

// Checks the schema version (refusing a newer one, upgrading an older one in place) and loads
// the counts and the message id counter. `dir` is for error messages. `read_only` (a
// secondary instance): nothing is written, an older version is read as it is.
Result<StoredState, Status> load_stored_state(const RocksDb& db,
                                              const std::string& dir,
                                              bool read_only = false);

}  // namespace mqttd::storage
