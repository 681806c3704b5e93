/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Row-major single-precision GEMMs for the routing. cuBLAS is loaded at run
 * time (libcublas.so.13 or .12) so that the binaries start on a machine
 * whose cuBLAS is missing; a plain tiled CUDA kernel then does the work.
 */
#pragma once

#include <cuda_runtime_api.h>

namespace faiss_ehi {
namespace gpu {

/** C (M x N, row stride ldc) = A (M x K, stride lda) * op(Bm), with
 * op(Bm) = Bm^T when trans_b (Bm is N x K, stride ldb) or Bm (K x N,
 * stride ldb). All row-major device pointers; beta = 0. */
void gemm_rowmajor(cudaStream_t stream, bool trans_b, int M, int N, int K,
                   const float* A, int lda, const float* Bm, int ldb, float* C,
                   int ldc);

/// "cuBLAS <version>" or "built-in kernel (cuBLAS not found)".
const char* gemm_backend();

} // namespace gpu
} // namespace faiss_ehi
