#include "net/wire_errors.h"

#include <gtest/gtest.h>

namespace mqttd::net {
namespace {

using broker::ConnectRefusal;
using mqtt::ReasonCode;
using mqtt::Version;

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) {
        s.push_back(static_cast<char>(c));
    }
    return s;
}

TEST(WireErrors, RefusalsAreConnacksWithTheCodeOfTheVersion) {
    std::string out;
    encode_refusal(out, Version::V311, ConnectRefusal::NotAuthorized);
    EXPECT_EQ(out, bytes({0x20, 0x02, 0x00, 0x05}));
    out.clear();
    encode_refusal(out, Version::V311, ConnectRefusal::BadUserNameOrPassword);
    EXPECT_EQ(out, bytes({0x20, 0x02, 0x00, 0x04}));
    out.clear();
    encode_refusal(out, Version::V311, ConnectRefusal::ClientIdentifierNotValid);
    EXPECT_EQ(out, bytes({0x20, 0x02, 0x00, 0x02}));
    out.clear();
    encode_refusal(out, Version::V5, ConnectRefusal::BadAuthenticationMethod);
    ASSERT_GE(out.size(), 4u);
    EXPECT_EQ(static_cast<uint8_t>(out[0]), 0x20);
    EXPECT_EQ(static_cast<uint8_t>(out[3]), 0x8C);
}

TEST(WireErrors, FailuresBeforeConnackCloseExceptAnUnknownLevel) {
    std::string out;
    EXPECT_FALSE(encode_failure(out, false, Version::V5, ReasonCode::MalformedPacket));
    EXPECT_FALSE(encode_failure(out, false, Version::V311, ReasonCode::ProtocolError));
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(encode_failure(out, false, Version::V5, ReasonCode::UnsupportedProtocolVersion));
    EXPECT_EQ(out, bytes({0x20, 0x02, 0x00, 0x01}));  // answered as 3.1.1
}

TEST(WireErrors, FailuresAfterConnackAreDisconnectsOnMqtt5Only) {
    std::string out;
    EXPECT_FALSE(encode_failure(out, true, Version::V311, ReasonCode::ProtocolError));
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(encode_failure(out, true, Version::V5, ReasonCode::ProtocolError));
    ASSERT_GE(out.size(), 3u);
    EXPECT_EQ(static_cast<uint8_t>(out[0]), 0xE0);
    EXPECT_EQ(static_cast<uint8_t>(out[2]), 0x82);
    out.clear();
    EXPECT_FALSE(encode_failure(out, true, Version::V5, ReasonCode::Success));
}

}  // namespace
}  // namespace mqttd::net
