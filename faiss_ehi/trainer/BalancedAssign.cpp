/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/BalancedAssign.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/blas.h>

namespace faiss_ehi {
namespace trainer {

int64_t leaf_capacity(int64_t n, int64_t L, double slack) {
    FAISS_THROW_IF_NOT_FMT(L > 0 && n >= 0 && slack >= 1.0,
                           "leaf_capacity: n %zd, L %zd, slack %g (need "
                           "L > 0, n >= 0, slack >= 1)",
                           size_t(n), size_t(L), slack);
    return std::max<int64_t>(
            1, int64_t(std::ceil(slack * double(n) / double(L) - 1e-9)));
}

std::vector<int64_t> capacity_assign(int64_t n, int64_t L, const float* scores,
                                     int64_t capacity) {
    FAISS_THROW_IF_NOT_FMT(L > 0 && capacity > 0 && capacity * L >= n,
                           "capacity_assign: %zd items do not fit in %zd "
                           "leaves of capacity %zd",
                           size_t(n), size_t(L), size_t(capacity));
    std::vector<int64_t> leaf(n, -1);
    if (n == 0) {
        return leaf;
    }
    // Leaves of each item by decreasing score, and its regret.
    std::vector<int32_t> pref(size_t(n) * L);
    std::vector<float> regret(n);
    for (int64_t i = 0; i < n; i++) {
        const float* s = scores + i * L;
        for (int64_t j = 0; j < L; j++) {
            FAISS_THROW_IF_NOT_FMT(std::isfinite(s[j]),
                                   "capacity_assign: score (%zd, %zd) is "
                                   "not finite",
                                   size_t(i), size_t(j));
        }
        int32_t* p = pref.data() + i * L;
        std::iota(p, p + L, 0);
        std::stable_sort(p, p + L,
                         [s](int32_t a, int32_t b) { return s[a] > s[b]; });
        regret[i] = L > 1 ? s[p[0]] - s[p[1]] : 0.0f;
    }
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return regret[a] > regret[b];
    });
    std::vector<int64_t> count(L, 0);
    for (int64_t i : order) {
        const int32_t* p = pref.data() + i * L;
        for (int64_t r = 0; r < L; r++) {
            if (count[p[r]] < capacity) {
                leaf[i] = p[r];
                count[p[r]]++;
                break;
            }
        }
    }
    // No empty leaf while there are items to spare: each empty leaf takes
    // its best-scoring item among leaves that hold more than one.
    if (n >= L) {
        for (int64_t j = 0; j < L; j++) {
            if (count[j] > 0) {
                continue;
            }
            int64_t best = -1;
            float best_s = -std::numeric_limits<float>::infinity();
            for (int64_t i = 0; i < n; i++) {
                if (count[leaf[i]] > 1 && scores[i * L + j] > best_s) {
                    best_s = scores[i * L + j];
                    best = i;
                }
            }
            FAISS_THROW_IF_NOT(best >= 0); // n >= L: some leaf holds two
            count[leaf[best]]--;
            leaf[best] = j;
            count[j]++;
        }
    }
    return leaf;
}

namespace {

/// s (n x L): similarity of each point to each centroid, inner product or
/// minus squared L2 (without |x|^2, which changes neither the order within
/// a row nor the regrets).
void similarities(int64_t n, int d, const float* x, int64_t L,
                  const float* centroids, faiss::MetricType metric, float* s) {
    gemm_rowmajor_bt(n, L, d, x, centroids, s);
    if (metric != faiss::METRIC_INNER_PRODUCT) {
        // -|x - c|^2 = 2 x.c - |c|^2 - |x|^2
        for (int64_t j = 0; j < L; j++) {
            const float* c = centroids + j * d;
            float cc = 0;
            for (int k = 0; k < d; k++) {
                cc += c[k] * c[k];
            }
            for (int64_t i = 0; i < n; i++) {
                s[i * L + j] = 2 * s[i * L + j] - cc;
            }
        }
    }
}

} // namespace

int64_t cover_every_leaf(int64_t n, int d, const float* x, int64_t L,
                         float* centroids, faiss::MetricType metric,
                         bool normalize) {
    int64_t moved = 0;
    if (n < L) {
        return moved;
    }
    std::vector<float> s(size_t(n) * L);
    // the |x|^2 that similarities() leaves out, for "worst-fitting" in L2
    std::vector<float> xx(n, 0.0f);
    if (metric != faiss::METRIC_INNER_PRODUCT) {
        for (int64_t i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) {
                xx[i] += x[i * d + k] * x[i * d + k];
            }
        }
    }
    for (int64_t round = 0; round < L; round++) {
        similarities(n, d, x, L, centroids, metric, s.data());
        std::vector<int64_t> nearest(n), count(L, 0);
        for (int64_t i = 0; i < n; i++) {
            const float* r = s.data() + i * L;
            nearest[i] = std::max_element(r, r + L) - r;
            count[nearest[i]]++;
        }
        const int64_t empty =
                std::find(count.begin(), count.end(), 0) - count.begin();
        if (empty == L) {
            return moved;
        }
        const int64_t full =
                std::max_element(count.begin(), count.end()) - count.begin();
        int64_t worst = -1;
        float worst_fit = INFINITY;
        for (int64_t i = 0; i < n; i++) {
            const float fit = s[i * L + full] - xx[i];
            if (nearest[i] == full && fit < worst_fit) {
                worst = i;
                worst_fit = fit;
            }
        }
        float* c = centroids + empty * d;
        std::copy(x + worst * d, x + (worst + 1) * d, c);
        double norm = 0;
        for (int k = 0; k < d; k++) {
            norm += double(c[k]) * c[k];
        }
        if (normalize && norm > 0) {
            float inv = float(1.0 / std::sqrt(norm));
            for (int k = 0; k < d; k++) {
                c[k] *= inv;
            }
        }
        moved++;
    }
    return moved;
}

std::vector<int64_t> balanced_kmeans(int64_t n, int d, const float* x,
                                     int64_t L, std::vector<float>& centroids,
                                     faiss::MetricType metric, bool normalize,
                                     double slack, int iters) {
    FAISS_THROW_IF_NOT_FMT(centroids.size() == size_t(L) * d,
                           "balanced_kmeans: %zd centroid values for %zd "
                           "leaves of dimension %d",
                           centroids.size(), size_t(L), d);
    FAISS_THROW_IF_NOT_FMT(iters >= 1, "balanced_kmeans: iters %d < 1", iters);
    const int64_t cap = leaf_capacity(n, L, slack);
    std::vector<float> s(size_t(n) * L);
    std::vector<int64_t> leaf;
    for (int it = 0; it < iters; it++) {
        similarities(n, d, x, L, centroids.data(), metric, s.data());
        leaf = capacity_assign(n, L, s.data(), cap);
        std::vector<double> sum(size_t(L) * d, 0.0);
        std::vector<int64_t> cnt(L, 0);
        for (int64_t i = 0; i < n; i++) {
            double* o = sum.data() + leaf[i] * d;
            for (int k = 0; k < d; k++) {
                o[k] += x[i * d + k];
            }
            cnt[leaf[i]]++;
        }
        for (int64_t j = 0; j < L; j++) {
            if (cnt[j] == 0) {
                continue; // (n < L) keeps its centroid
            }
            float* c = centroids.data() + j * d;
            double norm = 0;
            for (int k = 0; k < d; k++) {
                double v = sum[j * d + k] / double(cnt[j]);
                c[k] = float(v);
                norm += v * v;
            }
            if (normalize && norm > 0) {
                float inv = float(1.0 / std::sqrt(norm));
                for (int k = 0; k < d; k++) {
                    c[k] *= inv;
                }
            }
        }
    }
    cover_every_leaf(n, d, x, L, centroids.data(), metric, normalize);
    return leaf;
}

} // namespace trainer
} // namespace faiss_ehi
