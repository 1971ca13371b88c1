#include "config/logging.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mqttd::config {
namespace {

using Clock = std::chrono::system_clock;

// 2024-05-01T10:00:00.123Z
const Clock::time_point kTime = Clock::time_point(std::chrono::milliseconds(1714557600123));

TEST(JsonLogLine, FieldsAndIsoUtcTime) {
    const std::string line = json_log_line(kTime, "warning", 42, "disk almost full");
    EXPECT_EQ(line, R"({"time":"2024-05-01T10:00:00.123Z","level":"warning","thread":42,)"
                    R"("message":"disk almost full"})");
    // Milliseconds keep their leading zeros.
    EXPECT_NE(json_log_line(kTime - std::chrono::milliseconds(120), "info", 1, "")
                      .find(R"("time":"2024-05-01T10:00:00.003Z")"),
              std::string::npos);
}

// Quotes, backslashes, newlines and every control character stay one valid JSON line that
// gives back the message byte for byte.
TEST(JsonLogLine, EscapesEverythingJsonRequires) {
    std::string message = "say \"hi\" \\ path\\to\nnext line\r\ttab \b\f end";
    for (char c = 1; c < 0x20; ++c) {
        message += c;
    }
    message += '\x7f';
    message += std::string("\0nul", 4);
    message += "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";  // UTF-8 kept as is
    const std::string line = json_log_line(kTime, "info", 7, message);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    for (unsigned char c : line) {
        EXPECT_GE(c, 0x20) << "raw control character in " << line;
    }
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_EQ(j["message"].get<std::string>(), message);
    EXPECT_EQ(j["level"], "info");
    EXPECT_EQ(j["thread"], 7);
}

// Bytes that are not UTF-8 (a client id, a topic as sent) become U+FFFD: the line still parses.
TEST(JsonLogLine, InvalidUtf8BecomesReplacementCharacters) {
    const std::string line = json_log_line(kTime, "info", 1,
                                           "a\xff"
                                           "b\xc3"
                                           "c\xed\xa0\x80"
                                           "d\xf0\x9f\x98");
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    const std::string m = j["message"].get<std::string>();
    EXPECT_EQ(m.substr(0, 1), "a");
    EXPECT_NE(m.find("b\xef\xbf\xbd"
                     "c"),
              std::string::npos)
            << m;
    EXPECT_NE(m.find("\xef\xbf\xbd"
                     "d"),
              std::string::npos)
            << m;
    EXPECT_EQ(m.find('\xff'), std::string::npos);
}

}  // namespace
}  // namespace mqttd::config
