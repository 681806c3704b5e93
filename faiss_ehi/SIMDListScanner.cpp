/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/SIMDListScanner.h>

#include <algorithm>
#include <typeinfo>

#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/Heap.h>

namespace faiss_ehi {

namespace {

using SQ = faiss::ScalarQuantizer;

bool metric_ok(const faiss::IndexIVF& index) {
    return index.metric_type == faiss::METRIC_L2 ||
            index.metric_type == faiss::METRIC_INNER_PRODUCT;
}

/// The codec of `index`'s lists; false if none of ours reads them.
bool codec_of(const faiss::IndexIVF& index, SIMDListScanner::Codec* codec,
              bool* by_residual) {
    if (!metric_ok(index)) {
        return false;
    }
    // Flat storage: IndexIVFFlat itself or a class that keeps its codes
    // (IndexEHITree); IVFFlatDedup and others store something else.
    if (dynamic_cast<const faiss::IndexIVFFlat*>(&index) &&
        !dynamic_cast<const faiss::IndexIVFFlatDedup*>(&index)) {
        if (index.code_size != index.d * sizeof(float)) {
            return false;
        }
        *codec = SIMDListScanner::Codec::FLAT;
        *by_residual = false;
        return true;
    }
    auto* sq = dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(&index);
    if (!sq) {
        return false;
    }
    switch (sq->sq.qtype) {
        case SQ::QT_8bit:
        case SQ::QT_8bit_uniform:
            *codec = SIMDListScanner::Codec::SQ8;
            break;
        case SQ::QT_fp16:
            *codec = SIMDListScanner::Codec::FP16;
            break;
        default:
            return false;
    }
    *by_residual = sq->by_residual;
    return true;
}

} // namespace

bool SIMDListScanner::supports(const faiss::IndexIVF& index) {
    Codec c;
    bool r;
    return codec_of(index, &c, &r);
}

SIMDListScanner* SIMDListScanner::create(const faiss::IndexIVF& index,
                                         bool store_pairs,
                                         const faiss::IDSelector* sel,
                                         const ScanKernels* kernels) {
    Codec codec;
    bool by_residual;
    if (!codec_of(index, &codec, &by_residual)) {
        return nullptr;
    }
    return new SIMDListScanner(index, codec, by_residual, store_pairs, sel,
                               kernels ? *kernels : scan_kernels());
}

SIMDListScanner::SIMDListScanner(const faiss::IndexIVF& index, Codec codec,
                                 bool by_residual, bool store_pairs,
                                 const faiss::IDSelector* sel,
                                 const ScanKernels& kernels)
        : faiss::InvertedListScanner(store_pairs, sel), index_(index),
          codec_(codec), by_residual_(by_residual), kernels_(kernels),
          d_(index.d) {
    keep_max = index.metric_type == faiss::METRIC_INNER_PRODUCT;
    code_size = index.code_size;
    if (codec == Codec::SQ8) {
        const SQ& sq =
                dynamic_cast<const faiss::IndexIVFScalarQuantizer&>(index).sq;
        /* Faiss's QT_8bit trains vmin[d] then vdiff[d]; QT_8bit_uniform
         * one vmin and one vdiff for all dimensions. A code c decodes to
         * vmin + (c + 0.5) / 255 * vdiff, here offset + scale * c. */
        bool uniform = sq.qtype == SQ::QT_8bit_uniform;
        size_t nt = uniform ? 2 : 2 * d_;
        FAISS_THROW_IF_NOT_MSG(sq.trained.size() == nt,
                               "SIMDListScanner: scalar quantizer not trained");
        scale_.resize(d_);
        offset_.resize(d_);
        for (size_t i = 0; i < d_; i++) {
            float vmin = uniform ? sq.trained[0] : sq.trained[i];
            float vdiff = uniform ? sq.trained[1] : sq.trained[d_ + i];
            scale_[i] = vdiff / 255.0f;
            offset_[i] = vmin + 0.5f * scale_[i];
        }
    }
    if (by_residual_) {
        residual_.resize(d_);
    }
}

void SIMDListScanner::set_query(const float* query_vector) {
    query_ = query_vector;
    q_ = query_vector;
    if (!by_residual_ || keep_max) { // L2 by residual: set_list prepares
        prepare_sq8();
    }
}

void SIMDListScanner::prepare_sq8() {
    if (codec_ != Codec::SQ8) {
        return;
    }
    sq8_query_.resize(d_);
    if (keep_max) {
        sq8_qoff_ = sq8_prepare_ip(q_, scale_.data(), offset_.data(), d_,
                                   sq8_query_.data());
    } else {
        sq8_prepare_l2(q_, offset_.data(), d_, sq8_query_.data());
    }
}

void SIMDListScanner::set_list(idx_t list_no, float coarse_dis) {
    this->list_no = list_no;
    bias_ = 0;
    if (!by_residual_) {
        return;
    }
    // As Faiss's IVFSQ scanners: L2 compares the residual query with the
    // decoded residuals; IP adds <query, centroid>, the coarse distance.
    if (keep_max) {
        bias_ = coarse_dis;
    } else {
        index_.quantizer->compute_residual(query_, residual_.data(), list_no);
        q_ = residual_.data();
        prepare_sq8();
    }
}

float SIMDListScanner::distance_to_code(const uint8_t* code) const {
    float dis;
    rows_distances(code, 1, &dis);
    return dis;
}

void SIMDListScanner::rows_distances(const uint8_t* codes, size_t n,
                                     float* out) const {
    const ScanKernels& k = kernels_;
    // added after the kernel: the per-list bias (inner product by
    // residual: <query, centroid>) and, for SQ8, <query, offset>
    float add = bias_;
    switch (codec_) {
        case Codec::FLAT:
            (keep_max ? k.ip_f32_rows : k.l2_f32_rows)(
                    q_, reinterpret_cast<const float*>(codes), n, d_, out);
            return;
        case Codec::SQ8:
            if (!keep_max) {
                k.l2_sq8_rows(sq8_query_.data(), codes, scale_.data(), n, d_,
                              out);
                return;
            }
            k.ip_sq8_rows(sq8_query_.data(), codes, nullptr, n, d_, out);
            add = bias_ + sq8_qoff_;
            break;
        default:
            (keep_max ? k.ip_fp16_rows : k.l2_fp16_rows)(q_, codes, nullptr,
                                                         n, d_, out);
    }
    for (size_t j = 0; j < n; j++) {
        out[j] = add + out[j];
    }
}

template <class Visit>
void SIMDListScanner::for_each_distance(size_t n, const uint8_t* codes,
                                        const idx_t* ids, Visit&& visit) const {
    // Faiss passes no ids with store_pairs, and refuses a selector then.
    FAISS_THROW_IF_NOT_MSG(ids || !sel,
                           "SIMDListScanner: a selector needs the list ids");
    if (!sel) {
        // Rows in blocks: the distances of a block first (one kernel call,
        // prefetching ahead), then the heap; a block's distances stay in
        // L1.
        constexpr size_t kBlock = 64;
        float dis[kBlock];
        for (size_t j0 = 0; j0 < n; j0 += kBlock) {
            const size_t nb = std::min(kBlock, n - j0);
            rows_distances(codes + j0 * code_size, nb, dis);
            for (size_t j = 0; j < nb; j++) {
                visit(j0 + j, dis[j]);
            }
        }
        return;
    }
    // With a selector, code by code: most codes may be skipped. A rows
    // kernel of one code still prefetches the codes ahead of it.
    for (size_t j = 0; j < n; j++) {
        if (sel->is_member(ids[j])) {
            float dis;
            rows_distances(codes + j * code_size, 1, &dis);
            visit(j, dis);
        }
    }
}

SIMDListScanner::idx_t SIMDListScanner::label_of(const idx_t* ids,
                                                 size_t j) const {
    return store_pairs ? idx_t(faiss::lo_build(list_no, j)) : ids[j];
}

size_t SIMDListScanner::scan_codes(size_t n, const uint8_t* codes,
                                   const idx_t* ids, float* distances,
                                   idx_t* labels, size_t k) const {
    /* A code enters the heap when it beats the heap's worst entry in the
     * heap's own order: distance, then label (Faiss's cmp2). Faiss's
     * scanners compare distances only, so among equal distances the
     * first scanned wins; here the result is the k best pairs (distance,
     * label) whatever the order in which the lists are scanned, which
     * lets a search scan them list-major (blocked_scan) with the same
     * results as query by query. */
    size_t nup = 0;
    if (keep_max) {
        for_each_distance(n, codes, ids, [&](size_t j, float dis) {
            if (dis < distances[0]) {
                return;
            }
            idx_t label = label_of(ids, j);
            if (dis > distances[0] || label > labels[0]) {
                faiss::minheap_replace_top(k, distances, labels, dis, label);
                nup++;
            }
        });
    } else {
        for_each_distance(n, codes, ids, [&](size_t j, float dis) {
            if (dis > distances[0]) {
                return;
            }
            idx_t label = label_of(ids, j);
            if (dis < distances[0] || label < labels[0]) {
                faiss::maxheap_replace_top(k, distances, labels, dis, label);
                nup++;
            }
        });
    }
    return nup;
}

void SIMDListScanner::scan_codes_range(size_t n, const uint8_t* codes,
                                       const idx_t* ids, float radius,
                                       faiss::RangeQueryResult& result) const {
    for_each_distance(n, codes, ids, [&](size_t j, float dis) {
        bool inside = keep_max ? dis > radius : dis < radius;
        if (inside) {
            result.add(dis, label_of(ids, j));
        }
    });
}

} // namespace faiss_ehi
