/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>

namespace faiss_ehi {

/** Row-major C (rows x cols, leading dimension ldc) = A (rows x inner,
 * leading dimension lda) * Bm (inner x cols, leading dimension ldb), through
 * the Fortran BLAS sgemm that Faiss links (OpenBLAS where installed). */
void gemm_rowmajor(int64_t rows, int64_t cols, int64_t inner, const float* A,
                   int64_t lda, const float* Bm, int64_t ldb, float* C,
                   int64_t ldc);

/** Row-major C (rows x cols) = A (rows x inner) * Bm^T, Bm given row-major
 * as cols x inner (each output column's weights contiguous). */
void gemm_rowmajor_bt(int64_t rows, int64_t cols, int64_t inner, const float* A,
                      const float* Bm, float* C);

/** y (rows) = M x, M row-major rows x cols (each output's weights
 * contiguous). Not BLAS on purpose: it runs inside OpenMP regions (one call
 * per tree node), where a multithreaded BLAS sgemv would start its own
 * threads for every node. Compiled for AVX2+FMA and for generic x86-64,
 * picked at run time. */
void matvec_rows(int64_t rows, int64_t cols, const float* M, const float* x,
                 float* y);

} // namespace faiss_ehi
