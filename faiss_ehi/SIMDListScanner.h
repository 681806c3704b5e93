/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <faiss/IndexIVF.h>

#include <faiss_ehi/SQ8CodeNorms.h>
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
 * results, and the same distances as Faiss's scanner to float rounding.
 *
 * SQ8 under L2 is faster with the lists' code norms (SQ8CodeNorms, kept by
 * IndexEHITreeSQ): the distance of a code read from the list's own
 * storage is then an inner-product kernel plus terms of the query and the
 * code (one FMA per component instead of two). Codes of a list without
 * valid norms, or passed from elsewhere, are scored directly. */
struct SIMDListScanner : faiss::InvertedListScanner {
    /// The stored codes a scanner reads.
    enum class Codec { FLAT, SQ8, FP16 };

    /// Whether the lists of `index` can be scanned by this class.
    static bool supports(const faiss::IndexIVF& index);

    /** A scanner for `index`'s lists, or nullptr if supports() is false.
     * `kernels` defaults to the best the CPU runs; `norms`, if given and
     * made for this index's lists (SQ8CodeNorms::valid_for), speeds up
     * SQ8 under L2. The index (and norms) must outlive the scanner and
     * not change while it is used. */
    static SIMDListScanner* create(const faiss::IndexIVF& index,
                                   bool store_pairs = false,
                                   const faiss::IDSelector* sel = nullptr,
                                   const ScanKernels* kernels = nullptr,
                                   const SQ8CodeNorms* norms = nullptr);

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
                    const ScanKernels& kernels, const SQ8CodeNorms* norms);

    /** Distances of n consecutive codes into out[0, n): the rows kernel of
     * the codec and metric, then the per-list bias. One code at a time
     * (n = 1) gives the same values as a block. */
    void rows_distances(const uint8_t* codes, size_t n, float* out) const;
    /// The same with the codes' SQ8 norms given (nullptr: none; L2 SQ8
    /// only), for codes that are not where the list stores them.
    void rows_distances(const uint8_t* codes, size_t n, const float* norms,
                        float* out) const;
    /** Scores codes [0, n) (those the selector keeps) in blocks and calls
     * visit(j0, at, dis, m) per block: dis[t] is the distance of code
     * at[t], or of code j0 + t when `at` is null. */
    template <class Visit>
    void for_each_block(size_t n, const uint8_t* codes, const idx_t* ids,
                        Visit&& visit) const;
    /// One block into a top-k heap (scan_codes); returns the updates.
    template <bool kKeepMax>
    size_t heap_add(size_t j0, const size_t* at, const float* dis, size_t m,
                    const idx_t* ids, float* distances, idx_t* labels,
                    size_t k) const;
    /// sq8_query_ / sq8_qoff_ from q_ (SQ8 only; see scan_kernels.h),
    /// and the norm form (sq8_w_, sq8_k_) where the list has norms.
    void prepare_sq8();
    /** Where codes [codes, codes + n) sit in the current list when it has
     * norms and they are its stored codes: their first index, else -1. */
    std::ptrdiff_t norm_index(const uint8_t* codes, size_t n) const;
    /// The label of entry j: its id, or (list, offset) with store_pairs.
    idx_t label_of(const idx_t* ids, size_t j) const;

    const faiss::IndexIVF& index_;
    const Codec codec_;
    const bool by_residual_;
    const ScanKernels& kernels_;
    const size_t d_;
    const SQ8CodeNorms* norms_; ///< null unless valid for this index (L2 SQ8)
    std::vector<float> scale_, offset_; ///< SQ8 decoding, per dimension
    const float* query_ = nullptr;      ///< as given to set_query
    const float* q_ = nullptr;          ///< query_ or its residual
    std::vector<float> residual_;       ///< query - list centroid (L2)
    float bias_ = 0; ///< added to every distance (IP by residual)
    std::vector<float> sq8_query_; ///< q_ - offset (L2) or q_ * scale (IP)
    float sq8_qoff_ = 0;           ///< <q_, offset> (IP), added to distances
    // The current list's norms (SQ8CodeNorms), if any, and where its codes
    // are stored; with them, distance = sq8_k_ - 2 <sq8_w_, c> + norm.
    const float* list_norms_ = nullptr;
    uintptr_t list_codes_ = 0;
    size_t list_size_ = 0;
    std::vector<float> sq8_w_; ///< (q_ - centre) * scale
    float sq8_k_ = 0;          ///< ||q_ - centre||^2 + 255 <q_ - centre, scale>
    /// Compressed codes a selector let through, scored in blocks; per
    /// scanner, which (as Faiss's) serves one thread at a time.
    mutable std::vector<uint8_t> gathered_;
};

} // namespace faiss_ehi
