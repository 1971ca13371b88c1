// Exact delivery accounting and latency recording for the load generator.
//
// SeqTracker keeps one growable bitmap per stream a subscriber expects (a stream is one
// publisher in fanin/fanout/pairs, one session's topic in durable/restart), so every sequence
// number is counted once: a second arrival is a duplicate, a missing bit at the end is a loss.
// LatencyHistogram is log-linear (64 linear sub-buckets per power of two, < 1.6 % error),
// constant memory, O(1) record.
//
// Thread-safety: none; each object belongs to the event-loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mqttd::load {

class SeqTracker {
public:
    // Expects streams [first_stream, first_stream + count).
    SeqTracker(std::uint32_t first_stream, std::uint32_t count);

    // Records one arrival of the stamped 64-bit seq (stream << 48 | n); true when it is the
    // first arrival of that sequence number.
    bool record(std::uint64_t stamped_seq);

    [[nodiscard]] std::uint64_t unique() const { return unique_; }
    [[nodiscard]] std::uint64_t duplicates() const { return duplicates_; }
    [[nodiscard]] std::uint64_t unexpected() const { return unexpected_; }
    // Distinct arrivals from one stream (for the per-stream end-to-end window).
    [[nodiscard]] std::uint64_t unique_of(std::uint32_t stream) const;

private:
    struct Stream {
        std::vector<std::uint64_t> bits;
        std::uint64_t unique = 0;
    };
    std::uint32_t first_;
    std::vector<Stream> streams_;
    std::uint64_t unique_ = 0;
    std::uint64_t duplicates_ = 0;
    std::uint64_t unexpected_ = 0;
};

class LatencyHistogram {
public:
    LatencyHistogram();
    void record(std::uint64_t ns);
    void merge(const LatencyHistogram& other);
    [[nodiscard]] std::uint64_t count() const { return count_; }
    // Value in microseconds at quantile q in [0, 1]; 0 when empty.
    [[nodiscard]] double percentile_us(double q) const;
    [[nodiscard]] double max_us() const { return static_cast<double>(max_ns_) / 1000.0; }
    // {"p50":..,"p95":..,"p99":..,"max":..}
    [[nodiscard]] std::string json() const;

private:
    static constexpr int kSubBits = 6;
    std::vector<std::uint64_t> buckets_;
    std::uint64_t count_ = 0;
    std::uint64_t max_ns_ = 0;
};

// Nanoseconds of std::chrono::steady_clock.
std::uint64_t now_ns();
// User + system CPU seconds of this process.
double process_cpu_s();

}  // namespace mqttd::load
