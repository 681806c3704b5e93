/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * A small portable random generator (SplitMix64) and a seeded permutation
 * whose results are the same with every standard library (std::shuffle and
 * the std distributions are implementation-defined).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace faiss_ehi {
namespace data {

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, full period.
struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(uint64_t seed) : state(seed) {}

    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, n) (n > 0), by a 128-bit multiply (Lemire), without
    /// the rejection step: the bias is below n / 2^64.
    uint64_t below(uint64_t n) {
        return uint64_t((unsigned __int128)next() * n >> 64);
    }
    /// Uniform double in [0, 1).
    double uniform() {
        return double(next() >> 11) * (1.0 / 9007199254740992.0);
    }
};

/// A permutation of 0..n-1 (Fisher-Yates) from `seed`.
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed);

} // namespace data
} // namespace faiss_ehi
