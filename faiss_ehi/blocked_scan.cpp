/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/blocked_scan.h>

#include <algorithm>
#include <cinttypes>
#include <memory>
#include <cstdint>
#include <vector>

#include <omp.h>

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/Heap.h>

#include <faiss_ehi/SIMDListScanner.h>

namespace faiss_ehi {

namespace {
/// Queries per block: enough for lists to be shared at batch sizes where
/// it matters, few enough that the block's heaps stay in cache.
constexpr faiss::Index::idx_t kQueryBlock = 256;
/// Bytes of list codes scanned by all queries of a group before moving
/// on: half of a typical 1 MiB L2, so the chunk is re-read from there.
constexpr size_t kChunkBytes = 512 * 1024;
} // namespace

void search_preassigned_blocked(const faiss::IndexIVF& index,
                                faiss::Index::idx_t n, const float* x,
                                faiss::Index::idx_t k, size_t nprobe,
                                const faiss::Index::idx_t* assign,
                                const float* centroid_dis, float* distances,
                                faiss::Index::idx_t* labels,
                                faiss::IndexIVFStats* stats,
                                const SQ8CodeNorms* norms) {
    using idx_t = faiss::Index::idx_t;
    FAISS_THROW_IF_NOT_MSG(SIMDListScanner::supports(index),
                           "search_preassigned_blocked: codes not supported");
    FAISS_THROW_IF_NOT_MSG(k > 0, "search_preassigned_blocked: k must be > 0");
    const bool keep_max = index.metric_type == faiss::METRIC_INNER_PRODUCT;
    const size_t cs = index.code_size;
    const size_t chunk = std::max<size_t>(1, kChunkBytes / cs);
    const idx_t nblocks = (n + kQueryBlock - 1) / kQueryBlock;
    size_t ndis = 0, nlistv = 0;
    // Checked here: an exception must not leave an OpenMP region.
    FAISS_THROW_IF_NOT_MSG(
            uint64_t(index.nlist) < (uint64_t(1) << 32) &&
                    uint64_t(nprobe) * kQueryBlock < (uint64_t(1) << 32),
            "search_preassigned_blocked: nlist or nprobe too large");
    for (idx_t i = 0; i < n * idx_t(nprobe); i++) {
        FAISS_THROW_IF_NOT_FMT(assign[i] < idx_t(index.nlist),
                               "invalid list number %" PRId64, assign[i]);
    }

#pragma omp parallel for schedule(dynamic) if (!omp_in_parallel() &&         \
                                                       nblocks > 1)          \
        reduction(+ : ndis, nlistv)
    for (idx_t b = 0; b < nblocks; b++) {
        const idx_t q0 = b * kQueryBlock, q1 = std::min(n, q0 + kQueryBlock);
        std::vector<std::unique_ptr<SIMDListScanner>> sc(q1 - q0);
        /* The block's probes grouped by list: one 64-bit key per probe,
         * the list above the probe's index in assign (relative to the
         * block), sorted. Sorting (list, query, distance) tuples took 2%
         * of a GloVe search. */
        std::vector<uint64_t> probes;
        probes.reserve((q1 - q0) * nprobe);
        for (idx_t q = q0; q < q1; q++) {
            sc[q - q0].reset(SIMDListScanner::create(index, false, nullptr,
                                                     nullptr, norms));
            sc[q - q0]->set_query(x + q * index.d);
            if (keep_max) {
                faiss::minheap_heapify(k, distances + q * k, labels + q * k);
            } else {
                faiss::maxheap_heapify(k, distances + q * k, labels + q * k);
            }
            for (size_t p = 0; p < nprobe; p++) {
                const idx_t l = assign[q * nprobe + p];
                if (l >= 0) {
                    probes.push_back(uint64_t(l) << 32 |
                                     uint64_t((q - q0) * nprobe + p));
                }
            }
        }
        std::sort(probes.begin(), probes.end());
        const float* block_dis = centroid_dis + q0 * nprobe;
        for (size_t g0 = 0; g0 < probes.size();) {
            const idx_t l = idx_t(probes[g0] >> 32);
            size_t g1 = g0;
            while (g1 < probes.size() && idx_t(probes[g1] >> 32) == l) {
                g1++;
            }
            auto query_of = [&](size_t g) {
                return q0 + idx_t((probes[g] & 0xffffffffu) / nprobe);
            };
            const size_t ls = index.invlists->list_size(l);
            nlistv += g1 - g0;
            if (ls > 0) {
                faiss::InvertedLists::ScopedCodes codes(index.invlists, l);
                faiss::InvertedLists::ScopedIds ids(index.invlists, l);
                for (size_t g = g0; g < g1; g++) {
                    const size_t i = probes[g] & 0xffffffffu;
                    sc[query_of(g) - q0]->set_list(l, block_dis[i]);
                }
                for (size_t v0 = 0; v0 < ls; v0 += chunk) {
                    const size_t nv = std::min(chunk, ls - v0);
                    for (size_t g = g0; g < g1; g++) {
                        const idx_t q = query_of(g);
                        sc[q - q0]->scan_codes(
                                nv, codes.get() + v0 * cs, ids.get() + v0,
                                distances + q * k, labels + q * k, k);
                    }
                }
                ndis += ls * (g1 - g0);
            }
            g0 = g1;
        }
        for (idx_t q = q0; q < q1; q++) {
            if (keep_max) {
                faiss::minheap_reorder(k, distances + q * k, labels + q * k);
            } else {
                faiss::maxheap_reorder(k, distances + q * k, labels + q * k);
            }
        }
    }
    faiss::IndexIVFStats* st = stats ? stats : &faiss::indexIVF_stats;
    st->nq += n;
    st->nlist += nlistv;
    st->ndis += ndis;
}

bool blocking_applies(const faiss::IndexIVF& index, faiss::Index::idx_t n,
                      faiss::Index::idx_t min_batch, bool store_pairs,
                      const faiss::IVFSearchParameters* params) {
    const size_t max_codes = params ? params->max_codes : index.max_codes;
    return n > 1 && n >= min_batch && !store_pairs &&
            index.parallel_mode == 0 && max_codes == 0 &&
            !(params && params->sel) && SIMDListScanner::supports(index);
}

} // namespace faiss_ehi
