/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * A base set and a query set of the same dimension, as the loaders return
 * them.
 */
#pragma once

#include <string>
#include <vector>

#include <faiss/Index.h>
#include <faiss/MetricType.h>

namespace faiss_ehi {
namespace data {

using idx_t = faiss::Index::idx_t;

/// A base set and a query set of the same dimension (row-major floats).
struct Dataset {
    std::string name;
    int d = 0;
    idx_t nb = 0;
    idx_t nq = 0;
    std::vector<float> xb; ///< nb x d
    std::vector<float> xq; ///< nq x d
    faiss::MetricType metric = faiss::METRIC_L2;

    /// Keep only the first nq queries (no-op if nq >= this->nq or nq <= 0).
    void truncate_queries(idx_t nq);
};

/// Scale each of the n rows of x (n x d) to unit L2 norm; zero rows stay 0.
void l2_normalize_rows(float* x, idx_t n, int d);

} // namespace data
} // namespace faiss_ehi
