/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

namespace faiss_ehi {
namespace data {

namespace {

void check_k(int k, int k_res, const char* fn) {
    if (k <= 0 || k > k_res) {
        throw std::invalid_argument(std::string(fn) + ": need 0 < k <= k_res" +
                                    " (k = " + std::to_string(k) +
                                    ", k_res = " + std::to_string(k_res) + ")");
    }
}

/// Grade of `label` in `relevant` (0 if absent). Lists are short.
int grade_of(const std::vector<std::pair<idx_t, int>>& relevant, idx_t label) {
    if (label < 0) {
        return 0;
    }
    for (const auto& p : relevant) {
        if (p.first == label) {
            return p.second;
        }
    }
    return 0;
}

/// Whether res[j] also appears at an earlier rank (a duplicate counts once).
bool seen_before(const idx_t* res, int j) {
    for (int i = 0; i < j; i++) {
        if (res[i] == res[j]) {
            return true;
        }
    }
    return false;
}

template <typename F>
double mean_over_queries(const RelevanceLists& relevant, const idx_t* res,
                         int k_res, F&& f) {
    if (relevant.empty()) {
        return 0;
    }
    double s = 0;
    for (size_t q = 0; q < relevant.size(); q++) {
        s += f(relevant[q], res + q * size_t(k_res));
    }
    return s / double(relevant.size());
}

} // namespace

double knn_recall_at_k(idx_t nq, const idx_t* gt, int k_gt, const idx_t* res,
                       int k_res, int k) {
    if (k > k_gt || k > k_res || k <= 0) {
        throw std::invalid_argument("knn_recall_at_k: k out of range");
    }
    if (nq <= 0) {
        return 0;
    }
    size_t hits = 0;
#pragma omp parallel for reduction(+ : hits)
    for (idx_t q = 0; q < nq; q++) {
        const idx_t* g = gt + size_t(q) * k_gt;
        const idx_t* r = res + size_t(q) * k_res;
        for (int i = 0; i < k; i++) {
            if (r[i] < 0) {
                continue;
            }
            for (int j = 0; j < k; j++) {
                if (r[i] == g[j]) {
                    hits++;
                    break;
                }
            }
        }
    }
    return double(hits) / (double(nq) * k);
}

double query_recall_at_k(const std::vector<std::pair<idx_t, int>>& relevant,
                         const idx_t* res, int k) {
    size_t nrel = 0;
    for (const auto& p : relevant) {
        nrel += p.second > 0;
    }
    if (nrel == 0) {
        return 0;
    }
    size_t hits = 0;
    for (int j = 0; j < k; j++) {
        if (grade_of(relevant, res[j]) > 0 && !seen_before(res, j)) {
            hits++;
        }
    }
    return double(hits) / double(nrel);
}

double query_ndcg_at_k(const std::vector<std::pair<idx_t, int>>& relevant,
                       const idx_t* res, int k) {
    double dcg = 0;
    for (int j = 0; j < k; j++) {
        int g = grade_of(relevant, res[j]);
        if (g > 0 && !seen_before(res, j)) {
            dcg += double(g) / std::log2(double(j) + 2.0);
        }
    }
    std::vector<int> grades;
    for (const auto& p : relevant) {
        if (p.second > 0) {
            grades.push_back(p.second);
        }
    }
    std::sort(grades.begin(), grades.end(), std::greater<int>());
    double idcg = 0;
    for (size_t j = 0; j < grades.size() && j < size_t(k); j++) {
        idcg += double(grades[j]) / std::log2(double(j) + 2.0);
    }
    return idcg > 0 ? dcg / idcg : 0;
}

double query_mrr_at_k(const std::vector<std::pair<idx_t, int>>& relevant,
                      const idx_t* res, int k) {
    for (int j = 0; j < k; j++) {
        if (grade_of(relevant, res[j]) > 0) {
            return 1.0 / double(j + 1);
        }
    }
    return 0;
}

double qrels_recall_at_k(const RelevanceLists& relevant, const idx_t* res,
                         int k_res, int k) {
    check_k(k, k_res, "qrels_recall_at_k");
    return mean_over_queries(relevant, res, k_res,
                             [&](const auto& rel, const idx_t* r) {
                                 return query_recall_at_k(rel, r, k);
                             });
}

double ndcg_at_k(const RelevanceLists& relevant, const idx_t* res, int k_res,
                 int k) {
    check_k(k, k_res, "ndcg_at_k");
    return mean_over_queries(relevant, res, k_res,
                             [&](const auto& rel, const idx_t* r) {
                                 return query_ndcg_at_k(rel, r, k);
                             });
}

double mrr_at_k(const RelevanceLists& relevant, const idx_t* res, int k_res,
                int k) {
    check_k(k, k_res, "mrr_at_k");
    return mean_over_queries(relevant, res, k_res,
                             [&](const auto& rel, const idx_t* r) {
                                 return query_mrr_at_k(rel, r, k);
                             });
}

double fraction_visited(size_t ndis, idx_t nq, idx_t ntotal) {
    if (nq <= 0 || ntotal <= 0) {
        return 0;
    }
    return double(ndis) / (double(nq) * double(ntotal));
}

} // namespace data
} // namespace faiss_ehi
