// 21: MQTT over WebSocket (mqtt:ws) and WebSocket over TLS (mqtt:wss). One broker for the
// whole binary: TCP, WS on /mqtt (handshake_timeout 2 s), WSS. Clients: MQTT.js (node/), Paho
// Python (transport="websockets"), the raw client through a WebSocket bridge (bridge.h), and
// hand-made frames on a raw socket for the bad input.
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

struct Env : ::testing::Environment {
    TestCerts certs;
    uint16_t ws_port = 0;
    uint16_t wss_port = 0;
    std::unique_ptr<BrokerProcess> broker_;

    void SetUp() override { make_test_certs(certs); }
    void TearDown() override { broker_.reset(); }
    BrokerProcess& broker() {
        if (!broker_) {
            ws_port = free_port();
            wss_port = free_port();
            auto sets = tls_listener_sets("listener.wss.external", wss_port, certs);
            sets.push_back("listener.ws.external=127.0.0.1:" + std::to_string(ws_port));
            sets.push_back("listener.ws.external.handshake_timeout=2");
            broker_ = std::make_unique<BrokerProcess>(sets);
        }
        return *broker_;
    }
};
Env* const env = static_cast<Env*>(::testing::AddGlobalTestEnvironment(new Env));

BridgeOptions ws() {
    BridgeOptions o;
    o.websocket = true;
    return o;
}

BridgeOptions wss() {
    BridgeOptions o = ws();
    o.tls = true;
    o.ca_file = env->certs.ca;
    return o;
}

std::string script(const char* path) {
    return std::string(MQTTD_SOURCE_DIR) + "/tests/integration/" + path;
}

// ---- hand-made WebSocket ----

std::string upgrade_request(const std::string& protocols, const std::string& path = "/mqtt") {
    std::string r = "GET " + path +
                    " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    if (!protocols.empty()) {
        r += "Sec-WebSocket-Protocol: " + protocols + "\r\n";
    }
    return r + "\r\n";
}

Bytes frame(uint8_t opcode, const Bytes& payload, bool masked = true, bool fin = true) {
    Bytes f;
    f.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | opcode));
    uint8_t m = masked ? 0x80 : 0;
    if (payload.size() < 126) {
        f.push_back(static_cast<uint8_t>(m | payload.size()));
    } else if (payload.size() < 65536) {
        f.push_back(m | 126);
        f.push_back(static_cast<uint8_t>(payload.size() >> 8));
        f.push_back(static_cast<uint8_t>(payload.size()));
    } else {
        f.push_back(m | 127);
        for (int i = 7; i >= 0; --i) {
            f.push_back(static_cast<uint8_t>(static_cast<uint64_t>(payload.size()) >> (8 * i)));
        }
    }
    const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked) {
        f.insert(f.end(), key, key + 4);
    }
    for (size_t i = 0; i < payload.size(); ++i) {
        f.push_back(masked ? static_cast<uint8_t>(payload[i] ^ key[i % 4]) : payload[i]);
    }
    return f;
}

struct Frame {
    uint8_t opcode = 0;
    Bytes payload;
};

// The server's (unmasked) frames in `bytes`.
std::vector<Frame> frames_of(const std::string& bytes) {
    std::vector<Frame> out;
    size_t at = 0;
    while (at + 2 <= bytes.size()) {
        auto b = [&](size_t i) {
            return static_cast<uint8_t>(bytes[i]);
        };
        size_t len = b(at + 1) & 0x7f;
        size_t head = 2;
        if (len == 126 && at + 4 <= bytes.size()) {
            len = (size_t{b(at + 2)} << 8) | b(at + 3);
            head = 4;
        }
        if (at + head + len > bytes.size()) {
            break;
        }
        Frame f;
        f.opcode = b(at) & 0x0f;
        f.payload.assign(bytes.begin() + static_cast<long>(at + head),
                         bytes.begin() + static_cast<long>(at + head + len));
        out.push_back(std::move(f));
        at += head + len;
    }
    return out;
}

uint16_t close_code(const Frame& f) {
    return f.payload.size() >= 2 ? static_cast<uint16_t>((f.payload[0] << 8) | f.payload[1]) : 0;
}

// Opens a raw socket on the WS port and upgrades it; returns the answer's first line.
std::string raw_upgrade(RawClient& c, const std::string& protocols = "mqtt") {
    c.open(env->ws_port);
    c.send(upgrade_request(protocols));
    std::string answer = c.read_raw(1);
    while (answer.find("\r\n\r\n") == std::string::npos && !c.closed()) {
        std::string more = c.read_raw(1, 2000ms);
        if (more.empty()) {
            break;
        }
        answer += more;
    }
    return answer.substr(0, answer.find("\r\n"));
}

// Reads until a close frame comes (and the socket closes); returns it (opcode 0 if none).
Frame read_close(RawClient& c) {
    std::string bytes;
    auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
        bytes += c.read_raw(bytes.size() + 1, 500ms);
        for (const auto& f : frames_of(bytes)) {
            if (f.opcode == 0x8) {
                return f;
            }
        }
        if (c.closed()) {
            break;
        }
    }
    return {};
}

class WebSocket : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(env->certs.ca.empty()) << "the test certificates were not made";
        ASSERT_TRUE(env->broker().running()) << "the broker did not start";
    }
    void TearDown() override {
        if (HasFailure()) {
            std::string log = env->broker().log_text();
            std::cerr << "----- broker -----\n"
                      << (log.size() > 20000 ? log.substr(log.size() - 20000) : log);
        }
    }
};

TEST_F(WebSocket, MqttJsOverWsAndWss) {
    const std::string node_dir = script("node");
    auto [has, ls] = run_command({"test", "-d", node_dir + "/node_modules/mqtt"}, 5s);
    ASSERT_EQ(has, 0) << "MQTT.js is not installed: run .ci/setup test (npm ci in " << node_dir
                      << ")";
    for (const auto& [url, ca, id] :
         {std::tuple<std::string, std::string, std::string>{
                  "ws://127.0.0.1:" + std::to_string(env->ws_port) + "/mqtt", "-", "js-ws"},
          {"wss://localhost:" + std::to_string(env->wss_port) + "/mqtt", env->certs.ca,
           "js-wss"}}) {
        auto [rc, out] = run_command({"node", node_dir + "/ws_client.js", url, ca, id}, 20s);
        ASSERT_EQ(rc, 0) << url << ": " << out;
        Json j = Json::parse(out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << out;
        ASSERT_EQ(j["received"].size(), 3u) << out;
        std::set<int> qos;
        for (const auto& m : j["received"]) {
            qos.insert(m["qos"].get<int>());
            EXPECT_EQ(m["payload"], "hello " + std::to_string(m["qos"].get<int>()));
        }
        EXPECT_EQ(qos, (std::set<int>{0, 1, 2})) << out;
    }
}

TEST_F(WebSocket, PahoOverWsAndWss) {
    for (bool secure : {false, true}) {
        std::vector<std::string> argv = {"/usr/bin/python3",
                                         script("python/paho_client.py"),
                                         "roundtrip",
                                         std::to_string(secure ? env->wss_port : env->ws_port),
                                         "--ws",
                                         "/mqtt",
                                         "--id",
                                         secure ? "paho-wss" : "paho-ws"};
        if (secure) {
            argv.push_back("--tls");
            argv.push_back(env->certs.ca);
        }
        auto [rc, out] = run_command(argv, 20s);
        ASSERT_EQ(rc, 0) << out;
        Json j = Json::parse(out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << out;
        EXPECT_EQ(j["received"].size(), 4u) << out;  // retained + QoS 0, 1, 2
    }
}

TEST_F(WebSocket, SubprotocolIsEchoedAndRequired) {
    for (const auto& [offered, chosen] : {std::pair<std::string, std::string>{"mqtt", "mqtt"},
                                          {"mqttv3.1", "mqttv3.1"},
                                          {"chat, mqttv3.1, mqtt", "mqttv3.1"}}) {
        BridgeOptions o = ws();
        o.subprotocol = offered;
        Bridge b(env->ws_port, o);
        ASSERT_TRUE(b.ok()) << offered << ": " << b.error();
        EXPECT_EQ(b.subprotocol(), chosen);
        RawClient c;
        c.connect_ok(b.port(), "ws-proto");
        c.disconnect();
    }
    RawClient none;
    EXPECT_EQ(raw_upgrade(none, ""), "HTTP/1.1 400 Bad Request");
    EXPECT_TRUE(none.wait_closed());
    RawClient other;
    EXPECT_EQ(raw_upgrade(other, "chat"), "HTTP/1.1 400 Bad Request");
    EXPECT_TRUE(other.wait_closed());
    RawClient wrong_path(env->ws_port);
    wrong_path.send(upgrade_request("mqtt", "/other"));
    EXPECT_EQ(wrong_path.read_raw(12).substr(0, 12), "HTTP/1.1 404");
    EXPECT_TRUE(wrong_path.wait_closed());
}

TEST_F(WebSocket, PacketsSpanFragmentsAndFramesHoldSeveralPackets) {
    BridgeOptions o = ws();
    o.ws_fragment = 7;  // every write is cut into 7-byte fragments
    Bridge b(env->ws_port, o);
    ASSERT_TRUE(b.ok()) << b.error();
    RawClient c;
    c.connect_ok(b.port(), "ws-frag");
    c.subscribe("ws/frag", 1);
    c.publish("ws/frag", std::string(5000, 'f'), 1);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, std::string(5000, 'f'));

    Bridge whole(env->ws_port, ws());
    ASSERT_TRUE(whole.ok()) << whole.error();
    RawClient d;
    d.connect_ok(whole.port(), "ws-many");
    d.subscribe("ws/many", 0);
    Bytes two = pkt::publish("ws/many", "one");
    Bytes second = pkt::publish("ws/many", "two");
    two.insert(two.end(), second.begin(), second.end());
    d.send(two);  // one frame, two packets
    auto m1 = d.expect_publish();
    auto m2 = d.expect_publish();
    ASSERT_TRUE(m1 && m2);
    EXPECT_EQ(m1->payload, "one");
    EXPECT_EQ(m2->payload, "two");
}

TEST_F(WebSocket, PingIsAnsweredWithPong) {
    RawClient c;
    ASSERT_EQ(raw_upgrade(c), "HTTP/1.1 101 Switching Protocols");
    c.send(frame(0x9, Bytes{'h', 'i'}));
    auto fs = frames_of(c.read_raw(4));
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0].opcode, 0xA);
    EXPECT_EQ(fs[0].payload, (Bytes{'h', 'i'}));
    // A ping between two fragments of a message that holds a CONNECT.
    pkt::ConnectOptions o;
    o.client_id = "ws-ping";
    Bytes connect = pkt::connect(o);
    Bytes first(connect.begin(), connect.begin() + 5);
    Bytes rest(connect.begin() + 5, connect.end());
    c.send(frame(0x2, first, true, false));
    c.send(frame(0x9, Bytes{}));
    c.send(frame(0x0, rest));
    fs = frames_of(c.read_raw(2 + 4));
    ASSERT_EQ(fs.size(), 2u);
    EXPECT_EQ(fs[0].opcode, 0xA);
    EXPECT_EQ(fs[1].opcode, 0x2);
    EXPECT_EQ(fs[1].payload, (Bytes{0x20, 0x02, 0x00, 0x00}));  // CONNACK 0
    // The client closes: the broker answers the close with the same code.
    c.send(frame(0x8, Bytes{0x03, 0xE8}));
    Frame f = read_close(c);
    EXPECT_EQ(f.opcode, 0x8);
    EXPECT_EQ(close_code(f), 1000);
    EXPECT_TRUE(c.wait_closed());
}

TEST_F(WebSocket, WillsAndPersistentSessionsAcrossTransports) {
    RawClient watcher;
    watcher.connect_ok(env->broker().port(), "ws-watch");
    watcher.subscribe("ws/will", 1);
    {
        Bridge b(env->ws_port, ws());
        ASSERT_TRUE(b.ok()) << b.error();
        RawClient c(b.port());
        pkt::ConnectOptions o;
        o.client_id = "ws-will";
        o.will = pkt::Will{"ws/will", "ws gone", 1, false};
        ASSERT_TRUE(c.connect(o));
        c.abort();
    }
    auto w = watcher.expect_publish();
    ASSERT_TRUE(w);
    EXPECT_EQ(w->payload, "ws gone");

    // Made over TCP, resumed over WSS with its queue, then taken over from WS.
    RawClient tcp;
    EXPECT_FALSE(tcp.connect_ok(env->broker().port(), "x-sess", false));
    tcp.subscribe("x/sess", 2);
    tcp.disconnect();
    RawClient pub;
    pub.connect_ok(env->broker().port(), "x-sess-pub");
    pub.publish("x/sess", "queued 1", 1);
    pub.publish("x/sess", "queued 2", 2);
    Bridge s(env->wss_port, wss());
    ASSERT_TRUE(s.ok()) << s.error();
    RawClient over_wss;
    EXPECT_TRUE(over_wss.connect_ok(s.port(), "x-sess", false));
    auto q1 = over_wss.receive_and_ack();
    auto q2 = over_wss.receive_and_ack();
    ASSERT_TRUE(q1 && q2);
    EXPECT_EQ(q1->payload, "queued 1");
    EXPECT_EQ(q2->payload, "queued 2");
    EXPECT_EQ(q2->qos, 2);
    // A round trip, so the broker has read the PUBCOMP before the takeover: one still unread
    // then would rightly have the PUBREL sent again on the WS connection.
    over_wss.send(pkt::pingreq());
    auto pong = over_wss.read();
    ASSERT_TRUE(pong);
    EXPECT_EQ(pong->type(), kPingresp) << describe(*pong);
    Bridge b(env->ws_port, ws());
    ASSERT_TRUE(b.ok()) << b.error();
    RawClient over_ws;
    EXPECT_TRUE(over_ws.connect_ok(b.port(), "x-sess", false));
    EXPECT_TRUE(over_wss.wait_closed()) << "the WSS connection was not taken over";
    pub.publish("x/sess", "to ws", 1);
    auto m = over_ws.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "to ws");
    over_ws.disconnect();
    RawClient clean;
    clean.connect_ok(env->broker().port(), "x-sess", true);
}

TEST_F(WebSocket, RestShowsTheWebSocketProtocols) {
    Bridge a(env->ws_port, ws());
    Bridge b(env->wss_port, wss());
    ASSERT_TRUE(a.ok() && b.ok()) << a.error() << b.error();
    RawClient ca;
    RawClient cb;
    ca.connect_ok(a.port(), "ws-rest-a");
    cb.connect_ok(b.port(), "ws-rest-b");
    for (const auto& [id, proto, ssl] :
         {std::tuple<const char*, const char*, bool>{"ws-rest-a", "mqtt:ws", false},
          {"ws-rest-b", "mqtt:wss", true}}) {
        Json j = Json::parse(rest_get(env->broker().api_port(), std::string("clients/") + id),
                             nullptr, false);
        ASSERT_FALSE(j.is_discarded());
        ASSERT_EQ(j["result"]["objects"].size(), 1u) << j.dump();
        EXPECT_EQ(j["result"]["objects"][0]["protocol"], proto);
        EXPECT_EQ(j["result"]["objects"][0]["is_ssl"], ssl);
    }
}

// ---- bad input: each closes only its own connection ----

class WebSocketBadInput : public WebSocket {
protected:
    void SetUp() override {
        WebSocket::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        keeper_bridge_ = std::make_unique<Bridge>(env->ws_port, ws());
        ASSERT_TRUE(keeper_bridge_->ok()) << keeper_bridge_->error();
        keeper_.connect_ok(keeper_bridge_->port(), "ws-keeper");
        keeper_.subscribe("ws/keeper", 1);
    }
    void TearDown() override {
        if (keeper_bridge_) {
            RawClient pub;
            pub.connect_ok(env->broker().port(), "ws-keeper-pub");
            pub.publish("ws/keeper", "still here", 1);
            auto m = keeper_.expect_publish();
            EXPECT_TRUE(m) << "the other WebSocket client stopped getting messages";
        }
        WebSocket::TearDown();
    }
    std::unique_ptr<Bridge> keeper_bridge_;
    RawClient keeper_;
};

TEST_F(WebSocketBadInput, AnUpgradeRequestThatNeverEndsIsClosed) {
    RawClient huge(env->ws_port);
    huge.send(std::string_view("GET /mqtt HTTP/1.1\r\n"));
    std::string header = "X-Filler: " + std::string(100, 'x') + "\r\n";
    for (int i = 0; i < 100 && !huge.closed(); ++i) {
        huge.send(header);  // 11 KB in all, more than the 8 KB bound
    }
    EXPECT_TRUE(huge.wait_closed());
    RawClient slow(env->ws_port);
    slow.send(std::string_view("GET /mqtt HTTP/1.1\r\nHost: x\r\n"));  // and nothing more
    EXPECT_TRUE(slow.wait_closed(10s)) << "handshake_timeout is 2 s";
}

TEST_F(WebSocketBadInput, OversizedFramesCloseWith1009) {
    RawClient c;
    ASSERT_EQ(raw_upgrade(c), "HTTP/1.1 101 Switching Protocols");
    // A frame header announcing 2 MiB, more than mqtt.max_packet_size (1 MiB), and the start
    // of its payload.
    Bytes head = {0x82, 0xFF, 0, 0, 0, 0, 0, 0x20, 0, 0, 0x12, 0x34, 0x56, 0x78};
    head.resize(head.size() + 200, 0x30);
    c.send(head);
    Frame f = read_close(c);
    EXPECT_EQ(f.opcode, 0x8);
    EXPECT_EQ(close_code(f), 1009);
    EXPECT_TRUE(c.wait_closed());
}

TEST_F(WebSocketBadInput, UnmaskedAndTextFramesAreRefused) {
    pkt::ConnectOptions o;
    o.client_id = "ws-unmasked";
    RawClient unmasked;
    ASSERT_EQ(raw_upgrade(unmasked), "HTTP/1.1 101 Switching Protocols");
    unmasked.send(frame(0x2, pkt::connect(o), false));
    Frame f = read_close(unmasked);
    EXPECT_EQ(close_code(f), 1002);
    EXPECT_TRUE(unmasked.wait_closed());

    RawClient text;
    ASSERT_EQ(raw_upgrade(text), "HTTP/1.1 101 Switching Protocols");
    text.send(frame(0x1, Bytes{'h', 'e', 'l', 'l', 'o'}));
    f = read_close(text);
    EXPECT_EQ(close_code(f), 1003);  // [MQTT-6.0.0-1]: binary frames only
    EXPECT_TRUE(text.wait_closed());
}

TEST_F(WebSocketBadInput, ACloseFrameMidPacketEndsTheConnectionWithItsWill) {
    RawClient watcher;
    watcher.connect_ok(env->broker().port(), "ws-mid-watch");
    watcher.subscribe("ws/mid", 1);
    RawClient c;
    ASSERT_EQ(raw_upgrade(c), "HTTP/1.1 101 Switching Protocols");
    pkt::ConnectOptions o;
    o.client_id = "ws-mid";
    o.will = pkt::Will{"ws/mid", "cut off", 1, false};
    c.send(frame(0x2, pkt::connect(o)));
    auto fs = frames_of(c.read_raw(6));
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0].payload, (Bytes{0x20, 0x02, 0x00, 0x00}));
    Bytes publish = pkt::publish("ws/mid", std::string(100, 'p'), 1, 7);
    c.send(frame(0x2, Bytes(publish.begin(), publish.begin() + 40)));  // half a PUBLISH
    c.send(frame(0x8, Bytes{0x03, 0xE8}));
    Frame f = read_close(c);
    EXPECT_EQ(f.opcode, 0x8);
    EXPECT_TRUE(c.wait_closed());
    auto w = watcher.expect_publish();
    ASSERT_TRUE(w);
    EXPECT_EQ(w->payload, "cut off");
}

}  // namespace
}  // namespace mqttd::itest
