// net::TlsTransport: TLS 1.2 / 1.3 on the link's socket with OpenSSL, non-blocking. The SSL
// object reads and writes the socket itself (a socket BIO on the link's descriptor); OpenSSL's
// WANT_READ / WANT_WRITE become the epoll interest: a read may need the socket writable and
// a write readable, and interest() says so for the link.
//
// Memory: the context is the listener's; per connection the SSL object and its session.
// SSL_MODE_RELEASE_BUFFERS (tls_context.cpp) frees the record buffers of an idle connection.
//
// Ownership: owned by its link (LinkExtras), moved with it to another worker.
// Thread-safety: none; the owning link's thread.
#pragma once

#include <memory>
#include <string>

#include "net/transport.h"

struct ssl_st;

namespace mqttd::net {

class TlsContext;

class TlsTransport final : public Transport {
public:
    // nullptr when OpenSSL cannot make the SSL object. `client`: this end dials (a context of
    // Role::Client) and starts the handshake; else it accepts.
    static std::unique_ptr<TlsTransport> make(TlsContext& ctx, int fd, bool client = false);
    ~TlsTransport() override;
    TlsTransport(const TlsTransport&) = delete;
    TlsTransport& operator=(const TlsTransport&) = delete;

    Io handshake(int fd) override;
    Io read(int fd, std::span<uint8_t> buf) override;
    Io write(int fd, std::span<const uint8_t> data) override;
    void goodbye(int fd) override;
    bool buffered() const override;
    bool pending_output() const override { return false; }
    uint32_t interest(uint32_t link_wants) const override;
    const char* name() const override { return "ssl"; }
    std::string peer_subject(bool dn) const override;

private:
    explicit TlsTransport(ssl_st* ssl) : ssl_(ssl) {}
    ssl_st* ssl_;
    bool established_ = false;
    bool handshake_wants_write_ = false;
    bool read_wants_write_ = false;
    bool write_wants_read_ = false;
};

}  // namespace mqttd::net
