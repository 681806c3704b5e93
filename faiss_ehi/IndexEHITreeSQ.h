/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <faiss/IndexScalarQuantizer.h>

#include <faiss_ehi/SQ8CodeNorms.h>

namespace faiss_ehi {

/** An EHI index with scalar-quantised lists (`EHI<B>x<H>,SQ8`,
 * `EHI<B>x<H>,SQfp16`, ...): Faiss's IndexIVFScalarQuantizer whose
 * quantizer is the tree, scanning its lists with SIMDListScanner where
 * that class reads the codes (QT_8bit, QT_8bit_uniform, QT_fp16) and with
 * Faiss's scanner otherwise.
 *
 * With SQ8 codes under L2 it keeps one float per stored code beside the
 * lists (SQ8CodeNorms: 4 bytes against d bytes of code), which lets the
 * scan use one FMA per component. The calls below that change the lists
 * keep them current; a list changed otherwise (add_sa_codes,
 * replace_invlists, writes through `invlists` itself) is scanned by the
 * direct kernel until refresh_code_norms(), which a change of its length
 * detects on its own but a rewrite of its codes in place does not.
 *
 * Files store it as the IndexIVFScalarQuantizer it derives from (the
 * norms are recomputed on reading); faiss_ehi::read_index turns an
 * EHI-routed one back into this class. */
struct IndexEHITreeSQ : faiss::IndexIVFScalarQuantizer {
    /** Scan lists with faiss-ehi's kernels rather than Faiss's. Not stored
     * in files; false only to compare the two. */
    bool simd_scan = true;
    /// As IndexEHITree: list-major scans for k-NN batches of at least
    /// block_min_batch queries (search_preassigned_blocked). Not stored.
    bool block_queries = true;
    idx_t block_min_batch = 256;

    IndexEHITreeSQ() = default;
    /** Takes over the state of `ivf` (lists, quantizer, codec, direct
     * map). The pointers are shared: the caller must clear
     * ivf.own_fields and ivf.own_invlists before deleting ivf. */
    explicit IndexEHITreeSQ(const faiss::IndexIVFScalarQuantizer& ivf);

    void train(idx_t n, const float* x) override;
    void add_core(idx_t n, const float* x, const idx_t* xids,
                  const idx_t* precomputed_idx) override;
    size_t remove_ids(const faiss::IDSelector& sel) override;
    void update_vectors(int nv, const idx_t* idx, const float* v) override;
    void merge_from(faiss::Index& otherIndex, idx_t add_id) override;
    void reset() override;

    /// Recomputes the code norms of every list (see the class comment).
    void refresh_code_norms();
    /// The norms the scanners use (empty unless SQ8 under L2).
    const SQ8CodeNorms& code_norms() const {
        return code_norms_;
    }

    faiss::InvertedListScanner* get_InvertedListScanner(
            bool store_pairs = false,
            const faiss::IDSelector* sel = nullptr) const override;

    /// Faiss's, or list-major where blocking applies (see block_queries).
    void search_preassigned(idx_t n, const float* x, idx_t k,
                            const idx_t* assign, const float* centroid_dis,
                            float* distances, idx_t* labels, bool store_pairs,
                            const faiss::IVFSearchParameters* params = nullptr,
                            faiss::IndexIVFStats* stats = nullptr) const override;

  private:
    SQ8CodeNorms code_norms_;
};

/** Replaces the IndexIVFScalarQuantizer at `*slot` (exactly that class) by
 * an IndexEHITreeSQ that takes over its state; anything else is left as
 * it is. */
void promote_to_ehi_sq(faiss::Index** slot);

} // namespace faiss_ehi
