// The WAL scan against WAL files RocksDB itself wrote: clean, a torn tail, damage in the
// middle, a zeroed header (which RocksDB's reader skips without a word).
#include "storage/wal_scan.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "temp_dir.h"

namespace mqttd::storage {
namespace {

namespace fs = std::filesystem;

constexpr int kBatches = 200;

// kBatches single-Put writes (each one WAL record of one sequence number), closed without a
// flush so the WAL keeps them; returns the WAL file.
fs::path write_wal(const std::string& dir, size_t value_size = 100) {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(rocksdb::DB::Open(o, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (int i = 0; i < kBatches; ++i) {
        EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), "key" + std::to_string(i),
                            std::string(value_size, 'v'))
                            .ok());
    }
    EXPECT_TRUE(db->Close().ok());
    fs::path wal;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".log") {
            wal = std::max(wal, e.path());
        }
    }
    return wal;
}

void overwrite(const fs::path& file, uint64_t offset, const std::string& bytes) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good());
}

TEST(WalScan, CleanWalHasNoDamage) {
    mqttd::test::TempDir dir;
    ASSERT_FALSE(write_wal(dir.path()).empty());
    const WalScan scan = scan_wal(dir.path());
    EXPECT_TRUE(scan.error.empty()) << scan.error;
    EXPECT_FALSE(scan.damage.has_value());
    EXPECT_GE(scan.batches, static_cast<uint64_t>(kBatches));
}

TEST(WalScan, TruncatedLastRecordIsATornTail) {
    mqttd::test::TempDir dir;
    const fs::path wal = write_wal(dir.path());
    fs::resize_file(wal, fs::file_size(wal) - 30);
    const WalScan scan = scan_wal(dir.path());
    ASSERT_TRUE(scan.damage.has_value());
    EXPECT_TRUE(scan.damage->torn_tail());
    EXPECT_EQ(scan.damage->file, wal.string());
}

TEST(WalScan, ZeroedTailIsATornTail) {
    mqttd::test::TempDir dir;
    const fs::path wal = write_wal(dir.path());
    const auto size = fs::file_size(wal);
    overwrite(wal, size - 60, std::string(60, '\0'));
    const WalScan scan = scan_wal(dir.path());
    ASSERT_TRUE(scan.damage.has_value());
    EXPECT_TRUE(scan.damage->torn_tail());
}

TEST(WalScan, DamageWithRecordsAfterItIsNotATornTail) {
    mqttd::test::TempDir dir;
    const fs::path wal = write_wal(dir.path());
    const auto middle = fs::file_size(wal) / 2;
    overwrite(wal, middle, std::string(64, '\0'));
    const WalScan scan = scan_wal(dir.path());
    ASSERT_TRUE(scan.damage.has_value());
    const WalDamage& d = *scan.damage;
    EXPECT_FALSE(d.torn_tail());
    EXPECT_EQ(d.file, wal.string());
    EXPECT_LE(d.offset, middle);
    EXPECT_GT(d.offset + 200, middle);
    EXPECT_GT(d.batches_after, static_cast<uint64_t>(kBatches / 3));
    EXPECT_GT(d.first_seq_after, d.last_good_seq);
    EXPECT_GE(d.last_seq_after, d.first_seq_after);
}

// A flipped bit in a payload: a checksum mismatch, found at that record.
TEST(WalScan, FlippedBitIsFoundAtItsRecord) {
    mqttd::test::TempDir dir;
    const fs::path wal = write_wal(dir.path());
    const auto at = fs::file_size(wal) / 3;
    std::string byte(1, '\0');
    {
        std::ifstream in(wal, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(at));
        in.read(byte.data(), 1);
    }
    byte[0] = static_cast<char>(byte[0] ^ 0x10);
    overwrite(wal, at, byte);
    const WalScan scan = scan_wal(dir.path());
    ASSERT_TRUE(scan.damage.has_value());
    EXPECT_FALSE(scan.damage->torn_tail());
    EXPECT_LE(scan.damage->offset, at);
}

// Records spanning blocks (FIRST, MIDDLE, LAST): damage in one block, good records after.
TEST(WalScan, FragmentedRecordsAcrossBlocks) {
    mqttd::test::TempDir dir;
    const fs::path wal = write_wal(dir.path(), 20000);
    EXPECT_FALSE(scan_wal(dir.path()).damage.has_value());
    overwrite(wal, 32768 * 10 + 100, std::string(64, '\0'));
    const WalScan scan = scan_wal(dir.path());
    ASSERT_TRUE(scan.damage.has_value());
    EXPECT_FALSE(scan.damage->torn_tail());
}

}  // namespace
}  // namespace mqttd::storage
