// Wall-clock and monotonic time in the units the broker stores and reports.
// Stateless; safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace mqttd {

// Milliseconds since the Unix epoch (what records store as timestamps).
inline int64_t unix_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Monotonic milliseconds, for timeouts and rates.
inline int64_t mono_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace mqttd
