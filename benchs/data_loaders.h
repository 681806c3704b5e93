/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Helpers shared by the benchmark programs: data sets (Fashion-MNIST from the
 * Debian package, fvecs/ivecs, a seeded synthetic generator), exact ground
 * truth with faiss::IndexFlat, recall@k and a wall clock.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <faiss/MetricType.h>

namespace ehi_bench {

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

/// Where the Debian package dataset-fashion-mnist installs its files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/** Read an IDX image file (magic 0x00000803, big-endian header), plain or
 * gzip-compressed: `path` itself, or `path` + ".gz" if `path` is missing.
 * Returns n x (rows*cols) floats scaled to [0, 1]. Throws a
 * std::runtime_error naming the file on any error. */
std::vector<float> read_idx_images(const std::string& path, idx_t* n,
                                   int* rows, int* cols);

/** Fashion-MNIST: 60,000 train images as the base, 10,000 test images as the
 * queries, 784-d in [0, 1], L2. Throws, naming the package to install
 * (apt-get install dataset-fashion-mnist), if the files are missing. */
Dataset load_fashion_mnist(const std::string& dir = kFashionMnistDir);

/// Read an .fvecs file (per vector: int32 d, then d float32). Throws.
std::vector<float> fvecs_read(const std::string& path, int* d, idx_t* n);
/// Read an .ivecs file (per vector: int32 d, then d int32). Throws.
std::vector<int> ivecs_read(const std::string& path, int* d, idx_t* n);

/** Seeded synthetic clustered data: `nclusters` Gaussian centres (std 1 per
 * coordinate), each point a random centre plus Gaussian noise of std
 * `spread` per coordinate. Base and queries are drawn from the same
 * distribution. With nclusters <= 0 the points are plain N(0, 1). */
Dataset make_synthetic(int d, idx_t nb, idx_t nq, int nclusters,
                       float spread, uint64_t seed);

/// n x d plain N(0, 1) vectors from `seed`.
std::vector<float> random_gaussian(idx_t n, int d, uint64_t seed);

/** Exact k nearest neighbours of the queries in the base with
 * faiss::IndexFlat (L2 or inner product), n_q x k labels. */
std::vector<idx_t> exact_knn(int d, idx_t nb, const float* xb, idx_t nq,
                             const float* xq, int k,
                             faiss::MetricType metric = faiss::METRIC_L2);

/** Mean over queries of |top-k of result ∩ top-k of ground truth| / k.
 * `gt` is nq x k_gt, `res` nq x k_res; needs k <= k_gt and k <= k_res.
 * Labels < 0 in `res` never match. */
double recall_at_k(idx_t nq, const idx_t* gt, int k_gt, const idx_t* res,
                   int k_res, int k);

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
