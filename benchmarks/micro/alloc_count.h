// Counts heap allocations per thread (t_allocs) by replacing the global operator new.
// Include from exactly one source file of a benchmark executable.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>

inline thread_local uint64_t t_allocs = 0;

// Not inlined: GCC 12 would pair the inlined malloc()/free() with operator new/delete and warn
// (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
    ++t_allocs;
    if (void* p = std::malloc(n == 0 ? 1 : n)) {
        return p;
    }
    throw std::bad_alloc();
}

[[gnu::noinline]] void operator delete(void* p) noexcept {
    std::free(p);
}

[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
