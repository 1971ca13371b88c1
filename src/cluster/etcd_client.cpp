#include "cluster/etcd_client.h"

#include <cstdlib>
#include <utility>

#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace mqttd::cluster {
namespace {

using Json = nlohmann::json;

std::string b64(const std::string& raw) {
    std::string out(4 * ((raw.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string unb64(const std::string& text) {
    if (text.empty()) {
        return {};
    }
    std::string out(3 * text.size() / 4 + 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0) {
        return {};
    }
    // EVP_DecodeBlock counts the padding's zero bytes in.
    size_t pad = 0;
    for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) {
        ++pad;
    }
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

// The gateway writes int64 fields as strings and leaves out the ones that are 0.
int64_t int64_field(const Json& o, const char* name) {
    auto it = o.find(name);
    if (it == o.end()) {
        return 0;
    }
    if (it->is_string()) {
        return std::strtoll(it->get_ref<const std::string&>().c_str(), nullptr, 10);
    }
    return it->is_number() ? it->get<int64_t>() : 0;
}

KeyValue parse_kv(const Json& o) {
    KeyValue kv;
    kv.key = unb64(o.value("key", ""));
    kv.value = unb64(o.value("value", ""));
    kv.create_revision = int64_field(o, "create_revision");
    kv.mod_revision = int64_field(o, "mod_revision");
    kv.lease = int64_field(o, "lease");
    return kv;
}

size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

// Parses an answer; etcd's own errors come as {"error": ..., "code": N, "message": ...}.
EtcdResult<Json> parse_answer(const std::string& text) {
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return Err{EtcdError{true, "etcd answered something that is not JSON"}};
    }
    if (j.contains("error") || (j.contains("code") && j.contains("message"))) {
        return Err{EtcdError{false, j.value("message", j.value("error", std::string("error")))}};
    }
    return j;
}

}  // namespace

std::string prefix_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

EtcdClient::EtcdClient(std::vector<std::string> endpoints, int timeout_ms)
    : endpoints_(std::move(endpoints)), timeout_ms_(timeout_ms) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_ = curl_easy_init();
}

EtcdClient::~EtcdClient() {
    curl_easy_cleanup(static_cast<CURL*>(curl_));
}

std::vector<std::string> EtcdClient::parse_endpoints(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string one = text.substr(start, comma == std::string::npos ? comma : comma - start);
        while (!one.empty() && (one.front() == ' ' || one.front() == '\t')) {
            one.erase(one.begin());
        }
        while (!one.empty() && (one.back() == ' ' || one.back() == '/' || one.back() == '\t')) {
            one.pop_back();
        }
        if (!one.empty()) {
            out.push_back(std::move(one));
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

EtcdResult<std::string> EtcdClient::call(const std::string& path, const std::string& body) {
    std::lock_guard lock(mutex_);
    CURL* curl = static_cast<CURL*>(curl_);
    if (curl == nullptr || endpoints_.empty()) {
        return Err{EtcdError{true, "no etcd endpoint"}};
    }
    std::string last_error;
    for (size_t tried = 0; tried < endpoints_.size(); ++tried) {
        const std::string url = endpoints_[current_] + path;
        std::string answer;
        curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms_));
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
        CURLcode rc = curl_easy_perform(curl);
        curl_slist_free_all(headers);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status != 0 && status < 500) {
            return answer;
        }
        last_error = url + ": " +
                     (rc != CURLE_OK ? curl_easy_strerror(rc)
                                     : "HTTP " + std::to_string(status) + " " + answer);
        current_ = (current_ + 1) % endpoints_.size();
    }
    return Err{EtcdError{true, last_error}};
}

EtcdResult<int64_t> EtcdClient::put(const std::string& key,
                                    const std::string& value,
                                    int64_t lease) {
    Json req{{"key", b64(key)}, {"value", b64(value)}};
    if (lease != 0) {
        req["lease"] = std::to_string(lease);
    }
    auto text = call("/v3/kv/put", req.dump());
    if (!text) {
        return Err{text.error()};
    }
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    return int64_field(j->value("header", Json::object()), "revision");
}

EtcdResult<std::vector<KeyValue>> EtcdClient::range(const std::string& key,
                                                    const std::string& range_end,
                                                    int64_t* revision) {
    Json req{{"key", b64(key)}};
    if (!range_end.empty()) {
        req["range_end"] = b64(range_end);
    }
    auto text = call("/v3/kv/range", req.dump());
    if (!text) {
        return Err{text.error()};
    }
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    if (revision != nullptr) {
        *revision = int64_field(j->value("header", Json::object()), "revision");
    }
    std::vector<KeyValue> out;
    for (const auto& kv : j->value("kvs", Json::array())) {
        out.push_back(parse_kv(kv));
    }
    return out;
}

EtcdResult<int64_t> EtcdClient::erase(const std::string& key, const std::string& range_end) {
    Json req{{"key", b64(key)}};
    if (!range_end.empty()) {
        req["range_end"] = b64(range_end);
    }
    auto text = call("/v3/kv/deleterange", req.dump());
    if (!text) {
        return Err{text.error()};
    }
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    return int64_field(*j, "deleted");
}

EtcdResult<std::vector<Json>> EtcdClient::nested(std::vector<Json> txns) {
    Json success = Json::array();
    for (auto& t : txns) {
        success.push_back(Json{{"request_txn", std::move(t)}});
    }
    const size_t n = success.size();
    auto text = call("/v3/kv/txn", Json{{"success", std::move(success)}}.dump());
    if (!text) {
        return Err{text.error()};
    }
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    std::vector<Json> out;
    for (auto& r : (*j)["responses"]) {
        out.push_back(r.value("response_txn", Json::object()));
    }
    if (out.size() != n) {
        return Err{EtcdError{true, "etcd answered " + std::to_string(out.size()) + " of " +
                                           std::to_string(n) + " transactions"}};
    }
    return out;
}

EtcdResult<bool> EtcdClient::create(const std::string& key,
                                    const std::string& value,
                                    int64_t lease,
                                    KeyValue* existing) {
    auto r = create_each({key}, value, lease);
    if (!r) {
        return Err{r.error()};
    }
    if (existing != nullptr) {
        *existing = std::move((*r)[0].existing);
    }
    return (*r)[0].created;
}

EtcdResult<std::vector<EtcdClient::CreateOutcome>> EtcdClient::create_each(
        const std::vector<std::string>& keys, const std::string& value, int64_t lease) {
    std::vector<Json> txns;
    for (const auto& key : keys) {
        Json put{{"key", b64(key)}, {"value", b64(value)}};
        if (lease != 0) {
            put["lease"] = std::to_string(lease);
        }
        txns.push_back(
                Json{{"compare", Json::array({Json{{"result", "EQUAL"},
                                                   {"target", "CREATE"},
                                                   {"key", b64(key)},
                                                   {"create_revision", "0"}}})},
                     {"success", Json::array({Json{{"request_put", std::move(put)}}})},
                     {"failure", Json::array({Json{{"request_range", Json{{"key", b64(key)}}}}})}});
    }
    auto answers = nested(std::move(txns));
    if (!answers) {
        return Err{answers.error()};
    }
    std::vector<CreateOutcome> out(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
        const Json& a = (*answers)[i];
        out[i].created = a.value("succeeded", false);
        if (out[i].created) {
            continue;
        }
        for (const auto& r : a.value("responses", Json::array())) {
            for (const auto& kv :
                 r.value("response_range", Json::object()).value("kvs", Json::array())) {
                out[i].existing = parse_kv(kv);
            }
        }
    }
    return out;
}

EtcdResult<int64_t> EtcdClient::replace(
        const std::string& key,
        int64_t mod_revision,
        const std::string& value,
        int64_t lease,
        const std::vector<std::pair<std::string, std::string>>& also) {
    auto put = [lease](const std::string& k, const std::string& v) {
        Json p{{"key", b64(k)}, {"value", b64(v)}};
        if (lease != 0) {
            p["lease"] = std::to_string(lease);
        }
        return Json{{"request_put", std::move(p)}};
    };
    Json puts = Json::array({put(key, value)});
    for (const auto& [k, v] : also) {
        puts.push_back(put(k, v));
    }
    Json compare = mod_revision != 0 ? Json{{"result", "EQUAL"},
                                            {"target", "MOD"},
                                            {"key", b64(key)},
                                            {"mod_revision", std::to_string(mod_revision)}}
                                     : Json{{"result", "EQUAL"},
                                            {"target", "CREATE"},
                                            {"key", b64(key)},
                                            {"create_revision", "0"}};
    Json req{{"compare", Json::array({std::move(compare)})}, {"success", std::move(puts)}};
    auto text = call("/v3/kv/txn", req.dump());
    if (!text) {
        return Err{text.error()};
    }
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    if (!j->value("succeeded", false)) {
        return int64_t{0};
    }
    return int64_field(j->value("header", Json::object()), "revision");
}

EtcdResult<bool> EtcdClient::erase_if(const std::string& key, const std::string& value) {
    auto r = erase_each_if({key}, value);
    if (!r) {
        return Err{r.error()};
    }
    return static_cast<bool>((*r)[0]);
}

EtcdResult<std::vector<bool>> EtcdClient::erase_each_if(const std::vector<std::string>& keys,
                                                        const std::string& value) {
    std::vector<Json> txns;
    for (const auto& key : keys) {
        txns.push_back(
                Json{{"compare", Json::array({Json{{"result", "EQUAL"},
                                                   {"target", "VALUE"},
                                                   {"key", b64(key)},
                                                   {"value", b64(value)}}})},
                     {"success",
                      Json::array({Json{{"request_delete_range", Json{{"key", b64(key)}}}}})}});
    }
    auto answers = nested(std::move(txns));
    if (!answers) {
        return Err{answers.error()};
    }
    std::vector<bool> out;
    for (const auto& a : *answers) {
        out.push_back(a.value("succeeded", false));
    }
    return out;
}

EtcdResult<int64_t> EtcdClient::grant(int64_t ttl_s) {
    auto text = call("/v3/lease/grant", Json{{"TTL", std::to_string(ttl_s)}}.dump());
    if (!text) {
        return Err{text.error()};
    }
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    int64_t id = int64_field(*j, "ID");
    if (id == 0) {
        return Err{EtcdError{false, "etcd granted no lease: " + j->value("error", *text)}};
    }
    return id;
}

EtcdResult<int64_t> EtcdClient::keep_alive(int64_t lease) {
    auto text = call("/v3/lease/keepalive", Json{{"ID", std::to_string(lease)}}.dump());
    if (!text) {
        return Err{text.error()};
    }
    // A streaming call: the gateway answers {"result": {...}} per request message.
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    return int64_field(j->value("result", Json::object()), "TTL");
}

EtcdResult<bool> EtcdClient::revoke(int64_t lease) {
    auto text = call("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}}.dump());
    if (!text) {
        return Err{text.error()};
    }
    auto j = parse_answer(*text);
    if (!j) {
        return Err{j.error()};
    }
    return true;
}

// The watch thread's state, shared with the curl callbacks: the bytes of an unfinished line
// and whether the owner has let go.
struct EtcdClient::Watch::State {
    std::atomic<bool> stop{false};
    std::string pending;
    std::function<void(std::vector<WatchEvent>)> on_events;
    std::string error;
};

EtcdClient::Watch::~Watch() {
    if (state_) {
        state_->stop = true;
    }
    if (thread_.joinable()) {
        thread_.join();
    }
}

std::unique_ptr<EtcdClient::Watch> EtcdClient::watch(
        const std::string& prefix,
        int64_t start_revision,
        std::function<void(std::vector<WatchEvent>)> on_events,
        std::function<void(const std::string&)> on_broken) {
    std::unique_ptr<Watch> w(new Watch);
    auto state = std::make_shared<Watch::State>();
    state->on_events = std::move(on_events);
    w->state_ = state;
    Json create{{"key", b64(prefix)}, {"range_end", b64(prefix_end(prefix))}};
    if (start_revision > 0) {
        create["start_revision"] = std::to_string(start_revision);
    }
    std::string body = Json{{"create_request", create}}.dump();
    std::vector<std::string> endpoints = endpoints_;
    size_t first = current_;
    int timeout_ms = timeout_ms_;
    w->thread_ = std::thread([state, body = std::move(body), endpoints, first, timeout_ms,
                              on_broken = std::move(on_broken)] {
        CURL* curl = curl_easy_init();
        std::string why = "no etcd endpoint";
        bool created = false;
        for (size_t i = 0; i < endpoints.size() && !state->stop && !created; ++i) {
            const std::string url = endpoints[(first + i) % endpoints.size()] + "/v3/watch";
            curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
            curl_easy_reset(curl);
            curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
            curl_easy_setopt(curl, CURLOPT_POST, 1L);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
            curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
            // A watch that stops answering (etcd gone without a FIN) is noticed: etcd sends
            // progress notifications only when asked, so bound the silence instead.
            curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 3600L);
            struct Ctx {
                Watch::State* state;
                bool* created;
            } ctx{state.get(), &created};
            // The gateway streams one JSON object per watch response, each ending a line.
            auto on_bytes = +[](char* data, size_t size, size_t n, void* arg) -> size_t {
                auto* c = static_cast<Ctx*>(arg);
                if (c->state->stop) {
                    return 0;  // ends the transfer
                }
                c->state->pending.append(data, size * n);
                size_t nl;
                while ((nl = c->state->pending.find('\n')) != std::string::npos) {
                    std::string line = c->state->pending.substr(0, nl);
                    c->state->pending.erase(0, nl + 1);
                    Json j = Json::parse(line, nullptr, false);
                    if (j.is_discarded()) {
                        continue;
                    }
                    const Json result = j.value("result", Json::object());
                    if (result.value("created", false)) {
                        *c->created = true;
                    }
                    if (result.value("canceled", false)) {
                        c->state->error = "watch canceled: " + result.value("cancel_reason", "");
                        return 0;
                    }
                    std::vector<WatchEvent> events;
                    for (const auto& e : result.value("events", Json::array())) {
                        WatchEvent ev;
                        ev.type = e.value("type", "PUT") == "DELETE" ? WatchEvent::Type::Delete
                                                                     : WatchEvent::Type::Put;
                        ev.kv = parse_kv(e.value("kv", Json::object()));
                        events.push_back(std::move(ev));
                    }
                    if (!events.empty()) {
                        c->state->on_events(std::move(events));
                    }
                }
                return size * n;
            };
            // Lets the owner's stop end a quiet stream within a second.
            auto on_progress =
                    +[](void* arg, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
                return static_cast<Ctx*>(arg)->state->stop ? 1 : 0;
            };
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_bytes);
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ctx);
            curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &ctx);
            curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
            CURLcode rc = curl_easy_perform(curl);
            curl_slist_free_all(headers);
            why = !state->error.empty()
                          ? state->error
                          : url + ": " +
                                    (rc == CURLE_OK ? std::string("stream ended")
                                                    : std::string(curl_easy_strerror(rc)));
        }
        curl_easy_cleanup(curl);
        if (!state->stop) {
            on_broken(why);
        }
    });
    return w;
}

}  // namespace mqttd::cluster
