// RetainedIndex: the topics of the `retained` family as a trie of levels in memory, so that a
// wildcard filter visits only the children of the nodes it reaches (internal to storage/).
//
// WHY. On RocksDB alone a '+' costs one or two seeks per distinct value of its level (the
// level-encoded walk in rocks_reads.cpp), so `bld/+/dev/37/temp` among 1000 buildings pays
// ~3000 seeks for 1000 messages. Here a '+' iterates the children of one node and a literal is
// one map lookup; only the topics that match are read from RocksDB (match_retained, one
// MultiGet per chunk). Like BifroMQ's in-memory retained topic index beside its KV range.
//
// MATCHING follows the walk on RocksDB exactly: a '+' or '#' at the first level skips values
// starting with '$' [MQTT-4.7.2-1]; "a/#" matches "a" itself [MQTT-4.7.1-2]; levels may be
// empty ("a//b", "/a"); '#' ends the filter (levels after it are ignored); keys come out in
// ascending byte order (std::string compares as unsigned char, as RocksDB's bytewise
// comparator does), so callers see the same sequence as from the walk.
//
// INVARIANT. The index holds every key of the family, and possibly keys just being written or
// removed: the group writer inserts a group's retained puts before its DB::Write and erases
// its deletes only after the write succeeded. A reader therefore confirms each key with a read
// and skips the ones not found; a topic is never missed while it is on disk.
//
// Memory: one map node per distinct level value (about 130 bytes with its Node on x86-64, level
// names up to 15 bytes stored inline).
//
// Ownership: owned by RocksStore. Thread-safety: every member takes the index's lock (writer
// lock for insert/erase, reader lock for match), so any thread may call them.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/rw_lock.h"
#include "common/thread_annotations.h"

namespace mqttd::storage {

class RetainedIndex {
public:
    RetainedIndex() = default;
    RetainedIndex(const RetainedIndex&) = delete;
    RetainedIndex& operator=(const RetainedIndex&) = delete;

    // `key` is a level-encoded retained key (keys::retained): levels separated by 0x00.
    void insert(std::string_view key) MQTTD_EXCLUDES(lock_);
    // Removes `key` and the nodes left without topic and children; nothing when absent.
    void erase(std::string_view key) MQTTD_EXCLUDES(lock_);
    // Appends the keys of the topics `filter` (MQTT wildcards, '/'-separated) matches, in
    // ascending order.
    void match(std::string_view filter, std::vector<std::string>& out) const MQTTD_EXCLUDES(lock_);
    // Topics held.
    size_t size() const MQTTD_EXCLUDES(lock_);

private:
    struct Node;
    using Children = std::map<std::string, std::unique_ptr<Node>, std::less<>>;
    struct Node {
        Children children;
        bool retained = false;  // the topic of this node's path is in the index
    };

    mutable RwLock lock_;
    Node root_ MQTTD_GUARDED_BY(lock_);
    size_t size_ MQTTD_GUARDED_BY(lock_) = 0;
};

}  // namespace mqttd::storage
