#include "config/config_file.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

namespace mqttd::config {
namespace {

std::vector<FileEntry> parse_ok(std::string_view text) {
    auto r = parse_config_text(text, "t.conf");
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() ? *r : std::vector<FileEntry>{};
}

std::string parse_err(std::string_view text) {
    auto r = parse_config_text(text, "t.conf");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error();
}

TEST(ConfigFile, CommentsBlankLinesAndWhitespace) {
    const auto e = parse_ok(
            "# a comment\n"
            "\n"
            "   \t\n"
            "  # indented comment\n"
            "a.b = 1\n"
            "\tc.d=two words   \n"
            "e.f = x # trailing comment\n"
            "g.h = pass#1\n"
            "i.j =\n"
            "k.l = 5\r\n"
            "m.n = last");
    ASSERT_EQ(e.size(), 7u);
    EXPECT_EQ(e[0].key, "a.b");
    EXPECT_EQ(e[0].value, "1");
    EXPECT_EQ(e[0].line, 5);
    EXPECT_EQ(e[1].key, "c.d");
    EXPECT_EQ(e[1].value, "two words");
    EXPECT_EQ(e[2].value, "x");
    EXPECT_EQ(e[3].value, "pass#1");  // '#' not after whitespace is part of the value
    EXPECT_EQ(e[4].value, "");
    EXPECT_EQ(e[5].value, "5");  // CRLF files
    EXPECT_EQ(e[6].value, "last");
    EXPECT_EQ(e[6].line, 11);
}

TEST(ConfigFile, QuotedValues) {
    const auto e = parse_ok(
            "a = \"with # hash and  spaces \"\n"
            "b = \"esc \\\" quote \\\\ back\"   # comment\n"
            "c = \"\"\n"
            "d = \"a\\nb\"\n");
    ASSERT_EQ(e.size(), 4u);
    EXPECT_EQ(e[0].value, "with # hash and  spaces ");
    EXPECT_EQ(e[1].value, "esc \" quote \\ back");
    EXPECT_EQ(e[2].value, "");
    EXPECT_EQ(e[3].value, "a\\nb");  // only \" and \\ are escapes
}

TEST(ConfigFile, SyntaxErrorsNameFileAndLine) {
    EXPECT_EQ(parse_err("a = 1\njust words\n"),
              "t.conf:2: expected \"key = value\", got \"just words\"");
    EXPECT_EQ(parse_err("\n = 5\n"), "t.conf:2: \"\" is not a valid key");
    EXPECT_EQ(parse_err("a b = 5\n"), "t.conf:1: \"a b\" is not a valid key");
    EXPECT_EQ(parse_err("x.y = \"open\n"), "t.conf:1: x.y: missing closing quote");
    EXPECT_EQ(parse_err("x.y = \"v\" junk\n"),
              "t.conf:1: x.y: unexpected text after the closing quote");
    EXPECT_EQ(parse_err("x.y = 1\n\nx.y = 2\n"), "t.conf:3: x.y: set twice (first on line 1)");
}

TEST(ConfigFile, ReadErrors) {
    auto missing = read_config_file("/nonexistent/mqttd.conf");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error(),
              "cannot read config file /nonexistent/mqttd.conf: No such file or directory");
    auto dir = read_config_file("/tmp");
    ASSERT_FALSE(dir.ok());
    EXPECT_EQ(dir.error(), "cannot read config file /tmp: Is a directory");
}

TEST(ConfigFile, ReadsWholeFile) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("mqttd_config_file_test_" + std::to_string(::getpid()) + ".conf");
    {
        std::ofstream out(path);
        out << std::string(20000, '#') << "\na = 1\n";
    }
    auto text = read_config_file(path.string());
    std::filesystem::remove(path);
    ASSERT_TRUE(text.ok()) << text.error();
    EXPECT_EQ(text->size(), 20007u);
}

}  // namespace
}  // namespace mqttd::config
