#include "config/config.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "config/config_file.h"
#include "config/logging.h"

namespace mqttd::config {
namespace {

class TempFile {
public:
    explicit TempFile(const std::string& text) {
        static int n = 0;
        path_ = (std::filesystem::temp_directory_path() /
                 ("mqttd_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++) +
                  ".conf"))
                        .string();
        std::ofstream(path_) << text;
    }
    ~TempFile() { std::filesystem::remove(path_); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string file_error(std::string_view text) {
    Config cfg;
    auto r = cfg.apply_text(text, "data/mqttd.conf");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error();
}

TEST(Config, DefaultsAreTheRegistryDefaults) {
    Config cfg;
    for (const KeyDef& def : all_keys()) {
        EXPECT_EQ(cfg.get_text(def.name), def.default_text) << def.name;
        EXPECT_EQ(cfg.effective_source(def.name), Source::Default);
    }
    EXPECT_TRUE(cfg.get_bool("mqtt.allow_anonymous"));
    EXPECT_FALSE(cfg.get_bool("storage.sync"));
    EXPECT_EQ(cfg.get_int("mqtt.max_packet_size"), 1048576);
    EXPECT_EQ(cfg.get_int("mqtt.session.expiry_interval"), 7200);
    EXPECT_EQ(cfg.get_int("log.console.level"), 1);  // enum: index of "info"
    EXPECT_EQ(cfg.get_string("log.console.level"), "info");
    EXPECT_EQ(cfg.get_string("node.name"), "mqttd@127.0.0.1");
    EXPECT_EQ(cfg.db_dir(), "data/db");
    EXPECT_EQ(cfg.store_options().dir, "data/db");
    EXPECT_FALSE(cfg.store_options().sync);
    EXPECT_TRUE(cfg.has("mqtt.max_inflight"));
    EXPECT_FALSE(cfg.has("mqtt.nope"));
}

TEST(Config, ShippedConfigFileEqualsTheDefaultsAndListsEveryKey) {
    const std::string path = std::string(MQTTD_SOURCE_DIR) + "/data/mqttd.conf";
    auto text = read_config_file(path);
    ASSERT_TRUE(text.ok()) << text.error();
    auto entries = parse_config_text(*text, path);
    ASSERT_TRUE(entries.ok()) << entries.error();
    std::set<std::string> listed;
    for (const FileEntry& e : *entries) {
        listed.insert(e.key);
    }
    for (const KeyDef& def : all_keys()) {
        EXPECT_TRUE(listed.contains(std::string(def.name))) << def.name << " missing from " << path;
    }

    CommandLine cl;
    cl.config_file = path;
    auto cfg = Config::load(cl);
    ASSERT_TRUE(cfg.ok()) << cfg.error();
    Config defaults;
    for (const KeyDef& def : all_keys()) {
        EXPECT_EQ((*cfg)->get_text(def.name), defaults.get_text(def.name)) << def.name;
        EXPECT_EQ((*cfg)->effective_source(def.name), Source::File);
    }
}

TEST(Config, FileValuesWithSuffixesQuotesAndComments) {
    TempFile f(
            "# comment\n"
            "mqtt.max_packet_size = 64KB   # small\n"
            "mqtt.session.expiry_interval = 30m\n"
            "mqtt.connect_timeout = \"10s\"\n"
            "node.name = \"edge 1@host\"\n"
            "mqtt.allow_anonymous = false\n"
            "listener.ws.external = 8083\n");
    CommandLine cl;
    cl.config_file = f.path();
    auto cfg = Config::load(cl);
    ASSERT_TRUE(cfg.ok()) << cfg.error();
    Config& c = **cfg;
    EXPECT_EQ(c.get_int("mqtt.max_packet_size"), 65536);
    EXPECT_EQ(c.get_text("mqtt.max_packet_size"), "65536");
    EXPECT_EQ(c.get_int("mqtt.session.expiry_interval"), 1800);
    EXPECT_EQ(c.get_int("mqtt.connect_timeout"), 10);
    EXPECT_EQ(c.get_string("node.name"), "edge 1@host");
    EXPECT_FALSE(c.get_bool("mqtt.allow_anonymous"));
    EXPECT_EQ(c.get_string("listener.ws.external"), "8083");
    EXPECT_EQ(c.effective_source("mqtt.max_packet_size"), Source::File);
    EXPECT_EQ(c.effective_source("mqtt.max_inflight"), Source::Default);
}

TEST(Config, FileErrorsNameFileLineAndKey) {
    EXPECT_EQ(file_error("\n\nmqtt.max_inflight = abc\n"),
              "data/mqttd.conf:3: mqtt.max_inflight: \"abc\" is not an integer");
    EXPECT_EQ(file_error("mqtt.max_inflight = -1\n"),
              "data/mqttd.conf:1: mqtt.max_inflight: -1 is out of range 0..65535");
    EXPECT_EQ(file_error("# x\nmqtt.max_infligt = 5\n"),
              "data/mqttd.conf:2: mqtt.max_infligt: unknown key");
    EXPECT_EQ(file_error("mqtt.max_packet_size = 1GB\n"),
              "data/mqttd.conf:1: mqtt.max_packet_size: \"1GB\" = 1073741824 is out of range "
              "2..268435455");
    EXPECT_EQ(file_error("log.console.level = loud\n"),
              "data/mqttd.conf:1: log.console.level: \"loud\" is not one of "
              "debug|info|warning|error|critical|off");
    EXPECT_EQ(file_error("storage.sync = 1\n"),
              "data/mqttd.conf:1: storage.sync: \"1\" is not a boolean (true or false)");
    EXPECT_EQ(file_error("node.name =\n"), "data/mqttd.conf:1: node.name: value must not be empty");
    EXPECT_EQ(file_error("node.workers 4\n"),
              "data/mqttd.conf:1: expected \"key = value\", got \"node.workers 4\"");
}

TEST(Config, BadFileChangesNothing) {
    Config cfg;
    auto r = cfg.apply_text("mqtt.max_inflight = 7\nmqtt.retry_interval = never\n", "f");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(cfg.get_int("mqtt.max_inflight"), 0);
    EXPECT_EQ(cfg.effective_source("mqtt.max_inflight"), Source::Default);
}

TEST(Config, LoadErrors) {
    CommandLine cl;
    cl.config_file = "/nonexistent/x.conf";
    auto missing = Config::load(cl);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error(),
              "cannot read config file /nonexistent/x.conf: No such file or directory");

    TempFile f("mqtt.max_inflight = 10\n");
    cl.config_file = f.path();
    cl.sets = {{"mqtt.max_inflight", "70000"}};
    EXPECT_EQ(Config::load(cl).error(), "--set mqtt.max_inflight: 70000 is out of range 0..65535");
    cl.sets = {{"mqtt.bogus", "1"}};
    EXPECT_EQ(Config::load(cl).error(), "--set mqtt.bogus: unknown key");

    // Checks between keys: the rate_limit's form, peer_cert_as_username needs verify_peer.
    cl.sets = {{"listener.ws.external.rate_limit", "fast"}};
    EXPECT_EQ(Config::load(cl).error(),
              "listener.ws.external.rate_limit: \"fast\" is not bytes_per_second,burst (e.g. "
              "100KB,1MB)");
    cl.sets = {{"listener.ssl.external.peer_cert_as_username", "cn"}};
    EXPECT_EQ(Config::load(cl).error(),
              "listener.ssl.external.peer_cert_as_username = cn: needs "
              "listener.ssl.external.verify = verify_peer");
    cl.sets.emplace_back("listener.ssl.external.verify", "verify_peer");
    EXPECT_TRUE(Config::load(cl).ok());
}

TEST(Config, Precedence) {
    TempFile f(
            "mqtt.allow_anonymous = false\n"
            "mqtt.acl_nomatch = deny\n"
            "mqtt.broker.sys_interval = 30\n"
            "log.console.level = warning\n"
            "mqtt.max_inflight = 10\n");
    CommandLine cl;
    cl.config_file = f.path();
    cl.sets = {{"log.console.level", "error"},
               {"mqtt.max_inflight", "20"},
               {"mqtt.max_inflight", "21"}};  // a later --set wins
    auto loaded = Config::load(cl);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    Config& c = **loaded;
    EXPECT_EQ(c.get_int("mqtt.max_inflight"), 21);
    EXPECT_EQ(c.effective_source("mqtt.max_inflight"), Source::CommandLine);

    // Saved values override the file but not --set; bad, unknown or non-hot ones are skipped.
    const std::vector<std::string> warnings = c.apply_saved({
            {"mqtt.allow_anonymous", "true"},  // overrides the file
            {"log.console.level", "debug"},    // --set wins
            {"mqtt.cache_acl", "false"},       // overrides the default
            {"mqtt.acl_nomatch", "maybe"},     // no longer valid: skipped
            {"mqtt.removed_key", "1"},         // unknown: skipped
            {"mqtt.max_inflight", "5"},        // not hot: skipped
    });
    EXPECT_TRUE(c.get_bool("mqtt.allow_anonymous"));
    EXPECT_EQ(c.effective_source("mqtt.allow_anonymous"), Source::Saved);
    EXPECT_FALSE(c.get_bool("mqtt.cache_acl"));
    EXPECT_EQ(c.effective_source("mqtt.cache_acl"), Source::Saved);
    EXPECT_EQ(c.get_string("log.console.level"), "error");
    EXPECT_EQ(c.effective_source("log.console.level"), Source::CommandLine);
    EXPECT_EQ(c.get_string("mqtt.acl_nomatch"), "deny");
    EXPECT_EQ(c.effective_source("mqtt.acl_nomatch"), Source::File);
    EXPECT_EQ(c.get_int("mqtt.broker.sys_interval"), 30);
    EXPECT_EQ(c.get_int("mqtt.max_inflight"), 21);
    EXPECT_EQ(warnings,
              (std::vector<std::string>{
                      "saved config mqtt.acl_nomatch: \"maybe\" is not one of allow|deny, ignored",
                      "saved config mqtt.removed_key: unknown key, ignored",
                      "saved config mqtt.max_inflight: not modifiable at run time, ignored"}));
}

TEST(Config, DataDirOptionIsASet) {
    TempFile f("node.data_dir = /srv/a\n");
    const char* argv[] = {"mqttd", "-c", f.path().c_str(), "--data-dir", "/srv/b"};
    auto cl = parse_command_line(5, argv);
    ASSERT_TRUE(cl.ok());
    auto cfg = Config::load(*cl);
    ASSERT_TRUE(cfg.ok()) << cfg.error();
    EXPECT_EQ((*cfg)->data_dir(), "/srv/b");
    EXPECT_EQ((*cfg)->db_dir(), "/srv/b/db");
    EXPECT_EQ((*cfg)->effective_source("node.data_dir"), Source::CommandLine);
}

TEST(Config, SetRuntimeValidatesAppliesAndNotifies) {
    Config cfg;
    std::vector<std::string> seen;
    const uint64_t id =
            cfg.subscribe("mqtt.acl_nomatch", [&](const std::string& v) { seen.push_back(v); });
    ASSERT_NE(id, 0u);
    EXPECT_EQ(cfg.subscribe("no.such", [](const std::string&) {}), 0u);

    ASSERT_TRUE(cfg.set_runtime("mqtt.acl_nomatch", "deny", nullptr).ok());
    EXPECT_EQ(cfg.get_string("mqtt.acl_nomatch"), "deny");
    EXPECT_EQ(cfg.effective_source("mqtt.acl_nomatch"), Source::Runtime);
    EXPECT_EQ(seen, std::vector<std::string>{"deny"});

    // Same value again: accepted, no notification.
    ASSERT_TRUE(cfg.set_runtime("mqtt.acl_nomatch", "deny", nullptr).ok());
    EXPECT_EQ(seen.size(), 1u);

    auto unknown = cfg.set_runtime("mqtt.nope", "1", nullptr);
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().kind, SetError::Kind::UnknownKey);
    EXPECT_EQ(unknown.error().message, "mqtt.nope: unknown key");

    auto cold = cfg.set_runtime("mqtt.max_inflight", "5", nullptr);
    ASSERT_FALSE(cold.ok());
    EXPECT_EQ(cold.error().kind, SetError::Kind::NotHot);
    EXPECT_EQ(cold.error().message, "mqtt.max_inflight: not modifiable at run time");
    EXPECT_EQ(cfg.get_int("mqtt.max_inflight"), 0);

    auto bad = cfg.set_runtime("mqtt.acl_nomatch", "sometimes", nullptr);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().kind, SetError::Kind::BadValue);
    EXPECT_EQ(bad.error().message, "mqtt.acl_nomatch: \"sometimes\" is not one of allow|deny");
    EXPECT_EQ(cfg.get_string("mqtt.acl_nomatch"), "deny");
    EXPECT_EQ(seen.size(), 1u);

    // Durations take suffixes at run time too; REST shows seconds.
    ASSERT_TRUE(cfg.set_runtime("mqtt.broker.sys_interval", "2m", nullptr).ok());
    EXPECT_EQ(cfg.get_text("mqtt.broker.sys_interval"), "120");

    cfg.unsubscribe(id);
    ASSERT_TRUE(cfg.set_runtime("mqtt.acl_nomatch", "allow", nullptr).ok());
    EXPECT_EQ(seen.size(), 1u);
}

TEST(Config, HandlesFollowChanges) {
    Config cfg;
    const IntHandle& interval = cfg.int_handle("mqtt.broker.sys_interval");
    const BoolHandle& anon = cfg.bool_handle("mqtt.allow_anonymous");
    EXPECT_EQ(interval.get(), 60);
    EXPECT_TRUE(anon.get());
    ASSERT_TRUE(cfg.set_runtime("mqtt.broker.sys_interval", "0", nullptr).ok());
    ASSERT_TRUE(cfg.set_runtime("mqtt.allow_anonymous", "false", nullptr).ok());
    EXPECT_EQ(interval.get(), 0);
    EXPECT_FALSE(anon.get());
    EXPECT_FALSE(cfg.get_bool("mqtt.allow_anonymous"));
}

TEST(Config, ListenerMayReadConfig) {
    Config cfg;
    std::string read_back;
    cfg.subscribe("mqtt.cache_acl",
                  [&](const std::string&) { read_back = cfg.get_text("mqtt.cache_acl"); });
    ASSERT_TRUE(cfg.set_runtime("mqtt.cache_acl", "false", nullptr).ok());
    EXPECT_EQ(read_back, "false");
}

TEST(Config, ItemsForRest) {
    Config cfg;
    const auto items = cfg.items();
    ASSERT_EQ(items.size(), all_keys().size());
    std::vector<std::string> hot;
    for (const ConfigItem& it : items) {
        if (it.key == "mqtt.broker.sys_interval") {
            EXPECT_EQ(it.value, "60");
            EXPECT_EQ(it.datatpye, "integer");
            EXPECT_EQ(it.app, "emqttd");
        }
        if (it.hot) {
            hot.push_back(it.key);
        }
    }
    EXPECT_EQ(hot.size(), 6u);
}

TEST(Config, ConcurrentGettersAndSetter) {
    Config cfg;
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::vector<std::thread> readers;
    const IntHandle& interval = cfg.int_handle("mqtt.broker.sys_interval");
    for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&] {
            while (!stop.load()) {
                const std::string level = cfg.get_string("log.console.level");
                if (level != "info" && level != "debug") {
                    ++bad;
                }
                const std::string file = cfg.get_text("mqtt.acl_file");
                if (file != "data/acl.conf" && file != std::string(200, 'x')) {
                    ++bad;
                }
                const int64_t v = interval.get();
                if (v != 60 && v != 61) {
                    ++bad;
                }
                if (cfg.items().size() != all_keys().size()) {
                    ++bad;
                }
                (void)cfg.get_bool("mqtt.allow_anonymous");
            }
        });
    }
    std::atomic<int> notified{0};
    cfg.subscribe("mqtt.acl_file", [&](const std::string&) { ++notified; });
    for (int i = 0; i < 1000; ++i) {
        const bool odd = (i % 2) != 0;
        ASSERT_TRUE(cfg.set_runtime("log.console.level", odd ? "debug" : "info", nullptr).ok());
        ASSERT_TRUE(cfg.set_runtime("mqtt.acl_file", odd ? std::string(200, 'x') : "data/acl.conf",
                                    nullptr)
                            .ok());
        ASSERT_TRUE(cfg.set_runtime("mqtt.broker.sys_interval", odd ? "61" : "60", nullptr).ok());
        ASSERT_TRUE(cfg.set_runtime("mqtt.allow_anonymous", odd ? "false" : "true", nullptr).ok());
    }
    stop = true;
    for (auto& t : readers) {
        t.join();
    }
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(notified.load(), 999);  // the first set keeps the default
}

TEST(Config, ConcurrentSettersAreSerialized) {
    Config cfg;
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
        writers.emplace_back([&cfg, t] {
            for (int i = 0; i < 500; ++i) {
                const auto r = cfg.set_runtime("mqtt.broker.sys_interval",
                                               std::to_string(t * 1000 + i), nullptr);
                EXPECT_TRUE(r.ok());
            }
        });
    }
    for (auto& t : writers) {
        t.join();
    }
    const int64_t v = cfg.get_int("mqtt.broker.sys_interval");
    EXPECT_EQ(std::to_string(v), cfg.get_text("mqtt.broker.sys_interval"));
}

TEST(Logging, LevelFollowsConfig) {
    Config cfg;
    auto ids = init_logging(cfg);
    ASSERT_TRUE(ids.ok()) << ids.error();
    EXPECT_EQ(log_level(), "info");
    ASSERT_TRUE(cfg.set_runtime("log.console.level", "error", nullptr).ok());
    EXPECT_EQ(log_level(), "error");
    EXPECT_TRUE(set_log_level("off"));
    EXPECT_EQ(log_level(), "off");
    EXPECT_FALSE(set_log_level("chatty"));
    EXPECT_EQ(log_level(), "off");
    for (uint64_t id : *ids) {
        cfg.unsubscribe(id);
    }
    EXPECT_TRUE(set_log_level("info"));
}

}  // namespace
}  // namespace mqttd::config
