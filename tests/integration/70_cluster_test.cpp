// The cluster layer against a real etcd 3.4 (one member, started once for this binary in a temp
// dir on free ports): the etcd client's calls (put, range, the create-if-absent transaction, a
// lease that expires, a watch), then real mqttd nodes joining one cluster — every node lists
// every member in management/nodes, a stopped node shows Stopped at once, a killed one when its
// lease expires, etcd going away and coming back, and a node that starts with etcd down. Each
// test uses a cluster name of its own, so the tests share the etcd without seeing each other.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "certs.h"
#include "cluster/etcd_client.h"
#include "cluster_fixture.h"
#include "db_servers.h"
#include "harness.h"
#include "http_client.h"

namespace mqttd::itest {
namespace {

using cluster::EtcdClient;
using cluster::WatchEvent;
using Json = nlohmann::json;

class EtcdIt : public ClusterTest {};

// ---- the etcd client ----

TEST_F(EtcdIt, PutRangeEraseAndPrefixes) {
    EtcdClient etcd({g_env->server().endpoint()});
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
    EtcdClient etcd({g_env->server().endpoint()});
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
    EXPECT_EQ(*stale, 0) << "not replaced";
    auto absent_only = etcd.replace(key, 0, "node-2", 0);
    ASSERT_TRUE(absent_only);
    EXPECT_EQ(*absent_only, 0) << "0: only when absent";
    // With other keys in the same transaction: one revision for all of them.
    const std::string other = cluster_name() + "/other";
    auto swapped = etcd.replace(key, existing.mod_revision, "node-2", 0, {{other, "x"}});
    ASSERT_TRUE(swapped);
    EXPECT_GT(*swapped, existing.mod_revision);
    auto now = etcd.range(key);
    ASSERT_TRUE(now);
    ASSERT_EQ(now->size(), 1u);
    EXPECT_EQ((*now)[0].value, "node-2");
    EXPECT_EQ((*now)[0].mod_revision, *swapped);
    auto also = etcd.range(other);
    ASSERT_TRUE(also);
    ASSERT_EQ(also->size(), 1u);
    EXPECT_EQ((*also)[0].mod_revision, *swapped);
    ASSERT_TRUE(etcd.erase(key));
    auto created = etcd.replace(key, 0, "node-3", 0);
    ASSERT_TRUE(created);
    EXPECT_GT(*created, *swapped) << "created when absent";
}

// One round trip decides each key of a batch on its own (nested transactions).
TEST_F(EtcdIt, ABatchCreatesAndErasesEachKeyOnItsOwn) {
    EtcdClient etcd({g_env->server().endpoint()});
    const std::string p = cluster_name() + "/batch/";
    ASSERT_TRUE(etcd.put(p + "taken", "other", 0));
    std::vector<std::string> keys;
    for (size_t i = 0; i + 1 < EtcdClient::kMaxBatch; ++i) {
        keys.push_back(p + std::to_string(i));
    }
    keys.push_back(p + "taken");
    auto made = etcd.create_each(keys, "me", 0);
    ASSERT_TRUE(made) << made.error().message;
    ASSERT_EQ(made->size(), keys.size());
    for (size_t i = 0; i + 1 < keys.size(); ++i) {
        EXPECT_TRUE((*made)[i].created) << keys[i];
    }
    EXPECT_FALSE(made->back().created);
    EXPECT_EQ(made->back().existing.value, "other");
    auto again = etcd.create_each({p + "0", p + "new"}, "me", 0);
    ASSERT_TRUE(again);
    EXPECT_FALSE((*again)[0].created);
    EXPECT_EQ((*again)[0].existing.value, "me");
    EXPECT_TRUE((*again)[1].created);

    auto erased = etcd.erase_each_if({p + "0", p + "taken", p + "absent"}, "me");
    ASSERT_TRUE(erased) << erased.error().message;
    EXPECT_EQ(*erased, (std::vector<bool>{true, false, false}));
    auto left = etcd.range(p, cluster::prefix_end(p));
    ASSERT_TRUE(left);
    EXPECT_EQ(left->size(), keys.size()) << "all but \"0\", and \"new\"";
}

TEST_F(EtcdIt, LeaseKeysVanishWhenTheLeaseExpiresOrIsRevoked) {
    EtcdClient etcd({g_env->server().endpoint()});
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
    EtcdClient etcd({g_env->server().endpoint()});
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
    EtcdClient both({closed, g_env->server().endpoint()}, 1000);
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

class ClusterIt : public ClusterTest {};

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

    g_env->server().stop();
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
    ASSERT_EQ(g_env->server().start(), "");
    const Statuses both{{"a@127.0.0.1", "Running"}, {"b@127.0.0.1", "Running"}};
    EXPECT_TRUE(eventually([&] { return statuses(*a) == both && statuses(*b) == both; }, 15000ms))
            << statuses(*a).size();
    // Asked of etcd itself (its leader may take a moment after the restart).
    dbtest::RunResult alive;
    EXPECT_TRUE(eventually(
            [&] {
                alive = g_env->server().ctl(
                        {"get", "--prefix", "--keys-only", cluster_name() + "/alive/"});
                return alive.output.find("alive/a@127.0.0.1") != std::string::npos &&
                       alive.output.find("alive/b@127.0.0.1") != std::string::npos;
            },
            15000ms))
            << alive.output << "\netcd's log:\n"
            << g_env->server().log_tail();
}

TEST_F(ClusterIt, ANodeWhoseLeaseWasLostJoinsAgainWithANewOne) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    ASSERT_TRUE(eventually([&] { return statuses(*a).size() == 2; }));
    EtcdClient etcd({g_env->server().endpoint()});
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
    g_env->server().stop();
    auto late = node("late@127.0.0.1");
    MosqClient c("c");
    ASSERT_EQ(c.connect(late->port()), 0) << "a node without etcd still serves";
    EXPECT_EQ(c.subscribe("x", 0), std::vector<int>{0});
    EXPECT_NE(late->log_text().find("etcd unreachable"), std::string::npos) << late->log_text();
    // management/nodes lists the node itself.
    EXPECT_EQ(statuses(*late), (Statuses{{"late@127.0.0.1", "Running"}}));

    ASSERT_EQ(g_env->server().start(), "");
    EtcdClient etcd({g_env->server().endpoint()});
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
    auto a = node("a@127.0.0.1", dead + "," + g_env->server().endpoint());
    auto b = node("b@127.0.0.1", g_env->server().endpoint() + "," + dead);
    const Statuses both{{"a@127.0.0.1", "Running"}, {"b@127.0.0.1", "Running"}};
    EXPECT_TRUE(eventually([&] { return statuses(*a) == both && statuses(*b) == both; }));
}

TEST_F(ClusterIt, WithoutEtcdConfiguredANodeIsAloneAndTouchesNoEtcd) {
    BrokerProcess single({"node.name=single@127.0.0.1", "cluster.name=" + cluster_name()});
    EXPECT_EQ(statuses(single), (Statuses{{"single@127.0.0.1", "Running"}}));
    EtcdClient etcd({g_env->server().endpoint()});
    auto keys = etcd.range(cluster_name() + "/", cluster::prefix_end(cluster_name() + "/"));
    ASSERT_TRUE(keys);
    EXPECT_TRUE(keys->empty());
}

// ---- routes and forwarding between nodes ----

// Publishes QoS 0 probes on `topic` through `pub` until every subscriber got one: then the
// publisher's node has the subscribers' routes (its watch of etcd is applied). The probes are
// drained, so the subscribers' queues start empty.
bool routed(MosqClient& pub, const std::string& topic, std::vector<MosqClient*> subs) {
    std::vector<bool> seen(subs.size(), false);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until &&
           std::find(seen.begin(), seen.end(), false) != seen.end()) {
        if (!pub.publish(topic, "probe", 0)) {
            return false;
        }
        for (size_t i = 0; i < subs.size(); ++i) {
            if (!seen[i]) {
                auto m = subs[i]->wait_message(100ms);
                seen[i] = m && m->topic == topic;
            }
        }
    }
    for (auto* s : subs) {
        while (s->wait_message(kQuiet)) {}
    }
    return std::find(seen.begin(), seen.end(), false) == seen.end();
}

// Whether `from` routes `probe_topic` to every node of `to`: a probe subscriber on each, probed
// from `from` (routed()). A route put after others reaches `from` after them (the watch is in
// revision order): probing it proves `from` has those too.
bool routes_to(const BrokerProcess& from,
               const std::vector<const BrokerProcess*>& to,
               const std::string& probe_topic) {
    std::vector<std::unique_ptr<MosqClient>> subs;
    std::vector<MosqClient*> raw;
    for (const auto* n : to) {
        subs.push_back(std::make_unique<MosqClient>("probe-sub-" + std::to_string(n->port())));
        if (subs.back()->connect(n->port()) != 0 ||
            subs.back()->subscribe(probe_topic, 0) != std::vector<int>{0}) {
            return false;
        }
        raw.push_back(subs.back().get());
    }
    MosqClient probe("probe");
    return probe.connect(from.port()) == 0 && routed(probe, probe_topic, raw);
}

// The payloads a persistent session's queue delivers on a reconnect, acknowledged, in order.
std::vector<int> drain_session(uint16_t port, const std::string& id) {
    std::vector<int> got;
    RawClient s;
    EXPECT_TRUE(s.connect_ok(port, id, false)) << id << ": its session is there";
    while (auto p = s.read(1000ms)) {
        if (p->type() != kPublish) {
            ADD_FAILURE() << describe(*p);
            break;
        }
        Publish m = parse_publish(*p);
        s.ack(m);
        got.push_back(std::stoi(m.payload));
    }
    return got;
}

bool links_up(const BrokerProcess& n, std::vector<std::string> peers) {
    const std::string log = n.log_text();
    return std::all_of(peers.begin(), peers.end(), [&](const std::string& p) {
        return log.find("cluster: link to " + p + " up") != std::string::npos;
    });
}

TEST_F(ClusterIt, ANodeRoutesItsFiltersInEtcdWhileItHasSubscribers) {
    auto a = node("a@127.0.0.1");
    RawClient s1;
    ASSERT_FALSE(s1.connect_ok(a->port(), "s1")) << "a new session";
    EXPECT_EQ(s1.subscribe("r/+/x", 1), (std::vector<uint8_t>{1}));
    EXPECT_EQ(s1.subscribe("$share/g/s/#", 0), (std::vector<uint8_t>{0}));
    RawClient s2;
    ASSERT_FALSE(s2.connect_ok(a->port(), "s2")) << "a new session";
    EXPECT_EQ(s2.subscribe("r/+/x", 0), (std::vector<uint8_t>{0}));
    using Keys = std::set<std::string>;
    // A shared subscription routes as its group.
    EXPECT_TRUE(eventually([&] {
        return route_keys() == Keys{"r/+/x a@127.0.0.1", "$share/g/s/# a@127.0.0.1"};
    })) << route_keys().size();
    s1.unsubscribe({"r/+/x"});  // s2 still subscribes: the route stays
    s1.unsubscribe({"$share/g/s/#"});
    EXPECT_TRUE(eventually([&] { return route_keys() == Keys{"r/+/x a@127.0.0.1"}; }));
    s2.disconnect();  // a clean session ends with its subscriptions
    EXPECT_TRUE(eventually([&] { return route_keys().empty(); }));
    // The keys are bound to the node's lease.
    s1.subscribe("l/1", 0);
    ASSERT_TRUE(eventually([&] { return route_keys() == Keys{"l/1 a@127.0.0.1"}; }));
    EtcdClient etcd({g_env->server().endpoint()});
    auto kv = etcd.range(cluster_name() + "/routes/l/1/a@127.0.0.1");
    ASSERT_TRUE(kv);
    ASSERT_EQ(kv->size(), 1u);
    EXPECT_NE((*kv)[0].lease, 0);
}

TEST_F(ClusterIt, APublishOnOneNodeReachesTheOthersOnceAtEachQos) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    auto c = node("c@127.0.0.1");
    MosqClient on_b("on-b");
    MosqClient on_c("on-c");
    MosqClient on_a("on-a");  // a local subscriber too: it gets each message once as well
    ASSERT_EQ(on_b.connect(b->port()), 0);
    ASSERT_EQ(on_c.connect(c->port()), 0);
    ASSERT_EQ(on_a.connect(a->port()), 0);
    ASSERT_EQ(on_b.subscribe("t/#", 2), std::vector<int>{2});
    ASSERT_EQ(on_c.subscribe("t/+", 2), std::vector<int>{2});
    ASSERT_EQ(on_a.subscribe("t/#", 2), std::vector<int>{2});
    MosqClient pub("pub");
    ASSERT_EQ(pub.connect(a->port()), 0);
    ASSERT_TRUE(routed(pub, "t/probe", {&on_b, &on_c, &on_a}));

    constexpr int kEach = 40;
    for (int qos = 0; qos <= 2; ++qos) {
        const std::string topic = "t/" + std::to_string(qos);
        for (int i = 0; i < kEach; ++i) {
            std::string payload = topic;
            payload.append("-").append(std::to_string(i));
            ASSERT_TRUE(pub.publish(topic, payload, qos));
        }
    }
    for (auto* sub : {&on_b, &on_c, &on_a}) {
        std::map<std::string, int> seen;
        int wrong_qos = 0;
        for (int n = 0; n < 3 * kEach; ++n) {
            auto m = sub->wait_message();
            ASSERT_TRUE(m.has_value()) << "after " << n << " messages";
            ++seen[m->payload];
            wrong_qos += m->qos != m->topic.back() - '0' ? 1 : 0;
        }
        EXPECT_EQ(seen.size(), size_t{3 * kEach}) << "each message exactly once";
        EXPECT_EQ(wrong_qos, 0) << "delivered at the publisher's QoS (the subscriptions are 2)";
        EXPECT_FALSE(sub->wait_message(kQuiet).has_value()) << "no duplicate, no loop back";
    }
}

// MQTT 5 4.8.2 across nodes: each message goes to one member of the group, whichever node
// the members and the publisher are on, in turn between the nodes with members.
TEST_F(ClusterIt, ASharedSubscriptionGetsEachMessageOnceAcrossNodes) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    auto c = node("c@127.0.0.1");
    MosqClient m_a("member-a");
    MosqClient m_b("member-b");
    MosqClient q_b("queue-b");
    MosqClient plain_c("plain-c");
    ASSERT_EQ(m_a.connect(a->port()), 0);
    ASSERT_EQ(m_b.connect(b->port()), 0);
    ASSERT_EQ(q_b.connect(b->port()), 0);
    ASSERT_EQ(plain_c.connect(c->port()), 0);
    ASSERT_EQ(m_a.subscribe("$share/g/w/#", 1), std::vector<int>{1});
    ASSERT_EQ(m_b.subscribe("$share/g/w/#", 1), std::vector<int>{1});
    ASSERT_EQ(q_b.subscribe("$queue/w/+", 1), std::vector<int>{1});  // a group of one node
    ASSERT_EQ(plain_c.subscribe("w/#", 1), std::vector<int>{1});
    using Keys = std::set<std::string>;
    ASSERT_TRUE(eventually([&] {
        return route_keys() == Keys{"$share/g/w/# a@127.0.0.1", "$share/g/w/# b@127.0.0.1",
                                    "$share/$queue/w/+ b@127.0.0.1", "w/# c@127.0.0.1"};
    }));
    MosqClient pub_c("pub-c");  // on a node without members
    MosqClient pub_a("pub-a");  // on a node with one
    ASSERT_EQ(pub_c.connect(c->port()), 0);
    ASSERT_EQ(pub_a.connect(a->port()), 0);
    ASSERT_TRUE(routed(pub_c, "w/probe", {&m_a, &m_b, &q_b, &plain_c}));
    ASSERT_TRUE(routed(pub_a, "w/probe", {&m_a, &m_b, &q_b, &plain_c}));

    constexpr int kEach = 40;
    for (const auto& [pub, topic] :
         {std::pair<MosqClient*, std::string>{&pub_c, "w/from-c"}, {&pub_a, "w/from-a"}}) {
        for (int i = 0; i < kEach; ++i) {
            ASSERT_TRUE(pub->publish(topic, std::to_string(i), 1));
        }
    }
    // Every message of both publishers: once to the group g (on a or b), once to $queue,
    // once to the plain subscriber.
    auto drain = [](MosqClient& sub) {
        std::map<std::string, int> got;
        while (auto m = sub.wait_message(500ms)) {
            ++got[m->topic + " " + m->payload];
        }
        return got;
    };
    auto on_a = drain(m_a);
    auto on_b = drain(m_b);
    auto queue = drain(q_b);
    auto plain = drain(plain_c);
    std::map<std::string, int> group = on_a;
    for (const auto& [k, n] : on_b) {
        group[k] += n;
    }
    for (auto* got : {&group, &queue, &plain}) {
        EXPECT_EQ(got->size(), size_t{2 * kEach});
        EXPECT_TRUE(std::all_of(got->begin(), got->end(), [](const auto& e) {
            return e.second == 1;
        })) << "a message twice";
    }
    // Round robin between the two nodes with members, from either publisher.
    for (const auto* part : {&on_a, &on_b}) {
        EXPECT_GE(part->size(), size_t{kEach / 2}) << "one node took too few";
    }
}

// A node killed with members of a group keeps its routes until its lease ends; meanwhile the
// group's messages go to the members on the nodes still linked, none waiting for the dead one.
TEST_F(ClusterIt, AKilledNodesGroupMembersAreNotPickedWhileItsLeaseRuns) {
    auto a = node("a@127.0.0.1", "", 20);
    auto b = node("b@127.0.0.1", "", 20);
    auto c = node("c@127.0.0.1", "", 20);
    MosqClient m_a("member-a");
    MosqClient m_b("member-b");
    ASSERT_EQ(m_a.connect(a->port()), 0);
    ASSERT_EQ(m_b.connect(b->port()), 0);
    ASSERT_EQ(m_a.subscribe("$share/g/k/#", 1), std::vector<int>{1});
    ASSERT_EQ(m_b.subscribe("$share/g/k/#", 1), std::vector<int>{1});
    using Keys = std::set<std::string>;
    ASSERT_TRUE(eventually([&] {
        return route_keys() == Keys{"$share/g/k/# a@127.0.0.1", "$share/g/k/# b@127.0.0.1"};
    }));
    MosqClient pub("pub");
    ASSERT_EQ(pub.connect(c->port()), 0);
    ASSERT_TRUE(routed(pub, "k/probe", {&m_a, &m_b}));

    b->kill9();
    ASSERT_TRUE(eventually([&] {
        return c->log_text().find("cluster: link to b@127.0.0.1 lost") != std::string::npos;
    }));
    constexpr int kCount = 20;
    for (int i = 0; i < kCount; ++i) {
        ASSERT_TRUE(pub.publish("k/" + std::to_string(i), std::to_string(i), 1))
                << "PUBACK " << i << " waited for the dead node";
    }
    std::set<std::string> got;
    while (auto m = m_a.wait_message(500ms)) {
        if (m->topic != "k/probe") {
            got.insert(m->payload);
        }
    }
    EXPECT_EQ(got.size(), size_t{kCount}) << "every message to the member on a";
    EXPECT_EQ(statuses(*c)["b@127.0.0.1"], "Running") << "within b's lease all along";
}

TEST_F(ClusterIt, AQos1PublishWaitsForThePeerAndARemovedSubscriptionStopsForwarding) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    MosqClient sub("sub", false);  // persistent: its node is waited for
    ASSERT_EQ(sub.connect(b->port()), 0);
    ASSERT_EQ(sub.subscribe("u/1", 1), std::vector<int>{1});
    MosqClient probe("probe");
    ASSERT_EQ(probe.connect(a->port()), 0);
    ASSERT_TRUE(routed(probe, "u/1", {&sub}));

    // b does not answer (stopped): a's PUBACK waits for it, and comes once b has the message.
    RawClient pub;
    ASSERT_FALSE(pub.connect_ok(a->port(), "raw-pub")) << "a new session";
    b->signal(SIGSTOP);
    ASSERT_TRUE(pub.send(pkt::publish("u/1", "held", 1, 7)));
    EXPECT_FALSE(pub.read(1000ms).has_value()) << "no PUBACK before b has the message";
    b->signal(SIGCONT);
    auto ack = pub.read();
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ack->type(), kPuback);
    EXPECT_EQ(packet_id_of(*ack), 7);
    auto got = sub.wait_message();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->payload, "held");

    // Unsubscribed (the session ends: a clean session takes its id): the route goes, and a no
    // longer waits for b.
    sub.disconnect();
    {
        MosqClient drop("sub");
        ASSERT_EQ(drop.connect(b->port()), 0);
    }
    ASSERT_TRUE(eventually([&] { return route_keys().empty(); }));
    uint16_t id = 10;
    EXPECT_TRUE(eventually([&] {
        b->signal(SIGSTOP);
        ++id;
        bool sent = pub.send(pkt::publish("u/1", "unrouted", 1, id));
        auto answer = pub.read(300ms);
        b->signal(SIGCONT);
        if (!answer) {
            answer = pub.read();  // forwarded after all: answered once b runs again
        }
        return sent && answer && answer->type() == kPuback && packet_id_of(*answer) == id &&
               pub.early().empty();
    })) << "a still forwards to b";
}

// "QoS 0 and clean sessions need no such wait": a node whose subscribers to a topic are all
// clean sessions is sent the message without an answer, so a stopped node does not hold the
// publisher's PUBACK; once a persistent session subscribes there, it does.
TEST_F(ClusterIt, AQos1PublishDoesNotWaitForANodeWithOnlyCleanSessionsOnItsRoute) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    MosqClient sub("clean-sub");
    ASSERT_EQ(sub.connect(b->port()), 0);
    ASSERT_EQ(sub.subscribe("v/+", 1), std::vector<int>{1});
    MosqClient probe("probe");
    ASSERT_EQ(probe.connect(a->port()), 0);
    ASSERT_TRUE(routed(probe, "v/probe", {&sub}));
    EXPECT_EQ(route_value("v/+", "b@127.0.0.1"), "c");

    RawClient pub;
    ASSERT_FALSE(pub.connect_ok(a->port(), "raw-pub")) << "a new session";
    b->signal(SIGSTOP);
    ASSERT_TRUE(pub.send(pkt::publish("v/1", "clean", 1, 1)));
    auto ack = pub.read(3000ms);
    b->signal(SIGCONT);
    ASSERT_TRUE(ack.has_value()) << "the PUBACK waited for a node with clean sessions only";
    EXPECT_EQ(ack->type(), kPuback);
    EXPECT_EQ(packet_id_of(*ack), 1);
    auto got = sub.wait_message();
    ASSERT_TRUE(got.has_value()) << "the message still reaches the clean session";
    EXPECT_EQ(got->payload, "clean");

    // A persistent session subscribes on b (another filter matching the topic): durable.
    RawClient durable;
    ASSERT_FALSE(durable.connect_ok(b->port(), "durable-sub", false)) << "a new session";
    ASSERT_EQ(durable.subscribe("v/#", 1), (std::vector<uint8_t>{1}));
    ASSERT_TRUE(eventually([&] { return route_value("v/#", "b@127.0.0.1") == ""; }));
    EXPECT_EQ(route_value("v/+", "b@127.0.0.1"), "c");
    // a's table has the durable route once it forwards on it (a topic v/+ does not match).
    ASSERT_TRUE(eventually([&] {
        return pub.send(pkt::publish("v/2/p", "probe", 0, 0)) && durable.read(300ms).has_value();
    }));
    b->signal(SIGSTOP);
    ASSERT_TRUE(pub.send(pkt::publish("v/3", "durable", 1, 3)));
    auto early = pub.read(1000ms);
    EXPECT_FALSE(early.has_value()) << "no PUBACK before b stored the message: "
                                    << (early ? describe(*early) : std::string());
    b->signal(SIGCONT);
    ack = early ? early : pub.read();
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ack->type(), kPuback);
    EXPECT_EQ(packet_id_of(*ack), 3);

    // The same filter: a persistent subscriber makes v/+ durable, and its leaving clean again.
    ASSERT_EQ(durable.subscribe("v/+", 1), (std::vector<uint8_t>{1}));
    EXPECT_TRUE(eventually([&] { return route_value("v/+", "b@127.0.0.1") == ""; }));
    durable.unsubscribe({"v/+", "v/#"});
    EXPECT_TRUE(eventually([&] { return route_value("v/+", "b@127.0.0.1") == "c"; }));
    EXPECT_TRUE(eventually([&] { return !route_value("v/#", "b@127.0.0.1").has_value(); }));
}

TEST_F(ClusterIt, RetainedMessagesAreStoredOnEveryNode) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    auto c = node("c@127.0.0.1");
    ASSERT_TRUE(eventually(
            [&] {
                return links_up(*a, {"b@127.0.0.1", "c@127.0.0.1"}) &&
                       links_up(*b, {"c@127.0.0.1"});
            },
            10000ms));
    MosqClient pa("pa");
    ASSERT_EQ(pa.connect(a->port()), 0);
    // The PUBACK waits for every node's store: a SUBSCRIBE right after it sees the message.
    ASSERT_TRUE(pa.publish("keep/1", "from a", 1, true));
    MosqClient pc("pc");
    ASSERT_EQ(pc.connect(c->port()), 0);
    ASSERT_TRUE(pc.publish("keep/2", "from c", 2, true));
    for (auto* n : {a.get(), b.get(), c.get()}) {
        MosqClient s("s");
        ASSERT_EQ(s.connect(n->port()), 0);
        ASSERT_EQ(s.subscribe("keep/#", 2), std::vector<int>{2});
        std::map<std::string, std::string> got;
        for (int i = 0; i < 2; ++i) {
            auto m = s.wait_message();
            ASSERT_TRUE(m.has_value()) << n->port();
            EXPECT_TRUE(m->retain);
            got[m->topic] = m->payload;
        }
        EXPECT_EQ(got,
                  (std::map<std::string, std::string>{{"keep/1", "from a"}, {"keep/2", "from c"}}));
        EXPECT_FALSE(s.wait_message(kQuiet).has_value());
    }
    // An empty retained payload deletes it on every node.
    ASSERT_TRUE(pa.publish("keep/1", "", 1, true));
    for (auto* n : {a.get(), b.get(), c.get()}) {
        MosqClient s("s2");
        ASSERT_EQ(s.connect(n->port()), 0);
        ASSERT_EQ(s.subscribe("keep/#", 1), std::vector<int>{1});
        auto m = s.wait_message();
        ASSERT_TRUE(m.has_value());
        EXPECT_EQ(m->topic, "keep/2");
        EXPECT_FALSE(s.wait_message(kQuiet).has_value()) << "keep/1 is gone on " << n->port();
    }
}

// The retained set of a node that joins, or comes back, is completed from its peers: what was
// retained before it joined or while it was down, the newer copy of a topic winning.
TEST_F(ClusterIt, ANodeThatJoinsLaterOrComesBackGetsTheRetainedSet) {
    auto a = node("a@127.0.0.1");
    MosqClient pa("pa");
    ASSERT_EQ(pa.connect(a->port()), 0);
    constexpr int kCount = 50;
    for (int i = 0; i < kCount; ++i) {
        ASSERT_TRUE(pa.publish("set/" + std::to_string(i), "v1", 1, true));
    }
    // b joins: a's set is copied to it; nothing is delivered to b's subscribers as new.
    auto b = node("b@127.0.0.1");
    MosqClient live("live");
    ASSERT_EQ(live.connect(b->port()), 0);
    ASSERT_EQ(live.subscribe("other/#", 1), std::vector<int>{1});
    auto retained_on = [](const BrokerProcess& n, const std::string& filter) {
        std::map<std::string, std::string> got;
        MosqClient s("reader");
        EXPECT_EQ(s.connect(n.port()), 0);
        EXPECT_EQ(s.subscribe(filter, 1), std::vector<int>{1});
        while (auto m = s.wait_message(500ms)) {
            EXPECT_TRUE(m->retain);
            got[m->topic] = m->payload;
        }
        return got;
    };
    ASSERT_TRUE(eventually(
            [&] {
                return b->log_text().find("asked a@127.0.0.1 for its retained") !=
                       std::string::npos;
            },
            10000ms));
    ASSERT_TRUE(
            eventually([&] { return retained_on(*b, "set/#").size() == size_t{kCount}; }, 10000ms));
    EXPECT_FALSE(live.wait_message(kQuiet).has_value()) << "a copy is not a publish";

    // b goes down; meanwhile set/0 changes and set/new is retained on a. b's own copy of
    // set/0 is older: the newer one wins when b comes back.
    b->kill9();
    ASSERT_TRUE(eventually([&] { return statuses(*a)["b@127.0.0.1"] == "Stopped"; }, 10000ms));
    ASSERT_TRUE(pa.publish("set/0", "v2", 1, true));
    ASSERT_TRUE(pa.publish("set/new", "v2", 1, true));
    // Deleted while b is away, by an empty retained payload and through the REST API: b's
    // copies go too when it comes back (a keeps the deletions for it).
    ASSERT_TRUE(pa.publish("set/1", "", 1, true));
    EXPECT_EQ(
            test::http(a->api_port(), "DELETE", "/api/v2/retained/set/2").json().value("code", -1),
            0);
    b->start();
    std::map<std::string, std::string> got;
    EXPECT_TRUE(eventually(
            [&] {
                got = retained_on(*b, "set/#");
                return got.size() == size_t{kCount + 1 - 2} && got["set/0"] == "v2";
            },
            10000ms))
            << got.size() << " " << got["set/0"];
    EXPECT_EQ(got["set/new"], "v2");
    EXPECT_EQ(got["set/3"], "v1");
    EXPECT_EQ(got.count("set/1"), 0u) << "deleted while b was down";
    EXPECT_EQ(got.count("set/2"), 0u) << "deleted through REST while b was down";
    EXPECT_NE(a->log_text().find("and 2 deletions to b@127.0.0.1"), std::string::npos)
            << a->log_text();
    EXPECT_EQ(retained_on(*a, "set/#").size(), size_t{kCount + 1 - 2});
}

TEST_F(ClusterIt, AKilledNodesRoutesVanishWithItsLeaseAndComeBackWithIt) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    ASSERT_NO_FATAL_FAILURE(offline_subscriber(*b, "persistent", "k/#"));
    using Keys = std::set<std::string>;
    ASSERT_TRUE(eventually([&] { return route_keys() == Keys{"k/# b@127.0.0.1"}; }));
    b->kill9();
    EXPECT_EQ(route_keys(), Keys{"k/# b@127.0.0.1"}) << "the lease (2 s) has not expired yet";
    EXPECT_TRUE(eventually([&] { return route_keys().empty(); }, 8000ms));
    // a publishes as if b had never been there.
    RawClient pub;
    ASSERT_FALSE(pub.connect_ok(a->port(), "pub")) << "a new session";
    pub.publish("k/1", "no route", 1);
    // Restarted, b routes its recovered session again.
    b->start();
    EXPECT_TRUE(eventually([&] { return route_keys() == Keys{"k/# b@127.0.0.1"}; }));
}

TEST_F(ClusterIt, WhatAPeerAcknowledgedIsInItsStoreForAPersistentSession) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    ASSERT_NO_FATAL_FAILURE(offline_subscriber(*b, "durable", "d/#"));
    ASSERT_TRUE(eventually([&] { return route_keys().size() == 1; }));
    ASSERT_TRUE(routes_to(*a, {b.get()}, "dp/probe"));
    MosqClient pub("pub");
    ASSERT_EQ(pub.connect(a->port()), 0);
    constexpr int kCount = 30;
    for (int i = 0; i < kCount; ++i) {
        ASSERT_TRUE(pub.publish("d/" + std::to_string(i), std::to_string(i), 1));
    }
    // Every PUBACK on a meant "stored on b": b killed at once keeps them all.
    b->kill9();
    b->start();
    const std::vector<int> got = drain_session(b->port(), "durable");
    EXPECT_EQ(got.size(), size_t{kCount}) << "each once";
    EXPECT_EQ(std::set<int>(got.begin(), got.end()).size(), size_t{kCount});
}

TEST_F(ClusterIt, AMessageWaitingForAPeerThatDiesIsNotAcknowledged) {
    auto a = node("a@127.0.0.1");
    auto b = node("b@127.0.0.1");
    MosqClient sub("sub", false);  // persistent: its node is waited for
    ASSERT_EQ(sub.connect(b->port()), 0);
    ASSERT_EQ(sub.subscribe("w/1", 1), std::vector<int>{1});
    MosqClient probe("probe");
    ASSERT_EQ(probe.connect(a->port()), 0);
    ASSERT_TRUE(routed(probe, "w/1", {&sub}));

    RawClient pub;
    ASSERT_FALSE(pub.connect_ok(a->port(), "raw-pub")) << "a new session";
    b->signal(SIGSTOP);
    ASSERT_TRUE(pub.send(pkt::publish("w/1", "never stored on b", 1, 3)));
    EXPECT_FALSE(pub.read(500ms).has_value()) << "no PUBACK while b holds the message";
    b->kill9();
    // Once b's lease ends, what waited for it fails: a 3.1.1 publisher has no code for it and
    // is disconnected without a PUBACK, so it sends the message again.
    int skipped = 0;
    EXPECT_TRUE(pub.wait_closed(10000ms, &skipped));
    EXPECT_EQ(skipped, 0) << "no PUBACK before the close";
    // Without b's routes the same message is acknowledged at once.
    RawClient again;
    ASSERT_FALSE(again.connect_ok(a->port(), "raw-pub")) << "a clean session";
    again.publish("w/1", "never stored on b", 1);
}

// cluster.listener.ssl: mutual TLS on the link. Nodes whose certificates the cluster's CA
// signed forward to each other; a node showing a certificate of another CA is not linked.
TEST_F(ClusterIt, ATlsLinkJoinsNodesOfTheClustersCaOnly) {
    TestCerts certs;
    ASSERT_NO_FATAL_FAILURE(make_test_certs(certs));
    auto tls = [&](const std::string& cert, const std::string& key) {
        return std::vector<std::string>{
                "cluster.listener.ssl=true", "cluster.listener.certfile=" + cert,
                "cluster.listener.keyfile=" + key, "cluster.listener.cacertfile=" + certs.ca};
    };
    auto a = node("a@127.0.0.1", "", 2, tls(certs.server_cert, certs.server_key));
    auto b = node("b@127.0.0.1", "", 2, tls(certs.client_cert, certs.client_key));
    MosqClient on_b("on-b");
    ASSERT_EQ(on_b.connect(b->port()), 0);
    ASSERT_EQ(on_b.subscribe("s/#", 1), std::vector<int>{1});
    MosqClient pub("pub");
    ASSERT_EQ(pub.connect(a->port()), 0);
    ASSERT_TRUE(routed(pub, "s/probe", {&on_b}));
    ASSERT_TRUE(pub.publish("s/1", "over TLS", 1));
    auto m = on_b.wait_message();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->payload, "over TLS");
    EXPECT_TRUE(links_up(*a, {"b@127.0.0.1"}));

    // The link speaks TLS only: a plain Hello on b's link port is not taken.
    RawClient plain(b->cluster_port());
    // u32 length 13 | Hello | version 1 | name "z" | incarnation 0 (link_frame.h)
    ASSERT_TRUE(
            plain.send(std::string("\x00\x00\x00\x0d\x01\x01\x00\x01z", 9) + std::string(8, '\0')));
    EXPECT_TRUE(plain.wait_closed(5000ms)) << "a plain connection on a TLS link port";

    // c's certificate is of another CA: a and b refuse it (they dial c: "c" sorts last).
    auto c = node("c@127.0.0.1", "", 2, tls(certs.rogue_cert, certs.rogue_key));
    EXPECT_TRUE(eventually([&] {
        return a->log_text().find("cluster: TLS handshake with c@127.0.0.1 failed") !=
               std::string::npos;
    })) << a->log_text();
    EXPECT_FALSE(links_up(*a, {"c@127.0.0.1"}));
    EXPECT_FALSE(links_up(*b, {"c@127.0.0.1"}));
    EXPECT_TRUE(links_up(*b, {"a@127.0.0.1"}));
}

// kill -9 of one node under QoS 1 load: every message acknowledged to the publisher is in
// the persistent sessions of the node that stays, and every one acknowledged before the kill
// is in the dead node's store when it comes back.
TEST_F(ClusterIt, AKilledNodeUnderQos1LoadLosesNothingAcknowledged) {
    // Queues long enough for every message (the default, 1 000, drops the oldest).
    const std::vector<std::string> queues{"mqtt.mqueue.max_len=5000"};
    auto a = node("a@127.0.0.1", "", 2, queues);
    auto b = node("b@127.0.0.1", "", 2, queues);
    auto c = node("c@127.0.0.1", "", 2, queues);
    ASSERT_NO_FATAL_FAILURE(offline_subscriber(*b, "on-b", "k/#"));
    ASSERT_NO_FATAL_FAILURE(offline_subscriber(*c, "on-c", "k/#"));
    ASSERT_TRUE(eventually([&] { return route_keys().size() == 2; }));
    ASSERT_TRUE(routes_to(*a, {b.get(), c.get()}, "kp/probe"));

    // A window of 16 QoS 1 publishes in flight; a message refused while c is gone (3.1.1: the
    // connection closes without its PUBACK) is not acknowledged, and the publisher goes on.
    constexpr int kTotal = 1500;
    constexpr int kKillAt = 500;
    std::set<int> acked;
    std::set<int> acked_before_kill;
    std::map<uint16_t, int> in_flight;
    auto pub = std::make_unique<RawClient>();
    ASSERT_FALSE(pub->connect_ok(a->port(), "load-pub"));
    int next = 1;
    int refusals = 0;
    while (next <= kTotal || !in_flight.empty()) {
        while (in_flight.size() < 16 && next <= kTotal) {
            const uint16_t id = pub->next_id();
            ASSERT_TRUE(pub->send(
                    pkt::publish("k/" + std::to_string(next % 7), std::to_string(next), 1, id)));
            in_flight[id] = next++;
            if (next == kKillAt) {
                acked_before_kill = acked;
                c->kill9();
            }
        }
        auto p = pub->read(10000ms);
        if (!p) {
            ASSERT_TRUE(pub->closed()) << "neither a PUBACK nor a close in 10 s";
            ++refusals;
            in_flight.clear();
            pub = std::make_unique<RawClient>();
            ASSERT_FALSE(pub->connect_ok(a->port(), "load-pub"));
            continue;
        }
        ASSERT_EQ(p->type(), kPuback) << describe(*p);
        auto it = in_flight.find(packet_id_of(*p));
        ASSERT_NE(it, in_flight.end());
        acked.insert(it->second);
        in_flight.erase(it);
    }
    EXPECT_GE(refusals, 1) << "what waited for c when its lease ended was refused";
    EXPECT_GT(acked.size(), size_t{kTotal - 100});
    EXPECT_GE(acked_before_kill.size(), size_t{kKillAt - 20});

    const std::vector<int> got_b = drain_session(b->port(), "on-b");
    const std::set<int> on_b(got_b.begin(), got_b.end());
    std::vector<int> lost;
    std::set_difference(acked.begin(), acked.end(), on_b.begin(), on_b.end(),
                        std::back_inserter(lost));
    EXPECT_TRUE(lost.empty()) << lost.size() << " acknowledged messages not on b, first "
                              << (lost.empty() ? 0 : lost.front());
    c->start();
    const std::vector<int> got_c = drain_session(c->port(), "on-c");
    const std::set<int> on_c(got_c.begin(), got_c.end());
    lost.clear();
    std::set_difference(acked_before_kill.begin(), acked_before_kill.end(), on_c.begin(),
                        on_c.end(), std::back_inserter(lost));
    EXPECT_TRUE(lost.empty()) << lost.size()
                              << " messages acknowledged before the kill not in c's store";
}

TEST_F(ClusterIt, APeerBackWithinItsLeaseGetsWhatWaitedForItExactlyOnce) {
    // A long lease: b restarts before the others see it gone.
    auto a = node("a@127.0.0.1", "", 20);
    auto b = node("b@127.0.0.1", "", 20);
    ASSERT_NO_FATAL_FAILURE(offline_subscriber(*b, "durable", "z/#"));
    ASSERT_TRUE(eventually([&] { return route_keys().size() == 1; }));
    ASSERT_TRUE(routes_to(*a, {b.get()}, "zp/probe"));

    b->kill9();
    // Published while b is down: queued on a, no PUBACK yet.
    RawClient pub;
    ASSERT_FALSE(pub.connect_ok(a->port(), "raw-pub")) << "a new session";
    constexpr int kCount = 10;
    for (int i = 1; i <= kCount; ++i) {
        ASSERT_TRUE(pub.send(pkt::publish("z/" + std::to_string(i), std::to_string(i), 1,
                                          static_cast<uint16_t>(i))));
    }
    EXPECT_FALSE(pub.read(500ms).has_value()) << "no PUBACK while b is down";
    b->start();
    // The link comes back, a sends what waited, b stores it and answers: every PUBACK, in order.
    for (int i = 1; i <= kCount; ++i) {
        auto ack = pub.read(15000ms);
        ASSERT_TRUE(ack.has_value()) << "PUBACK " << i;
        EXPECT_EQ(ack->type(), kPuback);
        EXPECT_EQ(packet_id_of(*ack), i);
    }
    const std::vector<int> got = drain_session(b->port(), "durable");
    EXPECT_EQ(got.size(), size_t{kCount}) << "stored once";
    EXPECT_EQ(std::set<int>(got.begin(), got.end()).size(), size_t{kCount});
}

TEST_F(ClusterIt, APeerAliveButOutOfReachMakesItsMessagesFailAfterTheForwardTimeout) {
    // b keeps its lease (20 s) while it does not answer (stopped); a gives up after 2 s.
    auto a = node("a@127.0.0.1", "", 20, {"cluster.forward_timeout=2"});
    auto b = node("b@127.0.0.1", "", 20);
    MosqClient sub("sub", false);  // persistent: its node is waited for
    ASSERT_EQ(sub.connect(b->port()), 0);
    ASSERT_EQ(sub.subscribe("o/1", 1), std::vector<int>{1});
    MosqClient probe("probe");
    ASSERT_EQ(probe.connect(a->port()), 0);
    ASSERT_TRUE(routed(probe, "o/1", {&sub}));

    RawClient pub;
    ASSERT_FALSE(pub.connect_ok(a->port(), "raw-pub")) << "a new session";
    b->signal(SIGSTOP);
    const auto sent_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(pub.send(pkt::publish("o/1", "unanswered", 1, 5)));
    int skipped = 0;
    EXPECT_TRUE(pub.wait_closed(10000ms, &skipped)) << "refused: 3.1.1 has no code for it";
    EXPECT_EQ(skipped, 0) << "no PUBACK before the close";
    EXPECT_GE(std::chrono::steady_clock::now() - sent_at, 1500ms) << "not before the timeout";
    EXPECT_EQ(statuses(*a)["b@127.0.0.1"], "Running") << "b's lease still holds";
    b->signal(SIGCONT);
    // b is back: forwarding and its PUBACK work again.
    RawClient again;
    ASSERT_FALSE(again.connect_ok(a->port(), "raw-pub")) << "a clean session";
    again.publish("o/1", "answered", 1);
    std::set<std::string> got;
    while (auto m = sub.wait_message(2000ms)) {
        got.insert(m->payload);
    }
    EXPECT_TRUE(got.contains("answered"));
}

}  // namespace
}  // namespace mqttd::itest
