// broker::PacketIdMap<T>: packet id (1..65535) → T, for a session's in-flight window.
//
// A std::map cost a node allocation per message sent and a free per ack. Packet ids of one
// session are handed out in sequence (Session::pid_for_seq), so `id & mask` spreads the live
// ids over consecutive slots: an open-addressed table with linear probing finds an id in its
// home slot almost always, and never allocates once it has grown to the window's size.
// Erase shifts the following run back (no tombstones), so a long-lived table stays as fast as
// a fresh one. The table grows at 1/2 load and never shrinks (clear() keeps the slots).
//
// Not thread-safe: one session's state, touched by its home worker only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace mqttd::broker {

template <typename T>
class PacketIdMap {
public:
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    bool contains(uint16_t id) const { return find(id) != nullptr; }

    T* find(uint16_t id) { return const_cast<T*>(static_cast<const PacketIdMap*>(this)->find(id)); }
    const T* find(uint16_t id) const {
        if (slots_.empty() || id == 0) {
            return nullptr;
        }
        for (size_t i = home(id);; i = next(i)) {
            const Slot& s = slots_[i];
            if (s.id == id) {
                return &s.value;
            }
            if (s.id == 0) {
                return nullptr;
            }
        }
    }

    // Inserts `id` (1..65535, not present) and returns its value.
    T& emplace(uint16_t id, T value) {
        if ((size_ + 1) * 2 > slots_.size()) {
            grow();
        }
        size_t i = home(id);
        while (slots_[i].id != 0) {
            i = next(i);
        }
        slots_[i].id = id;
        slots_[i].value = std::move(value);
        ++size_;
        return slots_[i].value;
    }

    // Removes `id`; false if it was not there.
    bool erase(uint16_t id) {
        if (slots_.empty() || id == 0) {
            return false;
        }
        size_t i = home(id);
        while (slots_[i].id != id) {
            if (slots_[i].id == 0) {
                return false;
            }
            i = next(i);
        }
        // Backward-shift deletion: move each later entry of the run into the hole when the
        // hole lies between its home slot and where it sits (cyclically).
        size_t hole = i;
        for (size_t j = next(i); slots_[j].id != 0; j = next(j)) {
            size_t h = home(slots_[j].id);
            bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
            if (movable) {
                slots_[hole].id = slots_[j].id;
                slots_[hole].value = std::move(slots_[j].value);
                hole = j;
            }
        }
        slots_[hole].id = 0;
        slots_[hole].value = T{};
        --size_;
        return true;
    }

    void clear() {
        for (Slot& s : slots_) {
            if (s.id != 0) {
                s.id = 0;
                s.value = T{};
            }
        }
        size_ = 0;
    }

    // f(uint16_t id, T& value) for every entry, in no particular order.
    template <typename F>
    void for_each(F&& f) {
        for (Slot& s : slots_) {
            if (s.id != 0) {
                f(s.id, s.value);
            }
        }
    }

private:
    struct Slot {
        uint16_t id = 0;  // 0: empty (packet id 0 is never used)
        T value{};
    };

    size_t home(uint16_t id) const { return id & (slots_.size() - 1); }
    size_t next(size_t i) const { return (i + 1) & (slots_.size() - 1); }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_ = std::vector<Slot>(old.empty() ? 8 : old.size() * 2);
        size_ = 0;
        for (Slot& s : old) {
            if (s.id != 0) {
                emplace(s.id, std::move(s.value));
            }
        }
    }

    std::vector<Slot> slots_;  // size 0 or a power of two
    size_t size_ = 0;
};

}  // namespace mqttd::broker
