/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * EHITree: routing against exhaustive enumeration, the two evaluations of
 * the leaf probabilities, the path embedding, hand-computed trees.
 */
#include "test_helpers.h"

#include <cmath>

using namespace ehi_test;
using faiss_ehi::BeamStrategy;
using faiss_ehi::EHITree;
using faiss_ehi::NodeForm;

namespace {

idx_t ipow(idx_t b, int e) {
    idx_t r = 1;
    for (int i = 0; i < e; i++) {
        r *= b;
    }
    return r;
}

double sigmoid(double x) {
    return 1.0 / (1.0 + std::exp(-x));
}

struct TreeCase {
    int B, H;
    NodeForm form;
    uint64_t seed;
};

std::string case_name(const TreeCase& c) {
    return "B" + std::to_string(c.B) + "_H" + std::to_string(c.H) +
            (c.form == NodeForm::PAPER ? "_paper" : "_node");
}

std::vector<TreeCase> all_tree_cases() {
    std::vector<TreeCase> cases;
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        for (int B = 3; B <= 5; B++) {
            for (int H = 1; H <= 3; H++) {
                cases.push_back({B, H, form, 0});
            }
        }
    }
    return cases;
}

const int kM = 6;    // routing dimension of the small trees
const idx_t kNQ = 7; // inputs per case

/// Leaves sorted by decreasing probability (ties by leaf id).
std::vector<idx_t> sorted_leaves(const float* p, idx_t L) {
    std::vector<idx_t> order(L);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](idx_t a, idx_t b) { return p[a] > p[b]; });
    return order;
}

/** route()'s output for one input equals the exhaustive top-beam: the same
 * leaves in the same order (up to exact ties, where the probabilities agree
 * to 1e-6) and the same probabilities (1e-5). */
void expect_exhaustive_top(const float* p_all, idx_t L, idx_t beam,
                           const idx_t* leaves, const float* probs,
                           const std::string& what) {
    std::vector<idx_t> order = sorted_leaves(p_all, L);
    std::set<idx_t> seen;
    for (idx_t j = 0; j < beam; j++) {
        if (j >= L) {
            EXPECT_EQ(leaves[j], -1) << what << " pad " << j;
            EXPECT_EQ(probs[j], 0.0f) << what << " pad " << j;
            continue;
        }
        idx_t leaf = leaves[j];
        ASSERT_GE(leaf, 0) << what << " rank " << j;
        ASSERT_LT(leaf, L) << what << " rank " << j;
        EXPECT_TRUE(seen.insert(leaf).second)
                << what << " leaf " << leaf << " returned twice";
        EXPECT_NEAR(probs[j], p_all[order[j]], 1e-5) << what << " rank " << j;
        EXPECT_NEAR(probs[j], p_all[leaf], 1e-5) << what << " rank " << j;
        if (leaf != order[j]) {
            // only acceptable for an exact tie
            EXPECT_NEAR(p_all[leaf], p_all[order[j]], 1e-6)
                    << what << " rank " << j << ": got leaf " << leaf
                    << " expected " << order[j];
        }
    }
}

/// Every case runs with several seeds (init_random) each.
const uint64_t kSeeds[] = {1, 2, 3, 4};

class TreeRouting : public ::testing::TestWithParam<TreeCase> {};

} // namespace

static void FactorisedEqualsNaive_body(TreeCase c) {
    EHITree tree(c.B, c.H, kM, c.form);
    tree.init_random(c.seed);
    ASSERT_TRUE(tree.is_trained);
    idx_t L = tree.nleaves();
    ASSERT_EQ(L, ipow(c.B, c.H));
    auto u = gaussian_data(kNQ, kM, 100 + c.seed);
    std::vector<float> p(kNQ * L), pn(kNQ * L);
    tree.all_leaf_probabilities(kNQ, u.data(), p.data());
    tree.all_leaf_probabilities_naive(kNQ, u.data(), pn.data());
    for (idx_t q = 0; q < kNQ; q++) {
        double sum = 0;
        for (idx_t l = 0; l < L; l++) {
            EXPECT_NEAR(p[q * L + l], pn[q * L + l], 1e-5)
                    << "query " << q << " leaf " << l;
            EXPECT_GE(p[q * L + l], 0.0f);
            sum += pn[q * L + l];
        }
        EXPECT_NEAR(sum, 1.0, 1e-4) << "query " << q;
    }
}

static void BestFirstEqualsExhaustiveTopBeta_body(TreeCase c) {
    EHITree tree(c.B, c.H, kM, c.form);
    tree.init_random(c.seed);
    idx_t L = tree.nleaves();
    auto u = gaussian_data(kNQ, kM, 200 + c.seed);
    std::vector<float> p(kNQ * L);
    tree.all_leaf_probabilities_naive(kNQ, u.data(), p.data());
    for (idx_t beam : {idx_t(1), idx_t(2), idx_t(c.B), L / 2 + 1, L, L + 3}) {
        std::vector<idx_t> leaves(kNQ * beam);
        std::vector<float> probs(kNQ * beam);
        tree.route(kNQ, u.data(), beam, leaves.data(), probs.data(),
                   int(BeamStrategy::BEST_FIRST));
        for (idx_t q = 0; q < kNQ; q++) {
            expect_exhaustive_top(
                    p.data() + q * L, L, beam, leaves.data() + q * beam,
                    probs.data() + q * beam,
                    case_name(c) + " beam " + std::to_string(beam) + " query " +
                            std::to_string(q));
        }
    }
}

static void DefaultStrategyIsBestFirst_body(TreeCase c) {
    EHITree tree(c.B, c.H, kM, c.form);
    tree.init_random(c.seed);
    EXPECT_EQ(tree.strategy, BeamStrategy::BEST_FIRST);
    idx_t L = tree.nleaves();
    idx_t beam = std::min<idx_t>(L, 4);
    auto u = gaussian_data(kNQ, kM, 250 + c.seed);
    std::vector<idx_t> l1(kNQ * beam), l2(kNQ * beam);
    std::vector<float> p1(kNQ * beam), p2(kNQ * beam);
    tree.route(kNQ, u.data(), beam, l1.data(), p1.data());
    tree.route(kNQ, u.data(), beam, l2.data(), p2.data(),
               int(BeamStrategy::BEST_FIRST));
    EXPECT_EQ(l1, l2);
    EXPECT_EQ(p1, p2);
}

static void LevelBeamWideEnoughIsExact_body(TreeCase c) {
    EHITree tree(c.B, c.H, kM, c.form);
    tree.init_random(c.seed);
    idx_t L = tree.nleaves();
    idx_t wide = ipow(c.B, c.H - 1);
    auto u = gaussian_data(kNQ, kM, 300 + c.seed);
    std::vector<float> p(kNQ * L);
    tree.all_leaf_probabilities_naive(kNQ, u.data(), p.data());
    for (idx_t beam : {wide, wide + 1, L, L + 2}) {
        std::vector<idx_t> leaves(kNQ * beam);
        std::vector<float> probs(kNQ * beam);
        tree.route(kNQ, u.data(), beam, leaves.data(), probs.data(),
                   int(BeamStrategy::LEVEL_BEAM));
        for (idx_t q = 0; q < kNQ; q++) {
            expect_exhaustive_top(
                    p.data() + q * L, L, beam, leaves.data() + q * beam,
                    probs.data() + q * beam,
                    case_name(c) + " level beam " + std::to_string(beam) +
                            " query " + std::to_string(q));
        }
    }
    // the tree's own strategy field selects it as well
    EHITree t2 = tree;
    t2.strategy = BeamStrategy::LEVEL_BEAM;
    std::vector<idx_t> a(kNQ * wide), b(kNQ * wide);
    std::vector<float> pa(kNQ * wide), pb(kNQ * wide);
    t2.route(kNQ, u.data(), wide, a.data(), pa.data());
    tree.route(kNQ, u.data(), wide, b.data(), pb.data(),
               int(BeamStrategy::LEVEL_BEAM));
    EXPECT_EQ(a, b);
}

TEST_P(TreeRouting, LevelBeamNarrowIsValid) {
    // Narrow level beam: not exact, but distinct valid leaves with their
    // true probabilities, in decreasing order.
    TreeCase c = GetParam();
    EHITree tree(c.B, c.H, kM, c.form);
    tree.init_random(c.seed);
    idx_t L = tree.nleaves();
    auto u = gaussian_data(kNQ, kM, 350 + c.seed);
    std::vector<float> p(kNQ * L);
    tree.all_leaf_probabilities_naive(kNQ, u.data(), p.data());
    idx_t beam = 2;
    std::vector<idx_t> leaves(kNQ * beam);
    std::vector<float> probs(kNQ * beam);
    tree.route(kNQ, u.data(), beam, leaves.data(), probs.data(),
               int(BeamStrategy::LEVEL_BEAM));
    for (idx_t q = 0; q < kNQ; q++) {
        std::set<idx_t> seen;
        for (idx_t j = 0; j < beam && j < L; j++) {
            idx_t leaf = leaves[q * beam + j];
            ASSERT_GE(leaf, 0);
            ASSERT_LT(leaf, L);
            EXPECT_TRUE(seen.insert(leaf).second);
            EXPECT_NEAR(probs[q * beam + j], p[q * L + leaf], 1e-5);
            if (j > 0) {
                EXPECT_LE(probs[q * beam + j], probs[q * beam + j - 1] + 1e-7);
            }
        }
        // its best leaf is at most the true best leaf
        EXPECT_LE(
                probs[q * beam],
                *std::max_element(p.begin() + q * L, p.begin() + (q + 1) * L) +
                        1e-6);
    }
}

static void BestFirstBeamsAreNested_body(TreeCase c) {
    EHITree tree(c.B, c.H, kM, c.form);
    tree.init_random(c.seed);
    idx_t L = tree.nleaves();
    auto u = gaussian_data(kNQ, kM, 400 + c.seed);
    std::vector<std::vector<idx_t>> prev(kNQ);
    for (idx_t beam = 1; beam <= L; beam++) {
        std::vector<idx_t> leaves(kNQ * beam);
        std::vector<float> probs(kNQ * beam);
        tree.route(kNQ, u.data(), beam, leaves.data(), probs.data(),
                   int(BeamStrategy::BEST_FIRST));
        for (idx_t q = 0; q < kNQ; q++) {
            std::vector<idx_t> cur(leaves.begin() + q * beam,
                                   leaves.begin() + (q + 1) * beam);
            ASSERT_TRUE(std::equal(prev[q].begin(), prev[q].end(), cur.begin()))
                    << case_name(c) << " beam " << beam << " query " << q
                    << ": the beam-" << beam - 1 << " leaves are not a prefix";
            prev[q] = cur;
        }
    }
}

static void PathEmbeddingMatchesNaiveProbabilities_body(TreeCase c) {
    EHITree tree(c.B, c.H, kM, c.form);
    tree.init_random(c.seed);
    const int B = c.B, H = c.H;
    idx_t L = tree.nleaves();
    auto u = gaussian_data(kNQ, kM, 500 + c.seed);
    std::vector<float> T(kNQ * B * H), p(kNQ * L);
    tree.path_embedding(kNQ, u.data(), T.data());
    tree.all_leaf_probabilities_naive(kNQ, u.data(), p.data());
    for (idx_t q = 0; q < kNQ; q++) {
        const float* t = T.data() + q * B * H;
        const float* pq = p.data() + q * L;
        // level 1 is a softmax
        double s1 = 0;
        for (int cc = 0; cc < B; cc++) {
            s1 += t[cc];
        }
        EXPECT_NEAR(s1, 1.0, 1e-5);
        idx_t node = 0; // chosen node at depth h-1 (root at h = 1)
        double p_node = 1.0;
        for (int h = 1; h <= H; h++) {
            const float* blk = t + (h - 1) * B;
            // block h sums to the probability of the chosen node at h-1
            double s = 0;
            for (int cc = 0; cc < B; cc++) {
                s += blk[cc];
            }
            EXPECT_NEAR(s, p_node, 1e-5) << "query " << q << " level " << h;
            // each entry is the probability of that child: the sum of the
            // naive leaf probabilities below it
            idx_t below = ipow(B, H - h);
            int best = 0;
            double best_p = -1;
            for (int cc = 0; cc < B; cc++) {
                idx_t child = node * B + cc;
                double pc = 0;
                for (idx_t l = child * below; l < (child + 1) * below; l++) {
                    pc += pq[l];
                }
                EXPECT_NEAR(blk[cc], pc, 1e-5)
                        << "query " << q << " level " << h << " child " << cc;
                if (pc > best_p) {
                    best_p = pc;
                    best = cc;
                }
            }
            // the path follows the argmax child
            int chosen = int(std::max_element(blk, blk + B) - blk);
            if (chosen != best) {
                double pcb = blk[best];
                EXPECT_NEAR(blk[chosen], pcb, 1e-6) << "not the argmax";
            }
            node = node * B + chosen;
            p_node = blk[chosen];
        }
        // the path ends on the most probable path's leaf: its probability
        // is that leaf's
        EXPECT_NEAR(p_node, pq[node], 1e-5);
    }
}

TEST_P(TreeRouting, FactorisedEqualsNaive) {
    for (uint64_t seed : kSeeds) {
        TreeCase c = GetParam();
        c.seed = seed;
        SCOPED_TRACE("seed " + std::to_string(seed));
        FactorisedEqualsNaive_body(c);
        if (HasFatalFailure()) {
            return;
        }
    }
}

TEST_P(TreeRouting, BestFirstEqualsExhaustiveTopBeta) {
    for (uint64_t seed : kSeeds) {
        TreeCase c = GetParam();
        c.seed = seed;
        SCOPED_TRACE("seed " + std::to_string(seed));
        BestFirstEqualsExhaustiveTopBeta_body(c);
        if (HasFatalFailure()) {
            return;
        }
    }
}

TEST_P(TreeRouting, DefaultStrategyIsBestFirst) {
    for (uint64_t seed : kSeeds) {
        TreeCase c = GetParam();
        c.seed = seed;
        SCOPED_TRACE("seed " + std::to_string(seed));
        DefaultStrategyIsBestFirst_body(c);
        if (HasFatalFailure()) {
            return;
        }
    }
}

TEST_P(TreeRouting, LevelBeamWideEnoughIsExact) {
    for (uint64_t seed : kSeeds) {
        TreeCase c = GetParam();
        c.seed = seed;
        SCOPED_TRACE("seed " + std::to_string(seed));
        LevelBeamWideEnoughIsExact_body(c);
        if (HasFatalFailure()) {
            return;
        }
    }
}

TEST_P(TreeRouting, BestFirstBeamsAreNested) {
    for (uint64_t seed : kSeeds) {
        TreeCase c = GetParam();
        c.seed = seed;
        SCOPED_TRACE("seed " + std::to_string(seed));
        BestFirstBeamsAreNested_body(c);
        if (HasFatalFailure()) {
            return;
        }
    }
}

TEST_P(TreeRouting, PathEmbeddingMatchesNaiveProbabilities) {
    for (uint64_t seed : kSeeds) {
        TreeCase c = GetParam();
        c.seed = seed;
        SCOPED_TRACE("seed " + std::to_string(seed));
        PathEmbeddingMatchesNaiveProbabilities_body(c);
        if (HasFatalFailure()) {
            return;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(SmallTrees, TreeRouting,
                         ::testing::ValuesIn(all_tree_cases()),
                         [](const ::testing::TestParamInfo<TreeCase>& info) {
                             return case_name(info.param);
                         });

TEST(Tree, Sizes) {
    EHITree t(4, 3, 10, NodeForm::PAPER);
    EXPECT_EQ(t.nleaves(), 64);
    EXPECT_EQ(t.nodes_at_depth(0), 1);
    EXPECT_EQ(t.nodes_at_depth(2), 16);
    EXPECT_EQ(t.n_input(0), 10);
    EXPECT_EQ(t.n_input(2), 18);
    EXPECT_FALSE(t.is_trained);
    t.init_random(5);
    EXPECT_TRUE(t.is_trained);
    EXPECT_GT(t.nparams(), 0u);
}

TEST(Tree, InitRandomIsSeeded) {
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        EHITree a(3, 2, 5, form), b(3, 2, 5, form), c(3, 2, 5, form);
        a.init_random(42);
        b.init_random(42);
        c.init_random(43);
        auto u = gaussian_data(4, 5, 9);
        std::vector<float> pa(4 * 9), pb(4 * 9), pc(4 * 9);
        a.all_leaf_probabilities(4, u.data(), pa.data());
        b.all_leaf_probabilities(4, u.data(), pb.data());
        c.all_leaf_probabilities(4, u.data(), pc.data());
        EXPECT_EQ(pa, pb);
        EXPECT_NE(pa, pc);
    }
}

TEST(Tree, PaperFormHandComputedH1) {
    // m = 1, B = 2, H = 1: x = u, F = u + ReLU(2u), scores W^T F = [F, 0].
    EHITree t(2, 1, 1, NodeForm::PAPER);
    float U[1] = {2.0f};
    float W[2] = {1.0f, 0.0f};
    t.set_paper_level(0, U, W, nullptr);
    t.finalize();
    ASSERT_TRUE(t.is_trained);
    float u[2] = {1.0f, -1.0f};
    std::vector<float> p(4), pn(4);
    t.all_leaf_probabilities(2, u, p.data());
    t.all_leaf_probabilities_naive(2, u, pn.data());
    // u = 1: F = 3; u = -1: F = -1 + ReLU(-2) = -1
    EXPECT_NEAR(p[0], sigmoid(3.0), 1e-6);
    EXPECT_NEAR(p[1], sigmoid(-3.0), 1e-6);
    EXPECT_NEAR(p[2], sigmoid(-1.0), 1e-6);
    EXPECT_NEAR(p[3], sigmoid(1.0), 1e-6);
    for (int i = 0; i < 4; i++) {
        EXPECT_NEAR(p[i], pn[i], 1e-6);
    }
    // bias
    EHITree tb(2, 1, 1, NodeForm::PAPER);
    float bias[2] = {0.0f, 1.5f};
    tb.set_paper_level(0, U, W, bias);
    tb.finalize();
    tb.all_leaf_probabilities(2, u, p.data());
    EXPECT_NEAR(p[0], sigmoid(3.0 - 1.5), 1e-6);
    EXPECT_NEAR(p[2], sigmoid(-1.0 - 1.5), 1e-6);
}

TEST(Tree, PaperFormOneHotBlocksMostRecentFirst) {
    // B = 2, m = 1, H = 3. Levels 0 and 1 are uniform (all zero). Level 2
    // (input [onehot(i2); onehot(i1); u], n = 5) favours child 0 by 3 only
    // when i2 == 0. Leaf = i1*4 + i2*2 + i3.
    const int B = 2, m = 1;
    EHITree t(B, 3, m, NodeForm::PAPER);
    for (int h = 0; h < 3; h++) {
        int n = B * h + m;
        std::vector<float> U(n * n, 0.0f), W(n * B, 0.0f);
        if (h == 2) {
            W[0 * B + 0] = 3.0f; // row of onehot(i2) == 0, child 0
        }
        t.set_paper_level(h, U.data(), W.data(), nullptr);
    }
    t.finalize();
    float u[1] = {0.7f};
    std::vector<float> p(8), pn(8);
    t.all_leaf_probabilities(1, u, p.data());
    t.all_leaf_probabilities_naive(1, u, pn.data());
    double hi = 0.25 * sigmoid(3.0), lo = 0.25 * sigmoid(-3.0);
    double expected[8] = {hi, lo, 0.125, 0.125, hi, lo, 0.125, 0.125};
    for (int l = 0; l < 8; l++) {
        EXPECT_NEAR(p[l], expected[l], 1e-6) << "leaf " << l;
        EXPECT_NEAR(pn[l], expected[l], 1e-6) << "naive leaf " << l;
    }
    // U acts: F = x + ReLU(U^T x). Level 1 input [onehot(i1); u] (n = 3):
    // U[2][0] = 1 adds ReLU(u) to unit 0, W[0][0] = 1 reads unit 0.
    EHITree t2(B, 2, m, NodeForm::PAPER);
    {
        std::vector<float> U0(1, 0.0f), W0(2, 0.0f);
        t2.set_paper_level(0, U0.data(), W0.data(), nullptr);
        std::vector<float> U1(9, 0.0f), W1(6, 0.0f);
        U1[2 * 3 + 0] = 1.0f;
        W1[0 * B + 0] = 1.0f;
        t2.set_paper_level(1, U1.data(), W1.data(), nullptr);
        t2.finalize();
    }
    std::vector<float> p2(4);
    float u2[1] = {2.0f};
    t2.all_leaf_probabilities(1, u2, p2.data());
    // i1 = 0: unit 0 = 1 + ReLU(2) = 3 -> child 0 score 3
    // i1 = 1: unit 0 = 0 + ReLU(2) = 2 -> child 0 score 2
    EXPECT_NEAR(p2[0], 0.5 * sigmoid(3.0), 1e-6);
    EXPECT_NEAR(p2[1], 0.5 * sigmoid(-3.0), 1e-6);
    EXPECT_NEAR(p2[2], 0.5 * sigmoid(2.0), 1e-6);
    EXPECT_NEAR(p2[3], 0.5 * sigmoid(-2.0), 1e-6);
    std::vector<float> pn2(4);
    t2.all_leaf_probabilities_naive(1, u2, pn2.data());
    for (int l = 0; l < 4; l++) {
        EXPECT_NEAR(pn2[l], p2[l], 1e-6);
    }
}

TEST(Tree, PerNodeFormHandComputed) {
    // B = 2, H = 2, m = 1. Root: child 0 weight 1, child 1 weight -1.
    // Node 0 biases (2, 0), node 1 biases (0, 2), zero weights.
    EHITree t(2, 2, 1, NodeForm::PER_NODE);
    float W0[2] = {1.0f, -1.0f};
    float b0[2] = {0.0f, 0.0f};
    float W1[4] = {0, 0, 0, 0};
    float b1[4] = {2.0f, 0.0f, 0.0f, 2.0f};
    t.set_node_level(0, W0, b0);
    t.set_node_level(1, W1, b1);
    t.finalize();
    float u[1] = {0.5f};
    std::vector<float> p(4);
    t.all_leaf_probabilities(1, u, p.data());
    double p0 = sigmoid(1.0), p1 = sigmoid(-1.0);
    EXPECT_NEAR(p[0], p0 * sigmoid(2.0), 1e-6);
    EXPECT_NEAR(p[1], p0 * sigmoid(-2.0), 1e-6);
    EXPECT_NEAR(p[2], p1 * sigmoid(-2.0), 1e-6);
    EXPECT_NEAR(p[3], p1 * sigmoid(2.0), 1e-6);
    idx_t leaves[4];
    float probs[4];
    t.route(1, u, 4, leaves, probs);
    EXPECT_EQ(leaves[0], 0);
    EXPECT_EQ(leaves[1], 3);
    EXPECT_EQ(leaves[2], 1);
    EXPECT_EQ(leaves[3], 2);
    // per-node weights: [node][child][m]
    EHITree t2(2, 1, 2, NodeForm::PER_NODE);
    float W[4] = {1.0f, 0.0f, 0.0f, 1.0f}; // child 0 reads u0, child 1 u1
    t2.set_node_level(0, W, nullptr);
    t2.finalize();
    float u2[2] = {0.0f, 1.0f};
    std::vector<float> q(2);
    t2.all_leaf_probabilities(1, u2, q.data());
    EXPECT_NEAR(q[0], sigmoid(-1.0), 1e-6);
    EXPECT_NEAR(q[1], sigmoid(1.0), 1e-6);
}

TEST(Tree, ChildLogProbsAreLogSoftmax) {
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        EHITree t(3, 2, 4, form);
        t.init_random(11);
        auto u = gaussian_data(1, 4, 12);
        std::vector<float> p(9);
        t.all_leaf_probabilities(1, u.data(), p.data());
        float lp0[3];
        t.child_log_probs(0, 0, u.data(), nullptr, lp0);
        for (int c = 0; c < 3; c++) {
            EXPECT_NEAR(std::exp(lp0[c]),
                        p[c * 3] + p[c * 3 + 1] + p[c * 3 + 2], 1e-5);
        }
        for (int node = 0; node < 3; node++) {
            float lp[3];
            t.child_log_probs(1, node, u.data(), nullptr, lp);
            for (int c = 0; c < 3; c++) {
                EXPECT_NEAR(std::exp(lp0[node] + lp[c]), p[node * 3 + c], 1e-5);
            }
        }
    }
}

TEST(Tree, CopyKeepsRouting) {
    EHITree t(4, 2, 8, NodeForm::PAPER);
    t.init_random(3);
    EHITree c = t;
    auto u = gaussian_data(5, 8, 4);
    std::vector<idx_t> a(5 * 6), b(5 * 6);
    std::vector<float> pa(5 * 6), pb(5 * 6);
    t.route(5, u.data(), 6, a.data(), pa.data());
    c.route(5, u.data(), 6, b.data(), pb.data());
    EXPECT_EQ(a, b);
    EXPECT_EQ(pa, pb);
    EXPECT_NO_THROW(t.check_consistent());
}
