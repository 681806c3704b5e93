/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * EHITreeKMeansInit: what the k-means start of a tree guarantees.
 */
#include <gtest/gtest.h>

#include <limits>

#include <faiss/IndexFlat.h>

#include "test_helpers.h"

using namespace faiss_ehi;
using namespace ehi_test;

namespace {

/// Mean squared distance of every vector to its nearest leaf centroid.
double kmeans_objective(const std::vector<float>& x, int d,
                        const std::vector<float>& leaves, idx_t L) {
    faiss::IndexFlatL2 flat(d);
    flat.add(L, leaves.data());
    idx_t n = idx_t(x.size() / d);
    std::vector<float> D(n);
    std::vector<idx_t> I(n);
    flat.search(n, x.data(), 1, D.data(), I.data());
    double s = 0;
    for (float v : D) {
        s += v;
    }
    return s / double(n);
}

std::vector<float> init_leaves(EHITree& tree, const std::vector<float>& x,
                               int refine) {
    EHITreeKMeansInit init;
    init.leaf_refine_iters = refine;
    std::vector<float> leaves;
    init.init(tree, idx_t(x.size() / tree.m), x.data(), faiss::METRIC_L2,
              &leaves);
    return leaves;
}

} // namespace

TEST(KMeansInit, PerNodeClassifiersEmbedNearestChild) {
    // With W_v = 2Tc and b_v = -T|c|^2, the most probable child of a node
    // is its nearest child centroid. Checked at the last level: the top-1
    // leaf is the nearest of its siblings' centroids.
    const int d = 8, B = 4, H = 2;
    auto x = clustered_data(3000, d, 40, 5, 6, 0.3f);
    EHITree tree(B, H, d, NodeForm::PER_NODE);
    auto leaves = init_leaves(tree, x, 0);
    ASSERT_TRUE(tree.is_trained);
    ASSERT_EQ(leaves.size(), size_t(B * B * d));
    std::vector<idx_t> leaf(100);
    std::vector<float> p(100);
    tree.route(100, x.data(), 1, leaf.data(), p.data());
    for (idx_t i = 0; i < 100; i++) {
        const float* xi = x.data() + i * d;
        idx_t parent = leaf[i] / B;
        float best = std::numeric_limits<float>::max();
        idx_t arg = -1;
        for (int c = 0; c < B; c++) {
            const float* lc = leaves.data() + (parent * B + c) * d;
            float dist = 0;
            for (int j = 0; j < d; j++) {
                dist += (xi[j] - lc[j]) * (xi[j] - lc[j]);
            }
            if (dist < best) {
                best = dist;
                arg = parent * B + c;
            }
        }
        EXPECT_EQ(leaf[i], arg) << "vector " << i;
    }
}

TEST(KMeansInit, LeafRefinementLowersTheKMeansObjective) {
    const int d = 16, B = 6, H = 2;
    auto x = clustered_data(6000, d, 50, 7, 8, 0.4f);
    EHITree plain(B, H, d, NodeForm::PER_NODE);
    EHITree refined(B, H, d, NodeForm::PER_NODE);
    double before = kmeans_objective(x, d, init_leaves(plain, x, 0), B * B);
    double after = kmeans_objective(x, d, init_leaves(refined, x, 4), B * B);
    EXPECT_LT(after, before);
    EXPECT_TRUE(refined.is_trained);
}
