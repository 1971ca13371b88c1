// broker::Admin: what the management API may see and do, from any thread (Pistache's). The API
// reaches the broker through this class only (.ci/check-includes holds api/ to this header).
//
// Live state is read without touching connections from other threads: connected clients and
// a live session's queue figures are read by tasks run on their home workers (one per worker
// for a list) and awaited with a timeout; client counts are the workers' own counters. No
// per-connection table is kept for the API. Durable state (persistent sessions, subscriptions,
// routes, retained messages) is read straight from the store by the caller. Actions (kick, publish,
// subscribe) run as tasks on the owning worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/auth/credential_store.h"
#include "broker/metrics.h"
#include "broker/plugins.h"
#include "common/result.h"
#include "storage/backup.h"

namespace mqttd::broker {

class Broker;

// A connected client, as the REST API lists it.
struct ClientView {
    std::string client_id;
    std::string username;
    std::string ip;
    uint16_t port = 0;
    bool clean_sess = true;
    uint8_t proto_ver = 4;
    uint16_t keepalive = 0;
    int64_t connected_at_ms = 0;
    uint64_t connection_id = 0;
    const char* transport = "tcp";  // broker::Link::transport(): "tcp", "ssl", "ws", "wss"
    // The will of the CONNECT, while it is still to be published (MQTT 3.1.2.5).
    bool has_will = false;
    std::string will_topic = {};
    uint8_t will_qos = 0;
    bool will_retain = false;
    uint64_t will_payload_size = 0;
};

// A session's figures (spec: sessions).
struct SessionView {
    std::string client_id;
    bool clean_sess = true;
    bool online = false;
    uint64_t subscriptions = 0;
    uint64_t max_inflight = 0;
    uint64_t inflight_len = 0;
    uint64_t mqueue_len = 0;
    uint64_t mqueue_dropped = 0;
    uint64_t awaiting_rel_len = 0;
    uint64_t deliver_msg = 0;
    uint64_t enqueue_msg = 0;
    int64_t created_at_ms = 0;
};

struct SubscriptionView {
    std::string client_id;
    std::string topic;
    uint8_t qos = 0;
};

// The nodes of the cluster as the cluster layer (src/cluster) knows them; the REST API asks
// through Admin. A single node has none, and every answer is this node's own.
class ClusterView {
public:
    struct Node {
        std::string name;
        bool running = false;
        std::string info;  // the JSON object the node published about itself
    };
    // A request to another member's REST API, as this node's API passes one on.
    struct PeerRequest {
        std::string method;
        std::string target;  // "/api/v2/...", still percent-encoded, with its query
        std::string authorization;
        std::string body;
    };
    struct PeerAnswer {
        int status = 0;  // HTTP status
        std::string body;
    };
    // The header that marks a request one member passes on to another (value "node"): it is
    // answered by the node asked alone, never passed on again.
    static constexpr std::string_view kScopeHeader = "X-Mqttd-Scope";
    virtual ~ClusterView() = default;
    // Every member, by name; this node among them.
    virtual std::vector<Node> nodes() const = 0;
    // Sends `req` to the REST API of the running member `node`, marked as asked by a peer (so
    // it answers for itself alone). nullopt, with `why`, when the node is not running or did
    // not answer in time. Blocks: called on a REST thread.
    virtual std::optional<PeerAnswer> ask(const std::string& node,
                                          const PeerRequest& req,
                                          std::string* why) const = 0;
};

class Admin {
public:
    Admin(Broker& broker, PluginRegistry& plugins) : broker_(broker), plugins_(plugins) {}

    // The connected client `client_id` (asked of its home worker); nullopt when not connected.
    std::optional<ClientView> client(const std::string& client_id);
    // Connected clients in client-id order, skipping `offset`, at most `limit` (one task per
    // worker); only those with a clean session (no stored session) when `clean_only`.
    std::vector<ClientView> clients(uint64_t offset, uint64_t limit, bool clean_only = false);
    // Connections, from the workers' counters.
    uint64_t client_count() const;
    // Connected clients with a clean session, from the workers' counters.
    uint64_t clean_client_count() const;

    // Disconnects a connected client (its will is published, as for any close the client did
    // not ask for). False when no such client is connected.
    bool kick(const std::string& client_id);

    // Ends the offline session of `client_id` as its expiry would (subscriptions, queue and
    // stored record removed); answers once the removal is committed. Online: the client is
    // connected (kick it first). NotFound: no such session. Timeout: the worker or the store
    // did not answer in time.
    enum class SessionDelete { Deleted, NotFound, Online, Timeout };
    SessionDelete delete_session(const std::string& client_id);

    // The session of `client_id`: live figures from its home worker, or, for an offline
    // persistent session, the same figures as its worker knows them. nullopt when none.
    std::optional<SessionView> session(const std::string& client_id);
    // Several at once (one task per worker).
    std::vector<SessionView> sessions(const std::vector<std::string>& client_ids);
    // The subscriptions of a session (live or stored), nullopt when there is no session.
    std::optional<std::vector<SubscriptionView>> subscriptions_of(const std::string& client_id);

    // Subscribes / unsubscribes the session of `client_id` (connected, or offline persistent)
    // as if it had sent SUBSCRIBE / UNSUBSCRIBE. False when there is no such session.
    bool subscribe(const std::string& client_id, const std::string& filter, uint8_t qos);
    bool unsubscribe(const std::string& client_id, const std::string& filter);

    // Publishes through the normal routing, retained and durability path; returns once the
    // message is routed and its store writes have committed (or the timeout passed).
    bool publish(const std::string& topic,
                 const std::string& payload,
                 uint8_t qos,
                 bool retain,
                 const std::string& client_id);

    // Deletes the retained message of `topic` the way a PUBLISH would change it: once every
    // worker's batch of the moment is durable (so a retained PUBLISH routed before it cannot
    // commit after it and bring the message back), through a worker's batch and the in-flight
    // overlay (so a SUBSCRIBE meanwhile does not find it). Returns once the delete is durable.
    enum class RetainedDelete { Deleted, NotFound, Timeout };
    RetainedDelete delete_retained(const std::string& topic);

    // Clears the cached publish ACL decision of a connected client for `topic` (all topics
    // when empty). False when the client is not connected.
    bool clean_acl_cache(const std::string& client_id, const std::string& topic);
    // Re-reads mqtt.acl_file; on error the old rules stay and `error` is the error line.
    struct AclReload {
        std::string error;
        std::string path;
        size_t rules = 0;
    };
    AclReload reload_acl();

    // The emq_auth_username / emq_auth_clientid tables (null when not built).
    auth::CredentialStore* usernames();
    auth::CredentialStore* client_ids();
    PluginRegistry& plugins() { return plugins_; }
    // Fixed at start.
    const std::string& node_name() const;
    // The cluster this node is a member of; null for a single node. Set before the REST API
    // starts, unset after it stops.
    // Atomic: HTTP threads of a library not built with our sanitizers may still be winding
    // down when main unsets it.
    const ClusterView* cluster() const { return cluster_.load(std::memory_order_acquire); }
    void set_cluster(const ClusterView* cluster) {
        cluster_.store(cluster, std::memory_order_release);
    }
    const std::string& version() const;
    int64_t started_at_ms() const;
    uint32_t max_packet_size() const;

    // Backups of the whole store under `backup_dir` (storage/backup.h): an online, consistent
    // checkpoint taken while the workers go on serving (`name` empty: one is made from the
    // time), the complete ones oldest first, and deleting one.
    Result<storage::BackupInfo, storage::Status> backup(const std::string& backup_dir,
                                                        const std::string& name);
    Result<std::vector<storage::BackupInfo>, storage::Status> backups(
            const std::string& backup_dir) const;
    storage::Status delete_backup(const std::string& backup_dir, const std::string& name);

    MetricsSnapshot metrics() const;
    // Counters of the database auth plugins ("auth/redis/queries", ..., "auth/ldap/down"),
    // shown with the metrics.
    std::vector<std::pair<std::string, uint64_t>> auth_metrics() const;
    std::map<std::string, uint64_t> stats();

private:
    Broker& broker_;
    PluginRegistry& plugins_;
    std::atomic<const ClusterView*> cluster_{nullptr};
};

}  // namespace mqttd::broker
