/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss/IndexScalarQuantizer.h>

namespace faiss_ehi {

/** How Faiss 1.7.3 decodes an 8-bit scalar quantizer's code c, per
 * dimension: x[i] = offset[i] + scale[i] * c[i]. QT_8bit trains vmin[d]
 * then vdiff[d], QT_8bit_uniform one vmin and one vdiff; a code decodes
 * to vmin + (c + 0.5) / 255 * vdiff. Empty unless `sq` is a trained
 * QT_8bit or QT_8bit_uniform quantizer. */
struct SQ8Decoding {
    std::vector<float> scale, offset;

    explicit SQ8Decoding(const faiss::ScalarQuantizer& sq);
    bool empty() const {
        return scale.empty();
    }
};

/** One float per stored SQ8 code, kept beside an index's inverted lists
 * so that an L2 scan needs one FMA per component instead of two.
 *
 * Expanding ||q - x||^2 around the centre m = offset + 127.5 * scale of
 * the code range, with p = q - m and e = c - 127.5:
 *
 *   ||q - x||^2 = ||p||^2 + 255 <p, scale> - 2 sum_i (p_i scale_i) c_i
 *                 + sum_i scale_i^2 e_i^2.
 *
 * The first two terms depend on the query (and list) only, the third is
 * the inner-product kernel over the codes, and the last, the code's
 * centred norm, is what this class stores. Centring keeps the terms
 * close to the distance itself, so that their cancellation costs little
 * precision.
 *
 * The norms are valid for the inverted lists and quantizer they were
 * computed from: a scanner checks valid_for() once, then list() per list,
 * which answers only while the list keeps its recorded length. Changes
 * that keep a list's length but rewrite its codes (update_vectors,
 * InvertedLists::update_entries) need a rebuild; the index class that
 * holds the norms does it for the calls it overrides. */
class SQ8CodeNorms {
  public:
    using idx_t = faiss::Index::idx_t;

    /// Computes the norms of every list of `index`, or holds none when
    /// its lists are not SQ8 codes in an ArrayInvertedLists under L2.
    void rebuild(const faiss::IndexIVFScalarQuantizer& index);

    /// Recomputes the lists whose length changed since the norms were
    /// made (adds and removes change lengths), or all of them if the
    /// lists object or the quantizer changed.
    void sync(const faiss::IndexIVFScalarQuantizer& index);

    /// Drops every norm (scans then use the direct kernel).
    void clear();

    /// Whether the norms were made for `index`'s lists object and
    /// quantizer (its trained ranges).
    bool valid_for(const faiss::IndexIVFScalarQuantizer& index) const;

    /** The norms of list `list_no` if they were made for a list of
     * `list_size` codes, else nullptr (the scan then computes distances
     * directly). Only meaningful after valid_for() said true. */
    const float* list(idx_t list_no, size_t list_size) const;

    /// The centred norm of one code under `dec` (what list() holds).
    static float code_norm(const SQ8Decoding& dec, const uint8_t* code);

  private:
    void compute_list(const faiss::IndexIVFScalarQuantizer& index,
                      const SQ8Decoding& dec, idx_t list_no);

    const faiss::InvertedLists* invlists_ = nullptr;
    std::vector<float> trained_; ///< the quantizer the norms were made with
    std::vector<std::vector<float>> norms_;
};

} // namespace faiss_ehi
