/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Recall@k against the fraction of documents visited, for the trainer
 * tests that compare routers at equal documents visited.
 */
#pragma once

#include <vector>

#include <faiss/IndexIVF.h>

#include "contrib/data/metrics.h"

namespace ehi_test {

using idx_t = faiss::Index::idx_t;

/// (fraction visited, recall@k) at each nprobe.
struct VisitedCurve {
    std::vector<double> visited, recall;
};

/** Search nq queries (k results) through `index` (an IVF, nb documents) at
 * each nprobe; recall against gt (nq x k exact neighbours). */
inline VisitedCurve measure_curve(const faiss::IndexIVF& index, idx_t nq,
                                  const float* xq, int k, const idx_t* gt,
                                  idx_t nb, const std::vector<int>& nprobes) {
    VisitedCurve c;
    std::vector<float> D(size_t(nq) * k);
    std::vector<idx_t> I(size_t(nq) * k);
    for (int np : nprobes) {
        faiss::SearchParametersIVF p;
        p.nprobe = np;
        faiss::indexIVF_stats.reset();
        index.search(nq, xq, k, D.data(), I.data(), &p);
        c.visited.push_back(faiss_ehi::data::fraction_visited(
                faiss::indexIVF_stats.ndis, nq, nb));
        c.recall.push_back(
                faiss_ehi::data::knn_recall_at_k(nq, gt, k, I.data(), k, k));
    }
    return c;
}

/// Recall interpolated linearly at visited fraction v (clamped at the ends).
inline double recall_at(const VisitedCurve& c, double v) {
    if (v <= c.visited.front()) {
        return c.recall.front();
    }
    for (size_t i = 1; i < c.visited.size(); i++) {
        if (v <= c.visited[i]) {
            double t = (v - c.visited[i - 1]) /
                    (c.visited[i] - c.visited[i - 1]);
            return c.recall[i - 1] + t * (c.recall[i] - c.recall[i - 1]);
        }
    }
    return c.recall.back();
}

} // namespace ehi_test
