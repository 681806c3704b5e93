/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/ProbeCalibration.h>

namespace faiss_ehi {
namespace trainer {

/// What one ProbeTrainer::train() run measured.
struct ProbeTrainerStats {
    idx_t n_train = 0;
    idx_t n_heldout = 0;
    /** Held-out mean budget recall (ProbeTrainer::budgets) of the input
     * tree (entry 0) and after each epoch (1..epochs). */
    std::vector<double> heldout_recall;
    std::vector<double> train_loss; ///< mean training loss per epoch
    int best_epoch = 0;             ///< epoch whose weights were kept
};

/** Learned probing for a GROUPED tree (LIRA's idea on EHI's classifiers):
 * the leaf level is one linear classifier over all B^H leaves (the
 * per-node leaf weights side by side), trained so that softmax(W u + b)
 * matches, for each training query, the share of its k nearest
 * neighbours stored in each leaf (multi-label cross-entropy); for H = 2
 * the root is trained toward the same shares summed per group, so that the
 * groups it expands hold the neighbours. A learnable scale per level
 * starts at 1. The start is the tree as given (nearest-centroid routing
 * for a FlatKMeans tree), and the weights kept are those of the epoch
 * with the best held-out budget recall (epoch 0 included), so training
 * never returns a router worse than its start on held-out training
 * queries. Deeper trees train the leaf level only.
 *
 * Deterministic for a fixed seed and thread count. */
struct ProbeTrainer {
    int epochs = 20;
    int batch_size = 256;
    double learning_rate = 2e-3; ///< Adam
    double holdout = 0.2;        ///< share of the queries held out
    uint64_t seed = 1234;
    int threads = 0;      ///< 0: leave thread counts as they are
    bool verbose = false; ///< a line per epoch on stdout
    /// Fractions of the documents at which held-out recall is measured.
    std::vector<double> budgets = {0.005, 0.01, 0.02, 0.05};

    /** Train tree (per-node form, trained) on the sample's queries.
     * doc_leaf: the leaf of each of ndocs documents (the sample's
     * neighbour ids index it). Throws faiss::FaissException on bad
     * input. */
    ProbeTrainerStats train(EHITree& tree, const KnnSample& sample,
                            const idx_t* doc_leaf, idx_t ndocs) const;

    /** The multi-label targets of queries `ids` (nb of them) of a sample:
     * nb x nleaves, row r the share of query ids[r]'s neighbours stored in
     * each leaf (neighbours of id -1 skipped; a row with none is all 0). */
    static std::vector<float> targets(const KnnSample& sample, const idx_t* ids,
                                      idx_t nb, const idx_t* doc_leaf,
                                      idx_t nleaves);
};

} // namespace trainer
} // namespace faiss_ehi
