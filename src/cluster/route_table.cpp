#include "cluster/route_table.h"

#include <algorithm>
#include <functional>

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

    bool empty() const { return children.empty() && !plus && !hash && nodes.empty(); }
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

std::string_view RouteTable::route_filter(std::string_view filter) {
    if (filter.starts_with("$queue/")) {
        return filter.substr(7);
    }
    if (filter.starts_with("$share/")) {
        size_t slash = filter.find('/', 7);
        if (slash != std::string_view::npos && slash > 7 && slash + 1 < filter.size()) {
            return filter.substr(slash + 1);
        }
    }
    return filter;
}

bool RouteTable::add(std::string_view filter, uint32_t node) {
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
    if (std::find(n->nodes.begin(), n->nodes.end(), node) != n->nodes.end()) {
        return false;
    }
    n->nodes.push_back(node);
    count_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

namespace {

template <typename NodeT>
bool prune(NodeT& n, std::string_view filter, size_t pos, uint32_t node) {
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
        auto it = std::find(child.nodes.begin(), child.nodes.end(), node);
        if (it == child.nodes.end()) {
            return false;
        }
        child.nodes.erase(it);
    } else if (!prune(child, filter, next, node)) {
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

template <typename NodeT>
size_t drop_node(NodeT& n, uint32_t node) {
    size_t removed = 0;
    if (auto it = std::find(n.nodes.begin(), n.nodes.end(), node); it != n.nodes.end()) {
        n.nodes.erase(it);
        ++removed;
    }
    for (auto it = n.children.begin(); it != n.children.end();) {
        removed += drop_node(*it->second, node);
        it = it->second->empty() ? n.children.erase(it) : std::next(it);
    }
    for (auto* slot : {&n.plus, &n.hash}) {
        if (*slot) {
            removed += drop_node(**slot, node);
            if ((*slot)->empty()) {
                slot->reset();
            }
        }
    }
    return removed;
}

template <typename NodeT>
void collect(const NodeT& n,
             std::string_view topic,
             size_t pos,
             bool first_level,
             std::vector<uint32_t>& out) {
    auto [level, next] = level_at(topic, pos);
    const bool wild = !(first_level && topic.starts_with('$'));
    if (wild && n.hash) {
        out.insert(out.end(), n.hash->nodes.begin(), n.hash->nodes.end());
    }
    auto visit = [&](const NodeT& child) {
        if (next == std::string_view::npos) {
            out.insert(out.end(), child.nodes.begin(), child.nodes.end());
            if (child.hash) {  // "a/#" matches "a" (3.1.1 4.7.1)
                out.insert(out.end(), child.hash->nodes.begin(), child.hash->nodes.end());
            }
        } else {
            collect(child, topic, next, false, out);
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

bool RouteTable::remove(std::string_view filter, uint32_t node) {
    WriterLock lock(mutex_);
    if (!prune(*root_, filter, 0, node)) {
        return false;
    }
    count_.fetch_sub(1, std::memory_order_relaxed);
    return true;
}

size_t RouteTable::remove_node(uint32_t node) {
    WriterLock lock(mutex_);
    size_t n = drop_node(*root_, node);
    count_.fetch_sub(n, std::memory_order_relaxed);
    return n;
}

void RouteTable::clear() {
    WriterLock lock(mutex_);
    root_ = std::make_unique<Node>();
    count_.store(0, std::memory_order_relaxed);
}

void RouteTable::match(std::string_view topic, std::vector<uint32_t>& out) const {
    const size_t from = out.size();
    {
        ReaderLock lock(mutex_);
        collect(*root_, topic, 0, true, out);
    }
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(from), out.end());
    out.erase(std::unique(out.begin() + static_cast<std::ptrdiff_t>(from), out.end()), out.end());
}

}  // namespace mqttd::cluster
