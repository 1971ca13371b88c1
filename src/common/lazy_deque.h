// LazyDeque<T>: a std::deque that allocates nothing until the first element arrives.
// libstdc++'s std::deque allocates its map and a 512-byte node on construction; a broker
// holds several queues per connection and session, most of them empty most of the time, so an
// idle connection would pay kilobytes for nothing. Same thread-safety as std::deque.
#pragma once

#include <deque>
#include <memory>
#include <utility>

namespace mqttd {

template <typename T>
class LazyDeque {
public:
    using iterator = typename std::deque<T>::iterator;
    using const_iterator = typename std::deque<T>::const_iterator;

    bool empty() const { return !q_ || q_->empty(); }
    size_t size() const { return q_ ? q_->size() : 0; }

    // REQUIRES: !empty()
    T& front() { return q_->front(); }
    const T& front() const { return q_->front(); }
    T& back() { return q_->back(); }
    const T& back() const { return q_->back(); }
    T& operator[](size_t i) { return (*q_)[i]; }
    const T& operator[](size_t i) const { return (*q_)[i]; }
    void pop_front() { q_->pop_front(); }

    void push_back(T v) { get().push_back(std::move(v)); }
    void push_front(T v) { get().push_front(std::move(v)); }
    template <typename... Args>
    T& emplace_back(Args&&... args) {
        return get().emplace_back(std::forward<Args>(args)...);
    }
    void clear() { q_.reset(); }
    // Gives the memory back when empty (called at quiet times, not per element, so a queue in
    // steady use does not allocate per message).
    void shrink() {
        if (q_ && q_->empty()) {
            q_.reset();
        }
    }

    iterator begin() { return get().begin(); }
    iterator end() { return get().end(); }

private:
    std::deque<T>& get() {
        if (!q_) {
            q_ = std::make_unique<std::deque<T>>();
        }
        return *q_;
    }
    std::unique_ptr<std::deque<T>> q_;
};

}  // namespace mqttd
