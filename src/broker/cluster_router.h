// broker::ClusterRouter: what the broker asks of the cluster layer (src/cluster) when the node
// is a cluster member; implemented there, set on the Broker by main before the workers start.
// A single node has none, and then the publish path pays one null check per message.
//
// Thread-safety: every method may be called from any worker thread at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/message.h"
#include "broker/response_queue.h"

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

class ClusterRouter {
public:
    virtual ~ClusterRouter() = default;

    // The first local subscription of `filter` (whole: "$share/g/a/+" too) arrived / the last
    // one went (TopicIndex's new_filter / filter_gone): the node's route for it.
    virtual void filter_added(std::string_view filter) = 0;
    virtual void filter_removed(std::string_view filter) = 0;

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
    virtual uint32_t forward(const MessagePtr& msg,
                             const Token* token,
                             const SharedPicks& picks) = 0;

    // A message another node forwarded with `cookie` (Worker::publish_from_peer) is stored for
    // every persistent session of this node it was routed to (`ok`), or its batch failed.
    virtual void peer_publish_done(uint64_t cookie, bool ok) = 0;
};

}  // namespace mqttd::broker
