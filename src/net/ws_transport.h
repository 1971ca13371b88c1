// net::WsTransport: MQTT over WebSocket (RFC 6455, MQTT 5.0 section 6) on the socket, or on
// a TLS transport below it (WSS). The handshake is the HTTP upgrade (http_upgrade.h); after
// it, frames go through wslay's event API, which is sans-I/O: its recv/send callbacks read
// and write the lower layer here, so the per-worker epoll loop drives it like any socket.
//
// Why wslay: Debian packages it (libwslay-dev), it does the RFC's frame rules (masking of
// client frames, fragmentation, control frames interleaved with fragments, ping/pong, the
// close handshake and its status codes, UTF-8 of text and close reasons) without owning the
// socket or a thread, and it streams payload without buffering messages
// (wslay_event_config_set_no_buffering). Beast's websocket::stream would bring Asio
// per-socket state and a stream per connection, which the epoll design avoids.
//
// Reading: binary (and continuation) frame payload goes straight into the link's buffer, so
// an MQTT packet may span frames and a frame may hold several packets; text frames close the
// connection with 1003 ([MQTT-6.0.0-1]); a frame longer than mqtt.max_packet_size closes it
// with 1009; an unmasked client frame with 1002. Writing: what the link writes becomes one
// binary frame per write (wslay copies it); while wslay still holds unsent bytes the
// transport takes nothing more, so the link's own buffer keeps the backlog the broker sees.
//
// Ownership: owned by its link (LinkExtras); owns the TLS transport below it, if any.
// Thread-safety: none; the owning link's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/transport.h"

struct wslay_event_context;

namespace mqttd::net {

class WsTransport final : public Transport {
public:
    // `lower` is the TLS transport for WSS, null for WebSocket on the socket itself.
    WsTransport(std::unique_ptr<Transport> lower, std::string path, uint64_t max_frame);
    ~WsTransport() override;
    WsTransport(const WsTransport&) = delete;
    WsTransport& operator=(const WsTransport&) = delete;

    Io handshake(int fd) override;
    Io read(int fd, std::span<uint8_t> buf) override;
    Io write(int fd, std::span<const uint8_t> data) override;
    void goodbye(int fd) override;
    bool buffered() const override;
    bool pending_output() const override;
    uint32_t interest(uint32_t link_wants) const override;
    const char* name() const override { return lower_ ? "wss" : "ws"; }
    std::string peer_subject(bool dn) const override {
        return lower_ ? lower_->peer_subject(dn) : std::string();
    }

    // The refusal of the last failed upgrade (for the log), empty otherwise.
    const std::string& refusal() const { return refusal_; }

    // wslay callbacks (wslay_event_callbacks), public for the C trampolines.
    long on_recv(uint8_t* buf, size_t len);
    long on_send(const uint8_t* data, size_t len);
    void on_frame_start(uint8_t opcode);
    void on_frame_chunk(const uint8_t* data, size_t len);

private:
    enum class Phase : uint8_t { LowerHandshake, Request, Responding, Refusing, Open };
    Io lower_read(std::span<uint8_t> buf);
    Io lower_write(std::span<const uint8_t> data);
    // Sends raw_out_ (the HTTP answer); Done once it is all out.
    Io flush_raw();
    // Sends what wslay has queued (data, pongs, close replies) as far as the socket takes it.
    Io flush_frames();
    bool start_frames();

    std::unique_ptr<Transport> lower_;
    const std::string path_;
    const uint64_t max_frame_;
    Phase phase_ = Phase::LowerHandshake;
    int fd_ = -1;              // during a call: the socket the callbacks use
    std::string request_;      // the upgrade request so far (bounded), then what
                               // followed it, served to wslay before the socket
    size_t request_used_ = 0;  // Open: bytes of request_ already given to wslay
    std::string raw_out_;      // the HTTP answer not yet sent
    std::string refusal_;
    wslay_event_context* ws_ = nullptr;
    // During read(): where payload goes.
    uint8_t* out_ = nullptr;
    size_t out_room_ = 0;
    size_t out_len_ = 0;
    uint8_t frame_opcode_ = 0;  // of the frame being received
    uint8_t data_opcode_ = 0;   // of the data message being received (for continuations)
    bool text_ = false;         // a text frame came: the connection closes with 1003
    Io::Status lower_end_ = Io::Status::Again;  // Closed / Failed seen below during a call
};

}  // namespace mqttd::net
