/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/SIMDListScanner.h>

#include <algorithm>
#include <cstring>
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
                                         const ScanKernels* kernels,
                                         const SQ8CodeNorms* norms) {
    Codec codec;
    bool by_residual;
    if (!codec_of(index, &codec, &by_residual)) {
        return nullptr;
    }
    if (norms) {
        auto* sq = dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(&index);
        if (codec != Codec::SQ8 || !sq || !norms->valid_for(*sq)) {
            norms = nullptr;
        }
    }
    return new SIMDListScanner(index, codec, by_residual, store_pairs, sel,
                               kernels ? *kernels : scan_kernels(), norms);
}

SIMDListScanner::SIMDListScanner(const faiss::IndexIVF& index, Codec codec,
                                 bool by_residual, bool store_pairs,
                                 const faiss::IDSelector* sel,
                                 const ScanKernels& kernels,
                                 const SQ8CodeNorms* norms)
        : faiss::InvertedListScanner(store_pairs, sel), index_(index),
          codec_(codec), by_residual_(by_residual), kernels_(kernels),
          d_(index.d), norms_(norms) {
    keep_max = index.metric_type == faiss::METRIC_INNER_PRODUCT;
    code_size = index.code_size;
    if (codec == Codec::SQ8) {
        SQ8Decoding dec(
                dynamic_cast<const faiss::IndexIVFScalarQuantizer&>(index).sq);
        FAISS_THROW_IF_NOT_MSG(!dec.empty(),
                               "SIMDListScanner: scalar quantizer not trained");
        scale_ = std::move(dec.scale);
        offset_ = std::move(dec.offset);
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
        return;
    }
    sq8_prepare_l2(q_, offset_.data(), d_, sq8_query_.data());
    if (norms_) {
        // q_ - centre = qo - 127.5 * scale (SQ8CodeNorms); sums in double,
        // as they are added to every distance of the list
        sq8_w_.resize(d_);
        double pp = 0, ps = 0;
        for (size_t i = 0; i < d_; i++) {
            float p = sq8_query_[i] - 127.5f * scale_[i];
            sq8_w_[i] = p * scale_[i];
            pp += double(p) * p;
            ps += double(p) * scale_[i];
        }
        sq8_k_ = float(pp + 255.0 * ps);
    }
}

void SIMDListScanner::set_list(idx_t list_no, float coarse_dis) {
    this->list_no = list_no;
    bias_ = 0;
    list_norms_ = nullptr;
    if (norms_) {
        list_size_ = index_.invlists->list_size(list_no);
        list_norms_ = norms_->list(list_no, list_size_);
        if (list_norms_) {
            faiss::InvertedLists::ScopedCodes codes(index_.invlists, list_no);
            list_codes_ = reinterpret_cast<uintptr_t>(codes.get());
        }
    }
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

std::ptrdiff_t SIMDListScanner::norm_index(const uint8_t* codes,
                                           size_t n) const {
    if (!list_norms_) {
        return -1;
    }
    const uintptr_t c = reinterpret_cast<uintptr_t>(codes);
    if (c < list_codes_ || (c - list_codes_) % code_size != 0) {
        return -1;
    }
    const size_t j0 = (c - list_codes_) / code_size;
    return j0 + n <= list_size_ ? std::ptrdiff_t(j0) : -1;
}

float SIMDListScanner::distance_to_code(const uint8_t* code) const {
    float dis;
    rows_distances(code, 1, &dis);
    return dis;
}

void SIMDListScanner::rows_distances(const uint8_t* codes, size_t n,
                                     float* out) const {
    const std::ptrdiff_t j0 = norm_index(codes, n);
    rows_distances(codes, n, j0 < 0 ? nullptr : list_norms_ + j0, out);
}

void SIMDListScanner::rows_distances(const uint8_t* codes, size_t n,
                                     const float* norms, float* out) const {
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
                if (!norms) {
                    k.l2_sq8_rows(sq8_query_.data(), codes, scale_.data(), n,
                                  d_, out);
                    return;
                }
                k.ip_sq8_rows(sq8_w_.data(), codes, nullptr, n, d_, out);
                for (size_t j = 0; j < n; j++) {
                    // never below 0, as a direct sum of squares
                    out[j] = std::max(0.0f, sq8_k_ - 2.0f * out[j] + norms[j]);
                }
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

namespace {
/// Codes per kernel call and per heap pass (their distances stay in L1).
constexpr size_t kScanBlock = 64;
} // namespace

template <class Visit>
void SIMDListScanner::for_each_block(size_t n, const uint8_t* codes,
                                     const idx_t* ids, Visit&& visit) const {
    // Faiss passes no ids with store_pairs, and refuses a selector then.
    FAISS_THROW_IF_NOT_MSG(ids || !sel,
                           "SIMDListScanner: a selector needs the list ids");
    float dis[kScanBlock];
    if (!sel) {
        // Rows in blocks: the distances of a block first (one kernel call,
        // prefetching ahead), then the visit.
        for (size_t j0 = 0; j0 < n; j0 += kScanBlock) {
            const size_t nb = std::min(kScanBlock, n - j0);
            rows_distances(codes + j0 * code_size, nb, dis);
            visit(j0, nullptr, dis, nb);
        }
        return;
    }
    size_t at[kScanBlock];
    if (codec_ != Codec::FLAT) {
        // The compressed inner-product kernels (and SQ8 L2 with norms)
        // score four codes per call: the selected codes (and their norms)
        // are gathered into blocks first.
        const std::ptrdiff_t base = norm_index(codes, n);
        float norms[kScanBlock];
        gathered_.resize(kScanBlock * code_size);
        size_t m = 0;
        auto flush = [&]() {
            rows_distances(gathered_.data(), m, base < 0 ? nullptr : norms,
                           dis);
            visit(0, at, dis, m);
            m = 0;
        };
        for (size_t j = 0; j < n; j++) {
            if (!sel->is_member(ids[j])) {
                continue;
            }
            std::memcpy(gathered_.data() + m * code_size,
                        codes + j * code_size, code_size);
            if (base >= 0) {
                norms[m] = list_norms_[base + j];
            }
            at[m++] = j;
            if (m == kScanBlock) {
                flush();
            }
        }
        if (m > 0) {
            flush();
        }
        return;
    }
    // Float rows code by code: most codes may be skipped, and copying
    // them would cost as much as scoring them. A rows kernel of one code
    // still prefetches the codes ahead of it.
    for (size_t j = 0; j < n; j++) {
        if (sel->is_member(ids[j])) {
            at[0] = j;
            rows_distances(codes + j * code_size, 1, dis);
            visit(0, at, dis, 1);
        }
    }
}

SIMDListScanner::idx_t SIMDListScanner::label_of(const idx_t* ids,
                                                 size_t j) const {
    return store_pairs ? idx_t(faiss::lo_build(list_no, j)) : ids[j];
}

template <bool kKeepMax>
size_t SIMDListScanner::heap_add(size_t j0, const size_t* at, const float* dis,
                                 size_t m, const idx_t* ids, float* distances,
                                 idx_t* labels, size_t k) const {
    /* A branch-free pass first keeps the entries not worse than the
     * heap's worst entry as the block starts: in a long scan most are,
     * and a branch per entry mispredicts. They are checked again below,
     * against the heap as it is then. */
    uint32_t cand[kScanBlock];
    size_t nc = 0;
    const float worst = distances[0];
    for (size_t t = 0; t < m; t++) {
        cand[nc] = uint32_t(t);
        nc += kKeepMax ? dis[t] >= worst : dis[t] <= worst;
    }
    size_t nup = 0;
    for (size_t c = 0; c < nc; c++) {
        const size_t t = cand[c];
        const float d = dis[t];
        if (kKeepMax ? d < distances[0] : d > distances[0]) {
            continue;
        }
        const idx_t label = label_of(ids, at ? at[t] : j0 + t);
        if (kKeepMax ? (d > distances[0] || label > labels[0])
                     : (d < distances[0] || label < labels[0])) {
            if (kKeepMax) {
                faiss::minheap_replace_top(k, distances, labels, d, label);
            } else {
                faiss::maxheap_replace_top(k, distances, labels, d, label);
            }
            nup++;
        }
    }
    return nup;
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
    for_each_block(n, codes, ids,
                   [&](size_t j0, const size_t* at, const float* dis,
                       size_t m) {
                       nup += keep_max ? heap_add<true>(j0, at, dis, m, ids,
                                                        distances, labels, k)
                                       : heap_add<false>(j0, at, dis, m, ids,
                                                         distances, labels,
                                                         k);
                   });
    return nup;
}

void SIMDListScanner::scan_codes_range(size_t n, const uint8_t* codes,
                                       const idx_t* ids, float radius,
                                       faiss::RangeQueryResult& result) const {
    for_each_block(n, codes, ids,
                   [&](size_t j0, const size_t* at, const float* dis,
                       size_t m) {
                       for (size_t t = 0; t < m; t++) {
                           if (keep_max ? dis[t] > radius : dis[t] < radius) {
                               result.add(dis[t],
                                          label_of(ids, at ? at[t] : j0 + t));
                           }
                       }
                   });
}

} // namespace faiss_ehi
