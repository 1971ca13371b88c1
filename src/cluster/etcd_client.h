// A client of etcd 3.4's v3 API through its JSON gateway (POST /v3/...), over libcurl: the
// key-value calls the cluster needs (put, range, delete, a create-if-absent transaction), leases
// (grant, one keep-alive, revoke) and a streaming watch of a prefix on its own thread.
//
// Why the JSON gateway and libcurl: Debian 12 packages no gRPC C++ library that etcd's protos
// build against without a code generator step, while libcurl (already linked by `mqttd ctl`)
// keeps one HTTP/1.1 connection alive per handle and streams a watch's chunked answer to a
// callback. Keys and values are base64 in the gateway's JSON; int64 fields are strings.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace mqttd::cluster {

struct KeyValue {
    std::string key;
    std::string value;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t lease = 0;
};

struct WatchEvent {
    enum class Type { Put, Delete };
    Type type = Type::Put;
    KeyValue kv;  // for a Delete: the key and mod_revision only
};

// What a call that failed says: the endpoint could not be reached (or answered garbage), or
// etcd answered with an error of its own.
struct EtcdError {
    bool unreachable = false;
    std::string message;
};

template <typename T>
using EtcdResult = Result<T, EtcdError>;

// The end of the range that holds every key starting with `prefix` (etcd's prefix rule).
std::string prefix_end(const std::string& prefix);

class EtcdClient {
public:
    // `endpoints`: "http://host:port" URLs; a call that cannot reach one tries the next.
    explicit EtcdClient(std::vector<std::string> endpoints, int timeout_ms = 2000);
    ~EtcdClient();
    EtcdClient(const EtcdClient&) = delete;
    EtcdClient& operator=(const EtcdClient&) = delete;

    // Splits "http://a:1,http://b:2" into URLs; empty when the text holds none.
    static std::vector<std::string> parse_endpoints(const std::string& text);

    // The revision of the store after the write.
    EtcdResult<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0);
    // Every key in [key, range_end); a single key when range_end is empty. `revision` (when not
    // null) gets the store's revision the answer is consistent at.
    EtcdResult<std::vector<KeyValue>> range(const std::string& key,
                                            const std::string& range_end = {},
                                            int64_t* revision = nullptr);
    // The number of keys deleted.
    EtcdResult<int64_t> erase(const std::string& key, const std::string& range_end = {});
    // Puts `key` only when it does not exist; true when it was created, false when it existed
    // (then `existing` gets what is there).
    EtcdResult<bool> create(const std::string& key,
                            const std::string& value,
                            int64_t lease,
                            KeyValue* existing = nullptr);
    // create() for each of `keys` (distinct, at most kMaxBatch) in one round trip: one
    // transaction of nested ones (etcd >= 3.3), each deciding for its key alone.
    struct CreateOutcome {
        bool created = false;
        KeyValue existing;  // when not created; its key empty if it went meanwhile
    };
    EtcdResult<std::vector<CreateOutcome>> create_each(const std::vector<std::string>& keys,
                                                       const std::string& value,
                                                       int64_t lease);
    // Well under etcd's --max-txn-ops (128 by default).
    static constexpr size_t kMaxBatch = 64;
    // Puts `key` only when its mod_revision is still `mod_revision` (a compare-and-swap; 0:
    // only when the key does not exist), and `also` (key, value) in the same transaction under
    // the same lease; the revision of the write, 0 when the compare failed.
    EtcdResult<int64_t> replace(const std::string& key,
                                int64_t mod_revision,
                                const std::string& value,
                                int64_t lease,
                                const std::vector<std::pair<std::string, std::string>>& also = {});

    // Deletes `key` only when its value is still `value`; true when it was deleted.
    EtcdResult<bool> erase_if(const std::string& key, const std::string& value);
    // erase_if() for each of `keys` (distinct, at most kMaxBatch) in one round trip.
    EtcdResult<std::vector<bool>> erase_each_if(const std::vector<std::string>& keys,
                                                const std::string& value);

    // A new lease of `ttl_s` seconds; its id.
    EtcdResult<int64_t> grant(int64_t ttl_s);
    // One keep-alive; the lease's remaining TTL, 0 when the lease is gone.
    EtcdResult<int64_t> keep_alive(int64_t lease);
    EtcdResult<bool> revoke(int64_t lease);

    // Watches every key under `prefix` from `start_revision` (0: from now) on a thread of its
    // own until the returned handle is destroyed. `on_events` gets each batch of events in
    // order; `on_broken` is called when the stream ends or cannot be opened (then the watch has
    // stopped: the owner lists again and watches from the revision it has).
    class Watch {
    public:
        ~Watch();
        Watch(const Watch&) = delete;
        Watch& operator=(const Watch&) = delete;

    private:
        friend class EtcdClient;
        Watch() = default;
        struct State;
        std::shared_ptr<State> state_;
        std::thread thread_;
    };
    std::unique_ptr<Watch> watch(const std::string& prefix,
                                 int64_t start_revision,
                                 std::function<void(std::vector<WatchEvent>)> on_events,
                                 std::function<void(const std::string&)> on_broken);

private:
    // Runs `txns` (TxnRequest objects) as the nested transactions of one; their responses
    // (ResponseTxn objects), in order.
    EtcdResult<std::vector<nlohmann::json>> nested(std::vector<nlohmann::json> txns);
    // POSTs `body` to `path` on the current endpoint, then the others; the answer's JSON text.
    EtcdResult<std::string> call(const std::string& path, const std::string& body);

    std::vector<std::string> endpoints_;
    int timeout_ms_;
    std::mutex mutex_;  // one call at a time on the handle below
    void* curl_ = nullptr;
    size_t current_ = 0;
};

}  // namespace mqttd::cluster
