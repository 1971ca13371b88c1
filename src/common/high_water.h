// HighWater: a count that many threads change, with the highest value it has reached. The
// maximum is raised on every change (not sampled), so a burst between two reads still shows.
// Thread-safe (atomics, relaxed: readers want a recent value, not an ordering).
#pragma once

#include <atomic>
#include <cstdint>

namespace mqttd {

class HighWater {
public:
    void add(int64_t delta) {
        int64_t v = now_.fetch_add(delta, std::memory_order_relaxed) + delta;
        if (v > 0) {
            raise(static_cast<uint64_t>(v));
        }
    }
    // Raises the maximum to `v` if it is higher (a value counted elsewhere).
    void raise(uint64_t v) {
        uint64_t m = max_.load(std::memory_order_relaxed);
        while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {}
    }
    uint64_t max() const { return max_.load(std::memory_order_relaxed); }

private:
    std::atomic<int64_t> now_{0};
    std::atomic<uint64_t> max_{0};
};

}  // namespace mqttd
