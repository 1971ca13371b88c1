#include "net/client_link.h"

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
#include "net/server_impl.h"
#include "net/wire_errors.h"

namespace mqttd::net {

namespace {

using Ref = boost::intrusive_ptr<ClientLink>;

// Out buffers larger than this are released once written, so a burst does not stay with an
// idle connection.
constexpr size_t kKeepOutCapacity = 64 * 1024;

}  // namespace

ClientLink::ClientLink(WorkerLoop& loop, int fd, uint8_t listener)
    : fd_(fd),
      listener_(listener),
      loop_(loop),
      decoder_(mqtt::Side::Server,
               mqtt::DecoderLimits{loop.server().broker.settings().max_packet_size.load()}) {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    this->listener().current.fetch_add(1);
}

ClientLink::~ClientLink() {
    leave_connect_wait();
    if (state_ != State::Moved) {
        listener().current.fetch_sub(1);
        listener().shutdowns.fetch_add(1);
    }
}

broker::Worker& ClientLink::worker() {
    return loop_.worker();
}

Listener& ClientLink::listener() {
    return *loop_.server().listeners[listener_];
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
    if (reading()) {
        want |= EPOLLIN;
    }
    if (write_ == Write::Blocked) {
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

void ClientLink::await_connect() {
    connect_slot_ = loop_.await_connect(this);
}

void ClientLink::leave_connect_wait() {
    if (connect_slot_ == kNoSlot) {
        return;
    }
    loop_.leave_connect_wait(connect_slot_);
    connect_slot_ = kNoSlot;
}

void ClientLink::connect_timed_out() {
    if (!conn_ && state_ != State::Closed) {
        close();  // no CONNECT in time (mqtt.connect_timeout)
    }
}

void ClientLink::start() {
    list();
    await_connect();
    update_interest();
}

void ClientLink::adopt(WorkerLoop& loop, Handoff&& h) {
    Ref link(new ClientLink(loop, h.fd, h.listener));
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
        if (!link->paused_) {
            link->parse_buffered();
        }
    }
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
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && write_ == Write::Blocked) {
        write_ = Write::Idle;
        write();
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && reading()) {
        on_readable();
    }
    update_interest();
}

void ClientLink::resume() {
    if (!paused_) {
        return;
    }
    paused_ = false;
    loop_.defer(this, Deferred::Resume);
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
            parse_buffered();
            update_interest();
            break;
    }
}

void ClientLink::on_readable() {
    auto scratch = loop_.scratch();
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
        loop_.set_repoll();  // more may be waiting
    }
    worker().metrics().add(broker::Metric::BytesReceived, n);
    if (!pending_) {
        // Common case: whole packets straight from the scratch buffer; only a trailing partial
        // packet is kept.
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
    // The session's home worker adopts the socket, with whatever bytes followed the CONNECT.
    leave_epoll();
    state_ = State::Moved;
    auto h = std::make_unique<Handoff>();
    h->fd = fd_;
    h->listener = listener_;
    h->connect = std::move(c);
    h->rest.assign(rest_bytes.begin(), rest_bytes.end());
    fd_ = -1;
    unlist();
    listener().current.fetch_sub(1);  // the new link counts itself again
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
    // Non-blocking writes straight from out_; when the socket is full, wait for writability
    // (EPOLLOUT), so the broker may keep appending to out_ meanwhile.
    if (write_ == Write::Blocked || state_ == State::Closed) {
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
                write_ = Write::Blocked;  // update_interest() adds EPOLLOUT
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
    if (state_ == State::Closing) {
        shutdown_socket();
    }
}

void ClientLink::close() {
    if (closing()) {
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
    ::shutdown(fd_, SHUT_RDWR);
    finish();
}

void ClientLink::finish() {
    if (gone()) {
        return;
    }
    Ref keep(this);  // the list's reference may be the last one
    state_ = State::Closed;
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

}  // namespace mqttd::net
