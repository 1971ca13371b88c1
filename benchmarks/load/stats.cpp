#include "stats.h"

#include <bit>
#include <chrono>
#include <cstdio>

#include <sys/resource.h>

#include "wire.h"

namespace mqttd::load {

SeqTracker::SeqTracker(std::uint32_t first_stream, std::uint32_t count)
    : first_(first_stream), streams_(count) {}

bool SeqTracker::record(std::uint64_t stamped_seq) {
    const auto stream = static_cast<std::uint32_t>(stamped_seq >> kStreamShift);
    const std::uint64_t n = stamped_seq & kSeqMask;
    if (stream < first_ || stream - first_ >= streams_.size()) {
        ++unexpected_;
        return false;
    }
    Stream& s = streams_[stream - first_];
    const std::size_t word = static_cast<std::size_t>(n >> 6);
    if (word >= s.bits.size()) {
        // Sequence numbers are dense from 0, so doubling keeps growth amortised.
        std::size_t grow = s.bits.size() < 64 ? 64 : s.bits.size() * 2;
        while (grow <= word) {
            grow *= 2;
        }
        s.bits.resize(grow, 0);
    }
    const std::uint64_t mask = std::uint64_t{1} << (n & 63);
    if ((s.bits[word] & mask) != 0) {
        ++duplicates_;
        return false;
    }
    s.bits[word] |= mask;
    ++s.unique;
    ++unique_;
    return true;
}

std::uint64_t SeqTracker::unique_of(std::uint32_t stream) const {
    if (stream < first_ || stream - first_ >= streams_.size()) {
        return 0;
    }
    return streams_[stream - first_].unique;
}

LatencyHistogram::LatencyHistogram() : buckets_(std::size_t{64} << kSubBits, 0) {}

void LatencyHistogram::record(std::uint64_t ns) {
    // Values below 2^kSubBits map linearly; above, the top kSubBits+1 bits pick the bucket.
    std::size_t idx = 0;
    if (ns < (std::uint64_t{1} << kSubBits)) {
        idx = static_cast<std::size_t>(ns);
    } else {
        const int msb = 63 - std::countl_zero(ns);
        const int shift = msb - kSubBits;
        const auto sub = static_cast<std::size_t>((ns >> shift) & ((1U << kSubBits) - 1));
        idx = (static_cast<std::size_t>(shift + 1) << kSubBits) + sub;
    }
    if (idx >= buckets_.size()) {
        idx = buckets_.size() - 1;
    }
    ++buckets_[idx];
    ++count_;
    if (ns > max_ns_) {
        max_ns_ = ns;
    }
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        buckets_[i] += other.buckets_[i];
    }
    count_ += other.count_;
    if (other.max_ns_ > max_ns_) {
        max_ns_ = other.max_ns_;
    }
}

double LatencyHistogram::percentile_us(double q) const {
    if (count_ == 0) {
        return 0.0;
    }
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_));
    if (rank >= count_) {
        rank = count_ - 1;
    }
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen > rank) {
            // Midpoint of the bucket's value range.
            const std::size_t shift_plus_one = i >> kSubBits;
            const std::uint64_t sub = i & ((1U << kSubBits) - 1);
            if (shift_plus_one == 0) {
                return static_cast<double>(sub) / 1000.0;
            }
            const std::size_t shift = shift_plus_one - 1;
            const std::uint64_t lo = ((std::uint64_t{1} << kSubBits) | sub) << shift;
            const std::uint64_t width = std::uint64_t{1} << shift;
            const double mid = static_cast<double>(lo) + static_cast<double>(width) / 2.0;
            const double v =
                    mid < static_cast<double>(max_ns_) ? mid : static_cast<double>(max_ns_);
            return v / 1000.0;
        }
    }
    return max_us();
}

std::string LatencyHistogram::json() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
                  percentile_us(0.50), percentile_us(0.95), percentile_us(0.99), max_us());
    return buf;
}

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::steady_clock::now().time_since_epoch())
                                              .count());
}

double process_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto secs = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    return secs(ru.ru_utime) + secs(ru.ru_stime);
}

}  // namespace mqttd::load
