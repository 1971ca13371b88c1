// The mqttd command line:
//
//   mqttd [-c FILE] [--data-dir DIR] [--set KEY=VALUE]... [--recover] [--version] [--help]
//   mqttd --restore BACKUP [--force] [-c FILE] [--data-dir DIR]
//
// Parsed with CLI11 (as `mqttd ctl` is); options also take the `--opt=value` form. `--data-dir DIR`
// is `--set node.data_dir=DIR`;
// `--recover` opens a damaged store knowingly (storage.wal_recovery = point_in_time, and a
// corrupt table or MANIFEST repaired on a copy).
// Parsing checks only the shape of the options; the keys and values of --set are checked by
// Config::load, like the file's.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace mqttd::config {

inline constexpr std::string_view kDefaultConfigFile = "data/mqttd.conf";

struct CommandLine {
    std::string config_file{kDefaultConfigFile};
    bool config_file_given = false;
    std::optional<std::string> data_dir;  // --data-dir (also present in `sets`)
    // Every --set and --data-dir in command line order (a later one wins).
    std::vector<std::pair<std::string, std::string>> sets;
    bool recover = false;  // --recover (also present in `sets` as storage.wal_recovery)
    // --restore BACKUP: copy that backup into the data directory's store and exit
    // (storage/backup.h); --force replaces a store that is there.
    std::optional<std::string> restore;
    bool force = false;
    bool help = false;     // -h, --help: print usage_text() and exit 0
    bool version = false;  // -v, -V, --version: print the version and exit 0
};

// argv[0] is the program name and is skipped. Error: one line, CLI11's words for the shape
// (e.g. `The following argument was not expected: --foo (see --help)`) or ours for the values
// (e.g. `--set needs KEY=VALUE, got "x"`).
Result<CommandLine, std::string> parse_command_line(int argc, const char* const* argv);

// The --help text: options, then every key with its default and description.
std::string usage_text(std::string_view program);

}  // namespace mqttd::config
