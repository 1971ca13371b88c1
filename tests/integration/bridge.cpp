#include "bridge.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

namespace mqttd::itest {

namespace {

constexpr long kAgain = -2;  // up_read: nothing now

SSL* as_ssl(void* p) {
    return static_cast<SSL*>(p);
}

int connect_to(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        if (fd >= 0) {
            ::close(fd);
        }
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{5, 0};  // no step of the set-up waits longer
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

bool write_all(int fd, const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

std::string base64(const uint8_t* data, size_t n) {
    std::vector<unsigned char> out(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock(out.data(), data, static_cast<int>(n));
    return std::string(reinterpret_cast<const char*>(out.data()), static_cast<size_t>(len));
}

}  // namespace

Bridge::Bridge(uint16_t broker_port, BridgeOptions options) : o_(std::move(options)) {
    up_fd_ = connect_to(broker_port);
    if (up_fd_ < 0) {
        error_ = "connect: " + std::string(std::strerror(errno));
        return;
    }
    if (!o_.prefix.empty() && !write_all(up_fd_, o_.prefix.data(), o_.prefix.size())) {
        error_ = "prefix not sent";
        return;
    }
    if (o_.tls) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
        ssl_ctx_ = ctx;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_load_verify_locations(ctx, o_.ca_file.c_str(), nullptr) != 1) {
            error_ = "cannot load CA " + o_.ca_file;
            return;
        }
        if (!o_.cert_file.empty() &&
            (SSL_CTX_use_certificate_chain_file(ctx, o_.cert_file.c_str()) != 1 ||
             SSL_CTX_use_PrivateKey_file(ctx, o_.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
            error_ = "cannot load the client certificate";
            return;
        }
        SSL* ssl = SSL_new(ctx);
        ssl_ = ssl;
        SSL_set_fd(ssl, up_fd_);
        static char kHost[] = "localhost";  // SNI (SSL_set_tlsext_host_name, without its cast)
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, kHost);
        SSL_set1_host(ssl, "localhost");
        if (SSL_connect(ssl) != 1) {
            char buf[256];
            ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
            error_ = std::string("TLS handshake: ") + buf;
            return;
        }
    }
    if (o_.websocket) {
        std::array<uint8_t, 16> key{};
        std::random_device rd;
        for (auto& b : key) {
            b = static_cast<uint8_t>(rd());
        }
        std::string req = "GET " + o_.path +
                          " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Key: " +
                          base64(key.data(), key.size()) + "\r\n";
        if (!o_.subprotocol.empty()) {
            req += "Sec-WebSocket-Protocol: " + o_.subprotocol + "\r\n";
        }
        req += "\r\n";
        if (!up_write(req.data(), req.size())) {
            error_ = "upgrade request not sent";
            return;
        }
        std::string answer;
        while (answer.find("\r\n\r\n") == std::string::npos) {
            char buf[1024];
            long n = up_read(buf, sizeof buf);
            if (n <= 0) {
                error_ = "no upgrade answer: " + answer;
                return;
            }
            answer.append(buf, static_cast<size_t>(n));
        }
        size_t end = answer.find("\r\n\r\n") + 4;
        up_pending_ = answer.substr(end);
        answer.resize(end);
        if (answer.rfind("HTTP/1.1 101", 0) != 0) {
            error_ = "upgrade refused: " + answer.substr(0, answer.find("\r\n"));
            return;
        }
        auto at = answer.find("Sec-WebSocket-Protocol: ");
        if (at != std::string::npos) {
            chosen_ = answer.substr(at + 24, answer.find("\r\n", at) - at - 24);
        }
    }
    // From here the pump polls: a TLS record that carries no data (a session ticket) must not
    // leave it blocked in SSL_read while the client's bytes wait to be forwarded.
    ::fcntl(up_fd_, F_SETFL, ::fcntl(up_fd_, F_GETFL) | O_NONBLOCK);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 1) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        error_ = "local listen failed";
        return;
    }
    port_ = ntohs(a.sin_port);
    ok_ = true;
    thread_ = std::thread([this] { pump(); });
}

Bridge::~Bridge() {
    stop_ = true;
    if (thread_.joinable()) {
        thread_.join();
    }
    if (ssl_ != nullptr) {
        SSL_free(as_ssl(ssl_));
    }
    if (ssl_ctx_ != nullptr) {
        SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
    }
    if (up_fd_ >= 0) {
        ::close(up_fd_);
    }
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
    }
}

bool Bridge::up_write(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    size_t done = 0;
    while (done < n) {
        if (ssl_ == nullptr) {
            ssize_t w = ::send(up_fd_, p + done, n - done, MSG_NOSIGNAL);
            if (w > 0) {
                done += static_cast<size_t>(w);
                continue;
            }
            if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
                pollfd pfd{up_fd_, POLLOUT, 0};
                ::poll(&pfd, 1, 100);
                continue;
            }
            return false;
        }
        size_t w = 0;
        if (SSL_write_ex(as_ssl(ssl_), p + done, n - done, &w) == 1) {
            done += w;
            continue;
        }
        int e = SSL_get_error(as_ssl(ssl_), 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            return false;
        }
        pollfd pfd{up_fd_, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        ::poll(&pfd, 1, 100);
    }
    return true;
}

long Bridge::up_read(void* data, size_t n) {
    if (!up_pending_.empty()) {
        size_t k = std::min(n, up_pending_.size());
        std::memcpy(data, up_pending_.data(), k);
        up_pending_.erase(0, k);
        return static_cast<long>(k);
    }
    if (ssl_ == nullptr) {
        for (;;) {
            ssize_t r = ::recv(up_fd_, data, n, 0);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return kAgain;
            }
            return r;
        }
    }
    size_t got = 0;
    if (SSL_read_ex(as_ssl(ssl_), data, n, &got) != 1) {
        int e = SSL_get_error(as_ssl(ssl_), 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return kAgain;
        }
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    return static_cast<long>(got);
}

bool Bridge::send_frame(uint8_t opcode, const uint8_t* data, size_t n, bool fin) {
    std::vector<uint8_t> f;
    f.push_back(static_cast<uint8_t>((fin ? 0x80 : 0x00) | opcode));
    if (n < 126) {
        f.push_back(static_cast<uint8_t>(0x80 | n));
    } else if (n < 65536) {
        f.push_back(0x80 | 126);
        f.push_back(static_cast<uint8_t>(n >> 8));
        f.push_back(static_cast<uint8_t>(n));
    } else {
        f.push_back(0x80 | 127);
        for (int i = 7; i >= 0; --i) {
            f.push_back(static_cast<uint8_t>(static_cast<uint64_t>(n) >> (8 * i)));
        }
    }
    std::array<uint8_t, 4> mask{};
    std::random_device rd;
    for (auto& b : mask) {
        b = static_cast<uint8_t>(rd());
    }
    f.insert(f.end(), mask.begin(), mask.end());
    for (size_t i = 0; i < n; ++i) {
        f.push_back(static_cast<uint8_t>(data[i] ^ mask[i % 4]));
    }
    return up_write(f.data(), f.size());
}

void Bridge::pump() {
    int down = -1;
    while (!stop_ && down < 0) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
            down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        }
    }
    if (down < 0) {
        return;
    }
    std::vector<uint8_t> frames;  // from the broker, not yet complete (WebSocket)
    std::array<uint8_t, 65536> buf{};
    bool open = true;
    while (!stop_ && open) {
        bool up_ready = !up_pending_.empty() || (ssl_ != nullptr && SSL_pending(as_ssl(ssl_)) > 0);
        pollfd p[2] = {{down, POLLIN, 0}, {up_fd_, POLLIN, 0}};
        int r = up_ready ? 1 : ::poll(p, 2, 50);
        if (r <= 0) {
            continue;
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t n = ::recv(down, buf.data(), buf.size(), 0);
            if (n <= 0) {
                break;
            }
            auto len = static_cast<size_t>(n);
            if (!o_.websocket) {
                open = up_write(buf.data(), len);
            } else if (o_.ws_fragment == 0) {
                open = send_frame(0x2, buf.data(), len);
            } else {
                for (size_t at = 0; at < len && open; at += o_.ws_fragment) {
                    size_t k = std::min(o_.ws_fragment, len - at);
                    open = send_frame(at == 0 ? 0x2 : 0x0, buf.data() + at, k, at + k == len);
                }
            }
        }
        if (up_ready || (p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            long n = up_read(buf.data(), buf.size());
            if (n == kAgain) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            auto len = static_cast<size_t>(n);
            if (!o_.websocket) {
                open = write_all(down, buf.data(), len);
                continue;
            }
            frames.insert(frames.end(), buf.begin(), buf.begin() + static_cast<long>(len));
            // Server frames are unmasked: header, extended length, payload.
            while (open && frames.size() >= 2) {
                uint8_t op = frames[0] & 0x0f;
                size_t plen = frames[1] & 0x7f;
                size_t at = 2;
                if (plen == 126) {
                    if (frames.size() < 4) {
                        break;
                    }
                    plen = (size_t{frames[2]} << 8) | frames[3];
                    at = 4;
                } else if (plen == 127) {
                    if (frames.size() < 10) {
                        break;
                    }
                    plen = 0;
                    for (size_t i = 2; i < 10; ++i) {
                        plen = (plen << 8) | frames[i];
                    }
                    at = 10;
                }
                if (frames.size() < at + plen) {
                    break;
                }
                const uint8_t* payload = frames.data() + at;
                if (op == 0x2 || op == 0x0) {
                    open = write_all(down, payload, plen);
                } else if (op == 0x9) {
                    open = send_frame(0xA, payload, plen);
                } else if (op == 0x8) {
                    close_code_ = plen >= 2 ? static_cast<uint16_t>((payload[0] << 8) | payload[1])
                                            : 1005;
                    send_frame(0x8, payload, std::min<size_t>(plen, 2));
                    open = false;
                }
                frames.erase(frames.begin(), frames.begin() + static_cast<long>(at + plen));
            }
        }
    }
    ::shutdown(down, SHUT_RDWR);
    ::close(down);
    ::shutdown(up_fd_, SHUT_RDWR);
}

}  // namespace mqttd::itest
