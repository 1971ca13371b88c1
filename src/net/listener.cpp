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
    explicit Io(const Executor& ex) : acceptor(ex), retry(ex) {}
    Acceptor acceptor;
    Timer retry;  // accept paused after running out of descriptors
};

Listener::Listener(Server::Impl& server, uint8_t index, std::string address, uint64_t max_clients)
    : server_(server), index_(index), address_(std::move(address)), max_clients_(max_clients) {}

Listener::~Listener() = default;

std::string Listener::bind() {
    auto hp = parse_host_port(address_);
    if (!hp) {
        return hp.error();
    }
    error_code ec;
    auto ip = asio::ip::make_address(hp->host, ec);
    if (ec) {
        return "listener address \"" + address_ + "\": " + ec.message();
    }
    io_ = std::make_unique<Io>(server_.loops[0]->context().get_executor());
    auto& acceptor = io_->acceptor;
    tcp::endpoint ep(ip, hp->port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) {
        acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
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
        return "cannot listen on " + address_ + ": " + ec.message();
    }
    return {};
}

uint16_t Listener::port() const {
    error_code ec;
    return io_->acceptor.local_endpoint(ec).port();
}

void Listener::start() {
    accept();
}

void Listener::close() {
    error_code ec;
    io_->acceptor.close(ec);
    io_->retry.cancel();
}

void Listener::release_io() {
    io_.reset();
}

void Listener::accept() {
    io_->acceptor.async_wait(Acceptor::wait_read, [this](const error_code& ec) {
        if (ec == asio::error::operation_aborted || !io_->acceptor.is_open()) {
            return;
        }
        if (ec) {
            spdlog::warn("accept on {}: {}", address_, ec.message());
        }
        accept_ready();
    });
}

void Listener::accept_ready() {
    auto& loops = server_.loops;
    for (;;) {
        int fd = ::accept4(io_->acceptor.native_handle(), nullptr, nullptr,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO) {
                continue;
            }
            if (e == EAGAIN || e == EWOULDBLOCK) {
                break;
            }
            spdlog::warn("accept on {}: {}", address_, std::strerror(e));
            io_->retry.expires_after(std::chrono::milliseconds(100));
            io_->retry.async_wait([this](const error_code& tec) {
                if (!tec && io_->acceptor.is_open()) {
                    accept_ready();
                }
            });
            return;
        }
        if (current.load() >= max_clients_) {
            ::close(fd);
            continue;
        }
        uint32_t w = next_worker_++ % static_cast<uint32_t>(loops.size());
        // The connection lives on worker w: it starts there.
        loops[w]->post_new_link(fd, index_);
    }
    accept();
}

}  // namespace mqttd::net
