#include "api/login_limiter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>

#include <spdlog/spdlog.h>

#include "common/clock.h"

namespace mqttd::api {

LoginLimiter::LoginLimiter(Options o) : opt_(o) {}

void LoginLimiter::refill(Bucket& b, int64_t now_ms) const {
    if (now_ms > b.refilled_ms) {
        b.tokens = std::min(opt_.burst, b.tokens + static_cast<double>(now_ms - b.refilled_ms) *
                                                           opt_.refill_per_s / 1000.0);
        b.refilled_ms = now_ms;
    }
}

void LoginLimiter::forget_idle(int64_t now_ms) {
    // Full buckets carry no state worth keeping but the warning flag; an attacker that comes
    // back after its bucket filled again is warned about again.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        refill(it->second, now_ms);
        it = it->second.tokens >= opt_.burst ? buckets_.erase(it) : std::next(it);
    }
    if (buckets_.size() >= opt_.max_sources) {
        buckets_.clear();
    }
}

LoginLimiter::Admission LoginLimiter::admit(const std::string& source) {
    const int64_t now = mono_ms();
    std::lock_guard lock(mu_);
    auto it = buckets_.find(source);
    if (it == buckets_.end()) {
        return {};
    }
    Bucket& b = it->second;
    refill(b, now);
    if (b.tokens >= 1) {
        return {};
    }
    throttled_.fetch_add(1, std::memory_order_relaxed);
    const auto wait_s = static_cast<uint32_t>(std::ceil((1 - b.tokens) / opt_.refill_per_s));
    return {false, std::max<uint32_t>(1, wait_s)};
}

void LoginLimiter::failed(const std::string& source) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    const int64_t now = mono_ms();
    std::lock_guard lock(mu_);
    auto it = buckets_.find(source);
    if (it == buckets_.end()) {
        if (buckets_.size() >= opt_.max_sources) {
            forget_idle(now);
        }
        it = buckets_.emplace(source, Bucket{opt_.burst, now, false}).first;
    }
    Bucket& b = it->second;
    refill(b, now);
    b.tokens = std::max(0.0, b.tokens - 1);
    if (b.tokens < 1 && !b.warned) {
        b.warned = true;
        spdlog::warn(
                "REST API: too many failed logins from {} ({:g} at once, then {:g} a minute); "
                "its logins are refused with 429 while it stays over (counted in "
                "api/auth/throttled); warned once",
                source, opt_.burst, opt_.refill_per_s * 60);
    }
}

bool LoginLimiter::admit_hash() {
    std::unique_lock lock(hash_mu_);
    if (hashing_ < opt_.max_hashing && queue_.empty()) {
        ++hashing_;
        return true;
    }
    const uint64_t ticket = next_ticket_++;
    queue_.push_back(ticket);
    const bool admitted = hash_cv_.wait_for(
            lock, std::chrono::milliseconds(std::max<int64_t>(0, opt_.max_hash_wait_ms)),
            [&] { return hashing_ < opt_.max_hashing && queue_.front() == ticket; });
    queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
    if (admitted) {
        ++hashing_;
    } else {
        busy_.fetch_add(1, std::memory_order_relaxed);
    }
    // The next in line may be free to go now (a slot left over, or this one gave up its turn).
    hash_cv_.notify_all();
    return admitted;
}

size_t LoginLimiter::waiting() const {
    std::lock_guard lock(hash_mu_);
    return queue_.size();
}

void LoginLimiter::end_hash() {
    {
        std::lock_guard lock(hash_mu_);
        --hashing_;
    }
    hash_cv_.notify_all();
}

}  // namespace mqttd::api
