// Store behaviour on a real RocksDB in a per-test temporary directory.
#include "storage/rocks_store.h"

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "storage/keys.h"
#include "storage/store.h"
#include "storage/values.h"
#include "temp_dir.h"

namespace mqttd::storage {
namespace {

using mqttd::test::TempDir;

std::unique_ptr<Store> open_store(const std::string& dir, Options o = {}) {
    o.dir = dir;
    std::unique_ptr<Store> s;
    Status st = Store::open(o, s);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return s;
}

MessageRecord msg(uint64_t id, std::string topic = "t", std::string payload = "p") {
    MessageRecord m;
    m.id = id;
    m.topic = std::move(topic);
    m.payload = std::move(payload);
    m.qos = 1;
    return m;
}

QueueEntry entry(std::string client, uint64_t seq, uint64_t message_id) {
    QueueEntry e;
    e.client_id = std::move(client);
    e.seq = seq;
    e.message_id = message_id;
    e.qos = 1;
    return e;
}

SessionRecord session(std::string id) {
    SessionRecord s;
    s.client_id = std::move(id);
    s.expiry_interval_s = 3600;
    s.username.assign(1, 'u');
    return s;
}

// "<prefix><i>" (appending avoids GCC 12's false -Wrestrict on "lit" + std::string).
std::string name(const char* prefix, int i) {
    std::string s(prefix);
    s.append(std::to_string(i));
    return s;
}

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override { store_ = open_store(dir_.sub("db")); }
    void reopen() {
        store_->close();
        store_.reset();
        store_ = open_store(dir_.sub("db"));
    }
    void write(WriteBatch b) {
        Status s = store_->write(std::move(b));
        ASSERT_TRUE(s.is_ok()) << s.to_string();
    }
    TempDir dir_;
    std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, RecordsRoundTripAndSurviveReopen) {
    WriteBatch b;
    b.put_session(session("c1"));
    SubscriptionRecord sub{"c1", "a/+/b", 2, true, false, 1, 7};
    b.put_subscription(sub);
    uint64_t id = store_->next_message_id();
    b.put_message(msg(id, "a/x/b", "hello"));
    b.enqueue(entry("c1", 0, id));
    b.put_inflight(InflightRecord{"c1", Direction::Inbound, 9, 100});
    b.put_retained(RetainedRecord{"a/b", "ret", 1, "", 5, 0});
    b.put_route(RouteRecord{"a/+/b", "node@host"});
    b.put_config("mqtt.allow_anonymous", "true");
    b.put_user(UserRecord{"admin", "hash", "admin", 3});
    write(std::move(b));
    for (int round = 0; round < 2; ++round) {
        auto s = store_->get_session("c1");
        ASSERT_TRUE(s);
        EXPECT_EQ(s->expiry_interval_s, 3600u);
        auto subs = store_->subscriptions_of("c1");
        ASSERT_EQ(subs.size(), 1u);
        EXPECT_EQ(subs[0].topic_filter, "a/+/b");
        EXPECT_EQ(subs[0].subscription_id, 7u);
        auto q = store_->read_queue("c1", 0, 10);
        ASSERT_EQ(q.size(), 1u);
        EXPECT_EQ(q[0].message.payload, "hello");
        EXPECT_EQ(q[0].entry.message_id, id);
        auto inf = store_->inflight_of("c1");
        ASSERT_EQ(inf.size(), 1u);
        EXPECT_EQ(inf[0].packet_id, 9);
        EXPECT_EQ(inf[0].at_ms, 100);
        EXPECT_EQ(store_->get_retained("a/b")->payload, "ret");
        EXPECT_EQ(store_->get_route("a/+/b")->node, "node@host");
        EXPECT_EQ(store_->get_config("mqtt.allow_anonymous"), "true");
        EXPECT_EQ(store_->get_user("admin")->password_hash, "hash");
        EXPECT_EQ(q[0].message.topic, "a/x/b");
        EXPECT_EQ(q[0].message.id, id);
        // One reference: the message is held by its entry (values.h), not in `messages`.
        EXPECT_FALSE(store_->get_message(id));
        EXPECT_EQ(store_->count(Counted::Messages), 1u);
        reopen();
    }
}

TEST_F(StoreTest, CountsAreExactAndDoNotDoubleCount) {
    for (int i = 0; i < 2; ++i) {  // the second round re-puts the same keys
        WriteBatch b;
        b.put_session(session("s1"));
        b.put_session(session("s2"));
        b.put_subscription(SubscriptionRecord{"s1", "x", 0, false, false, 0, 0});
        b.put_retained(RetainedRecord{"r/1", "p", 0, "", 0, 0});
        b.put_route(RouteRecord{"x", "n"});
        b.put_user(UserRecord{"u", "h", "", 0});
        b.put_inflight(InflightRecord{"s1", Direction::Outbound, 1, 0});
        write(std::move(b));
    }
    // The same put twice within one batch and across batches of one group.
    WriteBatch b;
    b.put_session(session("s3"));
    b.put_session(session("s3"));
    write(std::move(b));
    EXPECT_EQ(store_->count(Counted::Sessions), 3u);
    EXPECT_EQ(store_->count(Counted::Subscriptions), 1u);
    EXPECT_EQ(store_->count(Counted::Retained), 1u);
    EXPECT_EQ(store_->count(Counted::Routes), 1u);
    EXPECT_EQ(store_->count(Counted::Users), 1u);
    EXPECT_EQ(store_->session_counts("s1").subscriptions, 1u);
    EXPECT_EQ(store_->session_counts("s1").awaiting_comp, 1u);
    WriteBatch d;
    d.delete_retained("r/1");
    d.delete_retained("r/1");
    d.delete_route("x");
    d.delete_user("u");
    d.delete_user("nobody");
    d.delete_subscription("s1", "x");
    d.delete_inflight("s1", Direction::Outbound, 1);
    write(std::move(d));
    // The maxima stay where the counts were highest (monitoring/stats).
    EXPECT_EQ(store_->count(Counted::Retained), 0u);
    EXPECT_EQ(store_->count_max(Counted::Retained), 1u);
    EXPECT_EQ(store_->count_max(Counted::Sessions), 3u);
    reopen();
    EXPECT_EQ(store_->count(Counted::Sessions), 3u);
    EXPECT_EQ(store_->count(Counted::Subscriptions), 0u);
    EXPECT_EQ(store_->count(Counted::Retained), 0u);
    EXPECT_EQ(store_->count(Counted::Routes), 0u);
    EXPECT_EQ(store_->count(Counted::Users), 0u);
    EXPECT_EQ(store_->session_counts("s1").subscriptions, 0u);
    EXPECT_EQ(store_->session_counts("s1").awaiting_comp, 0u);
}

TEST_F(StoreTest, SessionCountsTrackQueueAndInflight) {
    uint64_t m = store_->next_message_id();
    WriteBatch b;
    b.put_message(msg(m));
    for (uint64_t seq = 0; seq < 5; ++seq) {
        b.enqueue(entry("c", seq, m));
    }
    b.put_inflight(InflightRecord{"c", Direction::Inbound, 1, 0});
    b.put_inflight(InflightRecord{"c", Direction::Inbound, 2, 0});
    b.put_inflight(InflightRecord{"c", Direction::Outbound, 1, 0});
    write(std::move(b));
    WriteBatch again;  // re-enqueue of an existing seq does not count again
    again.enqueue(entry("c", 4, m));
    write(std::move(again));
    WriteBatch r;
    r.remove_queued("c", 0);
    r.remove_queued("c", 1, /*dropped=*/true);
    r.remove_queued("c", 99);  // absent: no-op
    write(std::move(r));
    for (int round = 0; round < 2; ++round) {
        SessionCounts c = store_->session_counts("c");
        EXPECT_EQ(c.queued, 3u);
        EXPECT_EQ(c.enqueued_total, 5u);
        EXPECT_EQ(c.dropped_total, 1u);
        EXPECT_EQ(c.next_seq, 5u);
        EXPECT_EQ(c.awaiting_rel, 2u);
        EXPECT_EQ(c.awaiting_comp, 1u);
        EXPECT_EQ(store_->count(Counted::QueueEntries), 3u);
        reopen();
    }
    auto q = store_->read_queue("c", 3, 10);
    ASSERT_EQ(q.size(), 2u);
    EXPECT_EQ(q[0].entry.seq, 3u);
    EXPECT_EQ(q[1].entry.seq, 4u);
    EXPECT_EQ(store_->read_queue("c", 0, 1).size(), 1u);
}

TEST_F(StoreTest, PagingByCursorAndSkipCoversEverythingOnce) {
    std::set<std::string> all;
    WriteBatch b;
    for (int i = 0; i < 95; ++i) {
        std::string id = "client-" + std::to_string(i);
        all.insert(id);
        b.put_session(session(id));
    }
    write(std::move(b));
    EXPECT_EQ(store_->count(Counted::Sessions), 95u);
    std::vector<std::string> by_cursor;
    PageRequest req;
    req.limit = 10;
    int pages = 0;
    for (;;) {
        auto page = store_->sessions(req);
        ++pages;
        // The same page by skip.
        PageRequest sk;
        sk.skip = by_cursor.size();
        sk.limit = 10;
        auto page2 = store_->sessions(sk);
        ASSERT_EQ(page.items.size(), page2.items.size());
        for (size_t i = 0; i < page.items.size(); ++i) {
            EXPECT_EQ(page.items[i].client_id, page2.items[i].client_id);
            by_cursor.push_back(page.items[i].client_id);
        }
        if (page.next_cursor.empty()) {
            break;
        }
        req.cursor = page.next_cursor;
    }
    EXPECT_EQ(pages, 10);
    EXPECT_TRUE(std::is_sorted(by_cursor.begin(), by_cursor.end()));
    EXPECT_EQ(std::set<std::string>(by_cursor.begin(), by_cursor.end()), all);
    EXPECT_EQ(by_cursor.size(), all.size());
    PageRequest past;
    past.skip = 1000;
    EXPECT_TRUE(store_->sessions(past).items.empty());
}

TEST_F(StoreTest, QueuePageIsPerClient) {
    uint64_t m = store_->next_message_id();
    WriteBatch b;
    b.put_message(msg(m));
    for (uint64_t s = 0; s < 25; ++s) {
        b.enqueue(entry("a", s, m));
        b.enqueue(entry("ab", s, m));
    }
    write(std::move(b));
    PageRequest req;
    req.limit = 7;
    std::vector<uint64_t> seqs;
    for (;;) {
        auto page = store_->queue_page("a", req);
        for (auto& [e, message] : page.items) {
            EXPECT_EQ(e.client_id, "a");
            EXPECT_EQ(message.id, m);
            seqs.push_back(e.seq);
        }
        if (page.next_cursor.empty()) {
            break;
        }
        req.cursor = page.next_cursor;
    }
    ASSERT_EQ(seqs.size(), 25u);
    for (uint64_t i = 0; i < 25; ++i) {
        EXPECT_EQ(seqs[i], i);
    }
}

// Reference matcher (MQTT 3.1.1 4.7).
bool matches(const std::string& filter, const std::string& topic) {
    if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
        (filter[0] == '+' || filter[0] == '#')) {
        return false;
    }
    auto split = [](const std::string& s) {
        std::vector<std::string> out;
        size_t start = 0;
        for (;;) {
            size_t p = s.find('/', start);
            out.push_back(s.substr(start, p - start));
            if (p == std::string::npos) {
                return out;
            }
            start = p + 1;
        }
    };
    auto f = split(filter);
    auto t = split(topic);
    size_t i = 0;
    for (; i < f.size(); ++i) {
        if (f[i] == "#") {
            return true;
        }
        if (i >= t.size()) {
            return false;
        }
        if (f[i] != "+" && f[i] != t[i]) {
            return false;
        }
    }
    return i == t.size();
}

TEST_F(StoreTest, RetainedWildcardsMatchLikeMqtt) {
    std::vector<std::string> topics = {"a",
                                       "a/b",
                                       "a/b/c",
                                       "a/c",
                                       "a/bc",
                                       "ab",
                                       "ab/c",
                                       "a//c",
                                       "/a",
                                       "/",
                                       "a/",
                                       "$SYS/x",
                                       "$SYS",
                                       "$x/b",
                                       "b/b",
                                       "c/d/e/f",
                                       "a/b/c/d",
                                       "x/a/b",
                                       "+lit",
                                       "sport/tennis/player1",
                                       "sport/tennis/player1/ranking"};
    WriteBatch b;
    for (auto& t : topics) {
        b.put_retained(RetainedRecord{t, "p:" + t, 0, "", 0, 0});
    }
    write(std::move(b));
    EXPECT_EQ(store_->count(Counted::Retained), topics.size());
    std::vector<std::string> filters = {
            "#",       "+",     "a/#",   "a/+",   "+/b",   "+/+",     "a/+/c",
            "$SYS/#",  "$SYS",  "+/#",   "a/b/#", "a/b",   "/+",      "+/",
            "a//c",    "a/+/+", "+/+/+", "c/#",   "zzz/#", "a/b/c/#", "sport/tennis/player1/#",
            "sport/#", "$x/+",  "#/x" /* invalid: matches nothing sensible but must not crash */};
    for (auto& f : filters) {
        std::set<std::string> want;
        for (auto& t : topics) {
            if (f != "#/x" && matches(f, t)) {
                want.insert(t);
            }
        }
        std::vector<std::string> got;
        Status s = store_->match_retained(f, [&](RetainedRecord&& r) {
            EXPECT_EQ(r.payload, "p:" + r.topic);
            got.push_back(r.topic);
            return true;
        });
        ASSERT_TRUE(s.is_ok()) << f;
        if (f == "#/x") {
            continue;
        }
        EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want) << "filter " << f;
        EXPECT_EQ(got.size(), want.size()) << "duplicates for " << f;
        // Paged: pages of 2 by cursor, and by skip, give the same sequence.
        std::vector<std::string> paged;
        PageRequest req;
        req.limit = 2;
        for (int guard = 0; guard < 100; ++guard) {
            auto page = store_->retained(f, req);
            PageRequest sk;
            sk.skip = paged.size();
            sk.limit = 2;
            auto page2 = store_->retained(f, sk);
            ASSERT_EQ(page.items.size(), page2.items.size()) << f;
            for (size_t i = 0; i < page.items.size(); ++i) {
                EXPECT_EQ(page.items[i].topic, page2.items[i].topic);
                paged.push_back(page.items[i].topic);
            }
            if (page.next_cursor.empty()) {
                break;
            }
            req.cursor = page.next_cursor;
        }
        EXPECT_EQ(paged, got) << "paging of " << f;
    }
    // Explicit MQTT rules.
    auto count = [&](const std::string& f) {
        size_t n = 0;
        store_->match_retained(f, [&](RetainedRecord&&) { return ++n, true; }).ignore();
        return n;
    };
    EXPECT_EQ(count("$SYS/#"), 2u);                  // "$SYS" (parent) and "$SYS/x"
    EXPECT_EQ(count("sport/tennis/player1/#"), 2u);  // parent included
    EXPECT_EQ(count("#"), topics.size() - 3);        // no '$' topics
    size_t stop_after = 0;
    store_->match_retained("#", [&](RetainedRecord&&) { return ++stop_after < 3; }).ignore();
    EXPECT_EQ(stop_after, 3u);
}

// match_retained answers from the in-memory index (retained_index.h): it must follow puts,
// overwrites and deletes, within one batch and across groups, and be rebuilt on open.
TEST_F(StoreTest, RetainedLookupFollowsDeletesOverwritesAndReopen) {
    auto topics = [&](const std::string& f) {
        std::vector<std::string> got;
        Status s = store_->match_retained(f, [&](RetainedRecord&& r) {
            got.push_back(r.topic + "=" + r.payload);
            return true;
        });
        EXPECT_TRUE(s.is_ok()) << s.to_string();
        return got;
    };
    using V = std::vector<std::string>;
    WriteBatch b;
    for (const char* t : {"a/b", "a/c", "a/d", "x"}) {
        b.put_retained(RetainedRecord{t, "1", 0, "", 0, 0});
    }
    write(std::move(b));
    EXPECT_EQ(topics("+/+"), (V{"a/b=1", "a/c=1", "a/d=1"}));
    WriteBatch d;
    d.delete_retained("a/b");
    d.put_retained(RetainedRecord{"a/c", "2", 0, "", 0, 0});  // overwrite
    d.delete_retained("a/d");
    d.put_retained(RetainedRecord{"a/d", "3", 0, "", 0, 0});  // deleted, then put again
    d.put_retained(RetainedRecord{"a/e", "4", 0, "", 0, 0});
    d.delete_retained("a/e");  // put, then deleted in the same batch
    write(std::move(d));
    EXPECT_EQ(topics("a/+"), (V{"a/c=2", "a/d=3"}));
    EXPECT_EQ(topics("a/b"), V{});
    EXPECT_EQ(topics("#"), (V{"a/c=2", "a/d=3", "x=1"}));
    reopen();
    EXPECT_EQ(topics("#"), (V{"a/c=2", "a/d=3", "x=1"}));
    WriteBatch e;
    e.delete_retained("x");
    write(std::move(e));
    EXPECT_EQ(topics("+"), V{});
    EXPECT_EQ(topics("#"), (V{"a/c=2", "a/d=3"}));
    // A stopping callback stops across MultiGet chunks too.
    WriteBatch many;
    for (int i = 0; i < 200; ++i) {
        many.put_retained(RetainedRecord{name("m/", 1000 + i), "p", 0, "", 0, 0});
    }
    write(std::move(many));
    size_t n = 0;
    store_->match_retained("m/+", [&](RetainedRecord&&) { return ++n < 100; }).ignore();
    EXPECT_EQ(n, 100u);
    EXPECT_EQ(topics("m/+").size(), 200u);
}

TEST_F(StoreTest, FanOutStoresPayloadOnceAndDeletesWithLastReference) {
    const std::string payload(1024, 'x');
    uint64_t id = store_->next_message_id();
    WriteBatch b;
    b.put_message(msg(id, "fan/out", payload));
    for (int i = 0; i < 1000; ++i) {
        b.enqueue(entry(name("s", i), 0, id));
    }
    write(std::move(b));
    EXPECT_EQ(store_->count(Counted::Messages), 1u);
    EXPECT_EQ(store_->count(Counted::QueueEntries), 1000u);
    for (int i = 0; i < 1000; i += 100) {
        auto q = store_->read_queue(name("s", i), 0, 10);
        ASSERT_EQ(q.size(), 1u);
        EXPECT_EQ(q[0].message.payload, payload);
    }
    for (int i = 0; i < 500; ++i) {
        WriteBatch r;
        r.remove_queued(name("s", i), 0);
        write(std::move(r));
    }
    reopen();  // the reference count is loaded lazily from disk afterwards
    for (int i = 500; i < 999; ++i) {
        WriteBatch r;
        r.remove_queued(name("s", i), 0);
        write(std::move(r));
    }
    ASSERT_TRUE(store_->get_message(id));
    EXPECT_EQ(store_->count(Counted::Messages), 1u);
    WriteBatch last;
    last.remove_queued("s999", 0);
    write(std::move(last));
    EXPECT_FALSE(store_->get_message(id));
    EXPECT_EQ(store_->count(Counted::Messages), 0u);
    EXPECT_EQ(store_->count(Counted::QueueEntries), 0u);
    reopen();
    EXPECT_EQ(store_->count(Counted::Messages), 0u);
}

TEST_F(StoreTest, MessageWithoutReferenceIsNotStored) {
    uint64_t id = store_->next_message_id();
    WriteBatch b;
    b.put_message(msg(id));
    write(std::move(b));
    EXPECT_FALSE(store_->get_message(id));
    EXPECT_EQ(store_->count(Counted::Messages), 0u);
    // Enqueue then remove in one batch: gone, counted once.
    uint64_t id2 = store_->next_message_id();
    WriteBatch c;
    c.put_message(msg(id2));
    c.enqueue(entry("c", 0, id2));
    c.remove_queued("c", 0);
    write(std::move(c));
    EXPECT_FALSE(store_->get_message(id2));
    EXPECT_EQ(store_->count(Counted::Messages), 0u);
    EXPECT_EQ(store_->count(Counted::QueueEntries), 0u);
}

// A message with one entry lives in that entry; replacing or deleting the entry releases it.
TEST_F(StoreTest, InlineMessageGoesWithItsEntry) {
    const uint64_t m1 = store_->next_message_id();
    WriteBatch b1;
    b1.put_session(session("c"));
    b1.put_message(msg(m1, "t", "one"));
    b1.enqueue(entry("c", 0, m1));
    write(std::move(b1));
    EXPECT_EQ(store_->count(Counted::Messages), 1u);
    const uint64_t m2 = store_->next_message_id();
    WriteBatch b2;
    b2.put_message(msg(m2, "t", "two"));
    b2.enqueue(entry("c", 0, m2));  // the same seq: replaces the entry and its message
    write(std::move(b2));
    EXPECT_EQ(store_->count(Counted::Messages), 1u);
    EXPECT_EQ(store_->count(Counted::QueueEntries), 1u);
    auto q = store_->read_queue("c", 0, 10);
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(q[0].message.payload, "two");
    auto page = store_->queue_page("c", PageRequest{});
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].message.topic, "t");
    WriteBatch b3;
    b3.delete_session("c");
    write(std::move(b3));
    EXPECT_EQ(store_->count(Counted::Messages), 0u);
    EXPECT_EQ(store_->count(Counted::QueueEntries), 0u);
}

TEST_F(StoreTest, DeleteSessionCascades) {
    uint64_t shared = store_->next_message_id();
    uint64_t own = store_->next_message_id();
    WriteBatch b;
    b.put_session(session("victim"));
    b.put_session(session("other"));
    b.put_subscription(SubscriptionRecord{"victim", "a/#", 1, false, false, 0, 0});
    b.put_subscription(SubscriptionRecord{"victim", "b", 1, false, false, 0, 0});
    b.put_subscription(SubscriptionRecord{"other", "a/#", 1, false, false, 0, 0});
    b.put_message(msg(shared));
    b.put_message(msg(own));
    b.enqueue(entry("victim", 0, shared));
    b.enqueue(entry("victim", 1, own));
    b.enqueue(entry("other", 0, shared));
    b.put_inflight(InflightRecord{"victim", Direction::Inbound, 3, 0});
    write(std::move(b));
    WriteBatch d;
    d.delete_session("victim");
    write(std::move(d));
    for (int round = 0; round < 2; ++round) {
        EXPECT_FALSE(store_->get_session("victim"));
        EXPECT_TRUE(store_->subscriptions_of("victim").empty());
        EXPECT_TRUE(store_->read_queue("victim", 0, 10).empty());
        EXPECT_TRUE(store_->inflight_of("victim").empty());
        SessionCounts c = store_->session_counts("victim");
        EXPECT_EQ(c.subscriptions + c.queued + c.awaiting_rel + c.enqueued_total, 0u);
        EXPECT_FALSE(store_->get_message(own));
        EXPECT_TRUE(store_->get_message(shared));
        EXPECT_EQ(store_->count(Counted::Sessions), 1u);
        EXPECT_EQ(store_->count(Counted::Subscriptions), 1u);
        EXPECT_EQ(store_->count(Counted::QueueEntries), 1u);
        EXPECT_EQ(store_->count(Counted::Messages), 1u);
        EXPECT_EQ(store_->session_counts("other").queued, 1u);
        reopen();
    }
    WriteBatch r;
    r.remove_queued("other", 0);
    write(std::move(r));
    EXPECT_FALSE(store_->get_message(shared));
}

TEST_F(StoreTest, InvalidBatchIsRolledBackAlone) {
    std::atomic<int> done{0};
    Status bad_status, good_status;
    WriteBatch bad;
    bad.put_session(session("half"));
    bad.enqueue(entry("half", 0, 999999));  // unknown message
    WriteBatch good;
    good.put_session(session("whole"));
    store_->commit(std::move(bad), [&](const Status& s) { bad_status = s, ++done; });
    store_->commit(std::move(good), [&](const Status& s) { good_status = s, ++done; });
    WriteBatch nul;
    nul.put_session(session(std::string("a\0b", 3)));
    Status s = store_->write(std::move(nul));
    EXPECT_EQ(s.code(), Status::Code::InvalidArgument);
    EXPECT_EQ(done.load(), 2);
    EXPECT_EQ(bad_status.code(), Status::Code::InvalidArgument) << bad_status.to_string();
    EXPECT_TRUE(good_status.is_ok());
    EXPECT_FALSE(store_->get_session("half"));
    EXPECT_TRUE(store_->get_session("whole"));
    EXPECT_EQ(store_->count(Counted::Sessions), 1u);
    EXPECT_TRUE(store_->error().is_ok());
}

// Batches that meet in one group commit are written as the group's final state: an entry
// enqueued and removed within the group, and its message, are never written, and the counts
// stay exact (rocks_store.h, ABSORPTION). A failing batch in the middle changes nothing.
TEST_F(StoreTest, ChangesUndoneWithinOneGroupLeaveNothing) {
    std::promise<void> release;
    std::shared_future<void> hold = release.get_future().share();
    std::atomic<bool> held{false};
    WriteBatch first;
    first.put_session(session("c1"));
    const uint64_t kept = store_->next_message_id();
    first.put_message(msg(kept, "t", "kept"));
    first.enqueue(entry("c1", 0, kept));
    // Callbacks run on the committer: holding this one makes the next batches one group.
    store_->commit(std::move(first), [&](const Status&) {
        held = true;
        hold.wait();
    });
    while (!held) {
        std::this_thread::yield();
    }
    const uint64_t gone = store_->next_message_id();
    WriteBatch add;
    add.put_message(msg(gone, "t", "gone"));
    add.enqueue(entry("c1", 1, gone));
    WriteBatch bad;
    bad.remove_queued("c1", 0);
    bad.enqueue(entry("c1", 5, 999999));  // unknown message: the whole batch fails
    WriteBatch remove;
    remove.remove_queued("c1", 1);
    Status add_s, bad_s, remove_s;
    store_->commit(std::move(add), [&](const Status& s) { add_s = s; });
    store_->commit(std::move(bad), [&](const Status& s) { bad_s = s; });
    store_->commit(std::move(remove), [&](const Status& s) { remove_s = s; });
    release.set_value();
    write(WriteBatch{});  // completes after every earlier callback

    EXPECT_TRUE(add_s.is_ok()) << add_s.to_string();
    EXPECT_EQ(bad_s.code(), Status::Code::InvalidArgument) << bad_s.to_string();
    EXPECT_TRUE(remove_s.is_ok()) << remove_s.to_string();
    for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(round == 0 ? "before reopen" : "after reopen");
        EXPECT_EQ(store_->count(Counted::QueueEntries), 1u);
        EXPECT_EQ(store_->count(Counted::Messages), 1u);
        auto q = store_->read_queue("c1", 0, 10);
        ASSERT_EQ(q.size(), 1u);
        EXPECT_EQ(q[0].entry.seq, 0u);
        EXPECT_EQ(q[0].message.payload, "kept");
        SessionCounts c = store_->session_counts("c1");
        EXPECT_EQ(c.queued, 1u);
        EXPECT_EQ(c.enqueued_total, 2u);
        EXPECT_EQ(c.next_seq, 2u);
        reopen();
    }
    // The reference count of the surviving message is intact: removing its entry frees it.
    WriteBatch last;
    last.remove_queued("c1", 0);
    write(std::move(last));
    EXPECT_TRUE(store_->read_queue("c1", 0, 10).empty());
    EXPECT_EQ(store_->count(Counted::Messages), 0u);
}

// A failing batch that changed what an earlier batch of its own group wrote (removed its entry,
// replaced its message's reference) leaves that state exactly as the earlier batch left it.
TEST_F(StoreTest, FailedBatchRestoresWhatEarlierBatchesOfItsGroupWrote) {
    std::promise<void> release;
    std::shared_future<void> hold = release.get_future().share();
    std::atomic<bool> held{false};
    WriteBatch first;
    first.put_session(session("c1"));
    store_->commit(std::move(first), [&](const Status&) {
        held = true;
        hold.wait();
    });
    while (!held) {
        std::this_thread::yield();
    }
    const uint64_t a = store_->next_message_id();
    const uint64_t b = store_->next_message_id();
    WriteBatch add;
    add.put_message(msg(a, "t", "inline"));  // one reference: inline in its entry
    add.enqueue(entry("c1", 0, a));
    add.put_message(msg(b, "t", "shared"));  // two references: a `messages` record
    add.enqueue(entry("c1", 1, b));
    add.enqueue(entry("c2", 0, b));
    WriteBatch bad;
    bad.remove_queued("c1", 0);
    bad.remove_queued("c1", 1);
    bad.remove_queued("c2", 0);
    bad.enqueue(entry("c1", 7, 999999));  // unknown message: the whole batch fails
    Status add_s, bad_s;
    store_->commit(std::move(add), [&](const Status& s) { add_s = s; });
    store_->commit(std::move(bad), [&](const Status& s) { bad_s = s; });
    release.set_value();
    write(WriteBatch{});

    EXPECT_TRUE(add_s.is_ok()) << add_s.to_string();
    EXPECT_EQ(bad_s.code(), Status::Code::InvalidArgument) << bad_s.to_string();
    for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(round == 0 ? "before reopen" : "after reopen");
        EXPECT_EQ(store_->count(Counted::QueueEntries), 3u);
        EXPECT_EQ(store_->count(Counted::Messages), 2u);
        auto q = store_->read_queue("c1", 0, 10);
        ASSERT_EQ(q.size(), 2u);
        EXPECT_EQ(q[0].message.payload, "inline");
        EXPECT_EQ(q[1].message.payload, "shared");
        ASSERT_EQ(store_->read_queue("c2", 0, 10).size(), 1u);
        EXPECT_EQ(store_->session_counts("c1").queued, 2u);
        EXPECT_EQ(store_->session_counts("c2").queued, 1u);
        reopen();
    }
    // Both references of the shared message are intact: it goes with the second removal.
    WriteBatch one;
    one.remove_queued("c1", 1);
    write(std::move(one));
    EXPECT_TRUE(store_->get_message(b));
    WriteBatch two;
    two.remove_queued("c2", 0);
    two.remove_queued("c1", 0);
    write(std::move(two));
    EXPECT_FALSE(store_->get_message(b));
    EXPECT_EQ(store_->count(Counted::Messages), 0u);
    EXPECT_EQ(store_->count(Counted::QueueEntries), 0u);
}

TEST(StoreSticky, FailedWriteStopsTheStore) {
    TempDir dir;
    std::atomic<bool> fail{false};
    std::atomic<int> reported{0};
    Options o;
    o.fail_write_for_test = [&] {
        return fail.load();
    };
    o.on_sticky_error = [&](const Status&) {
        ++reported;
    };
    auto store = open_store(dir.sub("db"), o);
    WriteBatch ok;
    ok.put_session(session("before"));
    ASSERT_TRUE(store->write(std::move(ok)).is_ok());
    fail = true;
    WriteBatch b1;
    b1.put_session(session("lost"));
    Status s1 = store->write(std::move(b1));
    EXPECT_EQ(s1.code(), Status::Code::IoError) << s1.to_string();
    fail = false;  // even when the disk recovers, the store stays stopped
    EXPECT_FALSE(store->error().is_ok());
    bool called = false;
    WriteBatch b2;
    b2.put_session(session("after"));
    store->commit(std::move(b2), [&](const Status& s) {
        called = true;
        EXPECT_EQ(s.code(), Status::Code::Stopped);
    });
    EXPECT_TRUE(called);  // completed at once, on this thread
    WriteBatch b3;
    b3.put_session(session("after"));
    EXPECT_EQ(store->write(std::move(b3)).code(), Status::Code::Stopped);
    EXPECT_EQ(reported.load(), 1);
    EXPECT_FALSE(store->get_session("lost"));
    EXPECT_FALSE(store->get_session("after"));
    EXPECT_EQ(store->count(Counted::Sessions), 1u);
}

TEST(StoreClose, CommitAfterCloseIsStopped) {
    TempDir dir;
    auto store = open_store(dir.sub("db"));
    store->close();
    store->close();  // idempotent
    WriteBatch b;
    b.put_session(session("x"));
    bool called = false;
    store->commit(std::move(b), [&](const Status& s) {
        called = true;
        EXPECT_EQ(s.code(), Status::Code::Stopped);
    });
    EXPECT_TRUE(called);
}

TEST(StoreGroupCommit, ConcurrentWritersAllCompleteAndAreVisible) {
    TempDir dir;
    auto store = open_store(dir.sub("db"));
    constexpr int kThreads = 8;
    constexpr int kPerThread = 400;
    std::atomic<int> callbacks{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::string client = name("w", t);
            for (int i = 0; i < kPerThread; ++i) {
                WriteBatch b;
                uint64_t id = store->next_message_id();
                b.put_message(msg(id));
                b.enqueue(entry(client, static_cast<uint64_t>(i), id));
                if (i % 50 == 49) {  // some writers block, most pipeline
                    if (!store->write(std::move(b)).is_ok()) {
                        ++failures;
                    }
                    ++callbacks;
                } else {
                    store->commit(std::move(b), [&](const Status& s) {
                        if (!s.is_ok()) {
                            ++failures;
                        }
                        ++callbacks;
                    });
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    store->close();  // drains
    EXPECT_EQ(callbacks.load(), kThreads * kPerThread);
    EXPECT_EQ(failures.load(), 0);
    store = open_store(dir.sub("db"));
    EXPECT_EQ(store->count(Counted::Messages), uint64_t{kThreads * kPerThread});
    EXPECT_EQ(store->count(Counted::QueueEntries), uint64_t{kThreads * kPerThread});
    for (int t = 0; t < kThreads; ++t) {
        auto q = store->read_queue(name("w", t), 0, 100000);
        EXPECT_EQ(q.size(), size_t{kPerThread});
        EXPECT_EQ(store->session_counts(name("w", t)).queued, uint64_t{kPerThread});
    }
}

TEST(StoreIds, MessageIdsStayMonotonicAcrossRestarts) {
    TempDir dir;
    uint64_t last = 0;
    {
        auto store = open_store(dir.sub("db"));
        for (int i = 0; i < 10; ++i) {
            last = store->next_message_id();
        }
        WriteBatch b;  // store and delete the last one: nothing is left in `messages`
        b.put_message(msg(last));
        b.enqueue(entry("c", 0, last));
        ASSERT_TRUE(store->write(std::move(b)).is_ok());
        WriteBatch r;
        r.remove_queued("c", 0);
        ASSERT_TRUE(store->write(std::move(r)).is_ok());
    }
    auto store = open_store(dir.sub("db"));
    EXPECT_GT(store->next_message_id(), last);
}

// A session deleted and recreated with a subscription in one batch (it ended and its client
// came back in the same loop turn) keeps the count of that subscription.
TEST_F(StoreTest, SessionRecreatedInOneBatchKeepsItsCounts) {
    {
        WriteBatch b;
        b.put_session(session("re"));
        b.put_subscription(SubscriptionRecord{"re", "old", 0, false, false, 0, 0});
        write(std::move(b));
    }
    WriteBatch b;
    b.delete_session("re");
    b.put_session(session("re"));
    b.put_subscription(SubscriptionRecord{"re", "new", 1, false, false, 0, 0});
    write(std::move(b));
    EXPECT_EQ(store_->subscriptions_of("re").size(), 1u);
    EXPECT_EQ(store_->session_counts("re").subscriptions, 1u);
    reopen();
    EXPECT_EQ(store_->session_counts("re").subscriptions, 1u);
}

TEST(StoreOpen, LockedDirectorySaysSo) {
    TempDir dir;
    auto first = open_store(dir.sub("db"));
    Options o;
    o.dir = dir.sub("db");
    std::unique_ptr<Store> second;
    Status s = Store::open(o, second);
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("locked"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(o.dir), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

TEST(StoreOpen, NotWritableDirectory) {
    TempDir dir;
    std::ofstream(dir.sub("file")) << "x";
    Options o;
    o.dir = dir.sub("file") + "/db";
    std::unique_ptr<Store> s;
    Status st = Store::open(o, s);
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("not writable"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(o.dir), std::string::npos) << st.message();
}

TEST(StoreOpen, NewerSchemaVersionRefuses) {
    TempDir dir;
    open_store(dir.sub("db"))->close();
    {
        rocksdb::DBOptions dbo;
        std::vector<std::string> names;
        ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(dbo, dir.sub("db"), &names).ok());
        std::vector<rocksdb::ColumnFamilyDescriptor> desc;
        for (auto& n : names) {
            desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
        }
        std::vector<rocksdb::ColumnFamilyHandle*> handles;
        rocksdb::DB* db = nullptr;
        ASSERT_TRUE(rocksdb::DB::Open(dbo, dir.sub("db"), desc, &handles, &db).ok());
        size_t meta = std::find(names.begin(), names.end(), "meta") - names.begin();
        ASSERT_LT(meta, names.size());
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[meta],
                            std::string(keys::kSchemaVersion),
                            values::encode_u32(kSchemaVersion + 1))
                            .ok());
        rocksdb::ColumnFamilyHandle* extra = nullptr;  // a family this version does not know
        ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "future", &extra).ok());
        handles.push_back(extra);
        for (auto* h : handles) {
            ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
        }
        delete db;
    }
    Options o;
    o.dir = dir.sub("db");
    std::unique_ptr<Store> s;
    Status st = Store::open(o, s);
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("newer"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("schema version " + std::to_string(kSchemaVersion + 1)),
              std::string::npos)
            << st.message();
}

TEST(StoreOpen, CorruptDirectorySaysSo) {
    TempDir dir;
    open_store(dir.sub("db"))->close();
    std::ofstream(dir.sub("db") + "/CURRENT", std::ios::trunc) << "garbage-without-newline";
    Options o;
    o.dir = dir.sub("db");
    std::unique_ptr<Store> s;
    Status st = Store::open(o, s);
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("corrupt"), std::string::npos) << st.message();
}

TEST(StoreOpen, MissingDirectoryWithoutCreate) {
    TempDir dir;
    Options o;
    o.dir = dir.sub("nope");
    o.create_if_missing = false;
    std::unique_ptr<Store> s;
    Status st = Store::open(o, s);
    EXPECT_TRUE(st.is_not_found()) << st.to_string();
}

}  // namespace
}  // namespace mqttd::storage
