/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Linked into every fuzz target: a memory budget. A corrupted size can ask
 * Faiss's readers (not instrumented, outside this project) for tens of
 * gigabytes, which ASan reports as a fatal out-of-memory and which ends
 * the run. Here operator new throws std::bad_alloc above 32 MiB instead, as
 * it would on a machine with that little memory, so the run goes on and
 * the code under test must handle the exception. The inputs are at most a
 * few kilobytes, so nothing they describe honestly comes near the budget.
 * It is that small because Faiss leaks what it had read of a file it
 * rejects: a few leaked tables of hundreds of megabytes each took a fuzzer
 * process past its RSS limit. Allocation goes through malloc / free, which
 * ASan still checks.
 */
#include <cstdlib>
#include <new>

namespace {

constexpr std::size_t kBudget = std::size_t(32) << 20;

void* allocate(std::size_t n) {
    if (n > kBudget) {
        throw std::bad_alloc();
    }
    void* p = std::malloc(n ? n : 1);
    if (!p) {
        throw std::bad_alloc();
    }
    return p;
}

} // namespace

void* operator new(std::size_t n) {
    return allocate(n);
}
void* operator new[](std::size_t n) {
    return allocate(n);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return n > kBudget ? nullptr : std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return n > kBudget ? nullptr : std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
