// PeerLink: the node-to-node link of a cluster member (`cluster.listener`). One TCP connection
// per pair of nodes: the node whose name sorts first dials, the other accepts, both say Hello
// (link_frame.h) and then send frames both ways. Messages forwarded to a peer and the peer's
// answers travel on it, several frames per write.
//
// Why here and not in src/net: net's links are MQTT connections owned by a worker and driven
// by the broker's packet handlers; this is one thread for a handful of long-lived
// connections speaking another protocol, which needs none of net's limits or PROXY parsing.
// It reuses net's address parsing and, with TLS on (Options::tls_*), net's TLS transport:
// mutual TLS, each end verifying the other's certificate against the cluster's CA, then the
// Hello as on plain TCP. A connection that has not said Hello (TLS handshake included)
// within 10 s is closed.
//
// Delivery: a frame waiting for an answer (a QoS 1/2 message whose publisher waits) stays
// queued until the peer's Ack, and is sent again, in order, after a reconnect; the peer
// recognises what it already took (sequence numbers per sender incarnation) and answers it
// again without delivering it twice. A peer that cannot be reached is dialled again with a
// backoff (100 ms doubling to 5 s); its frames wait meanwhile, bounded by `max_queue_bytes`:
// beyond that a QoS 0 message is dropped (counted) and one that waits for an answer is
// answered "failed" at once. A peer that leaves the cluster (its alive key goes: a clean stop
// or its lease expired) has every waiting frame answered "failed": its persistent sessions did
// not store them; so has a frame still unanswered after `ack_timeout_ms` (a peer that is alive
// in etcd but cannot be reached, e.g. across a partition).
//
// Thread-safety: send() and answer() from any thread; the rest of the work on the link's own
// thread, which calls the callbacks.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/message.h"
#include "broker/response_queue.h"
#include "cluster/link_frame.h"
#include "net/tls_transport.h"

namespace mqttd::net {
class TlsContext;
}

namespace mqttd::cluster {

class PeerLink {
public:
    struct Options {
        std::string listen;  // host:port to accept peers on
        std::string node;    // this node's name
        uint64_t incarnation = 0;
        size_t max_queue_bytes = size_t{64} << 20;  // per peer
        // A frame not answered within this (queued or sent) is answered "failed"
        // (cluster.forward_timeout).
        int64_t ack_timeout_ms = 30000;
        // TLS on every connection (cluster.listener.ssl): the accepting end's context and the
        // dialling end's; both null = plain TCP. Each end verifies the other's certificate.
        std::shared_ptr<net::TlsContext> tls_server;
        std::shared_ptr<net::TlsContext> tls_client;
    };
    struct Callbacks {
        // The peers alive now, name → their link's "host:port" (asked every 200 ms).
        std::function<std::map<std::string, std::string>()> peers;
        // A Publish a peer sent; cookie != 0: call answer(cookie, ok) once it is durable.
        std::function<void(const PublishFrame&, uint64_t cookie)> on_publish;
        // After the Publishes of one read turn.
        std::function<void()> on_turn;
        // The answer for a token given to send(): the peer's Ack, or a failure.
        std::function<void(const broker::Token&, bool ok)> on_answer;
        // The link to `node` is up (both Hellos exchanged).
        std::function<void(const std::string& node)> on_up;
        std::function<void(bool warning, const std::string&)> log;
        // A control frame from `peer` (every type but Hello, Publish and Ack: the takeover
        // frames, RetainedRequest).
        std::function<void(const std::string& peer, FrameType, std::string_view body)> on_control;
    };

    PeerLink(Options options, Callbacks callbacks);
    ~PeerLink();
    PeerLink(const PeerLink&) = delete;
    PeerLink& operator=(const PeerLink&) = delete;

    // Binds the listener and starts the thread; an error line when the address cannot be
    // bound.
    std::string start();
    // Stops the thread; waiting frames are answered "failed".
    void stop();

    // Queues `m` for `node`. With `token`: returns true, and on_answer(token, ...) follows
    // exactly once (the peer's Ack, or a failure). Without: returns false.
    // `groups`: the shared subscription groups `node` delivers `m` to (PublishFrame::groups).
    // `stamp`: the message's route stamp; `relay`: for one session that moved to `node`.
    bool send(const std::string& node,
              const broker::Message& m,
              const broker::Token* token,
              const std::vector<std::string_view>& groups = {},
              bool retained_copy = false,
              int64_t stamp = 0,
              const RelayTarget* relay = nullptr);
    // Whether `node` is a member whose link is up now (what send_control() needs).
    bool linked(const std::string& node);
    // Bytes queued for `node` and not yet written; nullopt when it is not a linked peer.
    std::optional<size_t> queued_bytes(const std::string& node);
    // send() to every peer alive now, each with groups_of(its name); the number of answers
    // that will follow.
    uint32_t send_all(
            const broker::Message& m,
            const broker::Token* token,
            const std::function<std::vector<std::string_view>(const std::string&)>& groups_of,
            int64_t stamp = 0);
    // A Publish taken with `cookie` is durable (`ok`) or failed: its Ack goes to its sender.
    void answer(uint64_t cookie, bool ok);
    // Queues the encoded frame(s) `frame` for `node` ahead of the Publishes waiting for it;
    // false when `node` is not a linked peer now (not alive, or its link is down). Not sent
    // again after a reconnect: its sender bounds the wait for an answer.
    bool send_control(const std::string& node, std::string_view frame);

    // The "host:port" the listener is bound to.
    const std::string& address() const { return address_; }
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

private:
    struct OutFrame {
        uint64_t seq = 0;
        int64_t queued_ms = 0;  // mono
        std::string bytes;
        bool has_token = false;
        bool acked = false;
        broker::Token token;
    };
    struct Peer {
        std::string name;
        std::string address;  // empty until membership names it
        bool alive = false;   // in the last membership listing
        // under mutex_
        std::deque<OutFrame> queue;  // not yet written to the connection
        size_t queue_bytes = 0;
        uint64_t next_seq = 1;
        std::string control;  // Acks and takeover frames to send
        bool linked = false;  // up, as the senders of control frames see it
        // inbound dedupe, under mutex_: what this peer's incarnation sent that was taken
        uint64_t in_incarnation = 0;
        uint64_t delivered_upto = 0;
        std::set<uint64_t> in_pending;
        // link thread only
        int fd = -1;
        bool connecting = false;                 // a non-blocking connect in progress
        bool up = false;                         // both Hellos exchanged
        int64_t opened_ms = 0;                   // mono, when fd was dialled or accepted
        std::unique_ptr<net::TlsTransport> tls;  // with TLS on; its handshake may be going on
        std::string in;
        std::string out;
        size_t out_pos = 0;
        std::deque<OutFrame> unacked;  // written, waiting for the Ack
        int64_t next_dial_ms = 0;
        int64_t backoff_ms = 100;
    };
    struct Anonymous {  // an accepted connection before its Hello
        int fd = -1;
        std::string in;
        int64_t opened_ms = 0;
        std::unique_ptr<net::TlsTransport> tls;
    };

    void run();
    void refresh_peers(int64_t now_ms);
    // Answers "failed" what has waited longer than ack_timeout_ms.
    void expire(int64_t now_ms);
    void dial(Peer& p, int64_t now_ms);
    void close_peer(Peer& p, const std::string& why);
    void fail_all(Peer& p);
    void on_readable(Peer& p);
    void on_writable(Peer& p);
    void accept_all();
    void read_anonymous(size_t i);
    // Reads what the socket (through TLS when on) has into `in`: Again when it has no more,
    // Closed / Failed when the connection ended; a TLS handshake still going on reads nothing.
    net::Io read_into(int fd, net::TlsTransport* tls, std::string& in);
    // Moves a TLS handshake on (Done at once without TLS, or once it is complete); a failure
    // is logged.
    net::Io::Status tls_step(int fd, net::TlsTransport* tls, const std::string& who);
    // The poll events for a connection that wants `want` (POLLIN | POLLOUT bits).
    static short events_for(const net::TlsTransport* tls, short want);
    // Takes the frames in `p.in`; false when the peer broke the protocol.
    bool take_frames(Peer& p);
    void came_up(Peer& p, uint64_t incarnation, bool reply);
    void fill_out(Peer& p);
    void wake();
    Peer* peer_locked(const std::string& name);

    Options options_;
    Callbacks cb_;
    std::string address_;
    int listen_fd_ = -1;
    int wake_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> woken_{false};
    std::atomic<uint64_t> dropped_{0};
    std::thread thread_;

    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Peer>> peers_;  // by name; erased on the thread only
    struct Taken {  // a Publish whose Ack waits for the broker
        std::string peer;
        uint64_t incarnation = 0;
        uint64_t seq = 0;
    };
    std::unordered_map<uint64_t, Taken> cookies_;
    uint64_t next_cookie_ = 1;
    std::vector<Anonymous> anonymous_;  // link thread only
    int64_t last_refresh_ms_ = 0;
};

}  // namespace mqttd::cluster
