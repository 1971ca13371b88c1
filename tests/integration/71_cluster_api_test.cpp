// The REST API across a cluster: real mqttd nodes joined through a real etcd 3.4 (one member,
// started once for this binary in a temp dir on free ports), asked with curl. A nodes/{node}/…
// path naming another member is answered by that member; the cluster-wide lookups (clients,
// sessions, subscriptions by client id, monitoring, configs) answer for every running member,
// from whichever node is asked; changes meant for the cluster (configs, admin users) are made on
// every member. Each test uses a cluster name of its own.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db_servers.h"
#include "harness.h"
#include "server_env.h"

namespace mqttd::itest {
namespace {

using Json = nlohmann::json;

auto* const g_env = dbtest::add_server_env<dbtest::EtcdServer>();

// METHOD http://127.0.0.1:port/api/v2/PATH with `body` as `user` (curl); the parsed answer,
// or a discarded JSON value when there is none.
Json rest(uint16_t port,
          const std::string& method,
          const std::string& path,
          const std::string& body = "",
          const std::string& user = "admin:public") {
    std::vector<std::string> argv{"curl", "-s", "-m", "8", "-u", user, "-X", method};
    if (!body.empty()) {
        argv.insert(argv.end(), {"-H", "Content-Type: application/json", "-d", body});
    }
    argv.push_back("http://127.0.0.1:" + std::to_string(port) + "/api/v2/" + path);
    auto [rc, out] = run_command(argv, 12s);
    return Json::parse(rc == 0 ? out : std::string(), nullptr, false);
}

int code(const Json& j) {
    return j.is_object() ? j.value("code", -1) : -1;
}

class ClusterApiIt : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(g_env->ok()) << g_env->error();
        a_ = node("a@127.0.0.1");
        b_ = node("b@127.0.0.1");
        c_ = node("c@127.0.0.1");
        for (auto* n : {a_.get(), b_.get(), c_.get()}) {
            ASSERT_TRUE(eventually([&] { return running(*n) == 3; })) << n->api_port();
        }
    }

    std::unique_ptr<BrokerProcess> node(const std::string& name) {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        return std::make_unique<BrokerProcess>(std::vector<std::string>{
                "node.name=" + name, "cluster.etcd.endpoints=" + g_env->server().endpoint(),
                "cluster.name=t-" + std::string(info->name()), "cluster.lease_ttl=2"});
    }

    // How many members `on` lists as Running.
    static size_t running(const BrokerProcess& on) {
        Json j = rest(on.api_port(), "GET", "management/nodes");
        size_t n = 0;
        if (code(j) == 0) {
            for (const auto& e : j["result"]) {
                n += e.value("node_status", "") == "Running" ? 1 : 0;
            }
        }
        return n;
    }

    std::unique_ptr<BrokerProcess> a_, b_, c_;
};

TEST_F(ClusterApiIt, ANodePathIsAnsweredByThatNodeFromAnyNode) {
    MosqClient on_b("on-b");
    ASSERT_EQ(on_b.connect(b_->port()), 0);
    ASSERT_EQ(on_b.subscribe("b/topic", 1), std::vector<int>{1});

    // b's clients, sessions and subscriptions, asked of a and of c: b's own answer.
    for (auto* asked : {a_.get(), c_.get(), b_.get()}) {
        Json clients = rest(asked->api_port(), "GET", "nodes/b@127.0.0.1/clients");
        ASSERT_EQ(code(clients), 0) << clients.dump();
        ASSERT_EQ(clients["result"]["objects"].size(), 1u) << clients.dump();
        EXPECT_EQ(clients["result"]["objects"][0]["client_id"], "on-b");
        Json subs = rest(asked->api_port(), "GET", "nodes/b@127.0.0.1/subscriptions/on-b");
        ASSERT_EQ(code(subs), 0) << subs.dump();
        ASSERT_EQ(subs["result"]["objects"].size(), 1u) << subs.dump();
        EXPECT_EQ(subs["result"]["objects"][0]["topic"], "b/topic");
        Json stats = rest(asked->api_port(), "GET", "monitoring/stats/b@127.0.0.1");
        ASSERT_EQ(code(stats), 0) << stats.dump();
        EXPECT_EQ(stats["result"]["clients/count"], 1) << stats.dump();
    }
    // a's own list is a's: nobody is connected to a.
    Json mine = rest(a_->api_port(), "GET", "nodes/a@127.0.0.1/clients");
    ASSERT_EQ(code(mine), 0);
    EXPECT_TRUE(mine["result"]["objects"].empty()) << mine.dump();
    // Query parameters travel with the request (paging, filters).
    Json filtered = rest(a_->api_port(), "GET", "nodes/b@127.0.0.1/clients?clientid=zz");
    ASSERT_EQ(code(filtered), 0) << filtered.dump();
    EXPECT_TRUE(filtered["result"]["objects"].empty()) << filtered.dump();
    // A plugin stopped through a, on b, stops on b only.
    Json stopped = rest(a_->api_port(), "PUT", "nodes/b@127.0.0.1/plugins/emq_retainer",
                        R"({"active": false})");
    ASSERT_EQ(code(stopped), 0) << stopped.dump();
    auto retainer_active = [](const Json& plugins) {
        for (const auto& p : plugins["result"]) {
            if (p.value("name", "") == "emq_retainer") {
                return p.value("active", false);
            }
        }
        return false;
    };
    EXPECT_FALSE(retainer_active(rest(c_->api_port(), "GET", "nodes/b@127.0.0.1/plugins")));
    EXPECT_TRUE(retainer_active(rest(b_->api_port(), "GET", "nodes/a@127.0.0.1/plugins")));

    // A name that is no member, and a member that is not running.
    EXPECT_EQ(code(rest(a_->api_port(), "GET", "nodes/zz@127.0.0.1/clients")), 101);
    ASSERT_EQ(c_->stop(), 0);
    ASSERT_TRUE(eventually([&] { return running(*a_) == 2; }));
    Json down = rest(a_->api_port(), "GET", "nodes/c@127.0.0.1/clients");
    EXPECT_EQ(code(down), 101) << down.dump();
    EXPECT_NE(down.value("message", "").find("not running"), std::string::npos) << down.dump();
    // management/nodes/{node} still answers for it, from its record.
    Json record = rest(a_->api_port(), "GET", "management/nodes/c@127.0.0.1");
    ASSERT_EQ(code(record), 0) << record.dump();
    EXPECT_EQ(record["result"]["node_status"], "Stopped");
}

TEST_F(ClusterApiIt, LookupsByClientIdAnswerForTheWholeCluster) {
    MosqClient on_b("on-b");
    ASSERT_EQ(on_b.connect(b_->port()), 0);
    ASSERT_EQ(on_b.subscribe("x/#", 1), std::vector<int>{1});
    // A persistent session on c, offline.
    {
        MosqClient p("kept-on-c", /*clean_session=*/false);
        ASSERT_EQ(p.connect(c_->port()), 0);
        ASSERT_EQ(p.subscribe("kept/#", 1), std::vector<int>{1});
        p.disconnect();
    }

    for (auto* asked : {a_.get(), b_.get(), c_.get()}) {
        Json cl = rest(asked->api_port(), "GET", "clients/on-b");
        ASSERT_EQ(code(cl), 0) << cl.dump();
        ASSERT_EQ(cl["result"]["objects"].size(), 1u) << cl.dump();
        EXPECT_EQ(cl["result"]["objects"][0]["client_id"], "on-b");
        EXPECT_EQ(cl["result"]["objects"][0]["node"], "b@127.0.0.1");

        Json subs = rest(asked->api_port(), "GET", "subscriptions/on-b");
        ASSERT_EQ(code(subs), 0) << subs.dump();
        ASSERT_EQ(subs["result"]["objects"].size(), 1u) << subs.dump();
        EXPECT_EQ(subs["result"]["objects"][0]["topic"], "x/#");

        Json sess = rest(asked->api_port(), "GET", "sessions/kept-on-c");
        ASSERT_EQ(code(sess), 0) << sess.dump();
        ASSERT_EQ(sess["result"]["objects"].size(), 1u) << sess.dump();
        EXPECT_EQ(sess["result"]["objects"][0]["node"], "c@127.0.0.1");

        Json none = rest(asked->api_port(), "GET", "clients/nobody");
        ASSERT_EQ(code(none), 0);
        EXPECT_TRUE(none["result"]["objects"].empty());
    }

    // Actions find the node that has the client or session.
    Json acl = rest(a_->api_port(), "PUT", "clients/on-b/clean_acl_cache", R"({"topic":"x/1"})");
    EXPECT_EQ(code(acl), 0) << acl.dump();
    EXPECT_EQ(code(rest(a_->api_port(), "DELETE", "clients/nobody")), 112);
    EXPECT_EQ(code(rest(c_->api_port(), "DELETE", "clients/on-b")), 0);
    EXPECT_TRUE(on_b.wait_disconnected());
    EXPECT_TRUE(eventually([&] {
        Json j = rest(b_->api_port(), "GET", "nodes/b@127.0.0.1/clients");
        return code(j) == 0 && j["result"]["objects"].empty();
    }));
    Json q = rest(a_->api_port(), "GET", "sessions/kept-on-c/mqueue");
    EXPECT_EQ(code(q), 0) << q.dump();
    EXPECT_EQ(code(rest(b_->api_port(), "DELETE", "sessions/kept-on-c")), 0);
    Json gone = rest(c_->api_port(), "GET", "nodes/c@127.0.0.1/sessions/kept-on-c");
    ASSERT_EQ(code(gone), 0);
    EXPECT_TRUE(gone["result"]["objects"].empty()) << gone.dump();
    EXPECT_EQ(code(rest(a_->api_port(), "DELETE", "sessions/kept-on-c")), 112);
}

TEST_F(ClusterApiIt, MonitoringListsEveryNode) {
    MosqClient on_a("on-a");
    ASSERT_EQ(on_a.connect(a_->port()), 0);
    MosqClient on_c("on-c");
    ASSERT_EQ(on_c.connect(c_->port()), 0);
    const std::set<std::string> all{"a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"};

    Json nodes = rest(b_->api_port(), "GET", "monitoring/nodes");
    ASSERT_EQ(code(nodes), 0) << nodes.dump();
    std::set<std::string> names;
    uint64_t clients = 0;
    for (const auto& n : nodes["result"]) {
        names.insert(n.value("name", ""));
        clients += n.value("clients", uint64_t{0});
        EXPECT_EQ(n["node_status"], "Running") << n.dump();
        EXPECT_TRUE(n.contains("memory_used")) << "each node's own figures: " << n.dump();
    }
    EXPECT_EQ(names, all);
    EXPECT_EQ(clients, 2u);

    Json listeners = rest(b_->api_port(), "GET", "monitoring/listeners");
    ASSERT_EQ(code(listeners), 0) << listeners.dump();
    std::set<std::string> keys;
    for (const auto& [k, v] : listeners["result"].items()) {
        keys.insert(k);
        EXPECT_TRUE(v.is_array()) << v.dump();
    }
    EXPECT_EQ(keys, all);

    Json stats = rest(b_->api_port(), "GET", "monitoring/stats");
    ASSERT_EQ(code(stats), 0) << stats.dump();
    EXPECT_EQ(stats["result"].size(), 3u) << stats.dump();

    Json configs = rest(b_->api_port(), "GET", "configs");
    ASSERT_EQ(code(configs), 0) << configs.dump();
    EXPECT_EQ(configs["result"].size(), 3u) << configs.dump();

    // The cluster's counters are the sum of the nodes'.
    Json sum = rest(b_->api_port(), "GET", "monitoring/metrics");
    ASSERT_EQ(code(sum), 0) << sum.dump();
    uint64_t connects = 0;
    for (const auto* n : {"a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"}) {
        Json one = rest(b_->api_port(), "GET", std::string("monitoring/metrics/") + n);
        ASSERT_EQ(code(one), 0) << one.dump();
        connects += one["result"].value("packets/connect", uint64_t{0});
    }
    EXPECT_EQ(connects, 2u);
    EXPECT_EQ(sum["result"].value("packets/connect", uint64_t{0}), connects) << sum.dump();

    // A stopped member stays in the list, stopped; the answer comes without it.
    ASSERT_EQ(c_->stop(), 0);
    ASSERT_TRUE(eventually([&] { return running(*b_) == 2; }));
    Json after = rest(b_->api_port(), "GET", "monitoring/nodes");
    ASSERT_EQ(code(after), 0) << after.dump();
    std::set<std::string> stopped;
    for (const auto& n : after["result"]) {
        if (n.value("node_status", "") == "Stopped") {
            stopped.insert(n.value("name", ""));
        }
    }
    EXPECT_EQ(stopped, std::set<std::string>{"c@127.0.0.1"});
    EXPECT_EQ(after["result"].size(), 3u);
}

TEST_F(ClusterApiIt, ConfigAndAdminUserChangesApplyOnEveryNode) {
    Json set = rest(a_->api_port(), "PUT", "configs/emqttd",
                    R"({"key":"mqtt.allow_anonymous","value":"false"})");
    ASSERT_EQ(code(set), 0) << set.dump();
    for (auto* n : {a_.get(), b_.get(), c_.get()}) {
        MosqClient anon("anon");
        EXPECT_NE(anon.connect(n->port()), 0) << "anonymous refused on " << n->port();
    }

    Json added = rest(b_->api_port(), "POST", "users",
                      R"({"username":"ops","password":"s3cret-pass","tags":"operator"})");
    ASSERT_EQ(code(added), 0) << added.dump();
    for (auto* n : {a_.get(), b_.get(), c_.get()}) {
        Json as_ops = rest(n->api_port(), "GET", "management/nodes", "", "ops:s3cret-pass");
        EXPECT_EQ(code(as_ops), 0) << "ops logs in on " << n->api_port() << ": " << as_ops.dump();
    }
    Json removed = rest(c_->api_port(), "DELETE", "users/ops");
    ASSERT_EQ(code(removed), 0) << removed.dump();
    for (auto* n : {a_.get(), b_.get(), c_.get()}) {
        Json as_ops = rest(n->api_port(), "GET", "management/nodes", "", "ops:s3cret-pass");
        EXPECT_NE(code(as_ops), 0) << "ops removed on " << n->api_port();
    }
}

TEST_F(ClusterApiIt, ConcurrentClusterWideRequestsOnEveryNodeAllGetEveryNode) {
    // Each node asks the others while they ask it: no request waits for one that waits for it.
    constexpr int kPerNode = 6;
    std::vector<std::thread> askers;
    std::atomic<int> complete{0};
    std::mutex m;
    std::vector<std::string> incomplete;
    for (auto* n : {a_.get(), b_.get(), c_.get()}) {
        for (int i = 0; i < kPerNode; ++i) {
            askers.emplace_back([&, port = n->api_port()] {
                for (int round = 0; round < 3; ++round) {
                    Json j = rest(port, "GET", "monitoring/nodes");
                    size_t live = 0;
                    if (code(j) == 0) {
                        for (const auto& e : j["result"]) {
                            live += e.contains("memory_used") ? 1 : 0;
                        }
                    }
                    if (live == 3) {
                        ++complete;
                    } else {
                        std::lock_guard lock(m);
                        incomplete.push_back(j.dump());
                    }
                }
            });
        }
    }
    for (auto& t : askers) {
        t.join();
    }
    EXPECT_EQ(complete.load(), 3 * kPerNode * 3);
    EXPECT_TRUE(incomplete.empty()) << incomplete.size() << " answers without every node, e.g. "
                                    << (incomplete.empty() ? "" : incomplete.front());
}

TEST_F(ClusterApiIt, AKilledMemberIsLeftOutAndNamedUntilItsLeaseEnds) {
    c_->kill9();
    // Its lease (2 s) has not ended: it counts as running, and does not answer.
    Json nodes = rest(a_->api_port(), "GET", "monitoring/nodes");
    ASSERT_EQ(code(nodes), 0) << nodes.dump();
    std::set<std::string> names;
    for (const auto& n : nodes["result"]) {
        if (n.value("node_status", "") == "Running") {
            names.insert(n.value("name", ""));
        }
    }
    EXPECT_EQ(names, (std::set<std::string>{"a@127.0.0.1", "b@127.0.0.1"}));
    Json passed = rest(a_->api_port(), "GET", "nodes/c@127.0.0.1/clients");
    EXPECT_EQ(code(passed), 101) << passed.dump();
    Json set = rest(a_->api_port(), "PUT", "configs/emqttd",
                    R"({"key":"mqtt.allow_anonymous","value":"true"})");
    EXPECT_EQ(code(set), 101) << "not done everywhere: " << set.dump();
    EXPECT_NE(set.value("message", "").find("c@127.0.0.1"), std::string::npos) << set.dump();
}

}  // namespace
}  // namespace mqttd::itest
