// Worker: messages the broker publishes itself: presence and $SYS (worker 0, every
// mqtt.broker.sys_interval).

#include <ctime>

#include "broker/broker.h"
#include "broker/worker.h"
#include "common/clock.h"
#include "common/uptime.h"

namespace mqttd::broker {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

void Worker::publish_from_broker(std::string_view topic, std::string_view payload, uint8_t qos) {
    publish(make_message(MessageInit{topic,
                                     payload,
                                     qos,
                                     false,
                                     {},
                                     {},
                                     unix_ms(),
                                     0,
                                     broker_.store().next_message_id()}),
            nullptr, nullptr);
}

void Worker::publish_sys(int64_t now_ms) {
    int64_t interval = broker_.settings().sys_interval_s.load(std::memory_order_relaxed);
    if (interval <= 0 || now_ms - last_sys_ms_ < interval * 1000) {
        return;
    }
    last_sys_ms_ = now_ms;
    const auto& settings = broker_.settings();
    std::string prefix = "$SYS/brokers/" + settings.node_name + "/";
    auto emit = [&](const std::string& topic, const std::string& payload) {
        publish_from_broker(topic, payload, 0);
    };
    // EMQ 2.x: $SYS/brokers lists the cluster's nodes (comma-separated); here, this node.
    emit("$SYS/brokers", settings.node_name);
    emit(prefix + "version", settings.version);
    emit(prefix + "sysdescr", "mqttd MQTT broker");
    emit(prefix + "uptime", format_uptime((now_ms - broker_.started_at_ms()) / 1000));
    std::time_t t = now_ms / 1000;
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    emit(prefix + "datetime", buf);
    for (const auto& [name, value] : broker_.stats()) {
        emit(prefix + "stats/" + name, std::to_string(value));
    }
    auto m = broker_.metrics_snapshot();
    for (size_t i = 0; i < kMetricCount; ++i) {
        emit(prefix + "metrics/" + std::string(kMetricNames[i]), std::to_string(m[i]));
    }
}

}  // namespace mqttd::broker
