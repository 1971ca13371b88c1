// Topic-filter matching for the auth modules (ACL rules, web hook rules, rewrite rules), with
// EMQ 2.x's semantics (emqttd_topic:match/2), so acl.conf files behave as they did there.
//
// topic_match(name, filter) compares a topic name with a filter, level by level ('/'):
//   - a filter level "+" matches any one level of `name`;
//   - a filter level "#" matches the rest of `name`, including nothing ("a/#" matches "a");
//   - any other level matches only an identical level;
//   - a filter starting with "+" or "#" does not match a name starting with '$'
//     [MQTT-4.7.2-1], so "#" does not cover "$SYS/...".
//
// For SUBSCRIBE, EMQ 2.x fed the requested filter to the same match, its wildcards counting as
// words that only the rule's wildcards match (deny "a/b" does not catch "a/+"); the ACL keeps
// that decision (acl.h) and asks one more question, to mark such subscriptions:
//   filter_overlaps(rule, sub): some topic is matched by both filters.
// For a topic name without wildcards it equals topic_match.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace mqttd::broker::auth {

bool topic_match(std::string_view name, std::string_view filter);
bool filter_overlaps(std::string_view rule, std::string_view sub);
// True when `filter` is a valid MQTT topic filter (non-empty, '#' only last and alone in its
// level, '+' alone in its level).
bool valid_filter(std::string_view filter);

}  // namespace mqttd::broker::auth
