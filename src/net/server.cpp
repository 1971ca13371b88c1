#include "net/server.h"

#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <span>
#include <thread>

#include <unistd.h>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "mqtt/decoder.h"
#include "mqtt/encoder.h"

namespace mqttd::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// Sockets and timers name the io_context's executor type rather than any_io_executor: the
// socket is 32 B smaller and each pending operation 40 B smaller (no type-erased executor),
// which counts for every idle connection.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>,
                                         Executor>;

class ClientLink;

namespace {

constexpr size_t kReadChunk = 16 * 1024;
// Out buffers larger than this are released once written, so a burst does not stay with an
// idle connection.
constexpr size_t kKeepOutCapacity = 64 * 1024;
constexpr uint32_t kNoSlot = std::numeric_limits<uint32_t>::max();

// A link accepted on this worker that has not sent its CONNECT yet, since when (mono ms).
struct AwaitingConnect {
    ClientLink* link = nullptr;  // null once it sent CONNECT or closed
    int64_t since_ms = 0;
};

struct WorkerLoop {
    // Links waiting for CONNECT, oldest first; the tick closes those past mqtt.connect_timeout
    // (DESIGN.md, Bad input). Entry i has slot number awaiting_base + i (mod 2^32). Declared
    // before ctx: links destroyed with ctx's pending handlers may still unlist themselves.
    std::deque<AwaitingConnect> awaiting;
    uint32_t awaiting_base = 0;
    asio::io_context ctx{1};
    std::vector<uint8_t> scratch = std::vector<uint8_t>(4 * kReadChunk);  // shared read buffer
    std::unique_ptr<asio::executor_work_guard<Executor>> guard;
    std::unique_ptr<Timer> tick;
    std::thread thread;
};

struct ListenerState {
    std::string address;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::atomic<uint64_t> current{0};
    std::atomic<uint64_t> shutdowns{0};
    uint64_t max_clients = 0;
    uint32_t next_worker = 0;
};

}  // namespace

// One MQTT connection's socket, read buffer and decoder; the broker's view of it is the Link.
// Lives on one worker's thread; kept alive by its pending handlers through an intrusive,
// non-atomic count (only that thread touches it). Its size is per connection: it keeps no
// timer (the worker's tick enforces the connect timeout), no second write buffer (writes go
// straight from out_, waiting for writability when the socket is full) and the peer address
// as bytes.
class ClientLink final : public broker::Link {
public:
    ClientLink(Server::Impl& server, uint32_t worker, Socket socket, ListenerState& listener);
    ~ClientLink() override;
    ClientLink(const ClientLink&) = delete;
    ClientLink& operator=(const ClientLink&) = delete;

    void start(std::vector<uint8_t> initial = {});
    // No CONNECT within mqtt.connect_timeout: called by the tick, which has unlisted it.
    void connect_timed_out();
    // The worker is going away: forget the slot in its list.
    void forget_slot() { connect_slot_ = kNoSlot; }

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
    std::string peer_ip() const override;
    uint16_t peer_port() const override { return peer_port_; }
    const char* transport() const override { return "tcp"; }
    void pause() override;
    void resume() override;
    void attach(broker::Connection* conn) override { conn_ = conn; }

private:
    using Ref = boost::intrusive_ptr<ClientLink>;
    Ref ref() { return Ref(this); }
    void await_connect();
    void leave_connect_wait();
    void read();
    void on_readable();
    // Decodes and handles the packets in `data`; returns the bytes used (all of them when the
    // link failed or moved).
    size_t parse(std::span<const uint8_t> data);
    void parse_buffered();
    bool handle_connect(mqtt::Connect&& c, std::span<const uint8_t> rest);
    void write();
    void wait_writable();
    void shutdown_socket();
    void finish();
    void fail(mqtt::ReasonCode rc);

    uint32_t refs_ = 0;
    const uint32_t worker_;
    uint32_t connect_slot_ = kNoSlot;  // in the worker's awaiting list, until CONNECT
    uint16_t peer_port_ = 0;
    bool peer_v6_ = false;
    bool write_posted_ = false;
    bool writing_now_ = false;  // waiting for the socket to take more of out_
    bool closing_ = false;
    bool closed_ = false;
    bool moved_ = false;
    bool connect_seen_ = false;
    bool paused_ = false;
    bool reading_ = false;
    bool held_ = false;  // a reference keeps a paused link alive (no read pending)
    Server::Impl& server_;
    ListenerState& listener_;
    Socket socket_;
    std::vector<uint8_t> buf_;  // received, not yet decoded (a partial packet, or after pause)
    mqtt::Decoder decoder_;
    broker::Connection* conn_ = nullptr;
    std::string out_;                       // encoded, not yet taken by the socket
    std::array<uint8_t, 16> peer_bytes_{};  // IPv4 in the first 4 bytes
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
        // for CONNECT must not unlist themselves while the contexts are destroyed.
        for (auto& l : listeners) {
            l->acceptor.reset();
        }
        for (auto& loop : loops) {
            for (auto& a : loop->awaiting) {
                if (a.link) {
                    a.link->forget_slot();
                }
            }
            loop->awaiting.clear();
        }
        loops.clear();
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    Impl(broker::Broker& b, uint64_t mc) : broker(b), max_clients(mc) {
        for (uint32_t i = 0; i < b.worker_count(); ++i) {
            auto loop = std::make_unique<WorkerLoop>();
            auto* ctx = &loop->ctx;
            b.worker(i).set_poster(
                    [ctx](broker::Worker::Task t) { asio::post(*ctx, std::move(t)); });
            loops.push_back(std::move(loop));
        }
    }

    void accept(ListenerState& l) {
        uint32_t w = l.next_worker++ % static_cast<uint32_t>(loops.size());
        l.acceptor->async_accept(loops[w]->ctx, [this, &l, w](const error_code& ec, Socket socket) {
            if (ec == asio::error::operation_aborted || !l.acceptor->is_open()) {
                return;
            }
            if (!ec) {
                if (l.current.load() >= l.max_clients) {
                    error_code ignored;
                    socket.close(ignored);
                } else {
                    // The socket belongs to worker w's context: start it there.
                    asio::post(loops[w]->ctx, [this, &l, w, s = std::move(socket)]() mutable {
                        boost::intrusive_ptr<ClientLink>(new ClientLink(*this, w, std::move(s), l))
                                ->start();
                    });
                }
            } else {
                spdlog::warn("accept on {}: {}", l.address, ec.message());
            }
            accept(l);
        });
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
};

ClientLink::ClientLink(Server::Impl& server,
                       uint32_t worker,
                       Socket socket,
                       ListenerState& listener)
    : worker_(worker),
      server_(server),
      listener_(listener),
      socket_(std::move(socket)),
      decoder_(mqtt::Side::Server,
               mqtt::DecoderLimits{server.broker.settings().max_packet_size.load()}) {
    error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) {
        auto addr = ep.address();
        peer_v6_ = addr.is_v6();
        if (peer_v6_) {
            peer_bytes_ = addr.to_v6().to_bytes();
        } else {
            auto v4 = addr.to_v4().to_bytes();
            std::copy(v4.begin(), v4.end(), peer_bytes_.begin());
        }
        peer_port_ = ep.port();
    }
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    listener_.current.fetch_add(1);
}

ClientLink::~ClientLink() {
    leave_connect_wait();
    if (!moved_) {
        listener_.current.fetch_sub(1);
        listener_.shutdowns.fetch_add(1);
    }
}

std::string ClientLink::peer_ip() const {
    if (peer_v6_) {
        return asio::ip::address_v6(peer_bytes_).to_string();
    }
    return asio::ip::address_v4(asio::ip::address_v4::bytes_type{peer_bytes_[0], peer_bytes_[1],
                                                                 peer_bytes_[2], peer_bytes_[3]})
            .to_string();
}

void ClientLink::await_connect() {
    auto& loop = *server_.loops[worker_];
    connect_slot_ = loop.awaiting_base + static_cast<uint32_t>(loop.awaiting.size());
    loop.awaiting.push_back(AwaitingConnect{this, mono_ms()});
}

void ClientLink::leave_connect_wait() {
    if (connect_slot_ == kNoSlot) {
        return;
    }
    auto& loop = *server_.loops[worker_];
    loop.awaiting[connect_slot_ - loop.awaiting_base].link = nullptr;
    connect_slot_ = kNoSlot;
}

void ClientLink::connect_timed_out() {
    if (!conn_ && !closed_) {
        close();  // no CONNECT in time (mqtt.connect_timeout)
    }
}

void ClientLink::start(std::vector<uint8_t> initial) {
    buf_ = std::move(initial);
    if (!connect_seen_) {
        await_connect();
    }
    if (!buf_.empty()) {
        parse_buffered();
    }
    if (!closing_ && !moved_ && !paused_) {
        read();
    }
}

void ClientLink::pause() {
    paused_ = true;
    if (!held_) {
        held_ = true;
        intrusive_ptr_add_ref(this);
    }
}

void ClientLink::resume() {
    if (!paused_) {
        return;
    }
    paused_ = false;
    asio::post(socket_.get_executor(), [self = ref()] {
        if (self->held_ && !self->paused_) {
            self->held_ = false;
            intrusive_ptr_release(self.get());  // `self` still holds one; paused again: kept
        }
        if (self->closed_ || self->closing_ || self->paused_) {
            return;
        }
        self->parse_buffered();
        if (!self->closing_ && !self->closed_ && !self->paused_ && !self->moved_ &&
            !self->reading_) {
            self->read();
        }
    });
}

void ClientLink::read() {
    // Wait for readability, then read into the worker's scratch buffer: an idle connection
    // holds no read buffer of its own (only a partial packet, when one is pending).
    reading_ = true;
    socket_.async_wait(Socket::wait_read, [self = ref()](const error_code& ec) {
        self->reading_ = false;
        if (ec) {
            self->finish();
            return;
        }
        self->on_readable();
    });
}

void ClientLink::on_readable() {
    if (closed_) {
        return;
    }
    auto& scratch = server_.loops[worker_]->scratch;
    error_code ec;
    size_t n = socket_.read_some(asio::buffer(scratch), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        read();
        return;
    }
    if (ec || n == 0) {
        finish();
        return;
    }
    server_.broker.worker(worker_).metrics().add(broker::Metric::BytesReceived, n);
    if (buf_.empty()) {
        // Common case: whole packets straight from the scratch buffer; only a trailing partial
        // packet is kept.
        size_t used = parse(std::span<const uint8_t>(scratch.data(), n));
        if (!moved_ && !closed_ && used < n) {
            buf_.assign(scratch.begin() + static_cast<ptrdiff_t>(used),
                        scratch.begin() + static_cast<ptrdiff_t>(n));
        }
    } else {
        buf_.insert(buf_.end(), scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(n));
        parse_buffered();
    }
    if (moved_ || closed_ || paused_ || closing_) {
        return;  // closing: what is queued is written and then the socket closes
    }
    read();
}

void ClientLink::parse_buffered() {
    // Parsing may pause or move the link; the bytes not used are kept in buf_ either way.
    std::vector<uint8_t> data = std::move(buf_);
    buf_.clear();
    size_t used = parse(std::span<const uint8_t>(data.data(), data.size()));
    if (moved_ || closed_) {
        return;
    }
    if (used < data.size()) {
        data.erase(data.begin(), data.begin() + static_cast<ptrdiff_t>(used));
        if (data.capacity() > 4 * kReadChunk && data.size() < kReadChunk) {
            data.shrink_to_fit();
        }
        buf_ = std::move(data);
    }
}

size_t ClientLink::parse(std::span<const uint8_t> data) {
    auto& worker = server_.broker.worker(worker_);
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
    auto& broker = server_.broker;
    decoder_.set_version(c.version);
    uint32_t home = c.client_id.empty() ? worker_ : broker.home_worker(c.client_id);
    if (home != worker_) {
        // Move to the session's home worker: release the socket here, adopt it there, with
        // whatever bytes followed the CONNECT.
        moved_ = true;
        std::vector<uint8_t> rest(rest_bytes.begin(), rest_bytes.end());
        error_code ec;
        auto protocol = socket_.local_endpoint(ec).protocol();
        int fd = socket_.release(ec);
        if (ec) {
            moved_ = false;
            finish();
            return false;
        }
        auto* impl = &server_;
        auto* listener = &listener_;
        auto version = c.version;
        asio::post(impl->loops[home]->ctx,
                   [impl, listener, home, fd, protocol, rest = std::move(rest),
                    connect = std::move(c), version]() mutable {
                       Socket s(impl->loops[home]->ctx.get_executor());
                       error_code ec2;
                       s.assign(protocol, fd, ec2);
                       if (ec2) {
                           ::close(fd);
                           listener->current.fetch_sub(1);
                           return;
                       }
                       listener->current.fetch_sub(1);  // the new link counts itself again
                       boost::intrusive_ptr<ClientLink> link(
                               new ClientLink(*impl, home, std::move(s), *listener));
                       link->decoder_.resume_after_connect(version);
                       link->connect_seen_ = true;
                       auto r = impl->broker.worker(home).on_connect(*link, std::move(connect));
                       if (r == broker::ConnectResult::Refused) {
                           return;
                       }
                       link->start(std::move(rest));
                   });
        return false;
    }
    auto r = broker.worker(worker_).on_connect(*this, std::move(c));
    return r != broker::ConnectResult::Refused;  // Pending: paused, parse() stops
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
    asio::post(socket_.get_executor(), [self = ref()] {
        self->write_posted_ = false;
        self->write();
    });
}

void ClientLink::write() {
    // Non-blocking writes straight from out_; when the socket is full, wait for writability
    // with no buffer handed to Asio, so the broker may keep appending to out_ meanwhile.
    if (writing_now_ || closed_) {
        return;
    }
    auto& metrics = server_.broker.worker(worker_).metrics();
    while (!out_.empty()) {
        error_code ec;
        size_t n = socket_.write_some(asio::buffer(out_), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            wait_writable();
            return;
        }
        if (ec) {
            out_.clear();
            finish();
            return;
        }
        metrics.add(broker::Metric::BytesSent, n);
        out_.erase(0, n);
    }
    if (out_.capacity() > kKeepOutCapacity) {
        std::string().swap(out_);
    }
    if (closing_) {
        shutdown_socket();
    }
}

void ClientLink::wait_writable() {
    writing_now_ = true;
    socket_.async_wait(Socket::wait_write, [self = ref()](const error_code& ec) {
        self->writing_now_ = false;
        if (ec) {
            self->out_.clear();
            self->finish();
            return;
        }
        self->write();
    });
}

void ClientLink::close() {
    if (closing_ || closed_) {
        return;
    }
    closing_ = true;
    if (!writing_now_) {
        // Writes what is queued, then shuts the socket down (write() sees closing_).
        asio::post(socket_.get_executor(), [self = ref()] { self->write(); });
    }
}

void ClientLink::shutdown_socket() {
    error_code ec;
    socket_.shutdown(Socket::shutdown_both, ec);
    finish();
}

void ClientLink::finish() {
    if (closed_ || moved_) {
        return;
    }
    Ref keep = ref();  // the hold of a paused link may be the last reference
    closed_ = true;
    closing_ = true;
    leave_connect_wait();
    if (held_) {
        held_ = false;
        intrusive_ptr_release(this);
    }
    error_code ec;
    socket_.close(ec);
    if (conn_) {
        auto* conn = conn_;
        conn_ = nullptr;
        server_.broker.worker(worker_).on_closed(*conn);
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
    l->address = address;
    l->max_clients = impl_->max_clients;
    l->acceptor = std::make_unique<tcp::acceptor>(impl_->loops[0]->ctx);
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
        });
    }
    for (uint32_t i = 0; i < impl_->loops.size(); ++i) {
        auto& loop = *impl_->loops[i];
        asio::post(loop.ctx, [this, i, &loop] {
            impl_->broker.worker(i).shutdown();
            loop.tick->cancel();
        });
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
