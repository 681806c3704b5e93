/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Capacity-limited assignment of documents to leaves, and balanced k-means
 * built on it. The joint trainer re-clusters the moving encoder's documents
 * with these, so that the encoder can keep training while the tree trains
 * without the leaves collapsing (docs/DESIGN.md, "Relevance data: the
 * default recipe").
 * Torch-free.
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss/MetricType.h>

namespace faiss_ehi {
namespace trainer {

/** Leaf of each of n items given their scores (n x L, row-major, higher is
 * better), such that no leaf holds more than `capacity` items and, when
 * n >= L, no leaf is empty.
 *
 * Items are placed in order of decreasing regret (best score minus second
 * best), each at its best leaf that still has room: the items that lose
 * most by moving are placed first. Empty leaves are then filled with the
 * item that scores highest for them among leaves holding more than one.
 * Deterministic (ties broken by item and leaf number). Needs
 * capacity * L >= n. */
std::vector<int64_t> capacity_assign(int64_t n, int64_t L, const float* scores,
                                     int64_t capacity);

/// ceil(slack * n / L), at least 1: the capacity for a load limit of slack.
int64_t leaf_capacity(int64_t n, int64_t L, double slack);

/** Documents are stored at their nearest centroid, not at their capacity
 * assignment, and a centroid can be nobody's nearest (e.g. two balanced
 * groups of one dense cluster get nearly the same mean). When n >= L,
 * each such centroid moves onto the worst-fitting point (least similar to
 * its centroid) of the leaf with the most nearest points, which makes it
 * that point's nearest, until every leaf is some point's nearest (at most
 * L rounds; identical points can defeat it). Similarity as in
 * balanced_kmeans; the moved centroid is re-normalised when `normalize`.
 * Returns the number of moves. */
int64_t cover_every_leaf(int64_t n, int d, const float* x, int64_t L,
                         float* centroids, faiss::MetricType metric,
                         bool normalize);

/** Balanced k-means: `iters` rounds of capacity_assign (capacity from
 * `slack`) on the similarity of the n x d points to the L x d centroids
 * (inner product for METRIC_INNER_PRODUCT, minus squared L2 otherwise),
 * then each centroid the mean of its points (re-normalised when
 * `normalize`), then cover_every_leaf, since the index stores documents
 * at their nearest centroid. `centroids` (L x d) is the start
 * and the result; returns the points' leaves of the last capacity
 * assignment. */
std::vector<int64_t> balanced_kmeans(int64_t n, int d, const float* x,
                                     int64_t L, std::vector<float>& centroids,
                                     faiss::MetricType metric, bool normalize,
                                     double slack, int iters);

} // namespace trainer
} // namespace faiss_ehi
