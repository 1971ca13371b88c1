// Uptime in EMQ 2.x's wording, shared by the REST API (management/nodes `uptime`) and $SYS
// (`$SYS/brokers/<node>/uptime`): "32 seconds", "3 minutes, 32 seconds",
// "2 days, 1 hours, 0 minutes, 5 seconds". Negative is 0.
#pragma once

#include <cstdint>
#include <string>

namespace mqttd {

inline std::string format_uptime(int64_t seconds) {
    if (seconds < 0) {
        seconds = 0;
    }
    const int64_t days = seconds / 86400;
    const int64_t hours = seconds / 3600 % 24;
    const int64_t minutes = seconds / 60 % 60;
    std::string out;
    if (days > 0) {
        out += std::to_string(days) + " days, ";
    }
    if (days > 0 || hours > 0) {
        out += std::to_string(hours) + " hours, ";
    }
    if (days > 0 || hours > 0 || minutes > 0) {
        out += std::to_string(minutes) + " minutes, ";
    }
    out += std::to_string(seconds % 60) + " seconds";
    return out;
}

}  // namespace mqttd
