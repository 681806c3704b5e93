/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss_ehi/EHITree.h>

namespace faiss_ehi {
namespace trainer {

/** For each of n queries a set of target leaves with weights, in CSR form:
 * the targets of query i are leaves[offsets[i] .. offsets[i+1]) with the
 * same range of weights. Weights must be >= 0 with a positive sum per
 * query; they are normalised to sum 1 per query by the trainer. A leaf may
 * appear several times for one query (its weights add up). */
struct RoutingTargets {
    std::vector<idx_t> offsets; ///< n + 1, offsets[0] = 0, non-decreasing
    std::vector<idx_t> leaves;  ///< offsets[n] leaf ids in [0, B^H)
    std::vector<float> weights; ///< offsets[n] weights

    idx_t size() const {
        return offsets.empty() ? 0 : idx_t(offsets.size()) - 1;
    }

    /** The usual targets: query i's k neighbours nn[i*k .. i*k+k) (ids into
     * a collection whose document j is stored in leaf doc_leaf[j]); weight
     * of a leaf = share of the query's neighbours stored there. Negative
     * neighbour ids (Faiss's "no result") are skipped; a query with none
     * left makes train() throw. */
    static RoutingTargets from_neighbors(idx_t n, int k, const idx_t* nn,
                                         const idx_t* doc_leaf);
};

/// Which exact form of the cross-entropy the trainer evaluates.
enum class RoutingLoss : int {
    /// FULL_LEAF when B^H <= max_full_leaves, else FACTORISED.
    AUTO = 0,
    /** -sum_l t_l log p(l | u) over all B^H leaves with
     * TorchTree::leaf_log_probs (memory n_batch * B^H). */
    FULL_LEAF = 1,
    /** sum over levels h of the cross-entropy of each expanded node's child
     * distribution toward the target mass aggregated at depth h+1:
     * -sum_h sum_{v at depth h+1} t(v) log p(v | parent(v), u), where t(v)
     * is the target mass of the leaves below v. Since log p(l | u) is the
     * sum of the log child probabilities along l's path, this equals the
     * FULL_LEAF value exactly, but only the nodes on the targets' paths are
     * scored (TorchTree::child_log_probs). */
    FACTORISED = 2,
};

/// What one RoutingTrainer::train() run measured.
struct RoutingTrainerStats {
    idx_t n_train = 0;       ///< queries used for fitting
    idx_t n_heldout = 0;     ///< queries held out (0: no held-out figures)
    bool factorised = false; ///< the loss form that was used
    /// Per-level temperature factors found (1 where not fitted), H.
    std::vector<double> temperature;
    double train_ce_initial = 0;    ///< training CE of the input tree
    double train_ce_after_temp = 0; ///< after temperature fitting
    double heldout_ce_initial = 0;  ///< held-out CE of the input tree
    /** Held-out CE after temperature fitting (entry 0), then after each
     * epoch (entries 1..epochs). Empty when n_heldout == 0. */
    std::vector<double> heldout_ce;
    /// Mean training-batch loss of each epoch (CE + balance term).
    std::vector<double> train_loss;
    /// Epoch whose weights were returned (see RoutingTrainer::keep_best).
    int best_epoch = 0;
};

/** Learned query routing over fixed leaves (the
 * learning-to-rank routing of Vecchiato et al.): the tree's classifiers are
 * trained so that each training query's leaf distribution p(. | u) matches
 * a target distribution over leaves (typically where its true nearest
 * neighbours are stored).
 *
 * train() does, on a trained EHITree (any form; the k-means tree of
 * EHITreeKMeansInit is the intended start):
 * 1. split off `holdout` of the queries (seeded shuffle) for held-out CE;
 * 2. if fit_temperature: per-level factors t_h multiplying level h's logits
 *    (the level's W and bias, per-node or paper form), chosen by coordinate
 *    descent of golden-section searches on log t_h in [1e-2, 1e3] over the
 *    training split (the CE is convex in (t_1..t_H), since each log-softmax
 *    is concave in its scale); a new value is kept only if it lowers the
 *    CE, so fitting never increases it. The factors are folded into the
 *    weights;
 * 3. `epochs` of Adam (lr) over shuffled mini-batches of the training split
 *    on mean CE + balance * KL(mean leaf distribution || uniform)
 *    (Losses.h balance_kl; needs the full leaf distribution, so balance > 0
 *    requires B^H <= max_full_leaves);
 * 4. writes the weights back into the tree (TorchTree::to_ehi; the beam
 *    strategy is kept).
 *
 * Deterministic for a fixed seed and thread count. With threads > 0 both
 * torch's and OpenMP's thread counts are set for the call and restored
 * after it. */
struct RoutingTrainer {
    int epochs = 10;
    int batch_size = 256;
    double learning_rate = 5e-3; ///< Adam
    uint64_t seed = 1234;
    bool fit_temperature = true;
    /** With a held-out split: return the weights of the epoch with the
     * lowest held-out CE (0 = right after temperature fitting), not those
     * of the last epoch. Early stopping on training data only. */
    bool keep_best = true;
    double balance = 0;   ///< weight of the balance KL term
    double holdout = 0.1; ///< share of queries held out, in [0, 1)
    int threads = 0;      ///< 0: leave the thread counts as they are
    bool verbose = false; ///< progress lines on std::cout
    RoutingLoss loss = RoutingLoss::AUTO;
    idx_t max_full_leaves = 1024; ///< AUTO's switch to FACTORISED

    /** Train `tree` (must be trained, tree.m == dimension of x) on n
     * queries x (n x tree.m) toward `targets` (targets.size() == n).
     * Throws faiss::FaissException on bad inputs. */
    RoutingTrainerStats train(EHITree& tree, idx_t n, const float* x,
                              const RoutingTargets& targets) const;

    /** Mean cross-entropy -sum_l t_l log p(l | x_i) over the n queries
     * (targets normalised per query), in the form `loss` selects. */
    double cross_entropy(const EHITree& tree, idx_t n, const float* x,
                         const RoutingTargets& targets) const;
};

} // namespace trainer
} // namespace faiss_ehi
