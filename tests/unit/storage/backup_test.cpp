// Backups (storage/backup.h) and the read-only secondary store (Options::secondary_dir) on a
// real RocksDB in per-test temporary directories.
#include "storage/backup.h"

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "storage/store.h"
#include "temp_dir.h"

namespace mqttd::storage {
namespace {

using mqttd::test::TempDir;

std::unique_ptr<Store> open_store(const std::string& dir, Options o = {}) {
    o.dir = dir;
    std::unique_ptr<Store> s;
    Status st = Store::open(o, s);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return s;
}

void put_session(Store& store, const std::string& id, const std::string& config_value) {
    WriteBatch b;
    SessionRecord s;
    s.client_id = id;
    b.put_session(s);
    b.put_config("k", config_value);
    ASSERT_TRUE(store.write(std::move(b)).is_ok());
}

TEST(StoreBackup, IsAConsistentCopyThatLaterWritesDoNotReach) {
    TempDir t;
    auto store = open_store(t.sub("db"));
    put_session(*store, "a", "1");
    auto made = create_backup(*store, t.sub("backups"), "one");
    ASSERT_TRUE(made.ok()) << made.error().to_string();
    EXPECT_EQ(made->name, "one");
    EXPECT_EQ(made->path, t.sub("backups") + "/one");
    EXPECT_GT(made->size, 0u);
    EXPECT_GT(made->sequence, 0u);
    put_session(*store, "b", "2");

    auto list = list_backups(t.sub("backups"));
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].sequence, made->sequence);
    EXPECT_EQ((*list)[0].size, made->size);

    ASSERT_TRUE(restore_backup(made->path, t.sub("restored/db"), false).is_ok());
    auto restored = open_store(t.sub("restored/db"));
    EXPECT_TRUE(restored->get_session("a").has_value());
    EXPECT_FALSE(restored->get_session("b").has_value());
    EXPECT_EQ(restored->get_config("k"), "1");
    EXPECT_EQ(restored->count(Counted::Sessions), 1u);
}

TEST(StoreBackup, NamesAreCheckedAndTakenOnce) {
    TempDir t;
    auto store = open_store(t.sub("db"));
    EXPECT_FALSE(create_backup(*store, t.sub("backups"), "../x").ok());
    EXPECT_FALSE(create_backup(*store, t.sub("backups"), ".hidden").ok());
    ASSERT_TRUE(create_backup(*store, t.sub("backups"), "x").ok());
    auto again = create_backup(*store, t.sub("backups"), "x");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code(), Status::Code::InvalidArgument);
    auto generated = create_backup(*store, t.sub("backups"), "");
    ASSERT_TRUE(generated.ok());
    EXPECT_EQ(generated->name.rfind("backup-", 0), 0u);
    EXPECT_EQ(list_backups(t.sub("backups"))->size(), 2u);
    EXPECT_TRUE(delete_backup(t.sub("backups"), "x").is_ok());
    EXPECT_TRUE(delete_backup(t.sub("backups"), "x").is_not_found());
    EXPECT_EQ(list_backups(t.sub("backups"))->size(), 1u);
    EXPECT_TRUE(list_backups(t.sub("none"))->empty());
}

TEST(StoreBackup, RestoreRefusesAStoreThatIsThereUnlessForcedAndNeverALiveOne) {
    TempDir t;
    auto store = open_store(t.sub("db"));
    put_session(*store, "a", "1");
    auto made = create_backup(*store, t.sub("backups"), "one");
    ASSERT_TRUE(made.ok());
    {
        auto other = open_store(t.sub("other/db"));
        put_session(*other, "z", "9");
    }
    Status refused = restore_backup(made->path, t.sub("other/db"), false);
    EXPECT_EQ(refused.code(), Status::Code::InvalidArgument) << refused.to_string();
    ASSERT_TRUE(restore_backup(made->path, t.sub("other/db"), true).is_ok());
    {
        auto other = open_store(t.sub("other/db"));
        EXPECT_TRUE(other->get_session("a").has_value());
        EXPECT_FALSE(other->get_session("z").has_value());
    }
    // The store of `store` is open (locked): not even --force replaces it.
    EXPECT_EQ(restore_backup(made->path, t.sub("db"), true).code(), Status::Code::Busy);
    EXPECT_TRUE(store->get_session("a").has_value());
    EXPECT_TRUE(restore_backup(t.sub("nothing"), t.sub("x/db"), false).is_not_found());
    EXPECT_FALSE(std::filesystem::exists(t.sub("x/db")));
}

TEST(SecondaryStore, ReadsBesideARunningStoreAndRefusesWrites) {
    TempDir t;
    auto store = open_store(t.sub("db"));
    put_session(*store, "a", "1");
    Options o;
    o.secondary_dir = t.sub("secondary");
    std::filesystem::create_directories(o.secondary_dir);
    o.create_if_missing = false;
    auto reader = open_store(t.sub("db"), o);
    ASSERT_NE(reader, nullptr);
    EXPECT_TRUE(reader->get_session("a").has_value());
    EXPECT_EQ(reader->sessions(PageRequest{}).items.size(), 1u);
    EXPECT_EQ(reader->count(Counted::Sessions), 1u);
    WriteBatch b;
    SessionRecord s;
    s.client_id = "b";
    b.put_session(s);
    EXPECT_EQ(reader->write(std::move(b)).code(), Status::Code::Stopped);
    // The primary goes on writing meanwhile.
    put_session(*store, "c", "2");
    EXPECT_TRUE(store->get_session("c").has_value());

    Options missing = o;
    std::unique_ptr<Store> none;
    missing.dir = t.sub("nowhere");
    EXPECT_TRUE(Store::open(missing, none).is_not_found());
}

}  // namespace
}  // namespace mqttd::storage
