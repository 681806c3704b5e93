/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss/MetricType.h>

#include <faiss_ehi/EHITree.h>

namespace faiss_ehi {

struct EHITreeQuantizer;

/** Training queries with their exact nearest neighbours, drawn from the
 * training vectors themselves (each query's own row excluded): the k-NN
 * data a trainer can learn and tune probing on without test queries. */
struct KnnSample {
    idx_t nq = 0;
    int k = 0;
    int d = 0;
    std::vector<idx_t> rows;      ///< nq: the rows of x used as queries
    std::vector<float> queries;   ///< nq x d
    std::vector<idx_t> neighbors; ///< nq x k ids into x, -1 where none

    /** A seeded sample of min(nq, n) rows of x (n x d) and their k nearest
     * other rows in `metric` (exact, faiss::IndexFlat). */
    static KnnSample draw(idx_t n, int d, const float* x,
                          faiss::MetricType metric, idx_t nq, int k,
                          uint64_t seed);

    /** Throws unless the arrays have their sizes, d == dim and every
     * neighbour id is -1 or in [0, ndocs). `who` names the caller. */
    void check(int dim, idx_t ndocs, const char* who) const;
};

/** Throws unless every one of the ndocs leaves is in [0, nleaves). */
void check_doc_leaves(const idx_t* doc_leaf, idx_t ndocs, idx_t nleaves,
                      const char* who);

/** Share of the sample's neighbours found when each query probes leaves in
 * decreasing raw leaf logit (EHITree::all_leaf_logits, every group) plus
 * `bias` (L entries, or nullptr), until the leaves' sizes add up to
 * budget * ndocs documents; the leaf that crosses the budget counts pro
 * rata. One value per budget. */
std::vector<double> budget_recall(const EHITree& tree, const KnnSample& s,
                                  const idx_t* doc_leaf, idx_t ndocs,
                                  const std::vector<double>& budgets,
                                  const float* bias = nullptr);

/** Post-training calibration of a GROUPED tree on training queries:
 * 1. a size penalty: leaf logits get -alpha * log(1 + size of the leaf),
 *    alpha picked from `size_penalties` by the mean budget_recall over
 *    `budgets` (at equal documents visited a small leaf that holds a
 *    neighbour as often as a big one is the better probe), 0 kept unless
 *    another gains more than min_gain;
 * 2. the group expansion table (EHITree::group_expansion, height 2): per
 *    beam 2^j the fewest groups whose leaves hold `coverage` of the exact
 *    top-beam leaves of the flat ranking, on average; before it, a bonus
 *    on each group's root score proportional to the group's reach (the
 *    distance from its centre to its farthest leaf), its weight picked
 *    from `reach_bonuses` by the smallest table (0 kept on ties). */
struct ProbeCalibration {
    std::vector<double> budgets = {0.005, 0.01, 0.02, 0.05};
    std::vector<float> size_penalties = {0,    0.25f, 0.5f, 0.75f, 1,
                                         1.5f, 2,     3,    4};
    double coverage = 0.999;
    /** A size penalty is adopted only if it raises the mean budget recall
     * by more than this (smaller gains are within the sample's noise). */
    double min_gain = 0.002;
    std::vector<float> reach_bonuses = {0, 0.1f, 0.25f, 0.5f, 1, 2};

    // results of the last calibrate()
    float alpha = 0;                   ///< chosen size penalty
    float reach_bonus = 0;             ///< chosen reach-bonus weight
    std::vector<double> recall_before; ///< budget_recall with alpha = 0
    std::vector<double> recall_after;  ///< with the chosen alpha

    /** Calibrate q.tree in place. doc_leaf: the leaf of each of ndocs
     * training vectors (where the index will store them). */
    void calibrate(EHITreeQuantizer& q, const KnnSample& s,
                   const idx_t* doc_leaf, idx_t ndocs);
};

} // namespace faiss_ehi
