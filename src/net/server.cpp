#include "net/server.h"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <span>
#include <stdexcept>
#include <thread>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/basic_stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "mqtt/decoder.h"
#include "mqtt/encoder.h"

namespace mqttd::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// Timers and descriptors name the io_context's executor type rather than any_io_executor (no
// type-erased executor in each object or pending operation).
using Executor = asio::io_context::executor_type;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>,
                                         Executor>;
using Descriptor = asio::posix::basic_stream_descriptor<Executor>;

class ClientLink;

namespace {

constexpr size_t kReadChunk = 16 * 1024;
// Out buffers larger than this are released once written, so a burst does not stay with an
// idle connection.
constexpr size_t kKeepOutCapacity = 64 * 1024;
constexpr uint32_t kNoSlot = std::numeric_limits<uint32_t>::max();
constexpr int kMaxEvents = 256;  // per epoll_wait

// A link accepted on this worker that has not sent its CONNECT yet, since when (mono ms).
struct AwaitingConnect {
    ClientLink* link = nullptr;  // null once it sent CONNECT or closed
    int64_t since_ms = 0;
};

// One worker's event loop. Client sockets are not registered with Asio one by one: each
// worker keeps its own epoll set (level-triggered, the link's address in each event) and Asio
// watches only that set's descriptor. An idle connection then costs its epoll entry and the
// link, not Asio's per-descriptor state and a pending operation (about 240 B each).
struct WorkerLoop {
    Server::Impl* impl = nullptr;
    uint32_t index = 0;  // the worker's number
    // Links waiting for CONNECT, oldest first; the tick closes those past mqtt.connect_timeout
    // (DESIGN.md, Bad input). Entry i has slot number awaiting_base + i (mod 2^32). Declared
    // before ctx: links destroyed with ctx's pending handlers may still unlist themselves.
    std::deque<AwaitingConnect> awaiting;
    uint32_t awaiting_base = 0;
    // The open links of this worker; each holds one reference to itself while listed here.
    std::vector<ClientLink*> links;
    bool repoll = false;    // events may be left in the set: poll again before waiting
    bool stopping = false;  // Server::stop: stop watching once the last link is gone
    asio::io_context ctx{1};
    std::unique_ptr<Descriptor> watch;  // the epoll set, as Asio sees it
    int epfd() const { return watch->native_handle(); }
    std::vector<uint8_t> scratch = std::vector<uint8_t>(4 * kReadChunk);  // shared read buffer
    std::unique_ptr<asio::executor_work_guard<Executor>> guard;
    std::unique_ptr<Timer> tick;
    std::thread thread;
};

struct ListenerState {
    uint8_t index = 0;  // in Server::Impl::listeners
    std::string address;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::unique_ptr<Timer> retry;  // accept paused after running out of descriptors
    std::atomic<uint64_t> current{0};
    std::atomic<uint64_t> shutdowns{0};
    uint64_t max_clients = 0;
    uint32_t next_worker = 0;
};

}  // namespace

// One MQTT connection's socket, read buffer and decoder; the broker's view of it is the Link.
// Lives on one worker's thread; kept alive by an intrusive, non-atomic count (only that thread
// touches it): one reference while it is listed in its worker's links, one per posted handler.
// Its size is per connection: it keeps no timer (the worker's tick enforces the connect
// timeout), no second write buffer (writes go straight from out_, waiting for writability
// when the socket is full), the peer address as bytes and the socket as a bare descriptor.
class ClientLink final : public broker::Link {
public:
    ClientLink(WorkerLoop& loop, int fd, uint8_t listener);
    ~ClientLink() override;
    ClientLink(const ClientLink&) = delete;
    ClientLink& operator=(const ClientLink&) = delete;

    void start(std::vector<uint8_t> initial = {});
    // What epoll reported for this link's socket.
    void on_event(uint32_t events);
    // No CONNECT within mqtt.connect_timeout: called by the tick, which has unlisted it.
    void connect_timed_out();
    // The worker is going away: forget the slot in its list.
    void forget_slot() { connect_slot_ = kNoSlot; }
    // The server is destroyed with this link still open: close the socket, drop the list's
    // reference.
    void abandon();

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
    void attach(broker::Connection* conn) override { conn_ = conn; }

private:
    using Ref = boost::intrusive_ptr<ClientLink>;
    Ref ref() { return Ref(this); }
    WorkerLoop& loop() { return loop_; }
    broker::Worker& worker();
    ListenerState& listener();
    bool peer(sockaddr_storage& addr) const;
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
    void fail(mqtt::ReasonCode rc);

    uint32_t refs_ = 0;
    uint32_t connect_slot_ = kNoSlot;  // in the worker's awaiting list, until CONNECT
    uint32_t list_slot_ = kNoSlot;     // in the worker's links
    int fd_;
    uint32_t events_ = 0;  // registered in the worker's epoll set; 0 = not registered
    const uint8_t listener_;
    bool write_posted_ = false;
    bool writing_now_ = false;  // waiting for the socket to take more of out_
    bool closing_ = false;
    bool closed_ = false;
    bool moved_ = false;
    bool connect_seen_ = false;
    bool paused_ = false;
    WorkerLoop& loop_;
    // Received, not yet decoded (a partial packet, or bytes held while paused); allocated
    // only while there are some.
    std::unique_ptr<std::vector<uint8_t>> pending_;
    mqtt::Decoder decoder_;
    broker::Connection* conn_ = nullptr;
    std::string out_;  // encoded, not yet taken by the socket
};

struct Server::Impl {
    broker::Broker& broker;
    uint64_t max_clients;
    std::vector<std::unique_ptr<WorkerLoop>> loops;
    std::vector<std::unique_ptr<ListenerState>> listeners;
    bool started = false;
    bool stopped = false;

    ~Impl() {
        // Acceptors go before the contexts they are bound to; links still listed as waiting
        // for CONNECT must not unlist themselves while the contexts are destroyed, and links
        // still open (stop() timed out) give up their sockets first.
        for (auto& l : listeners) {
            l->retry.reset();
            l->acceptor.reset();
        }
        for (auto& loop : loops) {
            for (auto& a : loop->awaiting) {
                if (a.link) {
                    a.link->forget_slot();
                }
            }
            loop->awaiting.clear();
            auto open = std::move(loop->links);
            for (auto* link : open) {
                link->abandon();
            }
        }
        loops.clear();
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    Impl(broker::Broker& b, uint64_t mc) : broker(b), max_clients(mc) {
        for (uint32_t i = 0; i < b.worker_count(); ++i) {
            auto loop = std::make_unique<WorkerLoop>();
            loop->impl = this;
            loop->index = i;
            auto* ctx = &loop->ctx;
            b.worker(i).set_poster(
                    [ctx](broker::Worker::Task t) { asio::post(*ctx, std::move(t)); });
            int fd = ::epoll_create1(EPOLL_CLOEXEC);
            if (fd < 0) {
                throw std::runtime_error(std::string("cannot create an epoll set: ") +
                                         std::strerror(errno));
            }
            loop->watch = std::make_unique<Descriptor>(loop->ctx.get_executor(), fd);
            loops.push_back(std::move(loop));
        }
    }

    // Waits for the epoll set to have events, unless events may be left from the last poll.
    void watch(uint32_t w) {
        auto& loop = *loops[w];
        if (loop.repoll) {
            loop.repoll = false;
            asio::post(loop.ctx, [this, w] { poll(w); });
            return;
        }
        if (loop.stopping && loop.links.empty()) {
            return;  // nothing to watch: the context may run out of work
        }
        loop.watch->async_wait(Descriptor::wait_read, [this, w](const error_code& ec) {
            if (!ec) {
                poll(w);
            }
        });
    }

    // Handles one batch of socket events. A link closed while the batch runs stays allocated
    // until the batch is over (its list reference is released from a posted handler), so the
    // events after it may still name it.
    void poll(uint32_t w) {
        auto& loop = *loops[w];
        std::array<epoll_event, kMaxEvents> events;
        int n = ::epoll_wait(loop.epfd(), events.data(), kMaxEvents, 0);
        if (n == kMaxEvents) {
            loop.repoll = true;
        }
        for (int i = 0; i < n; ++i) {
            static_cast<ClientLink*>(events[static_cast<size_t>(i)].data.ptr)
                    ->on_event(events[static_cast<size_t>(i)].events);
        }
        watch(w);
    }

    void accept(ListenerState& l) {
        l.acceptor->async_wait(tcp::acceptor::wait_read, [this, &l](const error_code& ec) {
            if (ec == asio::error::operation_aborted || !l.acceptor->is_open()) {
                return;
            }
            if (ec) {
                spdlog::warn("accept on {}: {}", l.address, ec.message());
            }
            accept_ready(l);
        });
    }

    // Accepts every connection waiting (the acceptor's readiness is edge-triggered in Asio),
    // then waits again; out of descriptors, retries in 100 ms.
    void accept_ready(ListenerState& l) {
        for (;;) {
            int fd = ::accept4(l.acceptor->native_handle(), nullptr, nullptr,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                int e = errno;
                if (e == EINTR || e == ECONNABORTED || e == EPROTO) {
                    continue;
                }
                if (e == EAGAIN || e == EWOULDBLOCK) {
                    break;
                }
                spdlog::warn("accept on {}: {}", l.address, std::strerror(e));
                l.retry->expires_after(std::chrono::milliseconds(100));
                l.retry->async_wait([this, &l](const error_code& tec) {
                    if (!tec && l.acceptor->is_open()) {
                        accept_ready(l);
                    }
                });
                return;
            }
            if (l.current.load() >= l.max_clients) {
                ::close(fd);
                continue;
            }
            uint32_t w = l.next_worker++ % static_cast<uint32_t>(loops.size());
            // The connection lives on worker w: start it there.
            asio::post(loops[w]->ctx, [this, &l, w, fd] {
                boost::intrusive_ptr<ClientLink>(new ClientLink(*loops[w], fd, l.index))->start();
            });
        }
        accept(l);
    }

    void schedule_tick(uint32_t w) {
        auto& timer = *loops[w]->tick;
        timer.expires_after(std::chrono::milliseconds(500));
        timer.async_wait([this, w](const error_code& ec) {
            if (ec) {
                return;
            }
            broker.worker(w).tick(unix_ms());
            expire_connects(w);
            schedule_tick(w);
        });
    }

    void expire_connects(uint32_t w) {
        auto& loop = *loops[w];
        int64_t timeout_ms = broker.settings().connect_timeout_s.load() * 1000;
        int64_t now = mono_ms();
        while (!loop.awaiting.empty()) {
            AwaitingConnect a = loop.awaiting.front();
            if (a.link && now - a.since_ms < timeout_ms) {
                break;  // the oldest still waiting is in time, so are the younger ones
            }
            loop.awaiting.pop_front();
            ++loop.awaiting_base;
            if (a.link) {
                a.link->forget_slot();
                a.link->connect_timed_out();
            }
        }
    }

    // Server::stop on worker w's thread: the broker closes its connections, links still
    // waiting for CONNECT are closed, and the loop stops watching once the last link is gone.
    void stop_worker(uint32_t w) {
        auto& loop = *loops[w];
        broker.worker(w).shutdown();
        loop.tick->cancel();
        loop.stopping = true;
        std::vector<ClientLink*> waiting;
        for (auto& a : loop.awaiting) {
            if (a.link) {
                waiting.push_back(a.link);
            }
        }
        for (auto* link : waiting) {
            link->close();
        }
        if (loop.links.empty()) {
            loop.watch->cancel();
        }
    }
};

ClientLink::ClientLink(WorkerLoop& loop, int fd, uint8_t listener)
    : fd_(fd),
      listener_(listener),
      loop_(loop),
      decoder_(mqtt::Side::Server,
               mqtt::DecoderLimits{loop.impl->broker.settings().max_packet_size.load()}) {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    this->listener().current.fetch_add(1);
}

ClientLink::~ClientLink() {
    leave_connect_wait();
    if (!moved_) {
        listener().current.fetch_sub(1);
        listener().shutdowns.fetch_add(1);
    }
}

broker::Worker& ClientLink::worker() {
    return loop_.impl->broker.worker(loop_.index);
}

ListenerState& ClientLink::listener() {
    return *loop_.impl->listeners[listener_];
}

void ClientLink::list() {
    auto& links = loop().links;
    list_slot_ = static_cast<uint32_t>(links.size());
    links.push_back(this);
    intrusive_ptr_add_ref(this);
}

void ClientLink::unlist() {
    if (list_slot_ == kNoSlot) {
        return;
    }
    auto& l = loop();
    ClientLink* last = l.links.back();
    l.links[list_slot_] = last;
    last->list_slot_ = list_slot_;
    l.links.pop_back();
    list_slot_ = kNoSlot;
    // The list's reference goes after the current handler: events of the batch being handled
    // may still name this link.
    asio::post(l.ctx, [self = Ref(this, false)] {});
    if (l.stopping && l.links.empty()) {
        l.watch->cancel();
    }
}

void ClientLink::abandon() {
    list_slot_ = kNoSlot;
    closed_ = true;
    conn_ = nullptr;
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    intrusive_ptr_release(this);
}

void ClientLink::leave_epoll() {
    // Explicitly, also before a close(): close() leaves the set only if no other descriptor
    // refers to the same socket, and an event naming this link must never come after its
    // release (or its move to another worker).
    if (events_ != 0) {
        ::epoll_ctl(loop_.epfd(), EPOLL_CTL_DEL, fd_, nullptr);
        events_ = 0;
    }
}

void ClientLink::update_interest() {
    if (closed_ || moved_) {
        return;
    }
    uint32_t want = 0;
    if (!paused_ && !closing_) {
        want |= EPOLLIN;
    }
    if (writing_now_) {
        want |= EPOLLOUT;
    }
    if (want == events_) {
        return;
    }
    // Not registered while nothing is wanted, so that a hang-up of a paused socket does not
    // keep reporting itself.
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = this;
    int op = events_ == 0 ? EPOLL_CTL_ADD : (want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
    if (::epoll_ctl(loop().epfd(), op, fd_, &ev) != 0) {
        spdlog::warn("epoll_ctl on a client socket: {}", std::strerror(errno));
        events_ = 0;
        out_.clear();
        finish();
        return;
    }
    events_ = want;
}

bool ClientLink::peer(sockaddr_storage& addr) const {
    socklen_t len = sizeof(addr);
    return fd_ >= 0 && ::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
}

std::string ClientLink::peer_ip() const {
    sockaddr_storage a{};
    if (!peer(a)) {
        return {};
    }
    if (a.ss_family == AF_INET6) {
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, b.size());
        return asio::ip::address_v6(b).to_string();
    }
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in&>(a).sin_addr, b.size());
    return asio::ip::address_v4(b).to_string();
}

uint16_t ClientLink::peer_port() const {
    sockaddr_storage a{};
    if (!peer(a)) {
        return 0;
    }
    return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(a).sin6_port
                                         : reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

void ClientLink::await_connect() {
    auto& l = loop();
    connect_slot_ = l.awaiting_base + static_cast<uint32_t>(l.awaiting.size());
    l.awaiting.push_back(AwaitingConnect{this, mono_ms()});
}

void ClientLink::leave_connect_wait() {
    if (connect_slot_ == kNoSlot) {
        return;
    }
    auto& l = loop();
    l.awaiting[connect_slot_ - l.awaiting_base].link = nullptr;
    connect_slot_ = kNoSlot;
}

void ClientLink::connect_timed_out() {
    if (!conn_ && !closed_) {
        close();  // no CONNECT in time (mqtt.connect_timeout)
    }
}

void ClientLink::start(std::vector<uint8_t> initial) {
    list();
    if (!initial.empty()) {
        pending_ = std::make_unique<std::vector<uint8_t>>(std::move(initial));
    }
    if (!connect_seen_) {
        await_connect();
    }
    parse_buffered();
    update_interest();
}

void ClientLink::on_event(uint32_t events) {
    if (closed_ || moved_) {
        return;  // closed earlier in this batch
    }
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && writing_now_) {
        writing_now_ = false;
        write();
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && !closed_ && !paused_ && !closing_) {
        on_readable();
    }
    update_interest();
}

void ClientLink::resume() {
    if (!paused_) {
        return;
    }
    paused_ = false;
    asio::post(loop_.ctx, [self = ref()] {
        if (self->closed_ || self->closing_ || self->paused_ || self->moved_) {
            return;
        }
        self->parse_buffered();
        self->update_interest();
    });
}

void ClientLink::on_readable() {
    auto& l = loop();
    auto& scratch = l.scratch;
    ssize_t got = ::recv(fd_, scratch.data(), scratch.size(), 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;  // level-triggered: reported again while data is there
    }
    if (got <= 0) {
        finish();
        return;
    }
    auto n = static_cast<size_t>(got);
    if (n == scratch.size()) {
        l.repoll = true;  // more may be waiting
    }
    worker().metrics().add(broker::Metric::BytesReceived, n);
    if (!pending_) {
        // Common case: whole packets straight from the scratch buffer; only a trailing partial
        // packet is kept.
        size_t used = parse(std::span<const uint8_t>(scratch.data(), n));
        if (!moved_ && !closed_ && used < n) {
            pending_ = std::make_unique<std::vector<uint8_t>>(
                    scratch.begin() + static_cast<ptrdiff_t>(used),
                    scratch.begin() + static_cast<ptrdiff_t>(n));
        }
    } else {
        pending_->insert(pending_->end(), scratch.begin(),
                         scratch.begin() + static_cast<ptrdiff_t>(n));
        parse_buffered();
    }
}

void ClientLink::parse_buffered() {
    // Parsing may pause or move the link; the bytes not used are kept in pending_ either way.
    if (!pending_) {
        return;
    }
    std::unique_ptr<std::vector<uint8_t>> data = std::move(pending_);
    size_t used = parse(std::span<const uint8_t>(data->data(), data->size()));
    if (moved_ || closed_) {
        return;
    }
    if (used < data->size()) {
        data->erase(data->begin(), data->begin() + static_cast<ptrdiff_t>(used));
        if (data->capacity() > 4 * kReadChunk && data->size() < kReadChunk) {
            data->shrink_to_fit();
        }
        pending_ = std::move(data);
    }
}

size_t ClientLink::parse(std::span<const uint8_t> data) {
    auto& worker = this->worker();
    size_t pos = 0;
    while (pos < data.size() && !closing_ && !paused_) {
        mqtt::Packet packet;
        auto r = decoder_.feed(data.subspan(pos), packet);
        if (r.status == mqtt::Decoder::Status::NeedMore) {
            break;
        }
        if (r.status == mqtt::Decoder::Status::Error) {
            worker.metrics().add(broker::Metric::PacketsMalformed);
            fail(r.error);
            return data.size();
        }
        pos += r.consumed;
        if (!conn_) {
            auto* c = std::get_if<mqtt::Connect>(&packet);
            if (!c) {
                fail(mqtt::ReasonCode::ProtocolError);  // [MQTT-3.1.0-1]
                return data.size();
            }
            if (!handle_connect(std::move(*c), data.subspan(pos))) {
                return moved_ ? data.size() : pos;
            }
            continue;
        }
        auto rc = worker.on_packet(*conn_, packet);
        if (rc != mqtt::ReasonCode::Success) {
            fail(rc);
            return data.size();
        }
    }
    return pos;
}

bool ClientLink::handle_connect(mqtt::Connect&& c, std::span<const uint8_t> rest_bytes) {
    connect_seen_ = true;
    leave_connect_wait();
    decoder_.set_version(c.version);
    uint32_t home = c.client_id.empty() ? loop_.index : loop_.impl->broker.home_worker(c.client_id);
    if (home != loop_.index) {
        move_to(home, std::move(c), rest_bytes);
        return false;
    }
    auto r = worker().on_connect(*this, std::move(c));
    return r != broker::ConnectResult::Refused;  // Pending: paused, parse() stops
}

void ClientLink::move_to(uint32_t home, mqtt::Connect&& c, std::span<const uint8_t> rest_bytes) {
    // The session's home worker adopts the socket, with whatever bytes followed the CONNECT.
    leave_epoll();
    moved_ = true;
    int fd = fd_;
    fd_ = -1;
    unlist();
    std::vector<uint8_t> rest(rest_bytes.begin(), rest_bytes.end());
    auto* to = loop_.impl->loops[home].get();
    auto listener = listener_;
    auto version = c.version;
    this->listener().current.fetch_sub(1);  // the new link counts itself again
    asio::post(to->ctx, [to, listener, fd, rest = std::move(rest), connect = std::move(c),
                         version]() mutable {
        boost::intrusive_ptr<ClientLink> link(new ClientLink(*to, fd, listener));
        link->decoder_.resume_after_connect(version);
        link->connect_seen_ = true;
        link->list();
        auto r = link->worker().on_connect(*link, std::move(connect));
        if (r == broker::ConnectResult::Refused) {
            link->update_interest();  // refused: the CONNACK is written, then the close
            return;
        }
        if (!rest.empty()) {
            link->pending_ = std::make_unique<std::vector<uint8_t>>(std::move(rest));
            if (!link->paused_) {
                link->parse_buffered();
            }
        }
        link->update_interest();
    });
}

void ClientLink::fail(mqtt::ReasonCode rc) {
    // MQTT 5: tell the client why before closing ([MQTT-4.13.1-1]); 3.x just closes.
    if (conn_ && decoder_.version() == mqtt::Version::V5 && mqtt::is_error(rc)) {
        mqtt::encode_disconnect(out_, mqtt::Version::V5, mqtt::Disconnect{rc, {}});
    } else if (!conn_ && rc == mqtt::ReasonCode::UnsupportedProtocolVersion) {
        // 3.1.1 [MQTT-3.1.2-2]: CONNACK 0x01 then close.
        mqtt::encode_connack(
                out_, mqtt::Version::V311,
                mqtt::Connack{false, mqtt::ReasonCode::UnsupportedProtocolVersion, {}});
    }
    close();
}

void ClientLink::flush() {
    if (write_posted_ || writing_now_ || closed_) {
        return;
    }
    write_posted_ = true;
    asio::post(loop().ctx, [self = ref()] {
        self->write_posted_ = false;
        self->write();
        self->update_interest();
    });
}

void ClientLink::write() {
    // Non-blocking writes straight from out_; when the socket is full, wait for writability
    // (EPOLLOUT), so the broker may keep appending to out_ meanwhile.
    if (writing_now_ || closed_) {
        return;
    }
    auto& metrics = worker().metrics();
    while (!out_.empty()) {
        ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                writing_now_ = true;  // update_interest() adds EPOLLOUT
                return;
            }
            out_.clear();
            finish();
            return;
        }
        metrics.add(broker::Metric::BytesSent, static_cast<size_t>(n));
        out_.erase(0, static_cast<size_t>(n));
    }
    if (out_.capacity() > kKeepOutCapacity) {
        std::string().swap(out_);
    }
    if (closing_) {
        shutdown_socket();
    }
}

void ClientLink::close() {
    if (closing_ || closed_) {
        return;
    }
    closing_ = true;
    if (!writing_now_) {
        // Writes what is queued, then shuts the socket down (write() sees closing_).
        asio::post(loop().ctx, [self = ref()] {
            self->write();
            self->update_interest();
        });
    }
}

void ClientLink::shutdown_socket() {
    ::shutdown(fd_, SHUT_RDWR);
    finish();
}

void ClientLink::finish() {
    if (closed_ || moved_) {
        return;
    }
    Ref keep = ref();  // the list's reference may be the last one
    closed_ = true;
    closing_ = true;
    leave_connect_wait();
    leave_epoll();
    ::close(fd_);
    fd_ = -1;
    unlist();
    if (conn_) {
        auto* conn = conn_;
        conn_ = nullptr;
        worker().on_closed(*conn);
    }
}

Server::Server(broker::Broker& broker, uint64_t max_clients)
    : impl_(std::make_unique<Impl>(broker, max_clients)) {}

Server::~Server() {
    stop();
}

std::string Server::listen_tcp(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) {
        return "listener address \"" + address + "\" is not host:port";
    }
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    int port = 0;
    try {
        port = std::stoi(address.substr(colon + 1));
    } catch (...) {
        port = -1;
    }
    if (port < 0 || port > 65535) {
        return "listener address \"" + address + "\" has no valid port";
    }
    error_code ec;
    auto ip = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec) {
        return "listener address \"" + address + "\": " + ec.message();
    }
    auto l = std::make_unique<ListenerState>();
    if (impl_->listeners.size() >= std::numeric_limits<uint8_t>::max()) {
        return "too many listeners";
    }
    l->index = static_cast<uint8_t>(impl_->listeners.size());
    l->address = address;
    l->max_clients = impl_->max_clients;
    l->acceptor = std::make_unique<tcp::acceptor>(impl_->loops[0]->ctx);
    l->retry = std::make_unique<Timer>(impl_->loops[0]->ctx.get_executor());
    tcp::endpoint ep(ip, static_cast<uint16_t>(port));
    l->acceptor->open(ep.protocol(), ec);
    if (!ec) {
        l->acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
        l->acceptor->bind(ep, ec);
    }
    if (!ec) {
        l->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (!ec) {
        l->acceptor->native_non_blocking(true, ec);  // accept_ready() calls accept4 itself
    }
    if (ec) {
        return "cannot listen on " + address + ": " + ec.message();
    }
    impl_->listeners.push_back(std::move(l));
    return {};
}

uint16_t Server::bound_port(size_t i) const {
    error_code ec;
    return impl_->listeners.at(i)->acceptor->local_endpoint(ec).port();
}

void Server::start() {
    if (impl_->started) {
        return;
    }
    impl_->started = true;
    for (auto& l : impl_->listeners) {
        impl_->accept(*l);
    }
    for (uint32_t i = 0; i < impl_->loops.size(); ++i) {
        auto& loop = *impl_->loops[i];
        loop.guard = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
                loop.ctx.get_executor());
        loop.tick = std::make_unique<Timer>(loop.ctx.get_executor());
        impl_->schedule_tick(i);
        impl_->watch(i);
        loop.thread = std::thread([&loop] { loop.ctx.run(); });
    }
}

void Server::stop() {
    if (!impl_->started || impl_->stopped) {
        return;
    }
    impl_->stopped = true;
    for (auto& l : impl_->listeners) {
        asio::post(impl_->loops[0]->ctx, [&l] {
            error_code ec;
            l->acceptor->close(ec);
            l->retry->cancel();
        });
    }
    for (uint32_t i = 0; i < impl_->loops.size(); ++i) {
        asio::post(impl_->loops[i]->ctx, [this, i] { impl_->stop_worker(i); });
    }
    // Give connections a moment to write what they have, then stop the loops.
    for (auto& loop : impl_->loops) {
        loop->guard.reset();
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (auto& loop : impl_->loops) {
        while (!loop->ctx.stopped() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        loop->ctx.stop();
    }
    for (auto& loop : impl_->loops) {
        if (loop->thread.joinable()) {
            loop->thread.join();
        }
    }
}

std::vector<ListenerInfo> Server::listeners() const {
    std::vector<ListenerInfo> out;
    for (const auto& l : impl_->listeners) {
        out.push_back(ListenerInfo{"mqtt:tcp", l->address, 1, l->max_clients, l->current.load(),
                                   l->shutdowns.load()});
    }
    return out;
}

}  // namespace mqttd::net
