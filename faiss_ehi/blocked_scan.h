/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <faiss/IndexIVF.h>

namespace faiss_ehi {

class SQ8CodeNorms;

/** k-NN search_preassigned in list-major order: the queries of a block
 * (up to 256) that probe the same list scan it together, a cache-sized
 * chunk of the list at a time, each query into its own top-k heap. A list
 * probed by several queries of the block is then read from memory once
 * instead of once per query.
 *
 * Results equal IndexIVF::search_preassigned's with SIMDListScanner,
 * ties included (it breaks them by label). Requires
 * SIMDListScanner::supports(index); no selector, no store_pairs, no
 * max_codes, parallel_mode 0 and each id stored once (the caller checks,
 * with blocking_applies). `norms`, if given, go to the scanners
 * (SIMDListScanner::create). Updates `stats`,
 * or faiss::indexIVF_stats if null, as Faiss does. Runs its query blocks
 * on OpenMP threads unless called inside a parallel region. */
void search_preassigned_blocked(const faiss::IndexIVF& index,
                                faiss::Index::idx_t n, const float* x,
                                faiss::Index::idx_t k, size_t nprobe,
                                const faiss::Index::idx_t* assign,
                                const float* centroid_dis, float* distances,
                                faiss::Index::idx_t* labels,
                                faiss::IndexIVFStats* stats,
                                const SQ8CodeNorms* norms = nullptr);

/** Whether a search_preassigned call of `index` over n queries may go
 * list-major (search_preassigned_blocked): at least `min_batch` (and 2)
 * queries, codes SIMDListScanner reads, and none of what the blocked
 * scan leaves out (store_pairs, a selector, max_codes, parallel_mode).
 * The index adds its own conditions (its switch, stored duplicates). */
bool blocking_applies(const faiss::IndexIVF& index, faiss::Index::idx_t n,
                      faiss::Index::idx_t min_batch, bool store_pairs,
                      const faiss::IVFSearchParameters* params);

} // namespace faiss_ehi
