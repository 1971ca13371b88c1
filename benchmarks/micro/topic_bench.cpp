// Topic index micro-benchmarks (benchmarks/README.md, "Topic index and retained lookup"):
// TopicIndex::match() of one PUBLISH topic against an index holding 1, 10 000 and 1 000 000
// subscriptions, the same match from 1, 2 and 8 threads (the index's shared lock), also while a
// writer thread subscribes and unsubscribes, fan-out to
// up to 100 000 subscribers of one filter, and subscribe + unsubscribe pairs (alone, on a filter
// 100 000 sessions hold, and while reader threads match).
//   build-micro/benchmarks/micro/topic_bench --benchmark_min_time=0.2
//
// Index kinds, one session per subscription, device ids 0..D-1:
//   exact  dev/<d>/temp                    (D = N)
//   plus   dev/<d>/+                       (D = N)
//   hash   dev/<d>/#                       (D = N)
//   mixed  the three above for each device (D = N / 3)
//   first_plus       +/<d>/temp              (D = N; '+' at the first level)
//   first_plus_hash  +/<d>/#                 (D = N)
// The PUBLISH topic is dev/<d>/temp, so a match returns one subscriber (three for mixed) while
// the index holds N. `topics:1` matches one topic every time (its trie path stays in cache);
// `topics:65536` cycles through 65 536 topics of random devices, as traffic from many devices
// does, so at 1M the path is mostly cache misses. Building the 1M index takes a few seconds and
// about 0.9 GB (sessions included); it is built once and reused by the benchmarks after it.
//
// Matching follows the broker: one reused vector per thread, cleared before each match (which
// releases the session references match() took). Global operator new is replaced by a counting
// one so `allocs` reports heap allocations per iteration (STYLE.md: none on the hot path).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "alloc_count.h"
#include "broker/session.h"
#include "broker/topic_index.h"

namespace mqttd::broker {
namespace {

enum class Kind : int64_t { Exact, Plus, Hash, Mixed, Broadcast, FirstPlus, FirstPlusHash };
constexpr const char* kKindNames[] = {"exact",     "plus",       "hash",           "mixed",
                                      "broadcast", "first_plus", "first_plus_hash"};

constexpr size_t kSpreadTopics = 65536;
constexpr const char* kBroadcast = "broadcast/all";
constexpr std::chrono::seconds kReaderCap{1};

std::string device_topic(uint64_t d, const char* last) {
    std::string s = "dev/";
    s.append(std::to_string(d));
    s.push_back('/');
    s.append(last);
    return s;
}

// One index of `subs` subscriptions of one kind, with the topics the benchmarks publish to.
struct Fixture {
    Fixture(Kind k, uint64_t n) : kind(k), subs(n) {
        const mqtt::SubscribeOptions opts{1, false, false, 0};
        static constexpr const char* kLast[] = {"temp", "+", "#"};
        for (uint64_t i = 0; i < subs; ++i) {
            auto s = std::make_shared<Session>("client-" + std::to_string(i), 0, false);
            if (kind == Kind::Broadcast) {
                index.subscribe(s, kBroadcast, opts, 0);
                sessions.push_back(std::move(s));
                continue;
            }
            if (kind == Kind::FirstPlus || kind == Kind::FirstPlusHash) {
                std::string f = "+/";
                f.append(std::to_string(i));
                f.append(kind == Kind::FirstPlus ? "/temp" : "/#");
                index.subscribe(s, f, opts, 0);
                continue;
            }
            const uint64_t d = kind == Kind::Mixed ? i / 3 : i;
            const size_t form = kind == Kind::Mixed ? i % 3 : static_cast<size_t>(kind);
            index.subscribe(s, device_topic(d, kLast[form]), opts, 0);
        }
        if (kind == Kind::Broadcast) {
            hot = kBroadcast;
            spread.push_back(hot);
            return;
        }
        const uint64_t devices = kind == Kind::Mixed ? (subs + 2) / 3 : subs;
        hot = device_topic(devices / 2, "temp");
        std::mt19937_64 rng(42);
        std::uniform_int_distribution<uint64_t> pick(0, devices - 1);
        spread.reserve(kSpreadTopics);
        for (size_t j = 0; j < kSpreadTopics; ++j) {
            spread.push_back(device_topic(pick(rng), "temp"));
        }
    }

    Kind kind;
    uint64_t subs;
    TopicIndex index;
    std::vector<SessionPtr> sessions;  // Broadcast only
    std::string hot;
    std::vector<std::string> spread;
};

// The index for (kind, subs), built on first use. Only one is kept: four 1M indexes with their
// sessions take gigabytes on a shared machine, and the benchmarks are registered in an order
// that builds each index once. Safe to call from every thread of a ->Threads(n) run.
Fixture& fixture(Kind kind, int64_t subs) {
    // libstdc++ counts shared_ptr references with plain (not atomic) increments while the
    // process has never started a thread (glibc's __libc_single_threaded). The broker always
    // has, so start one before the first measurement: otherwise a match returning many
    // subscribers looks several times cheaper than it is in the broker.
    static const bool multi_threaded = [] {
        std::thread([] {}).join();
        return true;
    }();
    benchmark::DoNotOptimize(multi_threaded);
    static std::mutex mu;
    static std::unique_ptr<Fixture> current;
    std::lock_guard lock(mu);
    const auto n = static_cast<uint64_t>(subs);
    if (!current || current->kind != kind || current->subs != n) {
        current.reset();
        current = std::make_unique<Fixture>(kind, n);
    }
    return *current;
}

// Matches topics[j % size] per iteration, starting at `first`. Reports subscribers returned
// (`matched`) and heap allocations (`allocs`) per match; items = matches.
void run_matches(benchmark::State& state,
                 const TopicIndex& index,
                 const std::vector<std::string>& topics,
                 size_t first) {
    std::vector<Subscriber> out;
    out.reserve(64);
    size_t j = first % topics.size();
    uint64_t matched = 0;
    const uint64_t allocs_before = t_allocs;
    for (auto _ : state) {
        out.clear();
        index.match(topics[j], out);
        matched += out.size();
        if (++j == topics.size()) {
            j = 0;
        }
        benchmark::DoNotOptimize(out.data());
    }
    const uint64_t allocs = t_allocs - allocs_before;
    state.SetItemsProcessed(state.iterations());
    state.counters["matched"] =
            benchmark::Counter(static_cast<double>(matched), benchmark::Counter::kAvgIterations);
    state.counters["allocs"] =
            benchmark::Counter(static_cast<double>(allocs), benchmark::Counter::kAvgIterations);
}

// Args: kind (0 exact, 1 plus, 2 hash, 3 mixed), subscriptions, distinct topics (1 = hot).
void BM_Match(benchmark::State& state) {
    const Fixture& f = fixture(static_cast<Kind>(state.range(0)), state.range(1));
    state.SetLabel(kKindNames[state.range(0)]);
    if (state.range(2) == 1) {
        run_matches(state, f.index, std::vector<std::string>{f.hot}, 0);
    } else {
        run_matches(state, f.index, f.spread, 0);
    }
}
BENCHMARK(BM_Match)
        ->ArgNames({"kind", "subs", "topics"})
        ->Apply([](benchmark::internal::Benchmark* b) {
            for (Kind k : {Kind::Exact, Kind::Plus, Kind::Hash, Kind::Mixed, Kind::FirstPlus,
                           Kind::FirstPlusHash}) {
                const auto kind = static_cast<int64_t>(k);
                for (int64_t subs : {1, 10'000, 1'000'000}) {
                    for (int64_t topics : {int64_t{1}, static_cast<int64_t>(kSpreadTopics)}) {
                        b->Args({kind, subs, topics});
                    }
                }
            }
        });

// Readers beside a writer: 1, 2 and 8 threads match spread topics (dev/<d>/temp of random
// devices) in a first_plus or first_plus_hash index of N subscriptions (`+/<d>/temp` or
// `+/<d>/#`: a '+' at the first level, so every match walks the root's '+' child and its map
// of N device levels) while one more thread, started by thread 0, subscribes and
// unsubscribes `+/<d>/hum` for 1024 devices in a loop without pause (a node created under
// the '+' child, then pruned), as SUBSCRIBEs arriving on another worker do. Real time:
// items/s = matches/s of all readers together; `writer_pairs` = the writer's subscribe +
// unsubscribe pairs per second meanwhile (the index's RwLock prefers a waiting writer).
void BM_MatchWithWriter(benchmark::State& state) {
    Fixture& f = fixture(static_cast<Kind>(state.range(0)), state.range(1));
    state.SetLabel(kKindNames[state.range(0)]);
    static std::atomic<bool> stop{false};
    static std::atomic<uint64_t> pairs{0};
    static std::thread writer;
    auto writer_start = std::chrono::steady_clock::now();
    if (state.thread_index() == 0) {
        stop.store(false);
        pairs.store(0);
        writer = std::thread([&f] {
            auto session = std::make_shared<Session>("bench-writer", 0, false);
            const mqtt::SubscribeOptions opts{1, false, false, 0};
            std::vector<std::string> filters;
            for (uint64_t d = 0; d < 1024; ++d) {
                filters.push_back("+/" + std::to_string(d * 7919 % std::max<uint64_t>(f.subs, 1)) +
                                  "/hum");
            }
            uint64_t n = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                const std::string& filter = filters[n % filters.size()];
                f.index.subscribe(session, filter, opts, 0);
                f.index.unsubscribe(session.get(), filter);
                ++n;
            }
            pairs.store(n);
        });
    }
    const auto thread = static_cast<size_t>(state.thread_index());
    run_matches(state, f.index, f.spread, thread * (kSpreadTopics / 8));
    if (state.thread_index() == 0) {
        stop.store(true);
        writer.join();
        const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - writer_start)
                        .count();
        state.counters["writer_pairs"] = static_cast<double>(pairs.load()) / seconds;
    }
}
BENCHMARK(BM_MatchWithWriter)
        ->ArgNames({"kind", "subs"})
        ->Apply([](benchmark::internal::Benchmark* b) {
            for (Kind k : {Kind::FirstPlus, Kind::FirstPlusHash}) {
                for (int64_t subs : {1, 10'000, 1'000'000}) {
                    b->Args({static_cast<int64_t>(k), subs});
                }
            }
        })
        ->Threads(1)
        ->Threads(2)
        ->Threads(8)
        ->UseRealTime();

// The mixed 1M index read by 1, 2 and 8 threads at once. Modes: 0 `same` = every thread
// matches the same topic (threads share the lock's reader count and the three subscribers'
// reference counts); 1 `own` = each thread matches its own device's topic (only the lock is
// shared); 2 `spread` = each thread cycles through the 65 536 topics from its own offset;
// 3 `private` = control, nothing shared: each thread matches its own topic in its own small
// mixed index (3000 subscriptions), so it shows what the machine's free cores allow.
// Real time, so items/s is the throughput of all threads together.
void BM_MatchThreads(benchmark::State& state) {
    static constexpr const char* kModeNames[] = {"same", "own", "spread", "private"};
    const Fixture& f = fixture(Kind::Mixed, 1'000'000);
    const auto thread = static_cast<size_t>(state.thread_index());
    state.SetLabel(kModeNames[state.range(0)]);
    switch (state.range(0)) {
        case 0:
            run_matches(state, f.index, std::vector<std::string>{f.hot}, 0);
            break;
        case 1:
            run_matches(state, f.index, std::vector<std::string>{f.spread[thread]}, 0);
            break;
        case 2:
            run_matches(state, f.index, f.spread, thread * (kSpreadTopics / 8));
            break;
        default: {
            const Fixture mine(Kind::Mixed, 3000);
            run_matches(state, mine.index, std::vector<std::string>{mine.hot}, 0);
            break;
        }
    }
}
BENCHMARK(BM_MatchThreads)
        ->ArgName("mode")
        ->DenseRange(0, 3)
        ->Threads(1)
        ->Threads(2)
        ->Threads(8)
        ->UseRealTime();

// Filters of 1024 spread devices: dev/<d>/temp (existing) or dev/<d>/hum (new).
std::vector<std::string> pair_filters(const Fixture& f, bool new_filter) {
    std::vector<std::string> filters;
    filters.reserve(1024);
    for (size_t j = 0; j < 1024; ++j) {
        std::string t = f.spread[j];
        if (new_filter) {
            t.replace(t.size() - 4, 4, "hum");
        }
        filters.push_back(std::move(t));
    }
    return filters;
}

// A new session subscribes and unsubscribes in the mixed 1M index, cycling over 1024 devices.
// Mode 0: an existing filter (dev/<d>/temp: one more subscriber on its node); mode 1: a new
// filter (dev/<d>/hum: a node created, then pruned). Time and allocs are per pair.
void BM_SubscribeUnsubscribe(benchmark::State& state) {
    Fixture& f = fixture(Kind::Mixed, 1'000'000);
    const std::vector<std::string> filters = pair_filters(f, state.range(0) == 1);
    auto session = std::make_shared<Session>("bench-subscriber", 0, false);
    const mqtt::SubscribeOptions opts{1, false, false, 0};
    size_t j = 0;
    const uint64_t allocs_before = t_allocs;
    for (auto _ : state) {
        const std::string& filter = filters[j];
        auto s = f.index.subscribe(session, filter, opts, 0);
        auto u = f.index.unsubscribe(session.get(), filter);
        if (!u.existed) {
            state.SkipWithError("unsubscribe found nothing");
            break;
        }
        benchmark::DoNotOptimize(s);
        if (++j == filters.size()) {
            j = 0;
        }
    }
    const uint64_t allocs = t_allocs - allocs_before;
    state.SetItemsProcessed(state.iterations());
    state.counters["allocs"] =
            benchmark::Counter(static_cast<double>(allocs), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_SubscribeUnsubscribe)->ArgName("new_filter")->Arg(0)->Arg(1);

// The same new-filter pair while `readers` background threads match spread topics without
// pause (publish traffic at saturation). subscribe/unsubscribe need the exclusive lock, which
// glibc's std::shared_mutex (a reader-preferring pthread rwlock) grants only when no reader
// holds it: with more readers than cores some reader is always inside, and the writer waits
// until the readers stop. They stop after kReaderCap so the run ends; a pair that took about
// kReaderCap (`max_us`) was starved. Time is per pair, real time; `reader_matches` = the
// readers' matches per second.
void BM_SubscribeWithReaders(benchmark::State& state) {
    Fixture& f = fixture(Kind::Mixed, 1'000'000);
    const auto readers = static_cast<size_t>(state.range(0));
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> matches{0};
    std::vector<std::thread> threads;
    threads.reserve(readers);
    for (size_t r = 0; r < readers; ++r) {
        threads.emplace_back([&f, &stop, &matches, r] {
            std::vector<Subscriber> out;
            out.reserve(64);
            size_t j = (r + 1) * (kSpreadTopics / 8) % kSpreadTopics;
            uint64_t n = 0;
            const auto deadline = std::chrono::steady_clock::now() + kReaderCap;
            while (!stop.load(std::memory_order_relaxed) &&
                   ((n & 1023) != 0 || std::chrono::steady_clock::now() < deadline)) {
                out.clear();
                f.index.match(f.spread[j], out);
                j = (j + 1) % kSpreadTopics;
                ++n;
            }
            matches.fetch_add(n, std::memory_order_relaxed);
        });
    }
    const std::vector<std::string> filters = pair_filters(f, true);
    auto session = std::make_shared<Session>("bench-subscriber", 0, false);
    const mqtt::SubscribeOptions opts{1, false, false, 0};
    size_t j = 0;
    std::chrono::nanoseconds slowest{0};
    for (auto _ : state) {
        const std::string& filter = filters[j];
        const auto start = std::chrono::steady_clock::now();
        f.index.subscribe(session, filter, opts, 0);
        f.index.unsubscribe(session.get(), filter);
        slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
        j = (j + 1) % filters.size();
    }
    stop.store(true, std::memory_order_relaxed);
    for (auto& t : threads) {
        t.join();
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["max_us"] = static_cast<double>(slowest.count()) / 1000.0;
    state.counters["reader_matches"] =
            benchmark::Counter(static_cast<double>(matches.load()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SubscribeWithReaders)->ArgName("readers")->Arg(0)->Arg(1)->Arg(7)->UseRealTime();

// Fan-out: `subs` sessions on one filter (broadcast/all); one match returns all of them, each
// a shared_ptr copy (one atomic increment, and one decrement when the vector is cleared).
// items = subscribers returned.
void BM_MatchFanout(benchmark::State& state) {
    const Fixture& f = fixture(Kind::Broadcast, state.range(0));
    run_matches(state, f.index, f.spread, 0);
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MatchFanout)->ArgName("subs")->Arg(100)->Arg(10'000)->Arg(100'000);

// One of the 100 000 sessions on broadcast/all unsubscribes and subscribes again (a client
// reconnecting with a clean session). Unsubscribe scans the filter's subscriber vector for the
// session and erases it from the middle; subscribe scans it again for a duplicate, then
// appends. Time is per pair.
void BM_SubscribeUnsubscribePopular(benchmark::State& state) {
    Fixture& f = fixture(Kind::Broadcast, state.range(0));
    const mqtt::SubscribeOptions opts{1, false, false, 0};
    size_t k = 0;
    for (auto _ : state) {
        const SessionPtr& session = f.sessions[k];
        auto u = f.index.unsubscribe(session.get(), kBroadcast);
        auto s = f.index.subscribe(session, kBroadcast, opts, 0);
        if (!u.existed) {
            state.SkipWithError("unsubscribe found nothing");
            break;
        }
        benchmark::DoNotOptimize(s);
        k = (k + 7919) % f.sessions.size();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SubscribeUnsubscribePopular)
        ->ArgName("subs")
        ->Arg(100'000)
        ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mqttd::broker
