/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// Capacity-limited assignment and balanced k-means (trainer/BalancedAssign):
// the collapse they must prevent, on hand-made cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/trainer/BalancedAssign.h>

namespace tr = faiss_ehi::trainer;

namespace {

std::vector<int64_t> counts(const std::vector<int64_t>& leaf, int64_t L) {
    std::vector<int64_t> c(L, 0);
    for (int64_t l : leaf) {
        EXPECT_GE(l, 0);
        EXPECT_LT(l, L);
        c[l]++;
    }
    return c;
}

} // namespace

TEST(TrainerBalancedAssign, CapacityFromSlack) {
    EXPECT_EQ(tr::leaf_capacity(100, 10, 1.0), 10);
    EXPECT_EQ(tr::leaf_capacity(100, 10, 1.1), 11);
    EXPECT_EQ(tr::leaf_capacity(101, 10, 1.0), 11);
    EXPECT_EQ(tr::leaf_capacity(0, 10, 1.5), 1);
    EXPECT_THROW(tr::leaf_capacity(10, 0, 1.0), faiss::FaissException);
    EXPECT_THROW(tr::leaf_capacity(10, 2, 0.5), faiss::FaissException);
}

// The collapse: every item prefers leaf 0 (score 1 there, 0 elsewhere),
// which argmax would give all 12 items. With capacity 4 over 3 leaves each
// leaf takes exactly 4, and nothing is empty.
TEST(TrainerBalancedAssign, EveryItemPrefersOneLeaf) {
    const int64_t n = 12, L = 3;
    std::vector<float> s(n * L, 0.0f);
    for (int64_t i = 0; i < n; i++) {
        s[i * L + 0] = 1.0f;
        s[i * L + 1] = 0.01f * float(i); // a weak second preference
    }
    auto leaf = tr::capacity_assign(n, L, s.data(), 4);
    EXPECT_EQ(counts(leaf, L), (std::vector<int64_t>{4, 4, 4}));
    // Regret order: the items with the weakest second choice (largest
    // regret 1 - 0.01 i) keep leaf 0: items 0..3.
    for (int64_t i = 0; i < 4; i++) {
        EXPECT_EQ(leaf[i], 0) << i;
    }
    // Of the rest, leaf 1 goes to those that score highest there (in
    // regret order: items 4..7 first), then leaf 2.
    for (int64_t i = 4; i < 8; i++) {
        EXPECT_EQ(leaf[i], 1) << i;
    }
    for (int64_t i = 8; i < 12; i++) {
        EXPECT_EQ(leaf[i], 2) << i;
    }
}

// Without pressure (room to spare) every item gets its best leaf.
TEST(TrainerBalancedAssign, FreeChoiceWhenRoom) {
    const int64_t n = 6, L = 3;
    std::vector<float> s = {1, 0, 0, 0, 1, 0, 0, 0, 1,
                            1, 0, 0, 0, 1, 0, 0, 0, 1};
    auto leaf = tr::capacity_assign(n, L, s.data(), 6);
    EXPECT_EQ(leaf, (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
}

// Capacity alone allows an empty leaf (8 items, 3 leaves of 4: leaves 0
// and 1 can take all); the fill step gives leaf 2 the item that scores
// best there.
TEST(TrainerBalancedAssign, NoEmptyLeaf) {
    const int64_t n = 8, L = 3;
    std::vector<float> s(n * L);
    for (int64_t i = 0; i < n; i++) {
        s[i * L + 0] = i < 4 ? 1.0f : 0.5f;
        s[i * L + 1] = i < 4 ? 0.5f : 1.0f;
        s[i * L + 2] = i == 5 ? 0.3f : 0.0f;
    }
    auto leaf = tr::capacity_assign(n, L, s.data(), 4);
    auto c = counts(leaf, L);
    EXPECT_EQ(c[2], 1);
    EXPECT_EQ(leaf[5], 2);
    EXPECT_EQ(c[0] + c[1], 7);
}

TEST(TrainerBalancedAssign, RejectsImpossibleAndNonFinite) {
    std::vector<float> s(10 * 2, 0.0f);
    EXPECT_THROW(tr::capacity_assign(10, 2, s.data(), 4),
                 faiss::FaissException); // 10 items, room for 8
    s[3] = NAN;
    EXPECT_THROW(tr::capacity_assign(10, 2, s.data(), 5),
                 faiss::FaissException);
}

// Balanced k-means from a collapsed start: all centroids at the same
// point (argmax assignment would put every point in leaf 0 and leave the
// others empty forever). The capacity spreads the points, and the
// centroids move to the three true clusters.
TEST(TrainerBalancedAssign, KMeansRecoversFromCollapsedStart) {
    const int d = 2, L = 3, per = 50;
    const int64_t n = L * per;
    std::mt19937 rng(5);
    std::normal_distribution<float> noise(0.0f, 0.05f);
    const float centre[3][2] = {{1, 0}, {-0.5f, 0.866f}, {-0.5f, -0.866f}};
    std::vector<float> x(n * d);
    for (int64_t i = 0; i < n; i++) {
        const float* c = centre[i / per];
        x[i * d] = c[0] + noise(rng);
        x[i * d + 1] = c[1] + noise(rng);
    }
    for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        std::vector<float> cent(L * d);
        for (int j = 0; j < L; j++) { // collapsed, with a hair of spread
            cent[j * d] = 1.0f;
            cent[j * d + 1] = 0.001f * float(j);
        }
        auto leaf = tr::balanced_kmeans(n, d, x.data(), L, cent, metric,
                                        metric == faiss::METRIC_INNER_PRODUCT,
                                        1.1, 10);
        auto c = counts(leaf, L);
        for (int j = 0; j < L; j++) {
            EXPECT_GE(c[j], 1);
            EXPECT_LE(c[j], tr::leaf_capacity(n, L, 1.1));
        }
        // each true cluster ends (nearly) whole in one leaf
        for (int k = 0; k < L; k++) {
            std::vector<int64_t> in(L, 0);
            for (int64_t i = k * per; i < (k + 1) * per; i++) {
                in[leaf[i]]++;
            }
            EXPECT_GE(*std::max_element(in.begin(), in.end()), per - 2)
                    << "cluster " << k << " metric " << int(metric);
        }
    }
}

// Centroids that are nobody's nearest (here two of three lie beyond the
// points) get a point each; the one that was already some point's
// nearest stays where it was.
TEST(TrainerBalancedAssign, EveryLeafBecomesSomePointsNearest) {
    const int d = 2;
    const int64_t n = 10, L = 3;
    std::vector<float> x(n * d);
    for (int64_t i = 0; i < n; i++) {
        x[i * d] = 0.02f * float(i); // on [0, 0.18]
        x[i * d + 1] = 0.0f;
    }
    auto nearest_counts = [&](const std::vector<float>& c) {
        std::vector<int64_t> cnt(L, 0);
        for (int64_t i = 0; i < n; i++) {
            int64_t best = 0;
            float bd = INFINITY;
            for (int64_t j = 0; j < L; j++) {
                float dx = x[i * d] - c[j * d], dy = x[i * d + 1] - c[j * d + 1];
                if (dx * dx + dy * dy < bd) {
                    bd = dx * dx + dy * dy;
                    best = j;
                }
            }
            cnt[best]++;
        }
        return cnt;
    };
    std::vector<float> cent = {0.0f, 0.0f, 0.5f, 0.0f, -0.5f, 0.0f};
    EXPECT_EQ(nearest_counts(cent), (std::vector<int64_t>{10, 0, 0}));
    EXPECT_EQ(tr::cover_every_leaf(n, d, x.data(), L, cent.data(),
                                   faiss::METRIC_L2, false),
              2);
    for (int64_t c : nearest_counts(cent)) {
        EXPECT_GE(c, 1);
    }
    EXPECT_EQ(cent[0], 0.0f);
    EXPECT_EQ(cent[1], 0.0f);
    // already covered: nothing moves
    std::vector<float> before = cent;
    EXPECT_EQ(tr::cover_every_leaf(n, d, x.data(), L, cent.data(),
                                   faiss::METRIC_L2, false),
              0);
    EXPECT_EQ(cent, before);

    // inner product on unit vectors: a centroid pointing away from every
    // point is moved onto one, normalised
    std::vector<float> u = {1, 0, 0.8f, 0.6f, 0.6f, 0.8f, 0, 1};
    std::vector<float> cu = {0.9701425f, 0.2425356f, -1, 0};
    EXPECT_EQ(tr::cover_every_leaf(4, d, u.data(), 2, cu.data(),
                                   faiss::METRIC_INNER_PRODUCT, true),
              1);
    EXPECT_NEAR(cu[2] * cu[2] + cu[3] * cu[3], 1.0f, 1e-6f);
    EXPECT_EQ(cu[2], 0.0f); // the point least like centroid 0: (0, 1)
    EXPECT_EQ(cu[3], 1.0f);
}
