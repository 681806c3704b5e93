/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/synthetic.h"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "contrib/data/random.h"

namespace faiss_ehi {
namespace data {

std::vector<float> random_gaussian(idx_t n, int d, uint64_t seed) {
    std::vector<float> x(size_t(n) * size_t(d));
    // One generator per block of rows so that the result does not depend on
    // the thread count.
    const idx_t block = 1024;
    idx_t nblocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static)
    for (idx_t b = 0; b < nblocks; b++) {
        std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + uint64_t(b));
        std::normal_distribution<float> g(0.0f, 1.0f);
        idx_t i1 = std::min(n, (b + 1) * block);
        for (size_t j = size_t(b * block) * d; j < size_t(i1) * d; j++) {
            x[j] = g(rng);
        }
    }
    return x;
}

Dataset make_synthetic(int d, idx_t nb, idx_t nq, int nclusters, float spread,
                       uint64_t seed) {
    if (d <= 0 || nb <= 0 || nq < 0) {
        throw std::invalid_argument("make_synthetic: bad sizes");
    }
    Dataset ds;
    ds.name = "synthetic";
    ds.d = d;
    ds.nb = nb;
    ds.nq = nq;
    ds.metric = faiss::METRIC_L2;
    if (nclusters <= 0) {
        ds.xb = random_gaussian(nb, d, seed);
        ds.xq = random_gaussian(nq, d, seed + 1);
        return ds;
    }
    std::vector<float> centres = random_gaussian(nclusters, d, seed);
    auto draw = [&](idx_t n, uint64_t s) {
        std::vector<float> x = random_gaussian(n, d, s);
        std::mt19937_64 rng(s ^ 0xC0FFEEULL);
        std::uniform_int_distribution<int> pick(0, nclusters - 1);
        for (idx_t i = 0; i < n; i++) {
            const float* c = centres.data() + size_t(pick(rng)) * d;
            float* xi = x.data() + size_t(i) * d;
            for (int j = 0; j < d; j++) {
                xi[j] = c[j] + spread * xi[j];
            }
        }
        return x;
    };
    ds.xb = draw(nb, seed + 1);
    ds.xq = draw(nq, seed + 2);
    return ds;
}

SkewedSynthetic make_skewed_synthetic(const SkewedSyntheticParams& p) {
    if (p.d <= 0 || p.nb <= 0 || p.nq < 0 || p.nclusters < 2 || p.n_hot < 1 ||
        p.n_hot >= p.nclusters || !(p.hot_doc_share >= 0) ||
        !(p.hot_doc_share <= 1) || !(p.hot_query_share >= 0) ||
        !(p.hot_query_share <= 1) || !(p.spread >= 0)) {
        throw std::invalid_argument("make_skewed_synthetic: bad parameters");
    }
    const int d = p.d;
    SkewedSynthetic out;
    // Hot clusters: the first n_hot of a seeded permutation.
    SplitMix64 rng(p.seed ^ 0x5EED5EEDULL);
    std::vector<int64_t> perm = random_permutation(p.nclusters, p.seed + 17);
    std::vector<int> hot(perm.begin(), perm.begin() + p.n_hot);
    std::vector<int> cold(perm.begin() + p.n_hot, perm.end());
    std::sort(hot.begin(), hot.end());
    std::sort(cold.begin(), cold.end());
    out.hot_clusters = hot;

    std::vector<float> centres = random_gaussian(p.nclusters, d, p.seed);
    auto draw = [&](idx_t n, float hot_share, uint64_t s,
                    std::vector<int>& cluster) {
        std::vector<float> x = random_gaussian(n, d, s);
        cluster.resize(size_t(n));
        for (idx_t i = 0; i < n; i++) {
            bool is_hot = rng.uniform() < double(hot_share);
            const std::vector<int>& group = is_hot ? hot : cold;
            int c = group[size_t(rng.below(group.size()))];
            cluster[size_t(i)] = c;
            const float* ci = centres.data() + size_t(c) * d;
            float* xi = x.data() + size_t(i) * d;
            for (int j = 0; j < d; j++) {
                xi[j] = ci[j] + p.spread * xi[j];
            }
        }
        return x;
    };
    Dataset& ds = out.ds;
    ds.name = "synthetic-skewed";
    ds.d = d;
    ds.nb = p.nb;
    ds.nq = p.nq;
    ds.metric = faiss::METRIC_L2;
    ds.xb = draw(p.nb, p.hot_doc_share, p.seed + 1, out.base_cluster);
    ds.xq = draw(p.nq, p.hot_query_share, p.seed + 2, out.query_cluster);
    return out;
}

} // namespace data
} // namespace faiss_ehi
