// net::ClientLink: one MQTT connection's socket, read buffer and decoder; the broker's view of
// it is the broker::Link it implements.
//
// Lifecycle (State, one value at a time):
//
//   AwaitingConnect --CONNECT decoded--> Connecting --broker accepted--> Open
//         |                                  |  \--CONNECT homed elsewhere--> Moved
//         +----------------+-----------------+--------------------------+
//                          v                                            v
//                       Closing (close(): what is queued is written, then shutdown)
//                          |
//                          v
//                       Closed (socket closed, unlisted; freed with the last reference)
//
// Besides the state, reading can be held (pause() from the broker: authentication pending,
// acks waiting for the store), and writing is Idle, Posted (a write runs after the current
// handler) or Blocked (the socket is full: waiting for EPOLLOUT).
//
// Ownership: lives on one worker's thread; kept alive by an intrusive, non-atomic count (only
// that thread touches it): one reference while it is listed in its worker's links, one per
// deferred call. Its size is per connection: it keeps no timer (the worker's tick enforces the
// connect timeout), no second write buffer (writes go straight from out_, waiting for
// writability when the socket is full), and the socket as a bare descriptor.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>

#include "broker/link.h"
#include "mqtt/decoder.h"
#include "net/worker_loop.h"

namespace mqttd::broker {
class Worker;
}  // namespace mqttd::broker

namespace mqttd::net {

class Listener;

class ClientLink final : public broker::Link {
public:
    enum class State : uint8_t { AwaitingConnect, Connecting, Open, Closing, Closed, Moved };
    enum class Write : uint8_t { Idle, Posted, Blocked };

    ClientLink(WorkerLoop& loop, int fd, uint8_t listener);
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
    // No CONNECT within mqtt.connect_timeout: called by the tick, which has unlisted it.
    void connect_timed_out();
    // The worker is going away: forget the slot in its list.
    void forget_slot() { connect_slot_ = kNoSlot; }
    // Another link left the worker's list: this one now has its slot.
    void relist(uint32_t slot) { list_slot_ = slot; }
    // The server is destroyed with this link still open: close the socket, drop the list's
    // reference.
    void abandon();
    // The worker stops: close a link that has not reached the broker.
    bool awaiting_connect() const { return state_ == State::AwaitingConnect; }

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
    // Asked from the socket (getpeername) on each call: the broker keeps what it needs.
    std::string peer_ip() const override;
    uint16_t peer_port() const override;
    const char* transport() const override { return "tcp"; }
    void pause() override { paused_ = true; }  // interest in reading drops at the next event
    void resume() override;
    void attach(broker::Connection* conn) override;
    void refuse(broker::ConnectRefusal why) override;

private:
    broker::Worker& worker();
    Listener& listener();
    bool peer(sockaddr_storage& addr) const;
    // Reading is wanted: not paused, not closing.
    bool reading() const {
        return !paused_ && (state_ == State::AwaitingConnect || state_ == State::Connecting ||
                            state_ == State::Open);
    }
    bool gone() const { return state_ == State::Closed || state_ == State::Moved; }
    bool closing() const { return state_ == State::Closing || gone(); }
    void list();
    void unlist();
    // Brings the epoll registration in line with what the link waits for. Dropping interest
    // is left to the next event that finds it unwanted (level-triggered: it comes once).
    void update_interest();
    void leave_epoll();
    void await_connect();
    void leave_connect_wait();
    void on_readable();
    // Decodes and handles the packets in `data`; returns the bytes used (all of them when the
    // link failed or moved).
    size_t parse(std::span<const uint8_t> data);
    void parse_buffered();
    bool handle_connect(mqtt::Connect&& c, std::span<const uint8_t> rest);
    void move_to(uint32_t home, mqtt::Connect&& c, std::span<const uint8_t> rest);
    void write();
    void shutdown_socket();
    void finish();
    // Ends the connection for an error in what the client sent / for a refused CONNECT
    // (wire_errors.h decides what goes out).
    void fail(mqtt::ReasonCode rc);
    void refuse_now(mqtt::Version v, broker::ConnectRefusal why);

    uint32_t refs_ = 0;
    uint32_t connect_slot_ = kNoSlot;  // in the worker's awaiting list, until CONNECT
    uint32_t list_slot_ = kNoSlot;     // in the worker's links
    int fd_;
    uint32_t events_ = 0;  // registered in the worker's epoll set; 0 = not registered
    const uint8_t listener_;
    State state_ = State::AwaitingConnect;
    Write write_ = Write::Idle;
    bool paused_ = false;
    WorkerLoop& loop_;
    // Received, not yet decoded (a partial packet, or bytes held while paused); allocated
    // only while there are some.
    std::unique_ptr<std::vector<uint8_t>> pending_;
    mqtt::Decoder decoder_;
    broker::Connection* conn_ = nullptr;
    std::string out_;  // encoded, not yet taken by the socket
};

}  // namespace mqttd::net
