/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Inverted-list scan with fused k-selection (launcher; internal header).
 */
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace faiss_ehi {
namespace gpu {

/** For each of n queries (n x d floats), scan the lists probes[q] (n x
 * nprobe, -1 = none) of the flat storage (codes: entries x d, fp32 or fp16
 * when `fp16`; ids: entries; list l holds entries [offsets[l],
 * offsets[l+1])) and write the k nearest (L2: smallest squared distance;
 * inner product: largest) to D, I (n x k; -1 and +-FLT_MAX when fewer).
 * With `dedup` each id is reported once. k <= kMaxSelectK. */
void launch_scan_select(cudaStream_t stream, int n, int d, bool inner_product,
                        bool fp16, const float* queries, const int64_t* probes,
                        int nprobe, const int64_t* offsets, const void* codes,
                        const int64_t* ids, int k, bool dedup, float* D,
                        int64_t* I);

/// Host conversion of n floats to IEEE half precision bits.
void floats_to_half(const float* x, size_t n, uint16_t* out);
/// Host conversion back.
void half_to_floats(const uint16_t* x, size_t n, float* out);

} // namespace gpu
} // namespace faiss_ehi
