// `mqttd inspect`: a read-only look at a store, also while its broker runs.
//
//   mqttd inspect [--data-dir DIR] [--json] [--limit N]
//                 sessions | session ID | queue ID | retained FILTER | config | stats
//
// The store (<DIR>/db) is opened as a RocksDB secondary instance (storage::Options::
// secondary_dir, in a temporary directory removed at exit): it takes no lock, writes nothing
// into the data directory and never blocks the running broker; it sees what the broker had
// written when it opened, recovered from the WAL as after a crash. Records are decoded by
// storage's own schema code (the Store interface). Output: a table per command, or JSON with
// --json. Exit status: 0, 1 on an error (one line on stderr, e.g. no store, no such session),
// 2 on a usage error.
//
// Thread-safety: runs on the calling thread only.
#pragma once

namespace mqttd::tools {

// argv[0] is "inspect". Prints to stdout; returns the exit status.
int inspect_main(int argc, const char* const* argv);

}  // namespace mqttd::tools
