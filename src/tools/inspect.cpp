// `mqttd inspect` (src/tools/inspect.h): arguments, the secondary store, one printer per
// command. Tables are plain columns separated by two spaces; JSON is one document on stdout.
#include "tools/inspect.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/store.h"

namespace mqttd::tools {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kUsage =
        "Usage: mqttd inspect [--data-dir DIR] [--json] [--limit N] COMMAND\n"
        "\n"
        "Reads the store in DIR/db (default DIR: data) read-only, also while its broker runs.\n"
        "\n"
        "Commands:\n"
        "  sessions          the persistent sessions, with their counts\n"
        "  session ID        one session: record, subscriptions, counts, QoS 2 state\n"
        "  queue ID          the queued messages of a session (first N, default 100)\n"
        "  retained FILTER   the retained messages matching FILTER (e.g. '#')\n"
        "  config            the values saved through the REST API, plugin state included\n"
        "  stats             the store's counts\n";

struct Args {
    std::string data_dir = "data";
    bool json = false;
    uint32_t limit = 100;
    std::vector<std::string> words;  // command and its argument
};

int usage_error(const std::string& line) {
    std::fprintf(stderr, "mqttd inspect: %s\n%s", line.c_str(), kUsage);
    return 2;
}

int error(const std::string& line) {
    std::fprintf(stderr, "mqttd inspect: %s\n", line.c_str());
    return 1;
}

std::string time_text(int64_t ms) {
    if (ms <= 0) {
        return "-";
    }
    const auto secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// A table: columns padded to their widest cell.
class Table {
public:
    explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print() const {
        std::vector<size_t> width(rows_[0].size(), 0);
        for (const auto& r : rows_) {
            for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
                width[i] = std::max(width[i], r[i].size());
            }
        }
        for (const auto& r : rows_) {
            std::string line;
            for (size_t i = 0; i < r.size(); ++i) {
                line += r[i];
                if (i + 1 < r.size()) {
                    line.append(width[i] - r[i].size() + 2, ' ');
                }
            }
            std::printf("%s\n", line.c_str());
        }
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

std::string n(uint64_t v) {
    return std::to_string(v);
}

Json counts_json(const storage::SessionCounts& c) {
    return Json{{"subscriptions", c.subscriptions},   {"queued", c.queued},
                {"awaiting_rel", c.awaiting_rel},     {"awaiting_comp", c.awaiting_comp},
                {"enqueued_total", c.enqueued_total}, {"dropped_total", c.dropped_total}};
}

Json session_json(const storage::Store& store, const storage::SessionRecord& s) {
    Json j{{"client_id", s.client_id},
           {"protocol_level", s.protocol_level},
           {"expiry_interval", s.expiry_interval_s},
           {"created_at", time_text(s.created_at_ms)},
           {"disconnected_at", time_text(s.disconnected_at_ms)},
           {"username", s.username},
           {"delayed_will", s.will.has_value()}};
    j.update(counts_json(store.session_counts(s.client_id)));
    return j;
}

int sessions(const storage::Store& store, const Args& a) {
    std::vector<storage::SessionRecord> all;
    auto st = store.for_each_session([&](storage::SessionRecord&& s) { all.push_back(s); });
    if (!st.is_ok()) {
        return error("reading sessions: " + st.to_string());
    }
    if (a.json) {
        Json list = Json::array();
        for (const auto& s : all) {
            list.push_back(session_json(store, s));
        }
        std::printf("%s\n", Json{{"sessions", list}, {"count", all.size()}}.dump(2).c_str());
        return 0;
    }
    Table t({"client_id", "proto", "expiry", "created_at", "disconnected_at", "subs", "queued",
             "awaiting_rel", "awaiting_comp"});
    for (const auto& s : all) {
        const auto c = store.session_counts(s.client_id);
        t.add({s.client_id, n(s.protocol_level), n(s.expiry_interval_s), time_text(s.created_at_ms),
               time_text(s.disconnected_at_ms), n(c.subscriptions), n(c.queued), n(c.awaiting_rel),
               n(c.awaiting_comp)});
    }
    t.print();
    std::printf("%zu sessions\n", all.size());
    return 0;
}

int session(const storage::Store& store, const Args& a, const std::string& id) {
    auto s = store.get_session(id);
    if (!s) {
        return error("no persistent session " + id);
    }
    auto subs = store.subscriptions_of(id);
    auto inflight = store.inflight_of(id);
    if (a.json) {
        Json j = session_json(store, *s);
        Json sj = Json::array();
        for (const auto& sub : subs) {
            sj.push_back(Json{{"topic", sub.topic_filter},
                              {"qos", sub.qos},
                              {"no_local", sub.no_local},
                              {"retain_as_published", sub.retain_as_published},
                              {"retain_handling", sub.retain_handling},
                              {"subscription_id", sub.subscription_id}});
        }
        j["subscription_list"] = sj;
        Json ij = Json::array();
        for (const auto& r : inflight) {
            ij.push_back(
                    Json{{"direction", r.direction == storage::Direction::Inbound ? "in" : "out"},
                         {"packet_id", r.packet_id},
                         {"at", time_text(r.at_ms)}});
        }
        j["qos2_state"] = ij;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    const auto c = store.session_counts(id);
    Table t({"field", "value"});
    t.add({"client_id", s->client_id});
    t.add({"protocol_level", n(s->protocol_level)});
    t.add({"expiry_interval", n(s->expiry_interval_s)});
    t.add({"created_at", time_text(s->created_at_ms)});
    t.add({"disconnected_at", time_text(s->disconnected_at_ms)});
    t.add({"username", s->username});
    t.add({"delayed_will", s->will ? s->will->topic : "-"});
    t.add({"subscriptions", n(c.subscriptions)});
    t.add({"queued", n(c.queued)});
    t.add({"awaiting_rel", n(c.awaiting_rel)});
    t.add({"awaiting_comp", n(c.awaiting_comp)});
    t.add({"enqueued_total", n(c.enqueued_total)});
    t.add({"dropped_total", n(c.dropped_total)});
    t.print();
    std::printf("\n");
    Table st({"topic_filter", "qos", "no_local", "retain_as_published", "retain_handling"});
    for (const auto& sub : subs) {
        st.add({sub.topic_filter, n(sub.qos), sub.no_local ? "1" : "0",
                sub.retain_as_published ? "1" : "0", n(sub.retain_handling)});
    }
    st.print();
    for (const auto& r : inflight) {
        std::printf("qos2 %s packet %u since %s\n",
                    r.direction == storage::Direction::Inbound ? "in" : "out", r.packet_id,
                    time_text(r.at_ms).c_str());
    }
    return 0;
}

int queue(const storage::Store& store, const Args& a, const std::string& id) {
    if (!store.get_session(id)) {
        return error("no persistent session " + id);
    }
    const uint64_t queued = store.session_counts(id).queued;
    auto entries = store.read_queue(id, 0, a.limit);
    if (a.json) {
        Json list = Json::array();
        for (const auto& q : entries) {
            list.push_back(Json{{"seq", q.entry.seq},
                                {"message_id", q.entry.message_id},
                                {"qos", q.entry.qos},
                                {"retain", q.entry.retain},
                                {"topic", q.message.topic},
                                {"payload_size", q.message.payload.size()},
                                {"created_at", time_text(q.message.created_at_ms)}});
        }
        std::printf("%s\n",
                    Json{{"client_id", id}, {"queued", queued}, {"entries", list}}.dump(2).c_str());
        return 0;
    }
    Table t({"seq", "message_id", "qos", "retain", "payload_size", "created_at", "topic"});
    for (const auto& q : entries) {
        t.add({n(q.entry.seq), n(q.entry.message_id), n(q.entry.qos), q.entry.retain ? "1" : "0",
               n(q.message.payload.size()), time_text(q.message.created_at_ms), q.message.topic});
    }
    t.print();
    std::printf("%llu queued, %zu shown\n", static_cast<unsigned long long>(queued),
                entries.size());
    return 0;
}

int retained(const storage::Store& store, const Args& a, const std::string& filter) {
    std::vector<storage::RetainedRecord> all;
    auto st = store.match_retained(filter, [&](storage::RetainedRecord&& r) {
        all.push_back(std::move(r));
        return all.size() < a.limit;
    });
    if (!st.is_ok()) {
        return error("retained " + filter + ": " +
                     (st.message().empty() ? st.to_string() : st.message()));
    }
    if (a.json) {
        Json list = Json::array();
        for (const auto& r : all) {
            list.push_back(Json{{"topic", r.topic},
                                {"qos", r.qos},
                                {"payload_size", r.payload.size()},
                                {"stored_at", time_text(r.stored_at_ms)}});
        }
        std::printf("%s\n", Json{{"retained", list}, {"count", all.size()}}.dump(2).c_str());
        return 0;
    }
    Table t({"topic", "qos", "payload_size", "stored_at"});
    for (const auto& r : all) {
        t.add({r.topic, n(r.qos), n(r.payload.size()), time_text(r.stored_at_ms)});
    }
    t.print();
    std::printf("%zu retained\n", all.size());
    return 0;
}

int config(const storage::Store& store, const Args& a) {
    auto all = store.config_with_prefix("");
    if (a.json) {
        Json j = Json::object();
        for (const auto& c : all) {
            j[c.key] = c.value;
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    Table t({"key", "value"});
    for (const auto& c : all) {
        t.add({c.key, c.value});
    }
    t.print();
    return 0;
}

int stats(const storage::Store& store, const Args& a) {
    using storage::Counted;
    constexpr std::array<std::pair<const char*, Counted>, 7> kNames{{
            {"sessions", Counted::Sessions},
            {"subscriptions", Counted::Subscriptions},
            {"messages", Counted::Messages},
            {"queue_entries", Counted::QueueEntries},
            {"retained", Counted::Retained},
            {"routes", Counted::Routes},
            {"users", Counted::Users},
    }};
    if (a.json) {
        Json j = Json::object();
        for (const auto& [name, what] : kNames) {
            j[name] = store.count(what);
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    Table t({"count", "value"});
    for (const auto& [name, what] : kNames) {
        t.add({name, n(store.count(what))});
    }
    t.print();
    return 0;
}

// A temporary directory for the secondary's own files, removed on destruction.
class SecondaryDir {
public:
    SecondaryDir() {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/mqttd-inspect-XXXXXX";
        std::vector<char> buf(pattern.begin(), pattern.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) != nullptr) {
            path_ = buf.data();
        }
    }
    ~SecondaryDir() {
        if (!path_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(path_, ec);
        }
    }
    SecondaryDir(const SecondaryDir&) = delete;
    SecondaryDir& operator=(const SecondaryDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace

int inspect_main(int argc, const char* const* argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> const char* {
            return i + 1 < argc ? argv[++i] : nullptr;
        };
        if (arg == "-h" || arg == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (arg == "--json") {
            a.json = true;
        } else if (arg == "--data-dir") {
            const char* v = value();
            if (v == nullptr || *v == '\0') {
                return usage_error("--data-dir needs a directory");
            }
            a.data_dir = v;
        } else if (arg == "--limit") {
            const char* v = value();
            const std::string_view sv = v ? v : "";
            uint32_t limit = 0;
            auto [p, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), limit);
            if (ec != std::errc() || p != sv.data() + sv.size() || limit == 0) {
                return usage_error("--limit needs a positive number");
            }
            a.limit = limit;
        } else if (arg.starts_with("-") && arg.size() > 1) {
            return usage_error("unknown option \"" + std::string(arg) + "\"");
        } else {
            a.words.emplace_back(arg);
        }
    }
    if (a.words.empty()) {
        return usage_error("a command is needed");
    }
    const std::string& cmd = a.words[0];
    const bool takes_arg = cmd == "session" || cmd == "queue" || cmd == "retained";
    const bool known = takes_arg || cmd == "sessions" || cmd == "config" || cmd == "stats";
    if (!known) {
        return usage_error("unknown command \"" + cmd + "\"");
    }
    if (a.words.size() != (takes_arg ? 2u : 1u)) {
        return usage_error(takes_arg ? cmd + " needs one argument" : cmd + " takes no argument");
    }

    SecondaryDir secondary;
    if (secondary.path().empty()) {
        return error("cannot create a temporary directory");
    }
    storage::Options o;
    o.dir = a.data_dir + "/db";
    o.create_if_missing = false;
    o.secondary_dir = secondary.path();
    std::unique_ptr<storage::Store> store;
    if (auto st = storage::Store::open(o, store); !st.is_ok()) {
        return error(st.message().empty() ? st.to_string() : st.message());
    }
    if (cmd == "sessions") {
        return sessions(*store, a);
    }
    if (cmd == "session") {
        return session(*store, a, a.words[1]);
    }
    if (cmd == "queue") {
        return queue(*store, a, a.words[1]);
    }
    if (cmd == "retained") {
        return retained(*store, a, a.words[1]);
    }
    if (cmd == "config") {
        return config(*store, a);
    }
    return stats(*store, a);
}

}  // namespace mqttd::tools
