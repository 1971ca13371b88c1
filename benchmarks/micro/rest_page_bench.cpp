// REST paging depth: with 1 000 000 stored sessions, the cost of the page the REST API asks the
// store for (GET nodes/{node}/sessions): page 1, page 10 000 by curr_page (skip 199 980 keys),
// and the same page by the "cursor" of page 9 999 (one seek). The store is filled once per run
// in a temp dir (MQTTD_BENCH_SESSIONS overrides the count).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "storage/store.h"

namespace {

using namespace mqttd;

constexpr uint32_t kPageSize = 20;
constexpr uint64_t kDeepPage = 10000;

struct Fixture {
    std::string dir;
    std::unique_ptr<storage::Store> store;
    std::string deep_cursor;  // cursor returned with page kDeepPage - 1
    uint64_t sessions = 1000000;

    Fixture() {
        if (const char* n = std::getenv("MQTTD_BENCH_SESSIONS")) {
            sessions = std::strtoull(n, nullptr, 10);
        }
        std::string tmpl =
                (std::filesystem::temp_directory_path() / "mqttd-rest-bench-XXXXXX").string();
        dir = ::mkdtemp(tmpl.data());
        storage::Options o;
        o.dir = dir + "/db";
        if (auto st = storage::Store::open(o, store); !st.is_ok()) {
            std::fprintf(stderr, "open: %s\n", st.to_string().c_str());
            std::abort();
        }
        for (uint64_t i = 0; i < sessions;) {
            storage::WriteBatch batch;
            for (int k = 0; k < 10000 && i < sessions; ++k, ++i) {
                storage::SessionRecord r;
                char id[32];
                std::snprintf(id, sizeof id, "client-%08llu", static_cast<unsigned long long>(i));
                r.client_id = id;
                r.created_at_ms = 1;
                batch.put_session(std::move(r));
            }
            if (auto st = store->write(std::move(batch)); !st.is_ok()) {
                std::fprintf(stderr, "write: %s\n", st.to_string().c_str());
                std::abort();
            }
        }
        storage::PageRequest req;
        req.limit = kPageSize;
        req.skip = (kDeepPage - 2) * kPageSize;
        deep_cursor = store->sessions(req).next_cursor;
    }
    ~Fixture() {
        store->close();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

void BM_SessionsPage1(benchmark::State& state) {
    auto& f = fixture();
    storage::PageRequest req;
    req.limit = kPageSize;
    for (auto _ : state) {
        benchmark::DoNotOptimize(f.store->sessions(req));
        benchmark::DoNotOptimize(f.store->count(storage::Counted::Sessions));
    }
}

void BM_SessionsPage10000ByCurrPage(benchmark::State& state) {
    auto& f = fixture();
    storage::PageRequest req;
    req.limit = kPageSize;
    req.skip = (kDeepPage - 1) * kPageSize;
    for (auto _ : state) {
        benchmark::DoNotOptimize(f.store->sessions(req));
        benchmark::DoNotOptimize(f.store->count(storage::Counted::Sessions));
    }
}

void BM_SessionsPage10000ByCursor(benchmark::State& state) {
    auto& f = fixture();
    storage::PageRequest req;
    req.limit = kPageSize;
    req.cursor = f.deep_cursor;
    for (auto _ : state) {
        auto page = f.store->sessions(req);
        if (page.items.empty()) {
            state.SkipWithError("cursor page is empty");
        }
        benchmark::DoNotOptimize(page);
        benchmark::DoNotOptimize(f.store->count(storage::Counted::Sessions));
    }
}

}  // namespace

BENCHMARK(BM_SessionsPage1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SessionsPage10000ByCurrPage)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SessionsPage10000ByCursor)->Unit(benchmark::kMicrosecond);
