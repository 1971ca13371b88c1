#include "config/command_line.h"

#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd::config {
namespace {

Result<CommandLine, std::string> parse(std::initializer_list<const char*> args) {
    std::vector<const char*> argv{"mqttd"};
    argv.insert(argv.end(), args.begin(), args.end());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

using Sets = std::vector<std::pair<std::string, std::string>>;

TEST(CommandLine, Defaults) {
    auto cl = parse({});
    ASSERT_TRUE(cl.ok());
    EXPECT_EQ(cl->config_file, "data/mqttd.conf");
    EXPECT_FALSE(cl->config_file_given);
    EXPECT_FALSE(cl->data_dir);
    EXPECT_TRUE(cl->sets.empty());
    EXPECT_FALSE(cl->help);
    EXPECT_FALSE(cl->version);
}

TEST(CommandLine, AllOptions) {
    auto cl =
            parse({"-c", "my.conf", "--data-dir", "/var/lib/mqttd", "--set", "mqtt.max_inflight=64",
                   "--set=log.console.level=debug", "-s", "node.name=a=b"});
    ASSERT_TRUE(cl.ok()) << cl.error();
    EXPECT_EQ(cl->config_file, "my.conf");
    EXPECT_TRUE(cl->config_file_given);
    EXPECT_EQ(cl->data_dir, "/var/lib/mqttd");
    EXPECT_EQ(cl->sets, (Sets{{"node.data_dir", "/var/lib/mqttd"},
                              {"mqtt.max_inflight", "64"},
                              {"log.console.level", "debug"},
                              {"node.name", "a=b"}}));

    auto eq = parse({"--config=x.conf", "--data-dir=d", "--set", "storage.sync="});
    ASSERT_TRUE(eq.ok()) << eq.error();
    EXPECT_EQ(eq->config_file, "x.conf");
    EXPECT_EQ(eq->sets, (Sets{{"node.data_dir", "d"}, {"storage.sync", ""}}));

    EXPECT_TRUE(parse({"--help"})->help);
    EXPECT_TRUE(parse({"-h"})->help);
    EXPECT_TRUE(parse({"--version"})->version);
    EXPECT_TRUE(parse({"-v"})->version);
}

TEST(CommandLine, Errors) {
    EXPECT_EQ(parse({"--frobnicate"}).error(), "unknown option \"--frobnicate\" (see --help)");
    EXPECT_EQ(parse({"extra"}).error(), "unexpected argument \"extra\" (see --help)");
    EXPECT_EQ(parse({"-c"}).error(), "-c needs a value (see --help)");
    EXPECT_EQ(parse({"--config="}).error(), "--config needs a file name");
    EXPECT_EQ(parse({"--set", "novalue"}).error(), "--set needs KEY=VALUE, got \"novalue\"");
    EXPECT_EQ(parse({"--set", "=5"}).error(), "--set needs KEY=VALUE, got \"=5\"");
    EXPECT_EQ(parse({"--data-dir"}).error(), "--data-dir needs a value (see --help)");
    EXPECT_EQ(parse({"--help=yes"}).error(), "--help takes no value");
}

TEST(CommandLine, UsageListsOptionsAndKeys) {
    const std::string text = usage_text("mqttd");
    for (const char* s : {"Usage: mqttd", "--config FILE", "--data-dir DIR", "--set KEY=VALUE",
                          "--version", "--help", "mqtt.max_inflight = 0",
                          "mqtt.max_inflight_bytes = 4194304", "mqtt.allow_anonymous = true  *"}) {
        EXPECT_NE(text.find(s), std::string::npos) << s;
    }
}

}  // namespace
}  // namespace mqttd::config
