#include "cluster/peer_link.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "common/clock.h"
#include "net/address.h"
#include "net/socket_io.h"
#include "net/tls_context.h"

namespace mqttd::cluster {
namespace {

constexpr int64_t kRefreshMs = 200;
constexpr int64_t kMaxBackoffMs = 5000;
constexpr size_t kOutBacklog = size_t{1} << 20;  // bytes written per turn before polling again
constexpr size_t kReadChunk = 64 * 1024;
constexpr int64_t kHelloTimeoutMs = 10000;  // connect, TLS handshake and Hello

bool set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL, 0);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

void set_nodelay(int fd) {
    int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

// A numeric "host:port" as a socket address; false when it is none.
bool to_sockaddr(const std::string& address, sockaddr_storage& ss, socklen_t& len) {
    auto hp = net::parse_host_port(address);
    if (!hp) {
        return false;
    }
    std::memset(&ss, 0, sizeof ss);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (::inet_pton(AF_INET, hp->host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(hp->port);
        len = sizeof(sockaddr_in);
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET6, hp->host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(hp->port);
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

}  // namespace

PeerLink::PeerLink(Options options, Callbacks callbacks)
    : options_(std::move(options)), cb_(std::move(callbacks)) {}

PeerLink::~PeerLink() {
    stop();
}

std::string PeerLink::start() {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!to_sockaddr(options_.listen, ss, len)) {
        return "cluster.listener " + options_.listen + ": not a numeric host:port";
    }
    listen_fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (listen_fd_ < 0 ||
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        ::listen(listen_fd_, 64) != 0 || !set_nonblocking(listen_fd_)) {
        std::string err = "cluster.listener " + options_.listen + ": " + std::strerror(errno);
        if (listen_fd_ >= 0) {
            ::close(listen_fd_);
            listen_fd_ = -1;
        }
        return err;
    }
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
    const std::string host = net::format_ip(bound);
    address_ = (bound.ss_family == AF_INET6 ? "[" + host + "]" : host) + ":" +
               std::to_string(net::port_of(bound));
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
    return {};
}

void PeerLink::stop() {
    if (stopping_.exchange(true)) {
        return;
    }
    wake();
    if (thread_.joinable()) {
        thread_.join();
    }
    std::vector<std::unique_ptr<Peer>> gone;
    {
        std::lock_guard lock(mutex_);
        for (auto& [name, p] : peers_) {
            gone.push_back(std::move(p));
        }
        peers_.clear();
        cookies_.clear();
    }
    for (auto& p : gone) {
        if (p->fd >= 0) {
            ::close(p->fd);
        }
        fail_all(*p);
    }
    for (auto& a : anonymous_) {
        ::close(a.fd);
    }
    anonymous_.clear();
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    if (wake_fd_ >= 0) {
        ::close(wake_fd_);
        wake_fd_ = -1;
    }
}

void PeerLink::wake() {
    if (wake_fd_ >= 0 && !woken_.exchange(true)) {
        uint64_t one = 1;
        ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
        (void)ignored;
    }
}

PeerLink::Peer* PeerLink::peer_locked(const std::string& name) {
    auto it = peers_.find(name);
    return it == peers_.end() ? nullptr : it->second.get();
}

bool PeerLink::send(const std::string& node,
                    const broker::Message& m,
                    const broker::Token* token,
                    const std::vector<std::string_view>& groups,
                    bool retained_copy,
                    int64_t stamp,
                    const RelayTarget* relay) {
    const bool want = token != nullptr;
    bool fail = false;
    {
        std::lock_guard lock(mutex_);
        Peer* p = stopping_ ? nullptr : peer_locked(node);
        const size_t size = m.wire_size() + m.from_client().size() + 48;
        if (p == nullptr || !p->alive) {
            fail = true;
        } else if (p->queue_bytes + size > options_.max_queue_bytes) {
            fail = true;  // full: the peer does not keep up, or has been away for long
        } else {
            OutFrame f;
            f.seq = p->next_seq++;
            f.queued_ms = mono_ms();
            PublishFrame frame{f.seq,           m.qos,          m.retain,    want,
                               m.created_at_ms, m.expiry_at_ms, stamp,       m.topic(),
                               m.from_client(), m.properties(), m.payload(), groups,
                               retained_copy,   std::nullopt};
            if (relay != nullptr) {
                frame.relay = *relay;
            }
            encode_publish(f.bytes, frame);
            f.has_token = want;
            if (want) {
                f.token = *token;
            }
            const bool was_empty = p->queue.empty();
            p->queue_bytes += f.bytes.size();
            p->queue.push_back(std::move(f));
            if (was_empty) {
                wake();
            }
        }
    }
    if (fail) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        if (want) {
            cb_.on_answer(*token, false);
        }
    }
    return want;
}

uint32_t PeerLink::send_all(
        const broker::Message& m,
        const broker::Token* token,
        const std::function<std::vector<std::string_view>(const std::string&)>& groups_of,
        int64_t stamp) {
    std::vector<std::string> names;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, p] : peers_) {
            if (p->alive) {
                names.push_back(name);
            }
        }
    }
    uint32_t answers = 0;
    for (const auto& name : names) {
        answers += send(name, m, token, groups_of(name), false, stamp) ? 1 : 0;
    }
    return answers;
}

std::optional<size_t> PeerLink::queued_bytes(const std::string& node) {
    std::lock_guard lock(mutex_);
    Peer* p = stopping_ ? nullptr : peer_locked(node);
    if (p == nullptr || !p->alive) {
        return std::nullopt;
    }
    return p->queue_bytes;
}

void PeerLink::answer(uint64_t cookie, bool ok) {
    std::lock_guard lock(mutex_);
    auto it = cookies_.find(cookie);
    if (it == cookies_.end()) {
        return;
    }
    const Taken taken = std::move(it->second);
    cookies_.erase(it);
    const uint64_t seq = taken.seq;
    Peer* p = peer_locked(taken.peer);
    if (p == nullptr || p->in_incarnation != taken.incarnation || p->in_pending.erase(seq) == 0) {
        return;  // that peer restarted meanwhile: it sends what it waits for again
    }
    const bool was_empty = p->control.empty();
    encode_ack(p->control, AckFrame{seq, ok});
    if (was_empty) {
        wake();
    }
}

bool PeerLink::linked(const std::string& node) {
    std::lock_guard lock(mutex_);
    Peer* p = stopping_ ? nullptr : peer_locked(node);
    return p != nullptr && p->alive && p->linked;
}

bool PeerLink::send_control(const std::string& node, std::string_view frame) {
    std::lock_guard lock(mutex_);
    Peer* p = stopping_ ? nullptr : peer_locked(node);
    if (p == nullptr || !p->alive || !p->linked) {
        return false;
    }
    const bool was_empty = p->control.empty();
    p->control.append(frame);
    if (was_empty) {
        wake();
    }
    return true;
}

void PeerLink::fail_all(Peer& p) {
    std::deque<OutFrame> queued;
    {
        std::lock_guard lock(mutex_);
        queued.swap(p.queue);
        p.queue_bytes = 0;
    }
    for (auto* q : {&p.unacked, &queued}) {
        for (auto& f : *q) {
            if (f.has_token && !f.acked) {
                cb_.on_answer(f.token, false);
            }
        }
        q->clear();
    }
}

void PeerLink::refresh_peers(int64_t now_ms) {
    last_refresh_ms_ = now_ms;
    auto alive = cb_.peers();
    alive.erase(options_.node);
    std::vector<std::unique_ptr<Peer>> gone;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, address] : alive) {
            auto& p = peers_[name];
            if (!p) {
                p = std::make_unique<Peer>();
                p->name = name;
            }
            p->address = address;
            p->alive = true;
        }
        for (auto it = peers_.begin(); it != peers_.end();) {
            Peer& p = *it->second;
            if (alive.contains(p.name)) {
                ++it;
            } else if (p.alive || p.fd < 0) {
                // Left the cluster (or never joined it and is not connected): what waits for
                // it is answered "failed" below.
                gone.push_back(std::move(it->second));
                it = peers_.erase(it);
            } else {
                ++it;  // connected before membership lists it
            }
        }
    }
    for (auto& p : gone) {
        if (p->fd >= 0) {
            ::close(p->fd);
            cb_.log(true, "cluster: node " + p->name + " left; its link is closed");
        }
        fail_all(*p);
    }
}

void PeerLink::expire(int64_t now_ms) {
    const int64_t before = now_ms - options_.ack_timeout_ms;
    std::vector<broker::Token> failed;
    {
        std::lock_guard lock(mutex_);
        for (auto& [name, pp] : peers_) {
            Peer& p = *pp;
            // Both are in sequence order, which is the order they were queued in.
            while (!p.queue.empty() && p.queue.front().queued_ms <= before) {
                OutFrame& f = p.queue.front();
                if (f.has_token) {
                    failed.push_back(f.token);
                } else {
                    dropped_.fetch_add(1, std::memory_order_relaxed);
                }
                p.queue_bytes -= f.bytes.size();
                p.queue.pop_front();
            }
            for (auto& f : p.unacked) {
                if (f.queued_ms > before) {
                    break;
                }
                if (!f.acked) {
                    f.acked = true;  // not sent again; a late Ack is ignored
                    f.bytes.clear();
                    failed.push_back(f.token);
                }
            }
            while (!p.unacked.empty() && p.unacked.front().acked) {
                p.unacked.pop_front();
            }
        }
    }
    for (const auto& t : failed) {
        cb_.on_answer(t, false);
    }
}

void PeerLink::dial(Peer& p, int64_t now_ms) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    p.next_dial_ms = now_ms + p.backoff_ms;
    p.backoff_ms = std::min(p.backoff_ms * 2, kMaxBackoffMs);
    if (!to_sockaddr(p.address, ss, len)) {
        return;
    }
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return;
    }
    set_nodelay(fd);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
        ::close(fd);
        return;
    }
    p.fd = fd;
    p.connecting = true;
    p.up = false;
    p.opened_ms = now_ms;
    p.tls.reset();
    p.in.clear();
    p.out.clear();
    p.out_pos = 0;
    encode_hello(p.out, HelloFrame{options_.node, options_.incarnation});
}

void PeerLink::close_peer(Peer& p, const std::string& why) {
    if (p.fd >= 0) {
        if (p.tls) {
            p.tls->goodbye(p.fd);
        }
        ::close(p.fd);
    }
    p.tls.reset();
    if (p.up) {
        cb_.log(true, "cluster: link to " + p.name + " lost (" + why + "); reconnecting");
    }
    p.fd = -1;
    p.connecting = false;
    p.up = false;
    p.in.clear();
    p.out.clear();
    p.out_pos = 0;
    std::lock_guard lock(mutex_);
    p.control.clear();  // the peer resends what it waits for; those Acks are given again
    p.linked = false;
}

void PeerLink::came_up(Peer& p, uint64_t incarnation, bool reply) {
    p.up = true;
    p.backoff_ms = 100;
    std::string out = p.out.substr(p.out_pos);  // the rest of our Hello, if any
    if (reply) {
        encode_hello(out, HelloFrame{options_.node, options_.incarnation});
    }
    // What waited for an Ack on the last connection goes again, in order, before anything
    // newer: the peer answers again what it had taken.
    for (const auto& f : p.unacked) {
        if (!f.acked) {
            out += f.bytes;
        }
    }
    p.out = std::move(out);
    p.out_pos = 0;
    {
        std::lock_guard lock(mutex_);
        if (p.in_incarnation != incarnation) {
            p.in_incarnation = incarnation;  // the peer restarted: its numbers begin again
            p.delivered_upto = 0;
            p.in_pending.clear();
        }
        p.linked = true;
    }
    cb_.log(false, "cluster: link to " + p.name + " up");
    if (cb_.on_up) {
        cb_.on_up(p.name);
    }
}

void PeerLink::fill_out(Peer& p) {
    // REQUIRES: mutex_ held, p.up.
    if (!p.control.empty()) {
        p.out += p.control;
        p.control.clear();
    }
    while (!p.queue.empty() && p.out.size() - p.out_pos < kOutBacklog) {
        OutFrame& f = p.queue.front();
        p.out += f.bytes;
        p.queue_bytes -= f.bytes.size();
        if (f.has_token) {
            p.unacked.push_back(std::move(f));
        }
        p.queue.pop_front();
    }
}

bool PeerLink::take_frames(Peer& p) {
    size_t pos = 0;
    bool ok = true;
    while (ok) {
        std::string error;
        auto raw = next_frame(std::string_view(p.in).substr(pos), error);
        if (!raw) {
            ok = error.empty();
            if (!ok) {
                cb_.log(true, "cluster: node " + p.name + " sent a bad frame: " + error);
            }
            break;
        }
        pos += raw->size;
        if (raw->type == FrameType::Hello) {
            auto h = decode_hello(raw->body);
            ok = h.has_value() && !p.up && h->node == p.name;
            if (ok) {
                came_up(p, h->incarnation, false);
            }
        } else if (raw->type == FrameType::Publish) {
            auto f = decode_publish(raw->body);
            ok = f.has_value() && p.up;
            if (!ok) {
                break;
            }
            uint64_t cookie = 0;
            bool deliver = true;
            {
                std::lock_guard lock(mutex_);
                if (f->seq <= p.delivered_upto) {
                    // Sent again after a reconnect: taken before. Answered now unless its
                    // answer is still to come.
                    deliver = false;
                    if (f->want_ack && !p.in_pending.contains(f->seq)) {
                        encode_ack(p.control, AckFrame{f->seq, true});
                    }
                } else {
                    p.delivered_upto = f->seq;
                    if (f->want_ack) {
                        cookie = next_cookie_++;
                        cookies_.emplace(cookie, Taken{p.name, p.in_incarnation, f->seq});
                        p.in_pending.insert(f->seq);
                    }
                }
            }
            if (deliver) {
                cb_.on_publish(*f, cookie);
            }
        } else if (raw->type != FrameType::Ack) {
            ok = p.up;
            if (!ok) {
                break;
            }
            if (cb_.on_control) {
                cb_.on_control(p.name, raw->type, raw->body);
            }
        } else {
            auto a = decode_ack(raw->body);
            ok = a.has_value() && p.up;
            if (!ok) {
                break;
            }
            auto it = std::lower_bound(p.unacked.begin(), p.unacked.end(), a->seq,
                                       [](const OutFrame& f, uint64_t seq) { return f.seq < seq; });
            if (it != p.unacked.end() && it->seq == a->seq && !it->acked) {
                it->acked = true;
                it->bytes.clear();
                cb_.on_answer(it->token, a->ok);
            }
            while (!p.unacked.empty() && p.unacked.front().acked) {
                p.unacked.pop_front();
            }
        }
    }
    p.in.erase(0, pos);
    cb_.on_turn();
    return ok;
}

net::Io PeerLink::read_into(int fd, net::TlsTransport* tls, std::string& in) {
    char buf[kReadChunk];
    auto span = std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf), sizeof buf);
    while (true) {
        const net::Io r = tls ? tls->read(fd, span) : net::fd_read(fd, span);
        if (r.status != net::Io::Status::Done) {
            return r;
        }
        in.append(buf, r.bytes);
        if (!tls && r.bytes < sizeof buf) {
            return net::Io::again();  // plain TCP: a short read took what there was
        }
    }
}

net::Io::Status PeerLink::tls_step(int fd, net::TlsTransport* tls, const std::string& who) {
    if (!tls) {
        return net::Io::Status::Done;
    }
    const net::Io::Status st = tls->handshake(fd).status;
    if (st == net::Io::Status::Failed) {
        cb_.log(true, "cluster: TLS handshake with " + who +
                              " failed (a certificate not signed by the cluster's CA, or not "
                              "TLS)");
    }
    return st;
}

short PeerLink::events_for(const net::TlsTransport* tls, short want) {
    if (!tls) {
        return want;
    }
    // kWantRead / kWantWrite have poll's POLLIN / POLLOUT values.
    const uint32_t w = ((want & POLLIN) != 0 ? net::kWantRead : 0) |
                       ((want & POLLOUT) != 0 ? net::kWantWrite : 0);
    return static_cast<short>(tls->interest(w));
}

void PeerLink::on_readable(Peer& p) {
    if (auto st = tls_step(p.fd, p.tls.get(), p.name); st != net::Io::Status::Done) {
        if (st == net::Io::Status::Failed) {
            close_peer(p, "TLS handshake failed");
        }
        return;  // polled again; once done, what it read ahead is read on
    }
    const net::Io r = read_into(p.fd, p.tls.get(), p.in);
    if (r.status == net::Io::Status::Closed || r.status == net::Io::Status::Failed) {
        close_peer(p, r.status == net::Io::Status::Closed ? "closed by the peer"
                                                          : std::strerror(errno));
        return;
    }
    if (!take_frames(p)) {
        close_peer(p, "protocol error");
    }
}

void PeerLink::on_writable(Peer& p) {
    if (p.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            close_peer(p, std::strerror(err));
            return;
        }
        p.connecting = false;
        if (options_.tls_client) {
            p.tls = net::TlsTransport::make(*options_.tls_client, p.fd, true);
            if (!p.tls) {
                close_peer(p, "cannot start TLS");
                return;
            }
        }
    }
    if (auto st = tls_step(p.fd, p.tls.get(), p.name); st != net::Io::Status::Done) {
        if (st == net::Io::Status::Failed) {
            close_peer(p, "TLS handshake failed");
        }
        return;  // the Hello goes once the handshake is done
    }
    while (p.out_pos < p.out.size()) {
        auto data =
                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(p.out.data()) + p.out_pos,
                                         p.out.size() - p.out_pos);
        const net::Io r = p.tls ? p.tls->write(p.fd, data) : net::fd_write(p.fd, data);
        if (r.status == net::Io::Status::Done) {
            p.out_pos += r.bytes;
            continue;
        }
        if (r.status == net::Io::Status::Again) {
            return;
        }
        close_peer(p, std::strerror(errno));
        return;
    }
    p.out.clear();
    p.out_pos = 0;
}

void PeerLink::accept_all() {
    while (true) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        set_nodelay(fd);
        Anonymous a{fd, {}, mono_ms(), nullptr};
        if (options_.tls_server) {
            a.tls = net::TlsTransport::make(*options_.tls_server, fd, false);
            if (!a.tls) {
                ::close(fd);
                continue;
            }
        }
        anonymous_.push_back(std::move(a));
    }
}

void PeerLink::read_anonymous(size_t i) {
    Anonymous& a = anonymous_[i];
    auto drop = [&] {
        ::close(a.fd);
        a.fd = -1;
        a.tls.reset();
    };
    if (auto st = tls_step(a.fd, a.tls.get(), "an accepted connection");
        st != net::Io::Status::Done) {
        if (st == net::Io::Status::Failed) {
            drop();
        }
        return;
    }
    const net::Io r = read_into(a.fd, a.tls.get(), a.in);
    if (r.status == net::Io::Status::Closed || r.status == net::Io::Status::Failed) {
        drop();
        return;
    }
    std::string error;
    auto raw = next_frame(a.in, error);
    if (!raw) {
        if (!error.empty() || a.in.size() > 4096) {
            drop();
        }
        return;
    }
    auto h = raw->type == FrameType::Hello ? decode_hello(raw->body) : std::nullopt;
    if (!h || h->node == options_.node || h->node.empty()) {
        drop();
        return;
    }
    Peer* p = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto& slot = peers_[std::string(h->node)];
        if (!slot) {
            slot = std::make_unique<Peer>();
            slot->name = std::string(h->node);
        }
        p = slot.get();
    }
    if (p->fd >= 0) {
        close_peer(*p, "replaced by a new connection");
    }
    p->fd = a.fd;
    p->connecting = false;
    p->opened_ms = a.opened_ms;
    p->tls = std::move(a.tls);
    p->in = a.in.substr(raw->size);
    a.fd = -1;
    came_up(*p, h->incarnation, true);
    if (!take_frames(*p)) {
        close_peer(*p, "protocol error");
    }
}

void PeerLink::run() {
    std::vector<pollfd> fds;
    std::vector<Peer*> polled;
    while (!stopping_) {
        const int64_t now = mono_ms();
        if (now - last_refresh_ms_ >= kRefreshMs) {
            refresh_peers(now);
            expire(now);
        }
        int64_t next_event = now + kRefreshMs;
        fds.clear();
        polled.clear();
        fds.push_back(pollfd{wake_fd_, POLLIN, 0});
        fds.push_back(pollfd{listen_fd_, POLLIN, 0});
        {
            std::lock_guard lock(mutex_);
            for (auto& [name, pp] : peers_) {
                Peer& p = *pp;
                if (p.up) {
                    fill_out(p);
                }
            }
        }
        for (auto& [name, pp] : peers_) {
            Peer& p = *pp;
            if (p.fd < 0 && p.alive && options_.node < p.name && !p.address.empty()) {
                if (now >= p.next_dial_ms) {
                    dial(p, now);
                } else {
                    next_event = std::min(next_event, p.next_dial_ms);
                }
            }
            if (p.fd >= 0 && !p.up && now - p.opened_ms > kHelloTimeoutMs) {
                close_peer(p, "no Hello within 10 s");
            }
            if (p.fd >= 0) {
                short events = POLLIN;
                if (p.connecting || p.out_pos < p.out.size()) {
                    events |= POLLOUT;
                }
                // A connect in progress has no TLS yet: plain POLLOUT.
                fds.push_back(pollfd{p.fd, events_for(p.tls.get(), events), 0});
                polled.push_back(&p);
            }
        }
        std::erase_if(anonymous_, [now](Anonymous& a) {
            if (now - a.opened_ms <= kHelloTimeoutMs) {
                return false;
            }
            ::close(a.fd);  // no Hello in time: a port scan, or not a node of ours
            return true;
        });
        const size_t first_anonymous = fds.size();
        for (const auto& a : anonymous_) {
            fds.push_back(pollfd{a.fd, events_for(a.tls.get(), POLLIN), 0});
        }
        const int timeout = static_cast<int>(std::max<int64_t>(next_event - now, 1));
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
            break;
        }
        if (fds[0].revents != 0) {
            uint64_t v = 0;
            ssize_t ignored = ::read(wake_fd_, &v, sizeof v);
            (void)ignored;
            woken_ = false;
        }
        for (size_t i = 0; i < polled.size(); ++i) {
            Peer& p = *polled[i];
            const short re = fds[2 + i].revents;
            if (p.fd != fds[2 + i].fd) {
                continue;  // replaced meanwhile
            }
            if (p.tls && re != 0) {
                // A TLS read may wait for the socket to be writable and a write for it to be
                // readable: either readiness moves both on.
                on_readable(p);
                if (p.fd >= 0) {
                    on_writable(p);
                }
                continue;
            }
            if ((re & (POLLIN | POLLHUP | POLLERR)) != 0 && !p.connecting) {
                on_readable(p);
            }
            if (p.fd >= 0 && (re & (POLLOUT | POLLERR | POLLHUP)) != 0) {
                on_writable(p);
            }
        }
        for (size_t i = 0; i < anonymous_.size(); ++i) {
            if (fds[first_anonymous + i].revents != 0) {
                read_anonymous(i);
            }
        }
        std::erase_if(anonymous_, [](const Anonymous& a) { return a.fd < 0; });
        if (fds[1].revents != 0) {
            accept_all();
        }
        // What the reads produced (Acks) and what is queued goes out in this turn's writes.
        {
            std::lock_guard lock(mutex_);
            for (auto& [name, pp] : peers_) {
                if (pp->up) {
                    fill_out(*pp);
                }
            }
        }
        for (auto& [name, pp] : peers_) {
            if (pp->up && pp->fd >= 0 && pp->out_pos < pp->out.size()) {
                on_writable(*pp);
            }
        }
    }
}

}  // namespace mqttd::cluster
