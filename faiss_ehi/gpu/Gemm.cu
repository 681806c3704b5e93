/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "faiss_ehi/gpu/Gemm.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include <cublas_v2.h>

#include "faiss_ehi/gpu/DeviceUtils.h"

namespace faiss_ehi {
namespace gpu {

namespace {

// cuBLAS entry points, resolved with dlsym (the declarations of
// cublas_v2.h give their types; nothing is linked).
struct CublasApi {
    decltype(&cublasCreate_v2) create = nullptr;
    decltype(&cublasSetStream_v2) set_stream = nullptr;
    decltype(&cublasSgemm_v2) sgemm = nullptr;
    decltype(&cublasGetVersion_v2) get_version = nullptr;
    cublasHandle_t handle = nullptr;
    bool ok = false;
    std::string name = "built-in kernel (cuBLAS not found)";
};

CublasApi& cublas() {
    static CublasApi api;
    static std::once_flag once;
    std::call_once(once, [] {
        if (std::getenv("FAISS_EHI_NO_CUBLAS")) {
            api.name = "built-in kernel (FAISS_EHI_NO_CUBLAS set)";
            return;
        }
        const char* names[] = {"libcublas.so.13", "libcublas.so.12",
                               "libcublas.so"};
        void* lib = nullptr;
        for (const char* n : names) {
            lib = dlopen(n, RTLD_NOW | RTLD_GLOBAL);
            if (lib) {
                break;
            }
        }
        if (!lib) {
            return;
        }
        api.create = reinterpret_cast<decltype(api.create)>(
                dlsym(lib, "cublasCreate_v2"));
        api.set_stream = reinterpret_cast<decltype(api.set_stream)>(
                dlsym(lib, "cublasSetStream_v2"));
        api.sgemm = reinterpret_cast<decltype(api.sgemm)>(
                dlsym(lib, "cublasSgemm_v2"));
        api.get_version = reinterpret_cast<decltype(api.get_version)>(
                dlsym(lib, "cublasGetVersion_v2"));
        if (!api.create || !api.set_stream || !api.sgemm) {
            return;
        }
        if (api.create(&api.handle) != CUBLAS_STATUS_SUCCESS) {
            return;
        }
        int version = 0;
        if (api.get_version) {
            api.get_version(api.handle, &version);
        }
        api.ok = true;
        api.name = "cuBLAS " + std::to_string(version);
    });
    return api;
}

constexpr int kTile = 32;

/// Fallback: C = A * op(B), 32x32 tiles in shared memory.
__global__ void gemm_kernel(bool trans_b, int M, int N, int K,
                            const float* __restrict__ A, int lda,
                            const float* __restrict__ Bm, int ldb,
                            float* __restrict__ C, int ldc) {
    __shared__ float As[kTile][kTile + 1];
    __shared__ float Bs[kTile][kTile + 1];
    int tx = threadIdx.x, ty = threadIdx.y; // 32 x 8
    int row0 = blockIdx.y * kTile, col0 = blockIdx.x * kTile;
    float acc[4] = {0, 0, 0, 0};
    for (int k0 = 0; k0 < K; k0 += kTile) {
        for (int r = ty; r < kTile; r += 8) {
            int gr = row0 + r, gk = k0 + tx;
            As[r][tx] = (gr < M && gk < K) ? A[size_t(gr) * lda + gk] : 0.f;
            // Bs[k][n]
            int gn = col0 + r;
            if (trans_b) {
                Bs[tx][r] =
                        (gn < N && gk < K) ? Bm[size_t(gn) * ldb + gk] : 0.f;
            } else {
                int kk = k0 + r, nn = col0 + tx;
                Bs[r][tx] =
                        (kk < K && nn < N) ? Bm[size_t(kk) * ldb + nn] : 0.f;
            }
        }
        __syncthreads();
        for (int kk = 0; kk < kTile; kk++) {
            float b = Bs[kk][tx];
            for (int i = 0; i < 4; i++) {
                acc[i] += As[ty + 8 * i][kk] * b;
            }
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        int r = row0 + ty + 8 * i, c = col0 + tx;
        if (r < M && c < N) {
            C[size_t(r) * ldc + c] = acc[i];
        }
    }
}

} // namespace

const char* gemm_backend() {
    return cublas().name.c_str();
}

void gemm_rowmajor(cudaStream_t stream, bool trans_b, int M, int N, int K,
                   const float* A, int lda, const float* Bm, int ldb, float* C,
                   int ldc) {
    if (M == 0 || N == 0) {
        return;
    }
    CublasApi& api = cublas();
    if (api.ok) {
        // Row-major C = A op(B)  <=>  column-major C^T = op(B)^T A^T.
        static std::mutex mu; // the handle is shared
        std::lock_guard<std::mutex> lock(mu);
        float one = 1.f, zero = 0.f;
        api.set_stream(api.handle, stream);
        cublasStatus_t st = api.sgemm(
                api.handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N,
                M, K, &one, Bm, ldb, A, lda, &zero, C, ldc);
        FAISS_THROW_IF_NOT_FMT(st == CUBLAS_STATUS_SUCCESS,
                               "cublasSgemm failed with status %d", int(st));
        return;
    }
    dim3 block(kTile, 8);
    dim3 grid((N + kTile - 1) / kTile, (M + kTile - 1) / kTile);
    gemm_kernel<<<grid, block, 0, stream>>>(trans_b, M, N, K, A, lda, Bm, ldb,
                                            C, ldc);
    EHI_CUDA_CHECK(cudaGetLastError());
}

} // namespace gpu
} // namespace faiss_ehi
