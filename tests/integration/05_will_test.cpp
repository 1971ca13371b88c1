// 05 Will messages (MQTT 3.1.1 sections 3.1.2.5-3.1.2.7, 3.14.4).
#include <csignal>

#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "harness.h"
#include "mqtt5.h"

namespace mqttd::itest {
namespace {

using Clock = std::chrono::steady_clock;

pkt::ConnectOptions with_will(const std::string& id,
                              const std::string& topic,
                              const std::string& payload,
                              uint8_t qos = 1,
                              bool retain = false,
                              uint16_t keepalive = 60) {
    pkt::ConnectOptions o;
    o.client_id = id;
    o.keepalive = keepalive;
    o.will = pkt::Will{topic, payload, qos, retain};
    return o;
}

struct WillSetup {
    BrokerProcess broker;
    RawClient watcher;
    RawClient victim;
};

// A watcher subscribed to "will/#" at QoS 2 and a victim connected with a will on `topic`.
void setup(WillSetup& s, const pkt::ConnectOptions& victim) {
    ASSERT_TRUE(s.broker.running());
    s.watcher.connect_ok(s.broker.port(), "watcher");
    ASSERT_EQ(s.watcher.subscribe("will/#", 2), Bytes{2});
    ASSERT_TRUE(s.victim.open(s.broker.port()));
    auto r = s.victim.connect(victim);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->second, 0);
}

// [MQTT-3.1.2-8] the will is published when the network connection closes without DISCONNECT;
// it is delivered at min(will QoS, subscription QoS) with RETAIN=0 to live subscribers.
TEST(Will, PublishedOnAbruptClose_MQTT_3_1_2_8) {
    WillSetup s;
    ASSERT_NO_FATAL_FAILURE(setup(s, with_will("victim", "will/abrupt", "gone", 1)));
    s.victim.close();
    auto m = s.watcher.receive_and_ack();
    ASSERT_TRUE(m) << "[MQTT-3.1.2-8] will not published after the connection was closed";
    EXPECT_EQ(m->topic, "will/abrupt");
    EXPECT_EQ(m->payload, "gone");
    EXPECT_EQ(m->qos, 1);
    EXPECT_FALSE(m->retain);
    s.watcher.expect_silence();  // [MQTT-3.1.2-10] published once
}

// Same after a TCP reset (crashed client).
TEST(Will, PublishedOnConnectionReset_MQTT_3_1_2_8) {
    WillSetup s;
    ASSERT_NO_FATAL_FAILURE(setup(s, with_will("victim", "will/reset", "rst", 2)));
    s.victim.abort();
    auto m = s.watcher.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "rst");
    EXPECT_EQ(m->qos, 2);
}

// [MQTT-3.1.2-24] + [MQTT-3.1.2-8] keepalive expiry (1.5 x keepalive) publishes the will.
TEST(Will, PublishedOnKeepaliveTimeout_MQTT_3_1_2_24) {
    WillSetup s;
    ASSERT_NO_FATAL_FAILURE(setup(s, with_will("victim", "will/ka", "timeout", 1, false, 1)));
    auto t0 = Clock::now();
    auto m = s.watcher.receive_and_ack(6s);
    auto waited = Clock::now() - t0;
    ASSERT_TRUE(m) << "will not published after keepalive 1 s expired";
    EXPECT_EQ(m->payload, "timeout");
    EXPECT_GE(waited, 900ms) << "will published before the keepalive expired";
    EXPECT_LE(waited, 4s) << "will published long after 1.5 x keepalive";
    EXPECT_TRUE(s.victim.wait_closed(1s)) << "the silent client's connection is still open";
}

// [MQTT-3.1.2-8] (section 3.1.2.5: the server closes the connection because of a protocol
// error) a protocol violation publishes the will.
TEST(Will, PublishedOnProtocolViolation_MQTT_3_1_2_8) {
    WillSetup s;
    ASSERT_NO_FATAL_FAILURE(setup(s, with_will("victim", "will/violation", "bad", 1)));
    // PUBLISH with both QoS bits set [MQTT-3.3.1-4].
    s.victim.send(Bytes{0x36, 0x05, 0x00, 0x01, 'x', 0x00, 0x01});
    EXPECT_TRUE(s.victim.wait_closed()) << "[MQTT-3.3.1-4] PUBLISH with QoS 3 must close";
    auto m = s.watcher.receive_and_ack();
    ASSERT_TRUE(m) << "will not published after a protocol violation";
    EXPECT_EQ(m->payload, "bad");
}

// [MQTT-3.1.2-17] a will with Will Retain is published as a retained message.
TEST(Will, RetainedWillIsStoredAsRetained_MQTT_3_1_2_17) {
    WillSetup s;
    ASSERT_NO_FATAL_FAILURE(setup(s, with_will("victim", "will/retained", "last words", 1, true)));
    s.victim.close();
    auto live = s.watcher.receive_and_ack();
    ASSERT_TRUE(live);
    EXPECT_FALSE(live->retain) << "[MQTT-3.3.1-9] live delivery has RETAIN=0";
    RawClient late;
    late.connect_ok(s.broker.port(), "late");
    late.subscribe("will/retained", 1);
    auto m = late.receive_and_ack();
    ASSERT_TRUE(m) << "[MQTT-3.1.2-17] retained will not stored";
    EXPECT_TRUE(m->retain);
    EXPECT_EQ(m->payload, "last words");
}

// [MQTT-3.14.4-3] [MQTT-3.1.2-10] after DISCONNECT the will is discarded, never published.
TEST(Will, NotPublishedAfterDisconnect_MQTT_3_14_4_3) {
    WillSetup s;
    ASSERT_NO_FATAL_FAILURE(setup(s, with_will("victim", "will/clean", "never", 1, true)));
    s.victim.send(pkt::disconnect());
    EXPECT_TRUE(s.victim.wait_closed()) << "[MQTT-3.14.4-1] server closes after DISCONNECT";
    s.watcher.expect_silence(800ms);
    RawClient late;
    late.connect_ok(s.broker.port(), "late");
    late.subscribe("will/clean", 1);
    late.expect_silence();
}

// [MQTT-3.1.2-13] will flag 0 with will QoS != 0, [MQTT-3.1.2-15] will flag 0 with will retain
// 1, [MQTT-3.1.2-14] will QoS 3: the CONNECT is malformed -> close without CONNACK
// [MQTT-3.1.4-1].
TEST(Will, InvalidWillFlagsCloseConnection_MQTT_3_1_2_13) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    struct Case {
        const char* what;
        pkt::ConnectOptions o;
    };
    std::vector<Case> cases;
    {
        pkt::ConnectOptions o;
        o.client_id = "w1";
        o.extra_flags = 0x08;  // will QoS 1 without will flag
        cases.push_back({"[MQTT-3.1.2-13] will QoS without will flag", o});
    }
    {
        pkt::ConnectOptions o;
        o.client_id = "w2";
        o.extra_flags = 0x20;  // will retain without will flag
        cases.push_back({"[MQTT-3.1.2-15] will retain without will flag", o});
    }
    {
        auto o = with_will("w3", "will/x", "y", 3);
        cases.push_back({"[MQTT-3.1.2-14] will QoS 3", o});
    }
    for (const auto& c : cases) {
        RawClient raw(broker.port());
        raw.send(pkt::connect(c.o));
        auto p = raw.read();
        if (p) {
            ADD_FAILURE() << c.what << ": expected close without CONNACK, got " << describe(*p);
        }
        EXPECT_TRUE(raw.wait_closed()) << c.what;
    }
}

// [MQTT-3.1.2-8] for a will given through the mosquitto_sub CLI, killed with SIGKILL.
TEST(Will, MosquittoSubCliKilledPublishesWill) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient watcher;
    watcher.connect_ok(broker.port(), "watcher");
    watcher.subscribe("will/cli", 1);
    // A retained message tells us when the CLI is connected and subscribed.
    RawClient pub;
    pub.connect_ok(broker.port(), "ready-pub");
    pub.publish("ready/cli", "ready", 1, true);
    Child c = spawn_child({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()),
                           "-t", "ready/cli", "-i", "cli-will", "--will-topic", "will/cli",
                           "--will-payload", "cli died", "--will-qos", "1", "-k", "30"});
    pollfd pfd{c.out_fd, POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "mosquitto_sub did not get the retained message";
    ::kill(c.pid, SIGKILL);
    finish_child(c);
    auto m = watcher.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "cli died");
    EXPECT_EQ(m->qos, 1);
}

// Starts an MQTT 5 mosquitto_sub with a persistent session and a will delayed by
// `delay_s`; returns once it is subscribed (it has printed the retained "ready" message).
Child start_delayed_will_client(uint16_t port, const std::string& id, int delay_s) {
    RawClient pub;
    pub.connect_ok(port, id + "-ready-pub");
    pub.publish("ready/" + id, "ready", 1, true);
    Child c = spawn_child({"mosquitto_sub",
                           "-V",
                           "5",
                           "-h",
                           "127.0.0.1",
                           "-p",
                           std::to_string(port),
                           "-t",
                           "ready/" + id,
                           "-i",
                           id,
                           "-c",
                           "-x",
                           "60",
                           "--will-topic",
                           "wd/" + id,
                           "--will-payload",
                           "bye",
                           "--will-qos",
                           "1",
                           "-D",
                           "will",
                           "will-delay-interval",
                           std::to_string(delay_s),
                           "-D",
                           "will",
                           "content-type",
                           "text/x-test"});
    pollfd pfd{c.out_fd, POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 5000), 1) << "mosquitto_sub did not get the retained message";
    return c;
}

// MQTT 5 [MQTT-3.1.3-9]: the will waits for its Will Delay Interval, and goes out with its
// will properties (here Content Type) as PUBLISH properties.
TEST(Will, DelayedWillWaitsForItsInterval_MQTT5_3_1_3_9) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    std::string port = std::to_string(broker.port());
    Child watcher = spawn_child({"mosquitto_sub", "-V", "5", "-h", "127.0.0.1", "-p", port, "-t",
                                 "wd/#", "-q", "1", "-C", "1", "-W", "12", "-F", "%t %p %C"});
    Child victim = start_delayed_will_client(broker.port(), "wd-victim", 2);
    auto killed_at = Clock::now();
    ::kill(victim.pid, SIGKILL);
    finish_child(victim);
    std::string out = finish_child(watcher, 12s);
    auto waited = Clock::now() - killed_at;
    EXPECT_EQ(out, "wd/wd-victim bye text/x-test\n");
    EXPECT_GE(waited, 1500ms) << "the will came before its delay";
}

// ...and is not sent when the client comes back to its session before the delay has passed.
TEST(Will, DelayedWillDroppedWhenTheClientReturns_MQTT5_3_1_3_9) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient watcher;
    watcher.connect_ok(broker.port(), "wd-watcher");
    watcher.subscribe("wd/#", 1);
    Child victim = start_delayed_will_client(broker.port(), "wd-back", 2);
    ::kill(victim.pid, SIGKILL);
    finish_child(victim);
    RawClient back;
    EXPECT_TRUE(back.connect_ok(broker.port(), "wd-back", false)) << "session present";
    watcher.expect_silence(3000ms);
}

// A delayed will survives a restart of the broker: it is stored with its session, and goes out
// once its Will Delay Interval has passed, with its properties, exactly once.
TEST(Will, DelayedWillSurvivesARestart_MQTT5_3_1_3_9) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    {
        RawClient watcher;
        watcher.connect_ok(broker.port(), "wr-watcher", false);
        watcher.subscribe("wr/#", 1);
        watcher.disconnect();
    }
    v5::Client5 victim;
    v5::ConnectSpec spec;
    spec.client_id = "wr-victim";
    spec.props.u32(v5::kSessionExpiry, 300);
    spec.will = v5::WillSpec{"wr/victim", "bye", 1, false,
                             v5::Props().u32(v5::kWillDelay, 2).str(v5::kContentType, "t/x")};
    ASSERT_TRUE(victim.connect_ok(broker.port(), spec));
    victim.raw().abort();
    // The session is stored with its will when the broker handles the close (the client then
    // leaves the REST client list); a clean stop drains that write.
    const std::string url =
            "http://127.0.0.1:" + std::to_string(broker.api_port()) + "/api/v2/clients/wr-victim";
    EXPECT_TRUE(eventually([&] {
        auto [rc, out] = run_command({"curl", "-s", "-u", "admin:public", url}, 5s);
        return rc == 0 && out.find("\"code\":0") != std::string::npos &&
               out.find("wr-victim") == std::string::npos;
    }));
    broker.restart();
    ASSERT_TRUE(broker.running());
    v5::Client5 watcher;
    v5::ConnectSpec w;
    w.client_id = "wr-watcher";
    w.clean_start = false;
    w.props.u32(v5::kSessionExpiry, 300);
    ASSERT_TRUE(watcher.connect_ok(broker.port(), w));
    auto will = watcher.receive_and_ack(8s);
    ASSERT_TRUE(will) << "the delayed will was lost in the restart";
    EXPECT_EQ(will->topic, "wr/victim");
    EXPECT_EQ(will->payload, "bye");
    watcher.raw().expect_silence(1500ms);
    // Published once: the stored session no longer holds it.
    watcher.disconnect();
    broker.restart();
    ASSERT_TRUE(broker.running());
    RawClient again;
    EXPECT_TRUE(again.connect_ok(broker.port(), "wr-watcher", false));
    again.expect_silence(1000ms);
}

}  // namespace
}  // namespace mqttd::itest
