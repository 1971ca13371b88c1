// api::LoginLimiter: bounds what failed REST logins can cost. A wrong password costs one
// PBKDF2 (Users::kIterations rounds, ~25 ms of a core), so an unbounded brute force takes the
// cores from MQTT. Two bounds, both answered with 429 and Retry-After, without hashing:
//   * per source address, a token bucket of failures (Options::burst at once, refilled at
//     Options::refill_per_s): while a source's bucket is empty every login from it is refused,
//     the right password too, so trying it costs nothing; one warning per source while it
//     stays known;
//   * globally, at most Options::max_hashing password hashes at once (admit_hash / end_hash),
//     so many sources together take at most that many cores.
// Verified credentials are cached by Users and cost no hash, so neither bound touches a client
// that has logged in before, unless its own address is over budget. How late refused and
// failed logins are answered (the tarpit) is the Handler's and the server's part.
//
// Counters (monitoring/metrics): api/auth/failed, api/auth/throttled, api/auth/busy.
// Ownership: owned by the Handler. Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mqttd::api {

class LoginLimiter {
public:
    struct Options {
        double burst = 10;        // failures a source may make at once (api.auth.failure_burst)
        double refill_per_s = 1;  // then this many more a second (api.auth.failure_refill_per_min)
        int max_hashing = 1;      // password hashes at once, all sources
                                  // (api.auth.max_concurrent_hashes)
        size_t max_sources = 10000;  // sources remembered; the oldest go first
    };

    LoginLimiter() = default;
    explicit LoginLimiter(Options o);

    // Whether a login from `source` may be checked now; when not, the seconds until it may.
    struct Admission {
        bool allowed = true;
        uint32_t retry_after_s = 0;
    };
    Admission admit(const std::string& source);
    // A wrong password from `source`: one token of its bucket.
    void failed(const std::string& source);

    // A slot for one password hash; false when max_hashing are running (answer 429,
    // Retry-After 1). REQUIRES: end_hash() after a true.
    bool admit_hash();
    void end_hash();

    const Options& options() const { return opt_; }
    uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
    uint64_t throttled() const { return throttled_.load(std::memory_order_relaxed); }
    uint64_t busy() const { return busy_.load(std::memory_order_relaxed); }

private:
    struct Bucket {
        double tokens = 0;
        int64_t refilled_ms = 0;
        bool warned = false;
    };
    // Refills `b` up to `now_ms`.
    void refill(Bucket& b, int64_t now_ms) const;
    void forget_idle(int64_t now_ms);  // REQUIRES: mu_ held

    const Options opt_;
    std::mutex mu_;
    std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
    std::atomic<int> hashing_{0};
    std::atomic<uint64_t> failures_{0};
    std::atomic<uint64_t> throttled_{0};
    std::atomic<uint64_t> busy_{0};
};

}  // namespace mqttd::api
