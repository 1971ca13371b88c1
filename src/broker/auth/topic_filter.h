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
// For SUBSCRIBE the ACL compares two filters (the rule's and the requested one). EMQ 2.x fed
// the requested filter to the same match, its wildcards counting as words matched by the
// rule's '+', which lets allow "a/+" grant "a/#" and lets "a/+" slip past deny "a/b". mqttd
// instead asks the question each rule kind needs:
//   filter_covers(rule, sub):   every topic `sub` matches is matched by `rule` (allow rules:
//                               a rule grants a subscription only if it grants all of it);
//   filter_overlaps(rule, sub): some topic is matched by both (deny rules: a subscription that
//                               could receive a denied topic is refused).
// For a topic name without wildcards both equal topic_match.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace mqttd::broker::auth {

bool topic_match(std::string_view name, std::string_view filter);
bool filter_covers(std::string_view rule, std::string_view sub);
bool filter_overlaps(std::string_view rule, std::string_view sub);
// True when `filter` is a valid MQTT topic filter (non-empty, '#' only last and alone in its
// level, '+' alone in its level).
bool valid_filter(std::string_view filter);

}  // namespace mqttd::broker::auth
