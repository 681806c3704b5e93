/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/trainer/EncoderConfig.h>

namespace faiss_ehi {
namespace trainer {

/** Where an encoder reads its inputs: a row-major n x d float array
 * (IDENTITY, HEAD) or one token-id list per item (TEXT). Not owning. */
struct EncoderInput {
    const float* vecs = nullptr; ///< n x d
    int d = 0;
    const std::vector<std::vector<int64_t>>* tokens = nullptr;
    int64_t n = 0;
};

/** The encoders E(x) of the joint trainer, as a LibTorch module.
 *
 * HEAD, with the parameters and layout of faiss_ehi::EncoderHead:
 *     y = x A^T + b + ReLU(x W1^T + c1) W2^T + c2,  y /= |y| if normalize
 * (a zero y stays zero). Start: A = identity (rectangular if d_in !=
 * d_out), b = 0, W2 = 0, c2 = 0, so the MLP branch outputs zero; W1 is
 * seeded random (std 1/sqrt(d_in)) rather than zero as in
 * EncoderHead::set_identity, because with W1 = W2 = 0 neither would ever
 * get a gradient. The head exports to an EncoderHead with to_faiss().
 *
 * TEXT: x = mean of the item's token vectors (an embedding bag over `emb`,
 * |V| x d_in, the zero vector for an item without tokens), then the HEAD.
 * The bag exports to faiss_ehi::TextEncoder (to_text_encoder).
 *
 * IDENTITY: the vectors as they are, no parameters (normalize is ignored:
 * the index has no transform to apply it; pass normalised vectors). */
class EncoderImpl : public torch::nn::Module {
  private:
    /** Rows of `emb` a differentiable bag() used since the last
     * sparse_step, and the leaf tensor (those rows' copies) that got
     * their gradient: the token table itself is never in the graph. */
    struct UsedRows {
        torch::Tensor rows; ///< (U) row ids, distinct
        torch::Tensor leaf; ///< (U, d_in), requires grad
    };
    mutable std::vector<UsedRows> used_;

  public:
    EncoderKind kind = EncoderKind::HEAD;
    int d_in = 0;  ///< input of the head (the token vector size for TEXT)
    int d_out = 0; ///< output size
    int hidden = 0;
    bool normalize = false;

    torch::Tensor emb; ///< TEXT: (|V|, d_in)
    /** TEXT: AdamW moments of `emb` and the step count (buffers, so that
     * checkpoints keep them); see sparse_step. */
    torch::Tensor emb_m, emb_v, emb_steps;
    torch::Tensor A, b, W1, c1, W2, c2; ///< HEAD and TEXT

    /** @param text  TEXT only: vocabulary and start of the token table
     * (text->dim becomes d_in). */
    EncoderImpl(EncoderKind kind, int d_in, int d_out, int hidden,
                bool normalize, uint64_t seed, const TextInit* text = nullptr);

    /** The parameters a dense optimizer updates: all but the token table,
     * which gets sparse gradients and sparse_step (a step touches a few
     * thousand of its rows; a dense AdamW would rewrite all of them and
     * cost more than the rest of the step). */
    std::vector<torch::Tensor> dense_parameters() const;

    /** TEXT: one AdamW step (decoupled weight decay, betas 0.9 / 0.999,
     * eps 1e-8, as torch::optim::AdamW) on the rows of `emb` used by the
     * differentiable bag() calls since the last step, with the gradients
     * their last backward pass left; then those uses are forgotten. Rows
     * not used keep their value and moments (lazy, as SparseAdam); the
     * bias correction uses the count of steps taken. */
    void sparse_step(double lr, double weight_decay);

    /// The head on input vectors (n, d_in) -> (n, d_out).
    torch::Tensor head(const torch::Tensor& x) const;

    /// TEXT: mean token vector of each listed item, (rows, d_in).
    torch::Tensor bag(const std::vector<std::vector<int64_t>>& tokens,
                      const std::vector<int64_t>& rows) const;

    /// E(x) of the given items, (rows, d_out), differentiable.
    torch::Tensor forward(const EncoderInput& in,
                          const std::vector<int64_t>& rows) const;

    /// E(x) of all n items without gradient, n x d_out row-major.
    std::vector<float> encode_all(const EncoderInput& in,
                                  int64_t block = 4096) const;

    /// The head as a faiss_ehi::EncoderHead (exact float copies).
    /// Throws for IDENTITY.
    std::unique_ptr<EncoderHead> to_faiss() const;

    /// TEXT: the token table as a faiss_ehi::TextEncoder over `vocab`.
    std::unique_ptr<TextEncoder> to_text_encoder(
            const std::vector<std::string>& vocab) const;
};

/// Module holder (LibTorch's pattern): methods through `->`.
class Encoder : public torch::nn::ModuleHolder<EncoderImpl> {
  public:
    using torch::nn::ModuleHolder<EncoderImpl>::ModuleHolder;
};

} // namespace trainer
} // namespace faiss_ehi
