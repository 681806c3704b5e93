/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Small CUDA helpers of the GPU search: error checks and an owning device
 * buffer. Internal header (host code, no kernels).
 */
#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime_api.h>

#include <faiss/impl/FaissAssert.h>

#define EHI_CUDA_CHECK(expr)                                                   \
    do {                                                                       \
        cudaError_t err_ = (expr);                                             \
        FAISS_THROW_IF_NOT_FMT(err_ == cudaSuccess, "CUDA error %s: %s (%s)",  \
                               cudaGetErrorName(err_),                         \
                               cudaGetErrorString(err_), #expr);               \
    } while (0)

namespace faiss_ehi {
namespace gpu {

/// An owning device allocation that only grows (contents not kept).
template <typename T>
struct DeviceBuffer {
    T* ptr = nullptr;
    size_t cap = 0; ///< elements

    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        release();
    }
    void release() {
        if (ptr) {
            cudaFree(ptr);
        }
        ptr = nullptr;
        cap = 0;
    }
    /// Ensure room for n elements (reallocates, contents lost).
    T* reserve(size_t n) {
        if (n > cap) {
            release();
            size_t bytes = std::max<size_t>(n, 1) * sizeof(T);
            EHI_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr), bytes));
            cap = n;
        }
        return ptr;
    }
    /// Allocate exactly n elements and copy them from the host.
    void upload(const T* host, size_t n, cudaStream_t stream = 0) {
        reserve(n);
        if (n) {
            EHI_CUDA_CHECK(cudaMemcpyAsync(ptr, host, n * sizeof(T),
                                           cudaMemcpyHostToDevice, stream));
        }
    }
};

} // namespace gpu
} // namespace faiss_ehi
