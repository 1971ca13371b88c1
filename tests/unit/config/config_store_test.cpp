// Config against a real store (RocksDB in a temporary directory): values saved through
// set_runtime survive a restart and sit between the file and --set.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "config/config.h"
#include "storage/store.h"

namespace mqttd::config {
namespace {

class ConfigStore : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("mqttd_config_store_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        conf_ = (dir_ / "mqttd.conf").string();
        std::ofstream(conf_) << "node.data_dir = " << dir_.string() << "\n"
                             << "mqtt.allow_anonymous = false\n"
                             << "mqtt.broker.sys_interval = 30\n"
                             << "log.console.level = warning\n";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::unique_ptr<Config> load(CommandLine cl) {
        cl.config_file = conf_;
        auto cfg = Config::load(cl);
        EXPECT_TRUE(cfg.ok()) << cfg.error();
        return cfg.ok() ? std::move(cfg).value() : nullptr;
    }

    std::unique_ptr<storage::Store> open(const Config& cfg) {
        std::unique_ptr<storage::Store> store;
        const storage::Status st = storage::Store::open(cfg.store_options(), store);
        EXPECT_TRUE(st.is_ok()) << st.message();
        return store;
    }

    std::filesystem::path dir_;
    std::string conf_;
};

TEST_F(ConfigStore, SavedValuesSurviveRestartBetweenFileAndSet) {
    {
        auto cfg = load({});
        ASSERT_TRUE(cfg);
        EXPECT_EQ(cfg->db_dir(), (dir_ / "db").string());
        auto store = open(*cfg);
        ASSERT_TRUE(store);
        EXPECT_TRUE(cfg->apply_saved(*store).empty());
        ASSERT_TRUE(cfg->set_runtime("mqtt.allow_anonymous", "true", store.get()).ok());
        ASSERT_TRUE(cfg->set_runtime("mqtt.broker.sys_interval", "2m", store.get()).ok());
        ASSERT_TRUE(cfg->set_runtime("log.console.level", "debug", store.get()).ok());
        // Refused writes save nothing.
        EXPECT_FALSE(cfg->set_runtime("mqtt.acl_nomatch", "never", store.get()).ok());
        EXPECT_FALSE(cfg->set_runtime("mqtt.max_inflight", "5", store.get()).ok());
        EXPECT_EQ(store->get_config("mqtt.broker.sys_interval"), "120");  // canonical text
        EXPECT_FALSE(store->get_config("mqtt.acl_nomatch"));
        EXPECT_FALSE(store->get_config("mqtt.max_inflight"));
        store->close();
    }

    CommandLine cl;
    cl.sets = {{"log.console.level", "error"}};
    auto cfg = load(cl);
    ASSERT_TRUE(cfg);
    auto store = open(*cfg);
    ASSERT_TRUE(store);
    // Before the saved values: file and --set.
    EXPECT_FALSE(cfg->get_bool("mqtt.allow_anonymous"));
    EXPECT_EQ(cfg->get_int("mqtt.broker.sys_interval"), 30);

    EXPECT_TRUE(cfg->apply_saved(*store).empty());
    EXPECT_TRUE(cfg->get_bool("mqtt.allow_anonymous"));  // saved > file
    EXPECT_EQ(cfg->effective_source("mqtt.allow_anonymous"), Source::Saved);
    EXPECT_EQ(cfg->get_int("mqtt.broker.sys_interval"), 120);
    EXPECT_EQ(cfg->get_string("log.console.level"), "error");  // --set > saved
    EXPECT_EQ(cfg->effective_source("log.console.level"), Source::CommandLine);
    EXPECT_EQ(cfg->get_string("mqtt.acl_nomatch"), "allow");  // default, nothing saved
    EXPECT_EQ(cfg->effective_source("mqtt.acl_nomatch"), Source::Default);
    store->close();
}

TEST_F(ConfigStore, SavedValueThatNoLongerValidatesIsSkipped) {
    auto cfg = load({});
    ASSERT_TRUE(cfg);
    auto store = open(*cfg);
    ASSERT_TRUE(store);
    storage::WriteBatch batch;
    batch.put_config("mqtt.broker.sys_interval", "forever");
    ASSERT_TRUE(store->write(std::move(batch)).is_ok());
    const auto warnings = cfg->apply_saved(*store);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0],
              "saved config mqtt.broker.sys_interval: \"forever\" is not a duration (seconds, or "
              "a number with s, m, h or d), ignored");
    EXPECT_EQ(cfg->get_int("mqtt.broker.sys_interval"), 30);
    store->close();
}

TEST_F(ConfigStore, FailedSaveChangesNothing) {
    auto cfg = load({});
    ASSERT_TRUE(cfg);
    auto store = open(*cfg);
    ASSERT_TRUE(store);
    store->close();  // a closed store refuses writes
    int notified = 0;
    cfg->subscribe("mqtt.allow_anonymous", [&](const std::string&) { ++notified; });
    auto r = cfg->set_runtime("mqtt.allow_anonymous", "true", store.get());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, SetError::Kind::StoreFailed);
    EXPECT_EQ(r.error().message.rfind("mqtt.allow_anonymous: cannot save: ", 0), 0u)
            << r.error().message;
    EXPECT_FALSE(cfg->get_bool("mqtt.allow_anonymous"));
    EXPECT_EQ(cfg->effective_source("mqtt.allow_anonymous"), Source::File);
    EXPECT_EQ(notified, 0);
}

}  // namespace
}  // namespace mqttd::config
