// 40 GET /metrics (Prometheus text 0.0.4) on the REST listener: Basic auth unless
// api.metrics.auth = off, counters that move by exactly the traffic sent, per-listener
// connections, the store's histograms and queue depth, and `promtool check metrics` (Debian
// package prometheus) on a scrape taken while QoS 0/1 load runs.
#include <atomic>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

std::string metrics_url(const BrokerProcess& b) {
    return "http://127.0.0.1:" + std::to_string(b.api_port()) + "/metrics";
}

// The HTTP status of GET /metrics, with `user` ("admin:public") or without credentials.
std::string metrics_status(const BrokerProcess& b, const std::string& user = "") {
    std::vector<std::string> argv = {"curl", "-s",        "-m", "5",
                                     "-o",   "/dev/null", "-w", "%{http_code}"};
    if (!user.empty()) {
        argv.insert(argv.end(), {"-u", user});
    }
    argv.push_back(metrics_url(b));
    return run_command(argv, 8s).second;
}

// The body of GET /metrics as admin:public; "" on failure. `headers` gets the response head.
std::string scrape(const BrokerProcess& b, std::string* headers = nullptr) {
    TempDir tmp;
    std::string head = tmp.path() + "/head";
    auto [rc, body] = run_command(
            {"curl", "-s", "-m", "5", "-D", head, "-u", "admin:public", metrics_url(b)}, 8s);
    if (headers != nullptr) {
        std::ifstream in(head);
        std::stringstream ss;
        ss << in.rdbuf();
        *headers = ss.str();
    }
    return rc == 0 ? body : std::string();
}

// Samples by their full name with labels ("mqttd_clients", "x_bucket{le=\"1\"}") -> value.
std::map<std::string, double> parse(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        auto sp = line.rfind(' ');
        if (sp == std::string::npos) {
            ADD_FAILURE() << "not a sample line: " << line;
            continue;
        }
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return out;
}

double value(const std::map<std::string, double>& m, const std::string& name) {
    auto it = m.find(name);
    if (it == m.end()) {
        ADD_FAILURE() << "no sample " << name;
        return -1;
    }
    return it->second;
}

std::string listener_label(const BrokerProcess& b) {
    return "{listener=\"mqtt:tcp\",listen=\"127.0.0.1:" + std::to_string(b.port()) + "\"}";
}

// `promtool check metrics` on `text`: {exit status, everything it printed}.
std::pair<int, std::string> promtool_check(const std::string& text) {
    TempDir tmp;
    std::string file = tmp.path() + "/scrape.prom";
    {
        std::ofstream out(file);
        out << text;
    }
    return run_command({"sh", "-c", "promtool check metrics < '" + file + "' 2>&1"}, 20s);
}

TEST(Metrics, NeedsBasicAuthByDefault) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    EXPECT_EQ(metrics_status(broker), "401");
    EXPECT_EQ(metrics_status(broker, "admin:wrong"), "401");
    EXPECT_EQ(metrics_status(broker, "admin:public"), "200");
    std::string head;
    std::string body = scrape(broker, &head);
    EXPECT_NE(head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << head;
    EXPECT_NE(body.find("# TYPE mqttd_packets_received_total counter"), std::string::npos);
}

// Off opens /metrics only: the REST API keeps its auth.
TEST(Metrics, AuthOffOpensOnlyMetrics) {
    BrokerProcess broker({"api.metrics.auth=off"});
    ASSERT_TRUE(broker.running());
    EXPECT_EQ(metrics_status(broker), "200");
    auto [rc, code] = run_command({"curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                                   "http://127.0.0.1:" + std::to_string(broker.api_port()) +
                                           "/api/v2/monitoring/metrics"},
                                  8s);
    EXPECT_EQ(code, "401");
}

TEST(Metrics, BadAuthValueRefusedAtStart) {
    TempDir dir;
    auto [rc, out] = run_command({"sh", "-c",
                                  std::string("'") + mqttd_binary() +
                                          "' -c /dev/null --set api.metrics.auth=maybe "
                                          "--set node.data_dir='" +
                                          dir.path() + "' 2>&1"},
                                 10s);
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find("api.metrics.auth"), std::string::npos) << out;
}

// Counters move by exactly what the clients sent; gauges show the connections while they are
// open; a persistent session's QoS 1 messages go through the store's group commit and, while it
// is offline, into its queue.
TEST(Metrics, CountersMoveByTheTraffic) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    auto before = parse(scrape(broker));

    RawClient sub;
    sub.connect_ok(broker.port(), "metrics-sub", /*clean=*/false);
    ASSERT_EQ(sub.subscribe("m/#", 1), std::vector<uint8_t>{1});
    RawClient pub;
    pub.connect_ok(broker.port(), "metrics-pub");
    const std::string payload(10, 'x');
    for (int i = 0; i < 5; ++i) {
        pub.publish("m/q0", payload, 0);
    }
    for (int i = 0; i < 3; ++i) {
        pub.publish("m/q1", payload, 1);
    }
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(sub.receive_and_ack()) << "message " << i;
    }

    std::map<std::string, double> during;
    // The subscriber's last PUBACK is counted once its worker read it.
    ASSERT_TRUE(eventually([&] {
        during = parse(scrape(broker));
        return during["mqttd_packets_puback_received_total"] -
                       before["mqttd_packets_puback_received_total"] >=
               3;
    }));
    auto delta = [&](const std::string& name) {
        return value(during, name) - value(before, name);
    };
    EXPECT_EQ(delta("mqttd_messages_qos0_received_total"), 5);
    EXPECT_EQ(delta("mqttd_messages_qos1_received_total"), 3);
    EXPECT_EQ(delta("mqttd_messages_received_total"), 8);
    EXPECT_EQ(delta("mqttd_packets_publish_received_total"), 8);
    EXPECT_EQ(delta("mqttd_packets_publish_sent_total"), 8);
    EXPECT_EQ(delta("mqttd_packets_puback_sent_total"), 3);
    EXPECT_EQ(delta("mqttd_packets_puback_received_total"), 3);
    EXPECT_EQ(delta("mqttd_messages_qos1_sent_total"), 3);
    EXPECT_EQ(delta("mqttd_packets_connect_total"), 2);
    EXPECT_EQ(delta("mqttd_packets_subscribe_total"), 1);
    // Each QoS 0 PUBLISH is 2 + (2 + 4) + 10 bytes, each QoS 1 two more (its packet id).
    EXPECT_GE(delta("mqttd_bytes_received_total"), 5 * 18 + 3 * 20);
    EXPECT_EQ(value(during, "mqttd_clients"), 2);
    EXPECT_EQ(value(during, "mqttd_subscriptions"), 1);
    EXPECT_EQ(value(during, "mqttd_sessions"), 2);
    EXPECT_EQ(value(during, "mqttd_listener_connections" + listener_label(broker)), 2);
    EXPECT_GE(delta("mqttd_store_group_commit_batches_count"), 1);
    EXPECT_GE(delta("mqttd_store_write_duration_seconds_count"), 1);
    EXPECT_EQ(value(during, "mqttd_store_write_duration_seconds_count"),
              value(during, "mqttd_store_write_duration_seconds_bucket{le=\"+Inf\"}"));
    EXPECT_GT(value(during, "mqttd_store_disk_bytes"), 0);
    EXPECT_EQ(value(during, "mqttd_store_sessions"), 1);

    // Offline: 4 QoS 1 messages wait in the stored queue.
    sub.disconnect();
    ASSERT_TRUE(eventually([&] {
        return parse(scrape(broker))["mqttd_listener_connections" + listener_label(broker)] == 1;
    }));
    for (int i = 0; i < 4; ++i) {
        pub.publish("m/q1", payload, 1);
    }
    auto offline = parse(scrape(broker));
    EXPECT_EQ(value(offline, "mqttd_store_queued_messages"), 4);
    EXPECT_EQ(value(offline, "mqttd_clients"), 1);
    EXPECT_EQ(value(offline,
                    "mqttd_listener_shutdowns_total{listener=\"mqtt:tcp\",listen=\"127.0.0.1:" +
                            std::to_string(broker.port()) + "\",reason=\"closed\"}") -
                      value(before,
                            "mqttd_listener_shutdowns_total{listener=\"mqtt:tcp\",listen="
                            "\"127.0.0.1:" +
                                    std::to_string(broker.port()) + "\",reason=\"closed\"}"),
              1);
}

// With storage.sync every group commit syncs the WAL: the sync histogram counts them.
TEST(Metrics, WalSyncHistogramCountsSyncs) {
    BrokerProcess broker({"storage.sync=true"});
    ASSERT_TRUE(broker.running());
    auto before = parse(scrape(broker));
    RawClient sub;
    sub.connect_ok(broker.port(), "sync-sub", /*clean=*/false);
    sub.subscribe("s/#", 1);
    RawClient pub;
    pub.connect_ok(broker.port(), "sync-pub");
    for (int i = 0; i < 5; ++i) {
        pub.publish("s/t", "p", 1);  // one at a time: at least one sync each
    }
    auto after = parse(scrape(broker));
    EXPECT_EQ(value(after, "mqttd_store_sync"), 1);
    EXPECT_GE(value(after, "mqttd_store_wal_sync_duration_seconds_count") -
                      value(before, "mqttd_store_wal_sync_duration_seconds_count"),
              5);
    EXPECT_GT(value(after, "mqttd_store_wal_sync_duration_seconds_sum"), 0);
}

// Every family of a scrape is named in api/README.md (the database auth plugins' by the
// pattern mqttd_auth_<db>_...).
TEST(Metrics, EveryFamilyIsDocumented) {
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    std::ifstream in(std::string(MQTTD_SOURCE_DIR) + "/api/README.md");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string readme = ss.str();
    ASSERT_NE(readme.find("`mqttd_auth_<db>_queries_total`"), std::string::npos);
    std::istringstream scraped(scrape(broker));
    std::string line;
    int families = 0;
    while (std::getline(scraped, line)) {
        if (!line.starts_with("# TYPE ")) {
            continue;
        }
        ++families;
        std::string name = line.substr(7, line.find(' ', 7) - 7);
        if (name.starts_with("mqttd_auth_")) {
            continue;
        }
        EXPECT_TRUE(readme.find("`" + name + "`") != std::string::npos ||
                    readme.find("`" + name + "{") != std::string::npos)
                << name << " is not in api/README.md";
    }
    EXPECT_GT(families, 60);
}

// The check itself must be able to fail: promtool rejects a counter without _total.
TEST(Metrics, PromtoolRejectsABadExposition) {
    auto [rc, out] = promtool_check(
            "# HELP bad_counter x\n# TYPE bad_counter counter\n"
            "bad_counter 1\n");
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find("_total"), std::string::npos) << out;
}

// A scrape taken while 4 publishers send QoS 0 and QoS 1 to 2 subscribers (one persistent)
// passes `promtool check metrics` with nothing to say.
TEST(Metrics, PromtoolAcceptsAScrapeUnderLoad) {
    auto [vrc, version] = run_command({"promtool", "--version"}, 10s);
    ASSERT_EQ(vrc, 0) << "promtool missing: install the Debian package prometheus "
                         "(.ci/setup test does)";
    BrokerProcess broker;
    ASSERT_TRUE(broker.running());
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> sent{0};
    std::vector<std::thread> load;
    for (int s = 0; s < 2; ++s) {
        load.emplace_back([&, s] {
            RawClient c;
            c.connect_ok(broker.port(), "load-sub-" + std::to_string(s), s == 0);
            c.subscribe("load/#", 1);
            while (!stop) {
                auto p = c.read(200ms);  // nothing within 200 ms is no failure here
                if (p && p->type() == kPublish) {
                    c.ack(parse_publish(*p));
                }
            }
        });
    }
    std::this_thread::sleep_for(300ms);
    for (int p = 0; p < 4; ++p) {
        load.emplace_back([&, p] {
            RawClient c;
            c.connect_ok(broker.port(), "load-pub-" + std::to_string(p));
            for (int i = 0; !stop; ++i) {
                c.publish("load/" + std::to_string(p), std::string(64, 'p'),
                          static_cast<uint8_t>(i % 2));
                ++sent;
            }
        });
    }
    std::this_thread::sleep_for(1s);
    uint64_t sent_before = sent.load();
    std::string text = scrape(broker);
    std::this_thread::sleep_for(300ms);
    uint64_t sent_after = sent.load();
    stop = true;
    for (auto& t : load) {
        t.join();
    }
    ASSERT_FALSE(text.empty());
    EXPECT_GT(sent_after, sent_before) << "the load had stopped before the scrape";
    auto m = parse(text);
    EXPECT_GT(value(m, "mqttd_messages_qos1_received_total"), 0);
    EXPECT_GT(value(m, "mqttd_store_group_commit_batches_count"), 0);
    EXPECT_EQ(value(m, "mqttd_listener_connections" + listener_label(broker)), 6);

    auto [rc, out] = promtool_check(text);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(out, "") << "promtool found problems:\n" << out;
}

}  // namespace
}  // namespace mqttd::itest
