/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Helpers shared by the benchmark programs. The data sets, ground truth and
 * recall live in the faiss_ehi_data library (contrib/data/); they are
 * re-exported here under their old ehi_bench names. What stays here is
 * benchmark-only: a wall clock, median, interpolation, JSON escaping and
 * thread control.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <faiss/MetricType.h>

#include "contrib/data/dataset.h"
#include "contrib/data/fashion_mnist.h"
#include "contrib/data/ground_truth.h"
#include "contrib/data/metrics.h"
#include "contrib/data/synthetic.h"
#include "contrib/data/vecs_io.h"

namespace ehi_bench {

using idx_t = faiss::Index::idx_t;

using faiss_ehi::data::Dataset;
using faiss_ehi::data::exact_knn;
using faiss_ehi::data::fvecs_read;
using faiss_ehi::data::ivecs_read;
using faiss_ehi::data::kFashionMnistDir;
using faiss_ehi::data::load_fashion_mnist;
using faiss_ehi::data::make_synthetic;
using faiss_ehi::data::random_gaussian;
using faiss_ehi::data::read_idx_images;

/// k-NN recall@k: faiss_ehi::data::knn_recall_at_k.
inline double recall_at_k(idx_t nq, const idx_t* gt, int k_gt,
                          const idx_t* res, int k_res, int k) {
    return faiss_ehi::data::knn_recall_at_k(nq, gt, k_gt, res, k_res, k);
}

/// Wall-clock seconds since an arbitrary epoch (steady clock).
double now_s();

/// Median of a non-empty list of values.
double median(std::vector<double> v);

/** Linear interpolation of y at x = target on the curve (xs, ys), done in
 * log(x). The points are sorted by x first. Returns NaN when target lies
 * outside [min x, max x]. */
double interpolate_log_x(std::vector<double> xs, std::vector<double> ys,
                         double target);

/// Escape a string for a JSON string literal (without the quotes).
std::string json_escape(const std::string& s);

/// A JSON number with 6 significant digits; NaN and infinities as null.
std::string json_number(double v);

/** Comma-separated integers ("1,2,4"). Throws std::invalid_argument naming
 * `flag` for a token that is not an integer or (with positive) not > 0. */
std::vector<int> parse_int_list(const std::string& s, const char* flag,
                                bool positive = true);

/** Set the number of OpenMP threads and, when the process runs on OpenBLAS,
 * OpenBLAS's own thread pool too (found with dlsym; a no-op elsewhere), so
 * that a "single thread" measurement includes BLAS calls. */
void set_num_threads(int nt);

/// Whether the process runs on OpenBLAS (its symbols are loaded).
bool running_on_openblas();

/** With OpenBLAS's pthread build, OpenBLAS's worker threads and spinning
 * OpenMP threads fight over the cores: multi-threaded timings come out 2 to
 * 30 times too slow and quantised to scheduler ticks. OMP_WAIT_POLICY must
 * be set before the OpenMP runtime starts, so when it is unset and OpenBLAS
 * is loaded this re-executes the program (/proc/self/exe, same argv) with
 * OMP_WAIT_POLICY=PASSIVE. Call first thing in main. Returns only when no
 * re-execution was needed or it failed. */
void reexec_with_passive_omp(char** argv);

} // namespace ehi_bench
