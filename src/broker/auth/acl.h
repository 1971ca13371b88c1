// The ACL file engine (EMQ 2.x's internal ACL, `mqtt.acl_file`), and the per-connection cache
// of publish decisions (`mqtt.cache_acl`).
//
// FORMAT (EMQ 2.x acl.conf, Erlang terms). One rule per term, each ending with '.';
// '%' starts a comment to the end of the line (outside strings):
//   {allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.
//   {allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.
//   {deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
//   {allow, all}.
// rule   := {Perm, all} | {Perm, Who, Access, Topics}     Perm := allow | deny
// Who    := all | {user, "name"} | {client, "id"} | {ipaddr, "a.b.c.d"} |
//           {ipaddr, "a.b.c.d/len"} (IPv4 or IPv6 CIDR) | {'and', [Who, ...]} | {'or', [Who, ...]}
// Access := subscribe | publish | pubsub
// Topics := [Topic, ...] | Topic          Topic := "filter" | {eq, "topic"}
// Strings take the escapes \" \\ \n \t.
//
// MATCHING. Rules are tried in file order; the first rule whose Who, Access and one of whose
// Topics match decides (first match wins). No rule matching -> no decision, and the caller
// applies mqtt.acl_nomatch. A Topic "filter" is an MQTT filter matched as EMQ 2.x did
// (emqttd_topic:match/2, topic_filter.h): for PUBLISH against the topic name, for SUBSCRIBE
// against the requested filter as written, its '+' and '#' being plain words that only the
// rule's wildcards match. So deny "test/nosubscribe" refuses exactly a subscription to
// "test/nosubscribe" (and allow "a/+" grants "a/#"), while "#" and "+/+" are decided by the
// rules after it. {eq, "t"} matches only the identical string, wildcards included: {eq, "#"}
// catches exactly a subscription to "#".
// BEYOND EMQ: a subscription granted although its filter shares topics with a rule that denies
// subscribing (overlaps_subscribe_deny: deny "a/b" or {deny, all} against "#") is marked by the
// broker, and a message delivered through a marked subscription is dropped for that session
// when subscribing to its topic name would be denied (denies_subscribe_topic). Unmarked
// subscriptions cost nothing.
// A topic level that is exactly "%u" or "%c" is replaced by the client's username or client
// id; the substituted value is a literal level (a username "+" does not become a wildcard),
// and a rule whose %u has no username, or whose value contains '/', '+' or '#', does not match.
//
// ERRORS are one line: "<name>:<line>: <what>", e.g. "acl.conf:7: expected '}'".
// Limits: kMaxAclBytes of text, kMaxAclRules rules, nesting depth 16.
//
// Thread-safety: AclRules is immutable after parse(): share it freely. AclFile: any thread
// (the rules are an atomic shared_ptr; reload parses fully, then swaps). AclCache: one thread
// (the connection's worker).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/auth/auth_chain.h"
#include "common/result.h"

namespace mqttd::broker::auth {

inline constexpr size_t kMaxAclBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxAclRules = 100000;

struct AclWho {
    enum class Kind { All, User, Client, IpAddr, And, Or };
    Kind kind = Kind::All;
    std::string value;               // User, Client: the name; IpAddr: the text
    std::array<uint8_t, 16> addr{};  // IpAddr: network address (IPv4 in the first 4 bytes)
    uint8_t family = 0;              // IpAddr: 4 or 6
    uint8_t prefix_len = 0;          // IpAddr: CIDR length
    std::vector<AclWho> children;    // And, Or
};

struct AclTopic {
    std::string text;
    bool eq = false;        // {eq, "..."}: literal equality
    bool has_vars = false;  // contains a "%u" or "%c" level
};

struct AclRule {
    bool allow = false;
    AclWho who;
    Access access = Access::PubSub;
    bool all_topics = false;  // {Perm, all}
    std::vector<AclTopic> topics;
    int line = 0;
};

struct AclMatch {
    bool allow = false;
    int line = 0;  // the deciding rule's line
};

class AclRules {
public:
    AclRules() = default;
    // Parses a whole file; `name` prefixes error messages.
    static Result<AclRules, std::string> parse(std::string_view text, std::string_view name);

    // The first matching rule, or nullopt.
    std::optional<AclMatch> match(const ClientIdentity& id,
                                  Access access,
                                  std::string_view topic) const;
    // Whether a rule that denies subscribing, for `id`, shares a topic with `filter` (a plain
    // filter, without "$share/{group}/").
    bool overlaps_subscribe_deny(const ClientIdentity& id, std::string_view filter) const;
    // Whether the rule deciding a subscription to the topic name `topic` denies it.
    bool denies_subscribe_topic(const ClientIdentity& id, std::string_view topic) const;

    // Rules built in code (the database plugins' ACL rows), matched exactly like a file's.
    static AclRules from_rules(std::vector<AclRule> rules);

    const std::vector<AclRule>& rules() const { return rules_; }
    size_t size() const { return rules_.size(); }

private:
    std::vector<AclRule> rules_;
};

// Sets who.kind = IpAddr and its address from "a.b.c.d", an IPv6 address or a CIDR; false
// when malformed.
bool parse_ip_who(const std::string& text, AclWho& who);
// A topic of a rule built in code: `text` as a filter (with %u / %c levels), or with `eq` the
// literal topic; nullopt when the filter is invalid or empty.
std::optional<AclTopic> make_acl_topic(std::string_view text, bool eq);

// The ACL file as an AclChecker named "internal" (EMQ's name for it): a matching rule allows
// or denies, no match is Ignore. Answers inline.
class AclFile final : public AclChecker {
public:
    // Does not read the file: call reload() once at start. `on_change` runs after every
    // successful swap (wire it to AclChain::bump_epoch so caches drop stale decisions).
    explicit AclFile(std::string path, std::function<void()> on_change = {});

    std::string_view name() const override { return "internal"; }
    void check(const ClientIdentity& id,
               Access access,
               std::string_view topic,
               DecisionCallback done) override;
    std::optional<Verdict> verdict_now(const ClientIdentity& id,
                                       Access access,
                                       std::string_view topic) const override;

    // Reads and parses the file, then swaps the rules in; returns the rule count, or the
    // one-line error ("acl.conf:7: expected '}'") and keeps the old rules.
    Result<size_t, std::string> reload();
    // The same for text given directly (REST upload, tests); `name` is used in errors.
    Result<size_t, std::string> load_text(std::string_view text, std::string_view name);

    std::optional<AclMatch> match(const ClientIdentity& id,
                                  Access access,
                                  std::string_view topic) const {
        return rules()->match(id, access, topic);
    }
    std::shared_ptr<const AclRules> rules() const { return rules_.load(); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::function<void()> on_change_;
    std::atomic<std::shared_ptr<const AclRules>> rules_;
};

// Per-connection cache of PUBLISH decisions (mqtt.cache_acl). Bounded: at most `capacity`
// topics, least recently used evicted. Entries remember the AclChain epoch they were made
// under; a lookup with a newer epoch empties the cache first. Lookups do not allocate; a put
// that evicts reuses the evicted entry's string.
// Thread-safety: none; owned by one connection on its worker.
class AclCache {
public:
    // Entries are allocated as they are used: an idle connection costs nothing here.
    explicit AclCache(size_t capacity = 32) : capacity_(capacity) {}

    std::optional<bool> get(std::string_view topic, uint64_t epoch);
    void put(std::string_view topic, bool allow, uint64_t epoch);
    void clear(std::string_view topic);  // PUT clients/{id}/clean_acl_cache {"topic": ...}
    void clear_all();
    size_t size() const { return entries_.size(); }

private:
    struct Entry {
        std::string topic;
        size_t hash = 0;  // of topic: a lookup compares the bytes of one entry, not of each
        bool allow = false;
        uint64_t last_use = 0;
    };
    void sync_epoch(uint64_t epoch);
    Entry* find(std::string_view topic, size_t hash);

    size_t capacity_;
    uint64_t epoch_ = 0;
    uint64_t tick_ = 0;
    std::vector<Entry> entries_;
};

}  // namespace mqttd::broker::auth
