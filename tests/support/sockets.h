// Loopback sockets for the tests and benchmarks: a free port and a blocking connect.
// Independent of the code under test. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

namespace mqttd::test {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close); 0 if
// no socket could be bound.
uint16_t free_port();

// A blocking TCP connection to 127.0.0.1:port, or -1.
int connect_loopback(uint16_t port);

// Writes all of `data` (MSG_NOSIGNAL); false if the peer closed first.
bool send_all(int fd, const std::string& data);

}  // namespace mqttd::test
