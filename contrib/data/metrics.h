/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Retrieval metrics. Results are row-major nq x k_res label arrays, best
 * first; labels < 0 (Faiss's "no result") never match.
 *
 * - knn_recall_at_k: share of the true k nearest neighbours found in the
 *   top k (ann-benchmarks' recall@k).
 * - From graded relevance (qrels), as BEIR / pytrec_eval compute them:
 *   Recall@k = |relevant in top k| / |relevant|, nDCG@k with linear gain
 *   (grade) and log2(rank + 1) discount, the ideal DCG from the qrels'
 *   grades sorted down, MRR@k = 1 / rank of the first relevant result in
 *   the top k (0 if none). Each is averaged over the evaluated queries.
 * - fraction_visited = ndis / (nq * ntotal).
 */
#pragma once

#include <cstddef>
#include <vector>

#include "contrib/data/beir.h"

namespace faiss_ehi {
namespace data {

/** Mean over queries of |top-k of res ∩ top-k of gt| / k. `gt` is
 * nq x k_gt, `res` nq x k_res; needs 0 < k <= k_gt and k <= k_res (throws
 * std::invalid_argument otherwise). Returns 0 when nq <= 0. */
double knn_recall_at_k(idx_t nq, const idx_t* gt, int k_gt, const idx_t* res,
                       int k_res, int k);

/** Per-query metrics from graded relevance. `relevant[q]` lists (doc, grade)
 * with grade > 0 for evaluated query q; `res` holds relevant.size() rows of
 * k_res labels. Needs 0 < k <= k_res. Queries with an empty list count as
 * 0 for recall and nDCG (make_eval_set drops them). */
double qrels_recall_at_k(const RelevanceLists& relevant, const idx_t* res,
                         int k_res, int k);
double ndcg_at_k(const RelevanceLists& relevant, const idx_t* res, int k_res,
                 int k = 10);
double mrr_at_k(const RelevanceLists& relevant, const idx_t* res, int k_res,
                int k = 10);

/// The same for one query (res: its k_res labels).
double query_recall_at_k(const std::vector<std::pair<idx_t, int>>& relevant,
                         const idx_t* res, int k);
double query_ndcg_at_k(const std::vector<std::pair<idx_t, int>>& relevant,
                       const idx_t* res, int k);
double query_mrr_at_k(const std::vector<std::pair<idx_t, int>>& relevant,
                      const idx_t* res, int k);

/// ndis / (nq * ntotal); 0 when nq or ntotal is 0.
double fraction_visited(size_t ndis, idx_t nq, idx_t ntotal);

} // namespace data
} // namespace faiss_ehi
