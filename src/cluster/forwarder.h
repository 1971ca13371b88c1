// Forwarder: the cluster layer's side of the publish path (broker::ClusterRouter). It owns
// the route table of the other nodes (RouteTable, kept by Routes from etcd) and the
// node-to-node link (PeerLink), and joins them to the broker:
//   - a local subscription's first / last filter → Routes (this node's route keys);
//   - a message published here → once to every other node with a matching route (and to
//     every node when it is retained, so each stores it), with the publisher's token when
//     its PUBACK / PUBREC must wait: the peer's Ack completes the token;
//   - a shared subscription group with members on several nodes → one of those nodes per
//     message, round robin (pick_shared); the message goes to it naming the group;
//   - the retained set: a node asks each peer, the first time it links to it after the
//     node started, for the peer's whole set (RetainedRequest), which a thread of the peer
//     sends as copies; each is stored if the node has none on its topic or an older one
//     (Worker::adopt_retained);
//   - a message another node forwarded → Worker::publish_from_peer on the worker of its
//     publisher's client id (so one publisher's messages keep their order), batched per
//     worker and read turn; once it is durable there, the Ack goes back;
//   - client-id ownership and sessions moving between nodes → Takeovers (takeovers.h),
//     whose frames share the link.
// With no remote route and no retained flag, forward() is one atomic load.
//
// Thread-safety: the ClusterRouter methods from any worker; start/stop from main.
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
        // cluster.listener.ssl: the link's TLS contexts (PeerLink::Options); null = plain TCP.
        std::shared_ptr<net::TlsContext> tls_server;
        std::shared_ptr<net::TlsContext> tls_client;
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
    void filter_durable(std::string_view filter, bool durable) override;
    void pick_shared(std::string_view topic, broker::SharedPicks& picks) override;
    uint32_t forward(const broker::MessagePtr& msg,
                     const broker::Token* token,
                     const broker::SharedPicks& picks,
                     int64_t& stamp) override;
    uint32_t relay(const std::string& node,
                   const std::string& client_id,
                   const broker::MessagePtr& msg,
                   uint8_t qos,
                   bool retain,
                   const broker::SubscriptionIds& subscription_ids,
                   const broker::Token* token) override;
    int64_t move_window_ms() const override {
        return options_.forward_timeout_ms + options_.takeover_timeout_ms;
    }
    void peer_publish_done(uint64_t cookie, bool ok) override;
    void retained_deleted(std::string_view topic, int64_t at_ms) override;
    // How long a retained deletion is remembered for the nodes that come back (tombstones).
    static constexpr int64_t kTombstoneMs = int64_t{24} * 3600 * 1000;
    static constexpr size_t kMaxTombstones = 100000;
    void claim_client(const std::string& client_id,
                      bool clean_start,
                      broker::ClaimCallback done) override;
    void session_installed(uint64_t ticket,
                           bool stored,
                           std::function<void(bool owned, int64_t revision)> done) override;
    void client_released(const std::string& client_id) override;

    const RouteTable& routes() const { return table_; }

private:
    uint32_t node_id(const std::string& name);
    std::string node_name(uint32_t id);
    void on_publish(const PublishFrame& f, uint64_t cookie);
    void on_turn();
    void on_up(const std::string& node);
    // A control frame from a peer: RetainedRequest here, the takeover frames to takeovers_.
    void on_control(const std::string& peer, FrameType type, std::string_view body);
    // The retained set sender's thread: sends this node's retained set to each node that asked.
    void send_retained_sets();

    broker::Broker& broker_;
    const Membership& membership_;
    Options options_;
    Log log_;
    RouteTable table_;

    std::mutex names_mutex_;
    std::unordered_map<std::string, uint32_t> ids_;
    std::vector<std::string> names_;

    uint32_t self_id_ = 0;  // this node's id in table_ (its own group routes)

    // the link thread's: forwarded messages of this read turn, per worker
    struct Incoming {
        broker::MessagePtr msg;
        uint64_t cookie = 0;
        std::vector<std::string> groups;  // the groups this node delivers it to
        bool retained_copy = false;       // from a peer's retained set: stored, not delivered
        int64_t stamp = 0;
        // A relay (PublishFrame::relay): to this session alone, as this delivery.
        std::string relay_to;
        uint8_t relay_qos = 0;
        bool relay_retain = false;
        broker::SubscriptionIds relay_ids;
    };
    std::vector<std::vector<Incoming>> incoming_;

    // Retained deletions (topic → when), kept for kTombstoneMs and at most kMaxTombstones
    // (the oldest go first), sent after the retained set to a node that asks for it: what
    // was deleted while it was away is deleted on it too. In memory: a restarted node has
    // none, its peers have theirs.
    std::mutex tomb_mutex_;
    std::unordered_map<std::string, int64_t> tombstones_;  // guarded by tomb_mutex_
    // Whether `topic` was deleted at or after `at_ms`.
    bool tombstoned(std::string_view topic, int64_t at_ms);
    std::vector<std::pair<std::string, int64_t>> tombstones();

    std::set<std::string> retained_asked_;  // the link thread's: peers asked since the start
    std::mutex sync_mutex_;
    std::condition_variable sync_wake_;
    std::vector<std::string> sync_to_;  // nodes that asked for the retained set
    bool sync_stopping_ = false;
    std::thread sync_thread_;

    Routes routes_;
    PeerLink link_;
    Takeovers takeovers_;
};

}  // namespace mqttd::cluster
