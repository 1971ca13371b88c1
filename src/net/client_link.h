// net::ClientLink: one MQTT connection's socket, read buffer and decoder; the broker's view of
// it is the broker::Link it implements.
//
// Lifecycle (State, one value at a time):
//
//   Handshake --PROXY header read, TLS handshake done, WebSocket upgraded--> AwaitingConnect
//   AwaitingConnect --CONNECT decoded--> Connecting --broker accepted--> Open
//                                           \--CONNECT homed on another worker--> Moved
//   any of the above --close()--> Closing (what is queued is written, then the goodbye of the
//                                          transport and a shutdown) --> Closed
//   any --EOF, error, handshake failure or timeout--> Closed (freed with its last reference)
//
// A link starts in Handshake only when its listener has one (TLS, WebSocket, PROXY); the
// handshake and the wait for CONNECT are bounded by the worker's tick (handshake_timeout,
// then mqtt.connect_timeout). Besides the state, reading can be held for two reasons (holds_:
// the broker's pause() — authentication pending, acks waiting for the store — and the
// listener's rate_limit), and writing is Idle, Posted (a write runs after the current
// handler) or Blocked (the socket, or the transport, waits to become writable).
//
// Ownership: lives on one worker's thread; kept alive by an intrusive, non-atomic count (only
// that thread touches it): one reference while it is listed in its worker's links, one per
// deferred call. Its size is per connection: it keeps no timer (the worker's tick enforces
// the timeouts), no second write buffer (writes go straight from out_), the socket as a bare
// descriptor, and what only some listeners need (transport, PROXY state, read budget) behind
// one pointer that is null for plain TCP.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>

#include "broker/link.h"
#include "mqtt/decoder.h"
#include "net/transport.h"
#include "net/worker_loop.h"

namespace mqttd::broker {
class Worker;
}  // namespace mqttd::broker

namespace mqttd::net {

class Listener;

// A token bucket over the bytes read (EMQ's rate_limit = bytes_per_second,burst).
struct ReadBudget {
    int64_t tokens = 0;   // may go negative: the debt is waited for before reading again
    int64_t last_ms = 0;  // of the last refill
};

// What only some links need: null for a plain TCP link on a listener without rate_limit or
// proxy_protocol. Moves with the link to its home worker.
struct LinkExtras {
    std::unique_ptr<Transport> transport;  // TLS, WebSocket or both; null = the socket itself
    std::string proxy_header;              // PROXY header bytes read so far
    bool proxy_pending = false;            // the PROXY header is still to come
    std::optional<sockaddr_storage> peer;  // the client's address from the PROXY header
    ReadBudget budget;
};

class ClientLink final : public broker::Link {
public:
    enum class State : uint8_t {
        Handshake,
        AwaitingConnect,
        Connecting,
        Open,
        Closing,
        Draining,  // closed for the broker; FIN sent, reading and dropping what the peer sends
        Closed,
        Drained,  // closed after draining (the listener's count was given back then)
        Moved,
    };
    enum class Write : uint8_t { Idle, Posted, Blocked };

    ClientLink(WorkerLoop& loop, int fd, uint8_t listener, std::unique_ptr<LinkExtras> extras);
    ~ClientLink() override;
    ClientLink(const ClientLink&) = delete;
    ClientLink& operator=(const ClientLink&) = delete;

    // A socket just accepted on this worker.
    void start();
    // A socket moved here after its CONNECT was decoded on another worker.
    static void adopt(WorkerLoop& loop, Handoff&& h);
    // What epoll reported for this link's socket.
    void on_event(uint32_t events);
    // A call deferred through the loop (WorkerLoop::defer).
    void run_deferred(Deferred what);
    // The handshake or the CONNECT did not come in time: called by the tick, which has
    // unlisted it.
    void connect_timed_out();
    // The worker is going away: forget the slot in its list.
    void forget_slot() { connect_slot_ = kNoSlot; }
    // Another link left the worker's list: this one now has its slot.
    void relist(uint32_t slot) { list_slot_ = slot; }
    // The server is destroyed with this link still open: close the socket, drop the list's
    // reference.
    void abandon();
    // The rate_limit's wait is over (WorkerLoop::throttle).
    // The time set with WorkerLoop::wake_at has come: a rate limit's budget is refilled, or
    // a lingering close ends.
    void wake_up();
    // Server stop: a lingering close ends now.
    void stop_lingering() {
        if (state_ == State::Draining) {
            release_socket(State::Drained);
        }
    }
    // The worker stops: links that have not reached the broker are closed by net.
    bool before_connect() const {
        return state_ == State::Handshake || state_ == State::AwaitingConnect;
    }

    friend void intrusive_ptr_add_ref(ClientLink* p) { ++p->refs_; }
    friend void intrusive_ptr_release(ClientLink* p) {
        if (--p->refs_ == 0) {
            delete p;
        }
    }

    // broker::Link
    std::string& out() override { return out_; }
    void flush() override;
    void close() override;
    // From the PROXY header, else asked from the socket (getpeername) on each call: the
    // broker keeps what it needs.
    std::string peer_ip() const override;
    uint16_t peer_port() const override;
    const char* transport() const override;
    std::string peer_subject(bool dn) const override;
    void pause() override { holds_ |= kHoldBroker; }  // interest drops at the next event
    void resume() override;
    void attach(broker::Connection* conn) override;
    void refuse(broker::ConnectRefusal why) override;

private:
    static constexpr uint8_t kHoldBroker = 1;  // broker::Link::pause()
    static constexpr uint8_t kHoldBudget = 2;  // over the listener's rate_limit

    broker::Worker& worker();
    Listener& listener();
    Transport* transport_or_null() const { return extras_ ? extras_->transport.get() : nullptr; }
    bool peer(sockaddr_storage& addr) const;
    // Reading is wanted: not held, not closing.
    bool reading() const {
        return holds_ == 0 && (state_ == State::Handshake || state_ == State::AwaitingConnect ||
                               state_ == State::Connecting || state_ == State::Open);
    }
    bool gone() const {
        return state_ == State::Closed || state_ == State::Drained || state_ == State::Moved;
    }
    bool closing() const { return state_ == State::Closing || state_ == State::Draining || gone(); }
    void list();
    void unlist();
    // Brings the epoll registration in line with what the link (and its transport) waits
    // for. Dropping interest is left to the next event that finds it unwanted
    // (level-triggered: it comes once).
    void update_interest();
    void leave_epoll();
    void leave_connect_wait();
    // Moves the handshake on: the PROXY header, then the transport's handshake.
    void advance_handshake();
    // Reads the PROXY header without reading past it; Done once it is complete.
    Io read_proxy_header();
    void on_readable();
    // A transport holds decoded bytes the socket will not announce: read them soon.
    void reread_if_buffered();
    // How much of `want` the listener's rate_limit lets this link read now (refills first).
    size_t budget_room(size_t want);
    // Counts `n` bytes read against the listener's rate_limit; holds reading when over.
    void spend_budget(size_t n);
    // Decodes and handles the packets in `data`; returns the bytes used (all of them when the
    // link failed or moved).
    size_t parse(std::span<const uint8_t> data);
    void parse_buffered();
    bool handle_connect(mqtt::Connect&& c, std::span<const uint8_t> rest);
    void move_to(uint32_t home, mqtt::Connect&& c, std::span<const uint8_t> rest);
    void write();
    // After the last write of a closing link: a lingering close (see client_link.cpp), or at
    // once while the server stops.
    void shutdown_socket();
    void drain_input();
    void release_socket(State final_state);
    // Tells the broker the connection is closed (once).
    void end_connection();
    // Closes the socket at once. `handshake_failed` counts it as such for the listener.
    void finish(bool handshake_failed = false);
    // Ends the connection for an error in what the client sent / for a refused CONNECT
    // (wire_errors.h decides what goes out).
    void fail(mqtt::ReasonCode rc);
    void refuse_now(mqtt::Version v, broker::ConnectRefusal why);

    uint32_t refs_ = 0;
    uint32_t connect_slot_ = kNoSlot;  // in the worker's connect wait, until CONNECT
    uint32_t list_slot_ = kNoSlot;     // in the worker's links
    int fd_;
    uint32_t events_ = 0;  // registered in the worker's epoll set; 0 = not registered
    const uint8_t listener_;
    State state_ = State::AwaitingConnect;
    Write write_ = Write::Idle;
    uint8_t holds_ = 0;
    WorkerLoop& loop_;
    std::unique_ptr<LinkExtras> extras_;
    // Received, not yet decoded (a partial packet, or bytes held while paused); allocated
    // only while there are some.
    std::unique_ptr<std::vector<uint8_t>> pending_;
    mqtt::Decoder decoder_;
    broker::Connection* conn_ = nullptr;
    std::string out_;  // encoded, not yet taken by the socket (or the transport)
};

}  // namespace mqttd::net
