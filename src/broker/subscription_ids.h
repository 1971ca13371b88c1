// broker::SubscriptionIds: the MQTT 5 Subscription Identifiers one delivery carries. A message
// matching several subscriptions of one session goes out once, at the highest QoS granted, with
// the identifier of each of those subscriptions [MQTT-3.3.4-4] (5.0 3.3.4). Nearly always there
// are none or one: the first lives inline, the others are allocated only when there are more.
// A value type (copies are deep); not thread-safe, as any value.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace mqttd::broker {

class SubscriptionIds {
public:
    SubscriptionIds() = default;
    explicit SubscriptionIds(uint32_t id) : first_(id) {}
    SubscriptionIds(const SubscriptionIds& o)
        : first_(o.first_),
          more_(o.more_ ? std::make_unique<std::vector<uint32_t>>(*o.more_) : nullptr) {}
    SubscriptionIds& operator=(const SubscriptionIds& o) {
        if (this != &o) {
            first_ = o.first_;
            more_ = o.more_ ? std::make_unique<std::vector<uint32_t>>(*o.more_) : nullptr;
        }
        return *this;
    }
    SubscriptionIds(SubscriptionIds&&) noexcept = default;
    SubscriptionIds& operator=(SubscriptionIds&&) noexcept = default;
    ~SubscriptionIds() = default;

    // Adds `id` unless it is 0 (no identifier) or already there.
    void add(uint32_t id) {
        if (id == 0 || contains(id)) {
            return;
        }
        if (first_ == 0) {
            first_ = id;
            return;
        }
        if (!more_) {
            more_ = std::make_unique<std::vector<uint32_t>>();
        }
        more_->push_back(id);
    }
    void add(const SubscriptionIds& o) {
        o.for_each([this](uint32_t id) { add(id); });
    }

    bool empty() const { return first_ == 0; }
    uint32_t first() const { return first_; }
    // The identifiers after the first, in the order added (empty for none or one).
    std::vector<uint32_t> rest() const { return more_ ? *more_ : std::vector<uint32_t>{}; }
    bool contains(uint32_t id) const {
        return id != 0 && (first_ == id ||
                           (more_ && std::find(more_->begin(), more_->end(), id) != more_->end()));
    }

    template <typename F>
    void for_each(F&& f) const {
        if (first_ == 0) {
            return;
        }
        f(first_);
        if (more_) {
            for (uint32_t id : *more_) {
                f(id);
            }
        }
    }

private:
    uint32_t first_ = 0;
    std::unique_ptr<std::vector<uint32_t>> more_;
};

}  // namespace mqttd::broker
