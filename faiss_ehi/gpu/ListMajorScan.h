/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * List-major scan for query batches (launcher; internal header). Where many
 * queries of a batch probe the same list, each block loads a list's vectors
 * once for up to 8 of its queries: distances go to a per-query buffer, then
 * a k-selection per query (the same BlockSelect as the per-query scan).
 */
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "faiss_ehi/gpu/DeviceUtils.h"

namespace faiss_ehi {
namespace gpu {

/// Queries sharing one pass over a list.
constexpr int kListMajorGroup = 8;

struct ListMajorWorkspace {
    DeviceBuffer<int> probe_prefix; ///< n x (nprobe + 1)
    DeviceBuffer<int64_t> qtotal;   ///< n
    DeviceBuffer<int64_t> qoffset;  ///< n + 1
    DeviceBuffer<int> list_cnt;     ///< nlist
    DeviceBuffer<int64_t> list_off; ///< nlist + 1
    DeviceBuffer<int> cursor;       ///< nlist
    DeviceBuffer<int> pairs;        ///< n x nprobe (q * nprobe + p)
    DeviceBuffer<float> dist;       ///< max_entries
};

/// Whether the list-major scan handles dimension d (shared memory).
bool list_major_supports(int d);

/** Same contract as launch_scan_select; `max_entries` bounds the total of
 * the probed list sizes over the n queries (sizes the distance buffer);
 * max_list_size is the largest list's size (lists of up to 65535 * 256
 * entries). */
void launch_scan_list_major(cudaStream_t stream, ListMajorWorkspace& ws, int n,
                            int d, bool inner_product, bool fp16,
                            const float* queries, const int64_t* probes,
                            int nprobe, int64_t nlist, const int64_t* offsets,
                            const void* codes, const int64_t* ids, int k,
                            bool dedup, size_t max_entries,
                            int64_t max_list_size, float* D, int64_t* I);

} // namespace gpu
} // namespace faiss_ehi
