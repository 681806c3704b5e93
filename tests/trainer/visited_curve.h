/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Skewed k-NN test data and recall@k against the fraction of documents
 * visited, for the trainer tests that compare routers at equal documents
 * visited.
 */
#pragma once

#include <vector>

#include <faiss/IndexIVF.h>

#include "contrib/data/ground_truth.h"
#include "contrib/data/metrics.h"
#include "contrib/data/synthetic.h"

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
            double t =
                    (v - c.visited[i - 1]) / (c.visited[i] - c.visited[i - 1]);
            return c.recall[i - 1] + t * (c.recall[i] - c.recall[i - 1]);
        }
    }
    return c.recall.back();
}

/// Skewed clustered data (most queries in a few "hot" clusters that hold
/// few documents), split into training and test queries.
struct SkewedData {
    int d = 16, k = 10;
    idx_t nb = 0, ntrain = 0, ntest = 0;
    std::vector<float> xb, xtrain, xtest;
    std::vector<idx_t> gt_test; ///< ntest x k
};

inline SkewedData skewed_data(idx_t nb, idx_t ntrain, idx_t ntest,
                              uint64_t seed) {
    faiss_ehi::data::SkewedSyntheticParams p;
    p.d = 16;
    p.nb = nb;
    p.nq = ntrain + ntest;
    p.nclusters = 32;
    p.n_hot = 4;
    p.hot_doc_share = 0.1f;
    p.hot_query_share = 0.9f;
    p.spread = 0.6f;
    p.seed = seed;
    faiss_ehi::data::SkewedSynthetic s =
            faiss_ehi::data::make_skewed_synthetic(p);
    SkewedData o;
    o.d = p.d;
    o.nb = nb;
    o.ntrain = ntrain;
    o.ntest = ntest;
    o.xb = s.ds.xb;
    o.xtrain.assign(s.ds.xq.begin(), s.ds.xq.begin() + ntrain * p.d);
    o.xtest.assign(s.ds.xq.begin() + ntrain * p.d, s.ds.xq.end());
    o.gt_test = faiss_ehi::data::exact_knn(o.d, nb, o.xb.data(), ntest,
                                           o.xtest.data(), o.k);
    return o;
}

} // namespace ehi_test
