// Takeovers: client-id ownership in etcd and the sessions that move between nodes
// (README "Client-id ownership and takeover").
//   `<cluster>/clients/<client id>` → the owning node, under the owner's lease. A CONNECT on
//   this node claims its id by a create-if-absent transaction; an id this node holds, or
//   nobody (a dead owner's key went with its lease), connects as on a single node. An id
//   another node owns is asked of that node over the link (TakeoverRequest): it closes the
//   client there (MQTT 5: DISCONNECT 0x8E) and answers with the persistent session
//   (SessionState), which the worker here stores; only then does the key move here, by a
//   transaction on the revision the claim read (or a create when the old owner's key went),
//   and the old owner is told to delete its copy (TakeoverDone). Whatever cannot be decided
//   — etcd out of reach, the owner not linked or silent for `timeout_ms`, the key changed
//   meanwhile — refuses the CONNECT (one log line a second): never two owners in etcd. While etcd
//   is out of reach an id this node owns connects; another is asked of the linked peers
//   (OwnerQuery): owned by one of them, it is a takeover that cannot be decided and is
//   refused; owned by none (a peer whose link is down is not asked), it connects and its key
//   is put when etcd is back.
//   The key stays while the session lives here (connected, or offline and persistent), so a
//   reconnect elsewhere finds the owner; it is deleted (only if still this node's) when the
//   session ends, and put again after a new lease, as routes are.
// One thread does the etcd calls, so neither a worker nor the link thread waits for etcd;
// the answers reach the workers through their inboxes.
//
// Thread-safety: the public methods from any thread; the work on the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "broker/cluster_router.h"
#include "cluster/etcd_client.h"
#include "cluster/link_frame.h"
#include "cluster/peer_link.h"

namespace mqttd::cluster {

class Membership;

class Takeovers {
public:
    struct Options {
        std::vector<std::string> endpoints;
        std::string cluster = "mqttd";
        std::string node;
        int64_t timeout_ms = 5000;  // cluster.takeover_timeout
    };
    using Log = std::function<void(bool warning, const std::string& line)>;

    Takeovers(broker::Broker& broker,
              const Membership& membership,
              PeerLink& link,
              Options options,
              Log log);
    ~Takeovers();
    Takeovers(const Takeovers&) = delete;
    Takeovers& operator=(const Takeovers&) = delete;

    // The sessions recovered from the store are this node's: their keys are put (if absent)
    // once the node has a lease. REQUIRES: before start().
    void own(std::string client_id);
    void start();
    void stop();

    // broker::ClusterRouter's client-id half.
    void claim(const std::string& client_id, bool clean_start, broker::ClaimCallback done);
    void installed(uint64_t ticket,
                   bool stored,
                   std::function<void(bool owned, int64_t revision)> done);
    void released(const std::string& client_id);

    // A takeover frame from `peer` (the link's thread).
    void on_frame(const std::string& peer, FrameType type, std::string_view body);

private:
    using Task = std::function<void()>;
    // A claim of this node waiting for the owner's SessionState, then for the worker's store.
    struct Asking {
        std::string client_id;
        std::string owner;
        int64_t mod_revision = 0;  // of the owner's key, as the claim read it
        broker::ClaimCallback done;
        int64_t deadline_ms = 0;           // mono; 0 once the session is being stored
        std::vector<std::string> filters;  // the moving session's, once its state came
    };
    // A session of this node being handed to `peer` (its request id there).
    struct Giving {
        std::string client_id;
        int64_t deadline_ms = 0;
    };

    // A claim made while etcd is out of reach: the linked peers are asked whether one of
    // them owns the id (OwnerQuery); none: it is this node's; one: a takeover that cannot be
    // decided without etcd, refused.
    struct Querying {
        std::string client_id;
        std::set<std::string> waiting;  // peers not answered yet
        broker::ClaimCallback done;
        int64_t deadline_ms = 0;
    };
    std::map<uint64_t, Querying> querying_;
    void query_peers(const std::string& client_id, broker::ClaimCallback& done);
    void on_owner_answer(const std::string& peer, OwnerAnswerFrame f);

    void run();
    void post(Task t);
    std::string key_of(const std::string& client_id) const;
    // A CONNECT's claim, queued for the thread.
    struct Claim {
        std::string client_id;
        bool clean_start = false;
        broker::ClaimCallback done;
    };
    // The claims of one turn: their keys created in batches of distinct ids (one etcd round
    // trip each), then each decided by do_claim.
    void do_claims(std::deque<Claim>& claims);
    // `first`: the outcome of a create already tried for it (do_claims), or null.
    void do_claim(const std::string& client_id,
                  bool clean_start,
                  broker::ClaimCallback& done,
                  const EtcdResult<EtcdClient::CreateOutcome>* first = nullptr);
    void on_session_state(const std::string& peer, SessionStateFrame f);
    // Moves the key of `client_id` to this node: on `mod_revision`, or created when it went,
    // and puts this node's route keys of `filters` again in the same transaction; the
    // revision of that write (README "Messages during a move"), 0 when it could not be done.
    int64_t take_key(const std::string& client_id,
                     int64_t mod_revision,
                     const std::vector<std::string>& filters = {});
    void send_done(const std::string& peer,
                   uint64_t request,
                   const std::string& client_id,
                   bool moved,
                   int64_t revision = 0);
    void expire(int64_t now_ms);
    // Deletes the released keys and, after a new lease, puts the owned ones again (in
    // batches); false when etcd failed.
    bool keep_keys();
    // Once a second at most per kind: a refusal, or a key lost to another node.
    void refused(const std::string& client_id, const std::string& why);

    broker::Broker& broker_;
    const Membership& membership_;
    PeerLink& link_;
    Options options_;
    Log log_;
    EtcdClient etcd_;
    const std::string prefix_;  // "<cluster>/clients/"

    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<bool> stopping_{false};
    std::deque<Task> tasks_;
    std::deque<Claim> claims_;
    std::map<std::pair<std::string, uint64_t>, Giving> giving_;  // (peer, request id)

    // the thread's
    std::map<uint64_t, Asking> asking_;  // by request id
    uint64_t next_request_ = 1;
    std::set<std::string> owned_;     // ids whose key is (to be) this node's
    std::set<std::string> released_;  // keys to delete (retried while etcd is away)
    int64_t owned_lease_ = 0;         // the lease the owned keys were put under
    int64_t last_refusal_log_ms_ = -1000000;
    uint64_t refusals_unlogged_ = 0;
    std::thread thread_;
};

}  // namespace mqttd::cluster
