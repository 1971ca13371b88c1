#include "net/listener.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "net/address.h"
#include "net/server_impl.h"
#include "net/tls_context.h"
#include "net/worker_loop.h"

namespace mqttd::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

using Executor = asio::io_context::executor_type;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>,
                                         Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;

struct Listener::Io {
    Io(WorkerLoop& l, const Executor& ex) : loop(l), acceptor(ex), retry(ex) {}
    WorkerLoop& loop;  // whose thread accepts on this socket
    Acceptor acceptor;
    Timer retry;  // accept paused after running out of descriptors
};

Listener::Listener(Server::Impl& server, uint8_t index, ListenerConfig config)
    : server_(server), index_(index), config_(std::move(config)) {}

Listener::~Listener() = default;

std::string Listener::bind() {
    if (config_.kind == ListenerKind::Ssl || config_.kind == ListenerKind::Wss) {
        auto ctx = TlsContext::make(config_.key, config_.tls);
        if (!ctx) {
            return ctx.error();
        }
        tls_ = std::move(*ctx);
        for (const auto& w : tls_->warnings()) {
            spdlog::warn("{}", w);
        }
    }
    auto hp = parse_host_port(config_.address);
    if (!hp) {
        return config_.key + ": " + hp.error();
    }
    error_code ec;
    auto ip = asio::ip::make_address(hp->host, ec);
    if (ec) {
        return config_.key + ": listener address \"" + config_.address + "\": " + ec.message();
    }
    // Each acceptor is a socket of its own on the same port (SO_REUSEPORT: the kernel spreads
    // new connections over them), watched by a different worker.
    auto& loops = server_.loops;
    uint32_t n = std::max<uint32_t>(1, config_.acceptors);
    tcp::endpoint ep(ip, hp->port);
    if (n > 1 && hp->port != 0) {
        // SO_REUSEPORT would let this listener share a port another process (of the same
        // user) listens on: a plain bind must succeed first.
        Acceptor probe(loops[0]->context().get_executor());
        probe.open(ep.protocol(), ec);
        if (!ec) {
            probe.set_option(tcp::acceptor::reuse_address(true), ec);
        }
        if (!ec) {
            probe.bind(ep, ec);
        }
        if (ec) {
            return config_.key + ": cannot listen on " + config_.address + ": " + ec.message();
        }
        probe.close(ec);
    }
    for (uint32_t i = 0; i < n; ++i) {
        auto& loop = *loops[i % loops.size()];
        auto io = std::make_unique<Io>(loop, loop.context().get_executor());
        auto& acceptor = io->acceptor;
        acceptor.open(ep.protocol(), ec);
        if (!ec) {
            acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
        }
        if (!ec && n > 1) {
            int one = 1;
            if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one,
                             sizeof(one)) != 0) {
                ec = error_code(errno, boost::system::system_category());
            }
        }
        if (!ec) {
            acceptor.bind(ep, ec);
        }
        if (!ec) {
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (!ec) {
            acceptor.native_non_blocking(true, ec);  // accept_ready() calls accept4 itself
        }
        if (ec) {
            return config_.key + ": cannot listen on " + config_.address + ": " + ec.message();
        }
        if (i == 0 && hp->port == 0) {
            ep.port(acceptor.local_endpoint(ec).port());  // the others share the port picked
        }
        io_.push_back(std::move(io));
    }
    return {};
}

uint16_t Listener::port() const {
    error_code ec;
    return io_.front()->acceptor.local_endpoint(ec).port();
}

void Listener::start() {
    for (auto& io : io_) {
        accept(*io);
    }
}

void Listener::close() {
    for (auto& io : io_) {
        io->loop.post([io = io.get()] {
            error_code ec;
            io->acceptor.close(ec);
            io->retry.cancel();
        });
    }
}

void Listener::release_io() {
    io_.clear();
}

void Listener::accept(Io& io) {
    io.acceptor.async_wait(Acceptor::wait_read, [this, &io](const error_code& ec) {
        if (ec == asio::error::operation_aborted || !io.acceptor.is_open()) {
            return;
        }
        if (ec) {
            spdlog::warn("accept on {}: {}", config_.address, ec.message());
        }
        accept_ready(io);
    });
}

void Listener::accept_ready(Io& io) {
    auto& loops = server_.loops;
    for (;;) {
        int fd = ::accept4(io.acceptor.native_handle(), nullptr, nullptr,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO) {
                continue;
            }
            if (e == EAGAIN || e == EWOULDBLOCK) {
                break;
            }
            spdlog::warn("accept on {}: {}", config_.address, std::strerror(e));
            io.retry.expires_after(std::chrono::milliseconds(100));
            io.retry.async_wait([this, &io](const error_code& tec) {
                if (!tec && io.acceptor.is_open()) {
                    accept_ready(io);
                }
            });
            return;
        }
        if (current.fetch_add(1) >= config_.max_clients) {
            // Refused before anything is allocated for it (no link, no TLS state).
            current.fetch_sub(1);
            ::close(fd);
            refused.fetch_add(1);
            continue;
        }
        uint32_t w = next_worker_.fetch_add(1, std::memory_order_relaxed) %
                     static_cast<uint32_t>(loops.size());
        // The connection lives on worker w: it starts there.
        loops[w]->post_new_link(fd, index_);
    }
    accept(io);
}

}  // namespace mqttd::net
