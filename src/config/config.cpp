#include "config/config.h"

#include <cassert>

#include "config/config_file.h"
#include "storage/write_batch.h"

namespace mqttd::config {
namespace {

[[maybe_unused]] bool is_numeric(ValueType t) {  // used by assert() only
    return t == ValueType::Bool || t == ValueType::Int || t == ValueType::Duration ||
           t == ValueType::Size || t == ValueType::Enum;
}

}  // namespace

std::string_view source_name(Source s) {
    switch (s) {
        case Source::Default:
            return "default";
        case Source::File:
            return "file";
        case Source::Saved:
            return "saved";
        case Source::CommandLine:
            return "command line";
        case Source::Runtime:
            return "runtime";
    }
    return "default";
}

Config::Config() : entries_(all_keys().size()) {
    const auto keys = all_keys();
    for (size_t i = 0; i < keys.size(); ++i) {
        const KeyDef& def = keys[i];
        Entry& e = entries_[i];
        e.def = &def;
        auto v = parse_value(def, def.default_text);
        // The table is ours: a default that does not parse is a bug caught by every test run.
        assert(v.ok());
        if (v.ok()) {
            e.text = v->text;
            e.number.v_.store(v->number, std::memory_order_relaxed);
            e.flag.v_.store(v->number, std::memory_order_relaxed);
        }
        index_.emplace(def.name, i);
    }
}

Config::~Config() = default;

Result<std::unique_ptr<Config>, std::string> Config::load(const CommandLine& cl) {
    auto cfg = std::make_unique<Config>();
    if (auto r = cfg->apply_file(cl.config_file); !r) {
        return Err{r.error()};
    }
    if (auto r = cfg->apply_sets(cl.sets); !r) {
        return Err{r.error()};
    }
    if (auto r = cfg->check(); !r) {
        return Err{r.error()};
    }
    return cfg;
}

Status Config::apply_file(const std::string& path) {
    auto text = read_config_file(path);
    if (!text) {
        return Err{text.error()};
    }
    return apply_text(*text, path);
}

Status Config::apply_text(std::string_view text, std::string_view name) {
    auto parsed = parse_config_text(text, name);
    if (!parsed) {
        return Err{parsed.error()};
    }
    // Validate everything first, so a bad file changes nothing.
    std::vector<std::pair<size_t, Value>> values;
    values.reserve(parsed->size());
    for (const FileEntry& fe : *parsed) {
        const std::string where = std::string(name) + ":" + std::to_string(fe.line) + ": ";
        auto it = index_.find(fe.key);
        if (it == index_.end()) {
            return Err{where + fe.key + ": unknown key"};
        }
        auto v = parse_value(*entries_[it->second].def, fe.value);
        if (!v) {
            return Err{where + fe.key + ": " + v.error()};
        }
        values.emplace_back(it->second, std::move(v).value());
    }
    std::lock_guard write(write_mu_);
    for (const auto& [index, v] : values) {
        if (assign(index, v, Source::File)) {
            notify(index);
        }
    }
    return Ok{};
}

Status Config::apply_sets(const std::vector<std::pair<std::string, std::string>>& sets) {
    std::vector<std::pair<size_t, Value>> values;
    values.reserve(sets.size());
    for (const auto& [key, text] : sets) {
        auto it = index_.find(key);
        if (it == index_.end()) {
            return Err{"--set " + key + ": unknown key"};
        }
        auto v = parse_value(*entries_[it->second].def, text);
        if (!v) {
            return Err{"--set " + key + ": " + v.error()};
        }
        values.emplace_back(it->second, std::move(v).value());
    }
    std::lock_guard write(write_mu_);
    for (const auto& [index, v] : values) {
        const bool changed = assign(index, v, Source::CommandLine);
        {
            std::lock_guard lock(mu_);
            entries_[index].pinned = true;
        }
        if (changed) {
            notify(index);
        }
    }
    return Ok{};
}

Status Config::check() const {
    for (std::string_view l : {"tcp", "ssl", "ws", "wss"}) {
        const std::string key = "listener." + std::string(l) + ".external.rate_limit";
        if (auto r = parse_rate_limit(get_string(key)); !r) {
            return Err{key + ": " + r.error()};
        }
    }
    for (std::string_view l : {"ssl", "wss"}) {
        const std::string base = "listener." + std::string(l) + ".external";
        if (get_string(base + ".peer_cert_as_username") != "off" &&
            get_string(base + ".verify") != "verify_peer") {
            return Err{base +
                       ".peer_cert_as_username = " + get_string(base + ".peer_cert_as_username") +
                       ": needs " + base + ".verify = verify_peer"};
        }
    }
    return Ok{};
}

std::vector<std::string> Config::apply_saved(const std::vector<storage::ConfigRecord>& saved) {
    std::vector<std::string> warnings;
    std::lock_guard write(write_mu_);
    for (const storage::ConfigRecord& rec : saved) {
        auto it = index_.find(rec.key);
        if (it == index_.end()) {
            warnings.push_back("saved config " + rec.key + ": unknown key, ignored");
            continue;
        }
        const size_t index = it->second;
        const KeyDef& def = *entries_[index].def;
        if (!def.hot) {
            warnings.push_back("saved config " + rec.key + ": not modifiable at run time, ignored");
            continue;
        }
        {
            std::lock_guard lock(mu_);
            if (entries_[index].pinned) {
                continue;  // --set wins over saved values
            }
        }
        auto v = parse_value(def, rec.value);
        if (!v) {
            warnings.push_back("saved config " + rec.key + ": " + v.error() + ", ignored");
            continue;
        }
        if (assign(index, *v, Source::Saved)) {
            notify(index);
        }
    }
    return warnings;
}

std::vector<std::string> Config::apply_saved(const storage::Store& store) {
    std::vector<storage::ConfigRecord> saved;
    for (const KeyDef& def : all_keys()) {
        if (!def.hot) {
            continue;
        }
        if (auto value = store.get_config(def.name)) {
            saved.push_back(storage::ConfigRecord{std::string(def.name), std::move(*value)});
        }
    }
    return apply_saved(saved);
}

Result<Ok, SetError> Config::set_runtime(std::string_view key,
                                         std::string_view value,
                                         storage::Store* persist) {
    auto it = index_.find(key);
    if (it == index_.end()) {
        return Err{SetError{SetError::Kind::UnknownKey, std::string(key) + ": unknown key"}};
    }
    const size_t index = it->second;
    const KeyDef& def = *entries_[index].def;
    if (!def.hot) {
        return Err{SetError{SetError::Kind::NotHot,
                            std::string(key) + ": not modifiable at run time"}};
    }
    auto v = parse_value(def, value);
    if (!v) {
        return Err{SetError{SetError::Kind::BadValue, std::string(key) + ": " + v.error()}};
    }
    std::lock_guard write(write_mu_);
    // Saved before applied: if the store refuses, nothing has changed.
    if (persist != nullptr) {
        storage::WriteBatch batch;
        batch.put_config(std::string(key), v->text);
        const storage::Status st = persist->write(std::move(batch));
        if (!st.is_ok()) {
            return Err{SetError{SetError::Kind::StoreFailed,
                                std::string(key) + ": cannot save: " + st.message()}};
        }
    }
    if (assign(index, *v, Source::Runtime)) {
        notify(index);
    }
    return Ok{};
}

bool Config::assign(size_t index, const Value& v, Source source) {
    Entry& e = entries_[index];
    std::lock_guard lock(mu_);
    e.source = source;
    if (e.text == v.text) {
        return false;
    }
    e.text = v.text;
    e.number.v_.store(v.number, std::memory_order_relaxed);
    e.flag.v_.store(v.number, std::memory_order_relaxed);
    return true;
}

void Config::notify(size_t index) const {
    std::string text;
    std::vector<std::shared_ptr<const Listener>> fns;
    {
        std::lock_guard lock(mu_);
        text = entries_[index].text;
        for (const Subscription& s : subs_) {
            if (s.index == index) {
                fns.push_back(s.fn);
            }
        }
    }
    for (const auto& fn : fns) {
        (*fn)(text);
    }
}

const Config::Entry& Config::entry(std::string_view key) const {
    auto it = index_.find(key);
    assert(it != index_.end() && "unknown config key");
    if (it == index_.end()) {
        // Release builds: a wrong name reads the first key rather than crash; tests catch it.
        return entries_.front();
    }
    return entries_[it->second];
}

Source Config::effective_source(std::string_view key) const {
    const Entry& e = entry(key);
    std::lock_guard lock(mu_);
    return e.source;
}

bool Config::get_bool(std::string_view key) const {
    const Entry& e = entry(key);
    assert(e.def->type == ValueType::Bool);
    return e.flag.get();
}

int64_t Config::get_int(std::string_view key) const {
    const Entry& e = entry(key);
    assert(is_numeric(e.def->type));
    return e.number.get();
}

std::string Config::get_string(std::string_view key) const {
    const Entry& e = entry(key);
    assert(e.def->type == ValueType::String || e.def->type == ValueType::Address ||
           e.def->type == ValueType::Enum);
    std::lock_guard lock(mu_);
    return e.text;
}

std::string Config::get_text(std::string_view key) const {
    const Entry& e = entry(key);
    std::lock_guard lock(mu_);
    return e.text;
}

std::vector<ConfigItem> Config::items() const {
    std::vector<ConfigItem> out;
    out.reserve(entries_.size());
    std::lock_guard lock(mu_);
    for (const Entry& e : entries_) {
        out.push_back(ConfigItem{std::string(e.def->name), e.text, std::string(datatpye(*e.def)),
                                 std::string(e.def->app), e.def->hot, e.source,
                                 std::string(e.def->description)});
    }
    return out;
}

const IntHandle& Config::int_handle(std::string_view key) const {
    const Entry& e = entry(key);
    assert(is_numeric(e.def->type));
    return e.number;
}

const BoolHandle& Config::bool_handle(std::string_view key) const {
    const Entry& e = entry(key);
    assert(e.def->type == ValueType::Bool);
    return e.flag;
}

storage::Options Config::store_options() const {
    storage::Options o;
    o.dir = db_dir();
    o.sync = get_bool("storage.sync");
    o.wal_recovery = get_string("storage.wal_recovery") == "point_in_time"
                             ? storage::Options::WalRecovery::PointInTime
                             : storage::Options::WalRecovery::Strict;
    o.verify_on_open = get_bool("storage.verify_on_open");
    return o;
}

uint64_t Config::subscribe(std::string_view key, Listener fn) {
    auto it = index_.find(key);
    if (it == index_.end()) {
        return 0;
    }
    std::lock_guard lock(mu_);
    const uint64_t id = next_sub_id_++;
    subs_.push_back(Subscription{id, it->second, std::make_shared<const Listener>(std::move(fn))});
    return id;
}

void Config::unsubscribe(uint64_t id) {
    std::lock_guard lock(mu_);
    std::erase_if(subs_, [id](const Subscription& s) { return s.id == id; });
}

}  // namespace mqttd::config
