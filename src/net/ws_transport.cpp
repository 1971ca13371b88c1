#include "net/ws_transport.h"

#include <array>
#include <cstring>

#include <wslay/wslay.h>

#include "net/http_upgrade.h"
#include "net/socket_io.h"

namespace mqttd::net {

namespace {

WsTransport* self(void* user) {
    return static_cast<WsTransport*>(user);
}

ssize_t recv_cb(wslay_event_context_ptr, uint8_t* buf, size_t len, int, void* user) {
    return self(user)->on_recv(buf, len);
}

ssize_t send_cb(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) {
    return self(user)->on_send(data, len);
}

void start_cb(wslay_event_context_ptr, const wslay_event_on_frame_recv_start_arg* arg, void* user) {
    self(user)->on_frame_start(arg->opcode);
}

void chunk_cb(wslay_event_context_ptr, const wslay_event_on_frame_recv_chunk_arg* arg, void* user) {
    self(user)->on_frame_chunk(arg->data, arg->data_length);
}

constexpr wslay_event_callbacks kCallbacks{recv_cb,  send_cb, nullptr, start_cb,
                                           chunk_cb, nullptr, nullptr};

constexpr uint16_t kNormalClosure = 1000;
constexpr uint16_t kUnsupportedData = 1003;

}  // namespace

WsTransport::WsTransport(std::unique_ptr<Transport> lower, std::string path, uint64_t max_frame)
    : lower_(std::move(lower)), path_(std::move(path)), max_frame_(max_frame) {}

WsTransport::~WsTransport() {
    if (ws_ != nullptr) {
        wslay_event_context_free(ws_);
    }
}

Io WsTransport::lower_read(std::span<uint8_t> buf) {
    return lower_ ? lower_->read(fd_, buf) : fd_read(fd_, buf);
}

Io WsTransport::lower_write(std::span<const uint8_t> data) {
    return lower_ ? lower_->write(fd_, data) : fd_write(fd_, data);
}

bool WsTransport::start_frames() {
    if (wslay_event_context_server_init(&ws_, &kCallbacks, this) != 0) {
        ws_ = nullptr;
        return false;
    }
    // Payload is streamed into the link's buffer, never collected into messages; each frame
    // is bounded instead.
    wslay_event_config_set_no_buffering(ws_, 1);
    wslay_event_config_set_max_recv_msg_length(ws_, max_frame_);
    return true;
}

Io WsTransport::handshake(int fd) {
    fd_ = fd;
    if (phase_ == Phase::LowerHandshake) {
        if (lower_) {
            Io r = lower_->handshake(fd);
            if (r.status != Io::Status::Done) {
                return r;
            }
        }
        phase_ = Phase::Request;
    }
    while (phase_ == Phase::Request) {
        // Read in small steps, never past the bound: the request is kept until it is whole.
        std::array<uint8_t, 2048> chunk;
        size_t room = std::min(chunk.size(), kMaxUpgradeRequest - request_.size());
        Io r = room == 0 ? Io::done() : lower_read(std::span(chunk.data(), room));
        if (r.status == Io::Status::Again) {
            return r;
        }
        if (r.status != Io::Status::Done) {
            return Io::failed();  // closed or failed before the request was complete
        }
        request_.append(reinterpret_cast<const char*>(chunk.data()), r.bytes);
        UpgradeResult u = parse_upgrade(request_, path_);
        if (u.status == UpgradeResult::Status::NeedMore) {
            continue;
        }
        if (u.status == UpgradeResult::Status::Refuse) {
            raw_out_ = refusal_response(u);
            refusal_ = std::move(u.reason);
            std::string().swap(request_);
            phase_ = Phase::Refusing;
            break;
        }
        raw_out_ = upgrade_response(u);
        request_.erase(0, u.consumed);  // frames the client sent right after the request
        request_used_ = 0;
        if (!start_frames()) {
            return Io::failed();
        }
        phase_ = Phase::Responding;
    }
    if (phase_ == Phase::Responding || phase_ == Phase::Refusing) {
        Io r = flush_raw();
        if (r.status != Io::Status::Done) {
            return r;
        }
        if (phase_ == Phase::Refusing) {
            return Io::failed();
        }
        phase_ = Phase::Open;
        if (request_.empty()) {
            std::string().swap(request_);
        }
    }
    return Io::done();
}

Io WsTransport::flush_raw() {
    while (!raw_out_.empty()) {
        Io r = lower_write(
                std::span(reinterpret_cast<const uint8_t*>(raw_out_.data()), raw_out_.size()));
        if (r.status != Io::Status::Done) {
            return r.status == Io::Status::Again ? r : Io::failed();
        }
        raw_out_.erase(0, r.bytes);
    }
    std::string().swap(raw_out_);
    return Io::done();
}

Io WsTransport::flush_frames() {
    if (ws_ == nullptr) {
        return Io::done();
    }
    if (wslay_event_send(ws_) != 0 || lower_end_ == Io::Status::Failed) {
        return Io::failed();
    }
    return wslay_event_want_write(ws_) != 0 ? Io::again() : Io::done();
}

long WsTransport::on_recv(uint8_t* buf, size_t len) {
    // Never read more than the link's buffer can take as payload: payload is at most the
    // bytes read, and wslay keeps only a partial frame header between calls.
    size_t cap = std::min(len, out_room_ - out_len_);
    if (cap == 0) {
        wslay_event_set_error(ws_, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (request_used_ < request_.size()) {
        size_t n = std::min(cap, request_.size() - request_used_);
        std::memcpy(buf, request_.data() + request_used_, n);
        request_used_ += n;
        if (request_used_ == request_.size()) {
            std::string().swap(request_);
            request_used_ = 0;
        }
        return static_cast<long>(n);
    }
    Io r = lower_read(std::span(buf, cap));
    switch (r.status) {
        case Io::Status::Done:
            return static_cast<long>(r.bytes);
        case Io::Status::Again:
            wslay_event_set_error(ws_, WSLAY_ERR_WOULDBLOCK);
            return -1;
        default:
            lower_end_ = r.status;
            wslay_event_set_error(ws_, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
    }
}

long WsTransport::on_send(const uint8_t* data, size_t len) {
    Io r = lower_write(std::span(data, len));
    switch (r.status) {
        case Io::Status::Done:
            return static_cast<long>(r.bytes);
        case Io::Status::Again:
            wslay_event_set_error(ws_, WSLAY_ERR_WOULDBLOCK);
            return -1;
        default:
            lower_end_ = Io::Status::Failed;
            wslay_event_set_error(ws_, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
    }
}

void WsTransport::on_frame_start(uint8_t opcode) {
    frame_opcode_ = opcode;
    if (opcode == WSLAY_TEXT_FRAME) {
        text_ = true;
    }
    if (opcode == WSLAY_TEXT_FRAME || opcode == WSLAY_BINARY_FRAME) {
        data_opcode_ = opcode;
    }
}

void WsTransport::on_frame_chunk(const uint8_t* data, size_t len) {
    bool binary = frame_opcode_ == WSLAY_BINARY_FRAME ||
                  (frame_opcode_ == WSLAY_CONTINUATION_FRAME && data_opcode_ == WSLAY_BINARY_FRAME);
    if (!binary || out_ == nullptr || len == 0) {
        return;  // control frame payload (wslay answers pings itself), or a text frame
    }
    size_t n = std::min(len, out_room_ - out_len_);  // always len (see on_recv)
    std::memcpy(out_ + out_len_, data, n);
    out_len_ += n;
}

Io WsTransport::read(int fd, std::span<uint8_t> buf) {
    fd_ = fd;
    if (lower_end_ != Io::Status::Again) {
        return {lower_end_, 0};
    }
    if (phase_ != Phase::Open) {
        return Io::again();
    }
    out_ = buf.data();
    out_room_ = buf.size();
    out_len_ = 0;
    int rv = wslay_event_recv(ws_);
    out_ = nullptr;
    size_t n = out_len_;
    out_room_ = out_len_ = 0;
    if (text_) {
        // [MQTT-6.0.0-1]: MQTT packets come in binary frames only.
        wslay_event_queue_close(ws_, kUnsupportedData, nullptr, 0);
        wslay_event_shutdown_read(ws_);
        (void)flush_frames();
        lower_end_ = Io::Status::Failed;
        return Io::failed();
    }
    (void)flush_frames();  // pongs and the reply to a close
    if (lower_end_ == Io::Status::Again) {
        if (rv != 0) {
            lower_end_ = Io::Status::Failed;
        } else if (wslay_event_get_close_received(ws_) != 0) {
            lower_end_ = Io::Status::Closed;
        } else if (wslay_event_get_read_enabled(ws_) == 0) {
            // wslay refused a frame (unmasked, too long, a bad opcode) and queued its close.
            lower_end_ = Io::Status::Failed;
        }
    }
    if (n > 0) {
        return Io::done(n);  // an end seen after them is buffered(): the next read reports it
    }
    return {lower_end_, 0};
}

Io WsTransport::write(int fd, std::span<const uint8_t> data) {
    fd_ = fd;
    if (phase_ != Phase::Open) {
        return Io::again();
    }
    Io f = flush_frames();
    if (f.status != Io::Status::Done) {
        return f;
    }
    if (data.empty()) {
        return Io::done();
    }
    if (wslay_event_get_write_enabled(ws_) == 0) {
        return Io::failed();  // the close frame has gone
    }
    wslay_event_msg msg{WSLAY_BINARY_FRAME, data.data(), data.size()};
    if (wslay_event_queue_msg(ws_, &msg) != 0) {
        return Io::failed();
    }
    if (flush_frames().status == Io::Status::Failed) {
        return Io::failed();
    }
    return Io::done(data.size());
}

void WsTransport::goodbye(int fd) {
    fd_ = fd;
    if (phase_ == Phase::Open && ws_ != nullptr && wslay_event_get_write_enabled(ws_) != 0) {
        wslay_event_queue_close(ws_, kNormalClosure, nullptr, 0);
        (void)flush_frames();
    }
    if (lower_) {
        lower_->goodbye(fd);
    }
}

bool WsTransport::buffered() const {
    if (phase_ != Phase::Open) {
        return false;
    }
    return lower_end_ != Io::Status::Again || request_used_ < request_.size() ||
           (lower_ && lower_->buffered());
}

bool WsTransport::pending_output() const {
    return !raw_out_.empty() || (ws_ != nullptr && wslay_event_want_write(ws_) != 0);
}

uint32_t WsTransport::interest(uint32_t link_wants) const {
    uint32_t w = 0;
    switch (phase_) {
        case Phase::LowerHandshake:
            return lower_ ? lower_->interest(kWantRead) : kWantRead;
        case Phase::Request:
            w = kWantRead;
            break;
        case Phase::Responding:
        case Phase::Refusing:
            w = kWantWrite;
            break;
        case Phase::Open:
            w = link_wants;
            if (pending_output()) {
                w |= kWantWrite;
            }
            break;
    }
    return lower_ ? lower_->interest(w) : w;
}

}  // namespace mqttd::net
