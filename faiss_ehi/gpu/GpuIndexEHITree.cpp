/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "faiss_ehi/gpu/GpuIndexEHITree.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <limits>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/invlists/InvertedLists.h>

#include <faiss_ehi/index_io.h>

#include "faiss_ehi/gpu/DeviceUtils.h"
#include "faiss_ehi/gpu/Gemm.h"
#include "faiss_ehi/gpu/ListMajorScan.h"
#include "faiss_ehi/gpu/RouteKernels.h"
#include "faiss_ehi/gpu/ScanKernels.h"

namespace faiss_ehi {
namespace gpu {

bool cuda_device_available(std::string* why) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        if (why) {
            *why = std::string("cudaGetDeviceCount failed: ") +
                    cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                    ")";
        }
        cudaGetLastError(); // clear
        return false;
    }
    if (n == 0) {
        if (why) {
            *why = "cudaGetDeviceCount returned 0 devices";
        }
        return false;
    }
    return true;
}

namespace {

/// Scratch bytes per query chunk that the routing may use.
constexpr size_t kRouteScratchBytes = size_t(512) << 20;
constexpr idx_t kMaxChunk = 4096;

/// Restores the previous current device on scope exit.
struct DeviceScope {
    int prev = -1;
    explicit DeviceScope(int dev) {
        EHI_CUDA_CHECK(cudaGetDevice(&prev));
        if (prev != dev) {
            EHI_CUDA_CHECK(cudaSetDevice(dev));
        }
    }
    ~DeviceScope() {
        int cur = -1;
        if (cudaGetDevice(&cur) == cudaSuccess && cur != prev) {
            cudaSetDevice(prev);
        }
    }
};

} // namespace

struct GpuIndexEHITree::Impl {
    cudaStream_t stream = nullptr;
    cudaEvent_t ev[3] = {nullptr, nullptr, nullptr};

    // Tree (see EHITree.h for the layouts).
    int B = 0, H = 0, m = 0;
    NodeForm form = NodeForm::PER_NODE;
    BeamStrategy strategy = BeamStrategy::BEST_FIRST;
    idx_t L = 0;
    std::vector<std::unique_ptr<DeviceBuffer<float>>> W;       ///< per level
    std::vector<std::unique_ptr<DeviceBuffer<float>>> U;       ///< paper form
    std::vector<std::unique_ptr<DeviceBuffer<float>>> nodeadd; ///< Nv*B
    std::vector<std::unique_ptr<DeviceBuffer<float>>> Uoff;    ///< paper Nv*nh

    // Lists.
    DeviceBuffer<float> codes32;
    DeviceBuffer<uint16_t> codes16;
    DeviceBuffer<int64_t> ids;
    DeviceBuffer<int64_t> offsets;
    size_t nentries = 0;
    bool fp16 = false;
    /// top_sizes[i]: total size of the i largest lists (bounds a query's
    /// entries at beam i).
    std::vector<int64_t> top_sizes;
    ListMajorWorkspace lm;

    // Workspace.
    DeviceBuffer<float> x, S[2], P, Z, vals, D;
    DeviceBuffer<int64_t> kept, I;
    std::mutex mu;

    ~Impl() {
        for (auto& e : ev) {
            if (e) {
                cudaEventDestroy(e);
            }
        }
        if (stream) {
            cudaStreamDestroy(stream);
        }
    }

    idx_t nodes(int h) const {
        idx_t r = 1;
        for (int i = 0; i < h; i++) {
            r *= B;
        }
        return r;
    }

    /// Queries per routing chunk.
    idx_t route_chunk() const {
        size_t per = 2 * size_t(L) + size_t(B) * kGpuMaxK;
        if (form == NodeForm::PAPER) {
            int nh = B * (H - 1) + m;
            per += size_t(nodes(H - 1)) * nh + nh + B;
        }
        per *= sizeof(float);
        idx_t c = idx_t(kRouteScratchBytes / per);
        return std::max<idx_t>(1, std::min(c, kMaxChunk));
    }

    void upload_tree(const EHITree& t) {
        B = t.B;
        H = t.H;
        m = t.m;
        form = t.form;
        strategy = t.strategy;
        L = t.nleaves();
        W.clear();
        U.clear();
        nodeadd.clear();
        Uoff.clear();
        if (!t.is_trained) {
            return;
        }
        for (int h = 0; h < H; h++) {
            idx_t Nv = nodes(h);
            W.emplace_back(new DeviceBuffer<float>());
            U.emplace_back(new DeviceBuffer<float>());
            nodeadd.emplace_back(new DeviceBuffer<float>());
            Uoff.emplace_back(new DeviceBuffer<float>());
            if (form == NodeForm::PER_NODE) {
                W[h]->upload(t.node_W[h].data(), t.node_W[h].size(), stream);
                nodeadd[h]->upload(t.node_b[h].data(), t.node_b[h].size(),
                                   stream);
                continue;
            }
            // Paper form: the one-hot parts of x_h depend only on the node,
            // so their contributions are tabulated per node here.
            int nh = t.n_input(h);
            W[h]->upload(t.W[h].data(), t.W[h].size(), stream);
            U[h]->upload(t.U[h].data(), t.U[h].size(), stream);
            std::vector<float> add(size_t(Nv) * B), uo(size_t(Nv) * nh);
            for (idx_t v = 0; v < Nv; v++) {
                float* a = add.data() + size_t(v) * B;
                float* u = uo.data() + size_t(v) * nh;
                for (int c = 0; c < B; c++) {
                    a[c] = t.use_bias ? t.bias[h][c] : 0.0f;
                }
                idx_t rest = v;
                for (int j = 0; j < h; j++) {
                    int digit = int(rest % B);
                    rest /= B;
                    size_t row = size_t(j) * B + digit;
                    for (int c = 0; c < B; c++) {
                        a[c] += t.W[h][row * B + c];
                    }
                    for (int i = 0; i < nh; i++) {
                        u[i] += t.U[h][row * nh + i];
                    }
                }
            }
            nodeadd[h]->upload(add.data(), add.size(), stream);
            Uoff[h]->upload(uo.data(), uo.size(), stream);
            EHI_CUDA_CHECK(cudaStreamSynchronize(stream)); // host vectors die
        }
        EHI_CUDA_CHECK(cudaStreamSynchronize(stream));
    }

    void upload_lists(const faiss::IndexIVF& ivf, bool use_fp16) {
        fp16 = use_fp16;
        size_t nlist = ivf.nlist;
        int d = ivf.d;
        std::vector<int64_t> off(nlist + 1, 0);
        for (size_t l = 0; l < nlist; l++) {
            off[l + 1] = off[l] + int64_t(ivf.invlists->list_size(l));
        }
        nentries = size_t(off[nlist]);
        std::vector<int64_t> sizes(nlist);
        for (size_t l = 0; l < nlist; l++) {
            sizes[l] = off[l + 1] - off[l];
        }
        std::sort(sizes.begin(), sizes.end(), std::greater<int64_t>());
        top_sizes.assign(nlist + 1, 0);
        for (size_t l = 0; l < nlist; l++) {
            top_sizes[l + 1] = top_sizes[l] + sizes[l];
        }
        std::vector<int64_t> hid(nentries);
        std::vector<float> hcodes(nentries * d);
        for (size_t l = 0; l < nlist; l++) {
            size_t ls = ivf.invlists->list_size(l);
            if (ls == 0) {
                continue;
            }
            faiss::InvertedLists::ScopedCodes c(ivf.invlists, l);
            faiss::InvertedLists::ScopedIds i(ivf.invlists, l);
            std::memcpy(hcodes.data() + size_t(off[l]) * d, c.get(),
                        ls * d * sizeof(float));
            std::memcpy(hid.data() + off[l], i.get(), ls * sizeof(int64_t));
        }
        offsets.upload(off.data(), off.size(), stream);
        ids.upload(hid.data(), hid.size(), stream);
        if (fp16) {
            codes32.release();
            std::vector<uint16_t> h16(hcodes.size());
            floats_to_half(hcodes.data(), hcodes.size(), h16.data());
            codes16.upload(h16.data(), h16.size(), stream);
            EHI_CUDA_CHECK(cudaStreamSynchronize(stream));
        } else {
            codes16.release();
            codes32.upload(hcodes.data(), hcodes.size(), stream);
        }
        EHI_CUDA_CHECK(cudaStreamSynchronize(stream));
    }

    /** Beam search of n queries already on the device (d_x): leaves
     * (n x beam, in kept) and log-probabilities (in vals). */
    void route_device(int n, const float* d_x, int beam, BeamStrategy strat) {
        const float* prev = nullptr;
        int cur = 0;
        kept.reserve(size_t(n) * beam);
        vals.reserve(size_t(n) * beam);
        for (int h = 0; h < H; h++) {
            idx_t Nv = nodes(h);
            int64_t cols = Nv * B;
            float* Sh = S[cur].reserve(size_t(n) * cols);
            if (form == NodeForm::PER_NODE) {
                gemm_rowmajor(stream, true, n, int(cols), m, d_x, m, W[h]->ptr,
                              m, Sh, int(cols));
                launch_level_log_softmax(stream, n, Nv, B, Sh, nodeadd[h]->ptr,
                                         nullptr, 0, prev, Sh);
            } else {
                int nh = B * h + m;
                int ldp = nh + B;
                float* Ph = P.reserve(size_t(n) * ldp);
                // [U_h^emb^T u ; W_h^emb^T u]: one GEMM pair per level
                gemm_rowmajor(stream, false, n, nh, m, d_x, m,
                              U[h]->ptr + size_t(B) * h * nh, nh, Ph, ldp);
                gemm_rowmajor(stream, false, n, B, m, d_x, m,
                              W[h]->ptr + size_t(B) * h * B, B, Ph + nh, ldp);
                float* Zh = Z.reserve(size_t(n) * Nv * nh);
                launch_paper_hidden(stream, n, Nv, nh, Ph, ldp, Uoff[h]->ptr,
                                    Zh);
                // W_h^T ReLU(z) for every (query, node): one GEMM
                gemm_rowmajor(stream, false, int(n * Nv), B, nh, Zh, nh,
                              W[h]->ptr, B, Sh, B);
                launch_level_log_softmax(stream, n, Nv, B, Sh, nodeadd[h]->ptr,
                                         Ph + nh, ldp, prev, Sh);
            }
            if (strat == BeamStrategy::LEVEL_BEAM) {
                const float* sel_in = Sh;
                if (h > 0) {
                    float* masked = S[1 - cur].reserve(size_t(n) * cols);
                    // the previous level's scores are no longer needed
                    launch_mask_children(stream, n, Nv, B, Sh, kept.ptr, beam,
                                         masked);
                    sel_in = masked;
                    // keep the dense scores in S[cur] for the next level
                }
                launch_select_largest(stream, n, cols, sel_in, beam, kept.ptr,
                                      vals.ptr);
            }
            prev = Sh;
            cur = 1 - cur;
        }
        if (strat == BeamStrategy::BEST_FIRST) {
            launch_select_largest(stream, n, L, prev, beam, kept.ptr, vals.ptr);
        }
    }
};

/** GROUPED trees (the default of trained trees) route on the host: the
 * calibrated group expansion and group-major scoring have no device kernel
 * yet. The leaves and their log-probabilities go to the device buffers the
 * scan reads, as route_device would leave them. */
void GpuIndexEHITree::route_on_host(Impl& im, const EHITree& t, int nb,
                                    const float* x, int beam) {
    std::vector<idx_t> leaves(size_t(nb) * beam);
    std::vector<float> lp(size_t(nb) * beam);
    t.route(nb, x, beam, leaves.data(), lp.data(), int(BeamStrategy::GROUPED));
    for (float& v : lp) {
        v = v > 0 ? std::log(v) : -std::numeric_limits<float>::infinity();
    }
    im.kept.reserve(leaves.size());
    im.vals.reserve(lp.size());
    EHI_CUDA_CHECK(cudaMemcpyAsync(im.kept.ptr, leaves.data(),
                                   leaves.size() * sizeof(int64_t),
                                   cudaMemcpyHostToDevice, im.stream));
    EHI_CUDA_CHECK(cudaMemcpyAsync(im.vals.ptr, lp.data(),
                                   lp.size() * sizeof(float),
                                   cudaMemcpyHostToDevice, im.stream));
    // the host vectors die here
    EHI_CUDA_CHECK(cudaStreamSynchronize(im.stream));
}

GpuIndexEHITree::GpuIndexEHITree(const IndexEHITree& cpu,
                                 GpuIndexEHITreeConfig config)
        : faiss::Index(cpu.d, cpu.metric_type), config_(config) {
    std::string why;
    FAISS_THROW_IF_NOT_FMT(cuda_device_available(&why),
                           "GpuIndexEHITree: no CUDA device (%s)", why.c_str());
    int ndev = 0;
    EHI_CUDA_CHECK(cudaGetDeviceCount(&ndev));
    FAISS_THROW_IF_NOT_FMT(config.device >= 0 && config.device < ndev,
                           "GpuIndexEHITree: device %d outside [0, %d)",
                           config.device, ndev);
    DeviceScope scope(config_.device);
    impl_.reset(new Impl());
    EHI_CUDA_CHECK(
            cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
    for (auto& e : impl_->ev) {
        EHI_CUDA_CHECK(cudaEventCreate(&e));
    }
    copyFrom(cpu);
}

GpuIndexEHITree::~GpuIndexEHITree() {
    if (impl_) {
        DeviceScope scope(config_.device);
        impl_.reset();
    }
}

void GpuIndexEHITree::copyFrom(const IndexEHITree& cpu) {
    cpu.tree_quantizer(); // throws unless routed by a tree
    std::unique_ptr<faiss::Index> c(clone_index(&cpu));
    auto* ci = dynamic_cast<IndexEHITree*>(c.get());
    FAISS_THROW_IF_NOT_MSG(ci, "GpuIndexEHITree: clone is not an IndexEHITree");
    c.release();
    cpu_.reset(ci);
    d = cpu_->d;
    metric_type = cpu_->metric_type;
    FAISS_THROW_IF_NOT_MSG(metric_type == faiss::METRIC_L2 ||
                                   metric_type == faiss::METRIC_INNER_PRODUCT,
                           "GpuIndexEHITree: only L2 and inner product");
    nprobe = cpu_->nprobe;
    sync_from_cpu(true, true);
}

void GpuIndexEHITree::sync_from_cpu(bool tree, bool lists) {
    DeviceScope scope(config_.device);
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (tree) {
        impl_->upload_tree(cpu_->tree_quantizer()->tree);
    }
    if (lists) {
        impl_->upload_lists(*cpu_, config_.use_float16);
    }
    ntotal = cpu_->ntotal;
    is_trained = cpu_->is_trained;
}

IndexEHITree* GpuIndexEHITree::copyToCpu() const {
    std::unique_ptr<faiss::Index> c(clone_index(cpu_.get()));
    auto* ci = dynamic_cast<IndexEHITree*>(c.get());
    FAISS_THROW_IF_NOT(ci);
    c.release();
    ci->nprobe = nprobe;
    return ci;
}

void GpuIndexEHITree::train(idx_t n, const float* x) {
    cpu_->train(n, x);
    sync_from_cpu(true, true);
}

void GpuIndexEHITree::add(idx_t n, const float* x) {
    add_with_ids(n, x, nullptr);
}

void GpuIndexEHITree::add_with_ids(idx_t n, const float* x, const idx_t* xids) {
    cpu_->add_with_ids(n, x, xids);
    sync_from_cpu(false, true);
}

void GpuIndexEHITree::reset() {
    cpu_->reset();
    sync_from_cpu(false, true);
}

void GpuIndexEHITree::reconstruct(idx_t key, float* recons) const {
    cpu_->reconstruct(key, recons);
}

const char* GpuIndexEHITree::gemm_backend() {
    return faiss_ehi::gpu::gemm_backend();
}

size_t GpuIndexEHITree::list_bytes() const {
    return impl_->nentries *
            (size_t(d) * (impl_->fp16 ? 2 : 4) + sizeof(int64_t));
}

void GpuIndexEHITree::route(idx_t n, const float* x, idx_t beam, idx_t* leaves,
                            float* probs, int strategy_override) const {
    const EHITree& t = cpu_->tree_quantizer()->tree;
    FAISS_THROW_IF_NOT_MSG(t.is_trained, "EHITree: the tree is not trained");
    FAISS_THROW_IF_NOT_FMT(
            beam >= 1 && beam <= kGpuMaxK,
            "GpuIndexEHITree: beam must be in [1, %d] (got %" PRId64 ")",
            kGpuMaxK, beam);
    BeamStrategy strat = strategy_override < 0
            ? t.strategy
            : BeamStrategy(strategy_override);
    FAISS_THROW_IF_NOT_MSG(strat == BeamStrategy::BEST_FIRST ||
                                   strat == BeamStrategy::LEVEL_BEAM ||
                                   strat == BeamStrategy::GROUPED,
                           "EHITree: unknown beam strategy");
    check_finite(n, d, x, "query vectors");
    DeviceScope scope(config_.device);
    Impl& im = *impl_;
    std::lock_guard<std::mutex> lock(im.mu);
    idx_t chunk = im.route_chunk();
    std::vector<float> lp;
    for (idx_t i0 = 0; i0 < n; i0 += chunk) {
        int nb = int(std::min(chunk, n - i0));
        float* dx = im.x.reserve(size_t(nb) * d);
        EHI_CUDA_CHECK(cudaMemcpyAsync(dx, x + size_t(i0) * d,
                                       size_t(nb) * d * sizeof(float),
                                       cudaMemcpyHostToDevice, im.stream));
        if (strat == BeamStrategy::GROUPED) {
            route_on_host(im, t, nb, x + size_t(i0) * d, int(beam));
        } else {
            im.route_device(nb, dx, int(beam), strat);
        }
        lp.resize(size_t(nb) * beam);
        EHI_CUDA_CHECK(cudaMemcpyAsync(leaves + size_t(i0) * beam, im.kept.ptr,
                                       size_t(nb) * beam * sizeof(int64_t),
                                       cudaMemcpyDeviceToHost, im.stream));
        EHI_CUDA_CHECK(cudaMemcpyAsync(lp.data(), im.vals.ptr,
                                       lp.size() * sizeof(float),
                                       cudaMemcpyDeviceToHost, im.stream));
        EHI_CUDA_CHECK(cudaStreamSynchronize(im.stream));
        for (size_t j = 0; j < lp.size(); j++) {
            probs[size_t(i0) * beam + j] = std::exp(lp[j]);
        }
    }
}

void GpuIndexEHITree::search(idx_t n, const float* x, idx_t k, float* distances,
                             idx_t* labels,
                             const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_FMT(k > 0, "search: k must be > 0, got %" PRId64, k);
    FAISS_THROW_IF_NOT_FMT(k <= kGpuMaxK,
                           "GpuIndexEHITree: k = %" PRId64
                           " is above the GPU limit of %d",
                           k, kGpuMaxK);
    FAISS_THROW_IF_NOT_MSG(is_trained && cpu_->is_trained,
                           "IndexEHITree: search on an untrained index");
    size_t np = nprobe;
    if (params) {
        auto* p = dynamic_cast<const faiss::SearchParametersIVF*>(params);
        FAISS_THROW_IF_NOT_MSG(p,
                               "IndexEHITree: search parameters must be "
                               "SearchParametersIVF");
        np = p->nprobe;
    }
    FAISS_THROW_IF_NOT_MSG(
            np >= 1, "IndexEHITree: nprobe (the beam width) must be >= 1");
    np = std::min(np, cpu_->nlist);
    FAISS_THROW_IF_NOT_FMT(np <= size_t(kGpuMaxK),
                           "GpuIndexEHITree: nprobe = %zd is above the GPU "
                           "limit of %d",
                           np, kGpuMaxK);
    if (n == 0) {
        return;
    }
    check_finite(n, d, x, "query vectors");
    const EHITree& t = cpu_->tree_quantizer()->tree;
    BeamStrategy strat = t.strategy;
    bool dedup = cpu_->lists_have_duplicates;

    DeviceScope scope(config_.device);
    Impl& im = *impl_;
    std::lock_guard<std::mutex> lock(im.mu);
    idx_t chunk = im.route_chunk();
    for (idx_t i0 = 0; i0 < n; i0 += chunk) {
        int nb = int(std::min(chunk, n - i0));
        float* dx = im.x.reserve(size_t(nb) * d);
        float* dD = im.D.reserve(size_t(nb) * k);
        int64_t* dI = im.I.reserve(size_t(nb) * k);
        EHI_CUDA_CHECK(cudaMemcpyAsync(dx, x + size_t(i0) * d,
                                       size_t(nb) * d * sizeof(float),
                                       cudaMemcpyHostToDevice, im.stream));
        if (collect_timing) {
            EHI_CUDA_CHECK(cudaEventRecord(im.ev[0], im.stream));
        }
        if (strat == BeamStrategy::GROUPED) {
            route_on_host(im, t, nb, x + size_t(i0) * d, int(np));
        } else {
            im.route_device(nb, dx, int(np), strat);
        }
        if (collect_timing) {
            EHI_CUDA_CHECK(cudaEventRecord(im.ev[1], im.stream));
        }
        const void* codes = im.fp16 ? static_cast<const void*>(im.codes16.ptr)
                                    : static_cast<const void*>(im.codes32.ptr);
        bool ip = metric_type == faiss::METRIC_INNER_PRODUCT;
        size_t bound = size_t(nb) * size_t(im.top_sizes[np]);
        bool list_major = scan_mode == 2 ||
                (scan_mode == 0 &&
                 bound <= (size_t(1) << 28)); // 1 GiB of distances
        if (list_major && list_major_supports(d) &&
            im.top_sizes[1] <= int64_t(65535) * 256) {
            launch_scan_list_major(im.stream, im.lm, nb, d, ip, im.fp16, dx,
                                   im.kept.ptr, int(np), idx_t(cpu_->nlist),
                                   im.offsets.ptr, codes, im.ids.ptr, int(k),
                                   dedup, bound, im.top_sizes[1], dD, dI);
        } else {
            launch_scan_select(im.stream, nb, d, ip, im.fp16, dx, im.kept.ptr,
                               int(np), im.offsets.ptr, codes, im.ids.ptr,
                               int(k), dedup, dD, dI);
        }
        if (collect_timing) {
            EHI_CUDA_CHECK(cudaEventRecord(im.ev[2], im.stream));
        }
        EHI_CUDA_CHECK(cudaMemcpyAsync(distances + size_t(i0) * k, dD,
                                       size_t(nb) * k * sizeof(float),
                                       cudaMemcpyDeviceToHost, im.stream));
        EHI_CUDA_CHECK(cudaMemcpyAsync(labels + size_t(i0) * k, dI,
                                       size_t(nb) * k * sizeof(int64_t),
                                       cudaMemcpyDeviceToHost, im.stream));
        EHI_CUDA_CHECK(cudaStreamSynchronize(im.stream));
        if (collect_timing) {
            float r = 0, s = 0;
            EHI_CUDA_CHECK(cudaEventElapsedTime(&r, im.ev[0], im.ev[1]));
            EHI_CUDA_CHECK(cudaEventElapsedTime(&s, im.ev[1], im.ev[2]));
            timing.route_ms += r;
            timing.scan_ms += s;
        }
    }
    if (collect_timing) {
        timing.nsearch++;
    }
}

GpuIndexEHITree* index_cpu_to_gpu(const faiss::Index* index,
                                  GpuIndexEHITreeConfig config) {
    auto* cpu = dynamic_cast<const IndexEHITree*>(index);
    FAISS_THROW_IF_NOT_MSG(cpu,
                           "index_cpu_to_gpu: only IndexEHITree "
                           "(flat storage under an EHI tree) has a GPU "
                           "version");
    return new GpuIndexEHITree(*cpu, config);
}

IndexEHITree* index_gpu_to_cpu(const GpuIndexEHITree* index) {
    FAISS_THROW_IF_NOT_MSG(index, "index_gpu_to_cpu: null index");
    return index->copyToCpu();
}

} // namespace gpu
} // namespace faiss_ehi
