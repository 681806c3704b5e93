/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <torch/types.h>

namespace faiss_ehi {
namespace trainer {

/** The EHI loss terms (the paper's eq. 2 to 6) and the balance term, which
 * is not in the paper (docs/DESIGN.md, "The losses").
 *
 * Conventions: every "row" version takes row-aligned triplets (row i of a,
 * p and n form one triplet) of shape (n, d) and returns (n); the plain
 * version is the mean over the n rows. Gated-out rows of the intra-leaf
 * term count as zeros in the mean. */

/// max(0, <a_i, n_i> - <a_i, p_i> + gamma) per row, (n).
torch::Tensor triplet_rows(const torch::Tensor& a, const torch::Tensor& p,
                           const torch::Tensor& n, double gamma);

/// mean_i max(0, <a_i, n_i> - <a_i, p_i> + gamma), a scalar.
torch::Tensor triplet(const torch::Tensor& a, const torch::Tensor& p,
                      const torch::Tensor& n, double gamma);

/** In-batch form: every anchor against a set of candidate negatives.
 * a, p: (n, d); cands: (k, d); valid: (n, k) bool (or undefined for all
 * valid). Returns the mean over the valid (i, j) pairs of
 * max(0, <a_i, c_j> - <a_i, p_i> + gamma), zero when none is valid.
 * With cands = p and valid = ~eye(n) these are the in-batch negatives
 * (the positives of the other queries). */
torch::Tensor triplet_in_batch(const torch::Tensor& a, const torch::Tensor& p,
                               const torch::Tensor& cands,
                               const torch::Tensor& valid, double gamma);

/// L_siamese = L(E q, E d+, E d-), mean over rows.
torch::Tensor siamese_loss(const torch::Tensor& Eq, const torch::Tensor& Edp,
                           const torch::Tensor& Edn, double gamma);

/// L_indexing = L(T q, T d+, T d-), mean over rows (T = path embeddings).
torch::Tensor indexing_loss(const torch::Tensor& Tq, const torch::Tensor& Tdp,
                            const torch::Tensor& Tdn, double gamma);

/// The gate of the intra-leaf term: cos(E d+_i, E d-_i) < tau, (n) bool,
/// computed without gradient.
torch::Tensor intra_gate(const torch::Tensor& Edp, const torch::Tensor& Edn,
                         double tau);

/** L_intra per row: 1{cos(E d+, E d-) < tau} * L(T d+, T d+, T d-), (n).
 * The gate carries no gradient (E d+ and E d- get none from this term). */
torch::Tensor intra_leaf_loss_rows(const torch::Tensor& Tdp,
                                   const torch::Tensor& Tdn,
                                   const torch::Tensor& Edp,
                                   const torch::Tensor& Edn, double gamma,
                                   double tau);

/// L_intra, mean over all rows (gated-out rows count as zero).
torch::Tensor intra_leaf_loss(const torch::Tensor& Tdp,
                              const torch::Tensor& Tdn,
                              const torch::Tensor& Edp,
                              const torch::Tensor& Edn, double gamma,
                              double tau);

/** KL(pbar || uniform) where pbar is the mean over the batch (rows) of the
 * joint leaf distribution, given as log-probabilities (n, L) such as
 * TorchTree::leaf_log_probs gives: sum_l pbar_l log(L pbar_l), >= 0, zero
 * iff the batch spreads evenly over the leaves. Leaves with pbar = 0
 * contribute 0. */
torch::Tensor balance_kl(const torch::Tensor& leaf_log_probs);

/// Hyper-parameters of the total loss (defaults: the paper's eq. 2 to 6
/// and its SciFact row of Table 2; bal = 0 is the paper's recipe).
struct LossConfig {
    double gamma = 0.3;   ///< triplet margin
    double tau = 0.9;     ///< intra-leaf gate on cos(E d+, E d-)
    double lambda1 = 0.2; ///< siamese weight
    double lambda2 = 0.8; ///< indexing weight
    double lambda3 = 0.2; ///< intra-leaf weight
    double bal = 0.0;     ///< balance term weight (about 1 where used)
};

/// The terms of one evaluation (scalars; `balance` is undefined when not
/// computed) and their weighted sum.
struct LossTerms {
    torch::Tensor siamese;
    torch::Tensor indexing;
    torch::Tensor intra;
    torch::Tensor balance; ///< KL, before the bal weight
    torch::Tensor total;
};

/** Row-aligned triplet batch: (q_i, d+_i, d-_i) encoded (E*) and
 * path-embedded (T*), all (n, .), plus optionally the leaf log-probs (n', L)
 * of whatever the balance should spread (queries, documents or both). */
struct LossInputs {
    torch::Tensor Eq, Edp, Edn;
    torch::Tensor Tq, Tdp, Tdn;
    torch::Tensor leaf_log_probs; ///< undefined: no balance term
};

/** total = lambda1 L_siamese + lambda2 L_indexing + lambda3 L_intra
 *        + bal * KL(pbar || uniform)
 * (the balance term only when bal != 0 and leaf_log_probs is given). */
LossTerms ehi_loss(const LossInputs& in, const LossConfig& cfg);

} // namespace trainer
} // namespace faiss_ehi
