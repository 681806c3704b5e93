/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/IndexEHITreeSQ.h>

#include <algorithm>
#include <typeinfo>

#include <faiss_ehi/SIMDListScanner.h>
#include <faiss_ehi/blocked_scan.h>

namespace faiss_ehi {

IndexEHITreeSQ::IndexEHITreeSQ(const faiss::IndexIVFScalarQuantizer& ivf)
        : faiss::IndexIVFScalarQuantizer(ivf) {
    refresh_code_norms();
}

void IndexEHITreeSQ::refresh_code_norms() {
    code_norms_.rebuild(*this);
}

void IndexEHITreeSQ::train(idx_t n, const float* x) {
    faiss::IndexIVFScalarQuantizer::train(n, x);
    refresh_code_norms(); // new ranges: any stored codes decode anew
}

void IndexEHITreeSQ::add_core(idx_t n, const float* x, const idx_t* xids,
                              const idx_t* precomputed_idx) {
    faiss::IndexIVFScalarQuantizer::add_core(n, x, xids, precomputed_idx);
    code_norms_.sync(*this);
}

size_t IndexEHITreeSQ::remove_ids(const faiss::IDSelector& sel) {
    size_t r = faiss::IndexIVFScalarQuantizer::remove_ids(sel);
    code_norms_.sync(*this);
    return r;
}

void IndexEHITreeSQ::update_vectors(int nv, const idx_t* idx, const float* v) {
    faiss::IndexIVFScalarQuantizer::update_vectors(nv, idx, v);
    refresh_code_norms(); // codes rewritten in place: lengths may not move
}

void IndexEHITreeSQ::merge_from(faiss::Index& otherIndex, idx_t add_id) {
    faiss::IndexIVFScalarQuantizer::merge_from(otherIndex, add_id);
    code_norms_.sync(*this);
}

void IndexEHITreeSQ::reset() {
    faiss::IndexIVFScalarQuantizer::reset();
    code_norms_.sync(*this);
}

faiss::InvertedListScanner* IndexEHITreeSQ::get_InvertedListScanner(
        bool store_pairs, const faiss::IDSelector* sel) const {
    faiss::InvertedListScanner* s = simd_scan
            ? SIMDListScanner::create(*this, store_pairs, sel, nullptr,
                                      &code_norms_)
            : nullptr;
    return s ? s
             : faiss::IndexIVFScalarQuantizer::get_InvertedListScanner(
                       store_pairs, sel);
}

void IndexEHITreeSQ::search_preassigned(
        idx_t n, const float* x, idx_t k, const idx_t* assign,
        const float* centroid_dis, float* distances, idx_t* labels,
        bool store_pairs, const faiss::IVFSearchParameters* params,
        faiss::IndexIVFStats* stats) const {
    if (block_queries && simd_scan &&
        blocking_applies(*this, n, block_min_batch, store_pairs, params)) {
        // As Faiss: assign holds min(nlist, nprobe) lists per query.
        const size_t np = std::min(nlist, params ? params->nprobe : nprobe);
        search_preassigned_blocked(*this, n, x, k, np, assign, centroid_dis,
                                   distances, labels, stats, &code_norms_);
        return;
    }
    faiss::IndexIVFScalarQuantizer::search_preassigned(
            n, x, k, assign, centroid_dis, distances, labels, store_pairs,
            params, stats);
}

void promote_to_ehi_sq(faiss::Index** slot) {
    auto* sq = dynamic_cast<faiss::IndexIVFScalarQuantizer*>(*slot);
    if (!sq || typeid(*sq) != typeid(faiss::IndexIVFScalarQuantizer)) {
        return;
    }
    auto* ehi = new IndexEHITreeSQ(*sq);
    // ownership of quantizer and lists moves to the new object
    sq->own_fields = false;
    sq->own_invlists = false;
    delete sq;
    *slot = ehi;
}

} // namespace faiss_ehi
