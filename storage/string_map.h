// StringMap<V>: an unordered_map keyed by std::string that finds by std::string_view without
// building a key (transparent hashing), for the committer's per-key state. Thread-safety: that
// of std::unordered_map.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mqttd::storage {

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace mqttd::storage
