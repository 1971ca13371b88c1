// MQTT codec micro-benchmarks: decode and encode per packet type and version.
//   build-mqtt/benchmarks/micro/codec_bench --benchmark_min_time=0.2
// PUBLISH is measured with 16 B and 1 KiB payloads at each QoS; decoding reuses one Packet, as a
// connection does, so the numbers include no allocation for PUBLISH (STYLE.md, hot path).
#include <cstdint>
#include <span>
#include <string>

#include <benchmark/benchmark.h>

#include "mqtt/decoder.h"
#include "mqtt/encoder.h"

namespace {

using mqttd::mqtt::Ack;
using mqttd::mqtt::Connect;
using mqttd::mqtt::Decoder;
using mqttd::mqtt::Packet;
using mqttd::mqtt::PacketType;
using mqttd::mqtt::ReasonCode;
using mqttd::mqtt::Side;
using mqttd::mqtt::Suback;
using mqttd::mqtt::Subscribe;
using mqttd::mqtt::SubscribeOptions;
using mqttd::mqtt::Version;
namespace m = mqttd::mqtt;

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Version version_arg(int64_t v) {
    return v == 5 ? Version::V5 : Version::V311;
}

Connect make_connect(Version v) {
    Connect c;
    c.version = v;
    c.keepalive = 60;
    c.client_id = "sensor-0042-building-7";
    c.username = "device";
    c.password = "secret-token";
    if (v == Version::V5) {
        c.properties.session_expiry_interval = 3600;
        c.properties.receive_maximum = 100;
    }
    return c;
}

// A server-side decoder past CONNECT.
Decoder connected(Version v) {
    Decoder d(Side::Server);
    std::string wire;
    m::encode_connect(wire, make_connect(v));
    Packet p;
    d.feed(bytes(wire), p);
    return d;
}

void publish_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"ver", "qos", "payload"});
    for (int64_t v : {4, 5}) {
        for (int64_t qos : {0, 1, 2}) {
            for (int64_t size : {16, 1024}) {
                b->Args({v, qos, size});
            }
        }
    }
}

void BM_DecodePublish(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    const auto qos = static_cast<uint8_t>(state.range(1));
    std::string wire;
    m::encode_publish(wire, v, "building/7/floor/3/temperature",
                      std::string(static_cast<size_t>(state.range(2)), 'x'), qos, false, false,
                      qos > 0 ? 1 : 0);
    Decoder d = connected(v);
    Packet p;
    for (auto _ : state) {
        auto r = d.feed(bytes(wire), p);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(p);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_DecodePublish)->Apply(publish_args);

void BM_EncodePublish(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    const auto qos = static_cast<uint8_t>(state.range(1));
    const std::string payload(static_cast<size_t>(state.range(2)), 'x');
    std::string out;
    for (auto _ : state) {
        out.clear();
        m::encode_publish(out, v, "building/7/floor/3/temperature", payload, qos, false, false,
                          qos > 0 ? 1 : 0);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_EncodePublish)->Apply(publish_args);

void BM_DecodeConnect(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    std::string wire;
    m::encode_connect(wire, make_connect(v));
    Packet p;
    for (auto _ : state) {
        Decoder d(Side::Server);  // a second CONNECT on one decoder is a Protocol Error
        auto r = d.feed(bytes(wire), p);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_DecodeConnect)->ArgName("ver")->Arg(4)->Arg(5);

void BM_EncodeConnect(benchmark::State& state) {
    const Connect c = make_connect(version_arg(state.range(0)));
    std::string out;
    for (auto _ : state) {
        out.clear();
        m::encode_connect(out, c);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_EncodeConnect)->ArgName("ver")->Arg(4)->Arg(5);

Subscribe make_subscribe() {
    Subscribe s;
    s.packet_id = 7;
    s.topics = {{"building/+/floor/+/temperature", SubscribeOptions{1, false, false, 0}},
                {"alerts/#", SubscribeOptions{2, false, false, 0}}};
    return s;
}

void BM_DecodeSubscribe(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    std::string wire;
    m::encode_subscribe(wire, v, make_subscribe());
    Decoder d = connected(v);
    Packet p;
    for (auto _ : state) {
        auto r = d.feed(bytes(wire), p);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_DecodeSubscribe)->ArgName("ver")->Arg(4)->Arg(5);

void BM_EncodeSubscribe(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    const Subscribe s = make_subscribe();
    std::string out;
    for (auto _ : state) {
        out.clear();
        m::encode_subscribe(out, v, s);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_EncodeSubscribe)->ArgName("ver")->Arg(4)->Arg(5);

void BM_EncodeSuback(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    const Suback s{7, {ReasonCode::GrantedQos1, ReasonCode::GrantedQos2}, {}};
    std::string out;
    for (auto _ : state) {
        out.clear();
        m::encode_suback(out, v, s);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_EncodeSuback)->ArgName("ver")->Arg(4)->Arg(5);

void BM_DecodeAck(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    std::string wire;
    m::encode_ack(wire, v, Ack{PacketType::Puback, 42, ReasonCode::Success, {}});
    Decoder d = connected(v);
    Packet p;
    for (auto _ : state) {
        auto r = d.feed(bytes(wire), p);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_DecodeAck)->ArgName("ver")->Arg(4)->Arg(5);

void BM_EncodeAck(benchmark::State& state) {
    const Version v = version_arg(state.range(0));
    const Ack a{PacketType::Puback, 42, ReasonCode::Success, {}};
    std::string out;
    for (auto _ : state) {
        out.clear();
        m::encode_ack(out, v, a);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_EncodeAck)->ArgName("ver")->Arg(4)->Arg(5);

void BM_DecodePingreq(benchmark::State& state) {
    std::string wire;
    m::encode_pingreq(wire);
    Decoder d = connected(Version::V311);
    Packet p;
    for (auto _ : state) {
        auto r = d.feed(bytes(wire), p);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_DecodePingreq);

}  // namespace
