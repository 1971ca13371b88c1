// 57 Logging: `log.file` rotated by size (`log.file.max_size`, `log.file.count` files kept),
// its own level (`log.file.level`), and `log.format = json` on both the console and the file:
// every line one JSON object (time ISO 8601 UTC, level, thread, message) that parses, also when
// the message holds quotes, backslashes, newlines and control characters (here: the name of
// the ACL file, logged at each SIGHUP reload). Bad values refuse the start with one line.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace mqttd::itest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

// Every line parses as {"time","level","thread","message"}; returns the messages.
std::vector<std::string> json_messages(const std::string& text, const std::string& where) {
    static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    std::vector<std::string> out;
    for (const std::string& line : lines_of(text)) {
        const Json j = Json::parse(line, nullptr, false);
        EXPECT_TRUE(j.is_object()) << where << ": not a JSON object: " << line;
        if (!j.is_object()) {
            continue;
        }
        EXPECT_TRUE(j.contains("time") && j["time"].is_string() &&
                    std::regex_match(j["time"].get<std::string>(), kTime))
                << line;
        EXPECT_TRUE(j.contains("level") && j["level"].is_string()) << line;
        EXPECT_TRUE(j.contains("thread") && j["thread"].is_number_unsigned()) << line;
        EXPECT_TRUE(j.contains("message") && j["message"].is_string()) << line;
        EXPECT_EQ(j.size(), 4u) << line;
        if (j.contains("message") && j["message"].is_string()) {
            out.push_back(j["message"].get<std::string>());
        }
    }
    return out;
}

// One broker for the suite: json, a 4 KB file kept in 2 rotations, the file at info while the
// console is at debug (the harness default), an ACL file whose name needs escaping.
class Logging : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir();
        acl_ = dir_->sub("acl \"quoted\" back\\slash\ttab\nnewline\x01soh.conf");
        std::ofstream(acl_) << "{allow, all}.\n";
        log_ = dir_->sub("mqttd.log");
        broker_ = new BrokerProcess({"log.format=json", "log.file=" + log_, "log.file.max_size=4KB",
                                     "log.file.count=2", "log.file.level=info",
                                     "mqtt.acl_file=" + acl_});
    }
    static void TearDownTestSuite() {
        delete broker_;
        broker_ = nullptr;
        delete dir_;
        dir_ = nullptr;
    }

    static TempDir* dir_;
    static BrokerProcess* broker_;
    static std::string acl_;
    static std::string log_;
};

TempDir* Logging::dir_ = nullptr;
BrokerProcess* Logging::broker_ = nullptr;
std::string Logging::acl_;
std::string Logging::log_;

TEST_F(Logging, FileRotatesBySizeKeepsCountFilesAndEveryLineIsJson) {
    ASSERT_TRUE(broker_->running());
    // Each SIGHUP logs "ACL reloaded from <name>" (about 200 bytes): 4 KB fills in ~20.
    // spdlog names the rotated files mqttd.1.log (the newest), mqttd.2.log, ...
    const std::string rotated1 = dir_->sub("mqttd.1.log");
    const std::string rotated2 = dir_->sub("mqttd.2.log");
    int sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (sent < 200 && std::chrono::steady_clock::now() < deadline) {
        ASSERT_EQ(::kill(broker_->pid(), SIGHUP), 0);
        ++sent;
        std::this_thread::sleep_for(10ms);
        if (sent > 100 && fs::exists(rotated2)) {
            break;
        }
    }
    // The file sink flushes every second.
    std::this_thread::sleep_for(1500ms);
    ASSERT_TRUE(fs::exists(log_));
    ASSERT_TRUE(fs::exists(rotated1)) << "no rotation after " << sent << " reloads";
    EXPECT_TRUE(fs::exists(rotated2)) << "after " << sent << " reloads";
    EXPECT_FALSE(fs::exists(dir_->sub("mqttd.3.log")))
            << "log.file.count = 2 keeps two rotated files";
    int reload_lines = 0;
    for (const std::string& f : {log_, rotated1, rotated2}) {
        if (!fs::exists(f)) {
            continue;
        }
        EXPECT_LE(fs::file_size(f), 4096u) << f;
        for (const std::string& m : json_messages(slurp(f), f)) {
            if (m.starts_with("ACL reloaded from ")) {
                // The name came through the escaping byte for byte.
                EXPECT_EQ(m, "ACL reloaded from " + acl_);
                ++reload_lines;
            }
        }
    }
    EXPECT_GT(reload_lines, 20);
    ASSERT_FALSE(broker_->exited());
}

TEST_F(Logging, ConsoleIsJsonToo) {
    ASSERT_TRUE(broker_->running());
    ASSERT_EQ(::kill(broker_->pid(), SIGHUP), 0);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (broker_->last_output().find("ACL reloaded from") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    std::string console;
    // What the broker wrote to stderr, after the harness's start banner.
    for (const std::string& line : lines_of(broker_->last_output())) {
        console += line + "\n";
    }
    const auto messages = json_messages(console, "console");
    bool listening = false;
    int reloads = 0;
    for (const auto& m : messages) {
        listening = listening || m.find(" listening on ") != std::string::npos;
        reloads += m == "ACL reloaded from " + acl_;
    }
    EXPECT_TRUE(listening) << console;
    EXPECT_GT(reloads, 0) << console;
}

// log.file.level = warning while the console is at debug: the file has the warnings and none
// of the info lines; text format, the default.
TEST(LoggingLevels, TheFileKeepsItsOwnLevel) {
    TempDir dir;
    const std::string log = dir.sub("mqttd.log");
    const std::string acl = dir.sub("acl.conf");
    std::ofstream(acl) << "{allow, all}.\n";
    BrokerProcess b({"log.file=" + log, "log.file.level=warning", "mqtt.acl_file=" + acl});
    ASSERT_TRUE(b.running());
    ASSERT_EQ(::kill(b.pid(), SIGHUP), 0);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (b.log_text().find("ACL reloaded from") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_NE(b.log_text().find("] [info] ACL reloaded from " + acl), std::string::npos)
            << b.log_text();
    b.stop();
    const std::string file = slurp(log);
    // The default password warning is logged at every start.
    EXPECT_NE(file.find("] [warning] REST API user admin still has its default password"),
              std::string::npos)
            << file;
    EXPECT_EQ(file.find("[info]"), std::string::npos) << file;
    EXPECT_EQ(file.find("[debug]"), std::string::npos) << file;
}

// A bad value refuses the start: exit 1 and one line naming the key.
TEST(LoggingConfig, BadValuesRefuseTheStartWithOneLine) {
    TempDir dir;
    const std::string not_a_dir = dir.sub("file");
    std::ofstream(not_a_dir) << "x";
    struct Case {
        std::string set;
        std::string expect;
    };
    for (const Case& c :
         std::vector<Case>{{"log.format=xml", "log.format"},
                           {"log.file.level=chatty", "log.file.level"},
                           {"log.file.max_size=10 parsecs", "log.file.max_size"},
                           {"log.file.max_size=100", "log.file.max_size"},
                           {"log.file.count=0", "log.file.count"},
                           {"log.file=" + not_a_dir + "/mqttd.log", "log.file = " + not_a_dir}}) {
        BrokerProcess b({c.set}, false);
        EXPECT_EQ(b.run_until_exit(), 1) << c.set;
        std::vector<std::string> lines;
        for (const std::string& l : lines_of(b.last_output())) {
            if (!l.empty()) {
                lines.push_back(l);
            }
        }
        ASSERT_EQ(lines.size(), 1u) << c.set << ":\n" << b.last_output();
        EXPECT_TRUE(lines[0].starts_with("mqttd: ")) << lines[0];
        EXPECT_NE(lines[0].find(c.expect), std::string::npos) << lines[0];
    }
}

}  // namespace
}  // namespace mqttd::itest
