// Routes: the cluster's route table in etcd, both halves.
//   This node's routes: `<cluster>/routes/<filter>/<node>` (empty value), put under the
//   node's lease (Membership::lease) when its first local subscription to a filter arrives
//   and deleted with the last one; a shared subscription routes as its group
//   (RouteTable::route_key: "$share/g/f"), and is also put in the RouteTable as this node's
//   at once, so the node is a candidate when a group's node is picked. The keys go with the lease
//   when the node stops or dies, and are put again under a new lease after a lost one.
//   The other nodes' routes: the prefix is listed and then watched from the revision after
//   the listing into a RouteTable (relisted whenever the watch breaks).
// One thread does both, so workers never wait for etcd: add()/remove() only count and mark
// the filter; the thread writes what changed (retrying while etcd is out of reach).
//
// Thread-safety: add(), remove() from any thread; the rest on the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/route_table.h"

namespace mqttd::cluster {

class Membership;

class Routes {
public:
    struct Options {
        std::vector<std::string> endpoints;
        std::string cluster = "mqttd";
        std::string node;
    };
    using Log = std::function<void(bool warning, const std::string& line)>;
    // `node_id`: the RouteTable's id of a node name (any thread).
    Routes(Options options,
           const Membership& membership,
           RouteTable& table,
           std::function<uint32_t(const std::string&)> node_id,
           Log log);
    ~Routes();
    Routes(const Routes&) = delete;
    Routes& operator=(const Routes&) = delete;

    void start();
    // Stops the thread; the keys stay until the lease goes (Membership::stop revokes it).
    void stop();

    // A local subscription of `filter` (whole) is this node's first / its last went.
    void add(std::string_view filter);
    void remove(std::string_view filter);
    // A persistent session's subscription of `filter` is the first / the last went: the
    // route's value is "" while it has one (durable: forwarded QoS 1/2 messages wait for this
    // node's Ack), "c" while only clean sessions subscribe.
    void durable(std::string_view filter, bool added);

    // `node`'s route key in etcd for the route `key` (RouteTable::route_key) of `cluster`:
    // "<cluster>/routes/<key>/<node>". The takeover's transaction writes these too.
    static std::string etcd_key(const std::string& cluster,
                                std::string_view key,
                                const std::string& node);

private:
    void run();
    // Writes what changed; false when etcd failed (retried later).
    bool write_changes();
    bool resync();
    // `listing`: a resync's listing (its revision is set after it), else a watch's events.
    void apply(const std::vector<WatchEvent>& events, bool listing = false);
    std::string key_of(const std::string& filter) const;

    Options options_;
    const Membership& membership_;
    RouteTable& table_;
    std::function<uint32_t(const std::string&)> node_id_;
    Log log_;
    EtcdClient etcd_;
    const std::string prefix_;  // "<cluster>/routes/"

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    struct Count {
        uint32_t filters = 0;  // local filters with this route key
        uint32_t durable = 0;  // of which with a persistent session's subscription
    };
    std::map<std::string, Count> counts_;  // route key → its local filters
    std::set<std::string> dirty_;

    // the thread's: route key → the durable flag written
    std::map<std::string, bool> written_;
    int64_t written_lease_ = 0;
    std::atomic<bool> watch_broken_{true};
    std::unique_ptr<EtcdClient::Watch> watch_;
    std::thread thread_;
};

}  // namespace mqttd::cluster
