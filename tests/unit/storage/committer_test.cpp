// The committer's contract (storage/committer.h) against a scripted GroupWriter: grouping,
// completion order, batches refused alone, the sticky error, and close.
#include "storage/committer.h"

#include <atomic>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd::storage {
namespace {

// The parts appended in order (appending avoids GCC 12's false -Wrestrict on "lit" + string).
std::string cat(std::initializer_list<std::string_view> parts) {
    std::string s;
    for (std::string_view p : parts) {
        s.append(p);
    }
    return s;
}

// A batch named by its one put_config key.
WriteBatch named(const std::string& name) {
    WriteBatch b;
    b.put_config(name, "");
    return b;
}

std::string name_of(const WriteBatch& b) {
    return std::get<op::PutConfig>(b.ops().at(0)).rec.key;
}

// Records the groups it is given, in order; refuses batches named "bad*" alone; fails the
// write of every group that arrives after fail_writes(); can hold a group until released.
class ScriptedWriter final : public GroupWriter {
public:
    Status write_group(std::span<const PendingCommit> group, std::span<Status> results) override {
        std::unique_lock lock(mu_);
        const bool fail = fail_writes_;  // as set when the group arrived
        std::vector<std::string> names;
        for (size_t i = 0; i < group.size(); ++i) {
            EXPECT_TRUE(results[i].is_ok());
            names.push_back(name_of(group[i].batch));
            if (names.back().starts_with("bad")) {
                results[i] = Status::invalid_argument(cat({"refused ", names.back()}));
            }
        }
        groups_.push_back(std::move(names));
        events_.push_back("write");
        in_write_ = true;
        cv_.notify_all();
        cv_.wait(lock, [this] { return !hold_; });
        in_write_ = false;
        return fail ? Status::io_error("disk gone") : Status::ok();
    }
    void end_group() override {
        std::lock_guard lock(mu_);
        events_.push_back("end");
    }

    void hold() {
        std::lock_guard lock(mu_);
        hold_ = true;
    }
    void wait_in_write() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return in_write_; });
    }
    void release() {
        std::lock_guard lock(mu_);
        hold_ = false;
        cv_.notify_all();
    }
    void fail_writes() {
        std::lock_guard lock(mu_);
        fail_writes_ = true;
    }
    void note(const std::string& event) {
        std::lock_guard lock(mu_);
        events_.push_back(event);
    }
    std::vector<std::vector<std::string>> groups() {
        std::lock_guard lock(mu_);
        return groups_;
    }
    std::vector<std::string> events() {
        std::lock_guard lock(mu_);
        return events_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool hold_ = false;
    bool in_write_ = false;
    bool fail_writes_ = false;
    std::vector<std::vector<std::string>> groups_;
    std::vector<std::string> events_;
};

// Statuses of completed batches, by name, in completion order.
class Completions {
public:
    CommitCallback on(const std::string& name) {
        return [this, name](const Status& s) {
            std::lock_guard lock(mu_);
            done_.emplace_back(name, s);
        };
    }
    std::vector<std::pair<std::string, Status>> done() {
        std::lock_guard lock(mu_);
        return done_;
    }

private:
    std::mutex mu_;
    std::vector<std::pair<std::string, Status>> done_;
};

std::vector<std::string> names(const std::vector<std::pair<std::string, Status>>& done) {
    std::vector<std::string> out;
    for (const auto& [n, s] : done) {
        out.push_back(n);
    }
    return out;
}

TEST(Committer, BatchesQueuedDuringAWriteAreTheNextGroupCompletedInOrder) {
    ScriptedWriter writer;
    Completions c;
    Committer committer(writer, nullptr);
    committer.start();
    writer.hold();
    committer.commit(named("first"), c.on("first"));
    writer.wait_in_write();
    for (const char* n : {"a", "b", "c"}) {
        committer.commit(named(n), c.on(n));
    }
    writer.release();
    ASSERT_TRUE(committer.close());  // completes what is queued
    const std::vector<std::vector<std::string>> groups = {{"first"}, {"a", "b", "c"}};
    EXPECT_EQ(writer.groups(), groups);
    EXPECT_EQ(names(c.done()), (std::vector<std::string>{"first", "a", "b", "c"}));
    for (const auto& [n, s] : c.done()) {
        EXPECT_TRUE(s.is_ok()) << n << ": " << s.to_string();
    }
    EXPECT_TRUE(committer.error().is_ok());
}

TEST(Committer, BatchRefusedAloneFailsOnlyItself) {
    ScriptedWriter writer;
    Completions c;
    Committer committer(writer, nullptr);
    committer.start();
    writer.hold();
    committer.commit(named("first"), c.on("first"));
    writer.wait_in_write();
    committer.commit(named("ok1"), c.on("ok1"));
    committer.commit(named("bad"), c.on("bad"));
    committer.commit(named("ok2"), c.on("ok2"));
    writer.release();
    committer.close();
    auto done = c.done();
    ASSERT_EQ(names(done), (std::vector<std::string>{"first", "ok1", "bad", "ok2"}));
    EXPECT_TRUE(done[1].second.is_ok());
    EXPECT_EQ(done[2].second.code(), Status::Code::InvalidArgument);
    EXPECT_TRUE(done[3].second.is_ok());
    EXPECT_TRUE(committer.error().is_ok());  // a refused batch is not a failed write
}

TEST(Committer, FailedWriteIsStickyAndReportedOnce) {
    ScriptedWriter writer;
    Completions c;
    std::atomic<int> reported{0};
    Committer committer(writer, [&](const Status& s) {
        EXPECT_EQ(s.code(), Status::Code::IoError);
        ++reported;
    });
    committer.start();
    writer.hold();
    committer.commit(named("first"), c.on("first"));
    writer.wait_in_write();
    writer.fail_writes();
    committer.commit(named("lost"), c.on("lost"));
    committer.commit(named("bad"), c.on("bad"));
    writer.release();
    // "first" succeeded; the group of "lost" and "bad" failed. Wait for that group.
    while (c.done().size() < 3) {
        std::this_thread::yield();
    }
    auto done = c.done();
    EXPECT_TRUE(done[0].second.is_ok());
    EXPECT_EQ(done[1].second.code(), Status::Code::IoError) << done[1].second.to_string();
    EXPECT_EQ(done[2].second.code(), Status::Code::InvalidArgument);  // its own failure
    EXPECT_EQ(committer.error().code(), Status::Code::IoError);

    bool called = false;
    committer.commit(named("after"), [&](const Status& s) {
        called = true;
        EXPECT_EQ(s.code(), Status::Code::Stopped);
        EXPECT_NE(s.message().find("disk gone"), std::string::npos) << s.message();
    });
    EXPECT_TRUE(called);  // at once, on this thread
    committer.close();
    EXPECT_EQ(writer.groups().size(), 2u);  // nothing reached the writer after the failure
    EXPECT_EQ(reported.load(), 1);
}

TEST(Committer, EndGroupRunsAfterTheGroupsCallbacks) {
    ScriptedWriter writer;
    Committer committer(writer, nullptr);
    committer.start();
    committer.commit(named("one"), [&](const Status&) { writer.note("done one"); });
    committer.close();
    EXPECT_EQ(writer.events(), (std::vector<std::string>{"write", "done one", "end"}));
}

TEST(Committer, CommitAfterCloseIsStopped) {
    ScriptedWriter writer;
    Committer committer(writer, nullptr);
    committer.start();
    EXPECT_TRUE(committer.close());
    EXPECT_FALSE(committer.close());  // idempotent
    bool called = false;
    committer.commit(named("late"), [&](const Status& s) {
        called = true;
        EXPECT_EQ(s.code(), Status::Code::Stopped);
    });
    EXPECT_TRUE(called);
    committer.commit(named("no callback"), nullptr);
    EXPECT_TRUE(writer.groups().empty());
}

TEST(Committer, ManyWritersAllComplete) {
    ScriptedWriter writer;
    std::atomic<int> ok{0};
    Committer committer(writer, nullptr);
    committer.start();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                committer.commit(named(cat({"w", std::to_string(t), "-", std::to_string(i)})),
                                 [&](const Status& s) { ok += s.is_ok() ? 1 : 0; });
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    committer.close();
    EXPECT_EQ(ok.load(), 800);
    size_t batches = 0;
    for (const auto& g : writer.groups()) {
        batches += g.size();
    }
    EXPECT_EQ(batches, 800u);
}

}  // namespace
}  // namespace mqttd::storage
