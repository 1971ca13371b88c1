// Publish path micro-benchmark (benchmarks/README.md, "Allocations per message"): heap
// allocations and CPU time per message from a decoded PUBLISH to the subscriber's encoded
// bytes, driving the real broker in-process: one Broker with one Worker over a RocksStore in a
// temp dir, two clients connected through Worker::on_connect with links that keep what the
// broker writes (no sockets), the subscriber on `bench/t` at the row's QoS.
//   build/benchmarks/micro/publish_bench --benchmark_min_time=0.5
//
// One iteration = one PUBLISH (16 B payload, 3.1.1) through Worker::on_packet, the worker's
// posted tasks run (as its loop would, for deliveries and completions), the subscriber's bytes
// taken; at QoS 1 also the publisher's PUBACK and the subscriber's PUBACK of its delivery
// (on_packet), which frees its in-flight slot. `allocs` counts this thread's allocations per
// message (alloc_count.h); the store's committer thread is not counted (a clean session writes
// nothing). `fanout` subscribers on the filter: allocations per PUBLISH, `allocs_per_delivery`
// divides by them.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <stdlib.h>

#include <benchmark/benchmark.h>

#include "alloc_count.h"
#include "broker/broker.h"
#include "broker/connection.h"
#include "broker/link.h"
#include "broker/settings.h"
#include "broker/worker.h"
#include "mqtt/decoder.h"
#include "storage/store.h"

namespace mqttd::broker {
namespace {

// Keeps what the broker writes; attach() gives the bench the client's Connection.
class BenchLink final : public Link {
public:
    std::string& out() override { return out_; }
    void flush() override {}
    void close() override {}
    std::string peer_ip() const override { return "127.0.0.1"; }
    uint16_t peer_port() const override { return 1; }
    const char* transport() const override { return "tcp"; }
    std::string peer_subject(bool) const override { return {}; }
    void pause() override {}
    void resume() override {}
    void attach(Connection* c) override { conn = c; }
    void refuse(ConnectRefusal) override { std::abort(); }

    // Packet ids of the PUBLISHes written since the last call, then forgets the bytes.
    void take_publish_ids(std::vector<uint16_t>& ids) {
        std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(out_.data()), out_.size());
        while (!bytes.empty()) {
            auto r = decoder_.feed(bytes, packet_);
            if (r.status != mqtt::Decoder::Status::Packet) {
                std::abort();
            }
            if (auto* p = std::get_if<mqtt::Publish>(&packet_)) {
                ids.push_back(p->packet_id);
            }
            bytes = bytes.subspan(r.consumed);
        }
        out_.clear();
    }

    Connection* conn = nullptr;

private:
    std::string out_;
    mqtt::Decoder decoder_{mqtt::Side::Client};
    mqtt::Packet packet_;
};

// The worker's loop, played by the bench thread.
class Loop {
public:
    void post(Worker::Task t) {
        std::lock_guard lock(mu_);
        tasks_.push_back(std::move(t));
    }
    void run() {
        for (;;) {
            {
                std::lock_guard lock(mu_);
                if (tasks_.empty()) {
                    return;
                }
                running_.swap(tasks_);
            }
            for (auto& t : running_) {
                t();
            }
            running_.clear();
        }
    }

private:
    std::mutex mu_;
    std::vector<Worker::Task> tasks_;
    std::vector<Worker::Task> running_;
};

struct Fixture {
    explicit Fixture(uint8_t qos, int fanout) {
        std::string tmpl =
                (std::filesystem::temp_directory_path() / "mqttd-publish-bench-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::abort();
        }
        dir = tmpl;
        storage::Options o;
        o.dir = dir + "/db";
        o.sync = false;
        if (!storage::Store::open(o, store).is_ok()) {
            std::abort();
        }
        broker = std::make_unique<Broker>(*store, settings, 1);
        broker->worker(0).set_poster([this](Worker::Task t) { loop.post(std::move(t)); });
        subs.resize(static_cast<size_t>(fanout));
        for (int i = 0; i < fanout; ++i) {
            connect(subs[static_cast<size_t>(i)], "sub-" + std::to_string(i));
            mqtt::Subscribe s;
            s.packet_id = 1;
            s.topics.push_back({"bench/t", mqtt::SubscribeOptions{qos, false, false, 0}});
            mqtt::Packet p{std::move(s)};
            broker->worker(0).on_packet(*subs[static_cast<size_t>(i)].conn, p);
        }
        connect(pub, "pub");
        loop.run();
        for (auto& s : subs) {
            s.out().clear();
        }
        pub.out().clear();
    }
    ~Fixture() {
        broker->worker(0).shutdown();
        loop.run();
        broker.reset();
        store->close();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    void connect(BenchLink& link, std::string id) {
        mqtt::Connect c;
        c.client_id = std::move(id);
        auto r = broker->worker(0).on_connect(link, std::move(c));
        loop.run();
        if (r.result != ConnectResult::Accepted || link.conn == nullptr) {
            std::abort();
        }
    }

    std::string dir;
    std::unique_ptr<storage::Store> store;
    Settings settings;
    Loop loop;
    std::unique_ptr<Broker> broker;
    BenchLink pub;
    std::vector<BenchLink> subs;
};

// Args: QoS of the PUBLISH and the subscription, subscribers.
void BM_Publish(benchmark::State& state) {
    // shared_ptr counting is atomic only once a thread has started (topic_bench.cpp).
    std::thread([] {}).join();
    const auto qos = static_cast<uint8_t>(state.range(0));
    const int fanout = static_cast<int>(state.range(1));
    Fixture f(qos, fanout);
    Worker& w = f.broker->worker(0);
    const std::string payload(16, 'x');
    std::vector<uint16_t> ids;
    ids.reserve(16);
    uint16_t pid = 0;
    uint64_t allocs = 0;
    uint64_t delivered = 0;
    for (auto _ : state) {
        mqtt::Publish pub;
        pub.qos = qos;
        pub.topic = "bench/t";
        pub.payload = payload;
        if (qos > 0) {
            pid = static_cast<uint16_t>(pid % 65535 + 1);
            pub.packet_id = pid;
        }
        mqtt::Packet packet{pub};
        uint64_t before = t_allocs;
        if (w.on_packet(*f.pub.conn, packet) != mqtt::ReasonCode::Success) {
            state.SkipWithError("publish refused");
            break;
        }
        f.loop.run();
        allocs += t_allocs - before;
        f.pub.out().clear();  // the PUBACK
        for (auto& s : f.subs) {
            ids.clear();
            s.take_publish_ids(ids);
            delivered += ids.size();
            for (uint16_t id : ids) {
                if (qos == 0) {
                    continue;
                }
                mqtt::Packet ack{mqtt::Ack{mqtt::PacketType::Puback, id, {}, {}}};
                before = t_allocs;
                w.on_packet(*s.conn, ack);
                f.loop.run();
                allocs += t_allocs - before;
            }
            s.out().clear();
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["allocs"] =
            benchmark::Counter(static_cast<double>(allocs), benchmark::Counter::kAvgIterations);
    state.counters["allocs_per_delivery"] =
            static_cast<double>(allocs) / static_cast<double>(std::max<uint64_t>(delivered, 1));
    state.counters["delivered"] =
            benchmark::Counter(static_cast<double>(delivered), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_Publish)
        ->ArgNames({"qos", "subs"})
        ->Args({0, 1})
        ->Args({1, 1})
        ->Args({0, 10})
        ->Args({1, 10});

}  // namespace
}  // namespace mqttd::broker
