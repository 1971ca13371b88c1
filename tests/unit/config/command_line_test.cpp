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

// --recover: a flag, and storage.wal_recovery = point_in_time in command line order (a later
// --set may still say strict).
TEST(CommandLine, RecoverIsAFlagAndSetsTheWalRecoveryMode) {
    auto cl = parse({"--recover", "--set", "node.name=a@b"});
    ASSERT_TRUE(cl.ok()) << cl.error();
    EXPECT_TRUE(cl->recover);
    EXPECT_EQ(cl->sets, (Sets{{"storage.wal_recovery", "point_in_time"}, {"node.name", "a@b"}}));
    EXPECT_FALSE(parse({"--recover=yes"}).ok());
    EXPECT_FALSE(parse({}).value().recover);
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
    EXPECT_TRUE(parse({"-V"})->version);
}

// --data-dir, --set and --recover keep their command line order whatever the option.
TEST(CommandLine, SetsKeepTheirOrderAcrossOptions) {
    auto cl = parse({"--set", "node.data_dir=a", "--data-dir", "b", "--recover", "-s",
                     "storage.wal_recovery=strict", "--set=node.data_dir=c"});
    ASSERT_TRUE(cl.ok()) << cl.error();
    EXPECT_EQ(cl->sets, (Sets{{"node.data_dir", "a"},
                              {"node.data_dir", "b"},
                              {"storage.wal_recovery", "point_in_time"},
                              {"storage.wal_recovery", "strict"},
                              {"node.data_dir", "c"}}));
    EXPECT_EQ(cl->data_dir, "b");
}

// The shape errors are CLI11's words, one line naming the culprit and pointing at --help;
// the value errors are ours.
TEST(CommandLine, Errors) {
    auto error_of = [](std::initializer_list<const char*> args) {
        auto cl = parse(args);
        EXPECT_FALSE(cl.ok());
        return cl.ok() ? std::string() : cl.error();
    };
    for (auto [args, culprit] : std::vector<std::pair<std::vector<const char*>, std::string>>{
                 {{"--frobnicate"}, "--frobnicate"},
                 {{"extra"}, "extra"},
                 {{"-c"}, "config"},
                 {{"--data-dir"}, "data-dir"},
                 {{"--set"}, "set"},
                 {{"--help=yes"}, "help"},
                 {{"--version=1"}, "version"}}) {
        std::vector<const char*> argv{"mqttd"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto cl = parse_command_line(static_cast<int>(argv.size()), argv.data());
        ASSERT_FALSE(cl.ok()) << args[0];
        EXPECT_NE(cl.error().find(culprit), std::string::npos) << cl.error();
        EXPECT_TRUE(cl.error().ends_with("(see --help)")) << cl.error();
        EXPECT_EQ(cl.error().find('\n'), std::string::npos) << cl.error();
    }
    // An empty value is a missing one.
    EXPECT_EQ(error_of({"--config="}), "--config: 1 required FILE missing (see --help)");
    EXPECT_EQ(error_of({"--data-dir="}), "--data-dir: 1 required DIR missing (see --help)");
    EXPECT_EQ(error_of({"--set", "novalue"}), "--set needs KEY=VALUE, got \"novalue\"");
    EXPECT_EQ(error_of({"--set", "=5"}), "--set needs KEY=VALUE, got \"=5\"");
    // One value per --set: a word after it is not a second value.
    EXPECT_NE(error_of({"--set", "a=1", "b=2"}).find("b=2"), std::string::npos);
}

TEST(CommandLine, Restore) {
    auto cl = parse({"--restore", "backups/b1", "--data-dir", "d"});
    ASSERT_TRUE(cl.ok()) << cl.error();
    EXPECT_EQ(cl->restore, "backups/b1");
    EXPECT_FALSE(cl->force);
    auto forced = parse({"--restore=b", "--force"});
    ASSERT_TRUE(forced.ok()) << forced.error();
    EXPECT_TRUE(forced->force);
    ASSERT_FALSE(parse({"--force"}).ok());
    EXPECT_NE(parse({"--force"}).error().find("--restore"), std::string::npos)
            << parse({"--force"}).error();
    EXPECT_EQ(parse({"--restore="}).error(), "--restore: 1 required BACKUP missing (see --help)");
    EXPECT_FALSE(parse({"--restore", "b", "--force=1"}).ok());
}

TEST(CommandLine, UsageListsOptionsAndKeys) {
    const std::string text = usage_text("mqttd");
    for (const char* s :
         {"Usage: mqttd", "--config FILE", "--data-dir DIR", "--set KEY=VALUE", "--version",
          "--help", "--restore BACKUP", "inspect --data-dir DIR", "mqtt.max_inflight = 0",
          "mqtt.max_inflight_bytes = 4194304", "mqtt.allow_anonymous = true  *"}) {
        EXPECT_NE(text.find(s), std::string::npos) << s;
    }
}

}  // namespace
}  // namespace mqttd::config
