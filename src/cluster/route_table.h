// RouteTable: the other nodes' routes — topic filter → the nodes that have a local subscriber
// to it — as this node learns them from etcd (`<cluster>/routes/<filter>/<node>`, Routes).
// A publish consults it after the local match, only when it is not empty. A shared
// subscription's route ("$share/g/f") is kept at its filter f as a group with its own node
// list, this node's own included (Routes adds it), so a publish can pick one node per group.
//
// Layout: a trie of filter levels like TopicIndex's (exact children, a '+' child, a '#'
// child), each node holding the nodes (small ids) whose filter ends there. match() walks it
// as TopicIndex::match does, including 3.1.1 4.7.1 ("a/#" matches "a") and [MQTT-4.7.2-1]
// (a topic starting with '$' skips the wildcards at level 0).
//
// The table's revision is the etcd revision of the last route event applied (Routes sets it
// once every event of that revision is in): a message matched on it carries it as its route
// stamp, which decides who delivers it to a session that moves between nodes (README,
// "Messages during a move").
//
// Thread-safety: add/remove/clear/set_revision take the exclusive lock (the etcd watch's
// thread); match() takes the shared lock (any worker) and appends to the caller's vector.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/rw_lock.h"

namespace mqttd::cluster {

class RouteTable {
public:
    RouteTable();
    ~RouteTable();
    RouteTable(const RouteTable&) = delete;
    RouteTable& operator=(const RouteTable&) = delete;

    // The route a subscription's filter makes: a plain filter itself, a shared one its
    // group's broker::shared_key() ("$queue/a/+" routes as "$share/$queue/a/+").
    static std::string route_key(std::string_view filter);

    // `node` has the route `key` (a route_key()); false when it had already (its `durable`
    // flag is updated then). A plain route that is not durable is "clean": only clean
    // sessions subscribe there, so a message forwarded for it alone is not waited for. A
    // group's route is always taken as durable.
    bool add(std::string_view key, uint32_t node, bool durable = true);
    // false when it had none.
    bool remove(std::string_view key, uint32_t node);
    // Every route of `node` goes (the node left); the number removed.
    size_t remove_node(uint32_t node);
    void clear();

    struct Target {
        uint32_t node = 0;
        bool durable = true;  // one of its routes matching the topic is durable
        bool operator==(const Target&) const = default;
    };
    // Appends the nodes with a plain route matching `topic` to `out`, each once, ascending;
    // returns the revision of the table they were matched on.
    int64_t match(std::string_view topic, std::vector<Target>& out) const;
    // Every event up to `revision` is applied.
    void set_revision(int64_t revision);
    // The revision; read before empty(), an empty table is one at (at least) this revision.
    int64_t revision() const { return revision_.load(std::memory_order_acquire); }
    // Sorts out[from..] by node and keeps each node once, durable when any of its entries is.
    static void merge(std::vector<Target>& out, size_t from = 0);
    // Appends (group key, node) for every group matching `topic`: one of its nodes, round
    // robin, skipping those `usable` refuses (a node whose link is down) unless it refuses all.
    void pick_groups(std::string_view topic,
                     std::vector<std::pair<std::string, uint32_t>>& out,
                     const std::function<bool(uint32_t)>& usable = {}) const;
    // Cheap check before pick_groups(): whether any group route is known.
    bool has_groups() const { return groups_.load(std::memory_order_relaxed) != 0; }
    // Cheap check before match(): whether any route is known.
    bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }
    size_t size() const { return count_.load(std::memory_order_relaxed); }

private:
    struct Node;
    mutable RwLock mutex_;
    std::unique_ptr<Node> root_ MQTTD_PT_GUARDED_BY(mutex_);
    std::atomic<size_t> count_{0};   // routes held
    std::atomic<size_t> groups_{0};  // of which group routes
    std::atomic<int64_t> revision_{0};
};

}  // namespace mqttd::cluster
