// 51 Shutdown (issue 16): SIGTERM stops accepting, gives each connection the acks that wait
// for the store, sends MQTT 5 clients DISCONNECT 0x8B (Server shutting down) and closes the
// store cleanly: every PUBACK sent is durable and none follows the DISCONNECT. A second SIGTERM
// exits at once.
#include <atomic>
#include <csignal>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"
#include "mqtt5.h"

namespace mqttd::itest {
namespace {

v5::ConnectSpec spec(const std::string& id) {
    v5::ConnectSpec c;
    c.client_id = id;
    return c;
}

// A persistent QoS 1 subscriber "keeper" on sd/t, offline.
void make_keeper(uint16_t port) {
    RawClient sub;
    sub.connect_ok(port, "keeper", false);
    ASSERT_EQ(sub.subscribe("sd/t", 1), (Bytes{1}));
    sub.disconnect();
}

std::set<std::string> keeper_receives(uint16_t port) {
    RawClient c;
    EXPECT_TRUE(c.connect_ok(port, "keeper", false));
    std::set<std::string> out;
    while (auto p = c.read(1000ms)) {
        if (p->type() != kPublish) {
            continue;
        }
        auto m = parse_publish(*p);
        c.send(pkt::puback(m.packet_id));
        out.insert(m.payload);
    }
    return out;
}

TEST(Shutdown, SigtermSendsMqtt5ClientsDisconnect0x8BAndExitsCleanly) {
    BrokerProcess broker;
    v5::Client5 c5;
    ASSERT_TRUE(c5.connect_ok(broker.port(), spec("v5")));
    RawClient c4;
    ASSERT_FALSE(c4.connect_ok(broker.port(), "v311"));
    broker.signal(SIGTERM);
    EXPECT_EQ(c5.expect_disconnect(), std::optional<uint8_t>(0x8B))
            << "DISCONNECT 0x8B, Server shutting down";
    EXPECT_TRUE(c5.raw().wait_closed());
    EXPECT_TRUE(c4.wait_closed()) << "3.1.1 has no DISCONNECT from the server: a close";
    EXPECT_EQ(broker.wait_exit(), 0);
    EXPECT_NE(broker.last_output().find("stopped"), std::string::npos) << broker.last_output();
    // Nobody is accepted any more, and the store was closed cleanly: the next start is clean.
    ASSERT_NO_FATAL_FAILURE(broker.start());
    EXPECT_EQ(broker.last_output().find("damaged"), std::string::npos) << broker.last_output();
}

// A publisher streams QoS 1 messages without waiting while SIGTERM arrives: every PUBACK it got
// came before the DISCONNECT, and every acknowledged message is delivered after the restart.
TEST(Shutdown, EveryPubackSentIsDurableAndNoneFollowsTheDisconnect) {
    BrokerProcess broker;
    ASSERT_NO_FATAL_FAILURE(make_keeper(broker.port()));
    v5::Client5 pub;
    ASSERT_TRUE(pub.connect_ok(broker.port(), spec("streamer")));
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    std::atomic<int> acked_n{0};
    std::thread sender([&] {
        for (int i = 0; i < 60000 && !stop; ++i) {
            // Within the Receive Maximum of the CONNACK.
            while (sent - acked_n >= 64 && !stop) {
                std::this_thread::sleep_for(100us);
            }
            if (!pub.raw().send(v5::publish("sd/t", num("m", i), 1,
                                            static_cast<uint16_t>(i % 65000 + 1)))) {
                break;
            }
            sent = i + 1;
        }
    });
    std::set<std::string> acked;
    bool disconnected = false;
    int after_disconnect = 0;
    bool signalled = false;
    while (auto p = pub.raw().read(3000ms)) {
        if (!signalled && acked_n >= 300) {
            broker.signal(SIGTERM);  // while the stream runs
            signalled = true;
        }
        if (p->type() == kDisconnect) {
            auto r = v5::parse_reasoned(*p);
            ASSERT_TRUE(r);
            EXPECT_EQ(r->reason, 0x8B);
            disconnected = true;
        } else if (p->type() == kPuback) {
            if (disconnected) {
                ++after_disconnect;
            }
            acked.insert(num("m", packet_id_of(*p) - 1));
            ++acked_n;
        }
    }
    stop = true;
    sender.join();
    EXPECT_TRUE(disconnected);
    EXPECT_EQ(after_disconnect, 0) << "no PUBACK after the DISCONNECT";
    EXPECT_EQ(broker.wait_exit(), 0);
    ASSERT_FALSE(acked.empty());
    RecordProperty("sent", sent.load());
    RecordProperty("acked", static_cast<int>(acked.size()));

    ASSERT_NO_FATAL_FAILURE(broker.start());
    const auto got = keeper_receives(broker.port());
    for (const auto& m : acked) {
        EXPECT_TRUE(got.count(m)) << m << " was acknowledged before the stop, then lost";
    }
}

// Two SIGTERMs back to back: the second, if it lands while stopping, exits at once (code 1) and
// still loses nothing acknowledged.
TEST(Shutdown, SecondSigtermExitsAtOnceAndLosesNothingAcknowledged) {
    BrokerProcess broker;
    ASSERT_NO_FATAL_FAILURE(make_keeper(broker.port()));
    {
        RawClient pub;
        pub.connect_ok(broker.port(), "pub");
        for (int i = 0; i < 20; ++i) {
            pub.publish("sd/t", num("m", i), 1);
        }
    }
    std::vector<std::unique_ptr<v5::Client5>> idle;
    for (int i = 0; i < 20; ++i) {
        idle.push_back(std::make_unique<v5::Client5>());
        ASSERT_TRUE(idle.back()->connect_ok(broker.port(), spec(num("idle", i))));
    }
    broker.signal(SIGTERM);
    // Apart, or the two would merge into one pending signal.
    std::this_thread::sleep_for(5ms);
    broker.signal(SIGTERM);
    const auto started = std::chrono::steady_clock::now();
    const int code = broker.wait_exit(5s);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
    const bool at_once =
            broker.last_output().find("second signal: exiting at once") != std::string::npos;
    EXPECT_EQ(code, at_once ? 1 : 0) << broker.last_output();
    RecordProperty("second_signal_landed", at_once ? 1 : 0);

    ASSERT_NO_FATAL_FAILURE(broker.start());
    const auto got = keeper_receives(broker.port());
    for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(got.count(num("m", i))) << i;
    }
}

}  // namespace
}  // namespace mqttd::itest
