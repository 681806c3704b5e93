/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/blas.h>

#include <omp.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/cpu_dispatch.h>

extern "C" {
// Fortran BLAS, as declared inside Faiss itself (32-bit integers).
int sgemm_(const char* transa, const char* transb, int* m, int* n, int* k,
           const float* alpha, const float* a, int* lda, const float* b,
           int* ldb, float* beta, float* c, int* ldc);
}

namespace faiss_ehi {

namespace {
int to_int(int64_t v) {
    FAISS_THROW_IF_NOT_MSG(v >= 0 && v < (int64_t(1) << 31),
                           "matrix dimension too large for 32-bit BLAS");
    return int(v);
}
/* Inside an active OpenMP region (Faiss's IVF search runs its query slices
 * on OpenMP threads and routes each slice through the tree) a
 * multithreaded BLAS would start its own threads from every OpenMP thread
 * and oversubscribe the cores: at batch 1024 on Fashion-MNIST the CPU
 * index fell from 13,483 to 2,439 QPS that way. There the products are
 * computed on the calling thread with the kernels below. */
bool in_omp_worker() {
    return omp_in_parallel() != 0;
}

/// c (cols) += a * b (cols), vectorised.
FAISS_EHI_AVX2_CLONES void axpy(int64_t cols, float a, const float* b,
                                float* c) {
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) {
        c[j] += a * b[j];
    }
}
} // namespace

void gemm_rowmajor(int64_t rows, int64_t cols, int64_t inner, const float* A,
                   int64_t lda, const float* Bm, int64_t ldb, float* C,
                   int64_t ldc) {
    if (rows == 0 || cols == 0) {
        return;
    }
    if (in_omp_worker()) {
        for (int64_t i = 0; i < rows; i++) {
            float* c = C + i * ldc;
            for (int64_t j = 0; j < cols; j++) {
                c[j] = 0;
            }
            for (int64_t t = 0; t < inner; t++) {
                axpy(cols, A[i * lda + t], Bm + t * ldb, c);
            }
        }
        return;
    }
    // Row-major C = A * B is column-major C^T = B^T * A^T.
    int m = to_int(cols), n = to_int(rows), k = to_int(inner);
    int ia = to_int(lda), ib = to_int(ldb), ic = to_int(ldc);
    float one = 1, zero = 0;
    sgemm_("N", "N", &m, &n, &k, &one, Bm, &ib, A, &ia, &zero, C, &ic);
}

void gemm_rowmajor_bt(int64_t rows, int64_t cols, int64_t inner, const float* A,
                      const float* Bm, float* C) {
    if (rows == 0 || cols == 0) {
        return;
    }
    if (in_omp_worker()) {
        for (int64_t i = 0; i < rows; i++) {
            matvec_rows(cols, inner, Bm, A + i * inner, C + i * cols);
        }
        return;
    }
    int m = to_int(cols), n = to_int(rows), k = to_int(inner);
    float one = 1, zero = 0;
    sgemm_("T", "N", &m, &n, &k, &one, Bm, &k, A, &k, &zero, C, &m);
}

FAISS_EHI_AVX2_CLONES void matvec_rows(int64_t rows, int64_t cols,
                                       const float* M, const float* x,
                                       float* y) {
    for (int64_t r = 0; r < rows; r++) {
        const float* w = M + r * cols;
        float acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < cols; j++) {
            acc += w[j] * x[j];
        }
        y[r] = acc;
    }
}

} // namespace faiss_ehi
