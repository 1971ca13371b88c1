// UTF-8 and topic rules (3.1.1 / 5.0 sections 1.5.3 and 4.7).
#include <string>

#include <gtest/gtest.h>

#include "mqtt/decoder.h"

namespace mqttd::mqtt {
namespace {

TEST(Utf8, AcceptsWellFormedSequences) {
    EXPECT_TRUE(valid_utf8(""));
    EXPECT_TRUE(valid_utf8("plain ascii"));
    EXPECT_TRUE(valid_utf8("\xC3\xA9"));              // U+00E9
    EXPECT_TRUE(valid_utf8("\xE2\x82\xAC"));          // U+20AC
    EXPECT_TRUE(valid_utf8("\xF0\x9F\x98\x80"));      // U+1F600
    EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));      // U+10FFFF
    EXPECT_TRUE(valid_utf8("\xED\x9F\xBF"));          // U+D7FF, just below the surrogates
    EXPECT_TRUE(valid_utf8("\xEE\x80\x80"));          // U+E000, just above them
    EXPECT_TRUE(valid_utf8("\x01\x1F\x7F\xC2\x80"));  // control characters are allowed
}

TEST(Utf8, KeepsByteOrderMark) {
    // U+FEFF is a valid character and MUST NOT be skipped or stripped [MQTT-1.5.3-3].
    EXPECT_TRUE(valid_utf8("\xEF\xBB\xBF"));
    EXPECT_TRUE(
            valid_utf8("a\xEF\xBB\xBF"
                       "b"));
}

TEST(Utf8, RefusesNullCharacter) {
    // [MQTT-1.5.3-2]
    EXPECT_FALSE(valid_utf8(std::string("\0", 1)));
    EXPECT_FALSE(valid_utf8(std::string("ab\0cd", 5)));
}

TEST(Utf8, RefusesSurrogates) {
    // U+D800..U+DFFF [MQTT-1.5.3-1]
    EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));
    EXPECT_FALSE(valid_utf8("\xED\xBF\xBF"));
    EXPECT_FALSE(valid_utf8("\xED\xB0\x80"));
}

TEST(Utf8, RefusesOverlongEncodings) {
    EXPECT_FALSE(valid_utf8("\xC0\x80"));  // overlong U+0000
    EXPECT_FALSE(valid_utf8("\xC0\xAF"));  // overlong '/'
    EXPECT_FALSE(valid_utf8("\xC1\xBF"));
    EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));
    EXPECT_FALSE(valid_utf8("\xE0\x9F\xBF"));
    EXPECT_FALSE(valid_utf8("\xF0\x80\x80\xAF"));
    EXPECT_FALSE(valid_utf8("\xF0\x8F\xBF\xBF"));
}

TEST(Utf8, RefusesBrokenSequences) {
    EXPECT_FALSE(valid_utf8("\x80"));              // lone continuation byte
    EXPECT_FALSE(valid_utf8("\xC3"));              // truncated
    EXPECT_FALSE(valid_utf8("\xE2\x82"));          // truncated
    EXPECT_FALSE(valid_utf8("\xF0\x9F\x98"));      // truncated
    EXPECT_FALSE(valid_utf8("\xC3\x28"));          // bad continuation
    EXPECT_FALSE(valid_utf8("\xE2\x28\xA1"));      // bad continuation
    EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(valid_utf8("\xF5\x80\x80\x80"));
    EXPECT_FALSE(valid_utf8("\xFE"));
    EXPECT_FALSE(valid_utf8("\xFF"));
}

TEST(TopicName, Rules) {
    EXPECT_TRUE(valid_topic_name("a"));
    EXPECT_TRUE(valid_topic_name("sport/tennis/player1"));
    EXPECT_TRUE(valid_topic_name("/"));
    EXPECT_TRUE(valid_topic_name("//"));
    EXPECT_TRUE(valid_topic_name("$SYS/broker"));
    EXPECT_TRUE(valid_topic_name(" "));
    EXPECT_TRUE(valid_topic_name("caf\xC3\xA9"));
    EXPECT_FALSE(valid_topic_name(""));  // [MQTT-4.7.3-1]
    EXPECT_FALSE(valid_topic_name("a/+"));
    EXPECT_FALSE(valid_topic_name("a/#"));
    EXPECT_FALSE(valid_topic_name("a+b"));
    EXPECT_FALSE(valid_topic_name("#"));
    EXPECT_FALSE(valid_topic_name(std::string("a\0b", 3)));  // [MQTT-4.7.3-2]
    EXPECT_FALSE(valid_topic_name("\xED\xA0\x80"));
    EXPECT_FALSE(valid_topic_name(std::string(65536, 'a')));  // [MQTT-4.7.3-3]
    EXPECT_TRUE(valid_topic_name(std::string(65535, 'a')));
}

TEST(TopicFilter, Rules) {
    for (const char* ok : {"#", "+", "/", "a", "a/b", "a/+", "+/b", "+/+", "a/#", "/#", "+/#",
                           "a/+/c/#", "$SYS/#", "//+//", "sport/tennis/player1/#"}) {
        EXPECT_TRUE(valid_topic_filter(ok)) << ok;
    }
    // '#' whole level and last [MQTT-4.7.1-2]; '+' whole level [MQTT-4.7.1-3].
    for (const char* bad : {"", "a#", "#a", "a/#/b", "#/", "##", "a/b#", "a+", "+a", "sport+",
                            "a/++/b", "a/+b", "+#"}) {
        EXPECT_FALSE(valid_topic_filter(bad)) << bad;
    }
    EXPECT_FALSE(valid_topic_filter(std::string("a/\0", 3)));
    EXPECT_FALSE(valid_topic_filter("a/\xC0\x80"));
}

}  // namespace
}  // namespace mqttd::mqtt
