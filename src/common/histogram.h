// Histogram: a fixed-bucket histogram of unsigned values for Prometheus (`_bucket{le}`, `_sum`,
// `_count`), cheap enough for a hot loop: observe() is a short linear search over the bounds and
// two relaxed atomic adds, with no lock and no allocation.
//
// BUCKETS. `bounds` are inclusive upper bounds, strictly increasing; a value above the last one
// falls in the implicit +Inf bucket. Bucket counts are kept per bucket (not cumulative);
// snapshot() makes them cumulative, as the exposition format wants, and takes the count from
// the buckets so that `_count` always equals the `+Inf` bucket. A snapshot taken while a writer
// runs may see a sum that lags or leads its buckets by the observations in flight.
//
// Ownership: owns its counters; the bounds are copied at construction.
// Thread-safety: observe() and snapshot() from any thread.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace mqttd {

struct HistogramSnapshot {
    std::vector<uint64_t> bounds;      // inclusive upper bounds, without +Inf
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries; the last is +Inf
    uint64_t sum = 0;
    uint64_t count = 0;  // == cumulative.back()
};

class Histogram {
public:
    // REQUIRES: `bounds` strictly increasing.
    Histogram(std::initializer_list<uint64_t> bounds)
        : bounds_(bounds), buckets_(bounds_.size() + 1) {
        for (size_t i = 1; i < bounds_.size(); ++i) {
            assert(bounds_[i - 1] < bounds_[i]);
        }
    }
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    void observe(uint64_t v) {
        size_t i = 0;
        while (i < bounds_.size() && v > bounds_[i]) {
            ++i;
        }
        buckets_[i].fetch_add(1, std::memory_order_relaxed);
        sum_.fetch_add(v, std::memory_order_relaxed);
    }

    HistogramSnapshot snapshot() const {
        HistogramSnapshot s;
        s.bounds = bounds_;
        s.cumulative.reserve(buckets_.size());
        uint64_t running = 0;
        for (const auto& b : buckets_) {
            running += b.load(std::memory_order_relaxed);
            s.cumulative.push_back(running);
        }
        s.count = running;
        s.sum = sum_.load(std::memory_order_relaxed);
        return s;
    }

private:
    const std::vector<uint64_t> bounds_;
    std::vector<std::atomic<uint64_t>> buckets_;
    std::atomic<uint64_t> sum_{0};
};

}  // namespace mqttd
