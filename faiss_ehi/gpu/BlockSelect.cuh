/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Block-wide k-selection in shared memory: the k smallest (key, id) pairs
 * of a stream of candidates, ties broken by the smaller id. Used for the
 * beam (key = -log P, id = leaf) and for the k nearest neighbours (key =
 * distance, or -inner product). Internal header (device code).
 *
 * The first kp = pow2 >= k slots hold the best pairs so far, sorted; new
 * candidates no worse than the current k-th best are appended behind them
 * and, when the buffer is full, everything is bitonic-sorted and the best kp
 * kept. With `dedup`, equal (key, id) pairs (the copies of one id stored in
 * several lists, d2l > 1) are reduced to one at each merge.
 */
#pragma once

#include <cfloat>
#include <cstdint>

#include <cuda_runtime.h>

namespace faiss_ehi {
namespace gpu {

/// Capacity of the selection buffer; k <= kSelectCap / 2.
constexpr int kSelectCap = 2048;
/// Largest k (and beam) the GPU search supports.
constexpr int kMaxSelectK = kSelectCap / 2;
/// The invalid id: sorts after every real id.
constexpr int64_t kNoId = INT64_MAX;

__device__ __forceinline__ bool pair_after(float ka, int64_t ia, float kb,
                                           int64_t ib) {
    return ka > kb || (ka == kb && ia > ib);
}

struct BlockSelect {
    float* key;  ///< kSelectCap shared floats
    int64_t* id; ///< kSelectCap shared ids
    int* count;  ///< shared: candidates appended behind the kp best
    float* thr;  ///< shared: key of the k-th best so far
    int k, kp;
    bool dedup;

    /// All threads; ends synchronised.
    __device__ void init(int k_, bool dedup_) {
        k = k_;
        kp = 1;
        while (kp < k) {
            kp <<= 1;
        }
        dedup = dedup_;
        for (int i = threadIdx.x; i < kSelectCap; i += blockDim.x) {
            key[i] = INFINITY;
            id[i] = kNoId;
        }
        if (threadIdx.x == 0) {
            *count = 0;
            *thr = INFINITY;
        }
        __syncthreads();
    }

    __device__ void sort(int len) {
        for (int size = 2; size <= len; size <<= 1) {
            for (int stride = size >> 1; stride > 0; stride >>= 1) {
                for (int t = threadIdx.x; t < len / 2; t += blockDim.x) {
                    int i = 2 * t - (t & (stride - 1));
                    int j = i + stride;
                    bool asc = (i & size) == 0;
                    float ki = key[i], kj = key[j];
                    int64_t ii = id[i], ij = id[j];
                    if (pair_after(ki, ii, kj, ij) == asc) {
                        key[i] = kj;
                        key[j] = ki;
                        id[i] = ij;
                        id[j] = ii;
                    }
                }
                __syncthreads();
            }
        }
    }

    /// All threads, uniformly. Merges the appended candidates.
    __device__ void flush() {
        __syncthreads();
        int n = kp + *count;
        int len = 2;
        while (len < n) {
            len <<= 1;
        }
        __syncthreads(); // everyone has read count
        sort(len);
        if (dedup) {
            // Mark the second and later copies of equal pairs.
            __shared__ int any;
            if (threadIdx.x == 0) {
                any = 0;
            }
            __syncthreads();
            bool mark[kSelectCap / 128];
            int nm = 0;
            for (int i = threadIdx.x; i < len; i += blockDim.x, nm++) {
                mark[nm] = i > 0 && id[i] != kNoId && id[i] == id[i - 1] &&
                        key[i] == key[i - 1];
            }
            __syncthreads();
            nm = 0;
            for (int i = threadIdx.x; i < len; i += blockDim.x, nm++) {
                if (mark[nm]) {
                    key[i] = INFINITY;
                    id[i] = kNoId;
                    any = 1;
                }
            }
            __syncthreads();
            if (any) {
                sort(len);
            }
        }
        // Clear the candidate area.
        for (int i = kp + threadIdx.x; i < len; i += blockDim.x) {
            key[i] = INFINITY;
            id[i] = kNoId;
        }
        if (threadIdx.x == 0) {
            *count = 0;
            *thr = key[k - 1];
        }
        __syncthreads();
    }

    /// Called uniformly before each round of at most blockDim.x inserts.
    __device__ void make_room() {
        __syncthreads();
        int c = *count;
        // Every thread has read the count before any thread inserts again,
        // so that all take the same branch (flush synchronises).
        __syncthreads();
        if (c > kSelectCap - kp - int(blockDim.x)) {
            flush();
        }
    }

    /// Any thread; at most one call per thread between make_room calls.
    __device__ void insert(float kv, int64_t iv) {
        if (kv <= *thr) {
            int pos = atomicAdd(count, 1);
            key[kp + pos] = kv;
            id[kp + pos] = iv;
        }
    }

    /** After flush (all threads): query q's k results into D and I (row q,
     * k columns). Keys of inner-product searches are negated scores. Missing
     * results get id -1 and the worst distance, as Faiss does. */
    __device__ void write(int64_t q, bool ip, float* D, int64_t* I) const {
        for (int j = threadIdx.x; j < k; j += blockDim.x) {
            bool ok = id[j] != kNoId;
            I[size_t(q) * k + j] = ok ? id[j] : -1;
            D[size_t(q) * k + j] =
                    ok ? (ip ? -key[j] : key[j]) : (ip ? -FLT_MAX : FLT_MAX);
        }
    }
};

/** Probe (index into a query's probe list) of the query's e-th probed entry,
 * the entries numbered list after list: prefix[p] entries come before probe
 * p (prefix has nprobe + 1 ascending values, prefix[0] = 0, e <
 * prefix[nprobe]). Empty lists are skipped (the last p with prefix[p] <= e). */
__device__ __forceinline__ int probe_of_entry(const int* prefix, int nprobe,
                                              int e) {
    int lo = 0, hi = nprobe - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (prefix[mid] <= e) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

} // namespace gpu
} // namespace faiss_ehi
