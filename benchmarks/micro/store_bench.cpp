// Store micro-benchmarks (benchmarks/README.md, "Store"): group-commit write throughput with
// 1/4/16 concurrent writers, fan-out enqueue, online publish + ack, and REST paging over 1 000 000
// sessions. Every store lives in a temporary directory removed at exit.
#include "storage/store.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

#include <benchmark/benchmark.h>

namespace mqttd::storage {
namespace {

class BenchDir {
public:
    BenchDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "mqttd-bench-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) != nullptr) {
            path_ = tmpl;
        }
    }
    ~BenchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    BenchDir(const BenchDir&) = delete;
    BenchDir& operator=(const BenchDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// One store per configuration, opened on first use and closed before its directory goes.
struct Stores {
    BenchDir dir;
    std::mutex mu;
    std::map<std::string, std::unique_ptr<Store>> open;
    ~Stores() {
        for (auto& [name, store] : open) {
            store->close();
        }
    }
    Store& get(const std::string& name, bool sync) {
        std::lock_guard lock(mu);
        auto& s = open[name];
        if (!s) {
            Options o;
            o.dir = dir.path() + "/" + name;
            o.sync = sync;
            Status st = Store::open(o, s);
            if (!st.is_ok()) {
                std::fprintf(stderr, "open: %s\n", st.to_string().c_str());
                std::abort();
            }
        }
        return *s;
    }
};

Stores& stores() {
    static Stores s;
    return s;
}

std::atomic<uint64_t> g_seq{0};

std::string client_name(const char* prefix, uint64_t i) {
    std::string s(prefix);
    s.append(std::to_string(i));
    return s;
}

// Each writer commits put_message + enqueue and waits for its callback.
// Args: payload bytes, sync (0/1).
void BM_Write(benchmark::State& state) {
    const auto size = static_cast<size_t>(state.range(0));
    const bool sync = state.range(1) != 0;
    Store& store = stores().get(sync ? "write-sync" : "write", sync);
    const std::string client = client_name("w", static_cast<uint64_t>(state.thread_index()));
    const std::string payload(size, 'x');
    for (auto _ : state) {
        WriteBatch b;
        MessageRecord m;
        m.id = store.next_message_id();
        m.topic = "bench/write";
        m.payload = payload;
        m.qos = 1;
        QueueEntry e;
        e.client_id = client;
        e.seq = g_seq.fetch_add(1, std::memory_order_relaxed);
        e.message_id = m.id;
        e.qos = 1;
        b.put_message(std::move(m));
        b.enqueue(std::move(e));
        Status s = store.write(std::move(b));
        if (!s.is_ok()) {
            state.SkipWithError(s.to_string().c_str());
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Write)
        ->ArgNames({"bytes", "sync"})
        ->ArgsProduct({{16, 1024}, {0, 1}})
        ->Threads(1)
        ->Threads(4)
        ->Threads(16)
        ->UseRealTime();

// One message enqueued to N sessions in one batch (stored once, N references).
void BM_Fanout(benchmark::State& state) {
    const auto sessions = static_cast<uint64_t>(state.range(0));
    Store& store = stores().get("fanout", false);
    std::vector<std::string> clients;
    for (uint64_t i = 0; i < sessions; ++i) {
        clients.push_back(client_name("f", i));
    }
    const std::string payload(256, 'x');
    for (auto _ : state) {
        WriteBatch b;
        MessageRecord m;
        m.id = store.next_message_id();
        m.topic = "bench/fanout";
        m.payload = payload;
        m.qos = 1;
        const uint64_t id = m.id;
        const uint64_t seq = g_seq.fetch_add(1, std::memory_order_relaxed);
        b.put_message(std::move(m));
        for (const auto& c : clients) {
            b.enqueue(QueueEntry{c, seq, id, 1, false, 0, {}});
        }
        Status s = store.write(std::move(b));
        if (!s.is_ok()) {
            state.SkipWithError(s.to_string().c_str());
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(sessions));
    state.counters["messages/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Fanout)->ArgName("sessions")->Arg(1)->Arg(1000)->UseRealTime();

// The store side of durable --online QoS 1: each round, every publisher commits a batch of
// put_message + enqueue (one subscriber each, so the message goes inline in its entry) and
// every subscriber commits a batch of remove_queued acks: half for entries of this round
// (usually absorbed in the same group), half for the previous round's (written, then deleted).
// Commits are asynchronous, as from the workers; a round waits for all of its callbacks.
// Process CPU time per message is the committer's cost plus the (fixed) cost of building the
// batches. Args: sessions, messages per batch.
void BM_OnlineAcks(benchmark::State& state) {
    const auto sessions = static_cast<uint64_t>(state.range(0));
    const auto per_batch = static_cast<uint64_t>(state.range(1));
    Store& store = stores().get("online", false);
    std::vector<std::string> clients;
    for (uint64_t i = 0; i < sessions; ++i) {
        clients.push_back(client_name("durable-sub-", i));
    }
    std::vector<uint64_t> next_seq(sessions, 1);
    const std::string payload(16, 'x');
    std::mutex mu;
    std::condition_variable cv;
    uint64_t pending = 0;
    bool failed = false;
    auto done = [&](const Status& st) {
        std::lock_guard lock(mu);
        failed = failed || !st.is_ok();
        if (--pending == 0) {
            cv.notify_one();
        }
    };
    for (auto _ : state) {
        {
            std::lock_guard lock(mu);
            pending = 2 * sessions;
        }
        for (uint64_t s = 0; s < sessions; ++s) {
            WriteBatch b;
            for (uint64_t i = 0; i < per_batch; ++i) {
                MessageRecord m;
                m.id = store.next_message_id();
                m.topic = "bench/online/" + std::to_string(s);
                m.payload = payload;
                m.qos = 1;
                m.from_client = "durable-pub-0";
                const uint64_t id = m.id;
                b.put_message(std::move(m));
                b.enqueue(QueueEntry{clients[s], next_seq[s] + i, id, 1, false, 0, {}});
            }
            store.commit(std::move(b), done);
        }
        for (uint64_t s = 0; s < sessions; ++s) {
            WriteBatch b;
            const uint64_t half = per_batch / 2;
            for (uint64_t i = 0; i < half; ++i) {  // the previous round's second half
                if (next_seq[s] > per_batch) {
                    b.remove_queued(clients[s], next_seq[s] - per_batch + half + i);
                }
            }
            for (uint64_t i = 0; i < half; ++i) {  // this round's first half
                b.remove_queued(clients[s], next_seq[s] + i);
            }
            next_seq[s] += per_batch;
            store.commit(std::move(b), done);
        }
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return pending == 0; });
        if (failed) {
            state.SkipWithError("commit failed");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(sessions * per_batch));
}
BENCHMARK(BM_OnlineAcks)
        ->ArgNames({"sessions", "batch"})
        ->Args({8, 50})
        ->MeasureProcessCPUTime()
        ->UseRealTime();

constexpr uint64_t kSessions = 1'000'000;
constexpr uint32_t kPageSize = 20;

// The 1M-session store, built once (batches of 10 000 put_session).
Store& million() {
    static std::once_flag once;
    std::call_once(once, [] {
        Store& s = stores().get("million", false);
        if (s.count(Counted::Sessions) >= kSessions) {
            return;
        }
        for (uint64_t i = 0; i < kSessions; i += 10'000) {
            WriteBatch b;
            for (uint64_t j = i; j < i + 10'000; ++j) {
                SessionRecord r;
                char id[32];
                std::snprintf(id, sizeof id, "client-%07llu", static_cast<unsigned long long>(j));
                r.client_id = id;
                r.expiry_interval_s = 7200;
                r.created_at_ms = 1'700'000'000'000;
                r.username = "user";
                b.put_session(std::move(r));
            }
            Status st = s.write(std::move(b));
            if (!st.is_ok()) {
                std::fprintf(stderr, "build: %s\n", st.to_string().c_str());
                std::abort();
            }
        }
    });
    return stores().get("million", false);
}

// Page `page` (1-based) of the sessions list, by skip.
void BM_SessionsPageBySkip(benchmark::State& state) {
    Store& s = million();
    PageRequest req;
    req.skip = static_cast<uint64_t>(state.range(0) - 1) * kPageSize;
    req.limit = kPageSize;
    for (auto _ : state) {
        auto page = s.sessions(req);
        if (page.items.size() != kPageSize) {
            state.SkipWithError("short page");
            break;
        }
        benchmark::DoNotOptimize(page);
    }
}
BENCHMARK(BM_SessionsPageBySkip)->ArgName("page")->Arg(1)->Arg(10'000);

// The same page, resumed from the previous page's cursor (one seek).
void BM_SessionsPageByCursor(benchmark::State& state) {
    Store& s = million();
    PageRequest req;
    req.limit = kPageSize;
    const auto page_no = static_cast<uint64_t>(state.range(0));
    if (page_no > 1) {
        PageRequest prev;
        prev.skip = (page_no - 2) * kPageSize;
        prev.limit = kPageSize;
        req.cursor = s.sessions(prev).next_cursor;
    }
    for (auto _ : state) {
        auto page = s.sessions(req);
        if (page.items.size() != kPageSize) {
            state.SkipWithError("short page");
            break;
        }
        benchmark::DoNotOptimize(page);
    }
}
BENCHMARK(BM_SessionsPageByCursor)->ArgName("page")->Arg(1)->Arg(10'000);

// count(Counted::Sessions) (REST total_num) is an atomic load; measured for completeness.
void BM_TotalNum(benchmark::State& state) {
    Store& s = million();
    for (auto _ : state) {
        benchmark::DoNotOptimize(s.count(Counted::Sessions));
    }
}
BENCHMARK(BM_TotalNum);

}  // namespace
}  // namespace mqttd::storage
