#include "client.h"

#include <cerrno>
#include <utility>

namespace mqttd::load {

Client::Client(Loop& loop, ClientEvents& events, std::string client_id, std::uint32_t index)
    : loop_(loop), events_(events), id_(std::move(client_id)), index_(index) {}

void Client::start(const sockaddr_in& to,
                   in_addr_t from,
                   bool clean_session,
                   std::uint16_t keepalive) {
    clean_ = clean_session;
    keepalive_ = keepalive;
    phase_ = Phase::Connecting;
    last_error_ = 0;
    closed_in_handshake_ = false;
    close_requested_ = false;
    unacked_ = 0;
    pending_subacks_ = 0;
    ids_in_use_.clear();
    next_id_ = 1;
    conn_ = loop_.connect(to, from, this);
}

void Client::on_open(Connection& c) {
    phase_ = Phase::WaitConnack;
    put_connect(c.out, ConnectOptions{id_, clean_, keepalive_});
    loop_.want_flush(c);
}

std::uint16_t Client::take_packet_id() {
    if (ids_in_use_.empty()) {
        ids_in_use_.assign(1024, 0);
    }
    // Ids are handed out round-robin; a still-used id means the window is 65535 wide.
    for (int tries = 0; tries < 65535; ++tries) {
        const std::uint16_t id = next_id_;
        next_id_ = static_cast<std::uint16_t>(next_id_ == 65535 ? 1 : next_id_ + 1);
        std::uint64_t& word = ids_in_use_[id >> 6];
        const std::uint64_t bit = std::uint64_t{1} << (id & 63);
        if ((word & bit) == 0) {
            word |= bit;
            ++unacked_;
            return id;
        }
    }
    return 0;
}

void Client::release_packet_id(std::uint16_t id) {
    if (ids_in_use_.empty() || id == 0) {
        return;
    }
    std::uint64_t& word = ids_in_use_[id >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (id & 63);
    if ((word & bit) != 0) {
        word &= ~bit;
        --unacked_;
    }
}

void Client::subscribe(std::string_view filter, int qos) {
    if (conn_ == nullptr || !conn_->is_open()) {
        return;
    }
    const std::uint16_t id = take_packet_id();
    put_subscribe(conn_->out, id, filter, qos);
    ++pending_subacks_;
    loop_.want_flush(*conn_);
}

bool Client::publish(
        std::string_view topic, int qos, std::uint64_t seq, std::uint64_t ts_ns, std::size_t size) {
    std::uint16_t id = 0;
    if (qos > 0) {
        id = take_packet_id();
        if (id == 0) {
            return false;
        }
    }
    put_publish(conn_->out, topic, qos, id, seq, ts_ns, size);
    loop_.want_flush(*conn_);
    return true;
}

void Client::disconnect() {
    close_requested_ = true;
    if (conn_ != nullptr && conn_->is_open()) {
        put_disconnect(conn_->out);
        loop_.close_gracefully(*conn_);
    } else if (conn_ != nullptr) {
        loop_.abort(*conn_, 0);
    }
}

void Client::abort() {
    close_requested_ = true;
    if (conn_ != nullptr) {
        loop_.abort(*conn_, 0);
    }
}

void Client::on_packet(Connection& c, const Packet& p) {
    switch (p.type()) {
        case PacketType::Publish: {
            const auto m = parse_publish(p);
            if (!m) {
                loop_.abort(c, EPROTO);
                return;
            }
            // Acks are queued here and leave with everything else at the end of the turn.
            if (m->qos == 1) {
                put_ack(c.out, PacketType::Puback, m->packet_id);
                loop_.want_flush(c);
            } else if (m->qos == 2) {
                put_ack(c.out, PacketType::Pubrec, m->packet_id);
                loop_.want_flush(c);
            }
            events_.on_message(*this, *m);
            break;
        }
        case PacketType::Puback:
        case PacketType::Pubcomp:
            release_packet_id(packet_id_of(p));
            events_.on_publish_done(*this);
            break;
        case PacketType::Pubrec:
            put_ack(c.out, PacketType::Pubrel, packet_id_of(p));
            loop_.want_flush(c);
            break;
        case PacketType::Pubrel:
            put_ack(c.out, PacketType::Pubcomp, packet_id_of(p));
            loop_.want_flush(c);
            break;
        case PacketType::Connack: {
            const int rc = p.body.size() >= 2 ? p.body[1] : 255;
            const bool present = !p.body.empty() && (p.body[0] & 0x01) != 0;
            phase_ = rc == 0 ? Phase::Ready : Phase::Closed;
            events_.on_connack(*this, rc, present);
            break;
        }
        case PacketType::Suback:
            release_packet_id(packet_id_of(p));
            if (pending_subacks_ > 0) {
                --pending_subacks_;
            }
            events_.on_suback(*this);
            break;
        default:
            break;  // PINGRESP and anything else: nothing to do
    }
}

void Client::on_closed(Connection& /*c*/, int err) {
    closed_in_handshake_ = phase_ == Phase::Connecting || phase_ == Phase::WaitConnack;
    phase_ = Phase::Closed;
    last_error_ = err;
    events_.on_closed(*this, err);
}

}  // namespace mqttd::load
