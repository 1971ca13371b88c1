#include "api/node_info.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include <sys/resource.h>

#include "common/uptime.h"

namespace mqttd::api {
namespace {

// The value in kB of a "Name:   1234 kB" line of a /proc file, in bytes; 0 when absent.
uint64_t proc_kb(const char* path, std::string_view name) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(name) && line.size() > name.size() && line[name.size()] == ':') {
            return std::strtoull(line.c_str() + name.size() + 1, nullptr, 10) * 1024;
        }
    }
    return 0;
}

std::string two_decimals(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

}  // namespace

std::string format_datetime(int64_t unix_ms) {
    std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string format_uptime(int64_t seconds) {
    return mqttd::format_uptime(seconds);
}

std::string format_megabytes(uint64_t bytes) {
    return two_decimals(static_cast<double>(bytes) / (1024.0 * 1024.0)) + "M";
}

ProcessFigures process_figures() {
    ProcessFigures f;
    f.memory_total = proc_kb("/proc/meminfo", "MemTotal");
    f.memory_used = proc_kb("/proc/self/status", "VmRSS");
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        f.max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : static_cast<uint64_t>(rl.rlim_cur);
    }
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) != 3) {
        load[0] = load[1] = load[2] = 0;
    }
    f.load1 = two_decimals(load[0]);
    f.load5 = two_decimals(load[1]);
    f.load15 = two_decimals(load[2]);
    return f;
}

std::string build_description() {
    std::string out;
#if defined(__clang__)
    out = "Clang " __clang_version__;
#elif defined(__GNUC__)
    out = "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
          std::to_string(__GNUC_PATCHLEVEL__);
#else
    out = "unknown compiler";
#endif
#if __cplusplus >= 202302L
    out += " / C++23";
#elif __cplusplus >= 202002L
    out += " / C++20";
#else
    out += " / C++17";
#endif
    return out;
}

}  // namespace mqttd::api
