#include "net/client_link.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "common/clock.h"
#include "net/address.h"
#include "net/listener.h"
#include "net/proxy_protocol.h"
#include "net/server_impl.h"
#include "net/socket_io.h"
#include "net/tls_transport.h"
#include "net/wire_errors.h"
#include "net/ws_transport.h"

namespace mqttd::net {

namespace {

// How long a closed connection keeps reading, and dropping, what its peer still sends.
constexpr int64_t kLingerMs = 2000;

using Ref = boost::intrusive_ptr<ClientLink>;

// Out buffers larger than this are released once written, so a burst does not stay with an
// idle connection.
constexpr size_t kKeepOutCapacity = 64 * 1024;

static_assert(kWantRead == EPOLLIN && kWantWrite == EPOLLOUT);
// An idle plain TCP link is one allocation of 128 bytes (glibc rounds 120 + 8 up to it); the
// transport seam added one pointer and the state enum took back the flags' bytes.
static_assert(sizeof(ClientLink) <= 120, "a plain TCP link grew past its 128-byte chunk");

// The transport a new connection of listener `l` needs, or null (plain TCP).
std::unique_ptr<Transport> make_transport(const Listener& l, int fd, uint32_t max_packet) {
    const auto& cfg = l.config();
    std::unique_ptr<Transport> tls;
    if (cfg.kind == ListenerKind::Ssl || cfg.kind == ListenerKind::Wss) {
        tls = TlsTransport::make(*l.tls(), fd);
        if (!tls) {
            return nullptr;
        }
        if (cfg.kind == ListenerKind::Ssl) {
            return tls;
        }
    }
    if (cfg.kind == ListenerKind::Ws || cfg.kind == ListenerKind::Wss) {
        return std::make_unique<WsTransport>(std::move(tls), cfg.mqtt_path, max_packet);
    }
    return nullptr;
}

}  // namespace

ClientLink::ClientLink(WorkerLoop& loop,
                       int fd,
                       uint8_t listener,
                       std::unique_ptr<LinkExtras> extras)
    : fd_(fd),
      listener_(listener),
      loop_(loop),
      extras_(std::move(extras)),
      decoder_(mqtt::Side::Server,
               mqtt::DecoderLimits{loop.server().broker.settings().max_packet_size.load()}) {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

ClientLink::~ClientLink() {
    leave_connect_wait();
    if (state_ != State::Moved && state_ != State::Drained) {
        listener().current.fetch_sub(1);  // counted at accept (Listener), once per socket
    }
}

broker::Worker& ClientLink::worker() {
    return loop_.worker();
}

Listener& ClientLink::listener() {
    return *loop_.server().listeners[listener_];
}

std::string ClientLink::peer_subject(bool dn) const {
    const Transport* t = transport_or_null();
    return t != nullptr ? t->peer_subject(dn) : std::string();
}

const char* ClientLink::transport() const {
    auto* t = transport_or_null();
    return t != nullptr ? t->name() : "tcp";
}

void ClientLink::list() {
    list_slot_ = loop_.list(this);
    intrusive_ptr_add_ref(this);
}

void ClientLink::unlist() {
    if (list_slot_ == kNoSlot) {
        return;
    }
    loop_.unlist(list_slot_);
    list_slot_ = kNoSlot;
    loop_.release_later(this);
}

void ClientLink::abandon() {
    list_slot_ = kNoSlot;
    state_ = State::Closed;
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
    if (gone()) {
        return;
    }
    uint32_t want = 0;
    if (state_ == State::Draining) {
        want = EPOLLIN | EPOLLRDHUP;
    }
    if (reading()) {
        want |= EPOLLIN;
    }
    if (write_ == Write::Blocked) {
        want |= EPOLLOUT;
    }
    if (auto* t = transport_or_null();
        t != nullptr && state_ != State::Draining && (want != 0 || state_ == State::Handshake)) {
        // The transport may need the socket writable to read, readable to write, or either for
        // its handshake.
        want = t->interest(state_ == State::Handshake ? kWantRead : want);
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
    if (::epoll_ctl(loop_.epfd(), op, fd_, &ev) != 0) {
        spdlog::warn("epoll_ctl on a client socket: {}", std::strerror(errno));
        events_ = 0;
        out_.clear();
        finish();
        return;
    }
    events_ = want;
}

bool ClientLink::peer(sockaddr_storage& addr) const {
    if (extras_ && extras_->peer) {
        addr = *extras_->peer;
        return true;
    }
    socklen_t len = sizeof(addr);
    return fd_ >= 0 && ::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
}

std::string ClientLink::peer_ip() const {
    sockaddr_storage a{};
    if (!peer(a)) {
        return {};
    }
    return format_ip(a);
}

uint16_t ClientLink::peer_port() const {
    sockaddr_storage a{};
    if (!peer(a)) {
        return 0;
    }
    return port_of(a);
}

void ClientLink::leave_connect_wait() {
    if (connect_slot_ == kNoSlot) {
        return;
    }
    loop_.leave_connect_wait(connect_slot_);
    connect_slot_ = kNoSlot;
}

void ClientLink::connect_timed_out() {
    if (state_ == State::Handshake) {
        finish(true);  // no handshake in time (handshake_timeout): nothing to say goodbye with
    } else if (!conn_ && state_ != State::Closed) {
        close();  // no CONNECT in time (mqtt.connect_timeout)
    }
}

void ClientLink::start() {
    list();
    const auto& cfg = listener().config();
    int64_t now = mono_ms();
    if (listener().has_handshake()) {
        state_ = State::Handshake;
        extras_->proxy_pending = cfg.proxy_protocol;
        extras_->transport = make_transport(
                listener(), fd_, loop_.server().broker.settings().max_packet_size.load());
        if (!extras_->transport && cfg.kind != ListenerKind::Tcp) {
            finish(true);
            return;
        }
        connect_slot_ = loop_.await_connect(this, now + cfg.handshake_timeout_ms);
    } else {
        connect_slot_ = loop_.await_connect(
                this, now + loop_.server().broker.settings().connect_timeout_s.load() * 1000);
    }
    if (extras_ && cfg.rate_limit.bytes_per_second > 0) {
        extras_->budget.tokens = static_cast<int64_t>(cfg.rate_limit.burst);
        extras_->budget.last_ms = now;
    }
    update_interest();
}

Io ClientLink::read_proxy_header() {
    // Peek, then take off the socket only bytes of the header (proxy_protocol.h), so what
    // follows stays for the transport (a TLS ClientHello) or the decoder.
    auto& hdr = extras_->proxy_header;
    auto scratch = loop_.scratch().first(kMaxProxyHeader - hdr.size());
    ssize_t got = ::recv(fd_, scratch.data(), scratch.size(), MSG_PEEK);
    if (got == 0) {
        return Io::closed();
    }
    if (got < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Io::again()
                                                                         : Io::failed();
    }
    auto n = static_cast<size_t>(got);
    std::vector<uint8_t> candidate(hdr.begin(), hdr.end());
    candidate.insert(candidate.end(), scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(n));
    ProxyResult r = parse_proxy_header(candidate);
    if (r.status == ProxyResult::Status::Error) {
        spdlog::debug("{}: {}", listener().config().key, r.reason);
        return Io::failed();
    }
    size_t take = r.status == ProxyResult::Status::Done ? r.consumed - hdr.size() : n;
    if (fd_read(fd_, scratch.first(take)).status != Io::Status::Done) {
        return Io::failed();
    }
    if (r.status == ProxyResult::Status::NeedMore) {
        hdr.append(reinterpret_cast<const char*>(scratch.data()), take);
        return Io::again();
    }
    if (r.has_source) {
        extras_->peer = r.source;
    }
    std::string().swap(hdr);
    extras_->proxy_pending = false;
    return Io::done();
}

void ClientLink::advance_handshake() {
    if (extras_->proxy_pending) {
        Io r = read_proxy_header();
        if (r.status == Io::Status::Again) {
            return;
        }
        if (r.status != Io::Status::Done) {
            finish(true);
            return;
        }
    }
    if (auto* t = transport_or_null()) {
        Io r = t->handshake(fd_);
        if (r.status == Io::Status::Again) {
            return;
        }
        if (r.status != Io::Status::Done) {
            if (auto* ws = dynamic_cast<WsTransport*>(t); ws && !ws->refusal().empty()) {
                spdlog::debug("{}: WebSocket upgrade from {} refused: {}", listener().config().key,
                              peer_ip(), ws->refusal());
            }
            finish(true);
            return;
        }
    }
    // The handshake is done: now the CONNECT has mqtt.connect_timeout.
    state_ = State::AwaitingConnect;
    if (connect_slot_ != kNoSlot) {
        loop_.set_connect_deadline(
                connect_slot_,
                mono_ms() + loop_.server().broker.settings().connect_timeout_s.load() * 1000);
    }
    if (reading()) {
        on_readable();  // a CONNECT may have come with the handshake's last flight
    }
}

void ClientLink::adopt(WorkerLoop& loop, Handoff&& h) {
    Ref link(new ClientLink(loop, h.fd, h.listener, std::move(h.extras)));
    link->decoder_.resume_after_connect(h.connect.version);
    link->state_ = State::Connecting;
    link->list();
    auto version = h.connect.version;
    auto r = link->worker().on_connect(*link, std::move(h.connect));
    if (r.result == broker::ConnectResult::Refused) {
        link->refuse_now(version, r.refusal);
        link->update_interest();  // the CONNACK is written, then the close
        return;
    }
    if (!h.rest.empty()) {
        link->pending_ = std::make_unique<std::vector<uint8_t>>(std::move(h.rest));
        if (link->reading()) {
            link->parse_buffered();
        }
    }
    link->reread_if_buffered();
    link->update_interest();
}

void ClientLink::attach(broker::Connection* conn) {
    conn_ = conn;
    if (state_ == State::Connecting) {
        state_ = State::Open;
    }
}

void ClientLink::on_event(uint32_t events) {
    if (gone()) {
        return;  // closed earlier in this batch
    }
    if (state_ == State::Draining) {
        drain_input();
        return;
    }
    if (state_ == State::Handshake) {
        advance_handshake();
        update_interest();
        return;
    }
    auto* t = transport_or_null();
    // Plain TCP: a blocked write waits for EPOLLOUT. A transport may wait for either
    // direction (a TLS write that needs to read first).
    uint32_t write_events = t != nullptr ? (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP)
                                         : (EPOLLOUT | EPOLLERR | EPOLLHUP);
    if ((events & write_events) != 0 && write_ == Write::Blocked) {
        write_ = Write::Idle;
        write();
    }
    uint32_t read_events = t != nullptr ? (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP)
                                        : (EPOLLIN | EPOLLERR | EPOLLHUP);
    if ((events & read_events) != 0 && reading()) {
        on_readable();
    }
    update_interest();
}

void ClientLink::resume() {
    if ((holds_ & kHoldBroker) == 0) {
        return;
    }
    holds_ &= static_cast<uint8_t>(~kHoldBroker);
    loop_.defer(this, Deferred::Resume);
}

void ClientLink::wake_up() {
    if (state_ == State::Draining) {
        release_socket(State::Drained);  // the peer did not close in time
        return;
    }
    if ((holds_ & kHoldBudget) == 0 || gone()) {
        return;
    }
    holds_ &= static_cast<uint8_t>(~kHoldBudget);
    run_deferred(Deferred::Resume);
}

void ClientLink::run_deferred(Deferred what) {
    switch (what) {
        case Deferred::Flush:
            if (write_ == Write::Posted) {
                write_ = Write::Idle;
            }
            write();
            update_interest();
            break;
        case Deferred::Close:
            write();
            update_interest();
            break;
        case Deferred::Resume:
            if (!reading()) {
                return;
            }
            if (state_ == State::Handshake) {
                advance_handshake();
            } else {
                parse_buffered();
                reread_if_buffered();
            }
            update_interest();
            break;
        case Deferred::Read:
            if (!reading()) {
                return;
            }
            on_readable();
            update_interest();
            break;
    }
}

void ClientLink::reread_if_buffered() {
    auto* t = transport_or_null();
    if (t != nullptr && reading() && t->buffered()) {
        loop_.defer(this, Deferred::Read);
    }
}

size_t ClientLink::budget_room(size_t want) {
    if (!extras_) {
        return want;
    }
    const auto& limit = listener().config().rate_limit;
    if (limit.bytes_per_second == 0) {
        return want;
    }
    auto& b = extras_->budget;
    auto rate = static_cast<int64_t>(limit.bytes_per_second);
    auto burst = static_cast<int64_t>(std::max(limit.burst, limit.bytes_per_second / 10 + 1));
    int64_t now = mono_ms();
    b.tokens = std::min(burst, b.tokens + (now - b.last_ms) * rate / 1000);
    b.last_ms = now;
    // Read no more than the budget allows (a small minimum, so that a tiny budget still makes
    // progress a packet header at a time).
    constexpr int64_t kMinRead = 256;
    return static_cast<size_t>(std::clamp<int64_t>(b.tokens, kMinRead, static_cast<int64_t>(want)));
}

void ClientLink::spend_budget(size_t n) {
    if (!extras_) {
        return;
    }
    const auto& limit = listener().config().rate_limit;
    if (limit.bytes_per_second == 0) {
        return;
    }
    auto& b = extras_->budget;
    auto rate = static_cast<int64_t>(limit.bytes_per_second);
    int64_t now = mono_ms();
    b.tokens -= static_cast<int64_t>(n);
    if (b.tokens < 0) {
        // Over the budget: reading waits until the debt is paid back.
        holds_ |= kHoldBudget;
        loop_.wake_at(this, now + (-b.tokens * 1000 + rate - 1) / rate);
    }
}

void ClientLink::on_readable() {
    auto scratch = loop_.scratch();
    scratch = scratch.first(budget_room(scratch.size()));
    auto* t = transport_or_null();
    size_t n = 0;
    Io end = Io::again();
    if (t == nullptr) {
        Io r = fd_read(fd_, scratch);
        if (r.status != Io::Status::Done) {
            if (r.status != Io::Status::Again) {
                finish();
            }
            return;
        }
        n = r.bytes;
    } else {
        // A transport returns a record or a frame's payload at a time: gather what is there,
        // up to the buffer, and remember an end for after the bytes before it are handled.
        while (n < scratch.size()) {
            Io r = t->read(fd_, scratch.subspan(n));
            if (r.status == Io::Status::Done) {
                n += r.bytes;
                if (!t->buffered()) {
                    break;  // the rest, if any, is in the socket: epoll says so again
                }
                continue;
            }
            end = r;
            break;
        }
    }
    if (n == scratch.size()) {
        loop_.set_repoll();  // more may be waiting
    }
    if (n > 0) {
        worker().metrics().add(broker::Metric::BytesReceived, n);
        spend_budget(n);
        if (!pending_) {
            // Common case: whole packets straight from the scratch buffer; only a trailing
            // partial packet is kept.
            size_t used = parse(scratch.first(n));
            if (!gone() && used < n) {
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
    if (gone()) {
        return;
    }
    if (end.status == Io::Status::Closed || end.status == Io::Status::Failed) {
        finish();
        return;
    }
    reread_if_buffered();
}

void ClientLink::parse_buffered() {
    // Parsing may pause or move the link; the bytes not used are kept in pending_ either way.
    if (!pending_) {
        return;
    }
    std::unique_ptr<std::vector<uint8_t>> data = std::move(pending_);
    size_t used = parse(std::span<const uint8_t>(data->data(), data->size()));
    if (gone()) {
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
    while (pos < data.size() && reading()) {
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
                return state_ == State::Moved ? data.size() : pos;
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
    state_ = State::Connecting;
    leave_connect_wait();
    decoder_.set_version(c.version);
    if (auto mode = listener().config().peer_cert_as_username; mode != PeerCertAsUsername::Off) {
        // The client certificate names the user the auth chain and the ACL see.
        std::string subject = peer_subject(mode == PeerCertAsUsername::Dn);
        if (!subject.empty()) {
            c.username = std::move(subject);
        }
    }
    uint32_t home =
            c.client_id.empty() ? loop_.index() : loop_.server().broker.home_worker(c.client_id);
    if (home != loop_.index()) {
        move_to(home, std::move(c), rest_bytes);
        return false;
    }
    auto version = c.version;
    auto r = worker().on_connect(*this, std::move(c));
    if (r.result == broker::ConnectResult::Refused) {
        refuse_now(version, r.refusal);
        return false;
    }
    return true;  // Pending: paused, parse() stops
}

void ClientLink::refuse(broker::ConnectRefusal why) {
    refuse_now(decoder_.version(), why);
}

void ClientLink::refuse_now(mqtt::Version v, broker::ConnectRefusal why) {
    encode_refusal(out_, v, why);
    auto& metrics = worker().metrics();
    metrics.add(broker::Metric::PacketsConnack);
    metrics.add(broker::Metric::PacketsSent);
    close();
}

void ClientLink::move_to(uint32_t home, mqtt::Connect&& c, std::span<const uint8_t> rest_bytes) {
    // The session's home worker adopts the socket, with whatever bytes followed the CONNECT
    // and the transport's state (a TLS session, a WebSocket's framing).
    leave_epoll();
    state_ = State::Moved;
    auto h = std::make_unique<Handoff>();
    h->fd = fd_;
    h->listener = listener_;
    h->connect = std::move(c);
    h->rest.assign(rest_bytes.begin(), rest_bytes.end());
    h->extras = std::move(extras_);
    fd_ = -1;
    unlist();
    loop_.server().loops[home]->post_handoff(std::move(h));
}

void ClientLink::fail(mqtt::ReasonCode rc) {
    encode_failure(out_, conn_ != nullptr, decoder_.version(), rc);
    close();
}

void ClientLink::flush() {
    if (write_ != Write::Idle || state_ == State::Closed) {
        return;
    }
    write_ = Write::Posted;
    loop_.defer(this, Deferred::Flush);
}

void ClientLink::write() {
    // Non-blocking writes straight from out_; when the socket (or the transport) is full,
    // wait for it to become writable, so the broker may keep appending to out_ meanwhile.
    if (write_ == Write::Blocked || gone()) {
        return;
    }
    auto* t = transport_or_null();
    auto& metrics = worker().metrics();
    while (!out_.empty() || (t != nullptr && t->pending_output())) {
        std::span<const uint8_t> data(reinterpret_cast<const uint8_t*>(out_.data()), out_.size());
        Io r = t != nullptr ? t->write(fd_, data) : fd_write(fd_, data);
        if (r.status == Io::Status::Again) {
            write_ = Write::Blocked;  // update_interest() asks for writability
            return;
        }
        if (r.status != Io::Status::Done) {
            out_.clear();
            finish();
            return;
        }
        metrics.add(broker::Metric::BytesSent, r.bytes);
        out_.erase(0, r.bytes);
    }
    if (out_.capacity() > kKeepOutCapacity) {
        std::string().swap(out_);
    }
    if (state_ == State::Closing) {
        shutdown_socket();
    }
}

void ClientLink::close() {
    if (closing()) {
        return;
    }
    if (state_ == State::Handshake) {
        finish(true);  // nothing can be said before the handshake is done
        return;
    }
    state_ = State::Closing;
    if (write_ == Write::Idle) {
        // Writes what is queued, then shuts the socket down (write() sees Closing). A posted
        // flush does the same; a blocked write does it once the socket takes more.
        loop_.defer(this, Deferred::Close);
    }
}

void ClientLink::shutdown_socket() {
    if (auto* t = transport_or_null()) {
        t->goodbye(fd_);
    }
    if (loop_.stopping()) {
        ::shutdown(fd_, SHUT_RDWR);
        finish();
        return;
    }
    // A lingering close: FIN after the last packet, then read and drop what the peer still
    // sends until it closes (or kLingerMs). Closing a socket with unread input sends a reset,
    // and a peer still sending (acks in flight) may then lose the DISCONNECT or CONNACK just
    // written, or fail its own next send, before reading it.
    ::shutdown(fd_, SHUT_WR);
    Ref keep(this);
    state_ = State::Draining;
    listener().closed.fetch_add(1);
    listener().current.fetch_sub(1);  // no longer a client: not counted against max_clients
    leave_connect_wait();
    end_connection();
    if (state_ == State::Draining) {
        loop_.wake_at(this, mono_ms() + kLingerMs);
        update_interest();
    }
}

void ClientLink::drain_input() {
    auto scratch = loop_.scratch();
    while (true) {
        Io r = fd_read(fd_, scratch);
        if (r.status == Io::Status::Again) {
            return;
        }
        if (r.status != Io::Status::Done) {
            release_socket(State::Drained);  // the peer closed (or reset): done
            return;
        }
    }
}

void ClientLink::finish(bool handshake_failed) {
    if (gone()) {
        return;
    }
    if (state_ == State::Draining) {
        release_socket(State::Drained);
        return;
    }
    Ref keep(this);  // the list's reference may be the last one
    (handshake_failed ? listener().handshake_failed : listener().closed).fetch_add(1);
    leave_connect_wait();
    release_socket(State::Closed);
    end_connection();
}

void ClientLink::release_socket(State final_state) {
    Ref keep(this);
    state_ = final_state;
    leave_epoll();
    ::close(fd_);
    fd_ = -1;
    unlist();
}

void ClientLink::end_connection() {
    if (conn_) {
        auto* conn = conn_;
        conn_ = nullptr;
        worker().on_closed(*conn);
    }
}

}  // namespace mqttd::net
