/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Seeded synthetic data: plain Gaussian, clustered, and clustered with a
 * skewed query distribution (the EHI paper's appendix B case). Results
 * depend only on the arguments, not on the thread count.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "contrib/data/dataset.h"

namespace faiss_ehi {
namespace data {

/// n x d plain N(0, 1) vectors from `seed`.
std::vector<float> random_gaussian(idx_t n, int d, uint64_t seed);

/** Seeded synthetic clustered data: `nclusters` Gaussian centres (std 1 per
 * coordinate), each point a random centre plus Gaussian noise of std
 * `spread` per coordinate. Base and queries are drawn from the same
 * distribution. With nclusters <= 0 the points are plain N(0, 1). L2,
 * name "synthetic". */
Dataset make_synthetic(int d, idx_t nb, idx_t nq, int nclusters, float spread,
                       uint64_t seed);

/** Parameters of the skewed generator. The clusters are split into "hot"
 * ones (a minority: n_hot of them) and cold ones. The base puts only
 * `hot_doc_share` of its points in the hot clusters, the queries put
 * `hot_query_share` of theirs there: most queries target a minority of the
 * documents (appendix B: d1 >> d2, but most queries ask for D2). Within
 * each group the cluster is uniform. */
struct SkewedSyntheticParams {
    int d = 32;
    idx_t nb = 10000;
    idx_t nq = 1000;
    int nclusters = 64;
    int n_hot = 8;                ///< hot clusters, 1 <= n_hot < nclusters
    float hot_doc_share = 0.1f;   ///< share of base points in hot clusters
    float hot_query_share = 0.9f; ///< share of queries in hot clusters
    float spread = 0.3f;          ///< noise std per coordinate (centres: 1)
    uint64_t seed = 1234;
};

/// Skewed data set plus the generating cluster of every point.
struct SkewedSynthetic {
    Dataset ds;                     ///< L2, name "synthetic-skewed"
    std::vector<int> base_cluster;  ///< nb
    std::vector<int> query_cluster; ///< nq
    std::vector<int> hot_clusters;  ///< the n_hot hot cluster ids, sorted
};

/// Draw a skewed data set. Throws std::invalid_argument on bad parameters.
SkewedSynthetic make_skewed_synthetic(const SkewedSyntheticParams& p);

} // namespace data
} // namespace faiss_ehi
