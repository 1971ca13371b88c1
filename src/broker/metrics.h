// Broker metrics with exactly the REST API's names (spec: monitoring/metrics). Each worker owns
// one Metrics and is its only writer; readers on other threads (REST, $SYS) sum them with
// Broker::metrics_snapshot(). A single writer makes add() a plain relaxed load + store.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mqttd::broker {

#define MQTTD_METRICS(X)                                  \
    X(BytesReceived, "bytes/received")                    \
    X(BytesSent, "bytes/sent")                            \
    X(PacketsReceived, "packets/received")                \
    X(PacketsSent, "packets/sent")                        \
    X(PacketsConnect, "packets/connect")                  \
    X(PacketsConnack, "packets/connack")                  \
    X(PacketsDisconnect, "packets/disconnect")            \
    X(PacketsPingreq, "packets/pingreq")                  \
    X(PacketsPingresp, "packets/pingresp")                \
    X(PacketsPublishReceived, "packets/publish/received") \
    X(PacketsPublishSent, "packets/publish/sent")         \
    X(PacketsPubackReceived, "packets/puback/received")   \
    X(PacketsPubackSent, "packets/puback/sent")           \
    X(PacketsPubackMissed, "packets/puback/missed")       \
    X(PacketsPubrecReceived, "packets/pubrec/received")   \
    X(PacketsPubrecSent, "packets/pubrec/sent")           \
    X(PacketsPubrecMissed, "packets/pubrec/missed")       \
    X(PacketsPubrelReceived, "packets/pubrel/received")   \
    X(PacketsPubrelSent, "packets/pubrel/sent")           \
    X(PacketsPubrelMissed, "packets/pubrel/missed")       \
    X(PacketsPubcompReceived, "packets/pubcomp/received") \
    X(PacketsPubcompSent, "packets/pubcomp/sent")         \
    X(PacketsPubcompMissed, "packets/pubcomp/missed")     \
    X(PacketsSubscribe, "packets/subscribe")              \
    X(PacketsSuback, "packets/suback")                    \
    X(PacketsUnsubscribe, "packets/unsubscribe")          \
    X(PacketsUnsuback, "packets/unsuback")                \
    X(PacketsMalformed, "packets/malformed")              \
    X(MessagesReceived, "messages/received")              \
    X(MessagesSent, "messages/sent")                      \
    X(MessagesDropped, "messages/dropped")                \
    X(MessagesRetained, "messages/retained")              \
    X(MessagesQos0Received, "messages/qos0/received")     \
    X(MessagesQos0Sent, "messages/qos0/sent")             \
    X(MessagesQos1Received, "messages/qos1/received")     \
    X(MessagesQos1Sent, "messages/qos1/sent")             \
    X(MessagesQos2Received, "messages/qos2/received")     \
    X(MessagesQos2Sent, "messages/qos2/sent")             \
    X(MessagesQos2Dropped, "messages/qos2/dropped")       \
    X(MessagesAclDenied, "messages/acl_denied")

enum class Metric : size_t {
#define MQTTD_METRIC_ENUM(id, name) id,
    MQTTD_METRICS(MQTTD_METRIC_ENUM)
#undef MQTTD_METRIC_ENUM
            Count
};

inline constexpr size_t kMetricCount = static_cast<size_t>(Metric::Count);

inline constexpr std::array<std::string_view, kMetricCount> kMetricNames = {
#define MQTTD_METRIC_NAME(id, name) name,
        MQTTD_METRICS(MQTTD_METRIC_NAME)
#undef MQTTD_METRIC_NAME
};

class Metrics {
public:
    // REQUIRES: called only by the owning worker.
    void add(Metric m, uint64_t n = 1) {
        auto& c = counters_[static_cast<size_t>(m)];
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t get(Metric m) const {
        return counters_[static_cast<size_t>(m)].load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<uint64_t>, kMetricCount> counters_{};
};

using MetricsSnapshot = std::array<uint64_t, kMetricCount>;

}  // namespace mqttd::broker
