#include "cluster/link_frame.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd::cluster {
namespace {

TEST(LinkFrame, FramesRoundTripBackToBack) {
    std::string wire;
    encode_hello(wire, HelloFrame{"a@127.0.0.1", 1234});
    const std::string payload("bin\0ary", 7);
    encode_publish(wire, PublishFrame{7,
                                      2,
                                      true,
                                      true,
                                      1000,
                                      2000,
                                      4242,
                                      "t/1",
                                      "client",
                                      "\x01\x01",
                                      payload,
                                      {},
                                      false,
                                      {}});
    encode_ack(wire, AckFrame{7, false});

    std::string error;
    std::string_view in = wire;
    auto f1 = next_frame(in, error);
    ASSERT_TRUE(f1);
    ASSERT_EQ(f1->type, FrameType::Hello);
    auto hello = decode_hello(f1->body);
    ASSERT_TRUE(hello);
    EXPECT_EQ(hello->node, "a@127.0.0.1");
    EXPECT_EQ(hello->incarnation, 1234u);
    in.remove_prefix(f1->size);

    auto f2 = next_frame(in, error);
    ASSERT_TRUE(f2);
    ASSERT_EQ(f2->type, FrameType::Publish);
    auto p = decode_publish(f2->body);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->seq, 7u);
    EXPECT_EQ(p->qos, 2);
    EXPECT_TRUE(p->retain);
    EXPECT_TRUE(p->want_ack);
    EXPECT_EQ(p->created_at_ms, 1000);
    EXPECT_EQ(p->expiry_at_ms, 2000);
    EXPECT_EQ(p->stamp, 4242);
    EXPECT_FALSE(p->relay);
    EXPECT_EQ(p->topic, "t/1");
    EXPECT_EQ(p->from_client, "client");
    EXPECT_EQ(p->properties, "\x01\x01");
    EXPECT_EQ(p->payload, payload);
    in.remove_prefix(f2->size);

    auto f3 = next_frame(in, error);
    ASSERT_TRUE(f3);
    auto ack = decode_ack(f3->body);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->seq, 7u);
    EXPECT_FALSE(ack->ok);
    in.remove_prefix(f3->size);
    EXPECT_TRUE(in.empty());
    EXPECT_TRUE(error.empty());
}

TEST(LinkFrame, APartialFrameNeedsMoreAndBadOnesAreErrors) {
    std::string wire;
    encode_ack(wire, AckFrame{1, true});
    std::string error;
    for (size_t n = 0; n < wire.size(); ++n) {
        EXPECT_FALSE(next_frame(std::string_view(wire).substr(0, n), error)) << n;
        EXPECT_TRUE(error.empty()) << n;
    }
    std::string huge("\x7f\xff\xff\xff\x02", 5);
    EXPECT_FALSE(next_frame(huge, error));
    EXPECT_NE(error.find("out of bounds"), std::string::npos);
    error.clear();
    std::string unknown("\x00\x00\x00\x01\x30", 5);
    EXPECT_FALSE(next_frame(unknown, error));
    EXPECT_NE(error.find("unknown frame type"), std::string::npos);
    // A body shorter than its fields, or QoS 3, is malformed.
    EXPECT_FALSE(decode_ack(std::string("\x00\x00", 2)));
    std::string p;
    encode_publish(p, PublishFrame{1, 1, false, false, 0, 0, 0, "t", "", "", "x", {}, false, {}});
    std::string body = p.substr(5);
    body[8] = 3;
    EXPECT_FALSE(decode_publish(body));
    EXPECT_FALSE(decode_publish(body.substr(0, body.size() - 1)));
}

TEST(LinkFrame, APublishNamesTheGroupsItsReceiverDeliversTo) {
    std::string wire;
    PublishFrame f{3, 1, false, true, 0, 0, 0, "a/b", "c", "", "x", {}, false, {}};
    encode_publish(wire, f);
    const std::string none_body = wire.substr(5);
    auto none = decode_publish(none_body);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->groups.empty());
    EXPECT_FALSE(none->retained_copy);

    f.groups = {"$share/g/a/+", "$share/$queue/a/#"};
    wire.clear();
    encode_publish(wire, f);
    std::string body = wire.substr(5);
    auto two = decode_publish(body);
    ASSERT_TRUE(two);
    EXPECT_EQ(two->payload, "x");
    EXPECT_EQ(two->groups, (std::vector<std::string_view>{"$share/g/a/+", "$share/$queue/a/#"}));
    EXPECT_FALSE(decode_publish(body.substr(0, body.size() - 1))) << "a group cut short";
    body[8] = static_cast<char>(body[8] & ~16);
    EXPECT_FALSE(decode_publish(body)) << "groups without their flag are trailing bytes";
}

TEST(LinkFrame, ARelayNamesItsSessionAndTheDelivery) {
    std::string wire;
    PublishFrame f{9, 2, true, true, 0, 0, 17, "m/1", "pub", "", "x", {}, false, {}};
    f.relay = RelayTarget{"mover", 1, true, {4, 7}};
    encode_publish(wire, f);
    std::string body = wire.substr(5);
    auto r = decode_publish(body);
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->relay);
    EXPECT_EQ(r->relay->client_id, "mover");
    EXPECT_EQ(r->relay->qos, 1);
    EXPECT_TRUE(r->relay->retain);
    EXPECT_EQ(r->relay->subscription_ids, (std::vector<uint32_t>{4, 7}));
    EXPECT_EQ(r->qos, 2) << "the message's own QoS";
    EXPECT_EQ(r->stamp, 17);
    for (size_t n = 1; n <= 12; ++n) {
        EXPECT_FALSE(decode_publish(std::string_view(body).substr(0, body.size() - n))) << n;
    }
    body[8] = static_cast<char>(body[8] & ~64);
    EXPECT_FALSE(decode_publish(body)) << "a relay without its flag is trailing bytes";
    body[8] = static_cast<char>(body[8] | 128);
    EXPECT_FALSE(decode_publish(body)) << "an unknown flag";
}

TEST(LinkFrame, ARetainedSetIsAskedForAndComesAsMarkedCopies) {
    std::string wire;
    encode_retained_request(wire);
    std::string error;
    auto raw = next_frame(wire, error);
    ASSERT_TRUE(raw) << error;
    EXPECT_EQ(raw->type, FrameType::RetainedRequest);
    EXPECT_TRUE(raw->body.empty());
    wire.clear();
    PublishFrame f{1, 1, true, false, 5, 0, 0, "r/1", "", "", "kept", {}, false, {}};
    f.retained_copy = true;
    encode_publish(wire, f);
    const std::string copy_body = wire.substr(5);  // the frame's views point into it
    auto copy = decode_publish(copy_body);
    ASSERT_TRUE(copy);
    EXPECT_TRUE(copy->retained_copy);
    EXPECT_TRUE(copy->retain);
    EXPECT_EQ(copy->payload, "kept");
}

// A session with every kind of record, as Worker::hand_over reads it from the store.
broker::SessionTransfer sample_session() {
    broker::SessionTransfer t;
    t.session.client_id = "mover";
    t.session.protocol_level = 5;
    t.session.expiry_interval_s = 3600;
    t.session.created_at_ms = 1111;
    t.session.disconnected_at_ms = 2222;
    t.session.max_inflight = 16;
    t.session.deliver_msg = 42;
    t.session.username = "user";
    storage::WillRecord w;
    w.topic = "will/t";
    w.payload = std::string("bye\0", 4);
    w.properties = "\x01\x01";
    w.qos = 1;
    w.retain = true;
    w.message_expiry_s = 60;
    w.due_at_ms = 3333;
    t.session.will = w;
    storage::SubscriptionRecord s;
    s.client_id = "mover";
    s.topic_filter = "q/#";
    s.qos = 2;
    s.no_local = true;
    s.retain_as_published = true;
    s.retain_handling = 2;
    s.subscription_id = 7;
    t.subscriptions.push_back(s);
    storage::QueuedMessage q;
    q.entry.client_id = "mover";
    q.entry.seq = 65536;
    q.entry.message_id = 99;
    q.entry.qos = 2;
    q.entry.retain = true;
    q.entry.subscription_id = 7;
    q.entry.more_subscription_ids = {8, 9};
    q.message.id = 99;
    q.message.topic = "q/1";
    q.message.payload = std::string("pay\0load", 8);
    q.message.qos = 2;
    q.message.retain = false;
    q.message.properties = "\x02\x00\x00\x00\x3c";
    q.message.from_client = "pub";
    q.message.created_at_ms = 4444;
    q.message.expiry_at_ms = 5555;
    t.queue.push_back(q);
    t.inflight.push_back(storage::InflightRecord{"mover", storage::Direction::Outbound, 5, 6666});
    t.inflight.push_back(storage::InflightRecord{"mover", storage::Direction::Inbound, 9, 7777});
    return t;
}

TEST(LinkFrame, TakeoverFramesRoundTrip) {
    std::string wire;
    encode_takeover_request(wire, TakeoverRequestFrame{11, true, "mover"});
    SessionStateFrame state;
    state.request = 11;
    state.status = SessionStateFrame::Status::Session;
    state.session = sample_session();
    encode_session_state(wire, state);
    encode_takeover_done(wire, TakeoverDoneFrame{11, true, "mover", 12345});
    encode_owner_query(wire, OwnerQueryFrame{12, "other"});
    encode_owner_answer(wire, OwnerAnswerFrame{12, true});

    std::string error;
    std::string_view in = wire;
    auto next = [&](FrameType want) {
        auto f = next_frame(in, error);
        EXPECT_TRUE(f.has_value()) << error;
        if (!f) {
            return std::string_view();
        }
        EXPECT_EQ(f->type, want);
        in.remove_prefix(f->size);
        return f->body;
    };
    auto req = decode_takeover_request(next(FrameType::TakeoverRequest));
    ASSERT_TRUE(req);
    EXPECT_EQ(req->request, 11u);
    EXPECT_TRUE(req->drop);
    EXPECT_EQ(req->client_id, "mover");

    auto st = decode_session_state(next(FrameType::SessionState));
    ASSERT_TRUE(st);
    EXPECT_EQ(st->request, 11u);
    ASSERT_EQ(st->status, SessionStateFrame::Status::Session);
    const auto want = sample_session();
    const auto& r = st->session.session;
    EXPECT_EQ(r.client_id, "mover");
    EXPECT_EQ(r.protocol_level, 5);
    EXPECT_EQ(r.expiry_interval_s, 3600u);
    EXPECT_EQ(r.created_at_ms, 1111);
    EXPECT_EQ(r.disconnected_at_ms, 2222);
    EXPECT_EQ(r.max_inflight, 16);
    EXPECT_EQ(r.deliver_msg, 42u);
    EXPECT_EQ(r.username, "user");
    ASSERT_TRUE(r.will.has_value());
    EXPECT_EQ(r.will->topic, "will/t");
    EXPECT_EQ(r.will->payload, want.session.will->payload);
    EXPECT_EQ(r.will->properties, want.session.will->properties);
    EXPECT_EQ(r.will->qos, 1);
    EXPECT_TRUE(r.will->retain);
    EXPECT_EQ(r.will->message_expiry_s, 60u);
    EXPECT_EQ(r.will->due_at_ms, 3333);
    ASSERT_EQ(st->session.subscriptions.size(), 1u);
    const auto& s = st->session.subscriptions[0];
    EXPECT_EQ(s.client_id, "mover");
    EXPECT_EQ(s.topic_filter, "q/#");
    EXPECT_EQ(s.qos, 2);
    EXPECT_TRUE(s.no_local);
    EXPECT_TRUE(s.retain_as_published);
    EXPECT_EQ(s.retain_handling, 2);
    EXPECT_EQ(s.subscription_id, 7u);
    ASSERT_EQ(st->session.queue.size(), 1u);
    const auto& q = st->session.queue[0];
    EXPECT_EQ(q.entry.seq, 65536u);
    EXPECT_EQ(q.entry.message_id, 99u);
    EXPECT_EQ(q.entry.qos, 2);
    EXPECT_TRUE(q.entry.retain);
    EXPECT_EQ(q.entry.subscription_id, 7u);
    EXPECT_EQ(q.entry.more_subscription_ids, (std::vector<uint32_t>{8, 9}));
    EXPECT_EQ(q.message.id, 99u);
    EXPECT_EQ(q.message.topic, "q/1");
    EXPECT_EQ(q.message.payload, want.queue[0].message.payload);
    EXPECT_EQ(q.message.properties, want.queue[0].message.properties);
    EXPECT_EQ(q.message.qos, 2);
    EXPECT_FALSE(q.message.retain);
    EXPECT_EQ(q.message.from_client, "pub");
    EXPECT_EQ(q.message.created_at_ms, 4444);
    EXPECT_EQ(q.message.expiry_at_ms, 5555);
    ASSERT_EQ(st->session.inflight.size(), 2u);
    EXPECT_EQ(st->session.inflight[0].direction, storage::Direction::Outbound);
    EXPECT_EQ(st->session.inflight[0].packet_id, 5);
    EXPECT_EQ(st->session.inflight[0].at_ms, 6666);
    EXPECT_EQ(st->session.inflight[1].direction, storage::Direction::Inbound);
    EXPECT_EQ(st->session.inflight[1].packet_id, 9);

    auto done = decode_takeover_done(next(FrameType::TakeoverDone));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->request, 11u);
    EXPECT_TRUE(done->moved);
    EXPECT_EQ(done->client_id, "mover");
    EXPECT_EQ(done->revision, 12345);
    auto query = decode_owner_query(next(FrameType::OwnerQuery));
    ASSERT_TRUE(query);
    EXPECT_EQ(query->request, 12u);
    EXPECT_EQ(query->client_id, "other");
    auto answer = decode_owner_answer(next(FrameType::OwnerAnswer));
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->request, 12u);
    EXPECT_TRUE(answer->owns);
    EXPECT_TRUE(in.empty());
}

TEST(LinkFrame, SessionStateWithoutASessionAndMalformedTakeoverFrames) {
    std::string none;
    encode_session_state(none, SessionStateFrame{5, SessionStateFrame::Status::Busy, {}});
    auto busy = decode_session_state(std::string_view(none).substr(5));
    ASSERT_TRUE(busy);
    EXPECT_EQ(busy->status, SessionStateFrame::Status::Busy);
    EXPECT_TRUE(busy->session.session.client_id.empty());

    SessionStateFrame state;
    state.request = 1;
    state.status = SessionStateFrame::Status::Session;
    state.session = sample_session();
    std::string wire;
    encode_session_state(wire, state);
    const std::string body = wire.substr(5);
    // Every truncation is malformed, and so is a byte more.
    for (size_t n = 0; n < body.size(); ++n) {
        EXPECT_FALSE(decode_session_state(std::string_view(body).substr(0, n))) << n;
    }
    EXPECT_FALSE(decode_session_state(body + "x"));
    // An unknown status, and a count larger than what follows (refused before reserving).
    std::string bad_status = body;
    bad_status[8] = 3;
    EXPECT_FALSE(decode_session_state(bad_status));
    broker::SessionTransfer empty;
    empty.session.client_id = "c";
    std::string small;
    encode_session_state(small, SessionStateFrame{1, SessionStateFrame::Status::Session, empty});
    std::string huge_count = small.substr(5);
    // The subscription count follows the record (its last byte: no will).
    const size_t count_at = huge_count.size() - 12;
    huge_count[count_at] = '\x7f';
    EXPECT_FALSE(decode_session_state(huge_count));

    std::string req;
    encode_takeover_request(req, TakeoverRequestFrame{1, false, "id"});
    std::string req_body = req.substr(5);
    req_body[8] = 2;  // flags other than Clean Start
    EXPECT_FALSE(decode_takeover_request(req_body));
    EXPECT_FALSE(decode_takeover_request(std::string_view(req.substr(5)).substr(0, 10)));
    std::string empty_id;
    encode_takeover_done(empty_id, TakeoverDoneFrame{1, true, "", 0});
    EXPECT_FALSE(decode_takeover_done(empty_id.substr(5))) << "a client id is never empty";
    EXPECT_FALSE(decode_owner_answer(std::string("\0\0\0\0\0\0\0\1\x02", 9)));
}

}  // namespace
}  // namespace mqttd::cluster
