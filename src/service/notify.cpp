#include "service/notify.h"

#include <chrono>
#include <string>

#ifdef MQTTD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace mqttd::service {
namespace {

void notify(const std::string& state) {
#ifdef MQTTD_HAVE_SYSTEMD
    // The result is not checked: a service manager that does not listen changes nothing here.
    (void)sd_notify(0, state.c_str());
#else
    (void)state;
#endif
}

}  // namespace

bool notify_supported() {
#ifdef MQTTD_HAVE_SYSTEMD
    return true;
#else
    return false;
#endif
}

void notify_ready(std::string_view status) {
    notify("READY=1\nSTATUS=" + std::string(status));
}

void notify_stopping(std::string_view status) {
    notify("STOPPING=1\nSTATUS=" + std::string(status));
}

Watchdog::Watchdog() {
#ifdef MQTTD_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        interval_us_ = usec / 2;
    }
#endif
    if (interval_us_ == 0) {
        return;
    }
    thread_ = std::thread([this] {
        std::unique_lock lock(mutex_);
        while (!stop_) {
            notify("WATCHDOG=1");
            cv_.wait_for(lock, std::chrono::microseconds(interval_us_), [this] { return stop_; });
        }
    });
}

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

}  // namespace mqttd::service
