// config::Config: the effective value of every configuration key (see keys.h), where it came
// from, and who to tell when it changes.
//
// Precedence, lowest first: built-in default < config file < value saved through the REST API
// (the store's `config` column family, key = config key) < --set / --data-dir. Startup:
//
//   auto cl = parse_command_line(argc, argv);          // error: print, exit 2
//   auto cfg = Config::load(*cl);                       // defaults + file + --set; error: exit 1
//   ... open the store in cfg->db_dir() ...
//   for (auto& w : cfg->apply_saved(store)) log warn w; // saved values, except --set keys
//   init_logging(*cfg);                                 // logging.h
//
// At run time the REST API calls set_runtime(key, value, &store): it validates, saves, applies
// and notifies listeners, or changes nothing and returns the error.
//
// Ownership: owned by main for the life of the process; handles and listeners refer into it,
// so it neither moves nor copies.
//
// Thread-safety: every const member may be called from any thread at any time. Scalars are
// atomics, so get_bool/get_int and the handles never block; get_string/get_text hold a mutex
// only to copy the string. Writers (apply_*, set_runtime) are serialized among themselves.
// Listeners run on the writer's thread after the value is visible, outside every lock of
// Config; a listener may call getters but REQUIRES: it does not call a writer.
//
// Getters take a key that must exist with the matching type (REQUIRES; asserted): the key set
// is fixed at compile time, so a wrong name is our bug, not input.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "config/command_line.h"
#include "config/keys.h"
#include "storage/records.h"
#include "storage/store.h"

namespace mqttd::config {

struct Ok {};
// Ok, or one line saying what is wrong.
using Status = Result<Ok, std::string>;

enum class Source { Default, File, Saved, CommandLine, Runtime };
std::string_view source_name(Source s);  // "default", "file", "saved", "command line", "runtime"

// Why set_runtime refused; `message` is one line naming the key, e.g.
// `mqtt.max_inflight: not modifiable at run time`.
struct SetError {
    enum class Kind { UnknownKey, NotHot, BadValue, StoreFailed };
    Kind kind;
    std::string message;
};

// A lock-free view of one scalar key, for hot paths. Lives as long as the Config.
class IntHandle {
public:
    int64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    friend class Config;
    std::atomic<int64_t> v_{0};
};

class BoolHandle {
public:
    bool get() const noexcept { return v_.load(std::memory_order_relaxed) != 0; }

private:
    friend class Config;
    std::atomic<int64_t> v_{0};
};

// One row of the REST `configs` listing (the REST layer shows only hot ones).
struct ConfigItem {
    std::string key;
    std::string value;     // canonical text
    std::string datatpye;  // the spec's spelling
    std::string app;
    bool hot = false;
    Source source = Source::Default;
    std::string description;
};

class Config {
public:
    using Listener = std::function<void(const std::string& value_text)>;

    // Every key at its default.
    Config();
    ~Config();
    Config(const Config&) = delete;
    Config& operator=(const Config&) = delete;
    Config(Config&&) = delete;
    Config& operator=(Config&&) = delete;

    // Defaults, then cl.config_file, then cl.sets; then the cross-key checks.
    static Result<std::unique_ptr<Config>, std::string> load(const CommandLine& cl);

    // --- the steps of load(), public for tests and tools ---
    // Applies a file's entries (Source::File). Errors: `<path>:<line>: <key>: <what>`.
    Status apply_file(const std::string& path);
    Status apply_text(std::string_view text, std::string_view name);
    // Applies --set pairs (Source::CommandLine) and pins them against saved values.
    // Errors: `--set <key>: <what>`.
    Status apply_sets(const std::vector<std::pair<std::string, std::string>>& sets);
    // Checks between keys, e.g. a TLS listener needs listener.ssl.certfile and keyfile.
    Status check() const;

    // Overlays saved values (Source::Saved), except keys given on the command line. A saved
    // value for an unknown or non-hot key, or one that no longer validates, is skipped; each
    // skip is returned as one line for the caller to log at warn level.
    [[nodiscard]] std::vector<std::string> apply_saved(
            const std::vector<storage::ConfigRecord>& saved);
    // Reads the saved value of every hot key from `store` and applies them as above.
    [[nodiscard]] std::vector<std::string> apply_saved(const storage::Store& store);

    // The REST API's write: validates (known, hot, valid value), saves the canonical text with
    // `persist` (may be nullptr: not saved), applies (Source::Runtime) and notifies listeners.
    // On error nothing is changed or saved.
    Result<Ok, SetError> set_runtime(std::string_view key,
                                     std::string_view value,
                                     storage::Store* persist);

    // --- readers, any thread ---
    bool has(std::string_view key) const { return index_.contains(key); }
    Source effective_source(std::string_view key) const;
    bool get_bool(std::string_view key) const;    // REQUIRES: a Bool key
    int64_t get_int(std::string_view key) const;  // REQUIRES: Int, Duration, Size or Enum (index)
    std::string get_string(std::string_view key) const;  // REQUIRES: String, Address or Enum
    std::string get_text(std::string_view key) const;    // any key: the canonical text
    std::vector<ConfigItem> items() const;               // every key, registry order

    const IntHandle& int_handle(std::string_view key) const;    // REQUIRES: as get_int
    const BoolHandle& bool_handle(std::string_view key) const;  // REQUIRES: a Bool key

    // Convenience for main.
    std::string data_dir() const { return get_string("node.data_dir"); }
    std::string db_dir() const { return data_dir() + "/db"; }
    // storage.backup_dir, or <data_dir>/backups when it is empty.
    std::string backup_dir() const {
        std::string d = get_string("storage.backup_dir");
        return d.empty() ? data_dir() + "/backups" : d;
    }
    storage::Options store_options() const;

    // Calls `fn` with the new canonical text after every change of `key` (not on subscribe).
    // Returns an id for unsubscribe; 0 if the key is unknown. Thread-safe.
    uint64_t subscribe(std::string_view key, Listener fn);
    void unsubscribe(uint64_t id);

private:
    struct Entry {
        const KeyDef* def = nullptr;
        IntHandle number;                 // Bool (0/1), Int, Duration, Size, Enum (choice index)
        BoolHandle flag;                  // Bool only; mirrors `number`
        std::string text;                 // guarded by mu_
        Source source = Source::Default;  // guarded by mu_
        bool pinned = false;              // given with --set; guarded by mu_
    };
    struct Subscription {
        uint64_t id;
        size_t index;
        std::shared_ptr<const Listener> fn;
    };

    const Entry& entry(std::string_view key) const;
    // REQUIRES: write_mu_ held. Returns true when the text changed.
    bool assign(size_t index, const Value& v, Source source);
    // REQUIRES: write_mu_ held, no other lock of ours.
    void notify(size_t index) const;
    Status apply_entry(size_t index,
                       std::string_view text,
                       Source source,
                       const std::string& where);

    std::vector<Entry> entries_;  // fixed size, never reallocated: handles point into it
    std::unordered_map<std::string_view, size_t> index_;  // immutable after construction

    std::mutex write_mu_;  // serializes writers, so listeners see changes in order
    // Guards Entry::text, source, pinned and subs_; held only to copy a string. A plain mutex,
    // not a shared_mutex: glibc's rwlock prefers readers, and a steady stream of readers then
    // starves the REST writer (seen in ConcurrentGettersAndSetter).
    mutable std::mutex mu_;
    std::vector<Subscription> subs_;  // guarded by mu_
    uint64_t next_sub_id_ = 1;        // guarded by mu_
};

}  // namespace mqttd::config
