// Percent-decoding and path splitting for the REST API. Pistache 0.0.5 decodes neither path
// nor query (DEPENDENCIES.md), and MQTT topics contain '/', so every segment is decoded here,
// after the path has been split on its raw '/' (a "%2F" stays inside its segment).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mqttd::api {

// Decodes %XX escapes; with `plus_is_space` (query strings) also '+'. nullopt on a malformed
// escape ("%", "%4", "%zz").
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);

// Escapes every byte but RFC 3986's unreserved characters (a query key or value).
std::string percent_encode(std::string_view in);

// Splits a raw path on '/', keeping empty segments ("routes//World" -> "routes", "",
// "World"); the leading '/' does not make a segment.
std::vector<std::string> split_path(std::string_view path);

// Standard base64 (RFC 4648) with padding.
std::string base64_encode(std::string_view in);
// nullopt when `in` is not valid padded base64.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace mqttd::api
