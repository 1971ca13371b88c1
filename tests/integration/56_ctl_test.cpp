// 56 `mqttd ctl`: the control CLI against a running broker over its REST API — each command
// group does what its REST call does, --json gives the API's result, the exit status tells a
// script what went wrong (1 API error, 2 usage, 3 unreachable, 4 credentials refused), and
// credentials come from options, the environment or a 0600 file.
#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace mqttd::itest {
namespace {

using Json = nlohmann::json;

class Ctl : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_NO_FATAL_FAILURE(broker_.start()); }

    // mqttd ctl --api <broker> --password public ARGS; {exit status, stdout}.
    std::pair<int, std::string> ctl(const std::vector<std::string>& args,
                                    const std::vector<std::string>& before = {"--password",
                                                                              "public"}) {
        std::vector<std::string> argv = {mqttd_binary(), "ctl", "--api", api()};
        argv.insert(argv.end(), before.begin(), before.end());
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command(argv, 30s);
    }
    Json ctl_json(const std::vector<std::string>& args) {
        std::vector<std::string> with = args;
        with.emplace_back("--json");
        auto [status, out] = ctl(with);
        EXPECT_EQ(status, 0) << out;
        return Json::parse(out, nullptr, false);
    }
    std::string api() const { return "http://127.0.0.1:" + std::to_string(broker_.api_port()); }

    BrokerProcess broker_{{}, false};
};

TEST_F(Ctl, StatusClientsSessionsAndKick) {
    Json status = ctl_json({"status"});
    EXPECT_EQ(status["name"], "mqttd@127.0.0.1") << status.dump();
    EXPECT_EQ(status["node_status"], "Running");

    RawClient c;
    c.connect_ok(broker_.port(), "ctl-client", false);
    c.subscribe("ctl/#", 1);
    Json clients = ctl_json({"clients", "list"});
    ASSERT_EQ(clients["objects"].size(), 1u) << clients.dump();
    EXPECT_EQ(clients["objects"][0]["client_id"], "ctl-client");
    EXPECT_EQ(ctl_json({"clients", "show", "ctl-client"})["objects"][0]["client_id"], "ctl-client");
    Json subs = ctl_json({"subscriptions", "ctl-client"});
    EXPECT_EQ(subs["objects"][0]["topic"], "ctl/#") << subs.dump();
    EXPECT_EQ(ctl_json({"routes"})["objects"][0]["topic"], "ctl/#");
    EXPECT_EQ(ctl_json({"sessions", "show", "ctl-client"})["objects"][0]["clean_sess"], false);

    auto [table_status, table] = ctl({"sessions", "list"});
    EXPECT_EQ(table_status, 0);
    EXPECT_NE(table.find("client_id"), std::string::npos) << table;
    EXPECT_NE(table.find("ctl-client"), std::string::npos) << table;

    EXPECT_EQ(ctl({"clients", "kick", "ctl-client"}).first, 0);
    EXPECT_TRUE(c.wait_closed());
    EXPECT_EQ(ctl({"clients", "kick", "ctl-client"}).first, 1) << "not connected any more";

    // The session outlives the kick (clean session 0) until it is deleted.
    EXPECT_EQ(ctl_json({"sessions", "show", "ctl-client"})["objects"].size(), 1u);
    EXPECT_EQ(ctl({"sessions", "delete", "ctl-client"}).first, 0);
    EXPECT_EQ(ctl_json({"sessions", "show", "ctl-client"})["objects"].size(), 0u);
    EXPECT_EQ(ctl({"sessions", "delete", "ctl-client"}).first, 1) << "no such session any more";
}

TEST_F(Ctl, RetainedPluginsConfigsUsersAndBackups) {
    RawClient c;
    c.connect_ok(broker_.port(), "pub");
    c.publish("keep/me", "v", 1, true);
    Json retained = ctl_json({"retained", "list", "keep/#"});
    ASSERT_EQ(retained["objects"].size(), 1u) << retained.dump();
    EXPECT_EQ(retained["objects"][0]["topic"], "keep/me");
    EXPECT_EQ(ctl({"retained", "delete", "keep/me"}).first, 0);
    EXPECT_EQ(ctl_json({"retained", "list"})["objects"].size(), 0u);

    EXPECT_EQ(ctl({"plugins", "load", "emq_modules"}).first, 0);
    EXPECT_EQ(ctl({"plugins", "load", "emq_modules"}).first, 1) << "already started";
    bool active = false;
    for (const auto& p : ctl_json({"plugins", "list"})) {
        if (p["name"] == "emq_modules") {
            active = p["active"];
        }
    }
    EXPECT_TRUE(active);
    EXPECT_EQ(ctl({"plugins", "unload", "emq_modules"}).first, 0);

    EXPECT_EQ(ctl({"configs", "set", "mqtt.broker.sys_interval", "45"}).first, 0);
    std::string value;
    for (const auto& k : ctl_json({"configs", "get"})) {
        if (k["key"] == "mqtt.broker.sys_interval") {
            value = k["value"];
        }
    }
    EXPECT_EQ(value, "45");
    EXPECT_EQ(ctl({"configs", "set", "mqtt.nope", "1"}).first, 1);

    EXPECT_EQ(ctl({"users", "add", "ops", "pw1"}).first, 0);
    EXPECT_EQ(ctl({"users", "passwd", "ops", "pw1", "pw2"}).first, 0);
    EXPECT_EQ(ctl({"status"}, {"--user", "ops", "--password", "pw2"}).first, 0);
    EXPECT_EQ(ctl({"users", "del", "ops"}).first, 0);
    EXPECT_EQ(ctl({"status"}, {"--user", "ops", "--password", "pw2"}).first, 4);

    Json made = ctl_json({"backup", "create", "from-ctl"});
    EXPECT_EQ(made["name"], "from-ctl") << made.dump();
    EXPECT_GT(made["size"].get<uint64_t>(), 0u);
    EXPECT_EQ(ctl_json({"backup", "list"}).size(), 1u);
    EXPECT_EQ(ctl({"backup", "delete", "from-ctl"}).first, 0);
    EXPECT_EQ(ctl_json({"backup", "list"}).size(), 0u);
}

TEST_F(Ctl, ExitStatusAndCredentials) {
    EXPECT_EQ(ctl({"status"}, {"--password", "wrong"}).first, 4);
    EXPECT_EQ(ctl({"bogus"}).first, 2);
    EXPECT_EQ(ctl({"clients"}).first, 2) << "a group needs its command";
    EXPECT_EQ(ctl({"status"}, {}).first, 2) << "no password from anywhere";
    EXPECT_EQ(run_command({mqttd_binary(), "ctl", "--api", "http://127.0.0.1:1", "--password",
                           "public", "status"},
                          30s)
                      .first,
              3);
    // The environment.
    EXPECT_EQ(run_command({"env", "MQTTD_API_USER=admin", "MQTTD_API_PASSWORD=public",
                           mqttd_binary(), "ctl", "--api", api(), "status"},
                          30s)
                      .first,
              0);
    // A password file, only when nobody else can read it.
    TempDir dir;
    const std::string file = dir.path() + "/password";
    std::ofstream(file) << "public\n";
    ::chmod(file.c_str(), 0644);
    EXPECT_EQ(ctl({"status"}, {"--password-file", file}).first, 2);
    ::chmod(file.c_str(), 0600);
    EXPECT_EQ(ctl({"status"}, {"--password-file", file}).first, 0);

    auto [status, script] = ctl({"completion"}, {});
    EXPECT_EQ(status, 0);
    EXPECT_NE(script.find("complete -F _mqttd mqttd"), std::string::npos) << script;
    EXPECT_NE(script.find("\"ctl clients\") words=\"list show kick\""), std::string::npos)
            << script;
}

}  // namespace
}  // namespace mqttd::itest
