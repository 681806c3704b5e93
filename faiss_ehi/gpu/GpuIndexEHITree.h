/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * GPU search for EHI indexes. Debian's Faiss has no GPU part, so
 * faiss-ehi brings its own CUDA search, next to the CPU index it mirrors.
 */
#pragma once

#include <memory>
#include <string>

#include <faiss/Index.h>

#include <faiss_ehi/IndexEHITree.h>

namespace faiss_ehi {
namespace gpu {

/// True when a CUDA device can be used; otherwise `why` says why.
bool cuda_device_available(std::string* why = nullptr);

/// Largest k and largest beam (nprobe) of the GPU search.
constexpr int kGpuMaxK = 1024;

struct GpuIndexEHITreeConfig {
    int device = 0;
    /// Store the list vectors as fp16 on the GPU (half the memory and
    /// bandwidth; distances then differ from the CPU's in the 3rd digit).
    bool use_float16 = false;
};

/// Device time of the searches since the last reset (CUDA events).
struct GpuSearchTiming {
    double route_ms = 0; ///< the tree's beam search
    double scan_ms = 0;  ///< list scanning and k-selection
    long nsearch = 0;
    void reset() {
        *this = GpuSearchTiming();
    }
};

/** An IndexEHITree searched on the GPU.
 *
 * Made from an IndexEHITree (index_cpu_to_gpu) and copied back
 * (index_gpu_to_cpu). The tree's parameters and the inverted lists live in
 * GPU memory (fp32, or fp16 with use_float16). A host copy of the CPU index
 * is kept as the master: add() assigns vectors on the CPU exactly as
 * IndexEHITree does (d2l, assign_rule), then the lists are uploaded again.
 *
 * search(n, x, k, D, I) routes on the GPU (per level one cuBLAS GEMM over
 * the query batch against all node rows, a log-softmax kernel, and a block
 * top-beam selection of the leaves; the best-first beam's exact top-beta
 * leaves, or the paper's level beam when the tree's strategy says so), then
 * scans the probed lists with a fused distance + k-selection kernel (L2 or
 * inner product; with d2l > 1 each id is returned once). nprobe is the beam.
 * k and nprobe are limited to kGpuMaxK. Results equal the CPU index's (same
 * ids, distances to float rounding) except where two leaves or two
 * distances tie to rounding.
 *
 * Not thread-safe for concurrent calls on one object beyond search (which
 * serialises on an internal mutex).
 */
struct GpuIndexEHITree : faiss::Index {
    size_t nprobe = 1; ///< the beam width (SearchParametersIVF overrides)
    /** List scan: 0 = automatic (list-major unless its distance buffer
     * would pass 1 GiB or d is too large for it), 1 = one block per query,
     * 2 = list-major (blocks per list segment of 256 vectors and group of
     * up to 8 of the batch's queries that probe the list; distances to a
     * buffer, then a k-selection per query). */
    int scan_mode = 0;
    /// Record device time of routing and scanning in `timing` (adds a
    /// device synchronisation per search).
    bool collect_timing = false;
    mutable GpuSearchTiming timing;

    explicit GpuIndexEHITree(
            const IndexEHITree& cpu,
            GpuIndexEHITreeConfig config = GpuIndexEHITreeConfig());
    ~GpuIndexEHITree() override;

    const GpuIndexEHITreeConfig& config() const {
        return config_;
    }

    /// Replace everything by a copy of `cpu` (tree, lists, parameters).
    void copyFrom(const IndexEHITree& cpu);
    /// A new CPU index equal to this one (the caller owns it).
    IndexEHITree* copyToCpu() const;
    /// The host master copy (read-only).
    const IndexEHITree& cpu_index() const {
        return *cpu_;
    }

    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* xids) override;
    void reset() override;
    /// params: optional faiss::SearchParametersIVF (nprobe).
    void search(idx_t n, const float* x, idx_t k, float* distances,
                idx_t* labels,
                const faiss::SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* recons) const override;

    /** The tree's beam search on the GPU: the `beam` most probable leaves
     * per input and their probabilities (n x beam, -1 / 0 past B^H), like
     * EHITree::route. strategy_override: -1 for the tree's own. */
    void route(idx_t n, const float* x, idx_t beam, idx_t* leaves, float* probs,
               int strategy_override = -1) const;

    /// The GEMM back-end in use ("cuBLAS ..." or the built-in kernel).
    static const char* gemm_backend();

    /// Bytes of GPU memory held by the lists.
    size_t list_bytes() const;

  private:
    struct Impl;
    GpuIndexEHITreeConfig config_;
    std::unique_ptr<IndexEHITree> cpu_;
    std::unique_ptr<Impl> impl_;

    void sync_from_cpu(bool tree, bool lists);
    /// GROUPED trees: leaves routed on the host, copied to the device.
    static void route_on_host(Impl& im, const EHITree& t, int nb,
                              const float* x, int beam);
};

/// GPU copy of an IndexEHITree (the caller owns it). Throws for any other
/// index type.
GpuIndexEHITree* index_cpu_to_gpu(
        const faiss::Index* index,
        GpuIndexEHITreeConfig config = GpuIndexEHITreeConfig());
/// CPU copy of a GPU index (the caller owns it).
IndexEHITree* index_gpu_to_cpu(const GpuIndexEHITree* index);

} // namespace gpu
} // namespace faiss_ehi
