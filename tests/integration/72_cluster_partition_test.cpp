// A cluster cut in two by the network, and healed, in network namespaces this binary makes
// (ip netns, one veth pair; nothing outside them is touched): the test process, a real etcd
// 3.4 and nodes a and b live in namespace E (10.77.0.1), node c in namespace C (10.77.0.2).
// Taking the veth down cuts c from etcd and from its peers; taking it up heals.
//
// Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN, as the test command runs); the namespaces are
// removed when the binary ends.
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db_servers.h"
#include "harness.h"

namespace mqttd::itest {
namespace {

using Json = nlohmann::json;

const std::string kHostE = "10.77.0.1";
const std::string kHostC = "10.77.0.2";

// The two namespaces and the veth between them, named after this process.
class Netns {
public:
    Netns()
        : e_("mqttd-e-" + std::to_string(::getpid())),
          c_("mqttd-c-" + std::to_string(::getpid())),
          veth_e_("ve" + std::to_string(::getpid())),
          veth_c_("vc" + std::to_string(::getpid())) {}
    ~Netns() {
        if (fd_c_ >= 0) {
            ::close(fd_c_);
        }
        ip({"netns", "del", c_});
        ip({"netns", "del", e_});
    }

    // Makes both namespaces and moves the calling thread (the main one, before any other
    // exists) into E. "" or what failed.
    std::string make() {
        for (const auto& argv : std::vector<std::vector<std::string>>{
                     {"netns", "add", e_},
                     {"netns", "add", c_},
                     {"link", "add", veth_e_, "type", "veth", "peer", "name", veth_c_},
                     {"link", "set", veth_e_, "netns", e_},
                     {"link", "set", veth_c_, "netns", c_},
                     {"-n", e_, "addr", "add", kHostE + "/24", "dev", veth_e_},
                     {"-n", c_, "addr", "add", kHostC + "/24", "dev", veth_c_},
                     {"-n", e_, "link", "set", "lo", "up"},
                     {"-n", c_, "link", "set", "lo", "up"},
                     {"-n", e_, "link", "set", veth_e_, "up"},
                     {"-n", c_, "link", "set", veth_c_, "up"},
             }) {
            if (auto err = ip(argv); !err.empty()) {
                return err;
            }
        }
        int fd_e = ::open(("/var/run/netns/" + e_).c_str(), O_RDONLY | O_CLOEXEC);
        fd_c_ = ::open(("/var/run/netns/" + c_).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_e < 0 || fd_c_ < 0) {
            return std::string("open /var/run/netns: ") + std::strerror(errno);
        }
        int rc = ::setns(fd_e, CLONE_NEWNET);
        ::close(fd_e);
        return rc == 0 ? std::string() : std::string("setns: ") + std::strerror(errno);
    }

    // Runs `fn` on a thread inside C: sockets it opens and processes it starts live there.
    void in_c(const std::function<void()>& fn) const {
        std::thread t([&] {
            ASSERT_EQ(::setns(fd_c_, CLONE_NEWNET), 0) << std::strerror(errno);
            fn();
        });
        t.join();
    }

    // The link between E and C, down (a partition) or up.
    std::string link(bool up) { return ip({"-n", c_, "link", "set", veth_c_, up ? "up" : "down"}); }

private:
    static std::string ip(const std::vector<std::string>& args) {
        std::vector<std::string> argv{"ip"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto [rc, out] = run_command(argv, 10s);
        if (rc == 0) {
            return {};
        }
        std::string line = "ip";
        for (const auto& a : args) {
            line += " " + a;
        }
        return line + " failed (" + std::to_string(rc) + ")";
    }

    std::string e_, c_, veth_e_, veth_c_;
    int fd_c_ = -1;
};

Netns* g_net = nullptr;
dbtest::EtcdServer* g_etcd = nullptr;
std::string g_error;

class PartitionEnv : public ::testing::Environment {
public:
    void SetUp() override {
        if (::geteuid() != 0) {
            g_error = "network namespaces need root";
            return;
        }
        g_net = new Netns;
        g_error = g_net->make();
        if (g_error.empty()) {
            g_etcd = new dbtest::EtcdServer(kHostE);
            g_error = g_etcd->start();
        }
    }
    void TearDown() override {
        delete g_etcd;
        g_etcd = nullptr;
        delete g_net;
        g_net = nullptr;
    }
};
[[maybe_unused]] const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PartitionEnv);

// GET http://host:port/api/v2/PATH as admin:public from the calling thread's namespace.
Json get(const std::string& host, uint16_t port, const std::string& path) {
    auto [rc, out] =
            run_command({"curl", "-s", "-m", "8", "-u", "admin:public",
                         "http://" + host + ":" + std::to_string(port) + "/api/v2/" + path},
                        12s);
    return Json::parse(rc == 0 ? out : std::string(), nullptr, false);
}

int code(const Json& j) {
    return j.is_object() ? j.value("code", -1) : -1;
}

// management/nodes as name → node_status.
std::map<std::string, std::string> statuses(const std::string& host, uint16_t port) {
    std::map<std::string, std::string> out;
    Json j = get(host, port, "management/nodes");
    if (code(j) == 0) {
        for (const auto& n : j["result"]) {
            out[n.value("name", "")] = n.value("node_status", "");
        }
    }
    return out;
}
using Statuses = std::map<std::string, std::string>;

class PartitionIt : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(g_error.empty()) << g_error; }

    // A node reached by its peers at `host` (its REST API on every address of its namespace).
    static std::unique_ptr<BrokerProcess> node(const std::string& name, const std::string& host) {
        auto n = std::make_unique<BrokerProcess>(
                std::vector<std::string>{
                        "node.name=" + name, "cluster.etcd.endpoints=" + g_etcd->extra_endpoint(),
                        "cluster.name=p-" + std::string(::testing::UnitTest::GetInstance()
                                                                ->current_test_info()
                                                                ->name()),
                        "cluster.lease_ttl=2"},
                false);
        const std::string api = std::to_string(n->api_port());
        n->add_set("listener.api.mgmt=0.0.0.0:" + api);
        n->add_set("cluster.api_advertise=" + host + ":" + api);
        n->add_set("cluster.listener=" + host + ":" + std::to_string(n->cluster_port()));
        return n;
    }
};

TEST_F(PartitionIt, ANodeCutFromEtcdAndItsPeersServesItsClientsAndRejoinsWhenHealed) {
    auto a = node("a@10.77.0.1", kHostE);
    auto b = node("b@10.77.0.1", kHostE);
    auto c = node("c@10.77.0.2", kHostC);
    ASSERT_NO_FATAL_FAILURE(a->start());
    ASSERT_NO_FATAL_FAILURE(b->start());
    g_net->in_c([&] { ASSERT_NO_FATAL_FAILURE(c->start()); });
    ASSERT_FALSE(HasFatalFailure());
    const Statuses all{
            {"a@10.77.0.1", "Running"}, {"b@10.77.0.1", "Running"}, {"c@10.77.0.2", "Running"}};
    ASSERT_TRUE(eventually([&] { return statuses(kHostE, a->api_port()) == all; }, 10s));
    // c's clients, asked of a: the REST API crosses the veth.
    std::unique_ptr<MosqClient> sub, pub;
    g_net->in_c([&] {
        sub = std::make_unique<MosqClient>("sub-on-c");
        ASSERT_EQ(sub->connect(c->port()), 0);
        ASSERT_EQ(sub->subscribe("c/#", 1), std::vector<int>{1});
        pub = std::make_unique<MosqClient>("pub-on-c");
        ASSERT_EQ(pub->connect(c->port()), 0);
    });
    ASSERT_FALSE(HasFatalFailure());
    // A subscriber on a gets c's messages over the node-to-node link, across the veth. It is
    // a clean session, so the PUBACKs of what c publishes to it while cut off do not wait for
    // a (src/cluster/README.md "Clean routes"; a persistent one's would, until
    // cluster.forward_timeout).
    MosqClient sub_a("sub-on-a");
    ASSERT_EQ(sub_a.connect(a->port()), 0);
    ASSERT_EQ(sub_a.subscribe("c/+", 1), std::vector<int>{1});
    std::optional<MosqClient::Message> got;
    ASSERT_TRUE(eventually(
            [&] {
                EXPECT_TRUE(pub->publish("c/linked", "before", 1));
                got = sub_a.wait_message(500ms);
                return got.has_value();
            },
            10s))
            << "c never forwarded to a";
    EXPECT_EQ(got->topic, "c/linked");
    while (sub->wait_message(200ms)) {}
    Json before = get(kHostE, a->api_port(), "nodes/c@10.77.0.2/clients");
    ASSERT_EQ(code(before), 0) << before.dump();
    EXPECT_EQ(before["result"]["objects"].size(), 2u) << before.dump();

    // Cut: a and b see c go when its lease (2 s) ends; c serves its own clients all along.
    ASSERT_EQ(g_net->link(false), "");
    EXPECT_TRUE(eventually(
            [&] { return statuses(kHostE, a->api_port())["c@10.77.0.2"] == "Stopped"; }, 10s));
    EXPECT_EQ(statuses(kHostE, b->api_port())["c@10.77.0.2"], "Stopped");
    EXPECT_EQ(code(get(kHostE, a->api_port(), "nodes/c@10.77.0.2/clients")), 101);
    Json stats = get(kHostE, a->api_port(), "monitoring/nodes");
    ASSERT_EQ(code(stats), 0) << stats.dump();
    EXPECT_EQ(stats["result"].size(), 3u) << "c listed, stopped: " << stats.dump();
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(pub->publish("c/" + std::to_string(i), "cut off", 1));
    }
    for (int i = 0; i < 10; ++i) {
        auto m = sub->wait_message();
        ASSERT_TRUE(m.has_value()) << "message " << i << " while cut off";
        EXPECT_EQ(m->topic, "c/" + std::to_string(i));
    }
    EXPECT_TRUE(eventually(
            [&] { return c->log_text().find("etcd unreachable") != std::string::npos; }, 10s))
            << c->log_text();

    // Heal: c finds its lease expired, joins again, and every node lists every member.
    ASSERT_EQ(g_net->link(true), "");
    EXPECT_TRUE(eventually([&] { return statuses(kHostE, a->api_port()) == all; }, 20s));
    EXPECT_TRUE(eventually([&] { return statuses(kHostE, b->api_port()) == all; }, 10s));
    Statuses seen_by_c;
    g_net->in_c([&] {
        EXPECT_TRUE(eventually(
                [&] {
                    seen_by_c = statuses("127.0.0.1", c->api_port());
                    return seen_by_c == all;
                },
                10s));
    });
    EXPECT_EQ(seen_by_c, all);
    EXPECT_NE(c->log_text().find("expired; joining again"), std::string::npos) << c->log_text();
    Json after = get(kHostE, a->api_port(), "nodes/c@10.77.0.2/clients");
    ASSERT_EQ(code(after), 0) << after.dump();
    EXPECT_EQ(after["result"]["objects"].size(), 2u) << "c's clients stayed connected";
    // Forwarding from c to a works again once the link is back.
    while (sub_a.wait_message(200ms)) {}
    EXPECT_TRUE(eventually(
            [&] {
                EXPECT_TRUE(pub->publish("c/healed", "after", 1));
                got = sub_a.wait_message(500ms);
                return got.has_value() && got->topic == "c/healed";
            },
            20s))
            << "c does not forward to a after the heal";
}

}  // namespace
}  // namespace mqttd::itest
