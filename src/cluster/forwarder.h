// Forwarder: the cluster layer's side of the publish path (broker::ClusterRouter). It owns
// the route table of the other nodes (RouteTable, kept by Routes from etcd) and the
// node-to-node link (PeerLink), and joins them to the broker:
//   - a local subscription's first / last filter → Routes (this node's route keys);
//   - a message published here → once to every other node with a matching route (and to
//     every node when it is retained, so each stores it), with the publisher's token when
//     its PUBACK / PUBREC must wait: the peer's Ack completes the token;
//   - a message another node forwarded → Worker::publish_from_peer on the worker of its
//     publisher's client id (so one publisher's messages keep their order), batched per
//     worker and read turn; once it is durable there, the Ack goes back;
//   - client-id ownership and sessions moving between nodes → Takeovers (takeovers.h),
//     whose frames share the link.
// With no remote route and no retained flag, forward() is one atomic load.
//
// Thread-safety: the ClusterRouter methods from any worker; start/stop from main.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "broker/cluster_router.h"
#include "cluster/peer_link.h"
#include "cluster/route_table.h"
#include "cluster/routes.h"
#include "cluster/takeovers.h"

namespace mqttd::cluster {

class Membership;

class Forwarder final : public broker::ClusterRouter {
public:
    struct Options {
        std::vector<std::string> endpoints;
        std::string cluster = "mqttd";
        std::string node;
        std::string listen;  // cluster.listener
        size_t max_queue_bytes = size_t{64} << 20;
        int64_t forward_timeout_ms = 30000;  // cluster.forward_timeout
        int64_t takeover_timeout_ms = 5000;  // cluster.takeover_timeout
    };
    using Log = std::function<void(bool warning, const std::string& line)>;

    Forwarder(broker::Broker& broker, const Membership& membership, Options options, Log log);
    ~Forwarder() override;
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    // Binds the link (an error line when it cannot), routes the subscriptions recovered from
    // the store and starts the threads. REQUIRES: the worker threads not started.
    std::string start();
    // Stops the link (what waits for a peer is answered "failed") and the routes' thread.
    void stop();

    void filter_added(std::string_view filter) override;
    void filter_removed(std::string_view filter) override;
    uint32_t forward(const broker::MessagePtr& msg, const broker::Token* token) override;
    void peer_publish_done(uint64_t cookie, bool ok) override;
    void claim_client(const std::string& client_id,
                      bool clean_start,
                      broker::ClaimCallback done) override;
    void session_installed(uint64_t ticket,
                           bool stored,
                           std::function<void(bool owned)> done) override;
    void client_released(const std::string& client_id) override;

    const RouteTable& routes() const { return table_; }

private:
    uint32_t node_id(const std::string& name);
    std::string node_name(uint32_t id);
    void on_publish(const PublishFrame& f, uint64_t cookie);
    void on_turn();

    broker::Broker& broker_;
    const Membership& membership_;
    Options options_;
    Log log_;
    RouteTable table_;

    std::mutex names_mutex_;
    std::unordered_map<std::string, uint32_t> ids_;
    std::vector<std::string> names_;

    // the link thread's: forwarded messages of this read turn, per worker
    std::vector<std::vector<std::pair<broker::MessagePtr, uint64_t>>> incoming_;

    Routes routes_;
    PeerLink link_;
    Takeovers takeovers_;
};

}  // namespace mqttd::cluster
