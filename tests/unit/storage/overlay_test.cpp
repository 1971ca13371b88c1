// The overlay's contract (storage/overlay.h, INVARIANTS): what a group writes, and the undo
// journal that rolls a failed batch back exactly.
#include "storage/overlay.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd::storage {
namespace {

// One key the group writes: its value, or nullopt for a Delete.
using Write = std::pair<std::string, std::optional<std::string>>;

std::vector<Write> writes(Overlay& g, Cf c) {
    std::vector<Write> out;
    bool completed = g.for_each_write(c, [&](const std::string& key, const Overlay::Kv& kv) {
        out.emplace_back(key, kv.live ? std::optional<std::string>(kv.value) : std::nullopt);
        return true;
    });
    EXPECT_TRUE(completed);
    return out;
}

// A key's state as the next op would see it.
struct Seen {
    bool touched = false;
    bool live = false;
    bool in_db = false;
    std::string value;
    bool operator==(const Seen&) const = default;
};

Seen seen(const Overlay& g, Cf c, std::string_view key) {
    const Overlay::Kv* kv = g.find(c, key);
    if (kv == nullptr) {
        return {};
    }
    return {true, kv->live, kv->in_db, kv->live ? kv->value : std::string()};
}

SessionCounts queued(uint64_t n) {
    SessionCounts c;
    c.queued = n;
    c.next_seq = n;
    return c;
}

TEST(Overlay, KeyCreatedAndRemovedInOneGroupIsNeverWritten) {
    Overlay g;
    g.begin_batch();  // an enqueue of a new entry (not on disk)...
    g.put(Cf::Queues, "q1", "entry", /*in_db=*/false);
    g.put(Cf::Queues, "q2", "kept", false);
    g.put(Cf::Queues, "q9", "on disk", /*in_db=*/true);
    g.commit_batch();
    g.begin_batch();  // ...and its acknowledgement, in a later batch of the same group
    g.erase(Cf::Queues, "q1", false);
    g.erase(Cf::Queues, "q9", true);
    g.put(Cf::Queues, "q2", "kept, replaced", false);
    g.commit_batch();
    g.begin_batch();  // created and removed within one batch
    g.put(Cf::Messages, "m", "record", false);
    g.erase(Cf::Messages, "m", false);
    g.commit_batch();

    const std::vector<Write> expected = {{"q2", "kept, replaced"}, {"q9", std::nullopt}};
    EXPECT_EQ(writes(g, Cf::Queues), expected);
    EXPECT_TRUE(writes(g, Cf::Messages).empty());
    // The removed key is still known as removed to the ops that follow in the group.
    EXPECT_EQ(seen(g, Cf::Queues, "q1"), (Seen{true, false, false, ""}));
}

TEST(Overlay, WritesComeInKeyOrderOncePerKey) {
    Overlay g;
    g.begin_batch();
    for (const char* k : {"d", "b", "a", "c", "b", "a"}) {
        g.put(Cf::Sessions, k, std::string("v-") + k, true);
    }
    g.commit_batch();
    const std::vector<Write> expected = {{"a", "v-a"}, {"b", "v-b"}, {"c", "v-c"}, {"d", "v-d"}};
    EXPECT_EQ(writes(g, Cf::Sessions), expected);
}

// A batch that changes entries an earlier batch of its group left (twice, so only the first
// change is journaled), removes one, creates others, and moves the counts, then fails: the
// group is left exactly as the earlier batch left it.
TEST(Overlay, FailedBatchIsRolledBackExactly) {
    Overlay g;
    g.begin_batch();
    g.put(Cf::Queues, "a", "a1", /*in_db=*/true);
    g.put(Cf::Queues, "b", "b1", /*in_db=*/false);
    g.erase(Cf::Queues, "gone", /*in_db=*/true);
    g.add_refs(7, Overlay::Refs{1, true, true});
    g.add_session("c1", queued(1));
    g.batch_deltas()[Counted::QueueEntries] += 2;
    g.batch_deltas().add_message(7);
    g.commit_batch();
    const std::vector<Write> before = writes(g, Cf::Queues);
    const Seen a = seen(g, Cf::Queues, "a");
    const Seen b = seen(g, Cf::Queues, "b");
    const Seen gone = seen(g, Cf::Queues, "gone");

    g.begin_batch();
    g.put(Cf::Queues, "a", "a2", false);
    g.put(Cf::Queues, "a", "a3", false);
    g.erase(Cf::Queues, "b", false);
    g.put(Cf::Queues, "b", "b2", false);
    g.put(Cf::Queues, "gone", "back", false);
    g.put(Cf::Queues, "new", "n", false);
    g.put(Cf::Messages, "m", "record", true);
    Overlay::Refs* r = g.touch_refs(7);
    ASSERT_NE(r, nullptr);
    r->rc = 5;
    g.touch_refs(7)->live = false;
    g.add_refs(8, Overlay::Refs{0, true, false});
    Overlay::SessionState* s = g.touch_session("c1");
    ASSERT_NE(s, nullptr);
    s->c = queued(9);
    s->erased = true;
    g.add_session("c2", queued(3));
    g.batch_deltas()[Counted::QueueEntries] += 10;
    g.batch_deltas().add_message(99);
    g.rollback_batch();

    EXPECT_EQ(writes(g, Cf::Queues), before);
    EXPECT_TRUE(writes(g, Cf::Messages).empty());
    EXPECT_EQ(seen(g, Cf::Queues, "a"), a);
    EXPECT_EQ(seen(g, Cf::Queues, "b"), b);
    EXPECT_EQ(seen(g, Cf::Queues, "gone"), gone);
    EXPECT_EQ(seen(g, Cf::Queues, "new"), Seen{});
    EXPECT_EQ(g.family(Cf::Queues).size(), 3u);
    const Overlay::Refs* r7 = g.find_refs(7);
    ASSERT_NE(r7, nullptr);
    EXPECT_EQ(r7->rc, 1u);
    EXPECT_TRUE(r7->live);
    EXPECT_TRUE(r7->in_db);
    EXPECT_EQ(g.find_refs(8), nullptr);
    EXPECT_EQ(g.refs_size(), 1u);
    g.begin_batch();  // touch_session journals, so look through a batch that is then dropped
    const Overlay::SessionState* s1 = g.touch_session("c1");
    ASSERT_NE(s1, nullptr);
    EXPECT_EQ(s1->c.queued, 1u);
    EXPECT_EQ(s1->c.next_seq, 1u);
    EXPECT_EQ(g.touch_session("c2"), nullptr);
    g.rollback_batch();
    EXPECT_EQ(g.sessions_size(), 1u);
    EXPECT_EQ(g.deltas()[Counted::QueueEntries], 2);
    EXPECT_TRUE(g.deltas().has_message);
    EXPECT_EQ(g.deltas().max_message_id, 7u);
}

TEST(Overlay, FailedFirstBatchLeavesNothing) {
    Overlay g;
    g.begin_batch();
    g.put(Cf::Sessions, "s", "v", false);
    g.erase(Cf::Retained, "t", true);
    g.add_refs(1, Overlay::Refs{1, true, false});
    g.add_session("s", queued(1));
    g.batch_deltas()[Counted::Sessions]++;
    g.rollback_batch();
    for (size_t c = 0; c < kNumCf; ++c) {
        EXPECT_TRUE(g.family(static_cast<Cf>(c)).empty()) << kCfNames[c];
    }
    EXPECT_EQ(g.refs_size(), 0u);
    EXPECT_EQ(g.sessions_size(), 0u);
    EXPECT_EQ(g.deltas()[Counted::Sessions], 0);
    EXPECT_FALSE(g.deltas().has_message);
}

TEST(Overlay, CommittedBatchesAddTheirDeltas) {
    Overlay g;
    g.begin_batch();
    g.batch_deltas()[Counted::Messages] += 3;
    g.batch_deltas().add_message(40);
    g.commit_batch();
    g.begin_batch();
    EXPECT_EQ(g.batch_deltas()[Counted::Messages], 0);  // a batch starts from zero
    g.batch_deltas()[Counted::Messages] -= 1;
    g.batch_deltas().add_message(12);
    g.commit_batch();
    EXPECT_EQ(g.deltas()[Counted::Messages], 2);
    EXPECT_EQ(g.deltas().max_message_id, 40u);
}

// delete_session marks the session's counts erased; a later batch of the group that touches
// them again writes what it leaves (the session was stored again).
TEST(Overlay, LaterBatchTouchingErasedCountsRevivesThem) {
    Overlay g;
    g.begin_batch();
    Overlay::SessionState& s = g.add_session("c", queued(4));
    s.c = SessionCounts{};
    s.erased = true;
    EXPECT_TRUE(g.touch_session("c")->erased);  // same batch: still erased
    g.commit_batch();
    g.begin_batch();
    EXPECT_FALSE(g.touch_session("c")->erased);
    g.rollback_batch();
    g.begin_batch();  // the rollback restored the mark
    bool erased = false;
    EXPECT_TRUE(g.for_each_session([&](const std::string&, const Overlay::SessionState& st) {
        erased = st.erased;
        return true;
    }));
    EXPECT_TRUE(erased);
    g.commit_batch();
}

TEST(Overlay, EndGroupDropsTheGroup) {
    Overlay g;
    g.begin_batch();
    g.put(Cf::Queues, "k", "v", false);
    g.add_refs(1, Overlay::Refs{});
    g.add_session("c", {});
    g.batch_deltas()[Counted::Users]++;
    g.commit_batch();
    Overlay::KvMap taken = g.take_family(Cf::Queues);
    EXPECT_EQ(taken.size(), 1u);
    EXPECT_TRUE(g.family(Cf::Queues).empty());
    g.end_group();
    EXPECT_EQ(g.refs_size(), 0u);
    EXPECT_EQ(g.sessions_size(), 0u);
    EXPECT_EQ(g.deltas()[Counted::Users], 0);
    EXPECT_EQ(g.write_bytes(), 0u);
}

}  // namespace
}  // namespace mqttd::storage
