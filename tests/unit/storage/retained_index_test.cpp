// RetainedIndex on its own: the walk per level, pruning, and readers beside a writer. The
// store's retained tests (rocks_store_test.cpp) check match_retained through it against a
// reference matcher.
#include "storage/retained_index.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/keys.h"

namespace mqttd::storage {
namespace {

std::vector<std::string> match(const RetainedIndex& index, const std::string& filter) {
    std::vector<std::string> keys;
    index.match(filter, keys);
    std::vector<std::string> topics;
    topics.reserve(keys.size());
    for (const auto& k : keys) {
        topics.push_back(keys::retained_topic(k));
    }
    return topics;
}

using Topics = std::vector<std::string>;

RetainedIndex& fill(RetainedIndex& index, const Topics& topics) {
    for (const auto& t : topics) {
        index.insert(keys::retained(t));
    }
    return index;
}

TEST(RetainedIndex, PlusVisitsOneLevelAndHashIncludesTheParent) {
    RetainedIndex index;
    fill(index, {"a", "a/b", "a/b/c", "a/c", "ab", "b/b"});
    EXPECT_EQ(match(index, "a/+"), (Topics{"a/b", "a/c"}));
    EXPECT_EQ(match(index, "+/b"), (Topics{"a/b", "b/b"}));
    EXPECT_EQ(match(index, "+"), (Topics{"a", "ab"}));
    EXPECT_EQ(match(index, "a/#"), (Topics{"a", "a/b", "a/b/c", "a/c"}));  // [MQTT-4.7.1-2]
    EXPECT_EQ(match(index, "a/b/#"), (Topics{"a/b", "a/b/c"}));
    EXPECT_EQ(match(index, "a/+/#"), (Topics{"a/b", "a/b/c", "a/c"}));
    EXPECT_EQ(match(index, "a/b/c"), (Topics{"a/b/c"}));
    EXPECT_EQ(match(index, "a/b/c/d"), Topics{});
    EXPECT_EQ(match(index, "x/#"), Topics{});
}

TEST(RetainedIndex, LeadingWildcardsSkipDollarTopics) {
    RetainedIndex index;
    fill(index, {"$SYS", "$SYS/x", "$x/b", "a/b", "x$/b"});
    EXPECT_EQ(match(index, "#"), (Topics{"a/b", "x$/b"}));  // [MQTT-4.7.2-1]
    EXPECT_EQ(match(index, "+/b"), (Topics{"a/b", "x$/b"}));
    EXPECT_EQ(match(index, "+/+"), (Topics{"a/b", "x$/b"}));
    EXPECT_EQ(match(index, "$SYS/#"), (Topics{"$SYS", "$SYS/x"}));
    EXPECT_EQ(match(index, "$x/+"), (Topics{"$x/b"}));
}

TEST(RetainedIndex, EmptyLevelsAreLevels) {
    RetainedIndex index;
    fill(index, {"/", "/a", "a/", "a//c", "a/b/c"});
    EXPECT_EQ(match(index, "+/+"), (Topics{"/", "/a", "a/"}));
    EXPECT_EQ(match(index, "/+"), (Topics{"/", "/a"}));
    EXPECT_EQ(match(index, "+/"), (Topics{"/", "a/"}));
    EXPECT_EQ(match(index, "a/+/c"), (Topics{"a//c", "a/b/c"}));
    EXPECT_EQ(match(index, "a//c"), (Topics{"a//c"}));
    EXPECT_EQ(match(index, "+"), Topics{});
}

TEST(RetainedIndex, KeysComeOutInByteOrder) {
    RetainedIndex index;
    // Inserted out of order, with UTF-8 above 0x7f (sorted as unsigned bytes, like RocksDB).
    Topics topics = {"b/1", "a", "ab", "a/b", "\xc3\xa9/x", "a/b/c", "a\x01", "ac/d"};
    fill(index, topics);
    std::vector<std::string> keys;
    index.match("#", keys);
    std::vector<std::string> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(keys, sorted);
    EXPECT_EQ(keys.size(), topics.size());
    keys.clear();
    index.match("+/#", keys);
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
    EXPECT_EQ(keys.size(), topics.size());
}

TEST(RetainedIndex, EraseKeepsOtherTopicsAndPrunesEmptyNodes) {
    RetainedIndex index;
    fill(index, {"a", "a/b/c", "a/b/d"});
    EXPECT_EQ(index.size(), 3u);
    index.insert(keys::retained("a/b/c"));  // twice: one topic
    EXPECT_EQ(index.size(), 3u);
    index.erase(keys::retained("a/b"));  // a path, not a topic
    index.erase(keys::retained("x/y"));  // absent
    EXPECT_EQ(index.size(), 3u);
    index.erase(keys::retained("a/b/c"));
    EXPECT_EQ(match(index, "a/#"), (Topics{"a", "a/b/d"}));
    index.erase(keys::retained("a/b/d"));
    EXPECT_EQ(match(index, "a/+"), Topics{});
    EXPECT_EQ(match(index, "a/#"), (Topics{"a"}));
    index.erase(keys::retained("a"));
    EXPECT_EQ(index.size(), 0u);
    EXPECT_EQ(match(index, "#"), Topics{});
    index.insert(keys::retained("a/b/c"));
    EXPECT_EQ(match(index, "+/+/+"), (Topics{"a/b/c"}));
}

TEST(RetainedIndex, HashAfterHashIgnoresTheRest) {
    RetainedIndex index;
    fill(index, {"a", "b/x"});
    // Not a valid filter (the broker refuses it); the walk on RocksDB stops at '#' too.
    EXPECT_EQ(match(index, "#/x"), (Topics{"a", "b/x"}));
}

TEST(RetainedIndex, ReadersBesideAWriter) {
    RetainedIndex index;
    for (int d = 0; d < 100; ++d) {
        index.insert(keys::retained("dev/" + std::to_string(d) + "/temp"));
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r) {
        readers.emplace_back([&] {
            std::vector<std::string> keys;
            while (!stop.load()) {
                keys.clear();
                index.match("dev/+/temp", keys);
                EXPECT_GE(keys.size(), 100u);  // the 100 stable topics are always there
                EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
            }
        });
    }
    for (int i = 0; i < 2000; ++i) {
        const std::string k = keys::retained("dev/x" + std::to_string(i % 10) + "/temp");
        index.insert(k);
        index.erase(k);
    }
    stop.store(true);
    for (auto& t : readers) {
        t.join();
    }
    EXPECT_EQ(index.size(), 100u);
}

}  // namespace
}  // namespace mqttd::storage
