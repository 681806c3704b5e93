/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <vector>

#include <faiss/MetricType.h>

#include <faiss_ehi/EHITree.h>

namespace faiss_ehi {

/** k-means initialisation of an EHITree through faiss::Clustering, where the
 * trainer starts: a balanced start keeps training from collapsing the tree.
 *
 * Per-node form: hierarchical k-means. The root's B children are the k-means
 * centroids of all vectors; every node's children are the k-means centroids
 * of the vectors assigned to it. Node classifiers embed nearest-centroid
 * routing: W_v = 2 T c, b_v = -T |c|^2 (L2), W_v = T c (inner product,
 * spherical k-means).
 *
 * Paper form: residual k-means per level (level h clusters the residuals to
 * the sum of the centroids chosen above), which the paper's shared W_h can
 * express exactly with U_h = 0: the score 2T r.(u - prefix) - T|r|^2 splits
 * into an input part (W^emb), one-hot path rows (the prefix) and the bias.
 *
 * In both forms the leaf centroids (B^H x m) are returned: they become the
 * leaf representatives. */
struct EHITreeKMeansInit {
    int niter = 20;                    ///< k-means iterations
    int seed = 1234;                   ///< k-means seed
    int max_points_per_centroid = 256; ///< sample size per centroid
    bool verbose = false;
    /** Softmax temperature multiplier T; 0 picks it from the data: 10 over
     * the mean squared distance to the nearest level-1 centroid (L2), or
     * 30 over the mean squared norm (inner product). */
    float temperature = 0;

    /** Per-node form: Lloyd iterations over all B^H leaf centroids after
     * the hierarchical k-means, so that every vector sits at its nearest
     * leaf centroid (not only the nearest among its parent's children);
     * the inner nodes' centroids become the means of their leaves'
     * vectors. Closes part of the gap to flat k-means. */
    int leaf_refine_iters = 0;

    /** Per-node form: instead of nested k-means, the B^H leaves are the
     * centroids of one flat k-means over all vectors (the cells of Faiss
     * IVF with B^H lists), grouped bottom-up into balanced groups of B
     * (balanced_groups.h) that form the inner nodes. Every node starts at
     * nearest-centroid routing with one temperature per level, the tree's
     * strategy becomes GROUPED, so that with every group expanded it
     * probes exactly in IVF's order. */
    bool flat_leaves = false;

    /// Initialise `tree` from n vectors (n x tree.m); fills leaf_centroids.
    void init(EHITree& tree, idx_t n, const float* x, faiss::MetricType metric,
              std::vector<float>* leaf_centroids) const;

  private:
    void init_flat_grouped(EHITree& tree, idx_t n, const float* x, bool ip,
                           const std::vector<float>& mean,
                           std::vector<float>* leaf_centroids) const;
    void set_node_classifiers(EHITree& tree, int h,
                              const std::vector<float>& child_centroids,
                              float T, bool ip) const;
    void refine_leaves(const EHITree& tree, idx_t n, const float* x, bool ip,
                       std::vector<std::vector<float>>& depth_centroids) const;
};

} // namespace faiss_ehi
