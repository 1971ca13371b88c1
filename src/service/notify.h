// systemd's notify protocol (sd_notify(3)) for `Type=notify` units: READY=1 once the listeners
// accept connections, STOPPING=1 when the clean stop begins, and WATCHDOG=1 every half of
// WATCHDOG_USEC while the process runs (`WatchdogSec=` in the unit). Outside systemd
// (NOTIFY_SOCKET unset) and in a build without libsystemd every call does nothing.
//
// Thread-safety: notify_ready/notify_stopping may be called from any thread. A Watchdog is
// owned by one thread; its pinging thread is joined by the destructor.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <thread>

namespace mqttd::service {

// True when mqttd was built with libsystemd.
bool notify_supported();

// READY=1 with STATUS=`status` (shown by `systemctl status`).
void notify_ready(std::string_view status);

// STOPPING=1 with STATUS=`status`.
void notify_stopping(std::string_view status);

// Pings WATCHDOG=1 from a thread of its own at half the interval systemd asks for
// (WATCHDOG_USEC, for this process when WATCHDOG_PID is set); nothing when it asks for none.
// The thread proves that the process is alive and scheduled, not that every worker progresses.
class Watchdog {
public:
    Watchdog();
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    // The ping interval in microseconds; 0 when the watchdog is off.
    uint64_t interval_us() const { return interval_us_; }

private:
    uint64_t interval_us_ = 0;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace mqttd::service
