// 55 Backup, restore and the read-only inspector: POST /api/v2/backup takes an online snapshot
// while QoS 1 load runs into persistent sessions; `mqttd --restore` puts it into a new data
// directory; a second mqttd started on it has every message acknowledged before the backup
// request, exactly once, and the sessions, subscriptions, retained messages, config keys,
// admin users and plugin state. `mqttd inspect` reads a store while its broker runs under load
// and after kill -9, without disturbing it.
#include <atomic>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace mqttd::itest {
namespace {

using Json = nlohmann::json;

// A REST call with a JSON body, as admin:public; the parsed answer (null when not JSON).
Json rest(uint16_t api_port,
          const std::string& method,
          const std::string& path,
          const std::string& body = "",
          const std::string& user = "admin:public") {
    std::vector<std::string> argv = {
            "curl", "-s",   "-m",
            "30",   "-u",   user,
            "-X",   method, "http://127.0.0.1:" + std::to_string(api_port) + "/api/v2/" + path};
    if (!body.empty()) {
        argv.insert(argv.end(), {"-H", "Content-Type: application/json", "-d", body});
    }
    auto [status, out] = run_command(argv, 40s);
    EXPECT_EQ(status, 0) << method << " " << path;
    return Json::parse(out, nullptr, false);
}

// Publishes QoS 1 messages "<n>" to `topic` one at a time, each after the previous PUBACK,
// until stopped; `acked` is the number acknowledged so far (so every n < acked was).
class Publisher {
public:
    Publisher(uint16_t port, std::string topic) : topic_(std::move(topic)) {
        thread_ = std::thread([this, port] { run(port); });
    }
    ~Publisher() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    uint64_t acked() const { return acked_.load(); }
    bool failed() const { return failed_.load(); }
    // Why it failed; read after stop().
    const std::string& why() const { return why_; }

private:
    void run(uint16_t port) {
        RawClient c;
        c.connect_ok(port, "publisher");  // returns session present
        if (!c.is_open() || c.closed()) {
            why_ = "CONNECT failed";
            failed_ = true;
            return;
        }
        for (uint64_t n = 0; !stop_; ++n) {
            const uint16_t id = c.next_id();
            if (!c.send(pkt::publish(topic_, std::to_string(n), 1, id))) {
                why_ = "closed at message " + std::to_string(n);
                failed_ = true;
                return;
            }
            auto p = c.read(5s);
            if (!p || p->type() != kPuback || packet_id_of(*p) != id) {
                why_ = "no PUBACK for message " + std::to_string(n) + ": " +
                       (p ? describe(*p) : std::string(c.closed() ? "closed" : "timeout"));
                failed_ = true;
                return;
            }
            acked_ = n + 1;
        }
        c.disconnect();
    }

    std::string topic_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> failed_{false};
    std::atomic<uint64_t> acked_{0};
    std::string why_;
};

// Receives and acknowledges publishes until nothing comes for `quiet`; their payloads.
std::vector<std::string> drain(RawClient& c, std::chrono::milliseconds quiet = 1500ms) {
    std::vector<std::string> out;
    while (auto p = c.read(quiet)) {
        if (p->type() != kPublish) {
            ADD_FAILURE() << "expected PUBLISH, got " << describe(*p);
            continue;
        }
        Publish pub = parse_publish(*p);
        if (pub.qos == 1) {
            c.send(pkt::puback(pub.packet_id));
        }
        out.push_back(pub.payload);
    }
    return out;
}

std::pair<int, std::string> mqttd(const std::vector<std::string>& args) {
    std::vector<std::string> argv;
    argv.reserve(args.size() + 1);
    argv.emplace_back(mqttd_binary());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, 60s);
}

Json inspect_json(const std::string& data_dir, std::vector<std::string> what) {
    std::vector<std::string> args = {"inspect", "--data-dir", data_dir, "--json"};
    args.insert(args.end(), what.begin(), what.end());
    auto [status, out] = mqttd(args);
    EXPECT_EQ(status, 0) << out;
    return Json::parse(out, nullptr, false);
}

// A config file with nothing in it, for the command-line runs of mqttd.
std::string empty_conf(const TempDir& dir) {
    const std::string path = dir.path() + "/empty.conf";
    std::ofstream(path) << "# empty\n";
    return path;
}

const std::vector<std::string> kUnbounded = {"mqtt.mqueue.max_len=0"};

TEST(Backup, UnderLoadRestoresEveryAcknowledgedMessageOnceAndAllState) {
    BrokerProcess b(kUnbounded);
    ASSERT_NO_FATAL_FAILURE();
    for (const char* id : {"s1", "s2"}) {
        RawClient c;
        c.connect_ok(b.port(), id, false);
        ASSERT_EQ(c.subscribe("load/#", 1), std::vector<uint8_t>{1});
        c.disconnect();
    }
    {
        RawClient c;
        c.connect_ok(b.port(), "retainer");
        c.publish("ret/a", "A", 1, true);
        c.publish("ret/b", "B", 1, true);
        c.disconnect();
    }
    const std::string node = "mqttd@127.0.0.1";
    ASSERT_EQ(rest(b.api_port(), "PUT", "configs/emqttd",
                   R"({"key": "mqtt.broker.sys_interval", "value": "33"})")["code"],
              0);
    ASSERT_EQ(rest(b.api_port(), "POST", "users",
                   R"({"username": "ops", "password": "s3cret"})")["code"],
              0);
    ASSERT_EQ(rest(b.api_port(), "PUT", "nodes/" + node + "/plugins/emq_modules",
                   R"({"active": true})")["code"],
              0);

    Publisher pub(b.port(), "load/x");
    ASSERT_TRUE(eventually([&] { return pub.acked() >= 200 || pub.failed(); }, 20s));
    const uint64_t acked_before = pub.acked();
    Json backup = rest(b.api_port(), "POST", "backup", R"({"name": "under-load"})");
    // The load goes on while the backup is taken and after it.
    const uint64_t acked_after_backup = pub.acked();
    std::this_thread::sleep_for(300ms);
    pub.stop();
    ASSERT_FALSE(pub.failed()) << pub.why();
    EXPECT_GT(pub.acked(), acked_after_backup) << "the broker stopped serving";
    ASSERT_EQ(backup["code"], 0) << backup.dump();
    const Json& info = backup["result"];
    ASSERT_TRUE(info["path"].is_string()) << backup.dump();
    EXPECT_GT(info["size"].get<uint64_t>(), 0u);
    EXPECT_GT(info["sequence"].get<uint64_t>(), 0u);
    EXPECT_EQ(info["name"], "under-load");
    const std::string path = info["path"];

    Json list = rest(b.api_port(), "GET", "backup");
    ASSERT_EQ(list["code"], 0);
    ASSERT_EQ(list["result"].size(), 1u) << list.dump();
    EXPECT_EQ(list["result"][0]["name"], "under-load");
    EXPECT_EQ(list["result"][0]["sequence"], info["sequence"]);

    TempDir fresh;
    const std::string restored = fresh.path() + "/d";
    auto [rc, out] = mqttd({"-c", empty_conf(fresh), "--restore", path, "--data-dir", restored});
    ASSERT_EQ(rc, 0) << out;

    std::vector<std::string> sets = kUnbounded;
    sets.push_back("node.data_dir=" + restored);
    BrokerProcess b2(sets);
    ASSERT_NO_FATAL_FAILURE();
    for (const char* id : {"s1", "s2"}) {
        RawClient c;
        ASSERT_TRUE(c.connect_ok(b2.port(), id, false)) << id << ": session not restored";
        std::set<uint64_t> seen;
        uint64_t received = 0;
        for (const std::string& p : drain(c)) {
            ++received;
            seen.insert(std::stoull(p));
        }
        EXPECT_EQ(received, seen.size()) << id << ": a message came twice";
        std::cout << id << ": " << acked_before << " acknowledged before the backup, "
                  << acked_after_backup << " when it answered, " << seen.size() << " restored\n";
        for (uint64_t n = 0; n < acked_before; ++n) {
            if (!seen.contains(n)) {
                ADD_FAILURE() << id << ": message " << n << " acknowledged before the backup ("
                              << acked_before << " were) is missing; " << seen.size()
                              << " restored";
                break;
            }
        }
        // The subscription came back with the session: a new message reaches it.
        RawClient p2;
        p2.connect_ok(b2.port(), std::string("late-") + id);
        p2.publish("load/x", "999999999", 1);
        auto got = c.receive_and_ack();
        ASSERT_TRUE(got.has_value()) << id;
        EXPECT_EQ(got->payload, "999999999");
    }
    {
        RawClient c;
        c.connect_ok(b2.port(), "reader");
        c.subscribe("ret/#", 1);
        std::set<std::string> topics;
        while (auto p = c.next(1000ms)) {
            if (p->type() == kPublish) {
                auto pubm = parse_publish(*p);
                topics.insert(pubm.topic + "=" + pubm.payload);
                if (pubm.qos == 1) {
                    c.ack(pubm);
                }
            }
        }
        EXPECT_EQ(topics, (std::set<std::string>{"ret/a=A", "ret/b=B"}));
    }
    Json configs = rest(b2.api_port(), "GET", "configs");
    bool found = false;
    for (const auto& c : configs["result"][node]) {
        if (c["key"] == "mqtt.broker.sys_interval") {
            found = true;
            EXPECT_EQ(c["value"], "33");
        }
    }
    EXPECT_TRUE(found) << configs.dump();
    EXPECT_EQ(rest(b2.api_port(), "GET", "users", "", "ops:s3cret")["code"], 0)
            << "the added admin user was not restored";
    Json plugins = rest(b2.api_port(), "GET", "nodes/" + node + "/plugins");
    found = false;
    for (const auto& p : plugins["result"]) {
        if (p["name"] == "emq_modules") {
            found = true;
            EXPECT_EQ(p["active"], true);
        }
    }
    EXPECT_TRUE(found) << plugins.dump();
}

TEST(Backup, RestoreRefusesAStoreThatIsThereUnlessForced) {
    BrokerProcess b;
    ASSERT_NO_FATAL_FAILURE();
    {
        RawClient c;
        c.connect_ok(b.port(), "keep", false);
        c.subscribe("k/#", 1);
        c.disconnect();
    }
    Json backup = rest(b.api_port(), "POST", "backup");
    ASSERT_EQ(backup["code"], 0) << backup.dump();
    const std::string path = backup["result"]["path"];
    EXPECT_EQ(backup["result"]["name"].get<std::string>().rfind("backup-", 0), 0u);

    TempDir fresh;
    const std::string conf = empty_conf(fresh);
    const std::string restored = fresh.path() + "/d";
    EXPECT_EQ(mqttd({"-c", conf, "--restore", path, "--data-dir", restored}).first, 0);
    EXPECT_EQ(mqttd({"-c", conf, "--restore", path, "--data-dir", restored}).first, 1)
            << "a second restore over the first must be refused";
    EXPECT_EQ(mqttd({"-c", conf, "--restore", path, "--data-dir", restored, "--force"}).first, 0);
    // Not even --force replaces the store of a running broker.
    EXPECT_EQ(mqttd({"-c", conf, "--restore", path, "--data-dir", b.data_dir(), "--force"}).first,
              1);
    EXPECT_EQ(mqttd({"-c", conf, "--restore", fresh.path() + "/nothing", "--data-dir",
                     fresh.path() + "/e"})
                      .first,
              1);
    EXPECT_EQ(mqttd({"-c", conf, "--force"}).first, 2);
    Json sessions = inspect_json(restored, {"sessions"});
    ASSERT_EQ(sessions["count"], 1) << sessions.dump();
    EXPECT_EQ(sessions["sessions"][0]["client_id"], "keep");

    const std::string name = backup["result"]["name"];
    EXPECT_EQ(rest(b.api_port(), "DELETE", "backup/" + name)["code"], 0);
    EXPECT_EQ(rest(b.api_port(), "GET", "backup")["result"].size(), 0u);
    EXPECT_EQ(rest(b.api_port(), "DELETE", "backup/" + name)["code"], 108);
    EXPECT_EQ(rest(b.api_port(), "POST", "backup", R"({"name": "../x"})")["code"], 108);
}

TEST(Inspect, ReadsTheStoreWhileLoadRunsAndAfterKill9) {
    BrokerProcess b(kUnbounded);
    ASSERT_NO_FATAL_FAILURE();
    for (const char* id : {"q1", "q2"}) {
        RawClient c;
        c.connect_ok(b.port(), id, false);
        c.subscribe("work/#", 1);
        c.disconnect();
    }
    {
        RawClient c;
        c.connect_ok(b.port(), "retainer");
        c.publish("state/a", "1", 1, true);
        c.publish("state/b", "2", 1, true);
        c.publish("other/c", "3", 1, true);
        c.disconnect();
    }
    Publisher pub(b.port(), "work/x");
    ASSERT_TRUE(eventually([&] { return pub.acked() >= 50 || pub.failed(); }, 20s));
    uint64_t rounds = 0;
    const uint64_t acked_at_start = pub.acked();
    for (int i = 0; i < 10; ++i) {
        const uint64_t acked = pub.acked();
        Json s = inspect_json(b.data_dir(), {"sessions"});
        ASSERT_TRUE(s.is_object()) << "round " << i;
        std::set<std::string> ids;
        for (const auto& x : s["sessions"]) {
            ids.insert(x["client_id"]);
        }
        EXPECT_TRUE(ids.contains("q1") && ids.contains("q2")) << s.dump();
        Json q = inspect_json(b.data_dir(), {"queue", "q1", "--limit", "5"});
        EXPECT_GE(q["queued"].get<uint64_t>(), acked) << "round " << i;
        EXPECT_LE(q["entries"].size(), 5u);
        Json r = inspect_json(b.data_dir(), {"retained", "state/#"});
        EXPECT_EQ(r["count"], 2) << r.dump();
        ++rounds;
    }
    // The broker kept serving: the load moved on during the inspections.
    EXPECT_GT(pub.acked(), acked_at_start);
    pub.stop();
    ASSERT_FALSE(pub.failed()) << pub.why();
    const uint64_t total = pub.acked();
    EXPECT_EQ(rounds, 10u);

    b.kill9();
    Json q = inspect_json(b.data_dir(), {"queue", "q2"});
    EXPECT_EQ(q["queued"].get<uint64_t>(), total) << q.dump();
    Json stats = inspect_json(b.data_dir(), {"stats"});
    EXPECT_EQ(stats["sessions"], 2) << stats.dump();
    EXPECT_GE(stats["retained"].get<uint64_t>(), 3u) << stats.dump();
    auto [rc, table] = mqttd({"inspect", "--data-dir", b.data_dir(), "retained", "#"});
    EXPECT_EQ(rc, 0);
    EXPECT_NE(table.find("other/c"), std::string::npos) << table;
    EXPECT_NE(table.find("3 retained"), std::string::npos) << table;
    EXPECT_EQ(mqttd({"inspect", "--data-dir", b.data_dir(), "session", "nobody"}).first, 1);
    EXPECT_EQ(mqttd({"inspect", "--data-dir", b.data_dir(), "bogus"}).first, 2);

    // Nothing the inspector did stands in the broker's way or changed the store.
    b.start();
    ASSERT_NO_FATAL_FAILURE();
    RawClient c;
    ASSERT_TRUE(c.connect_ok(b.port(), "q2", false));
    EXPECT_EQ(drain(c).size(), total);
}

}  // namespace
}  // namespace mqttd::itest
