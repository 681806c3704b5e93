/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <faiss_ehi/TreeTrainer.h>
#include <faiss_ehi/trainer/ProbeTrainer.h>
#include <faiss_ehi/trainer/RoutingTrainer.h>

namespace faiss_ehi {
namespace trainer {

/** The LibTorch tree trainer behind EHITreeQuantizer::train (and so every
 * EHI index's train()), for data without separate queries.
 *
 * Default (per-node trees, kmeans.flat_leaves), the learned-probing recipe:
 * 1. flat k-means leaves in balanced groups, documents at their nearest
 *    leaf, GROUPED routing started at nearest-centroid (KMeansTreeTrainer);
 * 2. a KnnSample of up to `n_queries` training vectors as queries with
 *    their exact k nearest neighbours (self excluded);
 * 3. ProbeTrainer (`probe`): multi-label probing targets, early stopping
 *    on held-out training queries;
 * 4. ProbeCalibration on another sample (size penalty, group expansion).
 *
 * Otherwise (paper form, or flat_leaves off), the earlier recipe:
 * hierarchical k-means, targets at the leaves where the tree (or, with
 * targets_at_nearest_leaf, the nearest representative) puts the
 * neighbours, and RoutingTrainer (`routing`) over path probabilities.
 * With fewer than 2 training vectors only the k-means step is done. */
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

    RoutingTrainer routing;     ///< the learning step; verbose also from q
    ProbeTrainer probe;         ///< the learned-probing step (default recipe)
    idx_t calib_queries = 2000; ///< queries of the calibration sample

    /// Statistics of the last train_tree call.
    RoutingTrainerStats last_stats;
    ProbeTrainerStats last_probe_stats; ///< of the default recipe
    /// Default recipe: documents per leaf of the training vectors, as
    /// filed (nearest leaf) in the last train_tree call.
    std::vector<idx_t> last_leaf_sizes;

    std::string name() const override;
    void train_tree(EHITreeQuantizer& q, idx_t n, const float* x) override;

  private:
    void train_probing(EHITreeQuantizer& q, idx_t n, const float* x);
};

/** The process's default TorchTreeTrainer: one instance, created on first
 * use, the one that register_torch_trainer() and the self-registration
 * install (settings changed on it stay in effect). */
std::shared_ptr<TorchTreeTrainer> default_torch_trainer();

/** Register default_torch_trainer() for every later train(), as an
 * explicit choice (faiss_ehi::set_tree_trainer): it replaces any other
 * trainer. Idempotent: calling it again, or after the self-registration,
 * leaves the same instance registered.
 *
 * Linking the CMake target faiss_ehi::trainer is enough without this call:
 * the object that defines faiss_ehi_trainer_self_registration registers
 * default_torch_trainer() from a static initializer, unless the program
 * chose a trainer with set_tree_trainer before (see
 * faiss_ehi::set_default_tree_trainer), and the target's link option
 * --undefined=faiss_ehi_trainer_self_registration makes the linker take
 * that object from the static archive although nothing calls into it. */
void register_torch_trainer();

} // namespace trainer
} // namespace faiss_ehi
