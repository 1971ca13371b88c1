// broker::Settings: the configuration values the broker reads, as atomics so the wiring in
// main (and the REST API's hot configuration) can change them while workers run. Owned by the
// Broker; written by the configuration layer, read by workers with relaxed loads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace mqttd::broker {

struct Settings {
    std::string node_name = "mqttd@127.0.0.1";  // fixed at start
    std::string version = "0.1.0";              // fixed at start

    std::atomic<bool> allow_anonymous{true};
    std::atomic<uint32_t> max_packet_size{1024 * 1024};
    std::atomic<uint32_t> max_clientid_len{65535};
    std::atomic<uint32_t> max_inflight{0};              // 0 = no fixed window (bytes bound it)
    std::atomic<uint64_t> max_inflight_bytes{4 << 20};  // 0 = no byte budget
    std::atomic<uint32_t> max_keepalive_s{0};           // MQTT 5 Server Keep Alive bound; 0 = none
    std::atomic<uint32_t> mqueue_max_len{1000};         // 0 = unbounded
    std::atomic<bool> mqueue_store_qos0{true};
    std::atomic<int64_t> session_expiry_s{7200};  // 0 = never
    std::atomic<int64_t> sys_interval_s{60};      // 0 = off
    std::atomic<int64_t> connect_timeout_s{15};
    std::atomic<uint32_t> max_awaiting_rel{100};  // 0 = no limit
    std::atomic<int64_t> await_rel_timeout_s{20};

    // emq_retainer: retained messages on/off and their limits (0 = no limit).
    std::atomic<bool> retainer_enabled{true};
    std::atomic<uint64_t> retainer_max_message_num{0};
    std::atomic<uint64_t> retainer_max_payload_size{1024 * 1024};
    std::atomic<int64_t> retainer_expiry_interval_s{0};
};

}  // namespace mqttd::broker
