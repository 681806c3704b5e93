/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Kernels of the GPU routing (launchers; internal header). Scores of a
 * level are laid out n x (Nv * B): query-major, then node, then child.
 */
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace faiss_ehi {
namespace gpu {

/** out[q][v*B+c] = min(s - logsumexp_c(s), 0) + prev[q][v], where
 * s = S[q][v*B+c] + node_add[v*B+c] + q_add[q][c] (either may be null; q_add
 * has row stride ld_qadd) and prev may be null (the root, log P = 0).
 * out may alias S. */
void launch_level_log_softmax(cudaStream_t stream, int n, int64_t Nv, int B,
                              const float* S, const float* node_add,
                              const float* q_add, int ld_qadd,
                              const float* prev, float* out);

/// Z[(q*Nv+v)][i] = max(P[q][i] + Uoff[v][i], 0), i < nh (paper form).
void launch_paper_hidden(cudaStream_t stream, int n, int64_t Nv, int nh,
                         const float* P, int ldp, const float* Uoff, float* Z);

/** Per row q of vals (n x L), the `beam` largest values in decreasing order
 * (ties: smaller index first): their indexes (-1 past the L-th) and values
 * (-inf there). beam <= kMaxSelectK. */
void launch_select_largest(cudaStream_t stream, int n, int64_t L,
                           const float* vals, int beam, int64_t* out_idx,
                           float* out_val);

/** Level beam: out (n x Nv*B) = logp where the parent v is among kept[q]
 * (n x beam, -1 = none), -inf elsewhere. */
void launch_mask_children(cudaStream_t stream, int n, int64_t Nv, int B,
                          const float* logp, const int64_t* kept, int beam,
                          float* out);

} // namespace gpu
} // namespace faiss_ehi
