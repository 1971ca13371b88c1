// RetainedIndex: see storage/retained_index.h.
#include "storage/retained_index.h"

#include <utility>

#include "storage/keys.h"

namespace mqttd::storage {
namespace {

// The levels of `s`, split at `sep`; "a//b" has an empty middle level.
std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> levels;
    size_t start = 0;
    for (;;) {
        const size_t at = s.find(sep, start);
        if (at == std::string_view::npos) {
            levels.push_back(s.substr(start));
            return levels;
        }
        levels.push_back(s.substr(start, at - start));
        start = at + 1;
    }
}

bool is_dollar(std::string_view level) {
    return !level.empty() && level[0] == '$';
}

}  // namespace

void RetainedIndex::insert(std::string_view key) {
    WriterLock lock(lock_);
    Node* n = &root_;
    for (std::string_view level : split(key, keys::kSep)) {
        auto it = n->children.find(level);
        if (it == n->children.end()) {
            it = n->children.emplace(std::string(level), std::make_unique<Node>()).first;
        }
        n = it->second.get();
    }
    if (!n->retained) {
        n->retained = true;
        ++size_;
    }
}

void RetainedIndex::erase(std::string_view key) {
    WriterLock lock(lock_);
    const std::vector<std::string_view> levels = split(key, keys::kSep);
    std::vector<std::pair<Node*, Children::iterator>> path;
    path.reserve(levels.size());
    Node* n = &root_;
    for (std::string_view level : levels) {
        auto it = n->children.find(level);
        if (it == n->children.end()) {
            return;
        }
        path.emplace_back(n, it);
        n = it->second.get();
    }
    if (!n->retained) {
        return;
    }
    n->retained = false;
    --size_;
    // Prune from the leaf up while a node holds neither a topic nor children.
    while (!path.empty()) {
        auto [parent, it] = path.back();
        const Node& child = *it->second;
        if (child.retained || !child.children.empty()) {
            break;
        }
        parent->children.erase(it);
        path.pop_back();
    }
}

size_t RetainedIndex::size() const {
    ReaderLock lock(lock_);
    return size_;
}

namespace {

// The walk of one filter; `key` is the path so far, each level followed by 0x00.
template <typename Node>
class Walk {
public:
    Walk(const std::vector<std::string_view>& levels, std::vector<std::string>& out)
        : levels_(levels), out_(out) {}

    void at(const Node& n, size_t i, std::string& key) {
        const std::string_view level = levels_[i];
        if (level == "#") {
            if (i > 0 && n.retained) {
                out_.emplace_back(key.data(), key.size() - 1);  // the parent [MQTT-4.7.1-2]
            }
            all(n, key, i == 0);
            return;
        }
        if (level == "+") {
            for (const auto& [name, child] : n.children) {
                if (i == 0 && is_dollar(name)) {
                    continue;  // [MQTT-4.7.2-1]
                }
                into(*child, name, i, key);
            }
            return;
        }
        auto it = n.children.find(level);
        if (it != n.children.end()) {
            into(*it->second, it->first, i, key);
        }
    }

private:
    void into(const Node& child, std::string_view name, size_t i, std::string& key) {
        const size_t mark = key.size();
        key.append(name);
        if (i + 1 == levels_.size()) {
            if (child.retained) {
                out_.push_back(key);
            }
        } else {
            key.push_back(keys::kSep);
            at(child, i + 1, key);
        }
        key.resize(mark);
    }

    // Every topic below `n`, each before its own subtree: ascending key order.
    void all(const Node& n, std::string& key, bool skip_dollar) {
        for (const auto& [name, child] : n.children) {
            if (skip_dollar && is_dollar(name)) {
                continue;
            }
            const size_t mark = key.size();
            key.append(name);
            if (child->retained) {
                out_.push_back(key);
            }
            key.push_back(keys::kSep);
            all(*child, key, false);
            key.resize(mark);
        }
    }

    const std::vector<std::string_view>& levels_;
    std::vector<std::string>& out_;
};

}  // namespace

void RetainedIndex::match(std::string_view filter, std::vector<std::string>& out) const {
    const std::vector<std::string_view> levels = split(filter, '/');
    std::string key;
    ReaderLock lock(lock_);
    Walk<Node>(levels, out).at(root_, 0, key);
}

}  // namespace mqttd::storage
