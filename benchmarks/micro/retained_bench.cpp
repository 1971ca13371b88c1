// Retained lookup micro-benchmarks (benchmarks/README.md, "Topic index and retained lookup"):
// Store::match_retained(), what the broker runs for each filter of a SUBSCRIBE
// (Worker::send_retained), among 1 000 000 retained messages.
//   build-micro/benchmarks/micro/retained_bench --benchmark_min_time=0.2
//
// Retained topics are bld/<b>/dev/<d>/<metric>: B buildings x 100 devices x 10 metrics, so
// 1000 buildings for 1M (MQTTD_BENCH_RETAINED changes the count, at least 1000). Filters, in
// building b = B/2 and device 37 (how Store::match_retained answers each, rocks_reads.cpp):
//   exact        bld/b/dev/37/temp     1 message (one Get)
//   plus_few     bld/b/dev/37/+        10 (retained index, then a MultiGet)
//   plus_mid     bld/b/dev/+/temp      100 (retained index, then a MultiGet)
//   hash_small   bld/b/dev/37/#        10 (one range scan)
//   hash_1000    bld/b/#               1000 (one range scan)
//   plus_1000    bld/+/dev/37/temp     B (retained index, then MultiGets of 64)
// plus get_retained() of one topic (a point Get: the retainer's limit check on PUBLISH).
//
// The store is filled once per run in a temp dir, then closed and reopened (the time and RSS
// the reopening took, with the retained index it builds, go to stderr), so the lookups read
// flushed and compacted tables (as after a restart) rather than the memtable. The callback only
// touches each record; the broker then builds one Message per record. Global operator new is
// replaced by a counting one so `allocs` reports heap allocations per lookup.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include <stdlib.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include "alloc_count.h"
#include "storage/store.h"

namespace mqttd::storage {
namespace {

constexpr uint64_t kDevices = 100;
constexpr std::chrono::seconds kSettle{6};
constexpr const char* kMetrics[] = {"temp",  "hum",  "co2", "lux",  "pm25",
                                    "noise", "volt", "amp", "door", "motion"};
constexpr uint64_t kPerBuilding = kDevices * std::size(kMetrics);

std::string building(uint64_t b) {
    return "bld/" + std::to_string(b);
}

std::string topic_of(uint64_t i) {
    return building(i / kPerBuilding) + "/dev/" +
           std::to_string(i / std::size(kMetrics) % kDevices) + "/" +
           kMetrics[i % std::size(kMetrics)];
}

// Resident set size in KiB (Linux /proc/self/statm), 0 when unknown.
long rss_kb() {
    long pages = 0;
    long resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) {
            resident = 0;
        }
        std::fclose(f);
    }
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

void check(const Status& st, const char* what) {
    if (!st.is_ok()) {
        std::fprintf(stderr, "%s: %s\n", what, st.to_string().c_str());
        std::abort();
    }
}

struct Fixture {
    std::string dir;
    std::unique_ptr<Store> store;
    uint64_t retained = 1'000'000;
    uint64_t buildings = 0;

    Fixture() {
        if (const char* n = std::getenv("MQTTD_BENCH_RETAINED")) {
            retained = std::max<uint64_t>(std::strtoull(n, nullptr, 10), kPerBuilding);
        }
        buildings = (retained + kPerBuilding - 1) / kPerBuilding;
        std::string tmpl =
                (std::filesystem::temp_directory_path() / "mqttd-retained-bench-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::perror("mkdtemp");
            std::abort();
        }
        dir = tmpl;
        Options o;
        o.dir = dir + "/db";
        check(Store::open(o, store), "open");
        const std::string payload = R"({"v":21.5,"unit":"C","ts":1795651200})";
        for (uint64_t i = 0; i < retained;) {
            WriteBatch batch;
            for (int k = 0; k < 10'000 && i < retained; ++k, ++i) {
                RetainedRecord r;
                r.topic = topic_of(i);
                r.payload = payload;
                r.qos = 1;
                r.stored_at_ms = 1'795'651'200'000;
                batch.put_retained(std::move(r));
            }
            check(store->write(std::move(batch)), "write");
        }
        store->close();
        store.reset();
        const long rss_before = rss_kb();
        const auto open_start = std::chrono::steady_clock::now();
        check(Store::open(o, store), "reopen");
        // What opening costs with this many retained (the store builds its retained index).
        std::fprintf(stderr, "reopen with %llu retained: %lld ms, RSS %+ld MB\n",
                     static_cast<unsigned long long>(retained),
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::steady_clock::now() - open_start)
                                                    .count()),
                     (rss_kb() - rss_before) / 1024);
        // Reopening flushes the replayed log, which leaves four L0 tables and starts their
        // compaction into one L1 table (about 3 s here). The Store interface cannot wait for
        // it, so give it time: measuring during it adds the compaction to the 2 cores' load.
        std::this_thread::sleep_for(kSettle);
    }
    ~Fixture() {
        store->close();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;
    Fixture(Fixture&&) = delete;
    Fixture& operator=(Fixture&&) = delete;
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

enum class Case { Exact, PlusFew, PlusMid, HashSmall, Hash1000, Plus1000 };

std::string filter_for(Case c, uint64_t buildings) {
    const std::string b = building(buildings / 2);
    switch (c) {
        case Case::Exact:
            return b + "/dev/37/temp";
        case Case::PlusFew:
            return b + "/dev/37/+";
        case Case::PlusMid:
            return b + "/dev/+/temp";
        case Case::HashSmall:
            return b + "/dev/37/#";
        case Case::Hash1000:
            return b + "/#";
        case Case::Plus1000:
            return "bld/+/dev/37/temp";
    }
    return {};
}

void BM_MatchRetained(benchmark::State& state, Case c) {
    Fixture& f = fixture();
    const std::string filter = filter_for(c, f.buildings);
    state.SetLabel(filter);
    uint64_t records = 0;
    const uint64_t allocs_before = t_allocs;
    for (auto _ : state) {
        Status st = f.store->match_retained(filter, [&](RetainedRecord&& r) {
            ++records;
            benchmark::DoNotOptimize(r.payload.data());
            return true;
        });
        if (!st.is_ok()) {
            state.SkipWithError(st.to_string().c_str());
            break;
        }
    }
    const uint64_t allocs = t_allocs - allocs_before;
    state.SetItemsProcessed(static_cast<int64_t>(records));
    state.counters["records"] =
            benchmark::Counter(static_cast<double>(records), benchmark::Counter::kAvgIterations);
    state.counters["allocs"] =
            benchmark::Counter(static_cast<double>(allocs), benchmark::Counter::kAvgIterations);
}
BENCHMARK_CAPTURE(BM_MatchRetained, exact, Case::Exact)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MatchRetained, plus_few, Case::PlusFew)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MatchRetained, plus_mid, Case::PlusMid)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MatchRetained, hash_small, Case::HashSmall)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MatchRetained, hash_1000, Case::Hash1000)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MatchRetained, plus_1000, Case::Plus1000)->Unit(benchmark::kMicrosecond);

void BM_GetRetained(benchmark::State& state) {
    Fixture& f = fixture();
    const std::string topic = filter_for(Case::Exact, f.buildings);
    state.SetLabel(topic);
    const uint64_t allocs_before = t_allocs;
    for (auto _ : state) {
        auto r = f.store->get_retained(topic);
        if (!r) {
            state.SkipWithError("not found");
            break;
        }
        benchmark::DoNotOptimize(r->payload.data());
    }
    const uint64_t allocs = t_allocs - allocs_before;
    state.SetItemsProcessed(state.iterations());
    state.counters["allocs"] =
            benchmark::Counter(static_cast<double>(allocs), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_GetRetained)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mqttd::storage
