/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/IndexEHITreeSQ.h>

#include <typeinfo>

#include <faiss_ehi/SIMDListScanner.h>

namespace faiss_ehi {

IndexEHITreeSQ::IndexEHITreeSQ(const faiss::IndexIVFScalarQuantizer& ivf)
        : faiss::IndexIVFScalarQuantizer(ivf) {}

faiss::InvertedListScanner* IndexEHITreeSQ::get_InvertedListScanner(
        bool store_pairs, const faiss::IDSelector* sel) const {
    faiss::InvertedListScanner* s = simd_scan
            ? SIMDListScanner::create(*this, store_pairs, sel)
            : nullptr;
    return s ? s
             : faiss::IndexIVFScalarQuantizer::get_InvertedListScanner(
                       store_pairs, sel);
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
