/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Loads of stored list vectors (fp32 or fp16) as floats, and the
 * accumulation of L2 / inner-product terms, shared by both scan kernels
 * (ScanKernels.cu, ListMajorScan.cu). Internal header (device code).
 */
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace faiss_ehi {
namespace gpu {

/// acc + sum of the 4 terms: q.x (inner product) or squared differences.
template <bool IP>
__device__ __forceinline__ float acc4(float acc, float4 q, float4 x) {
    if (IP) {
        return acc + q.x * x.x + q.y * x.y + q.z * x.z + q.w * x.w;
    }
    float a = q.x - x.x, b = q.y - x.y, c = q.z - x.z, e = q.w - x.w;
    return acc + a * a + b * b + c * c + e * e;
}

/// acc + one term.
template <bool IP>
__device__ __forceinline__ float acc1(float acc, float q, float x) {
    if (IP) {
        return acc + q * x;
    }
    float t = q - x;
    return acc + t * t;
}

/// Components 4*j4 .. 4*j4+3 of x (16-byte aligned rows; fp16: 8 bytes).
__device__ __forceinline__ float4 load4(const float* x, int j4) {
    return __ldg(reinterpret_cast<const float4*>(x) + j4);
}
__device__ __forceinline__ float4 load4(const __half* x, int j4) {
    uint2 raw = __ldg(reinterpret_cast<const uint2*>(x) + j4);
    __half2 h0 = *reinterpret_cast<__half2*>(&raw.x);
    __half2 h1 = *reinterpret_cast<__half2*>(&raw.y);
    float2 f0 = __half22float2(h0), f1 = __half22float2(h1);
    return make_float4(f0.x, f0.y, f1.x, f1.y);
}

/// Component j of x.
__device__ __forceinline__ float load1(const float* x, int j) {
    return __ldg(x + j);
}
__device__ __forceinline__ float load1(const __half* x, int j) {
    return __half2float(x[j]);
}

} // namespace gpu
} // namespace faiss_ehi
