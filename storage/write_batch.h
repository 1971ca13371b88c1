// storage::WriteBatch: one logical change, applied atomically by Store::commit (all of it or
// none of it, across column families). Built by one thread, then moved into the store.
//
// Reference counting (contract 5): enqueue() adds a reference to its message, remove_queued()
// drops one; the message is deleted with its last reference. A put_message() must be in the
// same batch as at least one enqueue() of it; a message left with no reference is not stored.
// delete_session() cascades to the session's subscriptions, queue entries (dropping their
// references) and in-flight records.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "storage/records.h"

namespace mqttd::storage {

namespace op {
// The large records are held by pointer so an Op stays small. Consecutive removals of one
// session's entries share one RemoveQueued (a batch of ten thousand acks of one subscriber is
// one op, one client id and a list of seqs).
struct PutSession {
    std::unique_ptr<const SessionRecord> rec;
};
struct DeleteSession {
    std::string client_id;
};
struct PutSubscription {
    SubscriptionRecord rec;
};
struct DeleteSubscription {
    std::string client_id, topic_filter;
};
struct PutMessage {
    std::unique_ptr<const MessageRecord> rec;
};
struct Enqueue {
    QueueEntry rec;
};
struct RemoveQueued {
    std::string client_id;
    std::vector<uint64_t> seqs;  // applied in this order
    bool dropped;
};
struct PutInflight {
    InflightRecord rec;
};
struct DeleteInflight {
    std::string client_id;
    Direction direction;
    uint16_t packet_id;
};
struct PutRetained {
    std::unique_ptr<const RetainedRecord> rec;
};
struct DeleteRetained {
    std::string topic;
};
struct PutRoute {
    RouteRecord rec;
};
struct DeleteRoute {
    std::string topic_filter;
};
struct PutConfig {
    ConfigRecord rec;
};
struct DeleteConfig {
    std::string key;
};
struct PutUser {
    std::unique_ptr<const UserRecord> rec;
};
struct DeleteUser {
    std::string username;
};
}  // namespace op

using Op = std::variant<op::PutSession,
                        op::DeleteSession,
                        op::PutSubscription,
                        op::DeleteSubscription,
                        op::PutMessage,
                        op::Enqueue,
                        op::RemoveQueued,
                        op::PutInflight,
                        op::DeleteInflight,
                        op::PutRetained,
                        op::DeleteRetained,
                        op::PutRoute,
                        op::DeleteRoute,
                        op::PutConfig,
                        op::DeleteConfig,
                        op::PutUser,
                        op::DeleteUser>;

class WriteBatch {
public:
    // Reserving up front costs nothing extra for a batch that gets an op (every real one), and
    // keeps GCC 12 at -O3 from a false -Wnull-dereference in vector<variant>::emplace_back.
    WriteBatch() { ops_.reserve(4); }
    WriteBatch(WriteBatch&&) noexcept = default;
    WriteBatch& operator=(WriteBatch&&) noexcept = default;
    WriteBatch(const WriteBatch&) = delete;
    WriteBatch& operator=(const WriteBatch&) = delete;

    void put_session(SessionRecord r) { ops_.emplace_back(op::PutSession{box(std::move(r))}); }
    void delete_session(std::string client_id) {
        ops_.emplace_back(op::DeleteSession{std::move(client_id)});
    }
    void put_subscription(SubscriptionRecord r) {
        ops_.emplace_back(op::PutSubscription{std::move(r)});
    }
    void delete_subscription(std::string client_id, std::string topic_filter) {
        ops_.emplace_back(op::DeleteSubscription{std::move(client_id), std::move(topic_filter)});
    }
    void put_message(MessageRecord r) { ops_.emplace_back(op::PutMessage{box(std::move(r))}); }
    void enqueue(QueueEntry e) { ops_.emplace_back(op::Enqueue{std::move(e)}); }
    // `dropped` counts the removal as a queue overflow (mqueue_dropped) instead of a delivery.
    // Appended to the previous op when that removes entries of the same session alike.
    void remove_queued(std::string_view client_id, uint64_t seq, bool dropped = false) {
        if (!ops_.empty()) {
            if (auto* last = std::get_if<op::RemoveQueued>(&ops_.back());
                last != nullptr && last->dropped == dropped && last->client_id == client_id) {
                last->seqs.push_back(seq);
                return;
            }
        }
        ops_.emplace_back(op::RemoveQueued{std::string(client_id), {seq}, dropped});
    }
    void put_inflight(InflightRecord r) { ops_.emplace_back(op::PutInflight{std::move(r)}); }
    void delete_inflight(std::string client_id, Direction d, uint16_t packet_id) {
        ops_.emplace_back(op::DeleteInflight{std::move(client_id), d, packet_id});
    }
    void put_retained(RetainedRecord r) { ops_.emplace_back(op::PutRetained{box(std::move(r))}); }
    void delete_retained(std::string topic) {
        ops_.emplace_back(op::DeleteRetained{std::move(topic)});
    }
    void put_route(RouteRecord r) { ops_.emplace_back(op::PutRoute{std::move(r)}); }
    void delete_route(std::string topic_filter) {
        ops_.emplace_back(op::DeleteRoute{std::move(topic_filter)});
    }
    void put_config(std::string key, std::string value) {
        ops_.emplace_back(op::PutConfig{ConfigRecord{std::move(key), std::move(value)}});
    }
    void delete_config(std::string key) { ops_.emplace_back(op::DeleteConfig{std::move(key)}); }
    void put_user(UserRecord r) { ops_.emplace_back(op::PutUser{box(std::move(r))}); }
    void delete_user(std::string username) {
        ops_.emplace_back(op::DeleteUser{std::move(username)});
    }

    bool empty() const { return ops_.empty(); }
    size_t size() const { return ops_.size(); }
    const std::vector<Op>& ops() const { return ops_; }
    void clear() { ops_.clear(); }

private:
    template <typename T>
    static std::unique_ptr<const T> box(T&& r) {
        return std::make_unique<const T>(std::move(r));
    }
    std::vector<Op> ops_;
};

}  // namespace mqttd::storage
