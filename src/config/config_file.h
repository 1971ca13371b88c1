// The config file syntax (data/mqttd.conf): one `key = value` per line.
//
//   # a whole-line comment
//   mqtt.max_inflight = 32          # a trailing comment starts at '#' after whitespace
//   node.name = "mqttd@10.0.0.1"    # double quotes keep spaces and '#'; \" and \\ escape
//   listener.ssl.external =         # an empty value
//
// Blank lines are ignored and whitespace around keys and values is trimmed. A '#' inside an
// unquoted value that is not preceded by whitespace is part of the value (`pass#1`). A key may
// appear only once per file. The parser checks syntax only; keys and values are checked by
// Config, which names the file and line in every error.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mqttd::config {

struct FileEntry {
    int line = 0;
    std::string key;
    std::string value;
};

// Files larger than this are refused before they are read into memory.
inline constexpr size_t kMaxConfigFileSize = 16u << 20;

// Splits `text` into entries. `name` is used in errors: `<name>:<line>: <what>`.
Result<std::vector<FileEntry>, std::string> parse_config_text(std::string_view text,
                                                              std::string_view name);

// Reads the whole file. Error: `cannot read config file <path>: <reason>`.
Result<std::string, std::string> read_config_file(const std::string& path);

}  // namespace mqttd::config
