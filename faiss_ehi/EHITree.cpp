/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/EHITree.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <limits>
#include <random>

#include <omp.h>

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/distances.h>

#include <faiss_ehi/blas.h>

namespace faiss_ehi {

namespace {

/// Queries per block of the batched per-level precompute (bounds memory).
constexpr idx_t kRouteBlock = 1024;
/// GROUPED: mean queries per group from which a GEMM per group pays.
constexpr idx_t kGemmQueriesPerGroup = 8;

/// In-place log-softmax of B scores.
void log_softmax(int B, float* s) {
    float mx = s[0];
    for (int c = 1; c < B; c++) {
        mx = std::max(mx, s[c]);
    }
    float sum = 0;
    for (int c = 0; c < B; c++) {
        sum += std::exp(s[c] - mx);
    }
    float lse = mx + std::log(sum);
    for (int c = 0; c < B; c++) {
        // s - max - log(sum) is <= 0, so path log-probabilities never grow
        // along a path (best-first search relies on it).
        s[c] = std::min(s[c] - lse, 0.0f);
    }
}

/// A node reached by the search: path log-probability, depth, index.
struct Cand {
    float logp;
    int depth;
    idx_t node;
};

/// Order for the best-first heap: larger log-probability first; among
/// equals, deeper first, then the smaller index (deterministic ties).
struct CandLess {
    bool operator()(const Cand& a, const Cand& b) const {
        if (a.logp != b.logp) {
            return a.logp < b.logp;
        }
        if (a.depth != b.depth) {
            return a.depth < b.depth;
        }
        return a.node > b.node;
    }
};

/// Descending by log-probability, ties by smaller index.
bool cand_before(const Cand& a, const Cand& b) {
    if (a.logp != b.logp) {
        return a.logp > b.logp;
    }
    return a.node < b.node;
}

} // namespace

void check_finite(idx_t n, int d, const float* x, const char* what) {
    size_t total = size_t(n) * size_t(d);
    for (size_t i = 0; i < total; i++) {
        if (!std::isfinite(x[i])) {
            FAISS_THROW_FMT(
                    "%s contain a NaN or infinite value (vector %" PRId64
                    ", component %d)",
                    what, idx_t(i / d), int(i % d));
        }
    }
}

EHITree::EHITree(int B, int H, int m, NodeForm form)
        : B(B), H(H), m(m), form(form) {
    FAISS_THROW_IF_NOT_MSG(B >= 2, "EHITree: branching factor B must be >= 2");
    FAISS_THROW_IF_NOT_MSG(H >= 1, "EHITree: height H must be >= 1");
    FAISS_THROW_IF_NOT_MSG(m >= 1, "EHITree: routing dimension m must be >= 1");
    double leaves = std::pow(double(B), double(H));
    FAISS_THROW_IF_NOT_FMT(leaves <= double(idx_t(1) << 40),
                           "EHITree: B^H = %g leaves is too many", leaves);
    U.resize(H);
    W.resize(H);
    bias.resize(H);
    node_W.resize(H);
    node_b.resize(H);
}

idx_t EHITree::nleaves() const {
    return nodes_at_depth(H);
}

idx_t EHITree::nodes_at_depth(int h) const {
    idx_t r = 1;
    for (int i = 0; i < h; i++) {
        r *= B;
    }
    return r;
}

int EHITree::n_input(int h) const {
    return B * h + m;
}

size_t EHITree::nparams() const {
    size_t total = 0;
    for (int h = 0; h < H; h++) {
        total += U[h].size() + W[h].size() + bias[h].size() + node_W[h].size() +
                node_b[h].size();
    }
    return total;
}

void EHITree::set_paper_level(int h, const float* Uh, const float* Wh,
                              const float* bh) {
    FAISS_THROW_IF_NOT_MSG(form == NodeForm::PAPER,
                           "set_paper_level on a tree of per-node form");
    FAISS_THROW_IF_NOT_FMT(h >= 0 && h < H, "level %d outside [0, %d)", h, H);
    size_t nh = n_input(h);
    U[h].assign(Uh, Uh + nh * nh);
    W[h].assign(Wh, Wh + nh * B);
    if (bh) {
        bias[h].assign(bh, bh + B);
    } else {
        bias[h].assign(B, 0.0f);
    }
    check_finite(U[h].size(), 1, U[h].data(), "tree parameters U");
    check_finite(W[h].size(), 1, W[h].data(), "tree parameters W");
    check_finite(1, B, bias[h].data(), "tree biases");
    finalize_if_complete();
}

void EHITree::set_node_level(int h, const float* Wh, const float* bh) {
    FAISS_THROW_IF_NOT_MSG(form == NodeForm::PER_NODE,
                           "set_node_level on a tree of paper form");
    FAISS_THROW_IF_NOT_FMT(h >= 0 && h < H, "level %d outside [0, %d)", h, H);
    size_t nn = nodes_at_depth(h);
    node_W[h].assign(Wh, Wh + nn * B * m);
    if (bh) {
        node_b[h].assign(bh, bh + nn * B);
    } else {
        node_b[h].assign(nn * B, 0.0f);
    }
    check_finite(node_W[h].size(), 1, node_W[h].data(), "tree parameters W");
    check_finite(node_b[h].size(), 1, node_b[h].data(), "tree biases");
    finalize_if_complete();
}

bool EHITree::level_sized(int h) const {
    if (form == NodeForm::PAPER) {
        size_t nh = n_input(h);
        return U[h].size() == nh * nh && W[h].size() == nh * B &&
                bias[h].size() == size_t(B);
    }
    size_t nn = nodes_at_depth(h);
    return node_W[h].size() == nn * B * m && node_b[h].size() == nn * B;
}

void EHITree::finalize_if_complete() {
    is_trained = false;
    for (int h = 0; h < H; h++) {
        if (!level_sized(h)) {
            return;
        }
    }
    finalize();
}

void EHITree::check_consistent() const {
    FAISS_THROW_IF_NOT_MSG(B >= 2 && H >= 1 && m >= 1,
                           "EHITree: B >= 2, H >= 1 and m >= 1 required");
    FAISS_THROW_IF_NOT_MSG(
            int(U.size()) == H && int(W.size()) == H && int(bias.size()) == H &&
                    int(node_W.size()) == H && int(node_b.size()) == H,
            "EHITree: per-level parameter arrays malformed");
    for (int h = 0; h < H; h++) {
        FAISS_THROW_IF_NOT_FMT(level_sized(h),
                               "EHITree: level %d (%s form) has parameters "
                               "of the wrong size",
                               h,
                               form == NodeForm::PAPER ? "paper" : "per-node");
    }
}

void EHITree::finalize() {
    check_consistent();
    is_trained = true;
}

void EHITree::init_random(uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int h = 0; h < H; h++) {
        if (form == NodeForm::PAPER) {
            size_t nh = n_input(h);
            std::normal_distribution<float> g(0.0f,
                                              1.0f / std::sqrt(float(nh)));
            U[h].resize(nh * nh);
            W[h].resize(nh * B);
            for (float& v : U[h]) {
                v = g(rng);
            }
            for (float& v : W[h]) {
                v = g(rng);
            }
            bias[h].assign(B, 0.0f);
            if (use_bias) {
                for (float& v : bias[h]) {
                    v = g(rng);
                }
            }
        } else {
            size_t nn = nodes_at_depth(h);
            std::normal_distribution<float> g(0.0f, 1.0f / std::sqrt(float(m)));
            node_W[h].resize(nn * B * m);
            node_b[h].resize(nn * B);
            for (float& v : node_W[h]) {
                v = g(rng);
            }
            for (float& v : node_b[h]) {
                v = g(rng);
            }
        }
    }
    finalize();
}

size_t EHITree::level_precompute(int h, idx_t n, const float* u,
                                 std::vector<float>& out) const {
    if (form == NodeForm::PAPER) {
        // [U_h^emb^T u ; W_h^emb^T u]: the input rows of U_h and W_h start
        // after the h one-hot blocks.
        size_t nh = n_input(h);
        size_t stride = nh + B;
        out.resize(size_t(n) * stride);
        const float* Uemb = U[h].data() + size_t(B) * h * nh;
        const float* Wemb = W[h].data() + size_t(B) * h * B;
        gemm_rowmajor(n, nh, m, u, m, Uemb, nh, out.data(), stride);
        gemm_rowmajor(n, B, m, u, m, Wemb, B, out.data() + nh, stride);
        return stride;
    }
    if (h == 0) {
        // The root is shared by every query: its scores are one GEMM.
        out.resize(size_t(n) * B);
        gemm_rowmajor_bt(n, B, m, u, node_W[0].data(), out.data());
        return B;
    }
    out.clear();
    return 0;
}

void EHITree::child_log_probs(int h, idx_t node, const float* u,
                              const float* pre, float* out,
                              float* scratch) const {
    if (form == NodeForm::PER_NODE) {
        const float* Wv = node_W[h].data() + size_t(node) * B * m;
        const float* bv = node_b[h].data() + size_t(node) * B;
        if (pre) {
            std::copy(pre, pre + B, out);
        } else {
            matvec_rows(B, m, Wv, u, out);
        }
        for (int c = 0; c < B; c++) {
            out[c] += bv[c];
        }
        log_softmax(B, out);
        return;
    }
    size_t nh = n_input(h);
    const float* Uh = U[h].data();
    const float* Wh = W[h].data();
    std::vector<float> local;
    if (!pre) {
        local.resize(nh + B);
        gemm_rowmajor(1, nh, m, u, m, Uh + size_t(B) * h * nh, nh, local.data(),
                      nh + B);
        gemm_rowmajor(1, B, m, u, m, Wh + size_t(B) * h * B, B,
                      local.data() + nh, nh + B);
        pre = local.data();
    }
    // z = U_h^T x_h: the input part is precomputed; each one-hot block adds
    // one row of U_h (a gather, no multiply). Same for W_h^T x_h.
    std::vector<float> zlocal;
    if (!scratch) {
        zlocal.resize(nh);
        scratch = zlocal.data();
    }
    float* z = scratch;
    std::copy(pre, pre + nh, z);
    for (int c = 0; c < B; c++) {
        out[c] = pre[nh + c] + (use_bias ? bias[h][c] : 0.0f);
    }
    idx_t rest = node;
    for (int j = 0; j < h; j++) {
        int digit = int(rest % B);
        rest /= B;
        size_t row = size_t(j) * B + digit;
        const float* Ur = Uh + row * nh;
        for (size_t i = 0; i < nh; i++) {
            z[i] += Ur[i];
        }
        const float* Wr = Wh + row * B;
        for (int c = 0; c < B; c++) {
            out[c] += Wr[c];
        }
    }
    // W_h^T ReLU(z): rows of W_h for the active units only.
    for (size_t i = 0; i < nh; i++) {
        float r = z[i];
        if (r > 0) {
            const float* Wr = Wh + i * B;
            for (int c = 0; c < B; c++) {
                out[c] += r * Wr[c];
            }
        }
    }
    log_softmax(B, out);
}

void EHITree::precompute_levels(idx_t n, const float* u,
                                Precomputed& pre) const {
    pre.buf.resize(H);
    pre.stride.resize(H);
    for (int h = 0; h < H; h++) {
        pre.stride[h] = level_precompute(h, n, u, pre.buf[h]);
    }
}

void EHITree::route_one_best_first(const float* u, const Precomputed& pre,
                                   idx_t q, idx_t beam, idx_t* leaves,
                                   float* probs) const {
    std::vector<Cand> heap;
    heap.reserve(size_t(B) * (beam + H) + 1);
    heap.push_back({0.0f, 0, 0});
    std::vector<float> lp(B), scratch(n_input(H - 1));
    std::vector<Cand> kids;
    kids.reserve(B);
    CandLess less;
    idx_t found = 0;
    while (found < beam && !heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), less);
        Cand top = heap.back();
        heap.pop_back();
        if (top.depth == H) {
            leaves[found] = top.node;
            probs[found] = std::exp(top.logp);
            found++;
            continue;
        }
        int h = top.depth;
        child_log_probs(h, top.node, u, pre.row(h, q), lp.data(),
                        scratch.data());
        if (h + 1 < H || beam - found >= B) {
            for (int c = 0; c < B; c++) {
                heap.push_back({top.logp + lp[c], h + 1, top.node * B + c});
                std::push_heap(heap.begin(), heap.end(), less);
            }
            continue;
        }
        // Children are leaves and only r = beam - found more are needed: a
        // leaf outside the r best of its siblings cannot be among them.
        // Keep the r best children in a small sorted buffer (r is usually
        // far below B, so this is one pass of comparisons).
        size_t r = size_t(beam - found);
        kids.clear();
        for (int c = 0; c < B; c++) {
            Cand cand{top.logp + lp[c], h + 1, top.node * B + c};
            if (kids.size() == r) {
                if (!cand_before(cand, kids.back())) {
                    continue;
                }
                kids.pop_back();
            }
            auto pos = std::upper_bound(kids.begin(), kids.end(), cand,
                                        cand_before);
            kids.insert(pos, cand);
        }
        for (const Cand& cand : kids) {
            heap.push_back(cand);
            std::push_heap(heap.begin(), heap.end(), less);
        }
    }
    for (; found < beam; found++) {
        leaves[found] = -1;
        probs[found] = 0;
    }
}

void EHITree::route_one_level_beam(const float* u, const Precomputed& pre,
                                   idx_t q, idx_t beam, idx_t* leaves,
                                   float* probs) const {
    std::vector<Cand> cur{{0.0f, 0, 0}}, next;
    std::vector<float> lp(B), scratch(n_input(H - 1));
    for (int h = 0; h < H; h++) {
        next.clear();
        for (const Cand& cnd : cur) {
            child_log_probs(h, cnd.node, u, pre.row(h, q), lp.data(),
                            scratch.data());
            for (int c = 0; c < B; c++) {
                next.push_back({cnd.logp + lp[c], h + 1, cnd.node * B + c});
            }
        }
        size_t keep = std::min(size_t(beam), next.size());
        std::partial_sort(next.begin(), next.begin() + keep, next.end(),
                          cand_before);
        next.resize(keep);
        cur.swap(next);
    }
    idx_t i = 0;
    for (; i < idx_t(cur.size()); i++) {
        leaves[i] = cur[i].node;
        probs[i] = std::exp(cur[i].logp);
    }
    for (; i < beam; i++) {
        leaves[i] = -1;
        probs[i] = 0;
    }
}

idx_t EHITree::groups_for_beam(idx_t beam) const {
    idx_t ngroups = nodes_at_depth(H - 1);
    idx_t need = (beam + B - 1) / B; // enough leaves to fill the beam
    if (group_expansion.empty()) {
        return ngroups;
    }
    size_t lg = 0;
    while ((idx_t(1) << lg) < beam) {
        lg++;
    }
    lg = std::min(lg, group_expansion.size() - 1);
    idx_t g = std::max<idx_t>(need, group_expansion[lg]);
    return std::min(std::max<idx_t>(g, 1), ngroups);
}

void EHITree::best_nodes(const float* u, const Precomputed& pre, idx_t q,
                         int depth, idx_t count, idx_t* nodes) const {
    if (depth == 0) {
        nodes[0] = 0;
        return;
    }
    if (depth == 1 && form == NodeForm::PER_NODE) {
        // The root's children: their softmax keeps the order of the raw
        // scores (precomputed for the whole batch), so no heap is needed.
        // per-thread scratch: this runs once per query on the search path
        thread_local std::vector<float> zs;
        thread_local std::vector<idx_t> idx;
        zs.resize(B);
        idx.resize(B);
        const float* z = pre.row(0, q);
        if (!z) {
            matvec_rows(B, m, node_W[0].data(), u, zs.data());
        }
        for (int c = 0; c < B; c++) {
            zs[c] = (z ? z[c] : zs[c]) + node_b[0][c];
        }
        for (int c = 0; c < B; c++) {
            idx[c] = c;
        }
        std::partial_sort(idx.begin(), idx.begin() + count, idx.end(),
                          [&](idx_t a, idx_t b) {
                              return zs[a] != zs[b] ? zs[a] > zs[b] : a < b;
                          });
        std::copy_n(idx.begin(), count, nodes);
        return;
    }
    std::vector<Cand> heap;
    heap.push_back({0.0f, 0, 0});
    std::vector<float> lp(B), scratch(n_input(H - 1));
    CandLess less;
    idx_t found = 0;
    while (found < count && !heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), less);
        Cand top = heap.back();
        heap.pop_back();
        if (top.depth == depth) {
            nodes[found++] = top.node;
            continue;
        }
        int h = top.depth;
        child_log_probs(h, top.node, u, pre.row(h, q), lp.data(),
                        scratch.data());
        for (int c = 0; c < B; c++) {
            heap.push_back({top.logp + lp[c], h + 1, top.node * B + c});
            std::push_heap(heap.begin(), heap.end(), less);
        }
    }
}

void EHITree::route_grouped(idx_t nb, const float* u, const Precomputed& pre,
                            idx_t beam, idx_t* leaves, float* probs) const {
    const idx_t G = groups_for_beam(beam);
    const idx_t ngroups = nodes_at_depth(H - 1);
    const size_t GB = size_t(G) * B;
    std::vector<idx_t> groups(size_t(nb) * G);
    std::vector<idx_t> start(ngroups + 1, 0);
    std::vector<idx_t> order(groups.size());
    std::vector<float> scores(size_t(nb) * GB);
    const int hl = H - 1;
    // With enough queries per group on average, each group's queries are
    // gathered and scored by one BLAS GEMM (called outside the OpenMP
    // workers, see blas.h); otherwise one matvec per (query, group).
    const bool batched = hl > 0 && nb * G >= kGemmQueriesPerGroup * ngroups;
    // One parallel region: its barriers are cheaper than starting a region
    // per phase when the machine is busy.
#pragma omp parallel if (nb > 1)
    {
#pragma omp for
        for (idx_t q = 0; q < nb; q++) {
            best_nodes(u + size_t(q) * m, pre, q, H - 1, G,
                       groups.data() + size_t(q) * G);
        }
        // Group-major scoring: the (query, slot) pairs of each group are
        // scored together, so a group's B x m weights stay in cache while
        // all the queries that chose it are multiplied by them.
#pragma omp single
        {
            for (idx_t v : groups) {
                start[v + 1]++;
            }
            for (idx_t g = 0; g < ngroups; g++) {
                start[g + 1] += start[g];
            }
            std::vector<idx_t> fill(start.begin(), start.end() - 1);
            for (size_t i = 0; i < groups.size(); i++) {
                order[fill[groups[i]]++] = idx_t(i);
            }
        }
#pragma omp for schedule(dynamic)
        for (idx_t g = 0; g < (batched ? 0 : ngroups); g++) {
            const float* Wv = node_W[hl].data() + size_t(g) * B * m;
            const float* bv = node_b[hl].data() + size_t(g) * B;
            for (idx_t j = start[g]; j < start[g + 1]; j++) {
                idx_t slot = order[j];
                idx_t q = slot / G;
                float* out = scores.data() + size_t(slot) * B;
                if (const float* p = pre.row(hl, q)) {
                    std::copy(p, p + B, out);
                } else {
                    matvec_rows(B, m, Wv, u + size_t(q) * m, out);
                }
                for (int c = 0; c < B; c++) {
                    out[c] += bv[c];
                }
            }
        }
    }
    if (batched) {
        // outside the OpenMP region: a multithreaded BLAS starts its own
        // threads
        score_groups_gemm(nb, u, G, start, order, scores);
    }
#pragma omp parallel for if (nb > 1)
    for (idx_t q = 0; q < nb; q++) {
        select_grouped(scores.data() + size_t(q) * GB,
                       groups.data() + size_t(q) * G, G, beam,
                       leaves + size_t(q) * beam,
                       probs ? probs + size_t(q) * beam : nullptr);
    }
}

void EHITree::score_groups_gemm(idx_t nb, const float* u, idx_t G,
                                const std::vector<idx_t>& start,
                                const std::vector<idx_t>& order,
                                std::vector<float>& scores) const {
    const int hl = H - 1;
    const idx_t ngroups = nodes_at_depth(hl);
    std::vector<float> xg, zg;
    for (idx_t g = 0; g < ngroups; g++) {
        idx_t ng = start[g + 1] - start[g];
        if (ng == 0) {
            continue;
        }
        xg.resize(size_t(ng) * m);
        zg.resize(size_t(ng) * B);
        for (idx_t j = 0; j < ng; j++) {
            idx_t q = order[start[g] + j] / G;
            std::copy_n(u + size_t(q) * m, m, xg.data() + size_t(j) * m);
        }
        gemm_rowmajor_bt(ng, B, m, xg.data(),
                         node_W[hl].data() + size_t(g) * B * m, zg.data());
        const float* bv = node_b[hl].data() + size_t(g) * B;
        for (idx_t j = 0; j < ng; j++) {
            float* out = scores.data() + size_t(order[start[g] + j]) * B;
            for (int c = 0; c < B; c++) {
                out[c] = zg[size_t(j) * B + c] + bv[c];
            }
        }
    }
}

void EHITree::select_grouped(const float* sq, const idx_t* gq, idx_t G,
                             idx_t beam, idx_t* lq, float* pq) const {
    const size_t GB = size_t(G) * B;
    float lse = 0; // the log of the softmax's normaliser, if probs wanted
    if (pq) {
        float mx = -std::numeric_limits<float>::infinity();
        for (size_t i = 0; i < GB; i++) {
            mx = std::max(mx, sq[i]);
        }
        float sum = 0;
        for (size_t i = 0; i < GB; i++) {
            sum += std::exp(sq[i] - mx); // float exp: precise enough here
        }
        lse = mx + std::log(sum);
    }
    // indices of the `keep` best scores in the strict order `better`
    // (score, then leaf number). A beam is usually a few of G*B
    // candidates: one pass keeps them in a heap whose top is the worst
    // kept, and most candidates cost one comparison with it (a flat
    // 1,024-leaf level: this selection took a fifth of a search's time
    // with nth_element over all candidates). Same result: the order is
    // total.
    size_t keep = std::min(size_t(beam), GB);
    thread_local std::vector<uint32_t> idx; // once per query: no allocation
    auto better = [&](uint32_t a, uint32_t b) {
        if (sq[a] != sq[b]) {
            return sq[a] > sq[b];
        }
        return gq[a / B] * B + a % B < gq[b / B] * B + b % B;
    };
    idx.resize(keep);
    for (size_t i = 0; i < keep; i++) {
        idx[i] = uint32_t(i);
    }
    std::make_heap(idx.begin(), idx.end(), better);
    for (size_t i = keep; i < GB; i++) {
        if (better(uint32_t(i), idx.front())) {
            std::pop_heap(idx.begin(), idx.end(), better);
            idx.back() = uint32_t(i);
            std::push_heap(idx.begin(), idx.end(), better);
        }
    }
    std::sort(idx.begin(), idx.end(), better);
    size_t i = 0;
    for (; i < keep; i++) {
        uint32_t c = idx[i];
        lq[i] = gq[c / B] * B + idx_t(c % B);
        if (pq) {
            pq[i] = std::exp(std::min(sq[c] - lse, 0.0f));
        }
    }
    for (; i < size_t(beam); i++) {
        lq[i] = -1;
        if (pq) {
            pq[i] = 0;
        }
    }
}

void EHITree::all_leaf_logits(idx_t n, const float* u, float* logits) const {
    FAISS_THROW_IF_NOT_MSG(is_trained, "EHITree: the tree is not trained");
    FAISS_THROW_IF_NOT_MSG(form == NodeForm::PER_NODE,
                           "EHITree: leaf logits need the per-node form");
    const int hl = H - 1;
    const idx_t L = nleaves();
    // all groups' children at once: one GEMM over the whole leaf level
    gemm_rowmajor_bt(n, L, m, u, node_W[hl].data(), logits);
#pragma omp parallel for if (n > 1)
    for (idx_t q = 0; q < n; q++) {
        float* lq = logits + size_t(q) * L;
        for (idx_t l = 0; l < L; l++) {
            lq[l] += node_b[hl][l];
        }
    }
}

void EHITree::route(idx_t n, const float* u, idx_t beam, idx_t* leaves,
                    float* probs, int strategy_override) const {
    FAISS_THROW_IF_NOT_MSG(is_trained, "EHITree: the tree is not trained");
    FAISS_THROW_IF_NOT_FMT(
            beam >= 1, "EHITree: beam must be >= 1 (got %" PRId64 ")", beam);
    BeamStrategy strat =
            strategy_override < 0 ? strategy : BeamStrategy(strategy_override);
    FAISS_THROW_IF_NOT_MSG(strat == BeamStrategy::BEST_FIRST ||
                                   strat == BeamStrategy::LEVEL_BEAM ||
                                   strat == BeamStrategy::GROUPED,
                           "EHITree: unknown beam strategy");
    FAISS_THROW_IF_NOT_MSG(strat != BeamStrategy::GROUPED ||
                                   form == NodeForm::PER_NODE,
                           "EHITree: the GROUPED beam strategy needs the "
                           "per-node form");
    std::vector<float> unwanted; // the other strategies need somewhere
    if (!probs && strat != BeamStrategy::GROUPED) {
        unwanted.resize(size_t(n) * beam);
        probs = unwanted.data();
    }
    Precomputed pre;
    for (idx_t i0 = 0; i0 < n; i0 += kRouteBlock) {
        idx_t nb = std::min(kRouteBlock, n - i0);
        const float* ub = u + size_t(i0) * m;
        precompute_levels(nb, ub, pre);
        if (strat == BeamStrategy::GROUPED) {
            route_grouped(nb, ub, pre, beam, leaves + size_t(i0) * beam,
                          probs ? probs + size_t(i0) * beam : nullptr);
            continue;
        }
#pragma omp parallel for if (nb > 1)
        for (idx_t q = 0; q < nb; q++) {
            const float* uq = ub + size_t(q) * m;
            idx_t* lq = leaves + size_t(i0 + q) * beam;
            float* pq = probs + size_t(i0 + q) * beam;
            if (strat == BeamStrategy::BEST_FIRST) {
                route_one_best_first(uq, pre, q, beam, lq, pq);
            } else {
                route_one_level_beam(uq, pre, q, beam, lq, pq);
            }
        }
    }
}

void EHITree::all_leaf_probabilities(idx_t n, const float* u,
                                     float* probs) const {
    FAISS_THROW_IF_NOT_MSG(is_trained, "EHITree: the tree is not trained");
    idx_t L = nleaves();
    Precomputed pre;
    precompute_levels(n, u, pre);
#pragma omp parallel for if (n > 1)
    for (idx_t q = 0; q < n; q++) {
        std::vector<float> logp{0.0f}, next, lp(B);
        for (int h = 0; h < H; h++) {
            next.resize(logp.size() * B);
            const float* prow = pre.row(h, q);
            for (size_t v = 0; v < logp.size(); v++) {
                child_log_probs(h, idx_t(v), u + size_t(q) * m, prow,
                                lp.data());
                for (int c = 0; c < B; c++) {
                    next[v * B + c] = logp[v] + lp[c];
                }
            }
            logp.swap(next);
        }
        for (idx_t l = 0; l < L; l++) {
            probs[size_t(q) * L + l] = std::exp(logp[l]);
        }
    }
}

void EHITree::all_leaf_probabilities_naive(idx_t n, const float* u,
                                           float* probs) const {
    FAISS_THROW_IF_NOT_MSG(is_trained, "EHITree: the tree is not trained");
    idx_t L = nleaves();
    for (idx_t q = 0; q < n; q++) {
        const float* uq = u + size_t(q) * m;
        for (idx_t leaf = 0; leaf < L; leaf++) {
            // digits of the leaf, most significant (level 1) first
            std::vector<int> path(H);
            idx_t rest = leaf;
            for (int h = H - 1; h >= 0; h--) {
                path[h] = int(rest % B);
                rest /= B;
            }
            double p = 1;
            idx_t node = 0;
            for (int h = 0; h < H; h++) {
                std::vector<double> s(B);
                if (form == NodeForm::PER_NODE) {
                    const float* Wv = node_W[h].data() + size_t(node) * B * m;
                    for (int c = 0; c < B; c++) {
                        double acc = node_b[h][size_t(node) * B + c];
                        for (int i = 0; i < m; i++) {
                            acc += double(Wv[size_t(c) * m + i]) * uq[i];
                        }
                        s[c] = acc;
                    }
                } else {
                    // x_h = [onehot(i_h); ...; onehot(i_1); u]
                    int nh = n_input(h);
                    std::vector<double> x(nh, 0.0);
                    for (int j = 0; j < h; j++) {
                        x[size_t(j) * B + path[h - 1 - j]] = 1.0;
                    }
                    for (int i = 0; i < m; i++) {
                        x[size_t(B) * h + i] = uq[i];
                    }
                    std::vector<double> F(x);
                    for (int jj = 0; jj < nh; jj++) {
                        double z = 0;
                        for (int i = 0; i < nh; i++) {
                            z += x[i] * U[h][size_t(i) * nh + jj];
                        }
                        F[jj] += std::max(z, 0.0);
                    }
                    for (int c = 0; c < B; c++) {
                        double acc = use_bias ? bias[h][c] : 0.0;
                        for (int i = 0; i < nh; i++) {
                            acc += F[i] * W[h][size_t(i) * B + c];
                        }
                        s[c] = acc;
                    }
                }
                double mx = *std::max_element(s.begin(), s.end());
                double sum = 0;
                for (double v : s) {
                    sum += std::exp(v - mx);
                }
                p *= std::exp(s[path[h]] - mx) / sum;
                node = node * B + path[h];
            }
            probs[size_t(q) * L + leaf] = float(p);
        }
    }
}

void EHITree::path_embedding(idx_t n, const float* u, float* T) const {
    FAISS_THROW_IF_NOT_MSG(is_trained, "EHITree: the tree is not trained");
    Precomputed pre;
    precompute_levels(n, u, pre);
#pragma omp parallel for if (n > 1)
    for (idx_t q = 0; q < n; q++) {
        std::vector<float> lp(B);
        float* Tq = T + size_t(q) * B * H;
        float pprev = 1;
        idx_t node = 0;
        for (int h = 0; h < H; h++) {
            const float* prow = pre.row(h, q);
            child_log_probs(h, node, u + size_t(q) * m, prow, lp.data());
            int best = 0;
            for (int c = 0; c < B; c++) {
                Tq[h * B + c] = std::exp(lp[c]) * pprev;
                if (lp[c] > lp[best]) {
                    best = c;
                }
            }
            pprev = Tq[h * B + best];
            node = node * B + best;
        }
    }
}

} // namespace faiss_ehi
