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
    encode_publish(
            wire,
            PublishFrame{7, 2, true, true, 1000, 2000, "t/1", "client", "\x01\x01", payload, {}});
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
    encode_publish(p, PublishFrame{1, 1, false, false, 0, 0, "t", "", "", "x", {}});
    std::string body = p.substr(5);
    body[8] = 3;
    EXPECT_FALSE(decode_publish(body));
    EXPECT_FALSE(decode_publish(body.substr(0, body.size() - 1)));
}

TEST(LinkFrame, APublishNamesTheGroupsItsReceiverDeliversTo) {
    std::string wire;
    PublishFrame f{3, 1, false, true, 0, 0, "a/b", "c", "", "x", {}};
    encode_publish(wire, f);
    auto none = decode_publish(wire.substr(5));
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

TEST(LinkFrame, ARetainedSetIsAskedForAndComesAsMarkedCopies) {
    std::string wire;
    encode_retained_request(wire);
    std::string error;
    auto raw = next_frame(wire, error);
    ASSERT_TRUE(raw) << error;
    EXPECT_EQ(raw->type, FrameType::RetainedRequest);
    EXPECT_TRUE(raw->body.empty());
    wire.clear();
    PublishFrame f{1, 1, true, false, 5, 0, "r/1", "", "", "kept", {}};
    f.retained_copy = true;
    encode_publish(wire, f);
    auto copy = decode_publish(wire.substr(5));
    ASSERT_TRUE(copy);
    EXPECT_TRUE(copy->retained_copy);
    EXPECT_TRUE(copy->retain);
    EXPECT_EQ(copy->payload, "kept");
}

}  // namespace
}  // namespace mqttd::cluster
