/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "faiss_ehi/gpu/ListMajorScan.h"

#include <algorithm>
#include <cfloat>

#include <cuda_fp16.h>

#include "faiss_ehi/gpu/BlockSelect.cuh"
#include "faiss_ehi/gpu/VectorLoads.cuh"

namespace faiss_ehi {
namespace gpu {

namespace {

constexpr int kThreads = 256;
constexpr int G = kListMajorGroup;
/// List vectors per block (lists are cut into segments for parallelism).
constexpr int kSegment = 256;

/// Per query: entry prefix over its probes, its total, and list counts.
__global__ void count_kernel(int n, int nprobe, const int64_t* probes,
                             const int64_t* offsets, int* probe_prefix,
                             int64_t* qtotal, int* list_cnt) {
    int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= n) {
        return;
    }
    int s = 0;
    int* pp = probe_prefix + size_t(q) * (nprobe + 1);
    for (int p = 0; p < nprobe; p++) {
        int64_t l = probes[size_t(q) * nprobe + p];
        pp[p] = s;
        if (l >= 0) {
            s += int(offsets[l + 1] - offsets[l]);
            atomicAdd(list_cnt + l, 1);
        }
    }
    pp[nprobe] = s;
    qtotal[q] = s;
}

/// out[0] = 0, out[i+1] = in[0] + ... + in[i]; one block of 1024 threads.
template <typename T>
__global__ void exclusive_scan_kernel(int64_t n, const T* in, int64_t* out) {
    __shared__ int64_t part[1024];
    int t = threadIdx.x;
    int64_t per = (n + blockDim.x - 1) / blockDim.x;
    int64_t b = t * per, e = min(n, b + per);
    int64_t s = 0;
    for (int64_t i = b; i < e; i++) {
        s += in[i];
    }
    part[t] = s;
    __syncthreads();
    if (t == 0) {
        int64_t acc = 0;
        for (int i = 0; i < int(blockDim.x); i++) {
            int64_t v = part[i];
            part[i] = acc;
            acc += v;
        }
    }
    __syncthreads();
    s = part[t];
    if (t == 0) {
        out[0] = 0;
    }
    for (int64_t i = b; i < e; i++) {
        s += in[i];
        out[i + 1] = s;
    }
}

__global__ void scatter_kernel(int n, int nprobe, const int64_t* probes,
                               const int64_t* list_off, int* cursor,
                               int* pairs) {
    int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= int64_t(n) * nprobe) {
        return;
    }
    int64_t l = probes[t];
    if (l < 0) {
        return;
    }
    int pos = atomicAdd(cursor + l, 1);
    pairs[list_off[l] + pos] = int(t);
}

/** Block (list l = blockIdx.x, query groups blockIdx.y + i * gridDim.y):
 * each warp takes list vectors in turn and computes their distances to the
 * group's G queries (held in shared memory). Writes the key (L2 distance,
 * or -inner product) to dist[qoffset[q] + probe_prefix[q][p] + entry]. */
template <typename T, bool IP>
__global__ void distance_kernel(int d, int nprobe, const float* queries,
                                const int64_t* offsets, const T* codes,
                                const int64_t* list_off, const int* pairs,
                                const int* probe_prefix, const int64_t* qoffset,
                                float* dist) {
    extern __shared__ float4 smem4[];
    float* qs = reinterpret_cast<float*>(smem4); // G x d
    __shared__ int64_t out_base[G];
    int64_t l = blockIdx.x;
    int64_t pb = list_off[l], pe = list_off[l + 1];
    int64_t npairs = pe - pb;
    if (npairs == 0) {
        return;
    }
    int64_t e0 = offsets[l];
    int size = int(offsets[l + 1] - e0);
    int v0 = blockIdx.z * kSegment;
    if (v0 >= size) {
        return;
    }
    int ne = min(size, v0 + kSegment);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int nwarps = blockDim.x >> 5;
    const bool vec4 = (d & 3) == 0;
    for (int64_t g0 = int64_t(blockIdx.y) * G; g0 < npairs;
         g0 += int64_t(gridDim.y) * G) {
        int gc = npairs - g0 < G ? int(npairs - g0) : G;
        __syncthreads(); // previous group done with qs
        for (int i = 0; i < G; i++) {
            int pair = i < gc ? pairs[pb + g0 + i] : -1;
            int q = pair >= 0 ? pair / nprobe : 0;
            int p = pair >= 0 ? pair % nprobe : 0;
            for (int j = threadIdx.x; j < d; j += blockDim.x) {
                qs[i * d + j] = pair >= 0 ? queries[size_t(q) * d + j] : 0.f;
            }
            if (threadIdx.x == 0) {
                out_base[i] = pair >= 0 ? qoffset[q] +
                                probe_prefix[size_t(q) * (nprobe + 1) + p]
                                        : -1;
            }
        }
        __syncthreads();
        for (int v = v0 + warp; v < ne; v += nwarps) {
            const T* x = codes + size_t(e0 + v) * d;
            float acc[G];
#pragma unroll
            for (int i = 0; i < G; i++) {
                acc[i] = 0;
            }
            if (vec4) {
                for (int j = lane; j < d / 4; j += 32) {
                    float4 xv = load4(x, j);
#pragma unroll
                    for (int i = 0; i < G; i++) {
                        float4 qv =
                                reinterpret_cast<const float4*>(qs + i * d)[j];
                        acc[i] = acc4<IP>(acc[i], qv, xv);
                    }
                }
            } else {
                for (int j = lane; j < d; j += 32) {
                    float xv = load1(x, j);
#pragma unroll
                    for (int i = 0; i < G; i++) {
                        float qv = qs[i * d + j];
                        if (IP) {
                            acc[i] += qv * xv;
                        } else {
                            float t = qv - xv;
                            acc[i] += t * t;
                        }
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < G; i++) {
                for (int o = 16; o > 0; o >>= 1) {
                    acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], o);
                }
            }
#pragma unroll
            for (int i = 0; i < G; i++) {
                if (lane == i && i < gc) {
                    dist[out_base[i] + v] = IP ? -acc[i] : acc[i];
                }
            }
        }
    }
}

/// One block per query: k-selection over its buffered distances.
__global__ void select_buffer_kernel(int nprobe, int k, bool dedup, bool ip,
                                     const int64_t* probes,
                                     const int64_t* offsets, const int64_t* ids,
                                     const int* probe_prefix,
                                     const int64_t* qoffset, const float* dist,
                                     float* D, int64_t* I) {
    extern __shared__ int prefix[]; // nprobe + 1
    __shared__ float skey[kSelectCap];
    __shared__ int64_t sid[kSelectCap];
    __shared__ int count;
    __shared__ float thr;
    int64_t q = blockIdx.x;
    const int* pp = probe_prefix + size_t(q) * (nprobe + 1);
    for (int p = threadIdx.x; p <= nprobe; p += blockDim.x) {
        prefix[p] = pp[p];
    }
    BlockSelect sel{skey, sid, &count, &thr, 0, 0, false};
    sel.init(k, dedup); // synchronises
    const int64_t* pq = probes + size_t(q) * nprobe;
    int total = prefix[nprobe];
    const float* dq = dist + qoffset[q];
    for (int base = 0; base < total; base += blockDim.x) {
        sel.make_room();
        int e = base + threadIdx.x;
        if (e < total) {
            int lo = probe_of_entry(prefix, nprobe, e);
            int64_t pos = offsets[pq[lo]] + (e - prefix[lo]);
            sel.insert(dq[e], ids[pos]);
        }
    }
    sel.flush();
    sel.write(q, ip, D, I);
}

template <typename T, bool IP>
void launch_distance(cudaStream_t stream, dim3 grid, int d, int nprobe,
                     const float* queries, const int64_t* offsets,
                     const void* codes, const int64_t* list_off,
                     const int* pairs, const int* probe_prefix,
                     const int64_t* qoffset, float* dist) {
    size_t smem = sizeof(float) * G * d;
    auto kern = distance_kernel<T, IP>;
    if (smem > 40 * 1024) {
        EHI_CUDA_CHECK(cudaFuncSetAttribute(
                kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    }
    kern<<<grid, kThreads, smem, stream>>>(
            d, nprobe, queries, offsets, static_cast<const T*>(codes), list_off,
            pairs, probe_prefix, qoffset, dist);
}

} // namespace

bool list_major_supports(int d) {
    return size_t(G) * d * sizeof(float) <= 96 * 1024;
}

void launch_scan_list_major(cudaStream_t stream, ListMajorWorkspace& ws, int n,
                            int d, bool inner_product, bool fp16,
                            const float* queries, const int64_t* probes,
                            int nprobe, int64_t nlist, const int64_t* offsets,
                            const void* codes, const int64_t* ids, int k,
                            bool dedup, size_t max_entries,
                            int64_t max_list_size, float* D, int64_t* I) {
    if (n == 0) {
        return;
    }
    int* probe_prefix = ws.probe_prefix.reserve(size_t(n) * (nprobe + 1));
    int64_t* qtotal = ws.qtotal.reserve(n);
    int64_t* qoffset = ws.qoffset.reserve(size_t(n) + 1);
    int* list_cnt = ws.list_cnt.reserve(nlist);
    int64_t* list_off = ws.list_off.reserve(size_t(nlist) + 1);
    int* cursor = ws.cursor.reserve(nlist);
    int* pairs = ws.pairs.reserve(size_t(n) * nprobe);
    float* dist = ws.dist.reserve(std::max<size_t>(max_entries, 1));

    EHI_CUDA_CHECK(cudaMemsetAsync(list_cnt, 0, sizeof(int) * nlist, stream));
    EHI_CUDA_CHECK(cudaMemsetAsync(cursor, 0, sizeof(int) * nlist, stream));
    count_kernel<<<(n + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
            n, nprobe, probes, offsets, probe_prefix, qtotal, list_cnt);
    exclusive_scan_kernel<int64_t><<<1, 1024, 0, stream>>>(n, qtotal, qoffset);
    exclusive_scan_kernel<int>
            <<<1, 1024, 0, stream>>>(nlist, list_cnt, list_off);
    int64_t npairs = int64_t(n) * nprobe;
    scatter_kernel<<<unsigned((npairs + kThreads - 1) / kThreads), kThreads, 0,
                     stream>>>(n, nprobe, probes, list_off, cursor, pairs);
    EHI_CUDA_CHECK(cudaGetLastError());

    // groups per list: about twice the average, the rest by striding
    double avg = double(npairs) / double(nlist);
    int gy = int(std::min(64.0, std::max(1.0, 2.0 * std::ceil(avg / G))));
    int64_t nseg =
            std::max<int64_t>(1, (max_list_size + kSegment - 1) / kSegment);
    nseg = std::min<int64_t>(nseg, 65535);
    dim3 grid{unsigned(nlist), unsigned(gy), unsigned(nseg)};
    if (fp16) {
        if (inner_product) {
            launch_distance<__half, true>(stream, grid, d, nprobe, queries,
                                          offsets, codes, list_off, pairs,
                                          probe_prefix, qoffset, dist);
        } else {
            launch_distance<__half, false>(stream, grid, d, nprobe, queries,
                                           offsets, codes, list_off, pairs,
                                           probe_prefix, qoffset, dist);
        }
    } else {
        if (inner_product) {
            launch_distance<float, true>(stream, grid, d, nprobe, queries,
                                         offsets, codes, list_off, pairs,
                                         probe_prefix, qoffset, dist);
        } else {
            launch_distance<float, false>(stream, grid, d, nprobe, queries,
                                          offsets, codes, list_off, pairs,
                                          probe_prefix, qoffset, dist);
        }
    }
    EHI_CUDA_CHECK(cudaGetLastError());
    size_t smem = sizeof(int) * (nprobe + 1);
    select_buffer_kernel<<<n, kThreads, smem, stream>>>(
            nprobe, k, dedup, inner_product, probes, offsets, ids, probe_prefix,
            qoffset, dist, D, I);
    EHI_CUDA_CHECK(cudaGetLastError());
}

} // namespace gpu
} // namespace faiss_ehi
