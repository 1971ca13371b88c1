#include "api/static_files.h"

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "api/url.h"

namespace mqttd::api {
namespace {

Response plain(int status, std::string text) {
    Response r;
    r.status = status;
    r.body = std::move(text);
    r.body += '\n';
    r.content_type = "text/plain; charset=utf-8";
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
}

std::string real_path(const std::string& p) {
    std::array<char, PATH_MAX> buf{};
    if (::realpath(p.c_str(), buf.data()) == nullptr) {
        return {};
    }
    return buf.data();
}

bool is_directory(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string binary_dir() {
    std::array<char, PATH_MAX> buf{};
    ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) {
        return {};
    }
    std::string exe(buf.data(), static_cast<size_t>(n));
    auto slash = exe.rfind('/');
    return slash == std::string::npos ? std::string(".") : exe.substr(0, slash);
}

}  // namespace

std::string_view content_type_of(std::string_view name) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 14> kTypes{{
            {".html", "text/html; charset=utf-8"},
            {".js", "text/javascript; charset=utf-8"},
            {".mjs", "text/javascript; charset=utf-8"},
            {".css", "text/css; charset=utf-8"},
            {".json", "application/json"},
            {".map", "application/json"},
            {".svg", "image/svg+xml"},
            {".png", "image/png"},
            {".ico", "image/x-icon"},
            {".txt", "text/plain; charset=utf-8"},
            {".md", "text/plain; charset=utf-8"},
            {".woff2", "font/woff2"},
            {".webp", "image/webp"},
            {".jpg", "image/jpeg"},
    }};
    for (const auto& [ext, type] : kTypes) {
        if (name.size() > ext.size() && name.ends_with(ext)) {
            return type;
        }
    }
    return "application/octet-stream";
}

std::string resolve_docroot(const std::string& configured, std::string& error) {
    std::vector<std::string> tried;
    if (!configured.empty()) {
        tried.push_back(configured);
    } else {
        std::string dir = binary_dir();
        tried.push_back(dir + "/../share/mqttd/www");
        tried.push_back(dir + "/www");
    }
    for (const auto& t : tried) {
        if (is_directory(t)) {
            return real_path(t);
        }
    }
    error = "dashboard: no directory of its files at ";
    for (size_t i = 0; i < tried.size(); ++i) {
        error += (i == 0 ? "" : " or ") + tried[i];
    }
    error += configured.empty() ? " (set dashboard.docroot)" : " (dashboard.docroot)";
    return {};
}

Response StaticFiles::serve(const Request& req) const {
    if (req.method != "GET" && req.method != "HEAD") {
        Response r = plain(405, "method not allowed");
        r.headers.emplace_back("Allow", "GET, HEAD");
        return r;
    }
    auto decoded = percent_decode(req.path, false);
    if (!decoded) {
        return plain(400, "malformed percent-encoding");
    }
    const std::string& path = *decoded;
    if (path.empty() || path.front() != '/') {
        return plain(404, "not found");
    }
    std::string relative;
    auto segs = split_path(path);
    for (size_t i = 0; i < segs.size(); ++i) {
        const std::string& s = segs[i];
        bool last = i + 1 == segs.size();
        if (s.empty()) {
            if (!last) {
                return plain(404, "not found");
            }
            relative += "index.html";
            break;
        }
        if (s.front() == '.' || s.find('\\') != std::string::npos ||
            s.find('\0') != std::string::npos) {
            return plain(404, "not found");
        }
        relative += s;
        if (!last) {
            relative += '/';
        }
    }
    if (relative.empty()) {
        relative = "index.html";
    }
    std::string file = real_path(root_ + "/" + relative);
    struct stat st {};
    if (file.empty() || !file.starts_with(root_ + "/") || ::stat(file.c_str(), &st) != 0 ||
        !S_ISREG(st.st_mode)) {
        return plain(404, "not found");
    }
    std::ostringstream tag;
    tag << "\"" << std::hex << st.st_size << "-" << st.st_mtim.tv_sec << "-" << st.st_mtim.tv_nsec
        << "\"";
    Response r;
    r.content_type = std::string(content_type_of(file));
    r.headers.emplace_back("ETag", tag.str());
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (r.content_type.starts_with("text/html")) {
        // The pages load only their own files and talk only to this origin (the REST API under
        // /api/v2/) and to the MQTT WebSocket listener of the live view.
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' "
                               "data:; frame-ancestors 'none'; base-uri 'none'; form-action "
                               "'none'");
        r.headers.emplace_back("Referrer-Policy", "no-referrer");
    }
    if (!req.if_none_match.empty() && req.if_none_match == tag.str()) {
        r.status = 304;
        return r;
    }
    if (req.method == "GET") {
        std::ifstream in(file, std::ios::binary);
        r.body.resize(static_cast<size_t>(st.st_size));
        if (!in.read(r.body.data(), static_cast<std::streamsize>(r.body.size()))) {
            return plain(404, "not found");
        }
    }
    return r;
}

}  // namespace mqttd::api
