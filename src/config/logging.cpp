#include "config/logging.h"

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "config/config.h"

namespace mqttd::config {
namespace {

std::optional<spdlog::level::level_enum> parse_level(std::string_view text) {
    // Our key uses "warning" and "critical" like EMQ; spdlog's names are "warn"/"critical".
    if (text == "trace") {
        return spdlog::level::trace;
    }
    if (text == "debug") {
        return spdlog::level::debug;
    }
    if (text == "info") {
        return spdlog::level::info;
    }
    if (text == "warning" || text == "warn") {
        return spdlog::level::warn;
    }
    if (text == "error" || text == "err") {
        return spdlog::level::err;
    }
    if (text == "critical") {
        return spdlog::level::critical;
    }
    if (text == "off") {
        return spdlog::level::off;
    }
    return std::nullopt;
}

}  // namespace

void init_console_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        auto logger = std::make_shared<spdlog::logger>(
                "mqttd", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
        logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
        logger->set_level(spdlog::level::info);
        // Warnings and errors reach the terminal even when the process dies right after.
        logger->flush_on(spdlog::level::warn);
        spdlog::set_default_logger(std::move(logger));
    });
}

bool set_log_level(std::string_view level) {
    const auto parsed = parse_level(level);
    if (!parsed) {
        return false;
    }
    spdlog::default_logger_raw()->set_level(*parsed);
    return true;
}

std::string_view log_level() {
    switch (spdlog::default_logger_raw()->level()) {
        case spdlog::level::trace:
            return "trace";
        case spdlog::level::debug:
            return "debug";
        case spdlog::level::info:
            return "info";
        case spdlog::level::warn:
            return "warning";
        case spdlog::level::err:
            return "error";
        case spdlog::level::critical:
            return "critical";
        case spdlog::level::off:
        case spdlog::level::n_levels:
            return "off";
    }
    return "off";
}

uint64_t init_logging(Config& config) {
    init_console_logging();
    set_log_level(config.get_text("log.console.level"));
    return config.subscribe("log.console.level", [](const std::string& level) {
        if (set_log_level(level)) {
            spdlog::info("log.console.level is now {}", level);
        }
    });
}

}  // namespace mqttd::config
