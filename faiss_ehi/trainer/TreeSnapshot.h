/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <string>
#include <vector>

#include <cstdint>
#include <memory>
#include <vector>

#include <faiss/MetricType.h>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/IndexEHITree.h>

namespace faiss_ehi {
namespace trainer {

/// Leaf occupancy of an index (docs/DESIGN.md, "Load balance and the
/// collapse guard").
struct LoadStats {
    double max_load = 0;      ///< largest list / (N / L)
    double expected_load = 0; ///< (sum_l c_l^2 / N) / (N / L)
    int empty_leaves = 0;
};

/// Load figures of lists with these sizes.
LoadStats load_stats(const std::vector<idx_t>& list_sizes);

/** "" when the load is healthy (no empty leaf, expected load <= limit
 * times ideal), else a sentence with the figures (the collapse guard). */
std::string collapse_report(const LoadStats& s, size_t nleaves, double limit);

/** The joint trainer's view of its current state through faiss_ehi itself:
 * the tree (TorchTree::to_ehi) as an IndexEHITree holding all encoded
 * documents, routed by the serving code. Used for hard negatives, leaf
 * loads and held-out recall, so that training sees what the built index
 * will do. Torch-free. */
struct TreeSnapshot {
    std::unique_ptr<IndexEHITree> index;

    /** Index the nd encoded documents (nd x tree.m) under `tree`; leaf
     * representatives are the means of the documents routed to each leaf
     * (or `start_reps` where a leaf gets none, if given). With
     * keep_start_reps the representatives are `start_reps` as given (the
     * joint trainer's fixed_leaves). */
    void build(const EHITree& tree, faiss::MetricType metric, int64_t nd,
               const float* docs, DocAssignRule rule, int d2l,
               const std::vector<float>* start_reps = nullptr,
               bool keep_start_reps = false);

    LoadStats loads() const;

    /// Top-k documents (ids, -1 padded) of n encoded queries at `beam`.
    std::vector<idx_t> search(int64_t n, const float* q, int k, int beam) const;
};

/** The `count` best-scoring documents in the leaves each query's beam
 * reaches that are not relevant to it: relevant[i] lists query i's
 * relevant documents (sorted). Returns one list per query (may be short). */
std::vector<std::vector<int64_t>> mine_hard_negatives(
        const TreeSnapshot& snap, int64_t n, const float* q,
        const std::vector<std::vector<int64_t>>& relevant, int beam, int count);

/** Mean over queries of the share of their relevant documents (sorted
 * lists) found in the top k at `beam`; -1 when n == 0. */
double recall_at(const TreeSnapshot& snap, int64_t n, const float* q,
                 const std::vector<std::vector<int64_t>>& relevant, int beam,
                 int k = 100);

} // namespace trainer
} // namespace faiss_ehi
