/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <string>

#include <faiss_ehi/TreeTrainer.h>
#include <faiss_ehi/trainer/RoutingTrainer.h>

namespace faiss_ehi {
namespace trainer {

/** The LibTorch tree trainer behind EHITreeQuantizer::train (and so every
 * EHI index's train()), for data without separate queries:
 * 1. k-means initialisation (`kmeans`, a KMeansTreeTrainer, in the tree's form;
 *    the leaf centroids become the leaf representatives);
 * 2. training pairs from the data itself: a seeded sample of up to
 *    `n_queries` training vectors as queries, their exact k nearest
 *    neighbours among all training vectors (faiss::IndexFlat in the
 *    quantizer's metric, the query itself excluded);
 * 3. targets = the leaves where the k-means tree routes those neighbours
 *    (top-1, where documents will be stored), weight = share;
 * 4. RoutingTrainer (`routing`) on those pairs.
 * With fewer than 2 training vectors only step 1 is done. */
struct TorchTreeTrainer : faiss_ehi::TreeTrainer {
    // k-means initialisation (see EHITreeKMeansInit)
    KMeansTreeTrainer kmeans; ///< the starting tree (step 1)

    // training pairs
    idx_t n_queries = 10000; ///< sampled training vectors used as queries
    int k = 10;              ///< neighbours per query
    uint64_t sample_seed = 4321;
    /** Targets from the leaf with the nearest representative instead of
     * the tree's top-1 leaf: for indexes that store documents with
     * DocAssignRule::NEAREST_LEAF (documents stay at the k-means leaves and
     * only the query routing is learned). */
    bool targets_at_nearest_leaf = false;

    RoutingTrainer routing; ///< the learning step; verbose also from q

    /// Statistics of the last train_tree call.
    RoutingTrainerStats last_stats;

    std::string name() const override;
    void train_tree(EHITreeQuantizer& q, idx_t n, const float* x) override;
};

/** Register a default TorchTreeTrainer for every later train()
 * (faiss_ehi::set_tree_trainer). Explicit, because static
 * self-registration is unreliable with static libraries. */
void register_torch_trainer();

} // namespace trainer
} // namespace faiss_ehi
