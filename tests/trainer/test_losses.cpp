/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// The loss terms (the paper's eq. 2 to 6) on small cases computed by hand
// (the arithmetic is in the comments), with their gradients.
#include <gtest/gtest.h>

#include <faiss/impl/FaissException.h>

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include <faiss_ehi/trainer/Losses.h>

namespace tr = faiss_ehi::trainer;

namespace {

torch::Tensor mat(std::initializer_list<std::initializer_list<double>> rows) {
    std::vector<double> v;
    int64_t r = 0, c = 0;
    for (const auto& row : rows) {
        c = int64_t(row.size());
        v.insert(v.end(), row.begin(), row.end());
        r++;
    }
    return torch::tensor(v, torch::kDouble).view({r, c});
}

double val(const torch::Tensor& t) {
    return t.item<double>();
}

constexpr double kTol = 1e-12;

// The triplet example used by several tests (gamma = 0.3):
//   row 0: a = (1, 0), p = (0.5, 0.5), n = (1, 1)
//          <a,n> - <a,p> + 0.3 = 1 - 0.5 + 0.3 = 0.8
//   row 1: a = (0, 2), p = (0, 1),     n = (1, 0)
//          <a,n> - <a,p> + 0.3 = 0 - 2 + 0.3 = -1.7 -> 0
//   mean = (0.8 + 0) / 2 = 0.4
torch::Tensor A() {
    return mat({{1, 0}, {0, 2}});
}
torch::Tensor Pos() {
    return mat({{0.5, 0.5}, {0, 1}});
}
torch::Tensor Neg() {
    return mat({{1, 1}, {1, 0}});
}

} // namespace

TEST(TrainerLosses, TripletHandComputed) {
    torch::Tensor a = A().requires_grad_(), p = Pos().requires_grad_(),
                  n = Neg().requires_grad_();
    torch::Tensor rows = tr::triplet_rows(a, p, n, 0.3);
    ASSERT_EQ(rows.sizes(), torch::IntArrayRef({2}));
    EXPECT_NEAR(val(rows[0]), 0.8, kTol);
    EXPECT_NEAR(val(rows[1]), 0.0, kTol);
    torch::Tensor l = tr::triplet(a, p, n, 0.3);
    EXPECT_NEAR(val(l), 0.4, kTol);

    // d/da_0 = (n_0 - p_0) / 2 = ((1,1) - (0.5,0.5)) / 2 = (0.25, 0.25)
    // d/dp_0 = -a_0 / 2 = (-0.5, 0);  d/dn_0 = a_0 / 2 = (0.5, 0)
    // row 1 is inactive: zero gradients
    l.backward();
    EXPECT_TRUE(torch::allclose(a.grad(), mat({{0.25, 0.25}, {0, 0}})));
    EXPECT_TRUE(torch::allclose(p.grad(), mat({{-0.5, 0}, {0, 0}})));
    EXPECT_TRUE(torch::allclose(n.grad(), mat({{0.5, 0}, {0, 0}})));

    // gamma = 2: row 1 becomes 0 - 2 + 2 = 0, row 0 1 - 0.5 + 2 = 2.5
    EXPECT_NEAR(val(tr::triplet(A(), Pos(), Neg(), 2.0)), 1.25, kTol);
}

TEST(TrainerLosses, SiameseAndIndexingAreTheTripletOnTheirInputs) {
    // L_siamese = L(Eq, Ed+, Ed-), L_indexing = L(Tq, Td+, Td-): the same
    // example gives 0.4 for both.
    EXPECT_NEAR(val(tr::siamese_loss(A(), Pos(), Neg(), 0.3)), 0.4, kTol);
    EXPECT_NEAR(val(tr::indexing_loss(A(), Pos(), Neg(), 0.3)), 0.4, kTol);
    // path-embedding-like inputs: Tq = (1,0 | 0,1) ... see TotalHandComputed
}

TEST(TrainerLosses, TripletInBatchHandComputed) {
    // a_0 = (1,0), a_1 = (0,1); p_0 = (0.2,0.1), p_1 = (0.4,0.5);
    // candidates = the positives, gamma = 0.3.
    //   (0, 1): <a_0,p_1> - <a_0,p_0> + 0.3 = 0.4 - 0.2 + 0.3 = 0.5
    //   (1, 0): <a_1,p_0> - <a_1,p_1> + 0.3 = 0.1 - 0.5 + 0.3 = -0.1 -> 0
    //   (i, i): the positive against itself = gamma = 0.3
    // off-diagonal mean = (0.5 + 0) / 2 = 0.25
    // all four pairs: (0.3 + 0.5 + 0 + 0.3) / 4 = 0.275
    torch::Tensor a = mat({{1, 0}, {0, 1}});
    torch::Tensor p = mat({{0.2, 0.1}, {0.4, 0.5}});
    torch::Tensor off = torch::eye(2, torch::kBool).logical_not();
    EXPECT_NEAR(val(tr::triplet_in_batch(a, p, p, off, 0.3)), 0.25, kTol);
    EXPECT_NEAR(val(tr::triplet_in_batch(a, p, p, torch::Tensor(), 0.3)), 0.275,
                kTol);
    // no valid pair: zero, not NaN
    torch::Tensor none = torch::zeros({2, 2}, torch::kBool);
    EXPECT_EQ(val(tr::triplet_in_batch(a, p, p, none, 0.3)), 0.0);
}

TEST(TrainerLosses, IntraLeafHandComputedAndGateHasNoGradient) {
    // row 0: E d+ = (1,0), E d- = (0,1): cos = 0 < 0.9, gate on.
    //        T d+ = (0.6,0.4), T d- = (0.5,0.5):
    //        <Td+,Td-> - <Td+,Td+> + 0.3 = 0.5 - 0.52 + 0.3 = 0.28
    // row 1: E d+ = (1,0), E d- = (1,0.1): cos = 1/sqrt(1.01) = 0.995 >= 0.9,
    //        gate off (its triplet would be 1 - 1 + 0.3 = 0.3).
    // mean = (0.28 + 0) / 2 = 0.14
    torch::Tensor Edp = mat({{1, 0}, {1, 0}}).requires_grad_();
    torch::Tensor Edn = mat({{0, 1}, {1, 0.1}}).requires_grad_();
    torch::Tensor Tdp = mat({{0.6, 0.4}, {1, 0}}).requires_grad_();
    torch::Tensor Tdn = mat({{0.5, 0.5}, {1, 0}}).requires_grad_();

    torch::Tensor gate = tr::intra_gate(Edp, Edn, 0.9);
    EXPECT_TRUE(gate[0].item<bool>());
    EXPECT_FALSE(gate[1].item<bool>());
    EXPECT_FALSE(gate.requires_grad());

    torch::Tensor rows = tr::intra_leaf_loss_rows(Tdp, Tdn, Edp, Edn, 0.3, 0.9);
    EXPECT_NEAR(val(rows[0]), 0.28, kTol);
    EXPECT_NEAR(val(rows[1]), 0.0, kTol);
    torch::Tensor l = tr::intra_leaf_loss(Tdp, Tdn, Edp, Edn, 0.3, 0.9);
    EXPECT_NEAR(val(l), 0.14, kTol);

    // d/dTd+_0 = (Td-_0 - 2 Td+_0) / 2 = ((0.5,0.5) - (1.2,0.8)) / 2
    //          = (-0.35, -0.15);  d/dTd-_0 = Td+_0 / 2 = (0.3, 0.2)
    // The gate is not differentiated: E d+ and E d- get no gradient.
    l.backward();
    EXPECT_TRUE(torch::allclose(Tdp.grad(), mat({{-0.35, -0.15}, {0, 0}})));
    EXPECT_TRUE(torch::allclose(Tdn.grad(), mat({{0.3, 0.2}, {0, 0}})));
    EXPECT_TRUE(!Edp.grad().defined() ||
                Edp.grad().abs().sum().item<double>() == 0);
    EXPECT_TRUE(!Edn.grad().defined() ||
                Edn.grad().abs().sum().item<double>() == 0);

    // a looser gate (tau = 1.0) lets row 1 in: (0.28 + 0.3) / 2 = 0.29
    EXPECT_NEAR(val(tr::intra_leaf_loss(Tdp, Tdn, Edp, Edn, 0.3, 1.0)), 0.29,
                kTol);
}

TEST(TrainerLosses, BalanceKLHandComputed) {
    // Two inputs over L = 2 leaves: p_0 = (0.8, 0.2), p_1 = (0.4, 0.6)
    // pbar = (0.6, 0.4); KL(pbar || U) = 0.6 ln(0.6 * 2) + 0.4 ln(0.4 * 2)
    //      = 0.6 ln 1.2 + 0.4 ln 0.8 = 0.109392938 - 0.089257425
    //      = 0.020135513550688863
    torch::Tensor lp = mat({{0.8, 0.2}, {0.4, 0.6}}).log().requires_grad_();
    torch::Tensor kl = tr::balance_kl(lp);
    EXPECT_NEAR(val(kl), 0.020135513550688863, kTol);
    // As a function of the log-probabilities, KL = sum_l pbar_l ln pbar_l
    // + ln L: d KL / d pbar_l = ln pbar_l + 1, d pbar_l / d log p_il =
    // p_il / n; for input 0, leaf 0: (ln 0.6 + 1) * 0.8 / 2 = 0.0956733...
    kl.backward();
    EXPECT_NEAR(lp.grad()[0][0].item<double>(), (std::log(0.6) + 1) * 0.8 / 2,
                1e-12);

    // spread evenly: zero
    EXPECT_NEAR(val(tr::balance_kl(mat({{0.9, 0.1}, {0.1, 0.9}}).log())), 0.0,
                kTol);
    // all mass on one of L = 4 leaves: KL = ln 4
    EXPECT_NEAR(val(tr::balance_kl(mat({{0, -1e30, -1e30, -1e30}}))),
                std::log(4.0), kTol);
    // an empty leaf (log p = -inf) counts 0: pbar = (0.5, 0.5, 0),
    // KL = 2 * 0.5 ln(0.5 * 3) = ln 1.5, with a finite gradient
    double inf = std::numeric_limits<double>::infinity();
    torch::Tensor lz = mat({{std::log(0.5), std::log(0.5), -inf},
                            {std::log(0.5), std::log(0.5), -inf}})
                               .requires_grad_();
    torch::Tensor kz = tr::balance_kl(lz);
    EXPECT_NEAR(val(kz), std::log(1.5), kTol);
    kz.backward();
    EXPECT_TRUE(torch::isfinite(lz.grad()).all().item<bool>());
}

TEST(TrainerLosses, TotalHandComputed) {
    // Rows (gamma 0.3, tau 0.9):
    //   E q = A(), E d+ = Pos(), E d- = Neg()          -> L_siamese = 0.4
    //   T q = (1,0 ; 0,1), T d+ = (0.6,0.4 ; 0.6,0.4), T d- = (0.5,0.5 ; ...)
    //     indexing row 0: 0.5 - 0.6 + 0.3 = 0.2; row 1: 0.5 - 0.4 + 0.3 = 0.4
    //     -> L_indexing = 0.3
    //   gate: cos(Pos_0, Neg_0) = 1 / (sqrt(0.5) sqrt(2)) = 1 -> off;
    //         cos(Pos_1, Neg_1) = 0 -> on; intra row 1: 0.5 - 0.52 + 0.3
    //     = 0.28 -> L_intra = 0.14
    //   balance: the BalanceKLHandComputed case, 0.020135513550688863
    // total = 0.2*0.4 + 0.8*0.3 + 0.2*0.14 + 2*0.0201355...
    //       = 0.08 + 0.24 + 0.028 + 0.040271027101377726 = 0.38827102710137773
    tr::LossInputs in;
    in.Eq = A();
    in.Edp = Pos();
    in.Edn = Neg();
    in.Tq = mat({{1, 0}, {0, 1}});
    in.Tdp = mat({{0.6, 0.4}, {0.6, 0.4}});
    in.Tdn = mat({{0.5, 0.5}, {0.5, 0.5}});
    in.leaf_log_probs = mat({{0.8, 0.2}, {0.4, 0.6}}).log();
    tr::LossConfig cfg; // gamma 0.3, tau 0.9, lambdas 0.2 / 0.8 / 0.2
    cfg.bal = 2.0;
    tr::LossTerms t = tr::ehi_loss(in, cfg);
    EXPECT_NEAR(val(t.siamese), 0.4, kTol);
    EXPECT_NEAR(val(t.indexing), 0.3, kTol);
    EXPECT_NEAR(val(t.intra), 0.14, kTol);
    EXPECT_NEAR(val(t.balance), 0.020135513550688863, kTol);
    EXPECT_NEAR(val(t.total), 0.38827102710137773, kTol);

    // the paper's recipe (bal = 0): no balance term
    cfg.bal = 0;
    t = tr::ehi_loss(in, cfg);
    EXPECT_FALSE(t.balance.defined());
    EXPECT_NEAR(val(t.total), 0.348, kTol);
}

TEST(TrainerLosses, BadShapesThrow) {
    EXPECT_THROW(tr::triplet(A(), Pos(), mat({{1, 2, 3}}), 0.3),
                 faiss::FaissException);
    EXPECT_THROW(tr::balance_kl(torch::zeros({3})), faiss::FaissException);
    EXPECT_THROW(tr::triplet_in_batch(A(), Pos(), mat({{1, 2, 3}}),
                                      torch::Tensor(), 0.3),
                 faiss::FaissException);
}
