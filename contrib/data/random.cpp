/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/random.h"

#include <utility>

namespace faiss_ehi {
namespace data {

std::vector<int64_t> random_permutation(int64_t n, uint64_t seed) {
    std::vector<int64_t> p(size_t(n > 0 ? n : 0));
    for (int64_t i = 0; i < n; i++) {
        p[size_t(i)] = i;
    }
    SplitMix64 rng(seed);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = int64_t(rng.below(uint64_t(i + 1)));
        std::swap(p[size_t(i)], p[size_t(j)]);
    }
    return p;
}

} // namespace data
} // namespace faiss_ehi
