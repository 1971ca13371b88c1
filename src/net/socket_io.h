// Non-blocking recv/send on a link's socket, in the terms of net::Io (transport.h): what a
// plain TCP link calls directly and what the transports use underneath.
//
// Thread-safety: stateless.
#pragma once

#include <cerrno>
#include <span>

#include <sys/socket.h>

#include "net/transport.h"

namespace mqttd::net {

inline Io fd_read(int fd, std::span<uint8_t> buf) {
    ssize_t got = ::recv(fd, buf.data(), buf.size(), 0);
    if (got > 0) {
        return Io::done(static_cast<size_t>(got));
    }
    if (got == 0) {
        return Io::closed();
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return Io::again();  // level-triggered: reported again while data is there
    }
    return Io::failed();
}

inline Io fd_write(int fd, std::span<const uint8_t> data) {
    for (;;) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            return Io::done(static_cast<size_t>(n));
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return Io::again();
        }
        return Io::failed();
    }
}

}  // namespace mqttd::net
