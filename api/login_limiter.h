// api::LoginLimiter: bounds what failed REST logins can cost. A wrong password costs one
// PBKDF2 (Users::kIterations rounds, ~25 ms of a core), so an unbounded brute force takes the
// cores from MQTT. Two bounds, both answered with 429 and Retry-After, without hashing:
//   * per source address, a token bucket of failures (Options::burst at once, refilled at
//     Options::refill_per_s): while a source's bucket is empty every login from it is refused,
//     the right password too, so trying it costs nothing; one warning per source while it
//     stays known;
//   * globally, at most Options::max_hashing password hashes at once (admit_hash / end_hash),
//     so many sources together take at most that many cores. A login that finds them all
//     taken waits for one, first come first served, up to Options::max_hash_wait_ms: a brute
//     force from many addresses keeps the slot busy most of the time (at a low priority a hash
//     takes longer on loaded cores), and a right password must not lose every race for it.
// Verified credentials are cached by Users and cost no hash, so neither bound touches a client
// that has logged in before, unless its own address is over budget. How late refused and
// failed logins are answered (the tarpit) is the Handler's and the server's part.
//
// Counters (monitoring/metrics): api/auth/failed, api/auth/throttled, api/auth/busy.
// Ownership: owned by the Handler. Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
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
        int64_t max_hash_wait_ms = 1000;  // how long a login waits for a hash slot
                                          // (api.auth.max_hash_wait_ms)
        size_t max_sources = 10000;       // sources remembered; the oldest go first
    };

    LoginLimiter() : LoginLimiter(Options{}) {}
    explicit LoginLimiter(Options o);

    // Whether a login from `source` may be checked now; when not, the seconds until it may.
    struct Admission {
        bool allowed = true;
        uint32_t retry_after_s = 0;
    };
    Admission admit(const std::string& source);
    // A wrong password from `source`: one token of its bucket.
    void failed(const std::string& source);

    // A slot for one password hash: waits (blocking) up to max_hash_wait_ms while max_hashing
    // are running, after those that waited before; false when none came free (answer 429,
    // Retry-After 1). REQUIRES: end_hash() after a true.
    bool admit_hash();
    void end_hash();

    const Options& options() const { return opt_; }
    // Logins waiting for a hash slot now.
    size_t waiting() const;
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
    mutable std::mutex hash_mu_;
    std::condition_variable hash_cv_;
    int hashing_ = 0;             // guarded by hash_mu_
    std::deque<uint64_t> queue_;  // guarded by hash_mu_: tickets of the waiting logins
    uint64_t next_ticket_ = 0;    // guarded by hash_mu_
    std::atomic<uint64_t> failures_{0};
    std::atomic<uint64_t> throttled_{0};
    std::atomic<uint64_t> busy_{0};
};

}  // namespace mqttd::api
