// The registry of every configuration key mqttd knows: name, type, default, range or allowed
// values, whether it can be changed at run time ("hot"), and how the REST API presents it
// (rest-api-v2.md, "Hot configuration": `datatpye`, `app`). Also the value parser shared by the
// config file, the command line, the store and the REST API, so a value means the same thing
// wherever it comes from.
//
// Value forms (what parse_value accepts; the canonical text is what get_text and REST show):
//   Bool      true | false                          canonical: "true" / "false"
//   Int       decimal integer                       canonical: decimal
//   Duration  seconds, or N with s, m, h, d suffix  canonical: integer seconds ("2h" -> "7200")
//   Size      bytes, or N with B, KB, MB, GB suffix canonical: integer bytes ("1MB" -> "1048576")
//             (suffixes are case-insensitive; KB = 1024 bytes)
//   String    any text                              canonical: as given
//   Address   empty (listener off, if allowed), "host:port", "[v6]:port" or "port"
//   Enum      one of the listed choices
//
// Thread-safety: everything here is immutable static data or a pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mqttd::config {

enum class ValueType { Bool, Int, Duration, Size, String, Address, Enum };

struct KeyDef {
    std::string_view name{};
    ValueType type = ValueType::String;
    std::string_view default_text{};  // canonical form
    // Int, Duration, Size: inclusive range. String, Address: min = 1 means "must not be empty".
    int64_t min = 0;
    int64_t max = 0;
    std::span<const std::string_view> choices{};  // Enum only, in display order
    bool hot = false;                             // settable at run time (REST, set_runtime)
    std::string_view app = "emqttd";              // REST "app"
    std::string_view description{};               // one line, used by --help and mqttd.conf
};

// Every key, in the order of data/mqttd.conf and the REST listing.
std::span<const KeyDef> all_keys();

// nullptr when `name` is not a key.
const KeyDef* find_key(std::string_view name);

// The REST `datatpye` string (the spec's spelling): "enum" for Bool and Enum, "integer" for
// Int, Duration and Size, "string" otherwise.
std::string_view datatpye(const KeyDef& def);

// A parsed value: the canonical text, and for Bool/Int/Duration/Size its number (Bool: 0/1).
struct Value {
    std::string text;
    int64_t number = 0;
};

// A listener's rate_limit: "bytes_per_second,burst", each a size (bytes, or with KB, MB, GB);
// empty = no limit (both 0). The burst defaults to one second's worth when left out.
struct RateLimitValue {
    uint64_t bytes_per_second = 0;
    uint64_t burst = 0;
};
Result<RateLimitValue, std::string> parse_rate_limit(std::string_view text);

// Parses and validates `text` for `def`. The error is one line without the key, e.g.
// `"abc" is not an integer` or `0 is out of range 1..65535`; callers prefix where and which key.
Result<Value, std::string> parse_value(const KeyDef& def, std::string_view text);

}  // namespace mqttd::config
