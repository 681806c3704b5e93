/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <vector>

#include <faiss/IndexIVF.h>

#include <faiss_ehi/scan_kernels.h>

namespace faiss_ehi {

/** An inverted-list scanner whose distances come from faiss-ehi's own
 * kernels (scan_kernels.h: AVX-512, AVX2+FMA or generic, picked once at
 * run time) instead of Faiss's, for the codes those kernels read:
 *
 * - flat float lists (IndexIVFFlat and IndexEHITree);
 * - scalar-quantizer lists of type QT_8bit, QT_8bit_uniform and QT_fp16
 *   (`SQ8`, `SQfp16`), decoded in registers; by_residual is supported.
 *
 * L2 and inner product. It follows Faiss's scanner contract: IDSelector,
 * store_pairs (labels are list/offset pairs), k-NN heaps and range
 * results, and the same distances as Faiss's scanner to float rounding. */
struct SIMDListScanner : faiss::InvertedListScanner {
    /// The stored codes a scanner reads.
    enum class Codec { FLAT, SQ8, FP16 };

    /// Whether the lists of `index` can be scanned by this class.
    static bool supports(const faiss::IndexIVF& index);

    /** A scanner for `index`'s lists, or nullptr if supports() is false.
     * `kernels` defaults to the best the CPU runs. The index must outlive
     * the scanner and not change while it is used. */
    static SIMDListScanner* create(const faiss::IndexIVF& index,
                                   bool store_pairs = false,
                                   const faiss::IDSelector* sel = nullptr,
                                   const ScanKernels* kernels = nullptr);

    void set_query(const float* query_vector) override;
    void set_list(idx_t list_no, float coarse_dis) override;
    float distance_to_code(const uint8_t* code) const override;
    size_t scan_codes(size_t n, const uint8_t* codes, const idx_t* ids,
                      float* distances, idx_t* labels, size_t k) const override;
    void scan_codes_range(size_t n, const uint8_t* codes, const idx_t* ids,
                          float radius,
                          faiss::RangeQueryResult& result) const override;

    Codec codec() const {
        return codec_;
    }

  private:
    SIMDListScanner(const faiss::IndexIVF& index, Codec codec, bool by_residual,
                    bool store_pairs, const faiss::IDSelector* sel,
                    const ScanKernels& kernels);

    /** Distances of n consecutive codes into out[0, n): the rows kernel of
     * the codec and metric, then the per-list bias. One code at a time
     * (n = 1) gives the same values as a block. */
    void rows_distances(const uint8_t* codes, size_t n, float* out) const;
    template <class Visit>
    void for_each_distance(size_t n, const uint8_t* codes, const idx_t* ids,
                           Visit&& visit) const;
    /// sq8_query_ / sq8_qoff_ from q_ (SQ8 only; see scan_kernels.h).
    void prepare_sq8();
    /// The label of entry j: its id, or (list, offset) with store_pairs.
    idx_t label_of(const idx_t* ids, size_t j) const;

    const faiss::IndexIVF& index_;
    const Codec codec_;
    const bool by_residual_;
    const ScanKernels& kernels_;
    const size_t d_;
    std::vector<float> scale_, offset_; ///< SQ8 decoding, per dimension
    const float* query_ = nullptr;      ///< as given to set_query
    const float* q_ = nullptr;          ///< query_ or its residual
    std::vector<float> residual_;       ///< query - list centroid (L2)
    float bias_ = 0; ///< added to every distance (IP by residual)
    std::vector<float> sq8_query_; ///< q_ - offset (L2) or q_ * scale (IP)
    float sq8_qoff_ = 0;           ///< <q_, offset> (IP), added to distances
};

} // namespace faiss_ehi
