/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The measurement behind bench_visited: search a retrieval task's test
 * queries through an IVF-family index at a list of nprobe values (EHI's
 * beam, IVF's nprobe) and record, per setting, the fraction of documents
 * visited (Faiss's indexIVF_stats.ndis / (nq * ntotal)) and the quality
 * metrics by name; then read those curves at fixed visited fractions.
 */
#pragma once

#include <map>
#include <string>
#include <vector>

#include <faiss/Index.h>

#include "contrib/data/retrieval_task.h"

namespace ehi_cmdline {

/// One measured setting of a curve.
struct VisitedPoint {
    int nprobe = 0;     ///< 0 for exact search
    double visited = 0; ///< fraction of documents scanned per query
    std::map<std::string, double> metrics; ///< "recall@10", "ndcg@10", ...
    /** Relevance data: "recall@100" and "ndcg@10" of each test query, in
     * the task's order (their means are the metrics), so that two methods
     * can be compared query by query; empty for k-NN data. */
    std::map<std::string, std::vector<double>> per_query;
};

/// A method's curve.
struct VisitedCurve {
    std::string method; ///< "EHI", "IVF-Flat", "DE+IVF-Flat", "exact"
    std::vector<VisitedPoint> sweep;   ///< as measured, by nprobe
    std::vector<VisitedPoint> targets; ///< interpolated at fixed fractions
};

/// Metric names of a task: recall@10 for k-NN data; recall@10, recall@100,
/// ndcg@10 and mrr@10 for relevance data.
std::vector<std::string> task_metrics(const faiss_ehi::data::RetrievalTask& t);

/** The nprobe values of a sweep over an index with nlist lists, in
 * increasing order. By default 1, 2, 3, 4, 6, 8, 12, 16, ... (steps of
 * about sqrt(2)) up to nlist, nlist included. With `fine`, the denser
 * ladder for curves read at low fractions visited: 1 to 8, then steps of
 * about 1.25 while they stay <= nlist (nlist itself not added). */
std::vector<int> nprobe_ladder(int nlist, bool fine = false);

/** Where x = target falls on the curve (xs, ys): the indices of the two
 * points around it and the weight of the upper one, linear in log(x).
 * Two points at the same x: the better one alone. `found` is false when
 * target lies outside [min x, max x]. */
struct LogXBracket {
    bool found = false;
    size_t lo = 0, hi = 0;
    double weight = 0; ///< y = ys[lo] + weight * (ys[hi] - ys[lo])
};
LogXBracket bracket_log_x(const std::vector<double>& xs,
                          const std::vector<double>& ys, double target);

/** Linear interpolation of y at x = target on the curve (xs, ys), done in
 * log(x) (bracket_log_x). Returns NaN when target lies outside
 * [min x, max x]. */
double interpolate_log_x(std::vector<double> xs, std::vector<double> ys,
                         double target);

/** Search `xq` (nq rows in `index`'s input space, the task's test queries
 * in order) at each nprobe through `index`, whose IVF part
 * (faiss::extract_index_ivf) gets the nprobe, and score the results; stop
 * after the first point that visits at least `stop_at` of the documents. */
std::vector<VisitedPoint> sweep_nprobe(faiss::Index& index, const float* xq,
                                       const faiss_ehi::data::RetrievalTask& t,
                                       const std::vector<int>& nprobes,
                                       double stop_at = 2.0);

/// Exact search (any index that scans everything): one point at 100%.
/** The adaptive beam's curve: `index`'s EHI tree quantizer gets each
 * mass threshold in turn (min_beam 1, nprobe = cap), in the order given
 * (largest first: fewest documents first); the threshold is recorded as the
 * point's "mass_threshold" metric. Stops like sweep_nprobe. Throws if the
 * IVF's quantizer is not an EHI tree. */
std::vector<VisitedPoint> sweep_mass(faiss::Index& index, const float* xq,
                                     const faiss_ehi::data::RetrievalTask& t,
                                     int cap,
                                     const std::vector<double>& thresholds,
                                     double stop_at = 2.0);

VisitedPoint exact_point(faiss::Index& index, const float* xq,
                         const faiss_ehi::data::RetrievalTask& t);

/** Each metric interpolated (in log visited) at each target fraction;
 * NaN where the sweep does not reach the target. The per-query values are
 * read between the same two settings as their metric, with the same
 * weight, so that they average to it. */
std::vector<VisitedPoint> at_visited(const std::vector<VisitedPoint>& sweep,
                                     const std::vector<double>& targets);

/** The upper envelope of several sweeps in `metric`: every measured point
 * that beats all points of fewer (or as many) documents visited, in
 * increasing visited order, then a copy of the last one at the largest
 * fraction any sweep measured (a larger budget can still use the best
 * setting found). Read it at targets with at_visited like any sweep. */
std::vector<VisitedPoint> upper_envelope(
        const std::vector<const std::vector<VisitedPoint>*>& sweeps,
        const std::string& metric);

} // namespace ehi_cmdline
