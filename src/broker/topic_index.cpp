#include "broker/topic_index.h"

#include <algorithm>
#include <mutex>

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

}  // namespace

TopicIndex::TopicIndex() : root_(std::make_unique<Node>()) {}
TopicIndex::~TopicIndex() = default;

TopicIndex::SubscribeResult TopicIndex::subscribe(const std::shared_ptr<Session>& session,
                                                  std::string_view filter,
                                                  const mqtt::SubscribeOptions& options,
                                                  uint32_t subscription_id) {
    std::unique_lock lock(mutex_);
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
            break;
        }
        pos = next;
    }
    SubscribeResult result;
    for (auto& sub : node->subscribers) {
        if (sub.session == session) {
            sub.options = options;
            sub.subscription_id = subscription_id;
            result.existed = true;
            return result;
        }
    }
    result.new_filter = node->subscribers.empty();
    node->subscribers.push_back(Subscriber{session, options, subscription_id});
    ++subscriptions_;
    if (result.new_filter) {
        ++filters_;
    }
    return result;
}

bool TopicIndex::prune(Node& node,
                       std::string_view filter,
                       size_t pos,
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
        auto& subs = child.subscribers;
        auto it = std::find_if(subs.begin(), subs.end(),
                               [&](const Subscriber& s) { return s.session.get() == session; });
        if (it == subs.end()) {
            return false;
        }
        subs.erase(it);
        result.existed = true;
        result.filter_gone = subs.empty();
    } else if (!prune(child, filter, next, session, result)) {
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
    std::unique_lock lock(mutex_);
    UnsubscribeResult result;
    prune(*root_, filter, 0, session, result);
    if (result.existed) {
        --subscriptions_;
        if (result.filter_gone) {
            --filters_;
        }
    }
    return result;
}

void TopicIndex::collect(const Node& node,
                         std::string_view topic,
                         size_t pos,
                         bool first_level,
                         std::vector<Subscriber>& out) {
    auto [level, next] = level_at(topic, pos);
    // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match a topic starting with $.
    bool wildcards = !(first_level && !level.empty() && level.front() == '$');
    if (wildcards && node.hash) {
        out.insert(out.end(), node.hash->subscribers.begin(), node.hash->subscribers.end());
    }
    auto visit = [&](const Node& child) {
        if (next == std::string_view::npos) {
            out.insert(out.end(), child.subscribers.begin(), child.subscribers.end());
            // "a/#" matches "a" as well [MQTT-4.7.1-2].
            if (child.hash) {
                out.insert(out.end(), child.hash->subscribers.begin(),
                           child.hash->subscribers.end());
            }
        } else {
            collect(child, topic, next, false, out);
        }
    };
    if (auto it = node.children.find(level); it != node.children.end()) {
        visit(*it->second);
    }
    if (wildcards && node.plus) {
        visit(*node.plus);
    }
}

void TopicIndex::match(std::string_view topic, std::vector<Subscriber>& out) const {
    std::shared_lock lock(mutex_);
    collect(*root_, topic, 0, true, out);
}

size_t TopicIndex::subscription_count() const {
    std::shared_lock lock(mutex_);
    return subscriptions_;
}

size_t TopicIndex::filter_count() const {
    std::shared_lock lock(mutex_);
    return filters_;
}

void merge_by_session(std::vector<Subscriber>& subs) {
    if (subs.size() < 2) {
        return;
    }
    std::sort(subs.begin(), subs.end(), [](const Subscriber& a, const Subscriber& b) {
        return a.session.get() < b.session.get();
    });
    size_t w = 0;
    for (size_t r = 1; r < subs.size(); ++r) {
        if (subs[r].session == subs[w].session) {
            auto& kept = subs[w].options;
            kept.qos = std::max(kept.qos, subs[r].options.qos);
            kept.retain_as_published |= subs[r].options.retain_as_published;
            kept.no_local &= subs[r].options.no_local;
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
