// Result<T, E>: a value or an error, for code that must not throw (codec, broker).
// Header-only, no allocation of its own; thread-safety is that of T and E.
#pragma once

#include <cassert>
#include <utility>
#include <variant>

namespace mqttd {

template <typename E>
struct Err {
    // A constructor, not aggregate initialisation: clang 14 has no CTAD for parenthesised
    // aggregates, and Err(x) must deduce there too.
    explicit Err(E e) : error(std::move(e)) {}
    E error;
};

template <typename E>
Err(E) -> Err<E>;

template <typename T, typename E>
class [[nodiscard]] Result {
public:
    Result(T value)
        : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
    template <typename F>
    Result(Err<F> e) : v_(std::in_place_index<1>, E(std::move(e.error))) {}  // NOLINT

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    // REQUIRES: ok()
    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    // REQUIRES: !ok()
    const E& error() const {
        assert(!ok());
        return std::get<1>(v_);
    }

private:
    std::variant<T, E> v_;
};

}  // namespace mqttd
