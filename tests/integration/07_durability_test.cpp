// 07 Durability (DESIGN.md durability contract 1-4): acknowledged state survives kill -9 and a
// clean SIGTERM restart on the same data directory. With storage.sync=false the contract is
// "survives a process crash", which is what SIGKILL is.
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <sys/wait.h>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

// Reads the next packet, failing the test on anything but `type`. No failure on a close.
std::optional<Packet> read_ack(RawClient& c, uint8_t type) {
    auto p = c.read(3s);
    if (p && p->type() != type) {
        ADD_FAILURE() << "expected " << packet_type_name(type) << ", got " << describe(*p);
        return std::nullopt;
    }
    return p;
}

// Receives and acknowledges publishes until `quiet` passes with nothing; returns them in
// order of arrival.
std::vector<Publish> drain(RawClient& c, std::chrono::milliseconds quiet = 1000ms) {
    std::vector<Publish> out;
    while (auto p = c.read(quiet)) {
        if (p->type() == kPubrel) {
            c.send(pkt::pubcomp(packet_id_of(*p)));
            continue;
        }
        if (p->type() != kPublish) {
            ADD_FAILURE() << "expected PUBLISH, got " << describe(*p);
            continue;
        }
        auto m = parse_publish(*p);
        if (m.qos == 1) {
            c.send(pkt::puback(m.packet_id));
        } else if (m.qos == 2) {
            c.send(pkt::pubrec(m.packet_id));  // the PUBREL comes back through this loop
        }
        out.push_back(std::move(m));
    }
    return out;
}

// A persistent subscriber "<id>" to dur/q1 (QoS 1) and dur/q2 (QoS 2) that goes offline.
void make_offline_subscriber(uint16_t port, const std::string& id) {
    RawClient c;
    c.connect_ok(port, id, false);
    ASSERT_EQ(c.subscribe({{"dur/q1", 1}, {"dur/q2", 2}}), (Bytes{1, 2}));
    c.disconnect();
}

// Publishes, alternating QoS 1 and 2, until the connection dies (the broker is killed) or
// `max` messages; returns {sent, acknowledged} payloads per QoS.
struct Published {
    std::set<std::string> sent[3];
    std::set<std::string> acked[3];
};

Published publish_until_killed(uint16_t port, const std::string& prefix, int max) {
    Published out;
    RawClient pub;
    pub.connect_ok(port, prefix + "-pub");
    for (int i = 0; i < max; ++i) {
        uint8_t qos = i % 2 == 0 ? 1 : 2;
        std::string payload = prefix + num("-", i);
        auto id = static_cast<uint16_t>(i % 60000 + 1);
        out.sent[qos].insert(payload);
        if (!pub.send(pkt::publish(qos == 1 ? "dur/q1" : "dur/q2", payload, qos, id))) {
            break;
        }
        if (qos == 1) {
            auto a = read_ack(pub, kPuback);
            if (!a) {
                break;
            }
            EXPECT_EQ(packet_id_of(*a), id);
        } else {
            auto rec = read_ack(pub, kPubrec);
            if (!rec || !pub.send(pkt::pubrel(id))) {
                break;
            }
            auto comp = read_ack(pub, kPubcomp);
            if (!comp) {
                break;
            }
            EXPECT_EQ(packet_id_of(*comp), id);
        }
        out.acked[qos].insert(payload);
    }
    return out;
}

// Publish to an offline persistent session, kill -9 at a random moment, restart on the same
// data dir: session present, every acknowledged message delivered (QoS 1 at least once, QoS 2
// exactly once), nothing invented, retained message and subscriptions intact. Five rounds.
TEST(Durability, AcknowledgedMessagesSurviveKill9_Loop) {
    std::random_device rd;
    unsigned seed = rd();
    std::mt19937 rng(seed);
    RecordProperty("seed", std::to_string(seed));
    SCOPED_TRACE(num("seed ", seed));
    BrokerProcess broker({"mqtt.mqueue.max_len=0", "mqtt.max_inflight=64"});
    ASSERT_TRUE(broker.running());
    for (int round = 0; round < 5; ++round) {
        SCOPED_TRACE(num("round ", round));
        std::string sub_id = num("dur-sub-", round);
        ASSERT_NO_FATAL_FAILURE(make_offline_subscriber(broker.port(), sub_id));
        {
            RawClient ret;
            ret.connect_ok(broker.port(), "dur-ret");
            ret.publish(num("dur/retained/", round), num("ret-", round), 1, true);
        }
        int delay_ms = std::uniform_int_distribution<int>(5, 250)(rng);
        std::thread killer([&broker, delay_ms] {
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            broker.kill9();
        });
        auto published = publish_until_killed(broker.port(), num("r", round), 4000);
        killer.join();
        ASSERT_FALSE(broker.running());
        ASSERT_NO_FATAL_FAILURE(broker.start());
        ASSERT_TRUE(broker.running());

        RawClient sub;
        EXPECT_TRUE(sub.connect_ok(broker.port(), sub_id, false))
                << "[MQTT-3.2.2-2] session present after kill -9 (contract 2)";
        auto got = drain(sub);
        std::map<std::string, int> count[3];
        for (const auto& m : got) {
            ASSERT_TRUE(m.qos == 1 || m.qos == 2) << m.payload;
            EXPECT_TRUE(published.sent[m.qos].count(m.payload))
                    << "delivered a message that was never published: " << m.payload;
            ++count[m.qos][m.payload];
        }
        std::cout << "round " << round << ": kill -9 after " << delay_ms << " ms; acknowledged "
                  << published.acked[1].size() << " QoS 1 + " << published.acked[2].size()
                  << " QoS 2 of " << published.sent[1].size() + published.sent[2].size()
                  << " sent; " << got.size() << " delivered after restart\n";
        size_t missing = 0;
        for (uint8_t q : {uint8_t{1}, uint8_t{2}}) {
            for (const auto& payload : published.acked[q]) {
                if (count[q][payload] == 0) {
                    if (++missing <= 5) {
                        ADD_FAILURE() << "acknowledged QoS " << int{q}
                                      << " message lost by kill -9: " << payload;
                    }
                }
            }
        }
        EXPECT_EQ(missing, 0u) << "acked: " << published.acked[1].size() << " QoS 1, "
                               << published.acked[2].size() << " QoS 2; received " << got.size();
        for (const auto& [payload, n] : count[2]) {
            EXPECT_EQ(n, 1) << "QoS 2 message delivered " << n << " times: " << payload;
        }
        // The subscription is intact.
        RawClient pub;
        pub.connect_ok(broker.port(), "dur-live-pub");
        pub.publish("dur/q2", num("live-", round), 2);
        auto live = sub.receive_and_ack();
        ASSERT_TRUE(live) << "subscription lost after kill -9";
        EXPECT_EQ(live->payload, num("live-", round));
        sub.disconnect();
        // Every retained message so far is intact.
        RawClient ret;
        ret.connect_ok(broker.port(), "dur-ret-check");
        ret.subscribe("dur/retained/+", 1);
        std::set<std::string> retained;
        for (int r = 0; r <= round; ++r) {
            auto m = ret.receive_and_ack();
            ASSERT_TRUE(m) << "retained message missing after kill -9";
            EXPECT_TRUE(m->retain);
            retained.insert(m->payload);
        }
        EXPECT_EQ(retained.size(), static_cast<size_t>(round + 1));
        ret.expect_silence(200ms);
        ret.disconnect();
    }
}

// Messages in flight to an online persistent subscriber that never acknowledges survive
// kill -9: after the restart they are re-sent with DUP=1 and their packet ids; a PUBRECed QoS 2
// message continues with PUBREL (contract 3, [MQTT-4.4.0-1]).
TEST(Durability, InflightToOnlineSubscriberSurvivesKill9_MQTT_4_4_0_1) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    RawClient sub;
    sub.connect_ok(broker.port(), "inflight", false);
    sub.subscribe({{"inf/q1", 1}, {"inf/q2", 2}});
    RawClient pub;
    pub.connect_ok(broker.port(), "inflight-pub");
    for (int i = 0; i < 4; ++i) {
        pub.publish("inf/q1", num("a", i), 1);
        pub.publish("inf/q2", num("b", i), 2);
    }
    std::map<std::string, Publish> first;
    for (int i = 0; i < 8; ++i) {
        auto m = sub.expect_publish();
        ASSERT_TRUE(m) << i;
        first[m->payload] = *m;
    }
    // PUBREC one QoS 2 message: it must come back as PUBREL, not PUBLISH.
    uint16_t recd = first["b0"].packet_id;
    sub.send(pkt::pubrec(recd));
    auto rel = sub.read();
    ASSERT_TRUE(rel);
    ASSERT_EQ(rel->type(), kPubrel);
    // No wait needed: PUBREL leaves only once the PUBREC state is in the store (contract 3).
    broker.kill9();
    EXPECT_TRUE(sub.wait_closed());
    ASSERT_NO_FATAL_FAILURE(broker.start());

    RawClient again;
    EXPECT_TRUE(again.connect_ok(broker.port(), "inflight", false));
    std::map<std::string, Publish> resent;
    bool pubrel_seen = false;
    while (auto p = again.next(1000ms)) {
        if (p->type() == kPubrel) {
            EXPECT_EQ(packet_id_of(*p), recd);
            pubrel_seen = true;
            again.send(pkt::pubcomp(recd));
            continue;
        }
        ASSERT_EQ(p->type(), kPublish) << describe(*p);
        auto m = parse_publish(*p);
        EXPECT_EQ(resent.count(m.payload), 0u) << "sent twice after restart: " << m.payload;
        resent[m.payload] = m;
        again.ack(m);
    }
    for (const auto& [payload, m] : first) {
        if (payload == "b0") {
            continue;
        }
        if (resent.count(payload) == 0) {
            ADD_FAILURE() << "in-flight QoS " << int{m.qos}
                          << " message lost by kill -9: " << payload;
            continue;
        }
        EXPECT_TRUE(resent[payload].dup) << "[MQTT-3.3.1-1] " << payload;
        EXPECT_EQ(resent[payload].packet_id, m.packet_id) << "[MQTT-4.4.0-1] " << payload;
        EXPECT_EQ(resent[payload].qos, m.qos) << payload;
    }
    EXPECT_EQ(resent.count("b0"), 0u) << "PUBRECed QoS 2 message sent again as PUBLISH";
    EXPECT_TRUE(pubrel_seen) << "[MQTT-4.4.0-1] PUBREL not re-sent after kill -9";
}

// Inbound QoS 2 awaiting PUBREL survives kill -9: after the restart the publisher's PUBREL gets
// PUBCOMP and the message reaches the (offline) subscriber exactly once.
TEST(Durability, InboundQos2AwaitingPubrelSurvivesKill9_MQTT_4_3_3_2) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    ASSERT_NO_FATAL_FAILURE(make_offline_subscriber(broker.port(), "in2-sub"));
    RawClient pub;
    pub.connect_ok(broker.port(), "in2-pub", false);
    pub.send(pkt::publish("dur/q2", "exactly-once", 2, 321));
    auto rec = pub.read();
    ASSERT_TRUE(rec);
    ASSERT_EQ(rec->type(), kPubrec);
    broker.kill9();
    ASSERT_NO_FATAL_FAILURE(broker.start());
    RawClient pub2;
    EXPECT_TRUE(pub2.connect_ok(broker.port(), "in2-pub", false));
    // [MQTT-4.4.0-1] the client had the PUBREC, so it re-sends the PUBREL.
    pub2.send(pkt::pubrel(321));
    auto comp = pub2.read();
    ASSERT_TRUE(comp);
    EXPECT_EQ(comp->type(), kPubcomp) << describe(*comp);
    EXPECT_EQ(packet_id_of(*comp), 321);
    RawClient sub;
    EXPECT_TRUE(sub.connect_ok(broker.port(), "in2-sub", false));
    auto got = drain(sub);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, "exactly-once");
}

// A clean SIGTERM stop and start keeps sessions, subscriptions, queued messages and retained
// messages; the broker exits with status 0.
TEST(Durability, CleanSigtermRestartKeepsState) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    ASSERT_NO_FATAL_FAILURE(make_offline_subscriber(broker.port(), "term-sub"));
    {
        RawClient pub;
        pub.connect_ok(broker.port(), "term-pub");
        pub.publish("dur/q1", "queued-1", 1);
        pub.publish("dur/q2", "queued-2", 2);
        pub.publish("dur/q1", "queued-0", 0);
        pub.publish("term/retained", "kept", 2, true);
        pub.disconnect();
    }
    int status = broker.stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "mqttd did not exit cleanly on SIGTERM, status " << status;
    ASSERT_NO_FATAL_FAILURE(broker.start());
    RawClient sub;
    EXPECT_TRUE(sub.connect_ok(broker.port(), "term-sub", false));
    auto got = drain(sub);
    std::vector<std::string> payloads;
    for (const auto& m : got) {
        payloads.push_back(m.payload);
    }
    EXPECT_EQ(payloads, (std::vector<std::string>{"queued-1", "queued-2", "queued-0"}));
    RawClient ret;
    ret.connect_ok(broker.port(), "term-ret");
    ret.subscribe("term/#", 2);
    auto m = ret.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "kept");
    EXPECT_TRUE(m->retain);
    EXPECT_EQ(m->qos, 2);
}

}  // namespace
}  // namespace mqttd::itest
