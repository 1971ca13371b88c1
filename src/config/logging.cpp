#include "config/logging.h"

#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "config/config.h"

namespace mqttd::config {
namespace {

constexpr const char* kTextPattern = "[%Y-%m-%d %H:%M:%S.%e] [%l] %v";

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

std::string_view level_word(spdlog::level::level_enum level) {
    switch (level) {
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

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629), 0 if there is none.
size_t utf8_length(std::string_view s, size_t i) {
    const auto b = [&](size_t k) {
        return static_cast<unsigned char>(s[i + k]);
    };
    const unsigned char c = b(0);
    size_t n = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (i + n > s.size() || b(1) < lo || b(1) > hi) {
        return 0;
    }
    for (size_t k = 2; k < n; ++k) {
        if (b(k) < 0x80 || b(k) > 0xbf) {
            return 0;
        }
    }
    return n;
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            if (const size_t n = utf8_length(s, i); n > 0) {
                out.append(s.substr(i, n));
                i += n;
            } else {
                out += "\\ufffd";
                ++i;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0x0f];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    out += '"';
}

class JsonFormatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const std::string line =
                json_log_line(msg.time, level_word(msg.level), msg.thread_id,
                              std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(line.data(), line.data() + line.size());
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>();
    }
};

std::unique_ptr<spdlog::formatter> make_formatter(std::string_view format) {
    if (format == "json") {
        return std::make_unique<JsonFormatter>();
    }
    return std::make_unique<spdlog::pattern_formatter>(kTextPattern);
}

// The sinks of the default logger. The logger's own level is the lower of the two, so a
// message neither sink wants is dropped before it is formatted.
struct Sinks {
    std::mutex mutex;
    std::shared_ptr<spdlog::sinks::sink> console;
    std::shared_ptr<spdlog::sinks::sink> file;  // null when log.file is empty
};

Sinks& sinks() {
    static Sinks s;
    return s;
}

void update_logger_level() {
    Sinks& s = sinks();
    std::lock_guard lock(s.mutex);
    auto level = s.console->level();
    if (s.file && s.file->level() < level) {
        level = s.file->level();
    }
    spdlog::default_logger_raw()->set_level(level);
}

}  // namespace

std::string json_log_line(std::chrono::system_clock::time_point time,
                          std::string_view level,
                          uint64_t thread,
                          std::string_view message) {
    const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    long millis = static_cast<long>(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[40];
    const size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string out;
    out.reserve(message.size() + 96);
    out += "{\"time\":\"";
    out.append(stamp, n);
    out += '.';
    out += static_cast<char>('0' + millis / 100);
    out += static_cast<char>('0' + millis / 10 % 10);
    out += static_cast<char>('0' + millis % 10);
    out += "Z\",\"level\":";
    append_json_string(out, level);
    out += ",\"thread\":";
    out += std::to_string(thread);
    out += ",\"message\":";
    append_json_string(out, message);
    out += '}';
    return out;
}

void init_console_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
        console->set_level(spdlog::level::info);
        sinks().console = console;
        auto logger = std::make_shared<spdlog::logger>("mqttd", console);
        logger->set_pattern(kTextPattern);
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
    init_console_logging();
    sinks().console->set_level(*parsed);
    update_logger_level();
    return true;
}

std::string_view log_level() {
    init_console_logging();
    return level_word(sinks().console->level());
}

Result<std::vector<uint64_t>, std::string> init_logging(Config& config) {
    init_console_logging();
    Sinks& s = sinks();
    const std::string path = config.get_string("log.file");
    const std::string format = config.get_string("log.format");
    std::shared_ptr<spdlog::sinks::sink> file;
    if (!path.empty()) {
        try {
            file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
                    path, static_cast<size_t>(config.get_int("log.file.max_size")),
                    static_cast<size_t>(config.get_int("log.file.count")));
        } catch (const std::exception& e) {
            return Err{"log.file = " + path + ": cannot open: " + e.what()};
        }
        file->set_level(
                parse_level(config.get_string("log.file.level")).value_or(spdlog::level::info));
        file->set_formatter(make_formatter(format));
    }
    s.console->set_formatter(make_formatter(format));
    s.console->set_level(
            parse_level(config.get_string("log.console.level")).value_or(spdlog::level::info));
    auto* logger = spdlog::default_logger_raw();
    {
        std::lock_guard lock(s.mutex);
        if (s.file) {
            auto& v = logger->sinks();
            std::erase(v, s.file);
        }
        s.file = file;
        if (file) {
            // Before the broker's threads start (REQUIRES of spdlog: sinks() is not locked).
            logger->sinks().push_back(file);
        }
    }
    update_logger_level();
    // A file line is on disk at once for warnings and errors; the rest every second.
    spdlog::flush_every(std::chrono::seconds(1));

    std::vector<uint64_t> ids;
    ids.push_back(config.subscribe("log.console.level", [](const std::string& level) {
        if (set_log_level(level)) {
            spdlog::info("log.console.level is now {}", level);
        }
    }));
    return ids;
}

}  // namespace mqttd::config
