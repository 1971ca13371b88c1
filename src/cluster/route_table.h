// RouteTable: the other nodes' routes — topic filter → the nodes that have a local subscriber
// to it — as this node learns them from etcd (`<cluster>/routes/<filter>/<node>`, Routes).
// A publish consults it after the local match, only when it is not empty.
//
// Layout: a trie of filter levels like TopicIndex's (exact children, a '+' child, a '#'
// child), each node holding the nodes (small ids) whose filter ends there. match() walks it
// as TopicIndex::match does, including 3.1.1 4.7.1 ("a/#" matches "a") and [MQTT-4.7.2-1]
// (a topic starting with '$' skips the wildcards at level 0).
//
// Thread-safety: add/remove/clear take the exclusive lock (the etcd watch's thread); match()
// takes the shared lock (any worker) and appends to the caller's vector.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/rw_lock.h"

namespace mqttd::cluster {

class RouteTable {
public:
    RouteTable();
    ~RouteTable();
    RouteTable(const RouteTable&) = delete;
    RouteTable& operator=(const RouteTable&) = delete;

    // The plain filter a route is kept under: "$share/g/a/+" and "$queue/a/+" route as "a/+"
    // (the group picks its member on the node that receives the message).
    static std::string_view route_filter(std::string_view filter);

    // `node` has a route for `filter`; false when it had already.
    bool add(std::string_view filter, uint32_t node);
    // false when it had none.
    bool remove(std::string_view filter, uint32_t node);
    // Every route of `node` goes (the node left); the number removed.
    size_t remove_node(uint32_t node);
    void clear();

    // Appends the nodes with a route matching `topic` to `out`, each once, ascending.
    void match(std::string_view topic, std::vector<uint32_t>& out) const;
    // Cheap check before match(): whether any route is known.
    bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }
    size_t size() const { return count_.load(std::memory_order_relaxed); }

private:
    struct Node;
    mutable RwLock mutex_;
    std::unique_ptr<Node> root_ MQTTD_PT_GUARDED_BY(mutex_);
    std::atomic<size_t> count_{0};  // routes held
};

}  // namespace mqttd::cluster
