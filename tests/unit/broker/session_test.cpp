// Session's state machine against a real RocksStore in a temporary directory: the worker's
// loop turn is played by a small task queue here, the store's committer is the real one, and a
// Link that keeps what is written stands for the network.
#include "broker/session.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "broker/commit_batch.h"
#include "broker/connection.h"
#include "broker/extensions.h"
#include "broker/hooks.h"
#include "broker/metrics.h"
#include "broker/settings.h"
#include "mqtt/decoder.h"
#include "storage/store.h"
#include "temp_dir.h"

namespace mqttd::broker {
namespace {

using namespace std::chrono_literals;

// Keeps the bytes the broker writes; nothing is sent anywhere.
class TestLink final : public Link {
public:
    std::string& out() override { return out_; }
    void flush() override {}
    void close() override { closed = true; }
    std::string peer_ip() const override { return "127.0.0.1"; }
    uint16_t peer_port() const override { return 1; }
    const char* transport() const override { return "tcp"; }
    std::string peer_subject(bool) const override { return {}; }
    void pause() override {}
    void resume() override {}
    void attach(Connection*) override {}
    void refuse(ConnectRefusal) override { closed = true; }

    // The packets written so far (and forgets them).
    std::vector<mqtt::Packet> take_packets(std::string& keep) {
        keep = std::move(out_);
        out_.clear();
        std::vector<mqtt::Packet> packets;
        mqtt::Decoder d(mqtt::Side::Client);
        d.set_version(mqtt::Version::V311);
        std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(keep.data()), keep.size());
        while (!bytes.empty()) {
            mqtt::Packet p;
            auto r = d.feed(bytes, p);
            EXPECT_EQ(r.status, mqtt::Decoder::Status::Packet);
            if (r.status != mqtt::Decoder::Status::Packet) {
                break;
            }
            packets.push_back(std::move(p));
            bytes = bytes.subspan(r.consumed);
        }
        return packets;
    }

    bool closed = false;

private:
    std::string out_;
};

// One worker's loop, played by the test thread: posted tasks run in order, the committer's
// completions come in through `to_worker`.
class Loop {
public:
    void post(std::function<void()> t) { tasks_.push_back(std::move(t)); }
    void to_worker(std::function<void()> t) {
        std::lock_guard lock(mu_);
        incoming_.push_back(std::move(t));
        cv_.notify_one();
    }
    // Runs until `done()` holds (false after 5 s).
    template <typename Pred>
    bool run_until(Pred done) {
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline) {
            while (!tasks_.empty()) {
                auto t = std::move(tasks_.front());
                tasks_.pop_front();
                t();
            }
            if (done()) {
                return true;
            }
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, 10ms, [&] { return !incoming_.empty(); });
            for (auto& t : incoming_) {
                tasks_.push_back(std::move(t));
            }
            incoming_.clear();
        }
        return done();
    }

    // Runs what is queued now, without waiting for more.
    void run_ready() {
        run_until([] { return true; });
    }

private:
    std::deque<std::function<void()>> tasks_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::function<void()>> incoming_;
};

class SessionTest : public ::testing::Test {
protected:
    void SetUp() override { open(); }

    void open() {
        storage::Options o;
        o.dir = dir_.sub("db");
        ASSERT_TRUE(storage::Store::open(o, store_).is_ok());
        commits_ = std::make_unique<CommitBatch>(
                *store_, CommitBatch::Hooks{[this](auto t) { loop_.post(std::move(t)); },
                                            [this](auto t) { loop_.to_worker(std::move(t)); },
                                            [](const Token&) {},
                                            [this] {
                                                auto waiting = std::move(waiting_);
                                                waiting_.clear();
                                                for (auto& s : waiting) {
                                                    s->pump(*ctx_);
                                                }
                                            }});
        ctx_ = std::make_unique<SessionContext>(
                SessionContext{*commits_, *store_, metrics_, settings_, hooks_, waiting_});
    }
    void reopen() {
        ctx_.reset();
        commits_.reset();
        store_->close();
        store_.reset();
        open();
    }
    // Until everything written so far is durable (and what it triggers has run).
    void flush() {
        bool done = false;
        commits_->after_commit([&] { done = true; });
        ASSERT_TRUE(loop_.run_until([&] { return done; }));
        loop_.run_ready();  // pumps after the commit
    }
    MessagePtr message(const std::string& topic, const std::string& payload, uint8_t qos) {
        return make_message(MessageInit{
                topic, payload, qos, false, {}, "pub", 1, 0, store_->next_message_id()});
    }
    void go_online(Session& s) {
        conn_ = std::make_unique<Connection>(1, &link_);
        conn_->version = mqtt::Version::V311;
        s.connection = conn_.get();
        s.online = true;
    }
    void go_offline(Session& s) {
        s.connection = nullptr;
        s.online = false;
    }
    // The PUBLISH packets written since the last call: (packet id, payload, dup).
    struct Sent {
        uint16_t pid;
        std::string payload;
        bool dup;
    };
    std::vector<Sent> sent() {
        std::vector<Sent> out;
        for (auto& p : link_.take_packets(keep_)) {
            if (auto* pub = std::get_if<mqtt::Publish>(&p)) {
                out.push_back({pub->packet_id, std::string(pub->payload), pub->dup});
            } else if (auto* ack = std::get_if<mqtt::Ack>(&p)) {
                out.push_back({ack->packet_id, "PUBREL", false});
            }
        }
        return out;
    }
    size_t stored(const std::string& client_id) {
        return store_->read_queue(client_id, 0, 1000).size();
    }

    test::TempDir dir_;
    std::unique_ptr<storage::Store> store_;
    Loop loop_;
    Settings settings_;
    Extensions ext_;
    Hooks hooks_{ext_};
    Metrics metrics_;
    std::vector<SessionPtr> waiting_;
    std::unique_ptr<CommitBatch> commits_;
    std::unique_ptr<SessionContext> ctx_;
    TestLink link_;
    std::unique_ptr<Connection> conn_;
    std::string keep_;
};

// Contract 1 and 3: messages for an offline persistent session go to the store; when it
// comes back they are read back in order, at most the in-flight window at a time; each
// PUBACK removes its entry from the store and lets the next one out.
TEST_F(SessionTest, OfflineQueueIsStoredAndDrainsInOrderWithinTheWindow) {
    settings_.max_inflight = 2;
    auto s = std::make_shared<Session>("c1", 0, true);
    for (int i = 0; i < 5; ++i) {
        s->enqueue(*ctx_, message("t", "m" + std::to_string(i), 1), 1, false, {});
    }
    flush();
    EXPECT_EQ(stored("c1"), 5u);
    EXPECT_EQ(s->queue_len(), 5u);

    go_online(*s);
    s->pump(*ctx_);
    auto first = sent();
    ASSERT_EQ(first.size(), 2u) << "the window is 2";
    EXPECT_EQ(first[0].payload, "m0");
    EXPECT_EQ(first[1].payload, "m1");
    EXPECT_NE(first[0].pid, first[1].pid);

    EXPECT_TRUE(s->on_puback(*ctx_, first[0].pid));
    EXPECT_FALSE(s->on_puback(*ctx_, first[0].pid)) << "a second PUBACK is missed";
    auto next = sent();
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].payload, "m2");
    flush();
    EXPECT_EQ(stored("c1"), 4u) << "the acknowledged entry leaves the store";
}

// A batch handed over early (a large read while the committer has nothing to write): what is
// added after it in the same turn, with nothing written after it, waits for that batch.
TEST_F(SessionTest, EarlyFlushedTurnDefersWhatFollowsToItsBatch) {
    auto s = std::make_shared<Session>("c1", 0, true);
    ASSERT_TRUE(loop_.run_until([&] { return store_->commit_idle(); }));
    for (int i = 0; i < 40; ++i) {
        s->enqueue(*ctx_, message("t", "m", 1), 1, false, {});
    }
    const uint64_t early = commits_->epoch();
    commits_->flush_if_store_idle();  // 80 ops: handed over now
    EXPECT_EQ(commits_->epoch(), early + 1);
    bool done = false;
    uint64_t committed_then = 0;
    size_t stored_then = 0;
    commits_->after_commit([&] {
        done = true;
        committed_then = commits_->committed();
        stored_then = stored("c1");
    });
    ASSERT_TRUE(loop_.run_until([&] { return done; }));
    EXPECT_GE(committed_then, early);
    EXPECT_EQ(stored_then, 40u);
}

// Contract 3 for QoS 2: after PUBREC the PUBREL state is what is stored (not the message), so a
// restart resends PUBREL and never the PUBLISH.
TEST_F(SessionTest, Qos2PubrelStateSurvivesARestart) {
    auto s = std::make_shared<Session>("c2", 0, true);
    go_online(*s);
    s->enqueue(*ctx_, message("t", "exactly once", 2), 2, false, {});
    auto out = sent();
    ASSERT_EQ(out.size(), 1u);
    uint16_t pid = out[0].pid;
    EXPECT_EQ(s->on_pubrec(*ctx_, pid, mqtt::ReasonCode::Success),
              Session::Pubrec::ReleaseAfterCommit);
    flush();
    EXPECT_EQ(stored("c2"), 0u);
    auto inflight = store_->inflight_of("c2");
    ASSERT_EQ(inflight.size(), 1u);
    EXPECT_EQ(inflight[0].direction, storage::Direction::Outbound);

    reopen();
    auto restored = std::make_shared<Session>("c2", 0, true);
    auto record = store_->get_session("c2");
    storage::SessionRecord r = record.value_or(storage::SessionRecord{});
    r.client_id = "c2";
    restored->restore(r, store_->session_counts("c2"), store_->inflight_of("c2"), 32);
    go_online(*restored);
    restored->resend_inflight(*ctx_);
    auto again = sent();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].payload, "PUBREL");
    EXPECT_EQ(again[0].pid, pid);
    EXPECT_TRUE(restored->on_pubcomp(*ctx_, pid));
    flush();
    EXPECT_TRUE(store_->inflight_of("c2").empty());
}

// After a restart the stored entries of a session that was online at the stop may have been
// sent already: they go out with DUP set (3.1.1 3.3.1.1).
TEST_F(SessionTest, EntriesMaybeSentBeforeARestartGoOutWithDup) {
    auto s = std::make_shared<Session>("c3", 0, true);
    for (int i = 0; i < 3; ++i) {
        s->enqueue(*ctx_, message("t", "m" + std::to_string(i), 1), 1, false, {});
    }
    flush();
    reopen();
    auto restored = std::make_shared<Session>("c3", 0, true);
    storage::SessionRecord r;
    r.client_id = "c3";
    r.disconnected_at_ms = 0;  // online when the broker stopped
    restored->restore(r, store_->session_counts("c3"), {}, 32);
    EXPECT_EQ(restored->queue_len(), 3u);
    go_online(*restored);
    restored->pump(*ctx_);
    auto out = sent();
    ASSERT_EQ(out.size(), 3u);
    for (const auto& m : out) {
        EXPECT_TRUE(m.dup) << m.payload;
    }
}

// Contract 6: the queue is bounded by mqtt.mqueue.max_len; the oldest go first, counted.
TEST_F(SessionTest, QueueBoundDropsTheOldest) {
    settings_.mqueue_max_len = 3;
    auto s = std::make_shared<Session>("c4", 0, true);
    for (int i = 0; i < 5; ++i) {
        s->enqueue(*ctx_, message("t", "m" + std::to_string(i), 1), 1, false, {});
    }
    flush();
    EXPECT_EQ(s->queue_len(), 3u);
    EXPECT_EQ(s->figures().mqueue_dropped, 2u);
    EXPECT_EQ(metrics_.get(Metric::MessagesDropped), 2u);
    EXPECT_EQ(stored("c4"), 3u);
    go_online(*s);
    s->pump(*ctx_);
    auto out = sent();
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].payload, "m2");
    EXPECT_EQ(out[2].payload, "m4");
}

// Contract 7: a clean session writes nothing; what it cannot send now waits in memory.
TEST_F(SessionTest, CleanSessionWritesNothing) {
    settings_.max_inflight = 1;
    auto s = std::make_shared<Session>("c5", 0, false);
    go_online(*s);
    for (int i = 0; i < 3; ++i) {
        s->enqueue(*ctx_, message("t", "m" + std::to_string(i), 1), 1, false, {});
    }
    flush();
    EXPECT_EQ(stored("c5"), 0u);
    EXPECT_EQ(store_->count(storage::Counted::Messages), 0u);
    auto out = sent();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(s->on_puback(*ctx_, out[0].pid));
    EXPECT_EQ(sent().size(), 1u);
}

}  // namespace
}  // namespace mqttd::broker
