// net::Transport: what stands between a ClientLink and its socket when the bytes are not
// plain TCP — TLS (tls_transport.h), WebSocket (ws_transport.h), and WebSocket over TLS (a
// WebSocket transport whose lower layer is a TLS transport). A plain TCP link has none and
// calls recv/send itself (socket_io.h), so it costs nothing more than before.
//
// The contract is non-blocking and level-triggered like the worker's epoll set:
//   * handshake() moves the transport's own handshake on (TLS handshake, HTTP upgrade) as far
//     as the socket allows;
//   * read() returns application bytes (decrypted, de-framed), write() takes application
//     bytes (possibly fewer than offered);
//   * Again means "call again once the socket is ready as interest() says"; a transport may
//     need the socket writable to read (TLS) or readable to write, which interest() maps;
//   * buffered() says read() has something to return without the socket becoming readable
//     (a TLS record already decrypted, a close frame already parsed): the link reads again
//     without waiting for epoll;
//   * pending_output() says bytes accepted by write() are still inside the transport.
//
// Ownership: owned by its link (through LinkExtras), moved with it to another worker: the
// TLS session and WebSocket state are the link's, not a worker's. The socket stays the link's.
// Thread-safety: none; the owning link's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace mqttd::net {

struct Io {
    enum class Status : uint8_t {
        Done,    // bytes were moved (read: n > 0) / the handshake is complete
        Again,   // nothing now: wait for interest()
        Closed,  // the peer ended the stream (EOF, TLS close_notify, WebSocket close frame)
        Failed,  // an error; the link closes
    };
    Status status = Status::Again;
    size_t bytes = 0;

    static Io done(size_t n = 0) { return {Status::Done, n}; }
    static Io again() { return {Status::Again, 0}; }
    static Io closed() { return {Status::Closed, 0}; }
    static Io failed() { return {Status::Failed, 0}; }
};

// Epoll interest bits, as in <sys/epoll.h> (EPOLLIN / EPOLLOUT), without including it here.
inline constexpr uint32_t kWantRead = 0x001;
inline constexpr uint32_t kWantWrite = 0x004;

class Transport {
public:
    virtual ~Transport() = default;

    // Moves the handshake on. Done once it is complete (then not called again).
    virtual Io handshake(int fd) = 0;
    virtual Io read(int fd, std::span<uint8_t> buf) = 0;
    // An empty `data` only flushes what the transport holds (pending_output()).
    virtual Io write(int fd, std::span<const uint8_t> data) = 0;
    // Sends the transport's goodbye (TLS close_notify, WebSocket close frame) as far as the
    // socket takes it now; the link shuts the socket down after it.
    virtual void goodbye(int fd) = 0;

    virtual bool buffered() const = 0;
    virtual bool pending_output() const = 0;
    // The epoll interest for what the link wants (kWantRead / kWantWrite bits).
    virtual uint32_t interest(uint32_t link_wants) const = 0;

    // "ssl", "ws" or "wss" (broker::Link::transport()).
    virtual const char* name() const = 0;
    // TLS with a client certificate: its subject's common name, or the whole subject as an
    // RFC 2253 distinguished name; empty without a verified certificate.
    virtual std::string peer_subject(bool dn) const {
        (void)dn;
        return {};
    }
};

}  // namespace mqttd::net
