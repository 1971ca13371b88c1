// Console logging for mqttd: spdlog's default logger writes to stderr as
// `[2024-05-01 12:00:00.123] [info] text`, at the level of `log.console.level`, and follows
// changes of that key at run time (REST PUT /api/v2/configs/emqttd).
//
// Thread-safety: all functions may be called from any thread (spdlog's level is atomic).
#pragma once

#include <cstdint>
#include <string_view>

namespace mqttd::config {

class Config;

// Installs the stderr logger as spdlog's default and sets its level; safe to call before a
// Config exists (level info). Idempotent.
void init_console_logging();

// init_console_logging(), the level from `config`, and a listener on log.console.level.
// Returns the listener id (Config::unsubscribe); REQUIRES: `config` outlives the logger's use
// of it, i.e. unsubscribe before destroying `config` if logging continues after.
uint64_t init_logging(Config& config);

// Sets the level of the default logger: debug|info|warning|error|critical|off (also
// trace, warn, err). Returns false, changing nothing, for any other text.
bool set_log_level(std::string_view level);

// The default logger's level in log.console.level's words ("info", "warning", ...).
std::string_view log_level();

}  // namespace mqttd::config
