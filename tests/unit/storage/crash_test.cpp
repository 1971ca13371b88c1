// Crash test: a writer child (this binary re-executed, so it owns a fresh RocksDB) commits
// numbered logical batches through the Store and reports each completed batch on a pipe; the
// parent SIGKILLs it at a random moment, reopens the store and checks that every reported
// batch is fully present, no batch is partially present, and the counts match the data.
//
// Batch b (multi-family): put_message m_b, enqueue m_b to c0, c1 and c2 at seq b,
// put_config("batch/<b>"), and, for b >= 5, remove_queued(c2, b - 5, dropped) (a reference
// release, and a dropped_total counter in meta).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <semaphore>
#include <set>
#include <string>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "storage/store.h"
#include "temp_dir.h"

namespace mqttd::storage {
namespace {

constexpr int kChildFd = 100;
constexpr uint64_t kDropLag = 5;

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? "" : v;
}

std::string batch_key(uint64_t b) {
    return "batch/" + std::to_string(b);
}

// The child: runs only when re-executed by the parent.
TEST(CrashChild, Writer) {
    if (std::string(env("MQTTD_CRASH_DIR")).empty()) {
        GTEST_SKIP() << "run by CrashTest only";
    }
    Options o;
    o.dir = env("MQTTD_CRASH_DIR");
    o.sync = std::string(env("MQTTD_CRASH_SYNC")) == "1";
    std::unique_ptr<Store> store;
    Status s = Store::open(o, store);
    if (!s.is_ok()) {
        std::fprintf(stderr, "child open: %s\n", s.to_string().c_str());
        std::_Exit(3);
    }
    uint64_t b = std::strtoull(env("MQTTD_CRASH_START"), nullptr, 10);
    std::counting_semaphore<64> window(64);
    for (;; ++b) {
        window.acquire();
        WriteBatch wb;
        uint64_t id = store->next_message_id();
        MessageRecord m;
        m.id = id;
        m.topic = "crash/" + std::to_string(b);
        m.payload = std::string(100, static_cast<char>('a' + b % 26));
        wb.put_message(std::move(m));
        for (const char* c : {"c0", "c1", "c2"}) {
            wb.enqueue(QueueEntry{c, b, id, 1, false, 0, {}});
        }
        wb.put_config(batch_key(b), std::to_string(id));
        if (b >= kDropLag) {
            wb.remove_queued("c2", b - kDropLag, /*dropped=*/true);
        }
        store->commit(std::move(wb), [b, &window](const Status& st) {
            if (st.is_ok()) {
                ssize_t n = ::write(kChildFd, &b, sizeof b);
                (void)n;
            }
            window.release();
        });
    }
}

struct Child {
    pid_t pid = -1;
    int fd = -1;
};

Child spawn(const std::string& dir, uint64_t start, bool sync) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], kChildFd);  // dup2 clears close-on-exec
        ::setenv("MQTTD_CRASH_DIR", dir.c_str(), 1);
        ::setenv("MQTTD_CRASH_START", std::to_string(start).c_str(), 1);
        ::setenv("MQTTD_CRASH_SYNC", sync ? "1" : "0", 1);
        char filter[] = "--gtest_filter=CrashChild.Writer";
        char exe[] = "/proc/self/exe";
        char* argv[] = {exe, filter, nullptr};
        ::execv(exe, argv);
        std::_Exit(4);
    }
    ::close(fds[1]);
    return Child{pid, fds[0]};
}

// Reads every reported batch number until the deadline (and then until EOF when kill_at
// has passed and the child is dead).
void read_reports(int fd, uint64_t& max_reported, bool& any) {
    uint64_t buf[512];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return;
        }
        for (ssize_t i = 0; i < n / 8; ++i) {
            max_reported = std::max(max_reported, buf[i]);
            any = true;
        }
    }
}

TEST(CrashTest, KilledWriterLeavesOnlyWholeBatches) {
    mqttd::test::TempDir tmp;
    const std::string dir = tmp.sub("db");
    std::mt19937 rng(std::random_device{}());
    uint64_t next_start = 0;  // batches [0, next_start) are all present
    int rounds_with_reports = 0;
    for (int round = 0; round < 20; ++round) {
        const bool sync = round % 6 == 5;
        Child child = spawn(dir, next_start, sync);
        ASSERT_GT(child.pid, 0);
        // Wait for the first report (the child has opened the store), then let it run a
        // random while, draining the pipe so that the child never blocks on it.
        ::fcntl(child.fd, F_SETFL, O_NONBLOCK);
        uint64_t max_reported = 0;
        bool any = false;
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!any && std::chrono::steady_clock::now() < give_up) {
            read_reports(child.fd, max_reported, any);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        const int run_ms = static_cast<int>(rng() % 100);
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(run_ms);
        while (std::chrono::steady_clock::now() < until) {
            read_reports(child.fd, max_reported, any);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        ::kill(child.pid, SIGKILL);
        int wstatus = 0;
        ::waitpid(child.pid, &wstatus, 0);
        ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited early with " << WEXITSTATUS(wstatus);
        ::fcntl(child.fd, F_SETFL, 0);
        read_reports(child.fd, max_reported, any);  // up to EOF
        ::close(child.fd);
        rounds_with_reports += any ? 1 : 0;

        std::unique_ptr<Store> store;
        Options o;
        o.dir = dir;
        Status st = Store::open(o, store);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        // Present batches (by their config key) form a prefix [0, end): batches commit in order.
        std::set<uint64_t> present;
        std::map<uint64_t, std::string> message_of;
        for (auto& rec : store->config_with_prefix("batch/")) {
            uint64_t b = std::stoull(rec.key.substr(6));
            present.insert(b);
            message_of[b] = rec.value;
        }
        const uint64_t end = present.size();
        ASSERT_TRUE(end == 0 || *present.rbegin() == end - 1) << "a gap in the batches";
        ASSERT_GE(end, next_start);
        if (any) {
            EXPECT_GT(end, max_reported) << "a reported batch is missing (round " << round << ")";
        }
        // Every present batch is whole; an absent one left nothing.
        for (const char* c : {"c0", "c1", "c2"}) {
            const bool is_c2 = std::string(c) == "c2";
            uint64_t want_seq = is_c2 && end > kDropLag ? end - kDropLag : 0;
            for (auto& q : store->read_queue(c, 0, ~0u)) {
                ASSERT_EQ(q.entry.seq, want_seq) << c << " end " << end;
                ASSERT_LT(q.entry.seq, end) << c << ": entry of an absent batch";
                EXPECT_EQ(q.message.topic, "crash/" + std::to_string(q.entry.seq));
                EXPECT_EQ(std::to_string(q.message.id), message_of[q.entry.seq]);
                ++want_seq;
            }
            ASSERT_EQ(want_seq, end) << c << ": entries missing";
        }
        // Counts agree with the data.
        const uint64_t dropped = end > kDropLag ? end - kDropLag : 0;
        const uint64_t c2_queued = end - dropped;
        EXPECT_EQ(store->count(Counted::Messages), end);
        EXPECT_EQ(store->count(Counted::QueueEntries), 2 * end + c2_queued);
        EXPECT_EQ(store->session_counts("c0").queued, end);
        EXPECT_EQ(store->session_counts("c0").next_seq, end);
        EXPECT_EQ(store->session_counts("c2").queued, c2_queued);
        EXPECT_EQ(store->session_counts("c2").dropped_total, dropped);
        EXPECT_EQ(store->session_counts("c1").enqueued_total, end);
        store->close();
        next_start = end;
    }
    EXPECT_GT(next_start, 0u);
    EXPECT_GE(rounds_with_reports, 20);
}

}  // namespace
}  // namespace mqttd::storage
