// Bridge: a local stand-in for a TLS and/or WebSocket MQTT client stack, so that RawClient
// (plain bytes, hand-built packets) can drive every transport of the broker. The constructor
// connects to the broker and does the TLS handshake (OpenSSL, verifying the server against a
// CA file, optionally with a client certificate) and/or the WebSocket upgrade (RFC 6455, a
// random key, the subprotocol asked for); then a thread accepts one connection on port() and
// carries bytes both ways: what the RawClient sends goes out in masked binary frames
// (optionally cut into fragments), the broker's frames come back as their payload; pings are
// answered; a close frame from the broker is answered and ends both sides.
//
// Independent of the code under test: none of src/ is used.
// Thread-safety: construct, query and destroy on the test thread; the pump thread touches
// only its own state and the atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace mqttd::itest {

struct BridgeOptions {
    bool tls = false;
    std::string ca_file;    // verify the broker's certificate (for localhost) against it
    std::string cert_file;  // client certificate and key, for mutual TLS
    std::string key_file;
    bool websocket = false;
    std::string path = "/mqtt";
    std::string subprotocol = "mqtt";
    std::string prefix;      // raw bytes sent first, before TLS (a PROXY header)
    size_t ws_fragment = 0;  // > 0: each write is sent as fragments of this many bytes
};

class Bridge {
public:
    Bridge(uint16_t broker_port, BridgeOptions options);
    ~Bridge();
    Bridge(const Bridge&) = delete;
    Bridge& operator=(const Bridge&) = delete;

    // False when the connection, TLS handshake or upgrade failed (error() says why).
    bool ok() const { return ok_; }
    const std::string& error() const { return error_; }
    // Where the RawClient connects.
    uint16_t port() const { return port_; }
    // The status code of the broker's WebSocket close frame, 0 while none came.
    uint16_t close_code() const { return close_code_.load(); }
    // The subprotocol the broker chose.
    const std::string& subprotocol() const { return chosen_; }

private:
    bool up_write(const void* data, size_t n);
    long up_read(void* data, size_t n);
    bool send_frame(uint8_t opcode, const uint8_t* data, size_t n, bool fin = true);
    void pump();

    BridgeOptions o_;
    int listen_fd_ = -1;
    int up_fd_ = -1;
    void* ssl_ctx_ = nullptr;  // SSL_CTX
    void* ssl_ = nullptr;      // SSL
    uint16_t port_ = 0;
    bool ok_ = false;
    std::string error_;
    std::string chosen_;
    std::string up_pending_;  // bytes read from the broker after the upgrade answer
    std::atomic<bool> stop_{false};
    std::atomic<uint16_t> close_code_{0};
    std::thread thread_;
};

}  // namespace mqttd::itest
