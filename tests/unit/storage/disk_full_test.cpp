// The store's write errors, classified (storage/group_writer.h write_error) and handled
// (storage/committer.h, OUT OF SPACE): a full file system is waited out and resumed, on a real
// RocksDB in a real small tmpfs; any other failure stays sticky. Mounting a tmpfs needs root
// (CAP_SYS_ADMIN): without it the tmpfs tests skip and say why.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rocksdb/status.h>

#include "storage/group_writer.h"
#include "storage/store.h"
#include "temp_dir.h"

namespace mqttd::storage {
namespace {

using namespace std::chrono_literals;
using mqttd::test::TempDir;

TEST(WriteError, NoSpaceIsRecoverableAnythingElseIsNot) {
    // As RocksDB's posix layer reports them (IOError with the errno text; ENOSPC with its
    // NoSpace subcode).
    const Status full =
            write_error("/d", rocksdb::Status::NoSpace("While appending to file: /d/000004.log",
                                                       "No space left on device"));
    EXPECT_TRUE(full.is_no_space()) << full.to_string();
    EXPECT_NE(full.message().find("/d"), std::string::npos);
    const Status lost_subcode =
            write_error("/d", rocksdb::Status::IOError("While appending to file: /d/000004.log",
                                                       "No space left on device"));
    EXPECT_TRUE(lost_subcode.is_no_space()) << lost_subcode.to_string();
    for (const char* errno_text :
         {"Read-only file system", "Input/output error", "No such file or directory"}) {
        const Status s =
                write_error("/d", rocksdb::Status::IOError("While appending to file", errno_text));
        EXPECT_EQ(s.code(), Status::Code::IoError) << s.to_string();
    }
    EXPECT_TRUE(write_error("/d", rocksdb::Status::Corruption("bad block")).is_corruption());
}

// A tmpfs of `mib` MiB on `dir` for the test's lifetime.
class Tmpfs {
public:
    bool mount(const std::string& dir, int mib) {
        dir_ = dir;
        std::filesystem::create_directories(dir);
        const std::string opts = "size=" + std::to_string(mib) + "m";
        if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
            why_ = std::strerror(errno);
            return false;
        }
        mounted_ = true;
        return true;
    }
    ~Tmpfs() {
        if (mounted_) {
            ::umount2(dir_.c_str(), MNT_DETACH);
        }
    }
    const std::string& why() const { return why_; }

private:
    std::string dir_;
    std::string why_;
    bool mounted_ = false;
};

// Writes `path` until the file system is full.
void fill(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::vector<char> chunk(1 << 20, 'x');
    for (size_t len = chunk.size(); len > 0; len /= 2) {
        while (::write(fd, chunk.data(), len) > 0) {}
    }
    ::close(fd);
}

WriteBatch config(const std::string& key) {
    WriteBatch b;
    b.put_config(key, std::string(1000, 'v'));
    return b;
}

TEST(StoreDiskFull, WaitsForSpaceAndResumesKeepingWhatWasWritten) {
    TempDir tmp;
    const std::string mnt = tmp.sub("fs");
    Tmpfs fs;
    // 12 MiB: the store's files at open fit; its WAL preallocation (16 MiB) does not, so a WAL
    // write fails as soon as the file system is full.
    if (!fs.mount(mnt, 12)) {
        GTEST_SKIP() << "cannot mount a tmpfs here: " << fs.why();
    }
    std::atomic<int> no_space_reports{0};
    std::atomic<int> resumed{0};
    Options o;
    o.dir = mnt + "/db";
    o.resume_interval_ms = 50;
    o.on_no_space = [&](const Status& s) {
        EXPECT_TRUE(s.is_no_space()) << s.to_string();
        ++no_space_reports;
    };
    o.on_resumed = [&](uint64_t) {
        ++resumed;
    };
    o.on_sticky_error = [](const Status& s) {
        ADD_FAILURE() << "sticky: " << s.to_string();
    };
    std::unique_ptr<Store> store;
    ASSERT_TRUE(Store::open(o, store).is_ok());
    std::vector<std::string> written;
    for (int i = 0; i < 10; ++i) {
        std::string key = "before/" + std::to_string(i);
        ASSERT_TRUE(store->write(config(key)).is_ok());
        written.push_back(key);
    }

    ASSERT_NO_FATAL_FAILURE(fill(mnt + "/filler"));
    // The WAL's last page may take a record or two more.
    Status failed;
    for (int i = 0; i < 100 && failed.is_ok(); ++i) {
        std::string key = "filling/" + std::to_string(i);
        failed = store->write(config(key));
        if (failed.is_ok()) {
            written.push_back(key);
        }
    }
    ASSERT_TRUE(failed.is_no_space()) << failed.to_string();
    EXPECT_TRUE(store->error().is_ok()) << "out of space is not sticky";
    StoreHealth h = store->health();
    EXPECT_EQ(h.state, StoreHealth::State::NoSpace);
    EXPECT_NE(h.error.find("No space left on device"), std::string::npos) << h.error;
    // Refused while waiting, without a write.
    Status refused = store->write(config("refused"));
    EXPECT_TRUE(refused.is_no_space()) << refused.to_string();
    EXPECT_GE(store->health().refused_writes, 2u);
    EXPECT_EQ(no_space_reports.load(), 1);
    // Still waiting a few resume attempts later: there is no space.
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(store->health().state, StoreHealth::State::NoSpace);
    EXPECT_EQ(resumed.load(), 0);

    ASSERT_TRUE(std::filesystem::remove(mnt + "/filler"));
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (store->health().state != StoreHealth::State::Writable &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(store->health().state, StoreHealth::State::Writable) << store->health().error;
    EXPECT_EQ(store->health().resumed, 1u);
    EXPECT_EQ(resumed.load(), 1);
    for (int i = 0; i < 10; ++i) {
        std::string key = "after/" + std::to_string(i);
        ASSERT_TRUE(store->write(config(key)).is_ok());
        written.push_back(key);
    }
    store->close();
    store.reset();

    Options again;
    again.dir = o.dir;
    ASSERT_TRUE(Store::open(again, store).is_ok());
    for (const auto& key : written) {
        EXPECT_TRUE(store->get_config(key)) << key;
    }
    EXPECT_FALSE(store->get_config("refused"));
    EXPECT_EQ(store->config_with_prefix("").size(), written.size());
}

TEST(StoreDiskFull, AnOtherWriteErrorStaysSticky) {
    TempDir tmp;
    std::atomic<bool> fail{false};
    std::atomic<int> sticky{0};
    Options o;
    o.dir = tmp.sub("db");
    o.resume_interval_ms = 20;
    o.fail_write_for_test = [&] {
        return fail.load();
    };
    o.on_sticky_error = [&](const Status&) {
        ++sticky;
    };
    o.on_no_space = [](const Status& s) {
        ADD_FAILURE() << "no space: " << s.to_string();
    };
    std::unique_ptr<Store> store;
    ASSERT_TRUE(Store::open(o, store).is_ok());
    fail = true;
    EXPECT_EQ(store->write(config("lost")).code(), Status::Code::IoError);
    fail = false;
    std::this_thread::sleep_for(100ms);  // no resume for an I/O error
    EXPECT_EQ(store->health().state, StoreHealth::State::Failed);
    EXPECT_EQ(store->write(config("after")).code(), Status::Code::Stopped);
    EXPECT_EQ(sticky.load(), 1);
    EXPECT_EQ(store->health().refused_writes, 2u);
}

}  // namespace
}  // namespace mqttd::storage
