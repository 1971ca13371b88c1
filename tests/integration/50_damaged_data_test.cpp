// 50 Damaged data (issue 16; DESIGN.md, Bad input): 50 QoS 1 messages acknowledged into an
// offline persistent session, kill -9, then the test damages the store's files itself. A torn
// WAL tail is dropped; a damaged WAL record with complete writes after it, a damaged table file
// or MANIFEST stops startup with exit code 65 and one line naming the file; --recover (or
// storage.wal_recovery = point_in_time) proceeds knowingly, logging what it dropped, and keeps
// the damaged files.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace mqttd::itest {
namespace {

namespace fs = std::filesystem;

constexpr int kMessages = 50;
constexpr int kExitDamagedStore = 65;

std::string payload(int i) {
    return num("message-", i) + std::string(80, 'x');
}

// A persistent QoS 1 subscriber "keeper" on dmg/t goes offline; kMessages QoS 1 messages are
// published one at a time (each PUBACK read before the next), then kill -9.
void fill_and_kill(BrokerProcess& broker) {
    {
        RawClient sub;
        ASSERT_FALSE(sub.connect_ok(broker.port(), "keeper", false));
        ASSERT_EQ(sub.subscribe("dmg/t", 1), (Bytes{1}));
        sub.disconnect();
    }
    RawClient pub;
    pub.connect_ok(broker.port(), "dmg-pub");
    for (int i = 0; i < kMessages; ++i) {
        ASSERT_NO_FATAL_FAILURE(pub.publish("dmg/t", payload(i), 1));
    }
    broker.kill9();
}

// What "keeper" gets on reconnect, acknowledged.
std::vector<std::string> delivered(BrokerProcess& broker) {
    RawClient c;
    c.connect_ok(broker.port(), "keeper", false);
    std::vector<std::string> out;
    while (auto p = c.read(1000ms)) {
        if (p->type() != kPublish) {
            ADD_FAILURE() << "expected PUBLISH, got " << describe(*p);
            continue;
        }
        auto m = parse_publish(*p);
        c.send(pkt::puback(m.packet_id));
        out.push_back(m.payload);
    }
    c.disconnect();
    return out;
}

// Expects payload(0) .. payload(n - 1) in order, each once; returns n.
size_t expect_prefix(const std::vector<std::string>& got) {
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i], payload(static_cast<int>(i))) << "message " << i;
    }
    return got.size();
}

std::string db_dir(const BrokerProcess& b) {
    return b.data_dir() + "/db";
}

// The files of `dir` whose names end in `suffix`, sorted by name.
std::vector<fs::path> files_ending(const std::string& dir, const std::string& suffix) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.is_regular_file() && e.path().filename().string().ends_with(suffix)) {
            out.push_back(e.path());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Overwrites `len` bytes at `offset` with zeros.
void zero_bytes(const fs::path& file, uint64_t offset, size_t len) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << file;
    f.seekp(static_cast<std::streamoff>(offset));
    const std::string zeros(len, '\0');
    f.write(zeros.data(), static_cast<std::streamsize>(len));
    ASSERT_TRUE(f.good()) << file;
}

// The lines of `text` that mqttd's one-line startup error starts with.
std::vector<std::string> error_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("mqttd: ")) {
            out.push_back(line);
        }
    }
    return out;
}

bool has_damaged_copy(const BrokerProcess& b) {
    for (const auto& e : fs::directory_iterator(b.data_dir())) {
        if (e.path().filename().string().starts_with("db.damaged-")) {
            return true;
        }
    }
    return false;
}

// The live WAL file after the kill: the highest numbered one.
fs::path live_wal(const BrokerProcess& b) {
    auto logs = files_ending(db_dir(b), ".log");
    if (logs.empty()) {
        ADD_FAILURE() << "no WAL file in " << db_dir(b);
        return {};
    }
    return logs.back();
}

// A crash or power cut cuts the last write short: the tail is dropped, with a warning, and
// everything before it is delivered.
TEST(DamagedData, TornWalTailIsDroppedWithAWarning) {
    BrokerProcess broker;
    ASSERT_NO_FATAL_FAILURE(fill_and_kill(broker));
    const fs::path wal = live_wal(broker);
    ASSERT_FALSE(wal.empty());
    const auto size = fs::file_size(wal);
    fs::resize_file(wal, size - 20);
    ASSERT_NO_FATAL_FAILURE(broker.start());
    EXPECT_NE(broker.last_output().find("torn tail"), std::string::npos) << broker.last_output();
    const size_t n = expect_prefix(delivered(broker));
    EXPECT_GE(n, static_cast<size_t>(kMessages - 1));
}

// 64 zero bytes in the middle of the WAL, with acknowledged records after them: no silent
// start. One line with the file and the offset; --recover keeps the records before the damage
// and says how many write batches it dropped.
TEST(DamagedData, DamagedWalRecordRefusesStartThenRecoverDropsKnowingly) {
    BrokerProcess broker;
    ASSERT_NO_FATAL_FAILURE(fill_and_kill(broker));
    const fs::path wal = live_wal(broker);
    ASSERT_FALSE(wal.empty());
    ASSERT_NO_FATAL_FAILURE(zero_bytes(wal, fs::file_size(wal) / 2, 64));

    EXPECT_EQ(broker.run_until_exit(), kExitDamagedStore);
    const auto lines = error_lines(broker.last_output());
    ASSERT_EQ(lines.size(), 1u) << broker.last_output();
    EXPECT_NE(lines[0].find(wal.string() + " is damaged at offset "), std::string::npos)
            << lines[0];
    EXPECT_NE(lines[0].find("--recover"), std::string::npos) << lines[0];
    // Refusing wrote nothing: the same answer again.
    EXPECT_EQ(broker.run_until_exit(), kExitDamagedStore);

    broker.set_args({"--recover"});
    ASSERT_NO_FATAL_FAILURE(broker.start());
    const std::string log = broker.last_output();
    EXPECT_NE(log.find("point-in-time recovery keeps sequences up to"), std::string::npos) << log;
    EXPECT_NE(log.find("write batches (sequences "), std::string::npos) << log;
    EXPECT_TRUE(has_damaged_copy(broker));
    const size_t n = expect_prefix(delivered(broker));
    EXPECT_GT(n, 0u);
    EXPECT_LT(n, static_cast<size_t>(kMessages));

    // Recovered for good: the next plain start is clean and strict again.
    broker.stop();
    broker.set_args({});
    ASSERT_NO_FATAL_FAILURE(broker.start());
    EXPECT_EQ(broker.last_output().find("damaged"), std::string::npos) << broker.last_output();
}

TEST(DamagedData, WalRecoveryKeyIsTheSameAsRecover) {
    BrokerProcess broker;
    ASSERT_NO_FATAL_FAILURE(fill_and_kill(broker));
    const fs::path wal = live_wal(broker);
    ASSERT_FALSE(wal.empty());
    ASSERT_NO_FATAL_FAILURE(zero_bytes(wal, fs::file_size(wal) / 2, 64));
    broker.set_args({"--set", "storage.wal_recovery=point_in_time"});
    ASSERT_NO_FATAL_FAILURE(broker.start());
    EXPECT_NE(broker.last_output().find("point-in-time recovery"), std::string::npos);
    const size_t n = expect_prefix(delivered(broker));
    EXPECT_LT(n, static_cast<size_t>(kMessages));
}

// The acknowledged messages in table files (a restart flushes what the WAL held), then 64
// bytes of the largest table zeroed: the start-up checksum check names the file; --recover
// repairs a copy, keeps the damaged directory, and what is delivered is never invented.
TEST(DamagedData, DamagedTableFileRefusesStartThenRecoverRepairsACopy) {
    BrokerProcess broker;
    ASSERT_NO_FATAL_FAILURE(fill_and_kill(broker));
    ASSERT_NO_FATAL_FAILURE(broker.start());
    broker.kill9();
    auto tables = files_ending(db_dir(broker), ".sst");
    ASSERT_FALSE(tables.empty());
    const fs::path largest = *std::max_element(tables.begin(), tables.end(),
                                               [](const fs::path& a, const fs::path& b) {
                                                   return fs::file_size(a) < fs::file_size(b);
                                               });
    ASSERT_NO_FATAL_FAILURE(zero_bytes(largest, fs::file_size(largest) / 3, 64));

    EXPECT_EQ(broker.run_until_exit(), kExitDamagedStore);
    const auto lines = error_lines(broker.last_output());
    ASSERT_EQ(lines.size(), 1u) << broker.last_output();
    EXPECT_NE(lines[0].find(largest.filename().string()), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("--recover"), std::string::npos) << lines[0];

    broker.set_args({"--recover"});
    ASSERT_NO_FATAL_FAILURE(broker.start());
    EXPECT_NE(broker.last_output().find("repaired by RocksDB's RepairDB"), std::string::npos)
            << broker.last_output();
    EXPECT_TRUE(has_damaged_copy(broker));
    std::set<std::string> seen;
    for (const auto& m : delivered(broker)) {
        EXPECT_TRUE(seen.insert(m).second) << "delivered twice: " << m;
    }
    for (const auto& m : seen) {
        EXPECT_TRUE(m.starts_with("message-")) << m;
    }
}

// A damaged MANIFEST: one line naming it; --recover rebuilds it on a copy from the table files
// and the WAL, and every acknowledged message is still there.
TEST(DamagedData, DamagedManifestRefusesStartThenRecoverRepairsACopy) {
    BrokerProcess broker;
    ASSERT_NO_FATAL_FAILURE(fill_and_kill(broker));
    auto manifests = files_ending(db_dir(broker), "");
    std::erase_if(manifests, [](const fs::path& p) {
        return !p.filename().string().starts_with("MANIFEST-");
    });
    ASSERT_FALSE(manifests.empty());
    std::ifstream current(db_dir(broker) + "/CURRENT");
    std::string name;
    std::getline(current, name);
    const fs::path manifest = fs::path(db_dir(broker)) / name;
    ASSERT_TRUE(fs::exists(manifest)) << manifest;
    ASSERT_NO_FATAL_FAILURE(zero_bytes(manifest, fs::file_size(manifest) / 2, 64));

    EXPECT_EQ(broker.run_until_exit(), kExitDamagedStore);
    const auto lines = error_lines(broker.last_output());
    ASSERT_EQ(lines.size(), 1u) << broker.last_output();
    EXPECT_NE(lines[0].find("MANIFEST"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("--recover"), std::string::npos) << lines[0];

    broker.set_args({"--recover"});
    ASSERT_NO_FATAL_FAILURE(broker.start());
    EXPECT_NE(broker.last_output().find("repaired by RocksDB's RepairDB"), std::string::npos)
            << broker.last_output();
    EXPECT_TRUE(has_damaged_copy(broker));
    EXPECT_EQ(expect_prefix(delivered(broker)), static_cast<size_t>(kMessages));
}

}  // namespace
}  // namespace mqttd::itest
