/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <vector>

#include <faiss/VectorTransform.h>

namespace faiss_ehi {

/** EHI's learned encoder head over the user's vectors, as a Faiss
 * VectorTransform (d_in -> d_out). The trained index is
 * IndexPreTransform(head) -> IndexEHITree, so Faiss applies the head to
 * every added, trained and searched vector.
 *
 *     y = A x + b                                  (linear part)
 *       + W2 ReLU(W1 x + c1) + c2                  (MLP branch, hidden > 0)
 *     y = y / |y|                                  (if normalize; a zero y
 *                                                   stays zero)
 *
 * All matrices are row-major with each output's weights contiguous:
 * A is d_out x d_in, b d_out; W1 hidden x d_in, c1 hidden; W2 d_out x hidden,
 * c2 d_out. With hidden == 0 the four MLP arrays are empty. The identity
 * initialisation (set_identity) is A = I (rectangular when d_in != d_out:
 * A[i][i] = 1 for i < min(d_in, d_out)), b = 0 and an MLP branch that
 * outputs zero (W2 = 0, c2 = 0; W1 = 0, c1 = 0), so a freshly made head with
 * d_in == d_out and normalize off leaves vectors unchanged.
 *
 * The parameters are learned by the faiss_ehi trainer (LibTorch) jointly
 * with the tree and copied here from plain float arrays; this class holds no
 * learning code. is_trained means "the parameters are set": true after the
 * sizing constructor or set_identity(). train() does nothing on a trained
 * head and throws on an untrained one.
 *
 * apply is const and thread-safe (no shared scratch). Batches go through
 * BLAS GEMM. NaN or infinite input (or an output that overflows) throws
 * faiss::FaissException. reverse_transform throws: the head is not
 * invertible.
 *
 * Plain faiss::write_index cannot write this transform (it throws); use
 * faiss_ehi::write_index, which stores the head in the EHI payload.
 */
struct EncoderHead : faiss::VectorTransform {
    int hidden = 0;         ///< hidden size of the MLP branch (0: none)
    bool normalize = false; ///< L2-normalise the output (cosine)

    std::vector<float> A;  ///< d_out x d_in
    std::vector<float> b;  ///< d_out
    std::vector<float> W1; ///< hidden x d_in
    std::vector<float> c1; ///< hidden
    std::vector<float> W2; ///< d_out x hidden
    std::vector<float> c2; ///< d_out

    /// Empty, untrained head (d_in = d_out = 0); used when reading files.
    EncoderHead();

    /// A head of the given sizes, initialised to identity (is_trained).
    EncoderHead(int d_in, int d_out, int hidden = 0, bool normalize = false);

    /// Size every array for (d_in, d_out, hidden) and set the identity
    /// parameters described above; marks the head trained.
    void set_identity();

    /** Throws unless the sizes are valid (d_in, d_out >= 1, hidden >= 0),
     * every array has the size the dimensions imply and every parameter is
     * finite. */
    void check_consistent() const;

    /// Does nothing if is_trained; otherwise throws (see the class comment).
    void train(idx_t n, const float* x) override;

    /// y (n x d_out) from x (n x d_in). Requires is_trained.
    void apply_noalloc(idx_t n, const float* x, float* xt) const override;

    /// Throws: the learned head is not invertible.
    void reverse_transform(idx_t n, const float* xt, float* x) const override;

    /// Throws unless `other` is an EncoderHead with identical parameters.
    void check_identical(const faiss::VectorTransform& other) const override;

  private:
    /// O(1) size checks done on every apply.
    void check_sizes() const;
};

} // namespace faiss_ehi
