#include "broker/plugins.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <system_error>

namespace mqttd::broker {
namespace {

constexpr std::string_view kActive = "active";

// A non-negative integer with an optional unit suffix: `units` maps suffixes (lowercase) to
// multipliers. Returns nullopt for anything else, and on overflow.
std::optional<uint64_t> parse_scaled(
        std::string_view text, std::initializer_list<std::pair<std::string_view, uint64_t>> units) {
    uint64_t n = 0;
    const char* first = text.data();
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || end == first) {
        return std::nullopt;
    }
    std::string suffix;
    for (const char* p = end; p != last; ++p) {
        suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    }
    if (suffix.empty()) {
        return n;
    }
    for (const auto& [name, mult] : units) {
        if (suffix == name) {
            if (n > std::numeric_limits<uint64_t>::max() / mult) {
                return std::nullopt;
            }
            return n * mult;
        }
    }
    return std::nullopt;
}

}  // namespace

std::string plugin_store_key(std::string_view plugin, std::string_view key) {
    std::string out = "plugin.";
    out += plugin;
    out += '.';
    out += key;
    return out;
}

void PluginRegistry::add(PluginInfo info, PluginHooks hooks) {
    std::lock_guard lock(mutex_);
    plugins_.push_back(Entry{std::move(info), std::move(hooks)});
    std::sort(plugins_.begin(), plugins_.end(),
              [](const Entry& a, const Entry& b) { return a.info.name < b.info.name; });
}

std::vector<std::string> PluginRegistry::load() {
    std::vector<std::string> warnings;
    std::lock_guard lock(mutex_);
    for (auto& p : plugins_) {
        if (auto v = store_.get_config(plugin_store_key(p.info.name, kActive))) {
            if (*v == "true" || *v == "false") {
                p.info.active = *v == "true";
            } else {
                warnings.push_back(plugin_store_key(p.info.name, kActive) + ": stored value \"" +
                                   *v + "\" is not true/false; skipped");
            }
        }
        for (auto& item : p.info.config) {
            auto v = store_.get_config(plugin_store_key(p.info.name, item.key));
            if (!v) {
                continue;
            }
            if (p.hooks.validate) {
                auto checked = p.hooks.validate(item.key, *v);
                if (!checked) {
                    warnings.push_back(plugin_store_key(p.info.name, item.key) + ": " +
                                       checked.error() + "; skipped");
                    continue;
                }
                item.value = *checked;
            } else {
                item.value = *v;
            }
        }
        if (p.hooks.on_config) {
            for (const auto& item : p.info.config) {
                p.hooks.on_config(item.key, item.value);
            }
        }
        if (p.info.active && p.hooks.on_start) {
            p.hooks.on_start();
        } else if (!p.info.active && p.hooks.on_stop) {
            p.hooks.on_stop();
        }
    }
    return warnings;
}

std::vector<PluginInfo> PluginRegistry::list() const {
    std::lock_guard lock(mutex_);
    std::vector<PluginInfo> out;
    out.reserve(plugins_.size());
    for (const auto& p : plugins_) {
        out.push_back(p.info);
    }
    return out;
}

std::optional<PluginInfo> PluginRegistry::find(std::string_view name) const {
    std::lock_guard lock(mutex_);
    for (const auto& p : plugins_) {
        if (p.info.name == name) {
            return p.info;
        }
    }
    return std::nullopt;
}

PluginRegistry::Entry* PluginRegistry::entry(std::string_view name) {
    for (auto& p : plugins_) {
        if (p.info.name == name) {
            return &p;
        }
    }
    return nullptr;
}

Result<bool, PluginError> PluginRegistry::start(std::string_view name) {
    return set_active(name, true);
}

Result<bool, PluginError> PluginRegistry::stop(std::string_view name) {
    return set_active(name, false);
}

Result<bool, PluginError> PluginRegistry::set_active(std::string_view name, bool active) {
    std::lock_guard lock(mutex_);
    Entry* p = entry(name);
    if (p == nullptr) {
        return Err(
                PluginError{PluginError::Kind::NotFound, "no such plugin: " + std::string(name)});
    }
    if (p->info.active == active) {
        return Err(PluginError{
                active ? PluginError::Kind::AlreadyStarted : PluginError::Kind::AlreadyStopped,
                p->info.name + (active ? " is already started" : " is already stopped")});
    }
    storage::WriteBatch batch;
    batch.put_config(plugin_store_key(p->info.name, kActive), active ? "true" : "false");
    if (auto st = store_.write(std::move(batch)); !st.is_ok()) {
        return Err(PluginError{PluginError::Kind::StoreFailed, st.to_string()});
    }
    p->info.active = active;
    if (active && p->hooks.on_start) {
        p->hooks.on_start();
    } else if (!active && p->hooks.on_stop) {
        p->hooks.on_stop();
    }
    return true;
}

Result<bool, PluginError> PluginRegistry::set_config(
        std::string_view name, const std::vector<std::pair<std::string, std::string>>& kv) {
    std::lock_guard lock(mutex_);
    Entry* p = entry(name);
    if (p == nullptr) {
        return Err(
                PluginError{PluginError::Kind::NotFound, "no such plugin: " + std::string(name)});
    }
    std::vector<std::pair<PluginConfigItem*, std::string>> changes;
    for (const auto& [key, value] : kv) {
        const std::string& wanted = key;  // (clang 14 cannot capture a structured binding)
        auto it = std::find_if(p->info.config.begin(), p->info.config.end(),
                               [&](const PluginConfigItem& i) { return i.key == wanted; });
        if (it == p->info.config.end()) {
            return Err(PluginError{PluginError::Kind::UnknownKey,
                                   p->info.name + " has no config key " + key});
        }
        std::string canonical = value;
        if (p->hooks.validate) {
            auto checked = p->hooks.validate(key, value);
            if (!checked) {
                return Err(PluginError{PluginError::Kind::BadValue, key + ": " + checked.error()});
            }
            canonical = *checked;
        }
        changes.emplace_back(&*it, std::move(canonical));
    }
    storage::WriteBatch batch;
    for (const auto& [item, value] : changes) {
        batch.put_config(plugin_store_key(p->info.name, item->key), value);
    }
    if (!batch.empty()) {
        if (auto st = store_.write(std::move(batch)); !st.is_ok()) {
            return Err(PluginError{PluginError::Kind::StoreFailed, st.to_string()});
        }
    }
    for (auto& [item, value] : changes) {
        item->value = value;
        if (p->hooks.on_config) {
            p->hooks.on_config(item->key, item->value);
        }
    }
    return true;
}

void register_retainer(PluginRegistry& registry, Settings& settings) {
    PluginInfo info;
    info.name = "emq_retainer";
    info.version = settings.version;
    info.description = "EMQ Retainer";
    info.active = true;
    info.config = {
            {"retainer.max_message_num", std::to_string(settings.retainer_max_message_num.load()),
             "Most retained messages kept; 0 = no limit", true},
            {"retainer.max_payload_size", std::to_string(settings.retainer_max_payload_size.load()),
             "Largest retained payload in bytes (KB/MB/GB suffixes accepted); 0 = no limit", true},
            {"retainer.expiry_interval", std::to_string(settings.retainer_expiry_interval_s.load()),
             "Seconds a retained message is kept (s/m/h/d suffixes accepted); 0 = forever", true},
    };
    PluginHooks hooks;
    hooks.on_start = [&settings] {
        settings.retainer_enabled = true;
    };
    hooks.on_stop = [&settings] {
        settings.retainer_enabled = false;
    };
    hooks.validate = [](const std::string& key,
                        const std::string& value) -> Result<std::string, std::string> {
        std::optional<uint64_t> n;
        if (key == "retainer.max_payload_size") {
            n = parse_scaled(
                    value,
                    {{"b", 1}, {"kb", 1024}, {"mb", 1024 * 1024}, {"gb", 1024ull * 1024 * 1024}});
        } else if (key == "retainer.expiry_interval") {
            n = parse_scaled(value, {{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}});
            if (n && *n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                n.reset();
            }
        } else {
            n = parse_scaled(value, {});
        }
        if (!n) {
            return Err(std::string("\"" + value + "\" is not a non-negative integer"));
        }
        return std::to_string(*n);
    };
    hooks.on_config = [&settings](const std::string& key, const std::string& value) {
        uint64_t n = std::stoull(value);  // canonical: validated digits
        if (key == "retainer.max_message_num") {
            settings.retainer_max_message_num = n;
        } else if (key == "retainer.max_payload_size") {
            settings.retainer_max_payload_size = n;
        } else if (key == "retainer.expiry_interval") {
            settings.retainer_expiry_interval_s = static_cast<int64_t>(n);
        }
    };
    registry.add(std::move(info), std::move(hooks));
}

}  // namespace mqttd::broker
