// The cluster layer against a real etcd 3.4 (one member, started once for this binary in a temp
// dir on free ports): the etcd client's calls (put, range, the create-if-absent transaction, a
// lease that expires, a watch), then real mqttd nodes joining one cluster — every node lists
// every member in management/nodes, a stopped node shows Stopped at once, a killed one when its
// lease expires, etcd going away and coming back, and a node that starts with etcd down. Each
// test uses a cluster name of its own, so the tests share the etcd without seeing each other.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster/etcd_client.h"
#include "db_servers.h"
#include "harness.h"

namespace mqttd::itest {
namespace {

using cluster::EtcdClient;
using cluster::WatchEvent;
using Json = nlohmann::json;

dbtest::EtcdServer* g_etcd = nullptr;
std::string g_error;

class EtcdEnv : public ::testing::Environment {
public:
    void SetUp() override {
        g_etcd = new dbtest::EtcdServer;
        g_error = g_etcd->start();
    }
    void TearDown() override {
        delete g_etcd;
        g_etcd = nullptr;
    }
};
[[maybe_unused]] const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new EtcdEnv);

class EtcdIt : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(g_error.empty()) << g_error;
        if (!g_etcd->running()) {
            ASSERT_EQ(g_etcd->start(), "");
        }
    }
    // A cluster name no other test uses.
    static std::string cluster_name() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        return std::string("t-") + info->name();
    }
};

// ---- the etcd client ----

TEST_F(EtcdIt, PutRangeEraseAndPrefixes) {
    EtcdClient etcd({g_etcd->endpoint()});
    const std::string p = cluster_name() + "/";
    ASSERT_TRUE(etcd.put(p + "a", "1"));
    ASSERT_TRUE(etcd.put(p + "b", std::string("bin\0ary\xff", 8)));
    ASSERT_TRUE(etcd.put(p + "c/d", ""));
    ASSERT_TRUE(etcd.put(cluster_name() + "0", "outside the prefix"));

    int64_t revision = 0;
    auto all = etcd.range(p, cluster::prefix_end(p), &revision);
    ASSERT_TRUE(all) << all.error().message;
    ASSERT_EQ(all->size(), 3u);
    EXPECT_EQ((*all)[0].key, p + "a");
    EXPECT_EQ((*all)[0].value, "1");
    EXPECT_EQ((*all)[1].value, std::string("bin\0ary\xff", 8));
    EXPECT_EQ((*all)[2].value, "");
    EXPECT_GT(revision, 0);

    auto one = etcd.range(p + "a");
    ASSERT_TRUE(one);
    ASSERT_EQ(one->size(), 1u);

    auto gone = etcd.erase(p, cluster::prefix_end(p));
    ASSERT_TRUE(gone);
    EXPECT_EQ(*gone, 3);
    auto none = etcd.range(p, cluster::prefix_end(p));
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
}

TEST_F(EtcdIt, CreateOnlyWhenAbsentAndReplaceOnlyWhenUnchanged) {
    EtcdClient etcd({g_etcd->endpoint()});
    const std::string key = cluster_name() + "/owner";
    auto first = etcd.create(key, "node-1", 0);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(*first);
    cluster::KeyValue existing;
    auto second = etcd.create(key, "node-2", 0, &existing);
    ASSERT_TRUE(second);
    EXPECT_FALSE(*second);
    EXPECT_EQ(existing.value, "node-1");

    auto stale = etcd.replace(key, existing.mod_revision - 1, "node-2", 0);
    ASSERT_TRUE(stale);
    EXPECT_FALSE(*stale);
    auto swapped = etcd.replace(key, existing.mod_revision, "node-2", 0);
    ASSERT_TRUE(swapped);
    EXPECT_TRUE(*swapped);
    auto now = etcd.range(key);
    ASSERT_TRUE(now);
    ASSERT_EQ(now->size(), 1u);
    EXPECT_EQ((*now)[0].value, "node-2");
}

TEST_F(EtcdIt, LeaseKeysVanishWhenTheLeaseExpiresOrIsRevoked) {
    EtcdClient etcd({g_etcd->endpoint()});
    const std::string p = cluster_name() + "/";
    auto lease = etcd.grant(2);
    ASSERT_TRUE(lease) << lease.error().message;
    ASSERT_TRUE(etcd.put(p + "short", "x", *lease));
    auto ttl = etcd.keep_alive(*lease);
    ASSERT_TRUE(ttl);
    EXPECT_GT(*ttl, 0);
    EXPECT_TRUE(eventually([&] { return etcd.range(p + "short")->empty(); }, 8000ms));
    auto after = etcd.keep_alive(*lease);
    ASSERT_TRUE(after);
    EXPECT_EQ(*after, 0) << "a lease that expired cannot be kept alive";

    auto other = etcd.grant(60);
    ASSERT_TRUE(other);
    ASSERT_TRUE(etcd.put(p + "long", "y", *other));
    ASSERT_TRUE(etcd.revoke(*other));
    EXPECT_TRUE(etcd.range(p + "long")->empty());
}

TEST_F(EtcdIt, WatchSeesPutsAndDeletesInOrderFromARevision) {
    EtcdClient etcd({g_etcd->endpoint()});
    const std::string p = cluster_name() + "/";
    auto before = etcd.put(p + "old", "before the watch");
    ASSERT_TRUE(before);
    std::mutex m;
    std::vector<std::string> seen;
    std::atomic<bool> broken{false};
    auto w = etcd.watch(
            p, *before,
            [&](std::vector<WatchEvent> events) {
                std::lock_guard lock(m);
                for (const auto& e : events) {
                    seen.push_back((e.type == WatchEvent::Type::Put ? "put " : "delete ") +
                                   e.kv.key.substr(p.size()) + "=" + e.kv.value);
                }
            },
            [&](const std::string&) { broken = true; });
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(etcd.put(p + "k", std::to_string(i)));
    }
    ASSERT_TRUE(etcd.erase(p + "k"));
    auto count = [&] {
        std::lock_guard lock(m);
        return seen.size();
    };
    ASSERT_TRUE(eventually([&] { return count() == 22; })) << count();
    std::lock_guard lock(m);
    EXPECT_EQ(seen.front(), "put old=before the watch") << "the watch starts at the revision";
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(seen[static_cast<size_t>(i) + 1], "put k=" + std::to_string(i));
    }
    EXPECT_EQ(seen.back(), "delete k=");
    EXPECT_FALSE(broken);
}

TEST_F(EtcdIt, AnUnreachableEndpointIsSkippedAndNoneReachableIsAnError) {
    const std::string closed = "http://127.0.0.1:" + std::to_string(free_port());
    EtcdClient both({closed, g_etcd->endpoint()}, 1000);
    auto put = both.put(cluster_name() + "/x", "1");
    ASSERT_TRUE(put) << put.error().message;

    EtcdClient none({closed}, 500);
    auto failed = none.put(cluster_name() + "/x", "1");
    ASSERT_FALSE(failed);
    EXPECT_TRUE(failed.error().unreachable);
    EXPECT_NE(failed.error().message.find(closed), std::string::npos) << failed.error().message;

    EXPECT_EQ(EtcdClient::parse_endpoints(" http://a:1/, http://b:2 ,,"),
              (std::vector<std::string>{"http://a:1", "http://b:2"}));
    EXPECT_TRUE(EtcdClient::parse_endpoints("").empty());
}

// ---- mqttd nodes in one cluster ----

class ClusterIt : public EtcdIt {
protected:
    std::unique_ptr<BrokerProcess> node(const std::string& name,
                                        const std::string& endpoints = "") {
        return std::make_unique<BrokerProcess>(std::vector<std::string>{
                "node.name=" + name,
                "cluster.etcd.endpoints=" + (endpoints.empty() ? g_etcd->endpoint() : endpoints),
                "cluster.name=" + cluster_name(), "cluster.lease_ttl=2"});
    }

    // management/nodes of `on`, as name → node_status.
    static std::map<std::string, std::string> statuses(const BrokerProcess& on) {
        std::map<std::string, std::string> out;
        Json j = Json::parse(rest_get(on.api_port(), "management/nodes"), nullptr, false);
        if (!j.is_object() || j.value("code", -1) != 0) {
            return out;
        }
        for (const auto& n : j["result"]) {
            out[n.value("name", "")] = n.value("node_status", "");
        }
        return out;
    }
    using Statuses = std::map<std::string, std::string>;
};

TEST_F(ClusterIt, EveryNodeListsEveryMember) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    auto c = node("c@127.0.0.1");
    const Statuses all{
            {"a@127.0.0.1", "Running"}, {"b@127.0.0.1", "Running"}, {"c@127.0.0.1", "Running"}};
    for (auto* n : {a.get(), b.get(), c.get()}) {
        EXPECT_TRUE(eventually([&] { return statuses(*n) == all; })) << n->api_port();
    }
    // Another node's record, asked by its name, in the spec's fields and types.
    Json j = Json::parse(rest_get(a->api_port(), "management/nodes/b@127.0.0.1"), nullptr, false);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["code"], 0);
    const Json& r = j["result"];
    EXPECT_EQ(r["name"], "b@127.0.0.1");
    EXPECT_EQ(r["node_status"], "Running");
    EXPECT_EQ(r["sysdescr"], "mqttd MQTT broker");
    EXPECT_FALSE(r["version"].get<std::string>().empty());
    EXPECT_NE(r["uptime"].get<std::string>().find("seconds"), std::string::npos) << r.dump();
    EXPECT_TRUE(r["datetime"].is_string());
    EXPECT_TRUE(r["otp_release"].is_string());
    // A name that is no member is still an error.
    Json unknown =
            Json::parse(rest_get(a->api_port(), "management/nodes/zz@127.0.0.1"), nullptr, false);
    ASSERT_TRUE(unknown.is_object());
    EXPECT_NE(unknown.value("code", 0), 0) << unknown.dump();
}

TEST_F(ClusterIt, AStoppedNodeIsStoppedAtOnceAndAKilledOneWhenItsLeaseEnds) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    auto c = node("c@127.0.0.1");
    ASSERT_TRUE(eventually([&] { return statuses(*a).size() == 3; }));

    // SIGTERM: the node revokes its lease on the way out.
    ASSERT_EQ(b->stop(), 0);
    const auto stopped_at = std::chrono::steady_clock::now();
    EXPECT_TRUE(eventually([&] { return statuses(*a)["b@127.0.0.1"] == "Stopped"; }, 1500ms))
            << "a clean stop leaves at once, without waiting for the lease";
    EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 1500ms);

    // kill -9: nothing is revoked; the lease (2 s) ends it.
    c->kill9();
    EXPECT_EQ(statuses(*a)["c@127.0.0.1"], "Running") << "the lease has not expired yet";
    EXPECT_TRUE(eventually([&] { return statuses(*a)["c@127.0.0.1"] == "Stopped"; }, 8000ms));

    // Coming back: the same member is Running again.
    b->start();
    EXPECT_TRUE(eventually([&] { return statuses(*a)["b@127.0.0.1"] == "Running"; }));
}

TEST_F(ClusterIt, EtcdGoneNodesKeepServingAndRejoinWhenItReturns) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    ASSERT_TRUE(eventually([&] { return statuses(*a).size() == 2; }));

    g_etcd->stop();
    // MQTT goes on, and the REST API answers from the last known membership.
    MosqClient sub("sub");
    ASSERT_EQ(sub.connect(b->port()), 0);
    ASSERT_EQ(sub.subscribe("t/#", 1), std::vector<int>{1});
    MosqClient pub("pub");
    ASSERT_EQ(pub.connect(b->port()), 0);
    ASSERT_TRUE(pub.publish("t/1", "while etcd is down", 1));
    auto got = sub.wait_message();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->payload, "while etcd is down");
    EXPECT_EQ(statuses(*a).size(), 2u);
    EXPECT_TRUE(eventually(
            [&] { return b->log_text().find("etcd unreachable") != std::string::npos; }));

    // Down for longer than the lease (etcd renews leases when it restarts): the nodes watch
    // again from a fresh listing and are both Running everywhere.
    std::this_thread::sleep_for(3s);
    ASSERT_EQ(g_etcd->start(), "");
    const Statuses both{{"a@127.0.0.1", "Running"}, {"b@127.0.0.1", "Running"}};
    EXPECT_TRUE(eventually([&] { return statuses(*a) == both && statuses(*b) == both; }, 15000ms))
            << statuses(*a).size();
    auto alive = g_etcd->ctl({"get", "--prefix", "--keys-only", cluster_name() + "/alive/"});
    EXPECT_NE(alive.output.find("alive/a@127.0.0.1"), std::string::npos) << alive.output;
    EXPECT_NE(alive.output.find("alive/b@127.0.0.1"), std::string::npos) << alive.output;
}

TEST_F(ClusterIt, ANodeWhoseLeaseWasLostJoinsAgainWithANewOne) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    ASSERT_TRUE(eventually([&] { return statuses(*a).size() == 2; }));
    EtcdClient etcd({g_etcd->endpoint()});
    const std::string key = cluster_name() + "/alive/b@127.0.0.1";
    auto kv = etcd.range(key);
    ASSERT_TRUE(kv);
    ASSERT_EQ(kv->size(), 1u);
    const int64_t lease = (*kv)[0].lease;
    ASSERT_NE(lease, 0);
    // As an expiry would: the lease and the alive key go; b finds out at its next keep-alive.
    ASSERT_TRUE(etcd.revoke(lease));
    EXPECT_TRUE(eventually([&] {
        auto now = etcd.range(key);
        return now && now->size() == 1 && (*now)[0].lease != lease;
    })) << "b puts its alive key again under a new lease";
    EXPECT_TRUE(eventually([&] { return statuses(*a)["b@127.0.0.1"] == "Running"; }));
    EXPECT_TRUE(eventually(
            [&] { return b->log_text().find("expired; joining again") != std::string::npos; }));
}

TEST_F(ClusterIt, ANodeStartsWithEtcdDownServesAndJoinsWhenItComesUp) {
    g_etcd->stop();
    auto late = node("late@127.0.0.1");
    MosqClient c("c");
    ASSERT_EQ(c.connect(late->port()), 0) << "a node without etcd still serves";
    EXPECT_EQ(c.subscribe("x", 0), std::vector<int>{0});
    EXPECT_NE(late->log_text().find("etcd unreachable"), std::string::npos) << late->log_text();
    // management/nodes lists the node itself.
    EXPECT_EQ(statuses(*late), (Statuses{{"late@127.0.0.1", "Running"}}));

    ASSERT_EQ(g_etcd->start(), "");
    EtcdClient etcd({g_etcd->endpoint()});
    EXPECT_TRUE(eventually(
            [&] {
                auto kv = etcd.range(cluster_name() + "/alive/late@127.0.0.1");
                return kv && kv->size() == 1;
            },
            8000ms));
    EXPECT_TRUE(eventually(
            [&] { return late->log_text().find("joined cluster") != std::string::npos; }));
}

TEST_F(ClusterIt, AnEndpointThatIsDownIsSkipped) {
    const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
    auto a = node("a@127.0.0.1", dead + "," + g_etcd->endpoint());
    auto b = node("b@127.0.0.1", g_etcd->endpoint() + "," + dead);
    const Statuses both{{"a@127.0.0.1", "Running"}, {"b@127.0.0.1", "Running"}};
    EXPECT_TRUE(eventually([&] { return statuses(*a) == both && statuses(*b) == both; }));
}

TEST_F(ClusterIt, WithoutEtcdConfiguredANodeIsAloneAndTouchesNoEtcd) {
    BrokerProcess single({"node.name=single@127.0.0.1", "cluster.name=" + cluster_name()});
    EXPECT_EQ(statuses(single), (Statuses{{"single@127.0.0.1", "Running"}}));
    EtcdClient etcd({g_etcd->endpoint()});
    auto keys = etcd.range(cluster_name() + "/", cluster::prefix_end(cluster_name() + "/"));
    ASSERT_TRUE(keys);
    EXPECT_TRUE(keys->empty());
}

}  // namespace
}  // namespace mqttd::itest
