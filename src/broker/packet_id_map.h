// broker::PacketIdMap<T>: packet id (1..65535) → T, for a session's in-flight window.
//
// A std::map cost a node allocation per message sent and a free per ack. Packet ids of one
// session are handed out in sequence (Session::pid_for_seq), so `id & mask` spreads the live
// ids over consecutive slots: an open-addressed table with linear probing in Robin Hood order
// finds an id in its home slot almost always, and never allocates once it has grown to the
// window's size. Erase shifts back only the displaced entries after it (no tombstones), so a
// long-lived table stays as fast as a fresh one and an ack costs O(1) even when the window's
// ids fill one long run of slots (plain linear probing would scan that whole run per erase).
// The table grows at 1/2 load and never shrinks (clear() keeps the slots).
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

    T* find(uint16_t id) {
        size_t i = slot_of(id);
        return i == kNone ? nullptr : &slots_[i].value;
    }
    const T* find(uint16_t id) const {
        size_t i = slot_of(id);
        return i == kNone ? nullptr : &slots_[i].value;
    }

    // Inserts `id` (1..65535, not present) and returns its value.
    T& emplace(uint16_t id, T value) {
        if ((size_ + 1) * 2 > slots_.size()) {
            grow();
        }
        ++size_;
        // Robin Hood insertion: an entry further from its home takes the slot of one nearer to
        // its own, which moves on; the first displacement is where `id` ends up.
        Slot carry{id, std::move(value)};
        size_t placed = kNone;
        for (size_t i = home(id), d = 0;; i = next(i), ++d) {
            Slot& s = slots_[i];
            if (s.id == 0) {
                s = std::move(carry);
                return slots_[placed == kNone ? i : placed].value;
            }
            if (size_t sd = distance(i); sd < d) {
                std::swap(s, carry);
                if (placed == kNone) {
                    placed = i;
                }
                d = sd;
            }
        }
    }

    // Removes `id`; false if it was not there.
    bool erase(uint16_t id) {
        size_t hole = slot_of(id);
        if (hole == kNone) {
            return false;
        }
        // Backward shift: the following entries that are not in their home slot move one slot
        // back; the run ends at an empty slot or an entry at home (Robin Hood keeps it short:
        // ids in sequence sit at home, so an in-order ack moves nothing).
        for (size_t j = next(hole); slots_[j].id != 0 && distance(j) > 0; j = next(j)) {
            slots_[hole] = std::move(slots_[j]);
            hole = j;
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
    static constexpr size_t kNone = static_cast<size_t>(-1);

    struct Slot {
        uint16_t id = 0;  // 0: empty (packet id 0 is never used)
        T value{};
    };

    // The slot holding `id`, or kNone. Robin Hood order: once a slot's entry sits closer to its
    // home than `id` would at this slot, `id` is not in the table.
    size_t slot_of(uint16_t id) const {
        if (slots_.empty() || id == 0) {
            return kNone;
        }
        for (size_t i = home(id), d = 0;; i = next(i), ++d) {
            if (slots_[i].id == id) {
                return i;
            }
            if (slots_[i].id == 0 || distance(i) < d) {
                return kNone;
            }
        }
    }

    size_t home(uint16_t id) const { return id & (slots_.size() - 1); }
    size_t next(size_t i) const { return (i + 1) & (slots_.size() - 1); }
    // How far the entry in slot i sits from its home slot.
    size_t distance(size_t i) const { return (i - home(slots_[i].id)) & (slots_.size() - 1); }

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
