// net::WorkerLoop: one worker's event loop — its io_context and thread, the epoll set its
// client sockets are registered in, the list of its open links, the links still waiting for
// their CONNECT, and a tick that drives the broker worker's timers.
//
// Client sockets are not registered with Asio one by one: each worker keeps its own epoll set
// (level-triggered, the link's address in each event) and Asio watches only that set's
// descriptor. An idle connection then costs its epoll entry and the link, not Asio's
// per-descriptor state and a pending operation (about 240 B each). Asio stays inside
// worker_loop.cpp (and listener.cpp): links ask the loop for deferred calls by name.
//
// Thread-safety: start/request_stop/release_guard/finish_stop/join from the main thread;
// post_new_link and post_handoff from any thread; everything else on the loop's own thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "mqtt/packets.h"
#include "net/server.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace mqttd::broker {
class Worker;
}  // namespace mqttd::broker

namespace mqttd::net {

class ClientLink;

inline constexpr uint32_t kNoSlot = std::numeric_limits<uint32_t>::max();
inline constexpr size_t kReadChunk = 16 * 1024;

// A link accepted on this worker that has not finished its handshake or sent its CONNECT
// yet, and when it is closed for that (mono ms).
struct AwaitingConnect {
    ClientLink* link = nullptr;  // null once it sent CONNECT or closed
    int64_t deadline_ms = 0;
};

struct LinkExtras;

// What a link asks its loop to run on the link after the current handler (the link is kept
// alive until then).
enum class Deferred : uint8_t {
    Flush,   // write what the broker queued, then update the epoll interest
    Close,   // write what is queued, then shut the socket down
    Resume,  // decode the bytes held while paused
    Read,    // read what the transport holds (the socket will not announce it)
};

// A link moving to the home worker of its client id after CONNECT: the socket, the CONNECT,
// and the bytes that followed it.
struct Handoff {
    Handoff();
    ~Handoff();
    Handoff(const Handoff&) = delete;
    Handoff& operator=(const Handoff&) = delete;
    int fd = -1;
    uint8_t listener = 0;
    mqtt::Connect connect;
    std::vector<uint8_t> rest;
    std::unique_ptr<LinkExtras> extras;  // the TLS / WebSocket state goes with the socket
};

class WorkerLoop {
public:
    WorkerLoop(Server::Impl& server, uint32_t index);
    ~WorkerLoop();
    WorkerLoop(const WorkerLoop&) = delete;
    WorkerLoop& operator=(const WorkerLoop&) = delete;

    uint32_t index() const { return index_; }
    broker::Worker& worker();
    Server::Impl& server() { return server_; }
    int epfd() const { return epfd_; }
    // Read buffer shared by the links of this worker.
    std::span<uint8_t> scratch() { return scratch_; }
    // Events may be left in the epoll set: poll again before waiting.
    void set_repoll() { repoll_ = true; }

    // --- main thread ---
    void start();
    // Posts the worker's stop: the broker closes its connections, links waiting for CONNECT
    // are closed, and the loop stops watching once the last link is gone.
    void request_stop();
    // Lets the context run out of work once the stop is done.
    void release_guard();
    // Waits until the context ran out of work or `deadline_ms` (mono) passed, then stops it.
    void finish_stop(int64_t deadline_ms);
    void join();
    // The server is destroyed: forget the links still waiting and give up the open ones.
    void abandon_links();

    // --- any thread ---
    // The loop's context (listeners bind their acceptors to worker 0's).
    boost::asio::io_context& context();
    // Runs `task` on this loop's thread (cold paths: stop, admin).
    void post(std::function<void()> task);
    // Creates a link for a socket accepted by listener `listener` and starts it on this loop.
    void post_new_link(int fd, uint8_t listener);
    // Adopts a link moved from another worker (see ClientLink::move_to).
    void post_handoff(std::unique_ptr<Handoff> h);

    // --- this loop's thread ---
    // Runs `what` on `link` after the current handler; the link is kept alive until then.
    void defer(ClientLink* link, Deferred what);
    // Drops one reference of `link` after the current handler: events of the batch being
    // handled may still name it.
    void release_later(ClientLink* link);

    // The open links of this worker; each holds one reference to itself while listed.
    uint32_t list(ClientLink* link);
    void unlist(uint32_t slot);

    // The connect wait (DESIGN.md, Bad input): returns the link's slot. The deadline of an
    // entry may move (handshake done: now the CONNECT's turn).
    uint32_t await_connect(ClientLink* link, int64_t deadline_ms);
    void set_connect_deadline(uint32_t slot, int64_t deadline_ms);
    void leave_connect_wait(uint32_t slot);

    // Calls link->wake_up() at `due_ms` (mono); the link is kept alive until then (a rate
    // limit's refill, the end of a lingering close).
    void wake_at(ClientLink* link, int64_t due_ms);
    bool stopping() const { return stopping_; }

private:
    struct Io;  // the Asio objects, in worker_loop.cpp
    void watch();
    void poll();
    void schedule_tick();
    void expire_connects();
    void stop_worker();
    void arm_throttle();
    void run_throttled();

    Server::Impl& server_;
    const uint32_t index_;
    // Links in their handshake or waiting for CONNECT, oldest first; the tick closes those
    // past their deadline. Entry i has slot number awaiting_base_ + i (mod 2^32). Declared
    // before io_: links destroyed with the context's pending handlers may still unlist
    // themselves.
    std::deque<AwaitingConnect> awaiting_;
    // Links over their rate_limit, each with one reference, and when to read again.
    std::vector<std::pair<ClientLink*, int64_t>> throttled_;
    int64_t throttle_armed_ms_ = 0;  // when the throttle timer fires; 0 = not armed
    uint32_t awaiting_base_ = 0;
    std::vector<ClientLink*> links_;
    bool repoll_ = false;
    bool stopping_ = false;  // stop: stop watching once the last link is gone
    int epfd_ = -1;
    std::vector<uint8_t> scratch_ = std::vector<uint8_t>(4 * kReadChunk);
    std::unique_ptr<Io> io_;
};

}  // namespace mqttd::net
