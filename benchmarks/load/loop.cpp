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
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "stats.h"

namespace mqttd::load {

namespace {

constexpr std::size_t kReadChunk = 256 * 1024;
constexpr int kMaxEvents = 1024;

}  // namespace

Connection::~Connection() {
    if (ssl_ != nullptr) {
        SSL_free(static_cast<SSL*>(ssl_));
    }
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
    if (ssl_ctx_ != nullptr) {
        SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
    }
    ::close(epfd_);
}

void Loop::set_transport(const TransportOptions& t) {
    transport_ = t;
    if (t.tls && ssl_ctx_ == nullptr) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == nullptr) {
            throw std::runtime_error("SSL_CTX_new failed");
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        ssl_ctx_ = ctx;
    }
}

void Loop::start_transport(Connection& c) {
    if (transport_.tls) {
        SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ssl_ctx_));
        SSL_set_fd(ssl, c.fd_);
        SSL_set_connect_state(ssl);
        c.ssl_ = ssl;
        c.phase_ = Connection::Phase::TlsHandshake;
        step_handshake(c);
        return;
    }
    opened(c);
}

void Loop::step_handshake(Connection& c) {
    auto* ssl = static_cast<SSL*>(c.ssl_);
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl);
    if (r == 1) {
        opened(c);
        return;
    }
    const int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        set_out_armed(c, e == SSL_ERROR_WANT_WRITE);
        return;
    }
    finish_close(c, EPROTO);
}

void Loop::opened(Connection& c) {
    if (transport_.ws) {
        // The upgrade; on_readable waits for its 101 before MQTT starts.
        c.phase_ = Connection::Phase::WsUpgrade;
        c.mask_ = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(&c) >> 4) | 1U;
        const std::string req = "GET " + transport_.ws_path +
                                " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
        c.wire_out_.assign(req.begin(), req.end());
        want_flush(c);
        return;
    }
    c.phase_ = Connection::Phase::Ready;
    c.handler_->on_open(c);
}

long Loop::raw_read(Connection& c, std::uint8_t* buf, std::size_t n) {
    if (c.ssl_ == nullptr) {
        const ssize_t r = ::read(c.fd_, buf, n);
        if (r < 0) {
            return errno == EAGAIN || errno == EINTR ? -1 : -2;
        }
        return r;
    }
    auto* ssl = static_cast<SSL*>(c.ssl_);
    ERR_clear_error();
    std::size_t got = 0;
    if (SSL_read_ex(ssl, buf, n, &got) == 1) {
        return static_cast<long>(got);
    }
    const int e = SSL_get_error(ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return -1;
    }
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -2;
}

long Loop::raw_write(Connection& c, const std::uint8_t* data, std::size_t n) {
    if (c.ssl_ == nullptr) {
        const ssize_t w = ::send(c.fd_, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            return errno == EAGAIN || errno == EINTR ? -1 : -2;
        }
        return w;
    }
    auto* ssl = static_cast<SSL*>(c.ssl_);
    ERR_clear_error();
    std::size_t w = 0;
    if (SSL_write_ex(ssl, data, n, &w) == 1) {
        return static_cast<long>(w);
    }
    const int e = SSL_get_error(ssl, 0);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : -2;
}

bool Loop::unframe(Connection& c, std::size_t& at) {
    auto& in = c.wire_in_;
    std::size_t pos = 0;
    if (c.phase_ == Connection::Phase::WsUpgrade) {
        static constexpr std::string_view kEnd = "\r\n\r\n";
        const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
        const std::size_t end = text.find(kEnd);
        if (end == std::string_view::npos) {
            return in.size() < 8192;
        }
        if (text.rfind("HTTP/1.1 101", 0) != 0) {
            return false;
        }
        pos = end + kEnd.size();
        c.phase_ = Connection::Phase::Ready;
        c.handler_->on_open(c);
    }
    // Server frames: unmasked; opcode 2 (binary) / 0 (continuation) carry MQTT.
    while (in.size() - pos >= 2) {
        const std::uint8_t op = in[pos] & 0x0f;
        std::size_t len = in[pos + 1] & 0x7f;
        std::size_t head = 2;
        if (len == 126) {
            if (in.size() - pos < 4) {
                break;
            }
            len = (std::size_t{in[pos + 2]} << 8) | in[pos + 3];
            head = 4;
        } else if (len == 127) {
            if (in.size() - pos < 10) {
                break;
            }
            len = 0;
            for (std::size_t i = 2; i < 10; ++i) {
                len = (len << 8) | in[pos + i];
            }
            head = 10;
        }
        if (in.size() - pos < head + len) {
            break;
        }
        const std::uint8_t* payload = in.data() + pos + head;
        if (op == 0x2 || op == 0x0) {
            if (rbuf_.size() < at + len) {
                rbuf_.resize(at + len + kReadChunk);
            }
            std::memcpy(rbuf_.data() + at, payload, len);
            at += len;
        } else if (op == 0x8) {
            return false;
        }
        pos += head + len;
    }
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(pos));
    return true;
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
    if (c.ssl_ != nullptr) {
        SSL_free(static_cast<SSL*>(c.ssl_));
        c.ssl_ = nullptr;
    }
    std::vector<std::uint8_t>().swap(c.wire_in_);
    std::vector<std::uint8_t>().swap(c.wire_out_);
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
        if (c->phase_ == Connection::Phase::TlsHandshake) {
            step_handshake(*c);
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
    std::size_t have = plen;
    if (!transport_.tls && !transport_.ws) {
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
        have += static_cast<std::size_t>(r);
    } else {
        // TLS returns a record at a time: take all there is (the socket may not say so again).
        bool any = false;
        for (;;) {
            long r = 0;
            if (transport_.ws) {
                if (raw_.size() < kReadChunk) {
                    raw_.resize(kReadChunk);
                }
                r = raw_read(c, raw_.data(), raw_.size());
                if (r > 0) {
                    c.wire_in_.insert(c.wire_in_.end(), raw_.begin(), raw_.begin() + r);
                    if (!unframe(c, have)) {
                        finish_close(c, 0);
                        return;
                    }
                }
            } else {
                if (rbuf_.size() < have + 16384) {
                    rbuf_.resize(have + kReadChunk);
                }
                r = raw_read(c, rbuf_.data() + have, rbuf_.size() - have);
                if (r > 0) {
                    have += static_cast<std::size_t>(r);
                }
            }
            if (r > 0) {
                any = true;
                continue;
            }
            if (r == -1) {
                break;
            }
            finish_close(c, r == 0 ? 0 : EPROTO);
            return;
        }
        if (!any || c.fd_ < 0) {
            return;
        }
    }
    read_time_ns_ = now_ns();
    std::span<const std::uint8_t> rest(rbuf_.data(), have);
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
        start_transport(c);
        return;
    }
    flush(c);
}

void Loop::flush(Connection& c) {
    if (transport_.tls || transport_.ws) {
        if (c.phase_ == Connection::Phase::TlsHandshake) {
            return;
        }
        if (transport_.ws && c.phase_ == Connection::Phase::Ready && !c.out.empty()) {
            // One masked binary frame for everything queued.
            const std::size_t n = c.out.size();
            auto& w = c.wire_out_;
            w.push_back(0x82);
            if (n < 126) {
                w.push_back(static_cast<std::uint8_t>(0x80 | n));
            } else if (n < 65536) {
                w.push_back(0x80 | 126);
                w.push_back(static_cast<std::uint8_t>(n >> 8));
                w.push_back(static_cast<std::uint8_t>(n));
            } else {
                w.push_back(0x80 | 127);
                for (int i = 7; i >= 0; --i) {
                    w.push_back(
                            static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> (8 * i)));
                }
            }
            std::uint8_t key[4];
            std::memcpy(key, &c.mask_, 4);
            w.insert(w.end(), key, key + 4);
            const std::size_t at = w.size();
            w.resize(at + n);
            const std::uint8_t* src = c.out.data();
            for (std::size_t i = 0; i < n; ++i) {
                w[at + i] = static_cast<std::uint8_t>(src[i] ^ key[i & 3]);
            }
            c.out.consume(n);
        }
        const bool framed = transport_.ws;
        while (framed ? !c.wire_out_.empty() : !c.out.empty()) {
            const std::uint8_t* data = framed ? c.wire_out_.data() : c.out.data();
            const std::size_t size = framed ? c.wire_out_.size() : c.out.size();
            const long w = raw_write(c, data, size);
            if (w == -1) {
                break;
            }
            if (w < 0) {
                finish_close(c, EPIPE);
                return;
            }
            if (framed) {
                c.wire_out_.erase(c.wire_out_.begin(), c.wire_out_.begin() + w);
            } else {
                c.out.consume(static_cast<std::size_t>(w));
            }
            c.last_send_ns_ = now_ns();
        }
        const bool left = framed ? !c.wire_out_.empty() : !c.out.empty();
        set_out_armed(c, left);
        if (!left && c.closing_) {
            ::shutdown(c.fd_, SHUT_WR);
        }
        return;
    }
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
        // Not before the connection's first send (its CONNECT, after any TLS handshake or
        // WebSocket upgrade): a PINGREQ must not go first.
        if (c->is_open() && !c->closing_ && c->phase_ == Connection::Phase::Ready &&
            c->last_send_ns_ != 0 && now - c->last_send_ns_ > idle_ns) {
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
