// 58 The store's file system at run time: full (ENOSPC) and turned read-only (EROFS).
//
// Full: the store (<data_dir>/db) is a small tmpfs that the test fills with a file while the
// broker runs. MQTT 5 QoS 1 / QoS 2 publishes that need a write get PUBACK / PUBREC 0x97, a
// 3.1.1 one has its connection closed without a PUBACK, a persistent CONNECT gets CONNACK 0x97;
// QoS 0 (and QoS 1 that needs no write) keeps flowing; REST and /metrics say so. Once the file
// is deleted the broker takes writes again by itself, and after kill -9 and a restart exactly
// the acknowledged messages are there.
//
// Read-only: the store is an ext4 image (loop device, errors=remount-ro) whose file system the
// test turns read-only through ext4's own error path (/sys/fs/ext4/<dev>/trigger_fs_error), as a
// disk error would. Publishes are refused as above, one log line says why, the broker runs on;
// writes stay refused until a restart on a writable file system, which keeps what was
// acknowledged. (A plain `mount -o remount,ro` is refused by Linux while RocksDB holds files
// open for writing: "mount point is busy".)
//
// Mounting needs root (CAP_SYS_ADMIN); where it is not possible the tests skip and say why.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "mqtt5.h"

namespace mqttd::itest {
namespace {

using nlohmann::json;

constexpr uint8_t kQuotaExceeded = 0x97;

// A file system mounted on `dir` for the test's lifetime (unmounted, lazily, at the end).
class Mount {
public:
    Mount() = default;
    ~Mount() { unmount(); }
    Mount(const Mount&) = delete;
    Mount& operator=(const Mount&) = delete;

    // tmpfs of `mib` MiB; false (with why()) when mounting is not possible here.
    bool tmpfs(const std::string& dir, int mib) {
        dir_ = dir;
        std::filesystem::create_directories(dir);
        const std::string opts = "size=" + std::to_string(mib) + "m";
        if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
            why_ = std::string("mount -t tmpfs: ") + std::strerror(errno);
            return false;
        }
        mounted_ = true;
        return true;
    }
    // ext4 in a `mib` MiB image file, on a loop device, errors=remount-ro.
    bool ext4(const std::string& dir, const std::string& image, int mib) {
        dir_ = dir;
        std::filesystem::create_directories(dir);
        auto [mk_rc, mk_out] = run_command({"sh", "-c",
                                            "truncate -s " + std::to_string(mib) + "M " + image +
                                                    " && mkfs.ext4 -q -F " + image + " 2>&1"},
                                           20s);
        if (mk_rc != 0) {
            why_ = "mkfs.ext4: " + mk_out;
            return false;
        }
        auto [rc, out] = run_command(
                {"sh", "-c", "mount -o loop,errors=remount-ro " + image + " " + dir + " 2>&1"},
                20s);
        if (rc != 0) {
            why_ = "mount -o loop: " + out;
            return false;
        }
        mounted_ = true;
        return true;
    }
    // Mounts `image` on the directory again (after unmount()).
    bool remount_ext4(const std::string& image) {
        auto [rc, out] = run_command(
                {"sh", "-c", "mount -o loop,errors=remount-ro " + image + " " + dir_ + " 2>&1"},
                20s);
        mounted_ = rc == 0;
        why_ = out;
        return mounted_;
    }
    void unmount() {
        if (mounted_) {
            ::umount2(dir_.c_str(), MNT_DETACH);
            mounted_ = false;
        }
    }
    const std::string& why() const { return why_; }

private:
    std::string dir_;
    std::string why_;
    bool mounted_ = false;
};

// Writes `path` until the file system has no room left; returns the bytes written.
size_t fill(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
    if (fd < 0) {
        return 0;
    }
    std::vector<char> chunk(1 << 20, 'x');
    size_t total = 0;
    for (size_t len = chunk.size(); len > 0; len /= 2) {
        for (;;) {
            ssize_t n = ::write(fd, chunk.data(), len);
            if (n <= 0) {
                break;
            }
            total += static_cast<size_t>(n);
        }
    }
    ::close(fd);
    return total;
}

json rest(const BrokerProcess& b, const std::string& path) {
    std::string body = rest_get(b.api_port(), path);
    json j = json::parse(body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path << ": " << body;
    return j.is_discarded() ? json::object() : j;
}

// management/nodes/<node>'s result.
json node(const BrokerProcess& b) {
    json list = rest(b, "management/nodes");
    if (!list.contains("result") || list["result"].empty()) {
        ADD_FAILURE() << "management/nodes: " << list.dump();
        return json::object();
    }
    return list["result"][0];
}

std::string metrics(const BrokerProcess& b) {
    auto [rc, body] = run_command({"curl", "-s", "-m", "5", "-u", "admin:public",
                                   "http://127.0.0.1:" + std::to_string(b.api_port()) + "/metrics"},
                                  8s);
    return rc == 0 ? body : std::string();
}

// The value of an unlabelled sample in a /metrics body; -1 when absent.
double sample(const std::string& body, const std::string& name) {
    size_t at = 0;
    while ((at = body.find(name + " ", at)) != std::string::npos) {
        if (at == 0 || body[at - 1] == '\n') {
            return std::stod(body.substr(at + name.size() + 1));
        }
        at += name.size();
    }
    return -1;
}

v5::ConnectSpec persistent(const std::string& id, bool clean_start) {
    v5::ConnectSpec c;
    c.client_id = id;
    c.clean_start = clean_start;
    c.props.u32(v5::kSessionExpiry, 3600);
    return c;
}

v5::ConnectSpec clean(const std::string& id) {
    v5::ConnectSpec c;
    c.client_id = id;
    return c;
}

// One QoS 1 PUBLISH from `c` and its PUBACK's reason (-1: no PUBACK).
int publish_qos1(v5::Client5& c,
                 const std::string& topic,
                 const std::string& payload,
                 uint16_t id) {
    c.raw().send(v5::publish(topic, payload, 1, id));
    auto p = c.raw().read(kWait);
    if (!p || p->type() != kPuback) {
        ADD_FAILURE() << "no PUBACK for " << payload << (p ? ": " + describe(*p) : "");
        return -1;
    }
    auto r = v5::parse_reasoned(*p);
    EXPECT_TRUE(r && r->packet_id == id);
    return r ? r->reason : -1;
}

// Every payload the persistent session `id` gets on reconnecting, acknowledging each.
std::multiset<std::string> drain(const BrokerProcess& b, const std::string& id) {
    v5::Client5 c;
    auto ack = c.connect_ok(b.port(), persistent(id, false));
    EXPECT_TRUE(ack && ack->session_present);
    std::multiset<std::string> got;
    while (auto packet = c.raw().read(1500ms)) {  // until the queue is quiet
        auto p = v5::parse_publish(*packet);
        if (!p) {
            ADD_FAILURE() << "expected PUBLISH, got " << describe(*packet);
            break;
        }
        got.insert(p->payload);
        c.ack(*p);
    }
    return got;
}

// ---------------------------------------------------------------------------------------------
// A full file system

TEST(DiskFull, RefusedWhileFullResumesWhenFreedAndKeepsWhatWasAcknowledged) {
    BrokerProcess broker({"node.workers=2"}, false);
    const std::string db = broker.data_dir() + "/db";
    Mount m;
    // 12 MiB: RocksDB's files at open (MANIFEST preallocated 4 MiB, OPTIONS, LOG) fit with room
    // to spare; its WAL preallocation (16 MiB: storage's max_total_wal_size) never does, so a WAL
    // write fails as soon as the file system is full.
    if (!m.tmpfs(db, 12)) {
        GTEST_SKIP() << "cannot mount a tmpfs for the store here: " << m.why();
    }
    ASSERT_NO_FATAL_FAILURE(broker.start());

    // Two offline persistent sessions (their queues need store writes), and an online clean
    // subscriber (QoS 0 needs none).
    for (const char* keeper : {"keeper", "keeper2"}) {
        v5::Client5 s;
        ASSERT_TRUE(s.connect_ok(broker.port(), persistent(keeper, true)));
        ASSERT_EQ(s.subscribe({{"d/#", 1}}), (std::vector<uint8_t>{1}));
        s.disconnect();
    }
    v5::Client5 live;
    ASSERT_TRUE(live.connect_ok(broker.port(), clean("live")));
    ASSERT_EQ(live.subscribe({{"q/#", 1}}), (std::vector<uint8_t>{1}));

    v5::Client5 pub;
    ASSERT_TRUE(pub.connect_ok(broker.port(), clean("pub")));
    std::multiset<std::string> acked;
    uint16_t id = 0;
    for (int i = 0; i < 20; ++i) {
        std::string payload = num("before-", i);
        ASSERT_EQ(publish_qos1(pub, "d/x", payload, ++id), 0);
        acked.insert(payload);
    }

    const size_t filled = fill(db + "/filler");
    ASSERT_GT(filled, 0u);
    // The WAL's last page may still take a record or two: publish until the store refuses.
    // Whatever was acknowledged meanwhile is kept.
    std::string payload(2000, 'p');
    int refused_at = -1;
    for (int i = 0; i < 200 && refused_at < 0; ++i) {
        std::string p = num("filling-", i) + payload;
        int reason = publish_qos1(pub, "d/x", p, ++id);
        ASSERT_TRUE(reason == 0 || reason == kQuotaExceeded) << reason;
        if (reason == 0) {
            acked.insert(p);
        } else {
            refused_at = i;
        }
    }
    ASSERT_GE(refused_at, 0) << "the store never refused a write on a full file system";

    // While full: QoS 1 and QoS 2 that need a write are refused with 0x97...
    EXPECT_EQ(publish_qos1(pub, "d/x", "refused-1", ++id), kQuotaExceeded);
    pub.raw().send(v5::publish("d/x", "refused-2", 2, ++id));
    {
        auto p = pub.raw().read(kWait);
        ASSERT_TRUE(p && p->type() == kPubrec) << (p ? describe(*p) : "nothing");
        auto r = v5::parse_reasoned(*p);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->packet_id, id);
        EXPECT_EQ(r->reason, kQuotaExceeded);
    }
    // ... a 3.1.1 publisher has no reason code: its connection closes, no PUBACK ...
    {
        RawClient old;
        EXPECT_FALSE(old.connect_ok(broker.port(), "old", true));  // no session present
        ASSERT_FALSE(HasFailure());
        old.send(pkt::publish("d/x", "refused-3", 1, 7));
        int skipped = 0;
        EXPECT_TRUE(old.wait_closed(kWait, &skipped));
        EXPECT_EQ(skipped, 0) << "a packet (a PUBACK?) came before the close";
    }
    // ... a persistent session cannot be stored, a clean one connects ...
    {
        v5::Client5 c;
        ASSERT_TRUE(c.open(broker.port()));
        auto ack = c.connect(persistent("newcomer", true));
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->reason, kQuotaExceeded);
    }
    // ... and QoS 0, or QoS 1 that needs no write, still flows to an online client.
    ASSERT_EQ(pub.publish("q/zero", "qos0-while-full", 0), 0);
    ASSERT_EQ(pub.publish("q/one", "qos1-no-write", 1), 0);
    ++id;
    {
        auto p0 = live.expect_publish();
        ASSERT_TRUE(p0);
        EXPECT_EQ(p0->payload, "qos0-while-full");
        auto p1 = live.receive_and_ack();
        ASSERT_TRUE(p1);
        EXPECT_EQ(p1->payload, "qos1-no-write");
    }

    // A REST write is refused with the spec's code for an internal failure, and a message.
    {
        auto [rc, out] = run_command(
                {"curl", "-s", "-m", "5", "-u", "admin:public", "-X", "POST", "-d",
                 R"({"username":"ops","password":"secret1","tags":"x"})",
                 "http://127.0.0.1:" + std::to_string(broker.api_port()) + "/api/v2/users"},
                8s);
        json j = json::parse(out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << out;
        EXPECT_EQ(j.value("code", 0), 102) << out;
        EXPECT_NE(j.value("message", "").find("store"), std::string::npos) << out;
    }

    // REST and /metrics say so.
    json n = node(broker);
    EXPECT_EQ(n.value("node_status", ""), "Degraded") << n.dump();
    EXPECT_EQ(n.value("store_status", ""), "no_space") << n.dump();
    EXPECT_NE(n.value("store_error", "").find("No space"), std::string::npos) << n.dump();
    json stats = rest(broker, "monitoring/nodes");
    EXPECT_EQ(stats["result"][0].value("node_status", ""), "Degraded") << stats.dump();
    std::string body = metrics(broker);
    EXPECT_EQ(sample(body, "mqttd_store_writable"), 0) << body;
    EXPECT_EQ(sample(body, "mqttd_store_out_of_space"), 1);
    EXPECT_GE(sample(body, "mqttd_store_refused_writes_total"), 3);
    EXPECT_EQ(count_of(broker.log_text(), "store is out of space"), 1u) << broker.log_text();

    // Space returns: the broker takes writes again by itself, without a restart.
    ASSERT_TRUE(std::filesystem::remove(db + "/filler"));
    ASSERT_TRUE(
            eventually([&] { return node(broker).value("store_status", "") == "writable"; }, 10s))
            << node(broker).dump();
    EXPECT_EQ(node(broker).value("node_status", ""), "Running");
    EXPECT_EQ(sample(metrics(broker), "mqttd_store_resumed_total"), 1);
    EXPECT_EQ(count_of(broker.log_text(), "store takes writes again"), 1u);
    for (int i = 0; i < 10; ++i) {
        std::string p = num("after-", i);
        ASSERT_EQ(publish_qos1(pub, "d/x", p, ++id), 0);
        acked.insert(p);
    }
    {
        v5::Client5 c;
        ASSERT_TRUE(c.open(broker.port()));
        auto ack = c.connect(persistent("newcomer", true));
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->reason, 0);
    }

    // Without a restart, a queue gets exactly what was acknowledged: the refused publishes left
    // no entry to wait for.
    {
        std::multiset<std::string> live_got = drain(broker, "keeper2");
        EXPECT_TRUE(live_got == acked)
                << "got " << live_got.size() << ", acknowledged " << acked.size();
    }

    // Everything acknowledged, before the disk filled and after, survives kill -9; nothing
    // refused is there.
    broker.kill9();
    ASSERT_NO_FATAL_FAILURE(broker.start());
    std::multiset<std::string> got = drain(broker, "keeper");
    EXPECT_EQ(got.size(), acked.size());
    EXPECT_TRUE(got == acked) << "got " << got.size() << ", acknowledged " << acked.size();
    for (const char* refused : {"refused-1", "refused-2", "refused-3"}) {
        EXPECT_EQ(got.count(refused), 0u) << refused;
    }
}

// ---------------------------------------------------------------------------------------------
// A file system that turns read-only

TEST(DiskReadOnly, RefusedWithOneLineUntilRestartedOnAWritableFileSystem) {
    // storage.sync: what was acknowledged is on the disk, not only in the page cache, which a
    // file system that fails drops (as a power cut would).
    BrokerProcess broker({"node.workers=2", "storage.sync=true"}, false);
    const std::string db = broker.data_dir() + "/db";
    const std::string image = broker.data_dir() + "/db.img";
    Mount m;
    if (!m.ext4(db, image, 32)) {
        GTEST_SKIP() << "cannot loop-mount an ext4 image for the store here: " << m.why();
    }
    // The loop device behind the mount, for ext4's sysfs error trigger.
    std::string dev;
    {
        std::ifstream mounts("/proc/mounts");
        std::string src, at, rest;
        while (mounts >> src >> at && std::getline(mounts, rest)) {
            if (at == db) {
                dev = std::filesystem::path(src).filename().string();
            }
        }
    }
    const std::string trigger = "/sys/fs/ext4/" + dev + "/trigger_fs_error";
    if (dev.empty() || ::access(trigger.c_str(), W_OK) != 0) {
        GTEST_SKIP() << "no writable " << trigger << " to turn the file system read-only";
    }
    ASSERT_NO_FATAL_FAILURE(broker.start());
    {
        v5::Client5 s;
        ASSERT_TRUE(s.connect_ok(broker.port(), persistent("keeper", true)));
        ASSERT_EQ(s.subscribe({{"d/#", 1}}), (std::vector<uint8_t>{1}));
        s.disconnect();
    }
    v5::Client5 live;
    ASSERT_TRUE(live.connect_ok(broker.port(), clean("live")));
    ASSERT_EQ(live.subscribe({{"q/#", 0}}), (std::vector<uint8_t>{0}));
    v5::Client5 pub;
    ASSERT_TRUE(pub.connect_ok(broker.port(), clean("pub")));
    std::multiset<std::string> acked;
    uint16_t id = 0;
    for (int i = 0; i < 20; ++i) {
        std::string p = num("before-", i);
        ASSERT_EQ(publish_qos1(pub, "d/x", p, ++id), 0);
        acked.insert(p);
    }

    { std::ofstream(trigger) << "mqttd test: read-only file system\n"; }
    ASSERT_TRUE(eventually([&] {
        std::ifstream mounts("/proc/mounts");
        std::string line;
        while (std::getline(mounts, line)) {
            if (line.find(" " + db + " ") != std::string::npos) {
                return line.find(" ro,") != std::string::npos ||
                       line.find(",ro,") != std::string::npos ||
                       line.find("emergency_ro") != std::string::npos;
            }
        }
        return false;
    }));

    // Every QoS 1 publish that needs a write is refused; one log line says why.
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(publish_qos1(pub, "d/x", num("refused-", i), ++id), kQuotaExceeded);
    }
    ASSERT_EQ(pub.publish("q/zero", "qos0-while-read-only", 0), 0);
    auto p0 = live.expect_publish();
    ASSERT_TRUE(p0);
    EXPECT_EQ(p0->payload, "qos0-while-read-only");
    const std::string log = broker.log_text();
    EXPECT_EQ(count_of(log, "no further writes are acknowledged"), 1u) << log;
    EXPECT_NE(log.find("Read-only file system"), std::string::npos) << log;
    json n = node(broker);
    EXPECT_EQ(n.value("node_status", ""), "Degraded") << n.dump();
    EXPECT_EQ(n.value("store_status", ""), "failed") << n.dump();
    EXPECT_EQ(sample(metrics(broker), "mqttd_store_writable"), 0);
    EXPECT_FALSE(broker.exited()) << "mqttd crashed";

    // A read-only store is not resumed: still refused a while later.
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(publish_qos1(pub, "d/x", "still-refused", ++id), kQuotaExceeded);

    // The way out: stop, make the file system writable (here: unmount and mount again), start.
    broker.kill9();
    m.unmount();
    ASSERT_TRUE(m.remount_ext4(image)) << m.why();
    ASSERT_NO_FATAL_FAILURE(broker.start());
    EXPECT_EQ(node(broker).value("store_status", ""), "writable");
    std::multiset<std::string> got = drain(broker, "keeper");
    EXPECT_TRUE(got == acked) << "got " << got.size() << ", acknowledged " << acked.size();
}

}  // namespace
}  // namespace mqttd::itest
