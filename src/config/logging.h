// Logging for mqttd (spdlog): the console (stderr) and, with `log.file`, a file rotated by size
// (`log.file.max_size`; `log.file.count` rotated files kept: for mqttd.log, mqttd.1.log is the
// newest), each with its own level (`log.console.level`, `log.file.level`), both in `log.format`:
//   text  `[2024-05-01 12:00:00.123] [info] text` (local time)
//   json  one object per line, for log shippers:
//         {"time":"2024-05-01T10:00:00.123Z","level":"info","thread":1234,"message":"text"}
//         time is ISO 8601 UTC with milliseconds; the message is escaped as RFC 8259 asks
//         (quotes, backslash, every control character) and bytes that are not UTF-8 become
//         U+FFFD, so every line parses whatever the message holds.
// log.console.level follows its key at run time (REST PUT /api/v2/configs/emqttd); the other
// keys are read at start (the spec's list of hot keys has only the console level).
//
// Thread-safety: all functions may be called from any thread (spdlog's sinks lock, levels are
// atomic).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mqttd::config {

class Config;

// Installs the stderr logger as spdlog's default and sets its level; safe to call before a
// Config exists (level info, text). Idempotent.
void init_console_logging();

// init_console_logging(), the levels and format from `config`, the file sink when log.file
// is set, and a listener on log.console.level. Error (nothing changed): one line, e.g.
// `log.file = /x/y.log: cannot open: ...`. Returns the listener ids (Config::unsubscribe);
// REQUIRES: `config` outlives the logger's use of it, i.e. unsubscribe before destroying
// `config` if logging continues after.
Result<std::vector<uint64_t>, std::string> init_logging(Config& config);

// Sets the console's level: debug|info|warning|error|critical|off (also trace, warn, err).
// Returns false, changing nothing, for any other text.
bool set_log_level(std::string_view level);

// The console's level in log.console.level's words ("info", "warning", ...).
std::string_view log_level();

// One log line in the json format, without the newline. `level` is log.console.level's word.
std::string json_log_line(std::chrono::system_clock::time_point time,
                          std::string_view level,
                          uint64_t thread,
                          std::string_view message);

}  // namespace mqttd::config
