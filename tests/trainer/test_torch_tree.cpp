/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// The LibTorch tree against the serving tree (faiss_ehi::EHITree) for the
// same weights, the exact weight hand-over, and finite-difference gradient
// checks of the path embedding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <faiss/impl/FaissException.h>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/trainer/Losses.h>
#include <faiss_ehi/trainer/TorchTree.h>

using faiss_ehi::BeamStrategy;
using faiss_ehi::EHITree;
using faiss_ehi::idx_t;
using faiss_ehi::NodeForm;
using faiss_ehi::trainer::TorchTree;

namespace {

/// One tree shape of the comparison sweep.
struct Shape {
    int B, H, m;
    NodeForm form;
    bool use_bias;
};

std::string name(const Shape& s) {
    return std::string(s.form == NodeForm::PAPER ? "paper" : "per-node") +
            " B=" + std::to_string(s.B) + " H=" + std::to_string(s.H) +
            " m=" + std::to_string(s.m) + (s.use_bias ? "" : " no-bias");
}

/// Both forms, B = 3..4, H = 1..3, and the paper form without bias.
std::vector<Shape> sweep() {
    std::vector<Shape> out;
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        for (int B : {3, 4}) {
            for (int H : {1, 2, 3}) {
                out.push_back({B, H, 5, form, true});
            }
        }
    }
    out.push_back({3, 2, 4, NodeForm::PAPER, false});
    out.push_back({4, 3, 3, NodeForm::PAPER, false});
    return out;
}

EHITree make_ehi(const Shape& s, uint64_t seed) {
    EHITree t(s.B, s.H, s.m, s.form);
    t.use_bias = s.use_bias;
    t.init_random(seed);
    return t;
}

std::vector<float> randn(size_t count, uint64_t seed, float scale = 1.0f) {
    std::mt19937 rng{static_cast<uint32_t>(seed)};
    std::normal_distribution<float> g(0.0f, scale);
    std::vector<float> v(count);
    for (float& x : v) {
        x = g(rng);
    }
    return v;
}

torch::Tensor as_tensor(const std::vector<float>& v, int64_t rows,
                        int64_t cols) {
    return torch::from_blob(const_cast<float*>(v.data()), {rows, cols},
                            torch::kFloat32)
            .clone();
}

std::vector<float> to_vec(const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
    return std::vector<float>(c.data_ptr<float>(),
                              c.data_ptr<float>() + c.numel());
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    float d = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); i++) {
        d = std::max(d, std::abs(a[i] - b[i]));
    }
    return d;
}

bool bit_equal(const std::vector<std::vector<float>>& a,
               const std::vector<std::vector<float>>& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); i++) {
        if (a[i].size() != b[i].size() ||
            (!a[i].empty() &&
             std::memcmp(a[i].data(), b[i].data(),
                         a[i].size() * sizeof(float)) != 0)) {
            return false;
        }
    }
    return true;
}

constexpr int kN = 24; // inputs per comparison

} // namespace

TEST(TrainerTorchTree, ParametersMatchEHITreeLayout) {
    for (const Shape& s : sweep()) {
        SCOPED_TRACE(name(s));
        EHITree ehi = make_ehi(s, 11);
        TorchTree tree = TorchTree::from_ehi(ehi);
        size_t trainable = 0;
        for (const auto& p : tree->parameters()) {
            trainable += size_t(p.numel());
            EXPECT_TRUE(p.requires_grad());
            EXPECT_EQ(p.scalar_type(), torch::kFloat32);
        }
        // without a bias the paper form keeps it as a buffer (not trained)
        size_t frozen = s.use_bias ? 0 : size_t(s.B) * s.H;
        EXPECT_EQ(trainable + frozen, ehi.nparams());
        for (int h = 0; h < s.H; h++) {
            int64_t nh = ehi.n_input(h), V = ehi.nodes_at_depth(h);
            if (s.form == NodeForm::PAPER) {
                EXPECT_EQ(tree->U[h].sizes(), torch::IntArrayRef({nh, nh}));
                EXPECT_EQ(tree->W[h].sizes(),
                          torch::IntArrayRef({nh, int64_t(s.B)}));
                EXPECT_EQ(tree->bias[h].numel(), s.B);
                EXPECT_FALSE(tree->node_W[h].defined());
                // row-major with the input index as row: U[h][i][j]
                int i = int(nh) - 1, j = 1;
                EXPECT_EQ(tree->U[h][i][j].item<float>(),
                          ehi.U[h][size_t(i) * nh + j]);
            } else {
                EXPECT_EQ(tree->node_W[h].sizes(),
                          torch::IntArrayRef({V, int64_t(s.B), int64_t(s.m)}));
                EXPECT_EQ(tree->node_b[h].sizes(),
                          torch::IntArrayRef({V, int64_t(s.B)}));
                EXPECT_FALSE(tree->U[h].defined());
                // [node][child][m]
                int64_t v = V - 1;
                int c = s.B - 1, k = s.m - 1;
                EXPECT_EQ(tree->node_W[h][v][c][k].item<float>(),
                          ehi.node_W[h][(size_t(v) * s.B + c) * s.m + k]);
            }
        }
    }
}

TEST(TrainerTorchTree, RoundTripIsBitExact) {
    for (const Shape& s : sweep()) {
        SCOPED_TRACE(name(s));
        EHITree ehi = make_ehi(s, 12);
        ehi.strategy = BeamStrategy::LEVEL_BEAM;
        TorchTree tree = TorchTree::from_ehi(ehi);
        EHITree back; // default-constructed: reshaped by to_ehi
        back.strategy = BeamStrategy::LEVEL_BEAM;
        tree->to_ehi(back);
        EXPECT_EQ(back.B, s.B);
        EXPECT_EQ(back.H, s.H);
        EXPECT_EQ(back.m, s.m);
        EXPECT_EQ(back.form, s.form);
        EXPECT_EQ(back.use_bias, s.use_bias);
        EXPECT_EQ(back.strategy, BeamStrategy::LEVEL_BEAM);
        EXPECT_TRUE(back.is_trained);
        EXPECT_TRUE(bit_equal(back.U, ehi.U));
        EXPECT_TRUE(bit_equal(back.W, ehi.W));
        EXPECT_TRUE(bit_equal(back.bias, ehi.bias));
        EXPECT_TRUE(bit_equal(back.node_W, ehi.node_W));
        EXPECT_TRUE(bit_equal(back.node_b, ehi.node_b));
        // and once more through torch: the second copy equals the first
        EHITree again = TorchTree::from_ehi(back)->to_ehi();
        EXPECT_TRUE(bit_equal(again.U, ehi.U));
        EXPECT_TRUE(bit_equal(again.node_W, ehi.node_W));
    }
}

TEST(TrainerTorchTree, ChildLogProbsMatchEHITree) {
    for (const Shape& s : sweep()) {
        SCOPED_TRACE(name(s));
        EHITree ehi = make_ehi(s, 13);
        TorchTree tree = TorchTree::from_ehi(ehi);
        std::vector<float> u = randn(size_t(kN) * s.m, 14);
        torch::Tensor ut = as_tensor(u, kN, s.m);
        std::mt19937 rng(15);
        for (int h = 0; h < s.H; h++) {
            std::uniform_int_distribution<idx_t> pick(
                    0, ehi.nodes_at_depth(h) - 1);
            std::vector<int64_t> nodes(kN);
            for (auto& v : nodes) {
                v = pick(rng);
            }
            torch::Tensor lp = tree->child_log_probs(
                    h, torch::tensor(nodes, torch::kLong), ut);
            ASSERT_EQ(lp.sizes(), torch::IntArrayRef({kN, int64_t(s.B)}));
            std::vector<float> got = to_vec(lp), want(size_t(kN) * s.B);
            for (int q = 0; q < kN; q++) {
                ehi.child_log_probs(h, nodes[q], u.data() + size_t(q) * s.m,
                                    nullptr, want.data() + size_t(q) * s.B);
            }
            EXPECT_LE(max_abs_diff(got, want), 1e-5f) << "level " << h;
        }
    }
}

TEST(TrainerTorchTree, LeafProbabilitiesMatchEHITree) {
    for (const Shape& s : sweep()) {
        SCOPED_TRACE(name(s));
        EHITree ehi = make_ehi(s, 21);
        TorchTree tree = TorchTree::from_ehi(ehi);
        std::vector<float> u = randn(size_t(kN) * s.m, 22);
        idx_t L = ehi.nleaves();
        torch::Tensor lp = tree->leaf_log_probs(as_tensor(u, kN, s.m));
        ASSERT_EQ(lp.sizes(), torch::IntArrayRef({kN, int64_t(L)}));
        std::vector<float> want(size_t(kN) * L);
        ehi.all_leaf_probabilities(kN, u.data(), want.data());
        EXPECT_LE(max_abs_diff(to_vec(lp.exp()), want), 1e-5f);
        // a distribution per input
        EXPECT_LE((lp.exp().sum(1) - 1).abs().max().item<float>(), 1e-5f);
    }
}

TEST(TrainerTorchTree, PathEmbeddingMatchesEHITree) {
    for (const Shape& s : sweep()) {
        SCOPED_TRACE(name(s));
        EHITree ehi = make_ehi(s, 31);
        TorchTree tree = TorchTree::from_ehi(ehi);
        std::vector<float> u = randn(size_t(kN) * s.m, 32);
        torch::Tensor T = tree->path_embedding(as_tensor(u, kN, s.m));
        ASSERT_EQ(T.sizes(), torch::IntArrayRef({kN, int64_t(s.B) * s.H}));
        std::vector<float> want(size_t(kN) * s.B * s.H);
        ehi.path_embedding(kN, u.data(), want.data());
        EXPECT_LE(max_abs_diff(to_vec(T), want), 1e-5f);

        // greedy_leaf is the end of that path: the argmax of every block
        std::vector<int64_t> greedy = tree->greedy_leaf(as_tensor(u, kN, s.m));
        for (int q = 0; q < kN; q++) {
            int64_t node = 0;
            for (int h = 0; h < s.H; h++) {
                const float* blk = want.data() + (size_t(q) * s.H + h) * s.B;
                node = node * s.B + (std::max_element(blk, blk + s.B) - blk);
            }
            EXPECT_EQ(greedy[q], node) << "input " << q;
        }
    }
}

TEST(TrainerTorchTree, ArgmaxAndBeamMatchEHITreeRoute) {
    int near_ties = 0;
    for (const Shape& s : sweep()) {
        SCOPED_TRACE(name(s));
        EHITree ehi = make_ehi(s, 41);
        TorchTree tree = TorchTree::from_ehi(ehi);
        std::vector<float> u = randn(size_t(kN) * s.m, 42);
        torch::Tensor ut = as_tensor(u, kN, s.m);
        // beam 5, and beam > B^H (padding) for the smallest trees
        idx_t L = ehi.nleaves();
        for (idx_t beam : {idx_t(1), idx_t(5), L + 2}) {
            std::vector<idx_t> want(size_t(kN) * beam);
            std::vector<float> wantp(size_t(kN) * beam);
            ehi.route(kN, u.data(), beam, want.data(), wantp.data(),
                      int(BeamStrategy::BEST_FIRST));
            auto got = tree->top_leaves(ut, beam);
            ASSERT_EQ(got.first.size(), want.size());
            EXPECT_LE(max_abs_diff(got.second, wantp), 1e-5f);
            std::vector<int64_t> am = tree->argmax_leaf(ut);
            for (int q = 0; q < kN; q++) {
                for (idx_t j = 0; j < beam; j++) {
                    size_t i = size_t(q) * beam + j;
                    // near-ties (within float noise) may come in either order
                    bool tie = (j > 0 &&
                                std::abs(wantp[i] - wantp[i - 1]) < 1e-5f) ||
                            (j + 1 < beam &&
                             std::abs(wantp[i] - wantp[i + 1]) < 1e-5f &&
                             wantp[i] > 0);
                    if (tie && got.first[i] != want[i]) {
                        near_ties++;
                        continue;
                    }
                    EXPECT_EQ(got.first[i], want[i])
                            << "input " << q << " rank " << j << " beam "
                            << beam;
                }
                if (beam == 1) {
                    EXPECT_EQ(am[q], want[q]) << "input " << q;
                }
            }
        }
    }
    EXPECT_LE(near_ties, 2);
}

namespace {

/** Central differences (double precision) of the scalar f() against its
 * autograd gradient, for every entry of u and of every trainable parameter.
 * Where `path_of` is given, entries whose perturbation changes that
 * (argmax) path are skipped: there the function is not differentiable.
 * Returns {checked, skipped}. */
std::pair<int, int> check_gradients(
        TorchTree& tree, torch::Tensor& u,
        const std::function<torch::Tensor()>& f,
        const std::function<std::vector<int64_t>()>& path_of) {
    tree->zero_grad();
    u.mutable_grad() = torch::Tensor();
    f().backward();
    std::vector<int64_t> path0;
    if (path_of) {
        path0 = path_of();
    }
    auto value = [&]() {
        torch::NoGradGuard ng;
        return f().item<double>();
    };
    const double eps = 1e-6;
    int checked = 0, skipped = 0;
    std::vector<torch::Tensor> vars{u};
    for (const auto& p : tree->parameters()) {
        vars.push_back(p);
    }
    for (torch::Tensor& v : vars) {
        EXPECT_TRUE(v.grad().defined()) << "shape " << v.sizes();
        if (!v.grad().defined()) {
            continue;
        }
        torch::Tensor flat = v.detach().view({-1}); // shares storage
        torch::Tensor g = v.grad().reshape({-1});
        for (int64_t i = 0; i < flat.numel(); i++) {
            double x0 = flat[i].item<double>();
            flat[i] = x0 + eps;
            double fp = value();
            bool same = !path_of || path_of() == path0;
            flat[i] = x0 - eps;
            double fm = value();
            same = same && (!path_of || path_of() == path0);
            flat[i] = x0;
            if (!same) {
                skipped++;
                continue;
            }
            double fd = (fp - fm) / (2 * eps);
            double an = g[i].item<double>();
            EXPECT_NEAR(an, fd, 1e-7 * std::max(1.0, std::abs(fd)))
                    << "entry " << i << " of a tensor of shape " << v.sizes();
            checked++;
        }
    }
    return {checked, skipped};
}

const Shape kGradShapes[] = {{3, 3, 4, NodeForm::PAPER, true},
                             {4, 2, 3, NodeForm::PAPER, false},
                             {3, 3, 4, NodeForm::PER_NODE, true}};

} // namespace

TEST(TrainerTorchTree, PathEmbeddingGradientFiniteDifferences) {
    // Double precision; the function is sum(R * T(u)) for a fixed random R,
    // differentiated w.r.t. u and every parameter.
    for (const Shape& s : kGradShapes) {
        SCOPED_TRACE(name(s));
        TorchTree tree = TorchTree::from_ehi(make_ehi(s, 51));
        tree->to(torch::kDouble);
        torch::manual_seed(52);
        torch::Tensor u = torch::randn({3, s.m}, torch::kDouble);
        torch::Tensor R = torch::randn({3, int64_t(s.B) * s.H}, torch::kDouble);
        u.set_requires_grad(true);
        EXPECT_EQ(tree->path_embedding(u).scalar_type(), torch::kDouble);
        auto res = check_gradients(
                tree, u, [&]() { return (tree->path_embedding(u) * R).sum(); },
                [&]() { return tree->greedy_leaf(u.detach()); });
        EXPECT_GT(res.first, 100);
        EXPECT_LE(res.second, 2);
    }
}

TEST(TrainerTorchTree, LeafLogProbsAndBalanceGradientFiniteDifferences) {
    // The balance term's path: KL(mean leaf distribution || uniform) of
    // leaf_log_probs, plus a random weighting of the log-probabilities.
    for (const Shape& s : kGradShapes) {
        SCOPED_TRACE(name(s));
        TorchTree tree = TorchTree::from_ehi(make_ehi(s, 53));
        tree->to(torch::kDouble);
        torch::manual_seed(54);
        torch::Tensor u = torch::randn({3, s.m}, torch::kDouble);
        torch::Tensor R = torch::randn({3, tree->nleaves()}, torch::kDouble);
        u.set_requires_grad(true);
        auto res = check_gradients(
                tree, u,
                [&]() {
                    torch::Tensor lp = tree->leaf_log_probs(u);
                    return faiss_ehi::trainer::balance_kl(lp) +
                            0.01 * (lp * R).sum();
                },
                nullptr);
        EXPECT_GT(res.first, 100);
        EXPECT_EQ(res.second, 0);
    }
}

TEST(TrainerTorchTree, GradientsReachEveryLevelAlongThePath) {
    // The parameters of nodes off the greedy path get no gradient from the
    // path embedding; those on it do (per-node form makes this visible).
    Shape s{3, 2, 4, NodeForm::PER_NODE, true};
    EHITree ehi = make_ehi(s, 61);
    TorchTree tree = TorchTree::from_ehi(ehi);
    std::vector<float> u = randn(size_t(s.m), 62);
    torch::Tensor ut = as_tensor(u, 1, s.m);
    tree->path_embedding(ut).sum().backward();
    // sum of T over a level = P(chosen parent): level 0 sums to 1 (no
    // gradient); level 1 sums to P(child at level 0) which depends on the
    // root's classifier only.
    int64_t leaf = tree->greedy_leaf(ut)[0];
    int64_t parent = leaf / s.B;
    torch::Tensor g1 = tree->node_W[1].grad();
    ASSERT_TRUE(g1.defined());
    // (zero up to rounding: the softmax sums to one)
    EXPECT_LT(g1.abs().sum().item<float>(), 1e-5f);
    EXPECT_GT(tree->node_W[0].grad().abs().sum().item<float>(), 0.0f);

    // with a weighting that is not constant within the block, the chosen
    // parent's classifier gets a gradient and the others none
    tree->zero_grad();
    torch::Tensor R = torch::arange(2 * s.B, torch::kFloat32).view({1, -1});
    (tree->path_embedding(ut) * R).sum().backward();
    g1 = tree->node_W[1].grad();
    for (int64_t v = 0; v < s.B; v++) {
        float gv = g1[v].abs().sum().item<float>();
        if (v == parent) {
            EXPECT_GT(gv, 0.0f);
        } else {
            EXPECT_EQ(gv, 0.0f);
        }
    }
}

TEST(TrainerTorchTree, BadInputsThrow) {
    Shape s{3, 2, 4, NodeForm::PAPER, true};
    EHITree ehi = make_ehi(s, 71);
    TorchTree tree = TorchTree::from_ehi(ehi);
    EXPECT_THROW(tree->path_embedding(torch::zeros({2, 5})),
                 faiss::FaissException);
    EXPECT_THROW(tree->leaf_log_probs(torch::zeros({4})),
                 faiss::FaissException);
    EXPECT_THROW(tree->child_log_probs(2, torch::zeros({2}, torch::kLong),
                                       torch::zeros({2, 4})),
                 faiss::FaissException);
    EXPECT_THROW(tree->child_log_probs(0, torch::zeros({3}, torch::kLong),
                                       torch::zeros({2, 4})),
                 faiss::FaissException);
    EXPECT_THROW(tree->top_leaves(torch::zeros({2, 4}), 0),
                 faiss::FaissException);
    EXPECT_THROW(TorchTree(3, 0, 4), faiss::FaissException);

    // a tree without parameters is refused
    EHITree empty(3, 2, 4, NodeForm::PAPER);
    EXPECT_THROW(TorchTree::from_ehi(empty), faiss::FaissException);

    // non-finite weights are refused on the way back
    {
        torch::NoGradGuard ng;
        tree->W[1][0][0] = std::nanf("");
    }
    EHITree back;
    EXPECT_THROW(tree->to_ehi(back), faiss::FaissException);
}

TEST(TrainerTorchTree, OptimizerStepMovesParametersAndHandsBack) {
    // A few AdamW steps on the path embeddings: the module works with the
    // optimiser, and the trained weights hand over to faiss_ehi with the
    // same path embeddings.
    Shape s{4, 2, 5, NodeForm::PAPER, true};
    EHITree ehi = make_ehi(s, 81);
    TorchTree tree = TorchTree::from_ehi(ehi);
    torch::manual_seed(82);
    torch::Tensor u = torch::randn({16, s.m});
    torch::optim::AdamW opt(tree->parameters(),
                            torch::optim::AdamWOptions(1e-2));
    // push every input to leaf 0's side of level 0
    double first = 0, last = 0;
    for (int it = 0; it < 20; it++) {
        opt.zero_grad();
        torch::Tensor loss = -tree->leaf_log_probs(u).select(1, 0).mean();
        loss.backward();
        opt.step();
        (it == 0 ? first : last) = loss.item<double>();
    }
    EXPECT_LT(last, first);
    EHITree back = tree->to_ehi();
    std::vector<float> want(size_t(16) * s.B * s.H);
    std::vector<float> uv = to_vec(u);
    back.path_embedding(16, uv.data(), want.data());
    EXPECT_LE(max_abs_diff(to_vec(tree->path_embedding(u)), want), 1e-5f);
}
