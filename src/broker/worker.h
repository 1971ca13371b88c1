// broker::Worker: the broker state owned by one worker thread — the sessions homed on it, its
// connections, its metrics, its pending store batch and its inbox from other workers.
//
// Threading: every method except the inbox pushes (push_*) and the counters runs on the
// worker's own thread. The net layer calls on_connect / on_packet / on_closed / tick from
// that thread and provides post() to get back onto it.
//
// Publish path (DESIGN.md, Threads): match in the shared TopicIndex, deliver to local sessions
// directly, and push deliveries for other workers' sessions into their inbox (one post when
// the inbox goes from empty to non-empty). The home worker of a persistent session writes the
// queue entry into its own batch. A publisher's PUBACK waits for every batch that stored the
// message (a completion token per batch), so it leaves only once the message is in the store
// for every persistent session it is routed to (contract 1).
//
// Store writes: one batch per loop turn (CommitBatch); responses that wait for it
// (ResponseQueue, one per connection) leave once it is durable.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "broker/admin.h"
#include "broker/auth/auth_chain.h"
#include "broker/auth/web_hook.h"
#include "broker/cluster_router.h"
#include "broker/commit_batch.h"
#include "broker/connection.h"
#include "broker/hooks.h"
#include "broker/inbox.h"
#include "broker/metrics.h"
#include "broker/session.h"
#include "broker/topic_index.h"
#include "mqtt/packets.h"
#include "storage/write_batch.h"

namespace mqttd::broker {

class Broker;

enum class ConnectResult : uint8_t {
    Accepted,  // CONNACK 0 written, or an AUTH exchange begun; the link is attached to its
               // Connection
    Refused,   // refused for ConnectOutcome::refusal: net writes the CONNACK and closes
    Pending,   // waiting for the authentication chain; the link is paused
};

// What the broker answers to a CONNECT. A refusal is decided by the broker and put on the
// wire by net (the CONNACK code of the client's version), in one place.
struct ConnectOutcome {
    ConnectResult result = ConnectResult::Accepted;
    ConnectRefusal refusal = ConnectRefusal::NotAuthorized;  // when result == Refused
};

struct Delivery {
    SessionPtr session;
    MessagePtr msg;
    uint8_t qos = 0;
    bool retain = false;
    SubscriptionIds subscription_ids;
    bool has_token = false;
    Token token;
    int64_t stamp = 0;     // the message's route stamp (ClusterRouter::forward), on a cluster
    bool relayed = false;  // relayed by the node the session moved from (SessionMove)
    bool shared = false;   // to the session as a member of a shared subscription's group
};

// A session moving between the nodes of a cluster (src/cluster/README.md, "Messages during a
// move"), on both nodes. The new owner's takeover transaction puts its routes for the
// session's filters at etcd revision R; a message matched on a route table older than R
// (its stamp) belongs to the old owner, which relays it to the new one, and one stamped R or
// later to the new owner, which delivers it: every message routed to the session once. A
// shared subscription's message goes to one node of its group, which delivers it to the
// member it picks whatever the stamp (the old owner relaying it).
struct SessionMove {
    bool incoming = false;  // this node is the new owner
    int64_t revision = 0;   // R; 0 while not known (incoming: deliveries are held)
    int64_t until_ms = 0;   // mono: no message stamped below R can come after this
    // The new owner's, while R is not known: deliveries, their tokens still waiting.
    std::vector<Delivery> held;
    // The old owner's, from the hand-over on: what was queued here and is not in the state that
    // moved (entries stored after it was read), to relay once R is known.
    std::vector<std::pair<uint64_t, Delivery>> since;        // (queue seq, delivery without token)
    std::vector<storage::SubscriptionRecord> subscriptions;  // as they moved
    std::string to;  // the node it moved to, once moved: deliveries here are relayed there
    // Moving on again while the move in is still in its window: what that move left to the
    // node before (stamped below its R) is still that node's, which relays it here.
    int64_t skip_below = 0;
    int64_t skip_until_ms = 0;
};

inline SessionMovePtr new_session_move() {
    return SessionMovePtr(new SessionMove());
}

class Worker {
public:
    using Task = std::function<void()>;
    using Poster = std::function<void(Task)>;

    Worker(Broker& broker, uint32_t index);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    uint32_t index() const { return index_; }
    // Set by net before the worker's thread starts.
    void set_poster(Poster poster) { post_ = std::move(poster); }
    void post(Task t) { post_(std::move(t)); }

    // --- net entry points (this worker's thread) ---
    // Handles a CONNECT whose client id is homed here. A refusal decided later (the
    // authentication chain answered from its pool, or an AUTH exchange failed) reaches the
    // link through Link::refuse().
    ConnectOutcome on_connect(Link& link, mqtt::Connect&& connect);
    // Handles one packet after CONNECT. A non-success result is a protocol violation: net
    // closes the connection (with a DISCONNECT of that reason on MQTT 5).
    mqtt::ReasonCode on_packet(Connection& conn, mqtt::Packet& packet);
    // The link is gone (closed by either side). Publishes the will unless DISCONNECT was
    // received; detaches the session. `conn` is freed.
    void on_closed(Connection& conn);
    // Called about once a second: keepalive, stalled authentication, session expiry, inbound
    // QoS 2 past mqtt.await_rel_timeout, delayed wills, $SYS.
    void tick(int64_t now_ms);
    // Bytes and malformed packets seen by net.
    Metrics& metrics() { return metrics_; }
    // Stop: packets from now on are ignored (but acks of deliveries); a connection whose acks
    // wait for the store gets them first; then MQTT 5 connections get DISCONNECT 0x8B and every
    // connection is closed. The caller drains the loop, bounded.
    void shutdown();

    // --- cross-worker (any thread) ---
    // Deliveries from another worker, in its order; that worker gathers those of a loop turn
    // and pushes them together (one lock and at most one wake-up per turn, not per message).
    void push_deliveries(std::vector<Delivery>&& ds);
    void push_completions(std::vector<Token>&& tokens);
    void push_task(Task t);

    // --- used by Broker during recovery (before threads start) and admin ---
    void adopt_session(SessionPtr s);
    // A delayed will of a recovered session (its stored record).
    void adopt_delayed_will(SessionPtr s, storage::WillRecord will);
    size_t connection_count() const { return connections_count_.load(std::memory_order_relaxed); }
    size_t session_count() const { return sessions_count_.load(std::memory_order_relaxed); }
    // Sessions with clean_session = 1 (or MQTT 5 expiry 0): they exist only while connected.
    size_t clean_session_count() const {
        return clean_sessions_count_.load(std::memory_order_relaxed);
    }

    // Publishes on this worker as the broker itself (wills, $SYS, REST). `token` is
    // completed when every store write of the publish has committed, on this node and on every
    // other node it was forwarded to (ClusterRouter::forward). `peer_groups` non-null:
    // another node forwarded it, so it is delivered here only (to these shared subscription
    // groups alone: the ones this node was picked for), never forwarded again.
    void publish(const MessagePtr& msg,
                 const Session* publisher,
                 const Token* token,
                 const std::vector<std::string>* peer_groups = nullptr,
                 int64_t peer_stamp = 0);
    // A message another node forwarded: published here as a local publish (retained set,
    // every matching plain subscription, one member of each group in `groups`). `cookie` != 0:
    // once every store write it caused is durable (or failed),
    // ClusterRouter::peer_publish_done(cookie, ok) is called on this thread.
    void publish_from_peer(const MessagePtr& msg,
                           uint64_t cookie,
                           const std::vector<std::string>& groups,
                           int64_t stamp = 0);
    // A delivery to the session `client_id` relayed by the node it moved from (SessionMove),
    // as publish_from_peer for that session alone.
    void deliver_relayed(const MessagePtr& msg,
                         uint64_t cookie,
                         const std::string& client_id,
                         uint8_t qos,
                         bool retain,
                         const SubscriptionIds& ids);

    // A retained message from another node's retained set (a node that joins copies what it
    // missed, src/cluster/README.md): stored when this node has no retained message on its
    // topic or an older one, in this turn's batch; delivered to no one. An empty one is a
    // deletion the other node saw: it deletes an older message. Whether it was taken.
    bool adopt_retained(const MessagePtr& msg);

    // --- admin (this worker's thread; reached through push_task) ---
    bool kick(std::string_view client_id);
    // Ends the offline session `client_id` (Admin::delete_session): 0 done, 1 no such session,
    // 2 the client is connected.
    int delete_session(std::string_view client_id);
    // The connected client `client_id`, and the first `n` connected clients in client-id order
    // (only those with a clean session when `clean_only`).
    std::optional<ClientView> client_view(std::string_view client_id);
    std::vector<ClientView> client_views(size_t n, bool clean_only);
    std::optional<SessionView> session_view(const std::string& client_id);
    std::optional<std::vector<SubscriptionView>> subscriptions_view(const std::string& client_id);
    bool admin_subscribe(const std::string& client_id, const std::string& filter, uint8_t qos);
    bool admin_unsubscribe(const std::string& client_id, const std::string& filter);
    bool clean_acl_cache(const std::string& client_id, const std::string& topic);
    // Deletes the retained message of `topic` in this turn's batch and the in-flight overlay;
    // false when there is none (in the store or in flight).
    bool delete_retained(const std::string& topic);
    // Runs `done` once every store write made so far on this worker has committed.
    void after_commit(Task done);

    // --- cluster: a session handed over to another node (this worker's thread) ---
    // Another node takes `client_id` over: its connection here is closed as by a local
    // takeover (MQTT 5: DISCONNECT 0x8E). `drop` (Clean Start there): the session ends here.
    // Otherwise a persistent session is read from the store once its writes have committed
    // and given to `done`, and stays here, offline, until hand_over_done (HandOver says when
    // there is none to move, or one is moving already).
    void hand_over(const std::string& client_id, bool drop, std::function<void(HandOver)> done);
    // The other node `to` stored the session and owns the id (`moved`): what was routed here
    // meanwhile and is stamped below `revision` is relayed to it, then the copy here ends (its
    // store records and routes go; the ownership key is the other node's), matched for
    // ClusterRouter::move_window_ms() more so that late messages are relayed too. Not moved:
    // it stays here as it was.
    void hand_over_done(const std::string& client_id,
                        bool moved,
                        int64_t revision,
                        const std::string& to);

private:
    // Deliveries routed this turn to sessions homed on other workers, per worker.
    std::vector<std::vector<Delivery>> outbox_;
    // A worker's outbox is handed over at this size without waiting for the end of the turn.
    static constexpr size_t kOutboxEarly = 64;
    bool outbox_scheduled_ = false;
    void send_outbox();

    // What other threads hand this worker (Inbox): deliveries, completed tokens, tasks.
    struct InboxBatch {
        std::vector<Delivery> deliveries;
        std::vector<Token> completions;
        std::vector<Task> tasks;
    };

    struct PendingConnect {
        Link* link = nullptr;
        mqtt::Connect connect;
        auth::ClientIdentity identity;
        bool assigned = false;
    };
    // A CONNECT authenticated and waiting for the cluster's answer on its client id
    // (ClusterRouter::claim_client); its link is paused.
    struct PendingClaim {
        Link* link = nullptr;
        mqtt::Connect connect;
        auth::ClientIdentity identity;
        bool assigned = false;
        auth::Decision decision;
        std::optional<std::string> server_final;
    };
    std::unordered_map<uint64_t, PendingClaim> pending_claims_;
    void claim_answered(uint64_t key, ClaimAnswer a);
    // connect_owned for a claim answered, then the link resumed (accepted) or refused.
    void connect_claimed(PendingClaim&& p);
    // The claim's answer Install: the handed-over session stored in this turn's batch, and
    // once durable built in memory (as Broker::recover does) and confirmed to the cluster.
    void install_session(uint64_t key, ClaimAnswer a);
    void installed(uint64_t key, bool owned, int64_t revision);
    // A delivery to a session with a move (SessionMove) that the move decides: held, relayed
    // or skipped (true), or delivered as usual (false).
    bool moving_takes(Delivery& d);
    // The copy of a session handed over ends, its filters still matched for the move's
    // window: the plain ones through Broker::relay_stubs, the shared ones left in the index
    // (lingering_), so that its groups' picks of this node still reach it.
    void end_moved(const SessionPtr& s);
    // The copies of sessions that moved away in their window; a relay for one of them that
    // comes here after it moved on goes after it.
    struct Lingering {
        SessionPtr session;
        std::vector<std::string> filters;  // its shared subscriptions, still in the index
        int64_t until_ms = 0;              // mono
    };
    std::vector<Lingering> lingering_;
    void expire_lingering(int64_t mono_now);
    // The rest of conclude_connect once the client id is this node's.
    ConnectOutcome connect_owned(Link& link,
                                 mqtt::Connect&& c,
                                 auth::ClientIdentity&& identity,
                                 bool assigned,
                                 const auth::Decision& d,
                                 const std::string* server_final);

    // authentication and ACL
    // Runs `start` with a callback; returns the decision if it came before `start` returned,
    // otherwise nullopt, and `later` runs on this worker when it comes.
    std::optional<auth::Decision> decide(const std::function<void(auth::DecisionCallback)>& start,
                                         std::function<void(auth::Decision)> later);
    void finish_connect(uint64_t key, auth::Decision d);
    // The pieces of conclude_connect: the CONNACK refusal after the auth chain, the
    // Connection for the CONNECT, the session it resumes or starts (taking over a connected
    // one), and the MQTT 5 CONNACK properties (which also set the connection's limits).
    ConnectOutcome refuse_after_auth(Link& link, const mqtt::Connect& c, const auth::Decision& d);
    std::unique_ptr<Connection> new_connection(Link& link,
                                               mqtt::Connect& c,
                                               auth::ClientIdentity&& identity,
                                               const auth::Decision& d);
    void take_over(Connection& old);
    std::pair<SessionPtr, bool> session_for(const mqtt::Connect& c, const Connection& conn);
    void mqtt5_connack(Connection& conn,
                       const mqtt::Connect& c,
                       bool assigned,
                       const std::string* server_final,
                       mqtt::Properties& p);
    // `server_final`: the last SCRAM message, for CONNACK's Authentication Data (enhanced
    // authentication), or null.
    ConnectOutcome conclude_connect(Link& link,
                                    mqtt::Connect&& c,
                                    auth::ClientIdentity&& identity,
                                    bool assigned,
                                    const auth::Decision& d,
                                    const std::string* server_final = nullptr);
    // MQTT 5 enhanced authentication (worker_auth.cpp): a CONNECT with Authentication Method
    // SCRAM-SHA-256, the AUTH packets that continue it before CONNACK, and re-authentication.
    ConnectOutcome begin_enhanced_auth(Link& link,
                                       mqtt::Connect&& c,
                                       auth::ClientIdentity&& identity,
                                       bool assigned);
    mqtt::ReasonCode continue_connect_auth(Connection& conn, mqtt::Packet& packet);
    mqtt::ReasonCode handle_auth(Connection& conn, const mqtt::Auth& a);
    void write_auth(Connection& conn, mqtt::ReasonCode reason, std::string data);
    // $SYS and presence messages: published by the broker itself, not retained.
    void publish_from_broker(std::string_view topic, std::string_view payload, uint8_t qos);
    void on_connected_extensions(Connection& conn, bool new_session);
    void on_closed_extensions(Connection& conn, bool session_ended);
    void publish_allowed(Connection& conn, mqtt::Publish& p, std::string_view topic);
    void publish_denied(Connection& conn, const mqtt::Publish& p);
    void finish_publish_acl(uint64_t conn_id,
                            mqtt::Publish p,
                            std::string topic,
                            const auth::Decision& d);
    void finish_subscribe(Connection& conn, mqtt::Subscribe& sub, const std::vector<bool>& allowed);

    // Responses to another node's forwarded publishes (publish_from_peer): their tokens name
    // connection kPeerConnection (never a real one: connection ids start at 1) and a number
    // in peer_pending_, which counts what each still waits for.
    static constexpr uint64_t kPeerConnection = 0;
    struct PeerPending {
        uint64_t cookie = 0;
        uint32_t remaining = 0;
        bool failed = false;
        std::function<void(bool ok)> done;  // instead of peer_publish_done (a move's relays)
    };
    std::unordered_map<uint64_t, PeerPending> peer_pending_;
    uint64_t next_peer_pending_ = 0;
    // A token of connection kPeerConnection with one count (the opener's, completed last):
    // once its counts are done, peer_publish_done(cookie, ok), or `done(ok)` when given.
    Token open_peer_token(uint64_t cookie, std::function<void(bool ok)> done);
    // One more completion for token `t` (a connection's response or a peer's); false when it
    // is no longer waiting.
    bool depend(const Token& t);
    void complete_peer(const Token& t);

    // store batch of this turn
    storage::WriteBatch& batch() { return commits_.writes(); }
    // The response `t` of `conn` also waits for this turn's batch (ResponseQueue::depend).
    void depend_on_turn(Connection& conn, const Token& t);
    // The same for any token of this worker (a peer's too).
    void depend_on_turn(const Token& t);
    // After a session subscribed to / unsubscribed from `filter`: the node's stored route
    // (its first subscriber / its last) and, in a cluster, the route's cluster side
    // (ClusterRouter::filter_added / filter_durable / filter_removed).
    void route_subscribed(const std::string& filter, const TopicIndex::SubscribeResult& r);
    void route_unsubscribed(const std::string& filter, const TopicIndex::UnsubscribeResult& r);
    // After each durable batch: the sessions that wait for stored entries to be readable.
    void pump_waiting();
    void drain_inbox();

    // session lifecycle
    // After sessions_ / connections_ change: the counts other threads read, and the broker's
    // maxima (monitoring/stats).
    void sessions_changed();
    void connections_changed();
    SessionPtr find_session(std::string_view client_id);
    Connection* find_connection(uint64_t id) {
        auto it = connections_.find(id);
        return it == connections_.end() ? nullptr : it->second.get();
    }
    void end_session(const SessionPtr& s);
    void attach(Connection& conn, const SessionPtr& s, bool resumed);
    // Returns whether the session ended with the connection.
    bool detach(Connection& conn);
    // A will as the message published now (its Message Expiry Interval counts from now).
    MessagePtr will_message(const storage::WillRecord& w, const std::string& client_id);
    // Publishes the delayed wills of session `s` (it ends) and those due by `due_by_ms`.
    void release_delayed_wills(const Session* s, int64_t due_by_ms);
    void store_session(const Session& s);

    // packets
    mqtt::ReasonCode handle_publish(Connection& conn, mqtt::Publish& p);
    // The pieces of handle_publish: a client's topic alias, mqtt.max_awaiting_rel (true: the
    // PUBLISH was refused and answered), and the ACL (cached, or decided now or later).
    mqtt::ReasonCode resolve_topic_alias(Connection& conn, mqtt::Publish& p);
    bool refuse_over_awaiting_rel(Connection& conn, const mqtt::Publish& p);
    void check_publish_acl(Connection& conn, mqtt::Publish& p, std::string_view topic);
    mqtt::ReasonCode handle_ack(Connection& conn, const mqtt::Ack& a);
    mqtt::ReasonCode handle_subscribe(Connection& conn, mqtt::Subscribe& s);
    mqtt::ReasonCode handle_unsubscribe(Connection& conn, mqtt::Unsubscribe& u);

    // routing and delivery
    void route(const MessagePtr& msg,
               const Session* publisher,
               const Token* token,
               const GroupChoice& groups = {},
               int64_t stamp = 0);
    void deliver(Delivery&& d);
    // Puts a retained PUBLISH in this turn's batch (an empty payload deletes the topic's),
    // within the retainer's limits.
    void store_retained(const MessagePtr& msg);
    // A change to the retained set was added to this turn's batch: visible to SUBSCRIBEs on
    // every worker (Broker::retained_in_flight) until that batch commits.
    void retained_changing(std::string_view topic, MessagePtr msg, int64_t expiry_at_ms);
    void send_retained(const SessionPtr& s,
                       const std::string& filter,
                       const mqtt::SubscribeOptions& opts,
                       uint32_t subscription_id);
    // Adds one subscription to a session (index, route, store). Returns whether the session
    // already had this filter.
    bool add_subscription(const SessionPtr& s,
                          const std::string& filter,
                          const mqtt::SubscribeOptions& opts,
                          uint32_t subscription_id);
    bool remove_subscription(const SessionPtr& s, const std::string& filter);
    // Whether the ACL drops a message on `topic` for session `s` (its marks, acl.h).
    bool acl_skips(Session& s, std::string_view topic);

    // responses
    Token new_response(Connection& conn, PendingResponse&& r);
    // Pause reading a connection / undo one pause; reading resumes when every hold is released.
    void hold(Connection& conn);
    void release(Connection& conn);
    void complete(const Token& t);
    void send_ready_responses(Connection& conn);
    void write_response(Connection& conn, PendingResponse& r);
    // A response whose batch was not written (the store is out of space or failed): MQTT 5
    // PUBACK / PUBREC 0x97 (Quota exceeded) and SUBACK 0x97 for each filter, 3.x SUBACK 0x80;
    // whatever else (a 3.x PUBACK / PUBREC, PUBREL, PUBCOMP, UNSUBACK) closes the connection
    // unanswered (MQTT 5: DISCONNECT 0x97), so nothing unwritten is ever acknowledged.
    void refuse_unstored(Connection& conn, PendingResponse& r);
    // Whether the store takes writes now (storage::StoreHealth); a CONNECT or SUBSCRIBE that
    // would store a session's state is refused up front while it does not.
    bool store_writable() const;

    void close_connection(Connection& conn);
    // Stop: DISCONNECT 0x8B on MQTT 5 (after CONNACK), then close.
    void say_goodbye(Connection& conn);
    void publish_sys(int64_t now_ms);

    Broker& broker_;
    const uint32_t index_;
    Poster post_;
    Metrics metrics_;
    Inbox<InboxBatch> inbox_;
    CommitBatch commits_;

    // Sessions keyed by their own client id: a set node holds only the pointer (no copy of the
    // id), and no cached hash (the id hashes again on a rehash or a bucket walk: connect,
    // expiry and REST only, never per message).
    struct SessionKeyHash {
        using is_transparent = void;
        size_t operator()(std::string_view id) const noexcept {
            return std::hash<std::string_view>{}(id);
        }
        size_t operator()(const SessionPtr& s) const noexcept { return (*this)(s->client_id()); }
    };
    struct SessionKeyEqual {
        using is_transparent = void;
        static std::string_view key(std::string_view id) { return id; }
        static std::string_view key(const SessionPtr& s) { return s->client_id(); }
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const {
            return key(a) == key(b);
        }
    };
    std::unordered_set<SessionPtr, SessionKeyHash, SessionKeyEqual> sessions_;
    std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
    std::atomic<size_t> connections_count_{0};
    std::atomic<size_t> sessions_count_{0};
    std::atomic<size_t> clean_sessions_count_{0};

    std::vector<SessionPtr> waiting_commit_;  // sessions to pump after the next commit

    std::unordered_map<uint64_t, PendingConnect> pending_connects_;
    uint64_t next_pending_connect_ = 0;

    std::vector<Subscriber> match_scratch_;
    int64_t last_sys_ms_ = 0;
    int64_t last_refusal_log_ms_ = -1000000;  // mono ms of the last "refused" warning
    uint64_t refusals_unlogged_ = 0;
    bool stopping_ = false;
    int64_t last_expiry_check_ms_ = 0;
    // MQTT 5 Will Delay Interval [MQTT-3.1.3-9]: wills waiting for their delay to pass, the
    // session to end or the client to come back (then dropped). Each is written with its
    // session's record (store_session), so it survives a restart.
    struct DelayedWill {
        SessionPtr session;
        storage::WillRecord will;
    };
    std::vector<DelayedWill> delayed_wills_;

    Hooks hooks_;
    SessionContext ctx_;  // last: refers to the members above
};

}  // namespace mqttd::broker
