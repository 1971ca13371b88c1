// 20: MQTT over TLS (mqtt:ssl, and the TLS under mqtt:wss). Two brokers for the whole binary:
//   * `plain`: TCP, TLS with verify_none (handshake_timeout 2 s), WSS with verify_none;
//   * `mutual`: TLS with verify_peer + fail_if_no_peer_cert + peer_cert_as_username = cn,
//     WSS with verify_peer + peer_cert_as_username = dn.
// Clients: mosquitto_pub / mosquitto_sub (--cafile, --cert/--key), Paho Python (tls_set), and
// the raw client through a TLS bridge (bridge.h). Certificates come from the openssl CLI.
#include <iostream>
#include <memory>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bridge.h"
#include "certs.h"
#include "harness.h"

namespace mqttd::itest {
namespace {

using Json = nlohmann::json;

// Made once for the whole binary (it runs as one ctest test): the certificates, and each
// broker on first use.
struct Env : ::testing::Environment {
    TestCerts certs;
    uint16_t ssl_port = 0;
    uint16_t wss_port = 0;
    uint16_t mutual_ssl_port = 0;
    uint16_t mutual_wss_port = 0;
    std::unique_ptr<BrokerProcess> plain_broker;
    std::unique_ptr<BrokerProcess> mutual_broker;

    void SetUp() override { make_test_certs(certs); }
    void TearDown() override {
        plain_broker.reset();
        mutual_broker.reset();
    }
    BrokerProcess& plain() {
        if (!plain_broker) {
            ssl_port = free_port();
            wss_port = free_port();
            auto sets = tls_listener_sets("listener.ssl.external", ssl_port, certs);
            auto wss = tls_listener_sets("listener.wss.external", wss_port, certs);
            sets.insert(sets.end(), wss.begin(), wss.end());
            sets.push_back("listener.ssl.external.handshake_timeout=2");
            plain_broker = std::make_unique<BrokerProcess>(sets);
        }
        return *plain_broker;
    }
    BrokerProcess& mutual() {
        if (!mutual_broker) {
            mutual_ssl_port = free_port();
            mutual_wss_port = free_port();
            auto sets = tls_listener_sets("listener.ssl.external", mutual_ssl_port, certs);
            auto wss = tls_listener_sets("listener.wss.external", mutual_wss_port, certs);
            sets.insert(sets.end(), wss.begin(), wss.end());
            for (const char* s : {"listener.ssl.external.verify=verify_peer",
                                  "listener.ssl.external.fail_if_no_peer_cert=true",
                                  "listener.ssl.external.peer_cert_as_username=cn",
                                  "listener.wss.external.verify=verify_peer",
                                  "listener.wss.external.peer_cert_as_username=dn"}) {
                sets.emplace_back(s);
            }
            mutual_broker = std::make_unique<BrokerProcess>(sets);
        }
        return *mutual_broker;
    }
};
Env* const env = static_cast<Env*>(::testing::AddGlobalTestEnvironment(new Env));

class Tls : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(env->certs.ca.empty()) << "the test certificates were not made";
        ASSERT_TRUE(env->plain().running()) << "the TLS broker did not start";
    }
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "----- TLS broker -----\n" << tail(env->plain().log_text());
            if (env->mutual_broker) {
                std::cerr << "----- mutual-TLS broker -----\n" << tail(env->mutual().log_text());
            }
        }
    }
    static std::string tail(const std::string& s) {
        return s.size() > 20000 ? s.substr(s.size() - 20000) : s;
    }

    static BridgeOptions tls() {
        BridgeOptions o;
        o.tls = true;
        o.ca_file = env->certs.ca;
        return o;
    }
    static std::vector<std::string> mosq_tls(std::vector<std::string> args, uint16_t port) {
        std::vector<std::string> out = {"-h",       "localhost",  "-p", std::to_string(port),
                                        "--cafile", env->certs.ca};
        out.insert(out.end(), args.begin(), args.end());
        return out;
    }
};

std::vector<std::string> cmd(const char* tool, const std::vector<std::string>& args) {
    std::vector<std::string> out;
    out.reserve(args.size() + 1);
    out.emplace_back(tool);
    for (const auto& a : args) {
        out.push_back(a);
    }
    return out;
}

// A TCP publish reaches a subscriber on `c` (which is subscribed to `topic`).
void expect_round_trip(RawClient& c, const std::string& topic, const std::string& payload) {
    RawClient pub;
    pub.connect_ok(env->plain().port(), num("rt-pub-", ::getpid()));
    pub.publish(topic, payload, 1);
    auto m = c.expect_publish();
    ASSERT_TRUE(m) << "the other client stopped getting messages";
    EXPECT_EQ(m->payload, payload);
}

TEST_F(Tls, MosquittoClientsAtQos012) {
    Child sub = spawn_child(cmd("mosquitto_sub", mosq_tls({"-t", "tls/mosq/#", "-q", "2", "-C", "3",
                                                           "-v", "-i", "tls-mosq-sub"},
                                                          env->ssl_port)));
    ASSERT_TRUE(eventually([&] {
        return rest_get(env->plain().api_port(), "clients/tls-mosq-sub").find("tls-mosq-sub") !=
               std::string::npos;
    })) << "mosquitto_sub did not connect over TLS";
    for (int q = 0; q <= 2; ++q) {
        auto [rc, out] =
                run_command(cmd("mosquitto_pub", mosq_tls({"-t", num("tls/mosq/q", q), "-m",
                                                           num("m", q), "-q", std::to_string(q)},
                                                          env->ssl_port)),
                            10s);
        EXPECT_EQ(rc, 0) << out;
    }
    std::string out = finish_child(sub, 10s);
    EXPECT_NE(out.find("tls/mosq/q0 m0"), std::string::npos) << out;
    EXPECT_NE(out.find("tls/mosq/q1 m1"), std::string::npos) << out;
    EXPECT_NE(out.find("tls/mosq/q2 m2"), std::string::npos) << out;
}

TEST_F(Tls, Tls12And13AreBothOffered) {
    for (const char* v : {"tlsv1.2", "tlsv1.3"}) {
        auto [rc, out] = run_command(
                cmd("mosquitto_pub",
                    mosq_tls({"--tls-version", v, "-t", "tls/ver", "-m", v}, env->ssl_port)),
                10s);
        EXPECT_EQ(rc, 0) << v << ": " << out;
    }
    // The certificate is checked: a client with another CA refuses the broker.
    auto [rc, out] =
            run_command({"mosquitto_pub", "-h", "localhost", "-p", std::to_string(env->ssl_port),
                         "--cafile", env->certs.dir.path() + "/other-ca.pem", "-t", "x", "-m", "y"},
                        10s);
    EXPECT_NE(rc, 0) << out;
}

TEST_F(Tls, RetainedOverTlsIsSeenOverTcpAndRestSaysSsl) {
    auto [rc, out] = run_command(
            cmd("mosquitto_pub",
                mosq_tls({"-t", "tls/kept", "-m", "warm", "-q", "1", "-r"}, env->ssl_port)),
            10s);
    ASSERT_EQ(rc, 0) << out;
    RawClient tcp;
    tcp.connect_ok(env->plain().port(), "tls-retain-tcp");
    tcp.subscribe("tls/kept", 1);
    auto m = tcp.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "warm");
    EXPECT_TRUE(m->retain);
    tcp.publish("tls/kept", "", 1, true);  // cleared for the other tests

    Bridge b(env->ssl_port, tls());
    ASSERT_TRUE(b.ok()) << b.error();
    RawClient c;
    c.connect_ok(b.port(), "tls-rest-view");
    Json j =
            Json::parse(rest_get(env->plain().api_port(), "clients/tls-rest-view"), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    ASSERT_EQ(j["result"]["objects"].size(), 1u) << j.dump();
    EXPECT_EQ(j["result"]["objects"][0]["protocol"], "mqtt:ssl");
    EXPECT_EQ(j["result"]["objects"][0]["is_ssl"], true);
}

TEST_F(Tls, WillOfATlsClientThatDropsIsPublished) {
    RawClient watcher;
    watcher.connect_ok(env->plain().port(), "tls-will-watch");
    watcher.subscribe("tls/will", 1);
    {
        Bridge b(env->ssl_port, tls());
        ASSERT_TRUE(b.ok()) << b.error();
        RawClient c(b.port());
        pkt::ConnectOptions o;
        o.client_id = "tls-will";
        o.will = pkt::Will{"tls/will", "gone", 1, false};
        auto ack = c.connect(o);
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->second, 0);
        c.abort();  // no DISCONNECT
    }
    auto m = watcher.expect_publish();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "gone");
}

TEST_F(Tls, PersistentSessionMovesBetweenTcpAndTlsAndTakeoverCrossesThem) {
    {
        Bridge b(env->ssl_port, tls());
        ASSERT_TRUE(b.ok()) << b.error();
        RawClient c;
        EXPECT_FALSE(c.connect_ok(b.port(), "tls-sess", false));
        c.subscribe("tls/sess", 1);
        c.disconnect();
    }
    RawClient pub;
    pub.connect_ok(env->plain().port(), "tls-sess-pub");
    for (int i = 0; i < 3; ++i) {
        pub.publish("tls/sess", num("q", i), 1);
    }
    // Resumed over plain TCP: the queue is there.
    RawClient tcp;
    EXPECT_TRUE(tcp.connect_ok(env->plain().port(), "tls-sess", false));
    for (int i = 0; i < 3; ++i) {
        auto m = tcp.receive_and_ack();
        ASSERT_TRUE(m) << i;
        EXPECT_EQ(m->payload, num("q", i));
    }
    // Taken over from TCP by the same client id over TLS: the TCP connection is closed.
    Bridge b(env->ssl_port, tls());
    ASSERT_TRUE(b.ok()) << b.error();
    RawClient over_tls;
    EXPECT_TRUE(over_tls.connect_ok(b.port(), "tls-sess", false));
    EXPECT_TRUE(tcp.wait_closed());
    pub.publish("tls/sess", "after", 1);
    auto m = over_tls.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "after");
    over_tls.disconnect();
    RawClient clean;
    clean.connect_ok(env->plain().port(), "tls-sess", true);  // ends the session
}

TEST_F(Tls, ConnectionsMovedToTheirHomeWorkerKeepTheirTlsSession) {
    // With two workers about half of these client ids live on the worker that did not accept
    // the connection: the TLS session moves with the socket after CONNECT.
    std::vector<std::unique_ptr<Bridge>> bridges;
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < 10; ++i) {
        bridges.push_back(std::make_unique<Bridge>(env->ssl_port, tls()));
        ASSERT_TRUE(bridges.back()->ok()) << bridges.back()->error();
        clients.push_back(std::make_unique<RawClient>());
        clients.back()->connect_ok(bridges.back()->port(), num("tls-move-", i));
        clients.back()->subscribe(num("tls/move/", i), 1);
    }
    for (int i = 0; i < 10; ++i) {
        clients[static_cast<size_t>(i)]->publish(num("tls/move/", i), std::string(3000, 'x'), 1);
        auto m = clients[static_cast<size_t>(i)]->receive_and_ack();
        ASSERT_TRUE(m) << i;
        EXPECT_EQ(m->payload.size(), 3000u);
    }
}

TEST_F(Tls, PahoPythonWithTlsSet) {
    auto [rc, out] =
            run_command({"/usr/bin/python3",
                         std::string(MQTTD_SOURCE_DIR) + "/tests/integration/python/paho_client.py",
                         "roundtrip", std::to_string(env->ssl_port), "--tls", env->certs.ca, "--id",
                         "paho-tls"},
                        20s);
    ASSERT_EQ(rc, 0) << out;
    Json j = Json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
    ASSERT_EQ(j["received"].size(), 4u) << out;
    std::set<std::string> payloads;
    for (const auto& m : j["received"]) {
        payloads.insert(m["payload"].get<std::string>());
    }
    EXPECT_EQ(payloads, (std::set<std::string>{"retained", "hello 0", "hello 1", "hello 2"}));
}

TEST_F(Tls, MutualTlsNamesTheUserFromTheCertificate) {
    ASSERT_TRUE(env->mutual().running());
    Child sub = spawn_child(cmd("mosquitto_sub", mosq_tls({"--cert", env->certs.client_cert,
                                                           "--key", env->certs.client_key, "-t",
                                                           "mtls/#", "-C", "1", "-i", "mtls-sub"},
                                                          env->mutual_ssl_port)));
    std::string user;
    ASSERT_TRUE(eventually([&] {
        Json j =
                Json::parse(rest_get(env->mutual().api_port(), "clients/mtls-sub"), nullptr, false);
        if (j.is_discarded() || j["result"]["objects"].empty()) {
            return false;
        }
        user = j["result"]["objects"][0]["username"].get<std::string>();
        return true;
    })) << "mosquitto_sub with a client certificate did not connect";
    EXPECT_EQ(user, "device-7");  // the CN, whatever the CONNECT said

    // No certificate, or one from another CA: the handshake fails, the subscriber stays.
    auto [rc1, out1] = run_command(
            cmd("mosquitto_pub", mosq_tls({"-t", "mtls/x", "-m", "no cert"}, env->mutual_ssl_port)),
            10s);
    EXPECT_NE(rc1, 0) << out1;
    auto [rc2, out2] = run_command(
            cmd("mosquitto_pub", mosq_tls({"--cert", env->certs.rogue_cert, "--key",
                                           env->certs.rogue_key, "-t", "mtls/x", "-m", "rogue"},
                                          env->mutual_ssl_port)),
            10s);
    EXPECT_NE(rc2, 0) << out2;
    auto [rc3, out3] = run_command(
            cmd("mosquitto_pub", mosq_tls({"--cert", env->certs.client_cert, "--key",
                                           env->certs.client_key, "-t", "mtls/x", "-m", "ok"},
                                          env->mutual_ssl_port)),
            10s);
    EXPECT_EQ(rc3, 0) << out3;
    std::string out = finish_child(sub, 10s);
    EXPECT_EQ(out, "ok\n");
}

TEST_F(Tls, WssWithAClientCertificateNamesTheUserByItsDn) {
    ASSERT_TRUE(env->mutual().running());
    BridgeOptions o = tls();
    o.websocket = true;
    o.cert_file = env->certs.client_cert;
    o.key_file = env->certs.client_key;
    Bridge b(env->mutual_wss_port, o);
    ASSERT_TRUE(b.ok()) << b.error();
    RawClient c;
    c.connect_ok(b.port(), "wss-dn");
    Json j = Json::parse(rest_get(env->mutual().api_port(), "clients/wss-dn"), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    ASSERT_EQ(j["result"]["objects"].size(), 1u) << j.dump();
    EXPECT_EQ(j["result"]["objects"][0]["username"], "CN=device-7,O=acme");
    EXPECT_EQ(j["result"]["objects"][0]["protocol"], "mqtt:wss");
}

// ---- bad input: each closes only its own connection ----

class TlsBadInput : public Tls {
protected:
    void SetUp() override {
        Tls::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        keeper_bridge_ = std::make_unique<Bridge>(env->ssl_port, tls());
        ASSERT_TRUE(keeper_bridge_->ok()) << keeper_bridge_->error();
        keeper_.connect_ok(keeper_bridge_->port(), "tls-keeper");
        keeper_.subscribe("tls/keeper", 1);
    }
    void TearDown() override {
        if (keeper_bridge_) {
            // The connection that was there all along still works.
            expect_round_trip(keeper_, "tls/keeper", "still here");
        }
        Tls::TearDown();
    }
    std::unique_ptr<Bridge> keeper_bridge_;
    RawClient keeper_;
};

TEST_F(TlsBadInput, GarbageBeforeTheHandshakeIsClosed) {
    RawClient c(env->ssl_port);
    c.send(std::string_view("MQTT is not TLS\r\n\r\n"));
    EXPECT_TRUE(c.wait_closed());
    RawClient mqtt_in_clear(env->ssl_port);
    pkt::ConnectOptions o;
    o.client_id = "clear";
    mqtt_in_clear.send(pkt::connect(o));
    EXPECT_TRUE(mqtt_in_clear.wait_closed());
}

TEST_F(TlsBadInput, GarbageDuringTheHandshakeIsClosed) {
    RawClient c(env->ssl_port);
    // A handshake record header, then bytes that are no ClientHello.
    Bytes bad(5 + 0x40, 0xEE);
    bad[0] = 0x16;
    bad[1] = 0x03;
    bad[2] = 0x01;
    bad[3] = 0x00;
    bad[4] = 0x40;
    c.send(bad);
    EXPECT_TRUE(c.wait_closed());
}

TEST_F(TlsBadInput, AClientStallingMidHandshakeIsClosedByTheHandshakeTimeout) {
    RawClient c(env->ssl_port);
    c.send(Bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01});  // the start of a ClientHello, no more
    EXPECT_TRUE(c.wait_closed(10s)) << "handshake_timeout is 2 s";
    Json j = Json::parse(rest_get(env->plain().api_port(), "monitoring/listeners"), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    uint64_t failed = 0;
    for (const auto& l : j["result"].begin().value()) {
        if (l["protocol"] == "mqtt:ssl") {
            for (const auto& s : l["shutdown_count"]) {
                if (s["reason"] == "handshake_error") {
                    failed = s["count"].get<uint64_t>();
                }
            }
        }
    }
    EXPECT_GE(failed, 1u) << j.dump();
}

}  // namespace
}  // namespace mqttd::itest
