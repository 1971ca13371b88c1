// The fixture of the cluster suites (70, 73): one real etcd per test binary (server_env.h,
// restarted by SetUp when a test stopped it), a cluster name per test, mqttd nodes in that
// cluster, and the cluster's keys and members as etcd and the REST API show them.
//
// Thread-safety: the test's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster/etcd_client.h"
#include "db_servers.h"
#include "harness.h"
#include "server_env.h"

namespace mqttd::itest {

// The binary's etcd, registered with gtest before main.
inline dbtest::ServerEnv<dbtest::EtcdServer>* const g_env =
        dbtest::add_server_env<dbtest::EtcdServer>();

class ClusterTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(g_env->ok()) << g_env->error();
        if (!g_env->server().running()) {
            ASSERT_EQ(g_env->server().start(), "");
        }
    }

    // A cluster name no other test uses.
    static std::string cluster_name() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        return std::string("t-") + info->name();
    }

    // A node of this test's cluster (etcd: `endpoints`, else the binary's), started.
    static std::unique_ptr<BrokerProcess> node(const std::string& name,
                                               const std::string& endpoints = "",
                                               int lease_ttl_s = 2,
                                               std::vector<std::string> extra = {}) {
        std::vector<std::string> sets{
                "node.name=" + name,
                "cluster.etcd.endpoints=" +
                        (endpoints.empty() ? g_env->server().endpoint() : endpoints),
                "cluster.name=" + cluster_name(),
                "cluster.lease_ttl=" + std::to_string(lease_ttl_s)};
        sets.insert(sets.end(), extra.begin(), extra.end());
        return std::make_unique<BrokerProcess>(std::move(sets));
    }

    // A new persistent session `id` on `n` subscribed to `filter` at `qos`, left offline: its
    // queue keeps what is routed to it. Failures are fatal (ASSERT_NO_FATAL_FAILURE).
    static void offline_subscriber(const BrokerProcess& n,
                                   const std::string& id,
                                   const std::string& filter,
                                   uint8_t qos = 1) {
        RawClient s;
        ASSERT_FALSE(s.connect_ok(n.port(), id, false)) << "a new session";
        ASSERT_EQ(s.subscribe(filter, qos), (std::vector<uint8_t>{qos}));
        s.disconnect();  // the session and its route stay
    }

    // This cluster's route keys in etcd, as "<filter> <node>".
    static std::set<std::string> route_keys() {
        std::set<std::string> out;
        cluster::EtcdClient etcd({g_env->server().endpoint()});
        const std::string p = cluster_name() + "/routes/";
        auto kvs = etcd.range(p, cluster::prefix_end(p));
        if (!kvs) {
            return out;
        }
        for (const auto& kv : *kvs) {
            std::string entry = kv.key.substr(p.size());
            entry[entry.rfind('/')] = ' ';  // "<filter>/<node>": node names hold no '/'
            out.insert(std::move(entry));
        }
        return out;
    }

    // The value of `node`'s route key for `filter` ("" durable, "c" clean); nullopt: none.
    static std::optional<std::string> route_value(const std::string& filter,
                                                  const std::string& node) {
        cluster::EtcdClient etcd({g_env->server().endpoint()});
        auto kvs = etcd.range(cluster_name() + "/routes/" + filter + "/" + node);
        if (!kvs || kvs->empty()) {
            return std::nullopt;
        }
        return (*kvs)[0].value;
    }

    // management/nodes of `on`, as name → node_status.
    using Statuses = std::map<std::string, std::string>;
    static Statuses statuses(const BrokerProcess& on) {
        Statuses out;
        auto j = nlohmann::json::parse(rest_get(on.api_port(), "management/nodes"), nullptr, false);
        if (!j.is_object() || j.value("code", -1) != 0) {
            return out;
        }
        for (const auto& n : j["result"]) {
            out[n.value("name", "")] = n.value("node_status", "");
        }
        return out;
    }
};

}  // namespace mqttd::itest
