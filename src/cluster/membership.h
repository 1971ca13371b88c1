// Cluster membership in etcd (src/cluster/README.md):
//   <cluster>/members/<node>  what the node says about itself (JSON), kept after it stops,
//                             so the cluster remembers its members;
//   <cluster>/alive/<node>    the same, bound to the node's lease: it vanishes when the node
//                             stops or its lease expires (cluster.lease_ttl).
// One thread keeps the lease alive (every third of its TTL), puts both keys again when the lease
// was lost, and mirrors the cluster's prefix through a watch (relisting when the watch breaks);
// `nodes()` answers from that mirror without a round trip.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/admin.h"
#include "cluster/etcd_client.h"

namespace mqttd::cluster {

class Membership final : public broker::ClusterView {
public:
    struct Options {
        std::vector<std::string> endpoints;
        std::string cluster = "mqttd";
        std::string node;
        int64_t lease_ttl_s = 10;
        // This node's record, as management/nodes shows it on every member.
        std::string version;
        std::string otp_release;
        int64_t started_at_ms = 0;
        std::string api;   // the REST API's address as others reach it; empty when off
        std::string link;  // the node-to-node link's address (cluster.listener)
    };
    using Log = std::function<void(bool warning, const std::string& line)>;

    Membership(Options options, Log log);
    ~Membership() override;
    Membership(const Membership&) = delete;
    Membership& operator=(const Membership&) = delete;

    // Joins: a first attempt at once (false, with `error`, when etcd cannot be reached; the
    // thread keeps trying), then the keep-alive thread.
    bool start(std::string* error = nullptr);
    // Leaves: revokes the lease (the alive key goes at once) and stops the thread.
    void stop();

    std::vector<Node> nodes() const override;
    // Through the `api` address of the node's alive record (cluster/peer_api.h), at most
    // kApiTimeoutMs.
    std::optional<PeerAnswer> ask(const std::string& node,
                                  const PeerRequest& req,
                                  std::string* why) const override;
    static constexpr long kApiTimeoutMs = 3000;
    // Whether the last call to etcd succeeded.
    bool etcd_reachable() const { return reachable_; }
    // The lease this node's keys are bound to (0 while it has none); the route keys
    // (routes.h) are put under it too, and again when it changes.
    int64_t lease() const { return lease_.load(); }
    // The alive members other than this node, name → their link's address (from their
    // records; those without one are left out).
    std::map<std::string, std::string> peer_links() const;

private:
    void run();
    bool join();    // a new lease, both keys
    bool resync();  // lists the prefix and watches from the revision after it
    void apply(const std::vector<WatchEvent>& events);
    void set_reachable(bool ok, const std::string& why);

    Options options_;
    const std::string record_;  // the JSON of the node's keys
    Log log_;
    EtcdClient etcd_;
    const std::string prefix_;  // "<cluster>/"
    std::atomic<bool> reachable_{false};
    std::atomic<bool> watch_broken_{true};
    // Written by the keep-alive thread (and start() before it runs); read by lease().
    std::atomic<int64_t> lease_{0};

    mutable std::mutex mutex_;
    std::map<std::string, std::string> members_;  // node → record
    std::map<std::string, std::string> alive_;    // node → record

    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::unique_ptr<EtcdClient::Watch> watch_;
    std::thread thread_;
};

}  // namespace mqttd::cluster
