// 22: what every listener shares — PROXY protocol (tcp and ssl), max_clients, acceptors,
// rate_limit, monitoring/listeners — and listeners that cannot start. One broker for the
// whole binary:
//   tcp: proxy_protocol on; ssl: proxy_protocol on; ws: max_clients 2, acceptors 2;
//   wss: rate_limit 4KB,4KB; an ACL file denying publish to one proxied address.
// The startup failures and the self-signed default certificate run brokers of their own.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include "bridge.h"
#include "certs.h"
#include "harness.h"

namespace mqttd::itest {
namespace {

using Json = nlohmann::json;

struct Env : ::testing::Environment {
    TestCerts certs;
    uint16_t ssl_port = 0;
    uint16_t ws_port = 0;
    uint16_t wss_port = 0;
    std::unique_ptr<BrokerProcess> broker_;

    void SetUp() override { make_test_certs(certs); }
    void TearDown() override { broker_.reset(); }
    BrokerProcess& broker() {
        if (!broker_) {
            ssl_port = free_port();
            ws_port = free_port();
            wss_port = free_port();
            std::string acl = certs.dir.path() + "/acl.conf";
            std::ofstream(acl) << "{deny, {ipaddr, \"203.0.113.66\"}, publish, [\"acl/#\"]}.\n"
                                  "{allow, all}.\n";
            auto sets = tls_listener_sets("listener.ssl.external", ssl_port, certs);
            auto wss = tls_listener_sets("listener.wss.external", wss_port, certs);
            sets.insert(sets.end(), wss.begin(), wss.end());
            for (const std::string& s :
                 {std::string("listener.tcp.external.proxy_protocol=true"),
                  std::string("listener.ssl.external.proxy_protocol=true"),
                  "listener.ws.external=127.0.0.1:" + std::to_string(ws_port),
                  std::string("listener.ws.external.max_clients=2"),
                  std::string("listener.ws.external.acceptors=2"),
                  std::string("listener.wss.external.rate_limit=4KB,4KB"),
                  "mqtt.acl_file=" + acl}) {
                sets.push_back(s);
            }
            broker_ = std::make_unique<BrokerProcess>(sets);
        }
        return *broker_;
    }
};
Env* const env = static_cast<Env*>(::testing::AddGlobalTestEnvironment(new Env));

class Listeners : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(env->certs.ca.empty()) << "the test certificates were not made";
        ASSERT_TRUE(env->broker().running()) << "the broker did not start";
    }
    void TearDown() override {
        if (HasFailure() && env->broker_) {
            std::string log = env->broker().log_text();
            std::cerr << "----- broker -----\n"
                      << (log.size() > 20000 ? log.substr(log.size() - 20000) : log);
        }
    }
    static Json rest(const std::string& path) {
        return Json::parse(rest_get(env->broker().api_port(), path), nullptr, false);
    }
    // The monitoring/listeners row of `protocol`.
    static Json listener(const std::string& protocol) {
        Json j = rest("monitoring/listeners");
        if (j.is_discarded()) {
            return {};
        }
        for (const auto& l : j["result"].begin().value()) {
            if (l["protocol"] == protocol) {
                return l;
            }
        }
        return {};
    }
    static uint64_t shutdowns(const Json& row, const std::string& reason) {
        for (const auto& s : row["shutdown_count"]) {
            if (s["reason"] == reason) {
                return s["count"].get<uint64_t>();
            }
        }
        return 0;
    }
    static Json client(const std::string& id) {
        Json j = rest("clients/" + id);
        if (j.is_discarded() || j["result"]["objects"].empty()) {
            return {};
        }
        return j["result"]["objects"][0];
    }
};

Bytes proxy_v2_tcp6(const std::string& src, uint16_t sport) {
    Bytes h = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
               0x55, 0x49, 0x54, 0x0A, 0x21, 0x21, 0x00, 36};
    in6_addr a{};
    ::inet_pton(AF_INET6, src.c_str(), &a);
    const auto* b = reinterpret_cast<const uint8_t*>(&a);
    h.insert(h.end(), b, b + 16);
    ::inet_pton(AF_INET6, "2001:db8::1", &a);
    h.insert(h.end(), b, b + 16);
    h.push_back(static_cast<uint8_t>(sport >> 8));
    h.push_back(static_cast<uint8_t>(sport));
    h.push_back(0x07);
    h.push_back(0x5B);  // 1883
    return h;
}

// Connects through the tcp listener behind `header`; returns the CONNACK code (-1 none).
int connect_behind(RawClient& c, const Bytes& header, const std::string& id) {
    c.open(env->broker().port());
    c.send(header);
    pkt::ConnectOptions o;
    o.client_id = id;
    auto ack = c.connect(o);
    return ack ? ack->second : -1;
}

Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

TEST_F(Listeners, ProxyProtocolGivesTheClientsAddressToRest) {
    RawClient v1;
    ASSERT_EQ(connect_behind(v1, text("PROXY TCP4 203.0.113.7 10.0.0.1 5555 1883\r\n"), "px-v1"),
              0);
    Json c = client("px-v1");
    EXPECT_EQ(c["ipaddress"], "203.0.113.7") << c.dump();
    EXPECT_EQ(c["port"], 5555);

    RawClient v2;
    ASSERT_EQ(connect_behind(v2, proxy_v2_tcp6("2001:db8::9", 6000), "px-v2"), 0);
    c = client("px-v2");
    EXPECT_EQ(c["ipaddress"], "2001:db8::9") << c.dump();
    EXPECT_EQ(c["port"], 6000);

    // v2 LOCAL (a balancer's health check) carries no address: the socket's is shown.
    Bytes local = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                   0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
    RawClient health;
    ASSERT_EQ(connect_behind(health, local, "px-local"), 0);
    EXPECT_EQ(client("px-local")["ipaddress"], "127.0.0.1");

    // Over TLS: the header comes before the ClientHello.
    BridgeOptions o;
    o.tls = true;
    o.ca_file = env->certs.ca;
    o.prefix = "PROXY TCP4 198.51.100.20 10.0.0.1 7000 8883\r\n";
    Bridge b(env->ssl_port, o);
    ASSERT_TRUE(b.ok()) << b.error();
    RawClient t;
    t.connect_ok(b.port(), "px-tls");
    c = client("px-tls");
    EXPECT_EQ(c["ipaddress"], "198.51.100.20") << c.dump();
    EXPECT_EQ(c["protocol"], "mqtt:ssl");
}

TEST_F(Listeners, AclIpaddrRulesSeeTheProxiedAddress) {
    RawClient denied;
    ASSERT_EQ(connect_behind(denied, text("PROXY TCP4 203.0.113.66 10.0.0.1 1000 1883\r\n"),
                             "px-acl-denied"),
              0);
    RawClient allowed;
    ASSERT_EQ(connect_behind(allowed, text("PROXY TCP4 203.0.113.67 10.0.0.1 1000 1883\r\n"),
                             "px-acl-allowed"),
              0);
    allowed.subscribe("acl/#", 1);
    denied.publish("acl/x", "from .66", 1);  // acknowledged, not delivered
    allowed.publish("acl/x", "from .67", 1);
    auto m = allowed.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "from .67");
    allowed.expect_silence();
}

TEST_F(Listeners, AMissingOrBrokenProxyHeaderClosesOnlyThatConnection) {
    uint64_t before = shutdowns(listener("mqtt:tcp"), "handshake_error");
    RawClient plain(env->broker().port());
    pkt::ConnectOptions o;
    o.client_id = "px-none";
    plain.send(pkt::connect(o));
    EXPECT_TRUE(plain.wait_closed());
    RawClient broken(env->broker().port());
    broken.send(std::string_view("PROXY TCP4 not-an-address 10.0.0.1 1 2\r\n"));
    EXPECT_TRUE(broken.wait_closed());
    EXPECT_TRUE(eventually(
            [&] { return shutdowns(listener("mqtt:tcp"), "handshake_error") >= before + 2; }));
    RawClient fine;
    EXPECT_EQ(connect_behind(fine, text("PROXY TCP4 203.0.113.8 10.0.0.1 5 1883\r\n"), "px-ok"), 0);
}

TEST_F(Listeners, MaxClientsRefusesBeforeConnectAndCountsIt) {
    BridgeOptions ws;
    ws.websocket = true;
    uint64_t refused = shutdowns(listener("mqtt:ws"), "max_clients");
    auto a = std::make_unique<Bridge>(env->ws_port, ws);
    Bridge b(env->ws_port, ws);
    ASSERT_TRUE(a->ok() && b.ok()) << a->error() << b.error();
    EXPECT_TRUE(eventually([&] { return listener("mqtt:ws")["current_clients"] == 2; }));
    Bridge third(env->ws_port, ws);
    EXPECT_FALSE(third.ok()) << "a third connection was accepted by a listener of 2";
    EXPECT_TRUE(eventually(
            [&] { return shutdowns(listener("mqtt:ws"), "max_clients") == refused + 1; }));
    Json row = listener("mqtt:ws");
    EXPECT_EQ(row["max_clients"], 2);
    EXPECT_EQ(row["current_clients"], 2);
    // The two admitted work; once one goes, a new one is admitted.
    RawClient cb;
    cb.connect_ok(b.port(), "ws-max-b");
    cb.subscribe("ws/max", 0);
    a.reset();
    EXPECT_TRUE(eventually([&] { return listener("mqtt:ws")["current_clients"] == 1; }));
    Bridge again(env->ws_port, ws);
    ASSERT_TRUE(again.ok()) << again.error();
    RawClient cc;
    cc.connect_ok(again.port(), "ws-max-c");
    cc.publish("ws/max", "admitted", 0);
    auto m = cb.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "admitted");
}

TEST_F(Listeners, MonitoringListsEveryListenerWithItsAcceptors) {
    Json j = rest("monitoring/listeners");
    ASSERT_FALSE(j.is_discarded());
    std::map<std::string, Json> rows;
    for (const auto& l : j["result"].begin().value()) {
        rows[l["protocol"].get<std::string>()] = l;
    }
    for (const char* p : {"mqtt:tcp", "mqtt:ssl", "mqtt:ws", "mqtt:wss", "mqtt:api"}) {
        ASSERT_TRUE(rows.contains(p)) << p << " missing: " << j.dump();
        EXPECT_TRUE(rows[p]["current_clients"].is_number_unsigned()) << p;
        EXPECT_TRUE(rows[p]["shutdown_count"].is_array()) << p;
    }
    EXPECT_EQ(rows["mqtt:ws"]["acceptors"], 2);
    EXPECT_EQ(rows["mqtt:tcp"]["acceptors"], 1);
    EXPECT_EQ(rows["mqtt:ssl"]["listen"], "127.0.0.1:" + std::to_string(env->ssl_port));
    EXPECT_EQ(rows["mqtt:ssl"]["max_clients"], 102400);
    // Both acceptor sockets of the ws listener take connections (the kernel spreads them).
    BridgeOptions ws;
    ws.websocket = true;
    for (int i = 0; i < 4; ++i) {
        Bridge b(env->ws_port, ws);
        ASSERT_TRUE(b.ok()) << i << ": " << b.error();
        RawClient c;
        c.connect_ok(b.port(), num("ws-acc-", i));
        c.disconnect();
        EXPECT_TRUE(eventually([&] { return listener("mqtt:ws")["current_clients"] == 0; }));
    }
}

uint64_t bytes_received(const Json& metrics) {
    for (const auto& [k, v] : metrics["result"].items()) {
        if (k == "bytes/received") {
            return v.get<uint64_t>();
        }
        if (v.is_object() && v.contains("bytes/received")) {
            return v["bytes/received"].get<uint64_t>();
        }
    }
    return 0;
}

TEST_F(Listeners, RateLimitPausesReadingButLosesNothing) {
    BridgeOptions o;
    o.websocket = true;
    o.tls = true;
    o.ca_file = env->certs.ca;
    Bridge b(env->wss_port, o);
    ASSERT_TRUE(b.ok()) << b.error();
    RawClient c;
    c.connect_ok(b.port(), "rate-limited");
    c.subscribe("rate/x", 0);
    uint64_t start = bytes_received(rest("monitoring/metrics"));
    const std::string payload(32 * 1024, 'r');  // 8 s of reading at 4 KB/s
    c.send(pkt::publish("rate/x", payload, 0));
    // Read at 4 KB/s with a 4 KB burst, the publish cannot be in within the first seconds.
    uint64_t early = bytes_received(rest("monitoring/metrics")) - start;
    EXPECT_LT(early, payload.size()) << "the whole publish was read at once";
    auto m = c.expect_publish(20s);
    ASSERT_TRUE(m) << "the throttled publish never arrived";
    EXPECT_EQ(m->payload.size(), payload.size());
}

// ---- listeners that cannot start, and the self-signed default ----

// Runs mqttd with `sets` (plus free tcp/api ports) and returns {exit status, output}.
std::pair<int, std::string> start_fails(const std::string& dir, const std::string& sets) {
    std::string cmd = "exec " + std::string(mqttd_binary()) + " -c /dev/null --data-dir " + dir +
                      " --set listener.tcp.external=127.0.0.1:" + std::to_string(free_port()) +
                      " --set listener.api.mgmt=127.0.0.1:" + std::to_string(free_port()) +
                      " --set listener.ws.external= --set listener.wss.external= --set "
                      "dashboard.listener.http= " +
                      sets + " 2>&1";
    return run_command({"sh", "-c", cmd}, 15s);
}

std::string last_line(const std::string& out) {
    std::string s = out;
    while (!s.empty() && s.back() == '\n') {
        s.pop_back();
    }
    return s.substr(s.rfind('\n') + 1);
}

TEST(ListenerStartup, AListenerThatCannotStartStopsStartupNamingKeyAndFile) {
    TestCerts c;
    ASSERT_NO_FATAL_FAILURE(make_test_certs(c));
    TempDir dir;
    const std::string ssl = "--set listener.ssl.external=127.0.0.1:" + std::to_string(free_port());
    const std::string files = " --set listener.ssl.external.cacertfile=" + c.ca;
    auto [rc1, out1] = start_fails(
            dir.path(), ssl + files +
                                " --set listener.ssl.external.keyfile=/nonexistent/key.pem"
                                " --set listener.ssl.external.certfile=" +
                                c.server_cert);
    EXPECT_NE(rc1, 0);
    EXPECT_NE(rc1, -1) << "still running";
    EXPECT_EQ(last_line(out1),
              "mqttd: listener.ssl.external.keyfile = /nonexistent/key.pem: cannot read: No such "
              "file or directory")
            << out1;

    auto [rc2, out2] = start_fails(
            dir.path(), ssl + files + " --set listener.ssl.external.keyfile=" + c.client_key +
                                " --set listener.ssl.external.certfile=" + c.server_cert);
    EXPECT_NE(rc2, 0);
    EXPECT_NE(last_line(out2).find(
                      "mqttd: listener.ssl.external.keyfile = " + c.client_key +
                      ": does not match listener.ssl.external.certfile = " + c.server_cert),
              std::string::npos)
            << out2;

    // An encrypted key: without its password, and with a wrong one.
    std::string enc = c.dir.path() + "/server-enc.key";
    auto [erc, eout] = run_command({"openssl", "pkey", "-in", c.server_key, "-aes256", "-passout",
                                    "pass:right", "-out", enc},
                                   20s);
    ASSERT_EQ(erc, 0) << eout;
    for (const std::string& pw :
         {std::string(), std::string(" --set listener.ssl.external.password=wrong")}) {
        auto [rc3, out3] = start_fails(
                dir.path(), ssl + files + " --set listener.ssl.external.keyfile=" + enc +
                                    " --set listener.ssl.external.certfile=" + c.server_cert + pw);
        EXPECT_NE(rc3, 0);
        EXPECT_NE(last_line(out3).find("mqttd: listener.ssl.external.keyfile = " + enc +
                                       ": not a PEM private key, or encrypted and "
                                       "listener.ssl.external.password is wrong"),
                  std::string::npos)
                << out3;
    }
    // The right password starts it (SIGTERM at the timeout: exit status -1).
    auto [rc4, out4] = run_command(
            {"sh", "-c",
             "exec " + std::string(mqttd_binary()) + " -c /dev/null --data-dir " + dir.path() +
                     " --set listener.tcp.external=127.0.0.1:" + std::to_string(free_port()) +
                     " --set listener.api.mgmt=127.0.0.1:" + std::to_string(free_port()) +
                     " --set listener.ws.external= --set listener.wss.external= --set "
                     "dashboard.listener.http= " +
                     ssl + files + " --set listener.ssl.external.keyfile=" + enc +
                     " --set listener.ssl.external.certfile=" + c.server_cert +
                     " --set listener.ssl.external.password=right 2>&1"},
            3s);
    EXPECT_EQ(rc4, -1) << "did not keep running with the right password: " << out4;

    // A port in use.
    uint16_t busy = free_port();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(busy);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    auto [rc5, out5] = start_fails(
            dir.path(), "--set listener.ssl.external=127.0.0.1:" + std::to_string(busy) + files +
                                " --set listener.ssl.external.keyfile=" + c.server_key +
                                " --set listener.ssl.external.certfile=" + c.server_cert);
    ::close(fd);
    EXPECT_NE(rc5, 0);
    EXPECT_EQ(last_line(out5), "mqttd: listener.ssl.external: cannot listen on 127.0.0.1:" +
                                       std::to_string(busy) + ": Address already in use")
            << out5;
}

TEST(ListenerStartup, TheDefaultCertificateIsMadeOnFirstStart) {
    TempDir dir;
    uint16_t tcp = free_port();
    uint16_t api = free_port();
    uint16_t ssl = free_port();
    // Run where data/certs/ is relative to: the temp dir. The TLS files are the defaults.
    std::string cmd = "cd " + dir.path() + " && exec " + mqttd_binary() +
                      " -c /dev/null --data-dir " + dir.path() + "/data" +
                      " --set listener.tcp.external=127.0.0.1:" + std::to_string(tcp) +
                      " --set listener.api.mgmt=127.0.0.1:" + std::to_string(api) +
                      " --set listener.ssl.external=127.0.0.1:" + std::to_string(ssl) +
                      " --set listener.ws.external= --set listener.wss.external= --set "
                      "dashboard.listener.http= 2>&1";
    const std::string ca = dir.path() + "/data/certs/cacert.pem";
    const std::string key = dir.path() + "/data/certs/key.pem";
    std::string first_cert;
    for (int start = 0; start < 2; ++start) {
        Child child = spawn_child({"sh", "-c", cmd});
        ASSERT_TRUE(eventually(
                [&] {
                    return std::filesystem::exists(ca) &&
                           rest_get(api, "monitoring/listeners").find("mqtt:ssl") !=
                                   std::string::npos;
                },
                15s))
                << finish_child(child);
        auto [rc, out] = run_command({"mosquitto_pub", "-h", "localhost", "-p", std::to_string(ssl),
                                      "--cafile", ca, "-t", "x", "-m", "y"},
                                     10s);
        EXPECT_EQ(rc, 0) << "the generated certificate does not verify: " << out;
        ::kill(child.pid, SIGTERM);
        std::string log = finish_child(child, 10s);
        size_t warning = log.find("self-signed certificate");
        EXPECT_NE(warning, std::string::npos) << log;
        EXPECT_EQ(log.find("self-signed certificate", warning + 1), std::string::npos)
                << "more than one warning: " << log;
        EXPECT_NE(log.find(ca.substr(dir.path().size() + 1)), std::string::npos)
                << "the warning does not name the CA file: " << log;
        struct stat st {};
        ASSERT_EQ(::stat(key.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u) << "the private key is readable by others";
        std::stringstream cert_text;
        cert_text << std::ifstream(dir.path() + "/data/certs/cert.pem").rdbuf();
        std::string cert = cert_text.str();
        if (start == 0) {
            first_cert = cert;
        } else {
            EXPECT_EQ(cert, first_cert) << "the certificate was made again on the second start";
        }
    }
}

}  // namespace
}  // namespace mqttd::itest
