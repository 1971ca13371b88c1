// Node figures for management/nodes and monitoring/nodes (rest-api-v2.md, "Nodes"), read from
// the process and the kernel. The Erlang-named fields carry the nearest honest values of our
// runtime; api/README.md says which.
// Thread-safety: free functions, any thread.
#pragma once

#include <cstdint>
#include <string>

namespace mqttd::api {

// "2018-06-29 09:03:52", local time.
std::string format_datetime(int64_t unix_ms);
// "3 minutes, 32 seconds" / "2 days, 1 hours, 0 minutes, 5 seconds" (EMQ 2.x's wording).
std::string format_uptime(int64_t seconds);
// Bytes as EMQ writes them: "72.94M" (MiB with two decimals).
std::string format_megabytes(uint64_t bytes);

struct ProcessFigures {
    uint64_t memory_total = 0;         // MemTotal of /proc/meminfo (bytes)
    uint64_t memory_used = 0;          // VmRSS of /proc/self/status (bytes)
    uint64_t max_fds = 0;              // RLIMIT_NOFILE soft limit
    std::string load1, load5, load15;  // getloadavg, two decimals
};
ProcessFigures process_figures();

// "GCC 12.2.0 / C++20": the compiler and language standard of this build (otp_release).
std::string build_description();

}  // namespace mqttd::api
