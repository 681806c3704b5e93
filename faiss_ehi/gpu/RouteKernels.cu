/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "faiss_ehi/gpu/RouteKernels.h"

#include "faiss_ehi/gpu/BlockSelect.cuh"
#include "faiss_ehi/gpu/DeviceUtils.h"

namespace faiss_ehi {
namespace gpu {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

/// One warp per (query, node); lanes stride over the B children.
__global__ void level_log_softmax_kernel(int n, int64_t Nv, int B,
                                         const float* S, const float* node_add,
                                         const float* q_add, int ld_qadd,
                                         const float* prev, float* out) {
    int64_t gw = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (gw >= int64_t(n) * Nv) {
        return;
    }
    int64_t q = gw / Nv, v = gw % Nv;
    size_t row = size_t(q) * Nv * B + size_t(v) * B;
    // child c's score; recomputed in each pass (cheaper than storing it)
    auto score = [&](int c) {
        float s = S[row + c];
        if (node_add) {
            s += node_add[size_t(v) * B + c];
        }
        if (q_add) {
            s += q_add[size_t(q) * ld_qadd + c];
        }
        return s;
    };
    float mx = -INFINITY;
    for (int c = lane; c < B; c += 32) {
        mx = fmaxf(mx, score(c));
    }
    mx = warp_max(mx);
    float sum = 0;
    for (int c = lane; c < B; c += 32) {
        sum += expf(score(c) - mx);
    }
    sum = warp_sum(sum);
    float lse = mx + logf(sum);
    float base = prev ? prev[size_t(q) * Nv + v] : 0.0f;
    __syncwarp();
    for (int c = lane; c < B; c += 32) {
        out[row + c] = base + fminf(score(c) - lse, 0.0f);
    }
}

__global__ void paper_hidden_kernel(int n, int64_t Nv, int nh, const float* P,
                                    int ldp, const float* Uoff, float* Z) {
    size_t total = size_t(n) * Nv * nh;
    for (size_t t = size_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
         t += size_t(gridDim.x) * blockDim.x) {
        size_t i = t % nh;
        size_t qv = t / nh;
        size_t v = qv % Nv, q = qv / Nv;
        Z[t] = fmaxf(P[q * ldp + i] + Uoff[v * nh + i], 0.0f);
    }
}

__global__ void select_largest_kernel(int64_t L, const float* vals, int beam,
                                      int64_t* out_idx, float* out_val) {
    __shared__ float skey[kSelectCap];
    __shared__ int64_t sid[kSelectCap];
    __shared__ int count;
    __shared__ float thr;
    BlockSelect sel{skey, sid, &count, &thr, 0, 0, false};
    sel.init(beam, false);
    const float* row = vals + size_t(blockIdx.x) * L;
    for (int64_t base = 0; base < L; base += blockDim.x) {
        sel.make_room();
        int64_t i = base + threadIdx.x;
        if (i < L) {
            float v = row[i];
            if (v > -INFINITY) {
                sel.insert(-v, i);
            }
        }
    }
    sel.flush();
    for (int j = threadIdx.x; j < beam; j += blockDim.x) {
        bool ok = sid[j] != kNoId;
        out_idx[size_t(blockIdx.x) * beam + j] = ok ? sid[j] : -1;
        out_val[size_t(blockIdx.x) * beam + j] = ok ? -skey[j] : -INFINITY;
    }
}

__global__ void fill_kernel(size_t n, float v, float* out) {
    for (size_t t = size_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
         t += size_t(gridDim.x) * blockDim.x) {
        out[t] = v;
    }
}

/// One block per query; threads over (kept node, child).
__global__ void mask_children_kernel(int64_t Nv, int B, const float* logp,
                                     const int64_t* kept, int beam,
                                     float* out) {
    int64_t q = blockIdx.x;
    for (int t = threadIdx.x; t < beam * B; t += blockDim.x) {
        int64_t v = kept[q * beam + t / B];
        if (v < 0) {
            continue;
        }
        size_t i = size_t(q) * Nv * B + size_t(v) * B + t % B;
        out[i] = logp[i];
    }
}

int grid_for(size_t total) {
    size_t g = (total + kThreads - 1) / kThreads;
    return int(std::min<size_t>(std::max<size_t>(g, 1), 65535 * 16));
}

} // namespace

void launch_level_log_softmax(cudaStream_t stream, int n, int64_t Nv, int B,
                              const float* S, const float* node_add,
                              const float* q_add, int ld_qadd,
                              const float* prev, float* out) {
    size_t threads = size_t(n) * Nv * 32;
    size_t blocks = (threads + kThreads - 1) / kThreads;
    if (blocks == 0) {
        return;
    }
    level_log_softmax_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(
            n, Nv, B, S, node_add, q_add, ld_qadd, prev, out);
    EHI_CUDA_CHECK(cudaGetLastError());
}

void launch_paper_hidden(cudaStream_t stream, int n, int64_t Nv, int nh,
                         const float* P, int ldp, const float* Uoff, float* Z) {
    size_t total = size_t(n) * Nv * nh;
    if (total == 0) {
        return;
    }
    paper_hidden_kernel<<<grid_for(total), kThreads, 0, stream>>>(n, Nv, nh, P,
                                                                  ldp, Uoff, Z);
    EHI_CUDA_CHECK(cudaGetLastError());
}

void launch_select_largest(cudaStream_t stream, int n, int64_t L,
                           const float* vals, int beam, int64_t* out_idx,
                           float* out_val) {
    if (n == 0) {
        return;
    }
    select_largest_kernel<<<n, kThreads, 0, stream>>>(L, vals, beam, out_idx,
                                                      out_val);
    EHI_CUDA_CHECK(cudaGetLastError());
}

void launch_mask_children(cudaStream_t stream, int n, int64_t Nv, int B,
                          const float* logp, const int64_t* kept, int beam,
                          float* out) {
    size_t total = size_t(n) * Nv * B;
    if (total == 0) {
        return;
    }
    fill_kernel<<<grid_for(total), kThreads, 0, stream>>>(total, -INFINITY,
                                                          out);
    mask_children_kernel<<<n, kThreads, 0, stream>>>(Nv, B, logp, kept, beam,
                                                     out);
    EHI_CUDA_CHECK(cudaGetLastError());
}

} // namespace gpu
} // namespace faiss_ehi
