#include "broker/relay_stubs.h"

#include <algorithm>

#include "broker/auth/topic_filter.h"
#include "common/clock.h"

namespace mqttd::broker {

void RelayStubs::add(SessionPtr s,
                     const std::vector<storage::SubscriptionRecord>& subscriptions,
                     int64_t until_ms) {
    Stub stub{std::move(s), {}, until_ms};
    for (const auto& sub : subscriptions) {
        if (!parse_shared(sub.topic_filter)) {
            stub.subscriptions.push_back(sub);
        }
    }
    std::lock_guard lock(mutex_);
    stubs_.push_back(std::move(stub));
    count_.store(stubs_.size(), std::memory_order_relaxed);
}

void RelayStubs::match(std::string_view topic, std::vector<Subscriber>& out) {
    const int64_t now = mono_ms();
    std::lock_guard lock(mutex_);
    std::erase_if(stubs_, [now](const Stub& s) { return s.until_ms <= now; });
    count_.store(stubs_.size(), std::memory_order_relaxed);
    for (const auto& stub : stubs_) {
        for (const auto& sub : stub.subscriptions) {
            if (!auth::topic_match(topic, sub.topic_filter)) {
                continue;
            }
            Subscriber m;
            m.session = stub.session;
            m.options = mqtt::SubscribeOptions{sub.qos, sub.no_local, sub.retain_as_published,
                                               sub.retain_handling};
            m.subscription_ids = SubscriptionIds(sub.subscription_id);
            out.push_back(std::move(m));
        }
    }
}

}  // namespace mqttd::broker
