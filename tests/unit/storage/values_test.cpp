#include "storage/values.h"

#include <gtest/gtest.h>

namespace mqttd::storage {
namespace {

TEST(Values, Session) {
    SessionRecord r{"c1", 5, kNeverExpires, -5, 123456789012, 100, 77, "user", {}};
    auto back = values::decode_session("c1", values::encode(r));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->client_id, "c1");
    EXPECT_EQ(back->protocol_level, 5);
    EXPECT_EQ(back->expiry_interval_s, kNeverExpires);
    EXPECT_EQ(back->created_at_ms, -5);
    EXPECT_EQ(back->disconnected_at_ms, 123456789012);
    EXPECT_EQ(back->max_inflight, 100);
    EXPECT_EQ(back->deliver_msg, 77u);
    EXPECT_EQ(back->username, "user");
}

// Format 2: a session with a delayed will keeps it; truncations are refused; one without a
// will stays format 1.
TEST(Values, SessionWithADelayedWill) {
    SessionRecord r{
            "c1", 5, 60, 1, 2, 32, 0, "u", WillRecord{"w/t", "gone", "pr", 1, true, 30, 99}};
    const std::string v = values::encode(r);
    EXPECT_EQ(static_cast<uint8_t>(v[0]), values::kSessionWillFormat);
    auto back = values::decode_session("c1", v);
    ASSERT_TRUE(back && back->will);
    EXPECT_EQ(back->username, "u");
    EXPECT_EQ(back->will->topic, "w/t");
    EXPECT_EQ(back->will->payload, "gone");
    EXPECT_EQ(back->will->properties, "pr");
    EXPECT_EQ(back->will->qos, 1);
    EXPECT_TRUE(back->will->retain);
    EXPECT_EQ(back->will->message_expiry_s, 30u);
    EXPECT_EQ(back->will->due_at_ms, 99);
    for (size_t n = 0; n < v.size(); ++n) {
        EXPECT_FALSE(values::decode_session("c1", v.substr(0, n))) << n;
    }
    r.will.reset();
    EXPECT_EQ(static_cast<uint8_t>(values::encode(r)[0]), values::kValueFormat);
    EXPECT_FALSE(values::decode_session("c1", values::encode(r))->will);
}

TEST(Values, Subscription) {
    SubscriptionRecord r{"c", "a/#", 2, true, true, 2, 99};
    auto b = values::decode_subscription("c", "a/#", values::encode(r));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->qos, 2);
    EXPECT_TRUE(b->no_local);
    EXPECT_TRUE(b->retain_as_published);
    EXPECT_EQ(b->retain_handling, 2);
    EXPECT_EQ(b->subscription_id, 99u);
    EXPECT_EQ(b->topic_filter, "a/#");
}

TEST(Values, Message) {
    MessageRecord m{42, "t/x", std::string("p\0ay", 4), 1, true, "props", "pub", 1, 2};
    auto b = values::decode_message(42, values::encode(m));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->id, 42u);
    EXPECT_EQ(b->topic, "t/x");
    EXPECT_EQ(b->payload, std::string("p\0ay", 4));
    EXPECT_EQ(b->qos, 1);
    EXPECT_TRUE(b->retain);
    EXPECT_EQ(b->properties, "props");
    EXPECT_EQ(b->from_client, "pub");
    EXPECT_EQ(b->created_at_ms, 1);
    EXPECT_EQ(b->expiry_at_ms, 2);
}

TEST(Values, QueueEntry) {
    QueueEntry e{"c", 9, 1ull << 40, 2, true, 7, {}};
    auto b = values::decode_queue_entry("c", 9, values::encode(e));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->message_id, 1ull << 40);
    EXPECT_EQ(b->seq, 9u);
    EXPECT_EQ(b->qos, 2);
    EXPECT_TRUE(b->retain);
    EXPECT_EQ(b->subscription_id, 7u);
}

// peek_queue_entry agrees with decode_queue_entry on what an entry holds and on what it
// refuses, for both formats, without decoding the inline message.
TEST(Values, PeekQueueEntryMatchesDecode) {
    QueueEntry e{"c", 9, 42, 1, false, 0, {}};
    MessageRecord m{42, "t/1", std::string("p\0y", 3), 1, false, "pr", "pub", 5, 6};
    const MessageRecord* const formats[] = {nullptr, &m};
    for (const MessageRecord* with : formats) {
        const std::string v = values::encode(e, with);
        auto r = values::peek_queue_entry(v);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->message_id, 42u);
        EXPECT_EQ(r->inline_message, with != nullptr);
        for (size_t n = 0; n < v.size(); ++n) {  // every truncation is refused by both
            EXPECT_FALSE(values::peek_queue_entry(v.substr(0, n))) << n;
            EXPECT_FALSE(values::decode_queue_entry("c", 9, v.substr(0, n))) << n;
        }
        EXPECT_FALSE(values::peek_queue_entry(v + "x"));
        EXPECT_FALSE(values::decode_queue_entry("c", 9, v + "x"));
    }
}

// Formats 3 and 4: an entry for a message that matched several subscriptions keeps every
// identifier, with or without its message inline; peek agrees and truncations are refused.
TEST(Values, QueueEntryWithSeveralSubscriptionIds) {
    QueueEntry e{"c", 9, 42, 2, false, 5, {7, 1u << 27}};
    MessageRecord m{42, "t/1", "pay", 2, false, "", "pub", 5, 6};
    const MessageRecord* const formats[] = {nullptr, &m};
    for (const MessageRecord* with : formats) {
        const std::string v = values::encode(e, with);
        EXPECT_EQ(static_cast<uint8_t>(v[0]),
                  with ? values::kInlineQueueIdsFormat : values::kQueueIdsFormat);
        std::optional<MessageRecord> inline_message;
        auto b = values::decode_queue_entry("c", 9, v, &inline_message);
        ASSERT_TRUE(b);
        EXPECT_EQ(b->subscription_id, 5u);
        EXPECT_EQ(b->more_subscription_ids, (std::vector<uint32_t>{7, 1u << 27}));
        EXPECT_EQ(inline_message.has_value(), with != nullptr);
        if (inline_message) {
            EXPECT_EQ(inline_message->payload, "pay");
        }
        auto r = values::peek_queue_entry(v);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->inline_message, with != nullptr);
        for (size_t n = 0; n < v.size(); ++n) {
            EXPECT_FALSE(values::peek_queue_entry(v.substr(0, n))) << n;
            EXPECT_FALSE(values::decode_queue_entry("c", 9, v.substr(0, n))) << n;
        }
    }
    // One identifier or none keeps the older formats, so that older entries and new ones of
    // the common case are the same bytes.
    EXPECT_EQ(static_cast<uint8_t>(values::encode(QueueEntry{"c", 1, 2, 1, false, 3, {}})[0]),
              values::kValueFormat);
}

TEST(Values, Inflight) {
    InflightRecord r{"c", Direction::Inbound, 5, 1234};
    InflightRecord b{"c", Direction::Inbound, 5, 0};
    ASSERT_TRUE(values::decode_inflight(values::encode(r), b));
    EXPECT_EQ(b.at_ms, 1234);
}

TEST(Values, Retained) {
    RetainedRecord r{"a/b", "pay", 1, "pr", 10, 20};
    auto b = values::decode_retained("a/b", values::encode(r));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->payload, "pay");
    EXPECT_EQ(b->qos, 1);
    EXPECT_EQ(b->properties, "pr");
    EXPECT_EQ(b->stored_at_ms, 10);
    EXPECT_EQ(b->expiry_at_ms, 20);
}

TEST(Values, RouteConfigUser) {
    auto route = values::decode_route("a/+", values::encode(RouteRecord{"a/+", "node1"}));
    ASSERT_TRUE(route);
    EXPECT_EQ(route->node, "node1");
    auto cfg = values::decode_config(values::encode_config("v"));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(*cfg, "v");
    auto user = values::decode_user("admin", values::encode(UserRecord{"admin", "$h$", "t", 5}));
    ASSERT_TRUE(user);
    EXPECT_EQ(user->password_hash, "$h$");
    EXPECT_EQ(user->tags, "t");
    EXPECT_EQ(user->created_at_ms, 5);
}

TEST(Values, Counts) {
    SessionCounts c{1, 2, 3, 4, 5, 6, 7};
    auto b = values::decode_counts(values::encode(c));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->subscriptions, 1u);
    EXPECT_EQ(b->queued, 2u);
    EXPECT_EQ(b->awaiting_rel, 3u);
    EXPECT_EQ(b->awaiting_comp, 4u);
    EXPECT_EQ(b->enqueued_total, 5u);
    EXPECT_EQ(b->dropped_total, 6u);
    EXPECT_EQ(b->next_seq, 7u);
    EXPECT_EQ(values::decode_u64(values::encode_u64(~0ull)), ~0ull);
    EXPECT_EQ(values::decode_u32(values::encode_u32(3)), 3u);
}

TEST(Values, RejectsBadVersionTruncationAndTrailingBytes) {
    std::string v = values::encode(SessionRecord{"c", 4, 0, 0, 0, 32, 0, "u", {}});
    std::string bad = v;
    bad[0] = 2;
    EXPECT_FALSE(values::decode_session("c", bad));
    EXPECT_FALSE(values::decode_session("c", v.substr(0, v.size() - 1)));
    EXPECT_FALSE(values::decode_session("c", v + "x"));
    EXPECT_FALSE(values::decode_session("c", ""));
    // A string length pointing past the end.
    std::string m = values::encode(MessageRecord{1, "t", "p", 0, false, "", "", 0, 0});
    EXPECT_FALSE(values::decode_message(1, m.substr(0, 20)));
}

}  // namespace
}  // namespace mqttd::storage
