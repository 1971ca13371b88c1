// TopicIndex: every subscription of every session, for matching a topic name to its
// subscribers. Shared by all workers: match() takes a shared lock, so readers never block each
// other; subscribe()/unsubscribe() take the exclusive lock briefly.
//
// Layout: a trie with one node per topic level. A node has exact children (hashed by level,
// looked up without allocating), a '+' child and a '#' child, and the subscribers whose filter
// ends at it. Matching "a/b" visits, level by level, the exact child, the '+' child and the '#'
// child's subscribers (3.1.1 4.7.1: "sport/#" also matches "sport"); at level 0, a topic
// starting with '$' skips the wildcard children [MQTT-4.7.2-1].
//
// Shared subscriptions ("$share/{group}/{filter}", MQTT 5 4.8.2, and EMQ 2.x's "$queue/{filter}",
// one group named "$queue"; both for every protocol version, as EMQ 2.x did): the members of
// a group sit at their filter's node, and a match picks one member per group, round robin,
// preferring a session that is online.
//
// Collect under the lock, act outside it (STYLE.md 7): match() appends to a caller-owned
// vector, reused between calls, and copies the session pointers so they outlive the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/subscription_ids.h"
#include "common/rw_lock.h"
#include "mqtt/packets.h"

namespace mqttd::broker {

class Session;

struct Subscriber {
    std::shared_ptr<Session> session;
    mqtt::SubscribeOptions options;
    // The subscription's identifier in the index (one); after merge_by_session, every
    // identifier of the session's subscriptions the topic matched.
    SubscriptionIds subscription_ids;
    bool shared = false;  // picked as a member of a shared subscription's group
};

// The parts of a shared subscription's filter; nullopt for a plain filter (or a "$share/" one
// without a group and a filter).
struct SharedFilter {
    std::string_view group;
    std::string_view filter;
};
std::optional<SharedFilter> parse_shared(std::string_view filter);
// A group's name across the cluster: "$share/<group>/<filter>" for both forms ("$queue/f" is
// "$share/$queue/f"), so two nodes name one group alike whichever form their clients used.
std::string shared_key(const SharedFilter& shared);

// Which shared subscription groups a match picks a member of. A group whose members are on
// several nodes of a cluster gets one node picked per message (src/cluster/README.md): the
// publishing node's match leaves out the groups picked elsewhere (Except), a node the message
// was forwarded to picks only those it was picked for (Only). `keys` are shared_key()s.
struct GroupChoice {
    enum class Mode : uint8_t { All, Except, Only };
    Mode mode = Mode::All;
    const std::vector<std::string>* keys = nullptr;  // REQUIRES: set unless mode is All

    bool picks(std::string_view key) const;
};

class TopicIndex {
public:
    TopicIndex();
    ~TopicIndex();
    TopicIndex(const TopicIndex&) = delete;
    TopicIndex& operator=(const TopicIndex&) = delete;

    struct SubscribeResult {
        bool existed = false;     // the session already had this filter (options replaced)
        bool new_filter = false;  // first subscriber of this filter (a new route)
        // The session is persistent and the filter had no other persistent subscriber: its
        // route now needs a durable answer (src/cluster/README.md, "clean routes").
        bool durable_added = false;
    };
    // REQUIRES: filter is a valid topic filter. A shared subscription's filter is given whole
    // ("$share/g/a/+"); "filter" in the results means that whole string.
    SubscribeResult subscribe(const std::shared_ptr<Session>& session,
                              std::string_view filter,
                              const mqtt::SubscribeOptions& options,
                              uint32_t subscription_id);

    struct UnsubscribeResult {
        bool existed = false;
        bool filter_gone = false;   // no subscriber left for this filter (route removed)
        bool durable_gone = false;  // the last persistent subscriber of this filter went
    };
    UnsubscribeResult unsubscribe(const Session* session, std::string_view filter);

    // Appends every subscription matching `topic` to `out` (one entry per subscription; a
    // session with overlapping filters appears more than once: see merge_by_session()), and
    // one member of each group `choice` picks.
    void match(std::string_view topic,
               std::vector<Subscriber>& out,
               const GroupChoice& choice = {}) const;

    size_t subscription_count() const;
    size_t filter_count() const;
    // The highest counts ever reached (monitoring/stats maxima).
    size_t subscription_max() const;
    size_t filter_max() const;

private:
    struct Node;
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Eq {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const { return a == b; }
    };
    struct Group {
        std::string name;
        std::string key;  // shared_key()
        std::vector<Subscriber> members;
        mutable std::atomic<uint32_t> next{0};  // round robin; matches run under a shared lock
    };
    struct Node {
        std::unordered_map<std::string, std::unique_ptr<Node>, Hash, Eq> children;
        std::unique_ptr<Node> plus;
        std::unique_ptr<Node> hash;
        std::vector<Subscriber> subscribers;
        std::vector<std::unique_ptr<Group>> groups;
        bool empty() const {
            return children.empty() && !plus && !hash && subscribers.empty() && groups.empty();
        }
    };

    static std::vector<std::unique_ptr<Group>>::iterator find_group(Node& node,
                                                                    std::string_view name);
    // The node of `filter` (plain, without any "$share/" prefix), created on the way.
    Node& node_for(std::string_view filter) MQTTD_REQUIRES(mutex_);
    // The node's subscribers, and one member of each of its groups `choice` picks.
    static void take(const Node& node, const GroupChoice& choice, std::vector<Subscriber>& out);
    static void collect(const Node& node,
                        std::string_view topic,
                        size_t pos,
                        bool first_level,
                        const GroupChoice& choice,
                        std::vector<Subscriber>& out);
    static bool prune(Node& node,
                      std::string_view filter,
                      size_t pos,
                      std::optional<std::string_view> group,
                      const Session* session,
                      UnsubscribeResult& result);

    mutable RwLock mutex_;  // writer-preferring: a subscribe is not starved by matches
    std::unique_ptr<Node> root_ MQTTD_PT_GUARDED_BY(mutex_);
    size_t subscriptions_ MQTTD_GUARDED_BY(mutex_) = 0;
    size_t filters_ MQTTD_GUARDED_BY(mutex_) = 0;
    size_t subscriptions_max_ MQTTD_GUARDED_BY(mutex_) = 0;
    size_t filters_max_ MQTTD_GUARDED_BY(mutex_) = 0;
};

// Overlapping subscriptions of one session deliver one message at the highest granted QoS
// (3.1.1 3.3.5; MQTT 5 [MQTT-3.3.4-4], carrying the Subscription Identifier of each). Sorts
// `subs` by session and folds each session's plain entries into one, keeping the highest QoS,
// OR-ing retain-as-published, AND-ing no-local and gathering the identifiers. An entry picked
// for a shared subscription stays apart: it is a copy of its own (MQTT 5 4.8.2).
void merge_by_session(std::vector<Subscriber>& subs);

}  // namespace mqttd::broker
