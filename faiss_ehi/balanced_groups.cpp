/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/balanced_groups.h>

#include <algorithm>
#include <numeric>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>

namespace faiss_ehi {

namespace {

/// Rounds of capacity-limited assignment and centre update.
constexpr int kBalanceRounds = 8;

void group_means(idx_t N, int d, const float* x, int B,
                 const std::vector<idx_t>& order, std::vector<float>& c) {
    idx_t K = N / B;
    c.assign(size_t(K) * d, 0.0f);
    for (idx_t g = 0; g < K; g++) {
        float* cg = c.data() + size_t(g) * d;
        for (int s = 0; s < B; s++) {
            const float* xi = x + size_t(order[g * B + s]) * d;
            for (int j = 0; j < d; j++) {
                cg[j] += xi[j] / float(B);
            }
        }
    }
}

/// Capacity-limited assignment: returns the group-major order.
std::vector<idx_t> assign_with_capacity(idx_t N, int d, const float* x, int B,
                                        const std::vector<float>& c) {
    idx_t K = N / B;
    faiss::IndexFlatL2 centres(d);
    centres.add(K, c.data());
    std::vector<float> dis(size_t(N) * K);
    std::vector<idx_t> lab(size_t(N) * K);
    centres.search(N, x, K, dis.data(), lab.data());
    std::vector<size_t> pairs(size_t(N) * K);
    std::iota(pairs.begin(), pairs.end(), size_t(0));
    std::stable_sort(pairs.begin(), pairs.end(),
                     [&](size_t a, size_t b) { return dis[a] < dis[b]; });
    std::vector<idx_t> group_of(N, -1), fill(K, 0);
    idx_t placed = 0;
    for (size_t p : pairs) {
        idx_t i = idx_t(p / K), g = lab[p];
        if (group_of[i] >= 0 || fill[g] == B) {
            continue;
        }
        group_of[i] = g;
        fill[g]++;
        if (++placed == N) {
            break;
        }
    }
    std::vector<idx_t> order(N);
    std::fill(fill.begin(), fill.end(), 0);
    for (idx_t i = 0; i < N; i++) {
        idx_t g = group_of[i];
        order[g * B + fill[g]++] = i;
    }
    return order;
}

} // namespace

void balanced_groups(idx_t N, int d, const float* x, int B, int niter, int seed,
                     std::vector<idx_t>& order, std::vector<float>& centres) {
    FAISS_THROW_IF_NOT_MSG(B >= 1 && N >= B && N % B == 0,
                           "balanced_groups: N must be a multiple of B");
    idx_t K = N / B;
    order.resize(N);
    std::iota(order.begin(), order.end(), idx_t(0));
    if (K == 1) {
        group_means(N, d, x, B, order, centres);
        return;
    }
    faiss::ClusteringParameters cp;
    cp.niter = niter;
    cp.seed = seed;
    cp.min_points_per_centroid = 1;
    faiss::Clustering clus(d, int(K), cp);
    faiss::IndexFlatL2 assigner(d);
    clus.train(N, x, assigner);
    centres = clus.centroids;
    for (int r = 0; r < kBalanceRounds; r++) {
        order = assign_with_capacity(N, d, x, B, centres);
        group_means(N, d, x, B, order, centres);
    }
}

} // namespace faiss_ehi
