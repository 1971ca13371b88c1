// broker::Broker: what all workers share — the topic index, the store, the settings, the
// workers themselves and the counters summed for REST and $SYS. Built by main before the
// worker threads start; recover() loads the stored sessions and subscriptions (never queued
// payloads) into the index and onto their home workers.
//
// Thread-safety: the index is internally locked; workers are reached through their inbox;
// the snapshot readers (metrics_snapshot, stats) may run on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "broker/admin.h"
#include "broker/cluster_router.h"
#include "broker/extensions.h"
#include "broker/metrics.h"
#include "broker/relay_stubs.h"
#include "broker/retained_in_flight.h"
#include "broker/settings.h"
#include "broker/topic_index.h"
#include "broker/worker.h"
#include "common/high_water.h"
#include "storage/store.h"

namespace mqttd::broker {

class Broker {
public:
    Broker(storage::Store& store, Settings& settings, uint32_t workers);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Loads stored sessions and subscriptions; rebuilds the `routes` family from them.
    // REQUIRES: worker threads not started.
    storage::Status recover();

    uint32_t worker_count() const { return static_cast<uint32_t>(workers_.size()); }
    Worker& worker(uint32_t i) { return *workers_[i]; }
    // The worker that owns the session of `client_id` (fixed: a hash of the id).
    uint32_t home_worker(std::string_view client_id) const;
    // A fresh client id homed on worker `w` (3.1.1 3.1.3.1: the server assigns one).
    std::string assign_client_id(uint32_t w);

    TopicIndex& index() { return index_; }
    Extensions& extensions() { return extensions_; }
    storage::Store& store() { return store_; }
    RetainedInFlight& retained_in_flight() { return retained_in_flight_; }
    // Sessions just moved to another cluster node, still matched here (SessionMove).
    RelayStubs& relay_stubs() { return relay_stubs_; }
    Settings& settings() { return settings_; }
    int64_t started_at_ms() const { return started_at_ms_; }
    // The cluster layer, or null for a single node. REQUIRES: set before the worker threads
    // start; it outlives them.
    void set_cluster(ClusterRouter* cluster) { cluster_ = cluster; }
    ClusterRouter* cluster() const { return cluster_; }
    uint64_t next_connection_id() { return next_connection_id_.fetch_add(1) + 1; }

    // Sums of every worker's counters.
    MetricsSnapshot metrics_snapshot() const;
    // The spec's monitoring/stats: name -> value ("clients/count", "clients/max", ...). Every
    // "/max" is the highest value reached since the start, raised on each change.
    std::map<std::string, uint64_t> stats();
    // Connected clients and sessions of all workers; workers add their changes.
    HighWater& clients_high_water() { return clients_; }
    HighWater& sessions_high_water() { return sessions_; }

private:
    storage::Store& store_;
    Settings& settings_;
    TopicIndex index_;
    Extensions extensions_;
    RetainedInFlight retained_in_flight_;
    RelayStubs relay_stubs_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::atomic<uint64_t> next_connection_id_{0};
    std::atomic<uint64_t> assigned_ids_{0};
    int64_t started_at_ms_ = 0;
    ClusterRouter* cluster_ = nullptr;

    HighWater clients_;
    HighWater sessions_;
};

}  // namespace mqttd::broker
