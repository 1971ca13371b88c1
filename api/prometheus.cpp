// GET /metrics: rendering (see api/prometheus.h). A cold path: one scrape every few seconds.
#include "api/prometheus.h"

#include <charconv>
#include <cstdio>
#include <map>

#include "api/handler.h"
#include "api/node_info.h"
#include "common/clock.h"

namespace mqttd::api {

namespace {

// Label values escape \, " and newline (exposition format 0.0.4).
void append_label_value(std::string& out, std::string_view v) {
    for (char ch : v) {
        if (ch == '\\') {
            out += "\\\\";
        } else if (ch == '"') {
            out += "\\\"";
        } else if (ch == '\n') {
            out += "\\n";
        } else {
            out += ch;
        }
    }
}

void append_u64(std::string& out, uint64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

// Shortest text that reads back as the same double ("0.00025", "1e-05").
void append_double(std::string& out, double v) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

void append_labels(std::string& out, const PrometheusText::Labels& labels) {
    if (labels.empty()) {
        return;
    }
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) {
            out += ',';
        }
        first = false;
        out += k;
        out += "=\"";
        append_label_value(out, v);
        out += '"';
    }
    out += '}';
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // ours: no '\\' or newline to escape
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void PrometheusText::sample(std::string_view name, const Labels& labels, uint64_t value) {
    out_ += name;
    append_labels(out_, labels);
    out_ += ' ';
    append_u64(out_, value);
    out_ += '\n';
}

void PrometheusText::histogram(std::string_view name,
                               std::string_view help,
                               const HistogramSnapshot& h,
                               double scale) {
    family(name, "histogram", help);
    std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i < h.cumulative.size(); ++i) {
        std::string le;
        if (i < h.bounds.size()) {
            append_double(le, static_cast<double>(h.bounds[i]) / scale);
        } else {
            le = "+Inf";
        }
        sample(bucket, {{"le", le}}, h.cumulative[i]);
    }
    out_ += name;
    out_ += "_sum ";
    append_double(out_, static_cast<double>(h.sum) / scale);
    out_ += '\n';
    sample(std::string(name) + "_count", h.count);
}

std::string metric_name_part(std::string_view spec_name) {
    std::string out(spec_name);
    for (char& ch : out) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_';
        if (!ok) {
            ch = '_';
        }
    }
    return out;
}

namespace {

constexpr double kMicros = 1e6;

void broker_metrics(Handler& h, PrometheusText& p) {
    auto& admin = h.ctx().admin;
    auto m = admin.metrics();
    for (size_t i = 0; i < broker::kMetricCount; ++i) {
        std::string spec(broker::kMetricNames[i]);
        std::string name = "mqttd_" + metric_name_part(spec) + "_total";
        p.family(name, "counter", "monitoring/metrics " + spec);
        p.sample(name, m[i]);
    }
    // The database auth plugins' counters; "down" is 1 while the backend cannot answer.
    for (const auto& [spec, value] : admin.auth_metrics()) {
        bool gauge = spec.ends_with("/down");
        std::string name = "mqttd_" + metric_name_part(spec) + (gauge ? "" : "_total");
        p.family(name, gauge ? "gauge" : "counter", "monitoring/metrics " + spec);
        p.sample(name, value);
    }
}

void broker_stats(Handler& h, PrometheusText& p) {
    for (const auto& [spec, value] : h.ctx().admin.stats()) {
        // "clients/count" -> mqttd_clients, "clients/max" -> mqttd_clients_max.
        std::string name = spec;
        if (name.ends_with("/count")) {
            name.resize(name.size() - 6);
        }
        name = "mqttd_" + metric_name_part(name);
        p.family(name, "gauge", "monitoring/stats " + spec);
        p.sample(name, value);
    }
}

void listeners(Handler& h, PrometheusText& p) {
    auto ls = h.listeners();
    p.family("mqttd_listener_connections", "gauge",
             "Current connections of a listener (monitoring/listeners current_clients)");
    for (const auto& l : ls) {
        p.sample("mqttd_listener_connections", {{"listener", l.protocol}, {"listen", l.address}},
                 l.current_clients);
    }
    p.family("mqttd_listener_max_connections", "gauge",
             "Connection limit of a listener, 0 = none (monitoring/listeners max_clients)");
    for (const auto& l : ls) {
        p.sample("mqttd_listener_max_connections",
                 {{"listener", l.protocol}, {"listen", l.address}}, l.max_clients);
    }
    p.family("mqttd_listener_shutdowns_total", "counter",
             "Connections closed, by reason (monitoring/listeners shutdown_count)");
    for (const auto& l : ls) {
        if (l.protocol == "mqtt:api" || l.protocol == "dashboard:http") {
            continue;  // requests, not connections: no shutdown counts
        }
        for (const auto& [reason, count] :
             {std::pair<std::string_view, uint64_t>{"closed", l.closed},
              {"max_clients", l.refused},
              {"handshake_error", l.handshake_failed}}) {
            p.sample("mqttd_listener_shutdowns_total",
                     {{"listener", l.protocol}, {"listen", l.address}, {"reason", reason}}, count);
        }
    }
}

void store(Handler& h, PrometheusText& p) {
    auto& st = h.ctx().store;
    auto s = st.stats();
    p.histogram("mqttd_store_group_commit_batches",
                "Logical write batches merged into one group commit", s.group_batches);
    p.histogram("mqttd_store_write_duration_seconds",
                "Time of each group commit's RocksDB write, its WAL sync included when "
                "storage.sync is true",
                s.write_us, kMicros);
    p.histogram("mqttd_store_wal_sync_duration_seconds",
                "Time of each fsync/fdatasync of a RocksDB WAL file", s.wal_sync_us, kMicros);
    auto gauge = [&](const char* name, const char* help, uint64_t v) {
        p.family(name, "gauge", help);
        p.sample(name, v);
    };
    gauge("mqttd_store_disk_bytes", "Size of every file in the store directory", s.disk_bytes);
    gauge("mqttd_store_sst_bytes", "Size of the SST files of every family (RocksDB)", s.sst_bytes);
    gauge("mqttd_store_memtable_bytes", "Size of the memtables of every family (RocksDB)",
          s.memtable_bytes);
    gauge("mqttd_store_pending_compaction_bytes",
          "Bytes RocksDB estimates compaction has to rewrite, all families",
          s.pending_compaction_bytes);
    gauge("mqttd_store_compactions_pending", "Families with a compaction pending (RocksDB)",
          s.compactions_pending);
    gauge("mqttd_store_running_compactions", "Compactions running (RocksDB)",
          s.running_compactions);
    gauge("mqttd_store_running_flushes", "Memtable flushes running (RocksDB)", s.running_flushes);
    gauge("mqttd_store_sync", "1 when storage.sync fsyncs every group commit", s.sync ? 1 : 0);
    const storage::StoreHealth health = st.health();
    gauge("mqttd_store_writable", "1 while the store takes writes; 0 out of space or failed",
          health.state == storage::StoreHealth::State::Writable ? 1 : 0);
    gauge("mqttd_store_out_of_space",
          "1 while the store's file system is full (writes refused until it resumes)",
          health.state == storage::StoreHealth::State::NoSpace ? 1 : 0);
    p.family("mqttd_store_refused_writes_total", "counter",
             "Logical write batches the store failed or refused (out of space, or failed)");
    p.sample("mqttd_store_refused_writes_total", health.refused_writes);
    p.family("mqttd_store_resumed_total", "counter",
             "Times the store took writes again after its file system was full");
    p.sample("mqttd_store_resumed_total", health.resumed);
    using storage::Counted;
    gauge("mqttd_store_queued_messages",
          "Queue entries of every persistent session together (queue depth total)",
          st.count(Counted::QueueEntries));
    gauge("mqttd_store_queued_messages_max", "Highest queue depth total since start",
          st.count_max(Counted::QueueEntries));
    gauge("mqttd_store_messages", "Stored message payloads (each stored once, shared by queues)",
          st.count(Counted::Messages));
    gauge("mqttd_store_sessions", "Stored persistent sessions", st.count(Counted::Sessions));
}

void node(Handler& h, PrometheusText& p) {
    auto& admin = h.ctx().admin;
    p.family("mqttd_build_info", "gauge", "Always 1; the labels name the node and version");
    p.sample("mqttd_build_info", {{"node", admin.node_name()}, {"version", admin.version()}}, 1);
    int64_t up = (unix_ms() - admin.started_at_ms()) / 1000;
    p.family("mqttd_uptime_seconds", "gauge", "Seconds since the broker started");
    p.sample("mqttd_uptime_seconds", static_cast<uint64_t>(up < 0 ? 0 : up));
    auto f = process_figures();
    p.family("mqttd_process_resident_memory_bytes", "gauge", "Resident memory (VmRSS)");
    p.sample("mqttd_process_resident_memory_bytes", f.memory_used);
    p.family("mqttd_process_max_fds", "gauge", "Soft limit of open files (RLIMIT_NOFILE)");
    p.sample("mqttd_process_max_fds", f.max_fds);
}

}  // namespace

std::string metrics_text(Handler& h) {
    PrometheusText p;
    node(h, p);
    broker_metrics(h, p);
    broker_stats(h, p);
    listeners(h, p);
    store(h, p);
    return p.text();
}

}  // namespace mqttd::api
