#include "loop.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/tcp.h>

#include "stats.h"

namespace mqttd::load {

namespace {

constexpr std::size_t kReadChunk = 256 * 1024;
constexpr int kMaxEvents = 1024;

}  // namespace

Connection::~Connection() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Loop::Loop() : epfd_(epoll_create1(EPOLL_CLOEXEC)), rbuf_(kReadChunk) {
    if (epfd_ < 0) {
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    }
}

Loop::~Loop() {
    conns_.clear();
    ::close(epfd_);
}

Connection* Loop::connect(const sockaddr_in& to, in_addr_t from, ConnectionHandler* handler) {
    auto owned = std::make_unique<Connection>();
    Connection* c = owned.get();
    conns_.push_back(std::move(owned));
    c->handler_ = handler;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        handler->on_closed(*c, errno);
        return c;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (from != 0) {
        // Defer the port choice to connect() so ports are unique per 4-tuple, not per address.
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = from;
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
            const int err = errno;
            ::close(fd);
            handler->on_closed(*c, err);
            return c;
        }
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
        errno != EINPROGRESS) {
        const int err = errno;
        ::close(fd);
        handler->on_closed(*c, err);
        return c;
    }
    c->fd_ = fd;
    ++open_;
    epoll_event ev{};
    ev.events = EPOLLOUT;  // completion of the connect
    ev.data.ptr = c;
    c->out_armed_ = true;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    return c;
}

void Loop::want_flush(Connection& c) {
    if (!c.dirty_ && c.fd_ >= 0) {
        c.dirty_ = true;
        dirty_.push_back(&c);
    }
}

void Loop::close_gracefully(Connection& c) {
    if (c.fd_ < 0 || c.closing_) {
        return;
    }
    c.closing_ = true;
    if (!c.connected_) {
        abort(c, 0);
        return;
    }
    want_flush(c);
}

void Loop::abort(Connection& c, int err) {
    if (c.fd_ < 0) {
        return;
    }
    finish_close(c, err);
}

void Loop::finish_close(Connection& c, int err) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd_, nullptr);
    ::close(c.fd_);
    c.fd_ = -1;
    c.connected_ = false;
    --open_;
    c.out.release();
    std::vector<std::uint8_t>().swap(c.partial_);
    c.handler_->on_closed(c, err);
}

void Loop::set_out_armed(Connection& c, bool armed) {
    if (c.out_armed_ == armed || c.fd_ < 0) {
        return;
    }
    c.out_armed_ = armed;
    epoll_event ev{};
    ev.events = EPOLLIN | (armed ? EPOLLOUT : 0U);
    ev.data.ptr = &c;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd_, &ev);
}

void Loop::run_once(int timeout_ms) {
    epoll_event events[kMaxEvents];
    const int n = epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
    for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Connection*>(events[i].data.ptr);
        const std::uint32_t ev = events[i].events;
        if (c->fd_ < 0) {
            continue;
        }
        if (!c->connected_) {
            on_writable(*c);
            continue;
        }
        if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
            on_readable(*c);
        }
        if ((ev & EPOLLOUT) != 0 && c->fd_ >= 0) {
            on_writable(*c);
        }
    }
    // Handlers may mark more connections dirty while flushing (on_closed), so index, not iterate.
    for (std::size_t i = 0; i < dirty_.size(); ++i) {
        Connection* c = dirty_[i];
        c->dirty_ = false;
        if (c->fd_ >= 0 && c->connected_) {
            flush(*c);
        }
    }
    dirty_.clear();
}

void Loop::on_readable(Connection& c) {
    const std::size_t plen = c.partial_.size();
    if (rbuf_.size() < plen + kReadChunk) {
        rbuf_.resize(plen + kReadChunk);
    }
    if (plen > 0) {
        std::memcpy(rbuf_.data(), c.partial_.data(), plen);
    }
    const ssize_t r = ::read(c.fd_, rbuf_.data() + plen, rbuf_.size() - plen);
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        finish_close(c, errno);
        return;
    }
    if (r == 0) {
        finish_close(c, 0);
        return;
    }
    read_time_ns_ = now_ns();
    std::span<const std::uint8_t> rest(rbuf_.data(), plen + static_cast<std::size_t>(r));
    while (!rest.empty() && c.fd_ >= 0) {
        const Split s = split_packet(rest, max_packet_);
        if (s.kind == Split::Kind::NeedMore) {
            break;
        }
        if (s.kind == Split::Kind::Malformed) {
            finish_close(c, EPROTO);
            return;
        }
        rest = rest.subspan(s.consumed);
        if (!c.closing_) {
            c.handler_->on_packet(c, s.packet);
        }
    }
    if (c.fd_ >= 0) {
        c.partial_.assign(rest.begin(), rest.end());
    }
}

void Loop::on_writable(Connection& c) {
    if (!c.connected_) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            finish_close(c, err);
            return;
        }
        c.connected_ = true;
        c.out_armed_ = true;
        set_out_armed(c, false);
        c.handler_->on_open(c);
        return;
    }
    flush(c);
}

void Loop::flush(Connection& c) {
    if (!c.out.empty()) {
        const ssize_t w = ::send(c.fd_, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                finish_close(c, errno);
                return;
            }
        } else {
            c.out.consume(static_cast<std::size_t>(w));
            c.last_send_ns_ = now_ns();
        }
    }
    if (!c.out.empty()) {
        set_out_armed(c, true);
        return;
    }
    set_out_armed(c, false);
    if (c.closing_) {
        ::shutdown(c.fd_, SHUT_WR);
    }
}

void Loop::ping_idle(std::uint64_t idle_ns) {
    const std::uint64_t now = now_ns();
    for (auto& c : conns_) {
        if (c->is_open() && !c->closing_ && now - c->last_send_ns_ > idle_ns) {
            put_pingreq(c->out);
            c->last_send_ns_ = now;
            want_flush(*c);
        }
    }
}

in_addr_t parse_ipv4(const char* s) {
    in_addr a{};
    if (inet_pton(AF_INET, s, &a) != 1) {
        throw std::invalid_argument(std::string("not an IPv4 address: ") + s);
    }
    return a.s_addr;
}

std::uint64_t raise_fd_limit(std::uint64_t want) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        rlimit up = rl;
        up.rlim_cur = want;
        if (up.rlim_max < want) {
            up.rlim_max = want;  // succeeds as root (CAP_SYS_RESOURCE)
        }
        if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
            up.rlim_cur = rl.rlim_max;
            up.rlim_max = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &up);
        }
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

}  // namespace mqttd::load
