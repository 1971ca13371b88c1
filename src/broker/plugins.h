// broker::PluginRegistry: the plugins the REST API lists, starts, stops and configures
// (rest-api-v2.md, "Plugins"). Only plugins that really work are registered: today
// emq_retainer (register_retainer below); the auth plugins register themselves the same way
// with their own hooks.
//
// Persistence: a plugin's state and config live in the store's `config` family under
// "plugin.<name>.active" ("true"/"false") and "plugin.<name>.<key>" (the config key as the
// spec names it, e.g. "plugin.emq_retainer.retainer.max_message_num"). load() reads them once
// at start and applies them through the hooks; start/stop/set_config write before they apply,
// so a refused write changes nothing.
//
// Ownership: built by main after the Broker, before the REST server; lives as long as both.
// Thread-safety: add() and load() before other threads use it; everything else from any
// thread (one mutex serializes changes, hooks run under it and must not call back in).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/settings.h"
#include "common/result.h"
#include "storage/store.h"

namespace mqttd::broker {

struct PluginConfigItem {
    std::string key;
    std::string value;  // canonical text
    std::string desc;
    bool required = true;
};

struct PluginInfo {
    std::string name;
    std::string version;
    std::string description;
    bool active = false;
    std::vector<PluginConfigItem> config;
};

// What a plugin does when it is started, stopped or reconfigured. Every hook is optional.
struct PluginHooks {
    std::function<void()> on_start;
    std::function<void()> on_stop;
    // Checks one value; returns the canonical text, or an error (one line) when it is invalid.
    std::function<Result<std::string, std::string>(const std::string& key,
                                                   const std::string& value)>
            validate;
    // Applies one validated value (canonical text), at load and after set_config.
    std::function<void(const std::string& key, const std::string& value)> on_config;
};

struct PluginError {
    enum class Kind { NotFound, AlreadyStarted, AlreadyStopped, UnknownKey, BadValue, StoreFailed };
    Kind kind;
    std::string message;
};

class PluginRegistry {
public:
    explicit PluginRegistry(storage::Store& store) : store_(store) {}
    PluginRegistry(const PluginRegistry&) = delete;
    PluginRegistry& operator=(const PluginRegistry&) = delete;

    // `info.active` is the state on first start; `info.config` lists every key with its
    // default. REQUIRES: before load(), names unique.
    void add(PluginInfo info, PluginHooks hooks);
    // Reads stored state and config and applies them (start hooks of active plugins, config
    // hooks of every key). Returns one warning line per stored value it skipped.
    [[nodiscard]] std::vector<std::string> load();

    std::vector<PluginInfo> list() const;
    std::optional<PluginInfo> find(std::string_view name) const;

    Result<bool, PluginError> start(std::string_view name);
    Result<bool, PluginError> stop(std::string_view name);
    // Validates every pair first; then stores them in one batch and applies them. On error
    // nothing is changed.
    Result<bool, PluginError> set_config(
            std::string_view name, const std::vector<std::pair<std::string, std::string>>& kv);

private:
    struct Entry {
        PluginInfo info;
        PluginHooks hooks;
    };
    Entry* entry(std::string_view name);
    Result<bool, PluginError> set_active(std::string_view name, bool active);

    storage::Store& store_;
    mutable std::mutex mutex_;
    std::vector<Entry> plugins_;
};

// The store key of a plugin's state or config value.
std::string plugin_store_key(std::string_view plugin, std::string_view key);

// emq_retainer: start/stop switch Settings::retainer_enabled; retainer.max_message_num,
// retainer.max_payload_size and retainer.expiry_interval set the other retainer_* settings.
void register_retainer(PluginRegistry& registry, Settings& settings);

}  // namespace mqttd::broker
