// broker::ClusterRouter: what the broker asks of the cluster layer (src/cluster) when the node
// is a cluster member; implemented there, set on the Broker by main before the workers start.
// A single node has none, and then the publish path pays one null check per message (and a
// CONNECT one null check).
//
// Client-id ownership (src/cluster/README.md, "Client-id ownership and takeover"): a CONNECT
// on a cluster member first claims its client id (claim_client); the answer says whether the
// id is this node's (connect as a single node would), is refused (no owner can be decided:
// etcd out of reach, the owner does not answer), or comes with the session another node
// handed over, which the worker stores and then confirms (session_installed) before its
// CONNACK. The other half, on the node that hands a session over, is Worker::hand_over and
// Worker::hand_over_done, called by the cluster layer through the worker's inbox.
//
// Thread-safety: every method may be called from any worker thread at once; the callbacks
// run on a thread of the cluster layer (post back to the worker).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/message.h"
#include "broker/response_queue.h"
#include "broker/subscription_ids.h"
#include "storage/records.h"
#include "storage/store.h"

namespace mqttd::broker {

// One publish's picks among the shared subscription groups whose members are on several
// nodes (ClusterRouter::pick_shared): one node per group and message.
struct SharedPicks {
    // Groups (shared_key()) picked on another node: this node's match leaves them out.
    std::vector<std::string> elsewhere;
    // (the cluster's id of a node, group) for each of those: the node delivers to the group.
    std::vector<std::pair<uint32_t, std::string>> remote;

    void clear() {
        elsewhere.clear();
        remote.clear();
    }
};

// A persistent session as it moves from one node to another: its stored records, read from
// the old owner's store once every write of it has committed. Queue entries keep their seqs
// (their outbound packet ids derive from them, which QoS 2 exactly-once needs); message ids
// are the old owner's and are replaced by the new owner's when stored.
struct SessionTransfer {
    storage::SessionRecord session;
    std::vector<storage::SubscriptionRecord> subscriptions;
    std::vector<storage::QueuedMessage> queue;
    std::vector<storage::InflightRecord> inflight;
};

struct ClaimAnswer {
    enum class Kind : uint8_t {
        Local,    // the id is this node's now: connect as a single node does
        Refused,  // no owner can be decided: CONNACK 0x88 Server unavailable (3.x: 3)
        Install,  // `session` was handed over: store it, then session_installed(ticket, ...)
    };
    Kind kind = Kind::Local;
    uint64_t ticket = 0;
    std::shared_ptr<SessionTransfer> session;
};
using ClaimCallback = std::function<void(ClaimAnswer)>;

// What the old owner answers when another node takes one of its client ids over
// (Worker::hand_over).
struct HandOver {
    enum class Kind : uint8_t {
        Session,  // `session` follows; the copy here stays until Worker::hand_over_done
        None,     // no persistent session here (none, a clean one, or dropped for Clean Start)
        Busy,     // already being handed to a node: the asker refuses its CONNECT
    };
    Kind kind = Kind::None;
    std::shared_ptr<SessionTransfer> session;
};

class ClusterRouter {
public:
    virtual ~ClusterRouter() = default;

    // The first local subscription of `filter` (whole: "$share/g/a/+" too) arrived / the last
    // one went (TopicIndex's new_filter / filter_gone): the node's route for it.
    virtual void filter_added(std::string_view filter) = 0;
    virtual void filter_removed(std::string_view filter) = 0;
    // The first persistent session's subscription of `filter` arrived (true) / the last went
    // (false) (TopicIndex's durable_added / durable_gone; between filter_added and
    // filter_removed). A route without one is "clean": a QoS 1/2 message forwarded for it
    // does not wait for the receiving node's Ack (src/cluster/README.md, "Clean routes").
    virtual void filter_durable(std::string_view filter, bool durable) = 0;

    // Before a message published on this node is matched: picks one node for each shared
    // subscription group matching `topic` that has members on another node (round robin over
    // the nodes with members). Leaves `picks` empty in the common case (no such group).
    virtual void pick_shared(std::string_view topic, SharedPicks& picks) = 0;

    // Sends `msg`, published on this node, to every other node that needs it (a route of that
    // node matches its topic; a node `picks` picked; every node for a retained message), each
    // told which groups it delivers to (none unless picked). Returns how many nodes will
    // answer for `token`: each answer completes it once through its worker's inbox, so the
    // caller adds that many dependencies before it releases its own count (ResponseQueue
    // invariants 1 and 2). With `token` null nothing answers and 0 is returned.
    // `stamp` gets the route stamp: the revision of the route table the message was matched
    // on, which decides who delivers it to a session moving between nodes (Session::move).
    virtual uint32_t forward(const MessagePtr& msg,
                             const Token* token,
                             const SharedPicks& picks,
                             int64_t& stamp) = 0;
    // A delivery to the session `client_id`, which has moved from here to `node`: sent there
    // for that session alone (`qos`, `retain` and `subscription_ids` are the delivery's).
    // Returns 1 when `token` will be answered (once `node` stored it, or failed), else 0.
    virtual uint32_t relay(const std::string& node,
                           const std::string& client_id,
                           const MessagePtr& msg,
                           uint8_t qos,
                           bool retain,
                           const SubscriptionIds& subscription_ids,
                           const Token* token) = 0;
    // How long a moved session's messages may still arrive by the routes from before the move
    // (the longest a peer holds a forwarded message before its publisher is refused).
    virtual int64_t move_window_ms() const = 0;

    // The retained message of `topic` was deleted here (an empty retained payload published
    // at `at_ms`, here or on another node, or a REST delete): a node that was away when it
    // happened learns it with the retained set it copies (a tombstone).
    virtual void retained_deleted(std::string_view topic, int64_t at_ms) = 0;

    // A message another node forwarded with `cookie` (Worker::publish_from_peer) is stored for
    // every persistent session of this node it was routed to (`ok`), or its batch failed.
    virtual void peer_publish_done(uint64_t cookie, bool ok) = 0;

    // A CONNECT for `client_id` (authenticated) wants its id. `clean_start`: a session the
    // owner holds is dropped, not handed over. `done` is called exactly once.
    virtual void claim_client(const std::string& client_id,
                              bool clean_start,
                              ClaimCallback done) = 0;
    // The session of an Install answer is durable here (`stored`) or could not be stored. Once
    // stored, the ownership key moves to this node by a transaction and the old owner is told
    // to delete its copy; `done(true)` then, `done(false)` when the key could not be taken
    // (the CONNECT is refused and the copy here dropped). Called exactly once per Install.
    // `revision` (owned): the etcd revision from which this node's routes carry the session's
    // messages; below it the old owner relays them (src/cluster/README.md, "Messages during a
    // move").
    virtual void session_installed(uint64_t ticket,
                                   bool stored,
                                   std::function<void(bool owned, int64_t revision)> done) = 0;
    // The session of `client_id` ended here (not handed over): its ownership key goes.
    virtual void client_released(const std::string& client_id) = 0;
};

}  // namespace mqttd::broker
