#include "cluster/route_table.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "broker/topic_index.h"

namespace mqttd::cluster {

struct RouteTable::Node {
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Eq {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const { return a == b; }
    };
    std::unordered_map<std::string, std::unique_ptr<Node>, Hash, Eq> children;
    std::unique_ptr<Node> plus;
    std::unique_ptr<Node> hash;
    std::vector<uint32_t> nodes;  // whose filter ends here
    std::vector<uint32_t> clean;  // those of `nodes` whose route is clean (RouteTable::add)
    struct Group {
        std::string key;  // broker::shared_key()
        std::vector<uint32_t> nodes;
        mutable std::atomic<uint32_t> next{0};  // round robin; picks run under a shared lock
    };
    std::vector<std::unique_ptr<Group>> groups;  // shared subscriptions of this filter

    bool empty() const {
        return children.empty() && !plus && !hash && nodes.empty() && groups.empty();
    }
    // The node list `group` names here (nullptr: the plain one); created when `create`.
    std::vector<uint32_t>* list(const std::optional<std::string>& group, bool create) {
        if (!group) {
            return &nodes;
        }
        for (auto& g : groups) {
            if (g->key == *group) {
                return &g->nodes;
            }
        }
        if (!create) {
            return nullptr;
        }
        groups.push_back(std::make_unique<Group>());
        groups.back()->key = *group;
        return &groups.back()->nodes;
    }
    void drop_empty_groups() {
        std::erase_if(groups, [](const auto& g) { return g->nodes.empty(); });
    }
};

namespace {

std::pair<std::string_view, size_t> level_at(std::string_view s, size_t pos) {
    size_t slash = s.find('/', pos);
    if (slash == std::string_view::npos) {
        return {s.substr(pos), std::string_view::npos};
    }
    return {s.substr(pos, slash - pos), slash + 1};
}

}  // namespace

RouteTable::RouteTable() : root_(std::make_unique<Node>()) {}
RouteTable::~RouteTable() = default;

std::string RouteTable::route_key(std::string_view filter) {
    if (auto shared = broker::parse_shared(filter)) {
        return broker::shared_key(*shared);
    }
    return std::string(filter);
}

namespace {

// The plain filter a route key is kept at, and its group's key for a shared subscription.
std::pair<std::string_view, std::optional<std::string>> split_key(std::string_view key) {
    if (auto shared = broker::parse_shared(key)) {
        return {shared->filter, std::string(key)};
    }
    return {key, std::nullopt};
}

}  // namespace

bool RouteTable::add(std::string_view key, uint32_t node, bool durable) {
    auto [filter, group] = split_key(key);
    WriterLock lock(mutex_);
    Node* n = root_.get();
    size_t pos = 0;
    while (true) {
        auto [level, next] = level_at(filter, pos);
        std::unique_ptr<Node>* slot = nullptr;
        if (level == "+") {
            slot = &n->plus;
        } else if (level == "#") {
            slot = &n->hash;
        } else {
            auto it = n->children.find(level);
            if (it == n->children.end()) {
                it = n->children.emplace(std::string(level), nullptr).first;
            }
            slot = &it->second;
        }
        if (!*slot) {
            *slot = std::make_unique<Node>();
        }
        n = slot->get();
        if (next == std::string_view::npos) {
            break;
        }
        pos = next;
    }
    if (!group) {
        auto it = std::find(n->clean.begin(), n->clean.end(), node);
        if (durable && it != n->clean.end()) {
            n->clean.erase(it);
        } else if (!durable && it == n->clean.end()) {
            n->clean.push_back(node);
        }
    }
    std::vector<uint32_t>& nodes = *n->list(group, true);
    if (std::find(nodes.begin(), nodes.end(), node) != nodes.end()) {
        return false;
    }
    nodes.push_back(node);
    count_.fetch_add(1, std::memory_order_relaxed);
    if (group) {
        groups_.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
}

namespace {

template <typename NodeT>
bool prune(NodeT& n,
           std::string_view filter,
           size_t pos,
           const std::optional<std::string>& group,
           uint32_t node) {
    auto [level, next] = level_at(filter, pos);
    std::unique_ptr<NodeT>* slot = nullptr;
    auto child_it = n.children.end();
    if (level == "+") {
        slot = &n.plus;
    } else if (level == "#") {
        slot = &n.hash;
    } else {
        child_it = n.children.find(level);
        if (child_it == n.children.end()) {
            return false;
        }
        slot = &child_it->second;
    }
    if (!*slot) {
        return false;
    }
    NodeT& child = **slot;
    if (next == std::string_view::npos) {
        std::vector<uint32_t>* nodes = child.list(group, false);
        if (nodes == nullptr) {
            return false;
        }
        auto it = std::find(nodes->begin(), nodes->end(), node);
        if (it == nodes->end()) {
            return false;
        }
        nodes->erase(it);
        if (!group) {
            std::erase(child.clean, node);
        }
        child.drop_empty_groups();
    } else if (!prune(child, filter, next, group, node)) {
        return false;
    }
    if (child.empty()) {
        if (child_it != n.children.end()) {
            n.children.erase(child_it);
        } else {
            slot->reset();
        }
    }
    return true;
}

// Every route of `node` under `n`; the number of plain ones and of group ones removed.
template <typename NodeT>
std::pair<size_t, size_t> drop_node(NodeT& n, uint32_t node) {
    std::pair<size_t, size_t> removed{0, 0};
    if (auto it = std::find(n.nodes.begin(), n.nodes.end(), node); it != n.nodes.end()) {
        n.nodes.erase(it);
        std::erase(n.clean, node);
        ++removed.first;
    }
    for (auto& g : n.groups) {
        if (auto it = std::find(g->nodes.begin(), g->nodes.end(), node); it != g->nodes.end()) {
            g->nodes.erase(it);
            ++removed.second;
        }
    }
    n.drop_empty_groups();
    auto add = [&removed](std::pair<size_t, size_t> r) {
        removed.first += r.first;
        removed.second += r.second;
    };
    for (auto it = n.children.begin(); it != n.children.end();) {
        add(drop_node(*it->second, node));
        it = it->second->empty() ? n.children.erase(it) : std::next(it);
    }
    for (auto* slot : {&n.plus, &n.hash}) {
        if (*slot) {
            add(drop_node(**slot, node));
            if ((*slot)->empty()) {
                slot->reset();
            }
        }
    }
    return removed;
}

// Calls leaf(node) for every node whose filter matches `topic`.
template <typename NodeT, typename Leaf>
void collect(const NodeT& n, std::string_view topic, size_t pos, bool first_level, Leaf& leaf) {
    // Not a structured binding: clang 14 cannot capture one in `visit`.
    const std::pair<std::string_view, size_t> split = level_at(topic, pos);
    const std::string_view level = split.first;
    const size_t next = split.second;
    const bool wild = !(first_level && topic.starts_with('$'));
    if (wild && n.hash) {
        leaf(*n.hash);
    }
    auto visit = [&](const NodeT& child) {
        if (next == std::string_view::npos) {
            leaf(child);
            if (child.hash) {  // "a/#" matches "a" (3.1.1 4.7.1)
                leaf(*child.hash);
            }
        } else {
            collect(child, topic, next, false, leaf);
        }
    };
    if (auto it = n.children.find(level); it != n.children.end()) {
        visit(*it->second);
    }
    if (wild && n.plus) {
        visit(*n.plus);
    }
}

}  // namespace

bool RouteTable::remove(std::string_view key, uint32_t node) {
    auto [filter, group] = split_key(key);
    WriterLock lock(mutex_);
    if (!prune(*root_, filter, 0, group, node)) {
        return false;
    }
    count_.fetch_sub(1, std::memory_order_relaxed);
    if (group) {
        groups_.fetch_sub(1, std::memory_order_relaxed);
    }
    return true;
}

size_t RouteTable::remove_node(uint32_t node) {
    WriterLock lock(mutex_);
    auto [plain, grouped] = drop_node(*root_, node);
    count_.fetch_sub(plain + grouped, std::memory_order_relaxed);
    groups_.fetch_sub(grouped, std::memory_order_relaxed);
    return plain + grouped;
}

void RouteTable::clear() {
    WriterLock lock(mutex_);
    root_ = std::make_unique<Node>();
    count_.store(0, std::memory_order_relaxed);
    groups_.store(0, std::memory_order_relaxed);
}

void RouteTable::set_revision(int64_t revision) {
    WriterLock lock(mutex_);
    revision_.store(revision, std::memory_order_release);
}

int64_t RouteTable::match(std::string_view topic, std::vector<Target>& out) const {
    const size_t from = out.size();
    auto leaf = [&out](const Node& n) {
        for (uint32_t node : n.nodes) {
            const bool clean = !n.clean.empty() &&
                               std::find(n.clean.begin(), n.clean.end(), node) != n.clean.end();
            out.push_back(Target{node, !clean});
        }
    };
    int64_t revision = 0;
    {
        ReaderLock lock(mutex_);
        collect(*root_, topic, 0, true, leaf);
        revision = revision_.load(std::memory_order_relaxed);
    }
    merge(out, from);
    return revision;
}

void RouteTable::merge(std::vector<Target>& out, size_t from) {
    const auto begin = out.begin() + static_cast<std::ptrdiff_t>(from);
    // A node's durable entry sorts first, so unique() keeps it.
    std::sort(begin, out.end(), [](const Target& a, const Target& b) {
        return a.node != b.node ? a.node < b.node : a.durable > b.durable;
    });
    out.erase(std::unique(begin, out.end(),
                          [](const Target& a, const Target& b) { return a.node == b.node; }),
              out.end());
}

void RouteTable::pick_groups(std::string_view topic,
                             std::vector<std::pair<std::string, uint32_t>>& out,
                             const std::function<bool(uint32_t)>& usable) const {
    auto leaf = [&out, &usable](const Node& n) {
        for (const auto& g : n.groups) {
            const auto k = static_cast<uint32_t>(g->nodes.size());
            const uint32_t start = g->next.fetch_add(1, std::memory_order_relaxed) % k;
            uint32_t pick = start;
            if (usable) {
                for (uint32_t step = 0; step < k; ++step) {
                    const uint32_t i = (start + step) % k;
                    if (usable(g->nodes[i])) {
                        pick = i;
                        break;
                    }
                }
            }
            out.emplace_back(g->key, g->nodes[pick]);
        }
    };
    ReaderLock lock(mutex_);
    collect(*root_, topic, 0, true, leaf);
}

}  // namespace mqttd::cluster
