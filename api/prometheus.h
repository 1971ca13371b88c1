// GET /metrics: the broker's metrics and stats, the listeners and the store in the Prometheus
// text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// NAMES. Every spec counter "a/b/c" (monitoring/metrics) becomes mqttd_a_b_c_total, every stat
// "a/count" / "a/max" (monitoring/stats) the gauges mqttd_a / mqttd_a_max (a gauge may not end
// in _count, which the format reserves for histograms); units are in the names (_bytes,
// _seconds). The full list is in api/README.md. Each family is written once, with its HELP and
// TYPE lines, and names are checked by `promtool check metrics` in tests/integration/40.
//
// Thread-safety: any thread (the REST API's).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/histogram.h"

namespace mqttd::api {

class Handler;

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4";

// Writes families in the text format; a family's samples must follow its header.
class PrometheusText {
public:
    using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

    // "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram).
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, const Labels& labels, uint64_t value);
    void sample(std::string_view name, uint64_t value) { sample(name, {}, value); }
    // A histogram family with its _bucket, _sum and _count; bounds and sum are divided by
    // `scale` (1e6 turns microseconds into seconds).
    void histogram(std::string_view name,
                   std::string_view help,
                   const HistogramSnapshot& h,
                   double scale = 1);

    const std::string& text() const { return out_; }

private:
    std::string out_;
};

// "packets/publish/received" -> "packets_publish_received" (anything not [a-zA-Z0-9_] is '_').
std::string metric_name_part(std::string_view spec_name);

// The whole scrape.
std::string metrics_text(Handler& h);

}  // namespace mqttd::api
