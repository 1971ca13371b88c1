#include "broker/topic_index.h"

#include <algorithm>
#include <mutex>

#include "broker/session.h"

namespace mqttd::broker {
namespace {

// The level starting at `pos` and the position after its separator (npos at the end).
std::pair<std::string_view, size_t> level_at(std::string_view s, size_t pos) {
    size_t slash = s.find('/', pos);
    if (slash == std::string_view::npos) {
        return {s.substr(pos), std::string_view::npos};
    }
    return {s.substr(pos, slash - pos), slash + 1};
}

// Adds `sub` to `subs`, or replaces the options of the session's entry. Returns whether the
// session was there already.
bool upsert(std::vector<Subscriber>& subs, Subscriber&& sub) {
    for (auto& existing : subs) {
        if (existing.session == sub.session) {
            existing.options = sub.options;
            existing.subscription_ids = std::move(sub.subscription_ids);
            return true;
        }
    }
    subs.push_back(std::move(sub));
    return false;
}

// Whether a persistent session other than `except` subscribes in `subs`.
bool has_persistent(const std::vector<Subscriber>& subs, const Session* except) {
    return std::any_of(subs.begin(), subs.end(), [except](const Subscriber& s) {
        return s.session.get() != except && s.session->persistent();
    });
}

// Removes the session's entry; returns whether there was one.
bool remove(std::vector<Subscriber>& subs, const Session* session) {
    auto it = std::find_if(subs.begin(), subs.end(),
                           [&](const Subscriber& s) { return s.session.get() == session; });
    if (it == subs.end()) {
        return false;
    }
    subs.erase(it);
    return true;
}

}  // namespace

std::optional<SharedFilter> parse_shared(std::string_view filter) {
    constexpr std::string_view kShare = "$share/";
    constexpr std::string_view kQueue = "$queue/";
    if (filter.starts_with(kQueue) && filter.size() > kQueue.size()) {
        return SharedFilter{"$queue", filter.substr(kQueue.size())};
    }
    if (!filter.starts_with(kShare)) {
        return std::nullopt;
    }
    std::string_view rest = filter.substr(kShare.size());
    size_t slash = rest.find('/');
    if (slash == 0 || slash == std::string_view::npos || slash + 1 == rest.size()) {
        return std::nullopt;
    }
    return SharedFilter{rest.substr(0, slash), rest.substr(slash + 1)};
}

std::string shared_key(const SharedFilter& shared) {
    std::string key;
    key.reserve(8 + shared.group.size() + shared.filter.size());
    key.append("$share/").append(shared.group).append("/").append(shared.filter);
    return key;
}

bool GroupChoice::picks(std::string_view key) const {
    if (mode == Mode::All) {
        return true;
    }
    const bool listed = std::find(keys->begin(), keys->end(), key) != keys->end();
    return mode == Mode::Only ? listed : !listed;
}

TopicIndex::TopicIndex() : root_(std::make_unique<Node>()) {}
TopicIndex::~TopicIndex() = default;

std::vector<std::unique_ptr<TopicIndex::Group>>::iterator TopicIndex::find_group(
        Node& node, std::string_view name) {
    return std::find_if(node.groups.begin(), node.groups.end(),
                        [&](const auto& g) { return g->name == name; });
}

TopicIndex::Node& TopicIndex::node_for(std::string_view filter) {
    Node* node = root_.get();
    size_t pos = 0;
    while (true) {
        auto [level, next] = level_at(filter, pos);
        std::unique_ptr<Node>* slot;
        if (level == "+") {
            slot = &node->plus;
        } else if (level == "#") {
            slot = &node->hash;
        } else {
            auto it = node->children.find(level);
            if (it == node->children.end()) {
                it = node->children.emplace(std::string(level), std::make_unique<Node>()).first;
            }
            slot = &it->second;
        }
        if (!*slot) {
            *slot = std::make_unique<Node>();
        }
        node = slot->get();
        if (next == std::string_view::npos) {
            return *node;
        }
        pos = next;
    }
}

TopicIndex::SubscribeResult TopicIndex::subscribe(const std::shared_ptr<Session>& session,
                                                  std::string_view filter,
                                                  const mqtt::SubscribeOptions& options,
                                                  uint32_t subscription_id) {
    WriterLock lock(mutex_);
    auto shared = parse_shared(filter);
    Node& node = node_for(shared ? shared->filter : filter);
    std::vector<Subscriber>* subs = &node.subscribers;
    if (shared) {
        auto it = find_group(node, shared->group);
        if (it == node.groups.end()) {
            node.groups.push_back(std::make_unique<Group>());
            node.groups.back()->name = std::string(shared->group);
            node.groups.back()->key = shared_key(*shared);
            it = node.groups.end() - 1;
        }
        subs = &(*it)->members;
    }
    SubscribeResult result;
    result.new_filter = subs->empty();
    result.existed =
            upsert(*subs, Subscriber{session, options, SubscriptionIds(subscription_id), false});
    result.durable_added =
            !result.existed && session->persistent() && !has_persistent(*subs, session.get());
    if (!result.existed) {
        ++subscriptions_;
        if (result.new_filter) {
            ++filters_;
        }
        subscriptions_max_ = std::max(subscriptions_max_, subscriptions_);
        filters_max_ = std::max(filters_max_, filters_);
    }
    return result;
}

bool TopicIndex::prune(Node& node,
                       std::string_view filter,
                       size_t pos,
                       std::optional<std::string_view> group,
                       const Session* session,
                       UnsubscribeResult& result) {
    auto [level, next] = level_at(filter, pos);
    std::unique_ptr<Node>* slot = nullptr;
    decltype(node.children)::iterator child_it;
    if (level == "+") {
        slot = &node.plus;
    } else if (level == "#") {
        slot = &node.hash;
    } else {
        child_it = node.children.find(level);
        if (child_it == node.children.end()) {
            return false;
        }
        slot = &child_it->second;
    }
    if (!*slot) {
        return false;
    }
    Node& child = **slot;
    if (next == std::string_view::npos) {
        if (!group) {
            if (!remove(child.subscribers, session)) {
                return false;
            }
            result.filter_gone = child.subscribers.empty();
            result.durable_gone =
                    session->persistent() && !has_persistent(child.subscribers, nullptr);
        } else {
            auto g = find_group(child, *group);
            if (g == child.groups.end() || !remove((*g)->members, session)) {
                return false;
            }
            result.filter_gone = (*g)->members.empty();
            result.durable_gone = session->persistent() && !has_persistent((*g)->members, nullptr);
            if (result.filter_gone) {
                child.groups.erase(g);
            }
        }
        result.existed = true;
    } else if (!prune(child, filter, next, group, session, result)) {
        return false;
    }
    if (child.empty()) {
        if (level == "+" || level == "#") {
            slot->reset();
        } else {
            node.children.erase(child_it);
        }
    }
    return true;
}

TopicIndex::UnsubscribeResult TopicIndex::unsubscribe(const Session* session,
                                                      std::string_view filter) {
    WriterLock lock(mutex_);
    UnsubscribeResult result;
    auto shared = parse_shared(filter);
    prune(*root_, shared ? shared->filter : filter, 0,
          shared ? std::optional<std::string_view>(shared->group) : std::nullopt, session, result);
    if (result.existed) {
        --subscriptions_;
        if (result.filter_gone) {
            --filters_;
        }
    }
    return result;
}

void TopicIndex::take(const Node& node, const GroupChoice& choice, std::vector<Subscriber>& out) {
    out.insert(out.end(), node.subscribers.begin(), node.subscribers.end());
    for (const auto& g : node.groups) {
        if (!choice.picks(g->key)) {
            continue;
        }
        // Round robin over the members, skipping offline sessions (their messages would wait
        // in a queue while another member could take them); all offline: the next in turn.
        const auto n = static_cast<uint32_t>(g->members.size());
        uint32_t start = g->next.fetch_add(1, std::memory_order_relaxed) % n;
        uint32_t pick = start;
        for (uint32_t k = 0; k < n; ++k) {
            uint32_t i = (start + k) % n;
            if (g->members[i].session->online.load(std::memory_order_relaxed)) {
                pick = i;
                break;
            }
        }
        out.push_back(g->members[pick]);
        out.back().shared = true;
    }
}

void TopicIndex::collect(const Node& node,
                         std::string_view topic,
                         size_t pos,
                         bool first_level,
                         const GroupChoice& choice,
                         std::vector<Subscriber>& out) {
    // Not a structured binding: clang 14 cannot capture one in `visit`.
    const std::pair<std::string_view, size_t> split = level_at(topic, pos);
    const std::string_view level = split.first;
    const size_t next = split.second;
    // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match a topic starting with $.
    bool wildcards = !(first_level && !level.empty() && level.front() == '$');
    if (wildcards && node.hash) {
        take(*node.hash, choice, out);
    }
    auto visit = [&](const Node& child) {
        if (next == std::string_view::npos) {
            take(child, choice, out);
            // "a/#" matches "a" as well [MQTT-4.7.1-2].
            if (child.hash) {
                take(*child.hash, choice, out);
            }
        } else {
            collect(child, topic, next, false, choice, out);
        }
    };
    if (auto it = node.children.find(level); it != node.children.end()) {
        visit(*it->second);
    }
    if (wildcards && node.plus) {
        visit(*node.plus);
    }
}

void TopicIndex::match(std::string_view topic,
                       std::vector<Subscriber>& out,
                       const GroupChoice& choice) const {
    ReaderLock lock(mutex_);
    collect(*root_, topic, 0, true, choice, out);
}

size_t TopicIndex::subscription_count() const {
    ReaderLock lock(mutex_);
    return subscriptions_;
}

size_t TopicIndex::filter_count() const {
    ReaderLock lock(mutex_);
    return filters_;
}

size_t TopicIndex::subscription_max() const {
    ReaderLock lock(mutex_);
    return subscriptions_max_;
}

size_t TopicIndex::filter_max() const {
    ReaderLock lock(mutex_);
    return filters_max_;
}

void merge_by_session(std::vector<Subscriber>& subs) {
    if (subs.size() < 2) {
        return;
    }
    // Plain entries of a session first, ordered by identifier so that the identifiers of the
    // copy come out in a stable order.
    std::sort(subs.begin(), subs.end(), [](const Subscriber& a, const Subscriber& b) {
        if (a.session.get() != b.session.get()) {
            return a.session.get() < b.session.get();
        }
        if (a.shared != b.shared) {
            return !a.shared;
        }
        return a.subscription_ids.first() < b.subscription_ids.first();
    });
    size_t w = 0;
    for (size_t r = 1; r < subs.size(); ++r) {
        if (subs[r].session == subs[w].session && !subs[r].shared && !subs[w].shared) {
            auto& kept = subs[w].options;
            kept.qos = std::max(kept.qos, subs[r].options.qos);
            kept.retain_as_published |= subs[r].options.retain_as_published;
            kept.no_local &= subs[r].options.no_local;
            subs[w].subscription_ids.add(subs[r].subscription_ids);
        } else {
            ++w;
            if (w != r) {
                subs[w] = std::move(subs[r]);
            }
        }
    }
    subs.resize(w + 1);
}

}  // namespace mqttd::broker
