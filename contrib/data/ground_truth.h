/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Exact k nearest neighbours with faiss::IndexFlat (L2 or inner product),
 * cached on disk. A cache file is keyed by the data set's name, the metric,
 * k and a 64-bit hash of the data (d, nb, nq, base and query bytes); its
 * content carries the same key and a checksum, and any mismatch, short
 * read or bad checksum makes it be recomputed and rewritten, never trusted.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <faiss/MetricType.h>

#include "contrib/data/dataset.h"

namespace faiss_ehi {
namespace data {

/** Exact k nearest neighbours of the queries in the base with
 * faiss::IndexFlat (L2 or inner product), nq x k labels; distances too when
 * `distances` is not null (resized to nq x k). */
std::vector<idx_t> exact_knn(int d, idx_t nb, const float* xb, idx_t nq,
                             const float* xq, int k,
                             faiss::MetricType metric = faiss::METRIC_L2,
                             std::vector<float>* distances = nullptr);

/// nq x k exact neighbours, best first.
struct GroundTruth {
    int k = 0;
    idx_t nq = 0;
    std::vector<idx_t> labels;    ///< nq x k
    std::vector<float> distances; ///< nq x k (L2: squared distances)
    bool from_cache = false;      ///< read from a valid cache file
    std::string cache_path;       ///< the file used, empty without caching
};

/** $FAISS_EHI_GT_CACHE when set, else $HOME/.cache/faiss-ehi/gt. */
std::string default_gt_cache_dir();

/// 64-bit hash of a data set's shape and bytes (the cache key's data part).
uint64_t hash_dataset(int d, idx_t nb, const float* xb, idx_t nq,
                      const float* xq);

/** The cache file name for a key: NAME-METRIC-kK-HASH.gt in `cache_dir`
 * (NAME reduced to [A-Za-z0-9._-], METRIC "L2" or "IP", HASH 16 hex). */
std::string gt_cache_path(const std::string& cache_dir, const std::string& name,
                          faiss::MetricType metric, int k, uint64_t data_hash);

/** Exact k-NN, from the cache when a valid entry exists, else computed
 * with exact_knn and written to the cache (atomically; a failure to write
 * only prints a warning on stderr). `cache_dir` empty: no caching. The
 * metric must be METRIC_L2 or METRIC_INNER_PRODUCT. */
GroundTruth compute_ground_truth(
        const std::string& name, int d, idx_t nb, const float* xb, idx_t nq,
        const float* xq, int k, faiss::MetricType metric,
        const std::string& cache_dir = default_gt_cache_dir());

/// The same for a Dataset (its name, vectors and metric).
GroundTruth compute_ground_truth(
        const Dataset& ds, int k,
        const std::string& cache_dir = default_gt_cache_dir());

} // namespace data
} // namespace faiss_ehi
