/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "faiss_ehi/gpu/ScanKernels.h"

#include <cfloat>
#include <cstring>

#include <cuda_fp16.h>

#include "faiss_ehi/gpu/BlockSelect.cuh"
#include "faiss_ehi/gpu/DeviceUtils.h"
#include "faiss_ehi/gpu/VectorLoads.cuh"

namespace faiss_ehi {
namespace gpu {

namespace {

constexpr int kThreads = 256;

/// Partial distance (lanes stride over the dimensions): generic path.
template <bool IP, typename T>
__device__ __forceinline__ float partial_scalar(const float* qs, const T* x,
                                                int d, int lane) {
    float acc = 0;
#pragma unroll 4
    for (int j = lane; j < d; j += 32) {
        acc = acc1<IP>(acc, qs[j], load1(x, j));
    }
    return acc;
}

/// Vector path, d % 4 == 0: 16-byte (fp32) or 8-byte (fp16) loads.
template <bool IP, typename T>
__device__ __forceinline__ float partial_vec(const float* qs, const T* x, int d,
                                             int lane) {
    const float4* q4 = reinterpret_cast<const float4*>(qs);
    float acc = 0;
#pragma unroll 2
    for (int j = lane; j < d / 4; j += 32) {
        acc = acc4<IP>(acc, q4[j], load4(x, j));
    }
    return acc;
}

/** One block per query. The query's probed entries are numbered 0..total-1
 * (list after list, in probe order); each warp computes the distances of 32
 * consecutive entries (lanes over the dimensions, coalesced), then every
 * thread offers its entry to the block's k-selection. */
template <typename T, bool IP>
__global__ void scan_select_kernel(int d, const float* queries,
                                   const int64_t* probes, int nprobe,
                                   const int64_t* offsets, const T* codes,
                                   const int64_t* ids, int k, bool dedup,
                                   float* D, int64_t* I) {
    extern __shared__ float4 smem4[];
    float* qs = reinterpret_cast<float*>(smem4);  // d (16-byte aligned)
    int* prefix = reinterpret_cast<int*>(qs + d); // nprobe + 1
    __shared__ float skey[kSelectCap];
    __shared__ int64_t sid[kSelectCap];
    __shared__ int count;
    __shared__ float thr;

    int64_t q = blockIdx.x;
    const float* xq = queries + size_t(q) * d;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        qs[j] = xq[j];
    }
    const int64_t* pq = probes + size_t(q) * nprobe;
    for (int p = threadIdx.x; p < nprobe; p += blockDim.x) {
        int64_t l = pq[p];
        prefix[p + 1] = l >= 0 ? int(offsets[l + 1] - offsets[l]) : 0;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        prefix[0] = 0;
        for (int p = 0; p < nprobe; p++) {
            prefix[p + 1] += prefix[p];
        }
    }
    BlockSelect sel{skey, sid, &count, &thr, 0, 0, false};
    sel.init(k, dedup); // synchronises
    int total = prefix[nprobe];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const bool vec4 = (d & 3) == 0;

    for (int base = 0; base < total; base += blockDim.x) {
        sel.make_room();
        int e = base + warp * 32 + lane;
        int64_t pos = -1;
        if (e < total) {
            int lo = probe_of_entry(prefix, nprobe, e);
            pos = offsets[pq[lo]] + (e - prefix[lo]);
        }
        float mine = 0;
        for (int v = 0; v < 32; v++) {
            int64_t pv = __shfl_sync(0xffffffffu, pos, v);
            if (pv < 0) {
                break; // entries past the end come last
            }
            const T* x = codes + size_t(pv) * d;
            float acc = vec4 ? partial_vec<IP>(qs, x, d, lane)
                             : partial_scalar<IP>(qs, x, d, lane);
            for (int o = 16; o > 0; o >>= 1) {
                acc += __shfl_xor_sync(0xffffffffu, acc, o);
            }
            if (lane == v) {
                mine = acc;
            }
        }
        if (pos >= 0) {
            sel.insert(IP ? -mine : mine, ids[pos]);
        }
    }
    sel.flush();
    sel.write(q, IP, D, I);
}

template <typename T, bool IP>
void launch_typed(cudaStream_t stream, int n, int d, const float* queries,
                  const int64_t* probes, int nprobe, const int64_t* offsets,
                  const void* codes, const int64_t* ids, int k, bool dedup,
                  float* D, int64_t* I) {
    size_t smem = sizeof(float) * d + sizeof(int) * (nprobe + 1);
    auto kern = scan_select_kernel<T, IP>;
    if (smem > 16 * 1024) {
        EHI_CUDA_CHECK(cudaFuncSetAttribute(
                kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    }
    kern<<<n, kThreads, smem, stream>>>(d, queries, probes, nprobe, offsets,
                                        static_cast<const T*>(codes), ids, k,
                                        dedup, D, I);
    EHI_CUDA_CHECK(cudaGetLastError());
}

} // namespace

void launch_scan_select(cudaStream_t stream, int n, int d, bool inner_product,
                        bool fp16, const float* queries, const int64_t* probes,
                        int nprobe, const int64_t* offsets, const void* codes,
                        const int64_t* ids, int k, bool dedup, float* D,
                        int64_t* I) {
    if (n == 0) {
        return;
    }
    if (fp16) {
        if (inner_product) {
            launch_typed<__half, true>(stream, n, d, queries, probes, nprobe,
                                       offsets, codes, ids, k, dedup, D, I);
        } else {
            launch_typed<__half, false>(stream, n, d, queries, probes, nprobe,
                                        offsets, codes, ids, k, dedup, D, I);
        }
    } else {
        if (inner_product) {
            launch_typed<float, true>(stream, n, d, queries, probes, nprobe,
                                      offsets, codes, ids, k, dedup, D, I);
        } else {
            launch_typed<float, false>(stream, n, d, queries, probes, nprobe,
                                       offsets, codes, ids, k, dedup, D, I);
        }
    }
}

void floats_to_half(const float* x, size_t n, uint16_t* out) {
    for (size_t i = 0; i < n; i++) {
        __half_raw r = __half_raw(__float2half_rn(x[i]));
        out[i] = r.x;
    }
}

void half_to_floats(const uint16_t* x, size_t n, float* out) {
    for (size_t i = 0; i < n; i++) {
        __half_raw r;
        r.x = x[i];
        out[i] = __half2float(__half(r));
    }
}

} // namespace gpu
} // namespace faiss_ehi
