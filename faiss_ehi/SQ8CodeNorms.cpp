/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/SQ8CodeNorms.h>

#include <typeinfo>

#include <faiss/invlists/InvertedLists.h>

namespace faiss_ehi {

using SQ = faiss::ScalarQuantizer;

SQ8Decoding::SQ8Decoding(const SQ& sq) {
    const bool uniform = sq.qtype == SQ::QT_8bit_uniform;
    if (!(uniform || sq.qtype == SQ::QT_8bit)) {
        return;
    }
    const size_t d = sq.d;
    if (sq.trained.size() != (uniform ? 2 : 2 * d)) {
        return; // not trained
    }
    scale.resize(d);
    offset.resize(d);
    for (size_t i = 0; i < d; i++) {
        float vmin = uniform ? sq.trained[0] : sq.trained[i];
        float vdiff = uniform ? sq.trained[1] : sq.trained[d + i];
        scale[i] = vdiff / 255.0f;
        offset[i] = vmin + 0.5f * scale[i];
    }
}

namespace {
/// Whether `index` stores SQ8 codes whose norms this class can hold.
bool eligible(const faiss::IndexIVFScalarQuantizer& index) {
    // ArrayInvertedLists only: its get_codes returns the stored codes in
    // place, which is how a scanner knows which entry a code is.
    return index.metric_type == faiss::METRIC_L2 && index.invlists &&
            typeid(*index.invlists) == typeid(faiss::ArrayInvertedLists) &&
            !SQ8Decoding(index.sq).empty();
}
} // namespace

float SQ8CodeNorms::code_norm(const SQ8Decoding& dec, const uint8_t* code) {
    double n = 0;
    for (size_t i = 0; i < dec.scale.size(); i++) {
        double e = double(dec.scale[i]) * (double(code[i]) - 127.5);
        n += e * e;
    }
    return float(n);
}

void SQ8CodeNorms::compute_list(const faiss::IndexIVFScalarQuantizer& index,
                                const SQ8Decoding& dec, idx_t list_no) {
    const size_t ls = index.invlists->list_size(list_no);
    std::vector<float>& out = norms_[list_no];
    out.resize(ls);
    if (ls == 0) {
        return;
    }
    faiss::InvertedLists::ScopedCodes codes(index.invlists, list_no);
    for (size_t j = 0; j < ls; j++) {
        out[j] = code_norm(dec, codes.get() + j * index.code_size);
    }
}

void SQ8CodeNorms::clear() {
    invlists_ = nullptr;
    trained_.clear();
    norms_.clear();
}

void SQ8CodeNorms::rebuild(const faiss::IndexIVFScalarQuantizer& index) {
    clear();
    if (!eligible(index)) {
        return;
    }
    SQ8Decoding dec(index.sq);
    norms_.resize(index.nlist);
#pragma omp parallel for schedule(dynamic)
    for (idx_t l = 0; l < idx_t(index.nlist); l++) {
        compute_list(index, dec, l);
    }
    invlists_ = index.invlists;
    trained_ = index.sq.trained;
}

void SQ8CodeNorms::sync(const faiss::IndexIVFScalarQuantizer& index) {
    if (!valid_for(index) || norms_.size() != index.nlist) {
        rebuild(index);
        return;
    }
    SQ8Decoding dec(index.sq);
#pragma omp parallel for schedule(dynamic)
    for (idx_t l = 0; l < idx_t(index.nlist); l++) {
        if (norms_[l].size() != index.invlists->list_size(l)) {
            compute_list(index, dec, l);
        }
    }
}

bool SQ8CodeNorms::valid_for(const faiss::IndexIVFScalarQuantizer& index) const {
    return invlists_ && index.invlists == invlists_ &&
            index.metric_type == faiss::METRIC_L2 &&
            index.sq.trained == trained_;
}

const float* SQ8CodeNorms::list(idx_t list_no, size_t list_size) const {
    if (list_no < 0 || size_t(list_no) >= norms_.size() ||
        norms_[list_no].size() != list_size) {
        return nullptr;
    }
    return norms_[list_no].data();
}

} // namespace faiss_ehi
