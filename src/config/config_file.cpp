#include "config/config_file.h"

#include <cctype>
#include <cerrno>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mqttd::config {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// The rest of a line after a value: only whitespace and an optional comment may follow.
bool only_comment(std::string_view rest) {
    rest = trim(rest);
    return rest.empty() || rest.front() == '#';
}

Result<std::string, std::string> parse_value_text(std::string_view raw) {
    std::string_view v = trim(raw);
    if (!v.empty() && v.front() == '"') {
        std::string out;
        for (size_t i = 1; i < v.size(); ++i) {
            const char c = v[i];
            if (c == '"') {
                if (!only_comment(v.substr(i + 1))) {
                    return Err{std::string("unexpected text after the closing quote")};
                }
                return out;
            }
            if (c == '\\' && i + 1 < v.size() && (v[i + 1] == '"' || v[i + 1] == '\\')) {
                out += v[++i];
            } else {
                out += c;
            }
        }
        return Err{std::string("missing closing quote")};
    }
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '#' && i > 0 && is_space(v[i - 1])) {
            return std::string(trim(v.substr(0, i)));
        }
    }
    return std::string(v);
}

bool valid_key(std::string_view key) {
    if (key.empty()) {
        return false;
    }
    for (char c : key) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) == 0 && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

std::string errno_text(int err) {
    return std::error_code(err, std::generic_category()).message();
}

}  // namespace

Result<std::vector<FileEntry>, std::string> parse_config_text(std::string_view text,
                                                              std::string_view name) {
    std::vector<FileEntry> entries;
    int line_no = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) {
            nl = text.size();
        }
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        const std::string where = std::string(name) + ":" + std::to_string(line_no) + ": ";

        line = trim(line);
        if (line.empty() || line.front() == '#') {
            continue;
        }
        const size_t eq = line.find('=');
        if (eq == std::string_view::npos) {
            return Err{where + "expected \"key = value\", got \"" + std::string(line) + "\""};
        }
        std::string key(trim(line.substr(0, eq)));
        if (!valid_key(key)) {
            return Err{where + "\"" + key + "\" is not a valid key"};
        }
        auto value = parse_value_text(line.substr(eq + 1));
        if (!value) {
            return Err{where + key + ": " + value.error()};
        }
        for (const FileEntry& e : entries) {
            if (e.key == key) {
                return Err{where + key + ": set twice (first on line " + std::to_string(e.line) +
                           ")"};
            }
        }
        entries.push_back(FileEntry{line_no, std::move(key), std::move(value).value()});
    }
    return entries;
}

Result<std::string, std::string> read_config_file(const std::string& path) {
    const std::string prefix = "cannot read config file " + path + ": ";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return Err{prefix + errno_text(errno)};
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        return Err{prefix + errno_text(err)};
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        return Err{prefix + errno_text(EISDIR)};
    }
    if (st.st_size > static_cast<off_t>(kMaxConfigFileSize)) {
        ::close(fd);
        return Err{prefix + "larger than " + std::to_string(kMaxConfigFileSize >> 20) + " MiB"};
    }
    std::string text;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            ::close(fd);
            return Err{prefix + errno_text(err)};
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxConfigFileSize) {
            ::close(fd);
            return Err{prefix + "larger than " + std::to_string(kMaxConfigFileSize >> 20) + " MiB"};
        }
    }
    ::close(fd);
    return text;
}

}  // namespace mqttd::config
