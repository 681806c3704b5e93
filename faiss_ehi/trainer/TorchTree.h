/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <faiss_ehi/EHITree.h>

namespace faiss_ehi {
namespace trainer {

/** The EHI tree as a differentiable LibTorch module (the paper's eq. 1).
 *
 * It holds exactly the parameters of faiss_ehi::EHITree, in the same layout,
 * so that weights pass between the two as plain float arrays (from_ehi /
 * to_ehi copy them bit for bit). Levels are h = 0..H-1; level h scores the
 * B children of a node at depth h; the node index at depth h has the path
 * (i_1, ..., i_h) as its base-B digits, most significant first; leaves are
 * the nodes at depth H.
 *
 * Paper form (NodeForm::PAPER), level h, n_h = B*h + m:
 *   x_h = [onehot(i_h); ...; onehot(i_1); u]          (most recent first)
 *   F   = x_h + ReLU(U_h^T x_h)                        U[h]: n_h x n_h
 *   s   = W_h^T F + bias_h (bias only if use_bias)     W[h]: n_h x B
 * U[h] and W[h] are stored with the input index as row (row-major, as in
 * EHITree). bias[h] (B) is a trainable parameter only when use_bias; else
 * it is a buffer (zeros unless the EHITree said otherwise) that is ignored.
 *
 * Per-node form (NodeForm::PER_NODE), level h: node_W[h] has shape
 * (B^h, B, m) ([node][child][m]) and node_b[h] (B^h, B):
 *   s = W_v u + b_v for the node v being expanded.
 *
 * Only the parameters of the tree's form are registered (named "U0", "W0",
 * "bias0", ... or "node_W0", "node_b0", ...); the vectors of the other form
 * stay empty, as in EHITree.
 *
 * Every method accepts inputs u of shape (n, m) in the parameters' dtype
 * (float32 by default; `tree->to(torch::kDouble)` for gradient checks) on
 * the parameters' device.
 */
class TorchTreeImpl : public torch::nn::Module {
  public:
    int B = 0;
    int H = 0;
    int m = 0;
    NodeForm form = NodeForm::PER_NODE;
    bool use_bias = true; ///< paper form only (per-node biases always apply)

    std::vector<torch::Tensor> U;      ///< paper form, (n_h, n_h) per level
    std::vector<torch::Tensor> W;      ///< paper form, (n_h, B) per level
    std::vector<torch::Tensor> bias;   ///< paper form, (B) per level
    std::vector<torch::Tensor> node_W; ///< per-node form, (B^h, B, m)
    std::vector<torch::Tensor> node_b; ///< per-node form, (B^h, B)

    /// A tree with zero parameters (the caller fills them, e.g. from_ehi).
    TorchTreeImpl(int B, int H, int m, NodeForm form = NodeForm::PER_NODE,
                  bool use_bias = true);

    /** Write the parameters into `tree` (exact float copies when the
     * parameters are float32). The tree is reshaped to this one's B, H, m,
     * form and use_bias and finalized; its beam strategy is kept. */
    void to_ehi(EHITree& tree) const;
    /// Convenience: a new EHITree holding these parameters.
    EHITree to_ehi() const;

    int64_t nleaves() const;
    int64_t nodes_at_depth(int h) const;
    int n_input(int h) const;

    /** Log-softmax scores of the B children of one node per input.
     * @param h        level in [0, H)
     * @param node_ids (n) int64, index of each input's node at depth h
     * @param u        (n, m)
     * @return         (n, B), differentiable w.r.t. u and the parameters */
    torch::Tensor child_log_probs(int h, const torch::Tensor& node_ids,
                                  const torch::Tensor& u) const;

    /** Log-probabilities of all B^H leaves, (n, B^H) (column = leaf id).
     * Memory grows with n * B^H (times n_h in the paper form): meant for
     * small trees and for the balance term. */
    torch::Tensor leaf_log_probs(const torch::Tensor& u) const;

    /** Path embedding T(u) = [P^1; ...; P^H], (n, B*H), along the most
     * probable child at every level (Algorithm 2, INDEXER):
     * P^h = softmax(s_h) * P(node chosen at depth h-1). Gradients flow
     * through the softmaxes; the argmax choice is not differentiated. Ties
     * go to the smaller child index, as in EHITree::path_embedding. */
    torch::Tensor path_embedding(const torch::Tensor& u) const;

    /** Leaf at the end of the greedy path used by path_embedding (argmax
     * child at every level). Not always the most probable leaf. */
    std::vector<int64_t> greedy_leaf(const torch::Tensor& u) const;

    /** The most probable leaf of each input (what EHITree::route gives with
     * beam 1 and BEST_FIRST), ties to the smaller leaf id. Evaluated over
     * all leaves in blocks of inputs (no gradient). */
    std::vector<int64_t> argmax_leaf(const torch::Tensor& u) const;

    /** The `beam` most probable leaves per input, ordered by decreasing
     * probability (ties: smaller leaf id first), and their probabilities:
     * (n*beam) row-major, padded with -1 / 0 when beam > B^H, as
     * EHITree::route (BEST_FIRST). Exhaustive over the leaves, so for large
     * trees route through faiss_ehi instead (to_ehi, EHITree::route). */
    std::pair<std::vector<int64_t>, std::vector<float>> top_leaves(
            const torch::Tensor& u, int64_t beam) const;

  private:
    void register_level(int h);
    /// (n, V, B) log-probabilities of the children of all V = B^h nodes.
    torch::Tensor all_children_log_probs(int h, const torch::Tensor& u) const;
    /// (V, B*h) one-hot path blocks of every node at depth h.
    torch::Tensor path_onehots(int h, const torch::Tensor& node_ids) const;
};

/** The module holder (LibTorch's usual pattern, like torch::nn::Linear):
 * a shared pointer to a TorchTreeImpl, methods through `->`:
 *
 *   TorchTree tree = TorchTree::from_ehi(ehi);
 *   torch::optim::AdamW opt(tree->parameters(), ...);
 *   torch::Tensor T = tree->path_embedding(u);
 *   tree->to_ehi(ehi);
 */
class TorchTree : public torch::nn::ModuleHolder<TorchTreeImpl> {
  public:
    using torch::nn::ModuleHolder<TorchTreeImpl>::ModuleHolder;
    /// Copy of a trained faiss_ehi tree (exact float copies).
    static TorchTree from_ehi(const EHITree& tree);
};

} // namespace trainer
} // namespace faiss_ehi
