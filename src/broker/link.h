// broker::Link: what the broker needs from one network connection, implemented by net (TCP,
// and later TLS and WebSocket). The broker appends encoded packets to out() and calls flush();
// net writes them in one gather per loop turn. Touched only on the connection's worker thread.
#pragma once

#include <cstdint>
#include <string>

namespace mqttd::broker {

class Link {
public:
    virtual ~Link() = default;
    // The buffer to append encoded packets to; net owns and reuses it.
    virtual std::string& out() = 0;
    // Requests a write of out() at the end of the current loop turn.
    virtual void flush() = 0;
    // Writes what is pending, then closes. The broker learns of the close through
    // Worker::on_closed(), exactly once, whoever started it.
    virtual void close() = 0;
    virtual const std::string& peer_ip() const = 0;
    virtual uint16_t peer_port() const = 0;
    virtual const char* transport() const = 0;  // "tcp", "ssl", "ws", "wss"
};

}  // namespace mqttd::broker
