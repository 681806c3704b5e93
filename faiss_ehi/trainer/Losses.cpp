/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/Losses.h>

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/trainer/TensorText.h>

namespace faiss_ehi {
namespace trainer {

namespace {

void check_rows(const torch::Tensor& a, const torch::Tensor& p,
                const torch::Tensor& n, const char* what) {
    FAISS_THROW_IF_NOT_FMT(a.defined() && p.defined() && n.defined() &&
                                   a.dim() == 2 && a.sizes() == p.sizes() &&
                                   a.sizes() == n.sizes(),
                           "%s: expected three (n, d) tensors of the same "
                           "shape, got %s, %s, %s",
                           what, shape_text(a).c_str(), shape_text(p).c_str(),
                           shape_text(n).c_str());
}

/// Row-wise inner products <x_i, y_i>, (n).
torch::Tensor rowdot(const torch::Tensor& x, const torch::Tensor& y) {
    return (x * y).sum(1);
}

} // namespace

torch::Tensor triplet_rows(const torch::Tensor& a, const torch::Tensor& p,
                           const torch::Tensor& n, double gamma) {
    check_rows(a, p, n, "triplet");
    return torch::relu(rowdot(a, n) - rowdot(a, p) + gamma);
}

torch::Tensor triplet(const torch::Tensor& a, const torch::Tensor& p,
                      const torch::Tensor& n, double gamma) {
    return triplet_rows(a, p, n, gamma).mean();
}

torch::Tensor triplet_in_batch(const torch::Tensor& a, const torch::Tensor& p,
                               const torch::Tensor& cands,
                               const torch::Tensor& valid, double gamma) {
    FAISS_THROW_IF_NOT_FMT(a.dim() == 2 && a.sizes() == p.sizes(),
                           "triplet_in_batch: a and p must be (n, d) of the "
                           "same shape, got %s and %s",
                           shape_text(a).c_str(), shape_text(p).c_str());
    FAISS_THROW_IF_NOT_FMT(cands.dim() == 2 && cands.size(1) == a.size(1),
                           "triplet_in_batch: cands must be (k, %lld), got %s",
                           (long long)a.size(1), shape_text(cands).c_str());
    torch::Tensor l = torch::relu(a.matmul(cands.t()) -
                                  rowdot(a, p).unsqueeze(1) + gamma); // (n, k)
    if (!valid.defined()) {
        return l.mean();
    }
    FAISS_THROW_IF_NOT_FMT(valid.dim() == 2 && valid.size(0) == a.size(0) &&
                                   valid.size(1) == cands.size(0),
                           "triplet_in_batch: valid must be (%lld, %lld), got "
                           "%s",
                           (long long)a.size(0), (long long)cands.size(0),
                           shape_text(valid).c_str());
    torch::Tensor mask = valid.to(l.scalar_type());
    // clamp: no valid pair gives 0 / 1 = 0 rather than 0 / 0
    return (l * mask).sum() / mask.sum().clamp_min(1.0);
}

torch::Tensor siamese_loss(const torch::Tensor& Eq, const torch::Tensor& Edp,
                           const torch::Tensor& Edn, double gamma) {
    return triplet(Eq, Edp, Edn, gamma);
}

torch::Tensor indexing_loss(const torch::Tensor& Tq, const torch::Tensor& Tdp,
                            const torch::Tensor& Tdn, double gamma) {
    return triplet(Tq, Tdp, Tdn, gamma);
}

torch::Tensor intra_gate(const torch::Tensor& Edp, const torch::Tensor& Edn,
                         double tau) {
    torch::NoGradGuard no_grad;
    FAISS_THROW_IF_NOT_FMT(Edp.dim() == 2 && Edp.sizes() == Edn.sizes(),
                           "intra_gate: E d+ and E d- must be (n, d) of the "
                           "same shape, got %s and %s",
                           shape_text(Edp).c_str(), shape_text(Edn).c_str());
    torch::Tensor c =
            torch::cosine_similarity(Edp.detach(), Edn.detach(), 1, 1e-8);
    return c < tau;
}

torch::Tensor intra_leaf_loss_rows(const torch::Tensor& Tdp,
                                   const torch::Tensor& Tdn,
                                   const torch::Tensor& Edp,
                                   const torch::Tensor& Edn, double gamma,
                                   double tau) {
    FAISS_THROW_IF_NOT_FMT(Edp.size(0) == Tdp.size(0),
                           "intra_leaf_loss: E and T must have the same number "
                           "of rows, got %lld and %lld",
                           (long long)Edp.size(0), (long long)Tdp.size(0));
    torch::Tensor gate = intra_gate(Edp, Edn, tau).to(Tdp.scalar_type());
    return gate * triplet_rows(Tdp, Tdp, Tdn, gamma);
}

torch::Tensor intra_leaf_loss(const torch::Tensor& Tdp,
                              const torch::Tensor& Tdn,
                              const torch::Tensor& Edp,
                              const torch::Tensor& Edn, double gamma,
                              double tau) {
    return intra_leaf_loss_rows(Tdp, Tdn, Edp, Edn, gamma, tau).mean();
}

torch::Tensor balance_kl(const torch::Tensor& leaf_log_probs) {
    FAISS_THROW_IF_NOT_FMT(leaf_log_probs.dim() == 2 &&
                                   leaf_log_probs.size(0) >= 1,
                           "balance_kl: expected (n, L) leaf "
                           "log-probabilities with n >= 1, got %s",
                           shape_text(leaf_log_probs).c_str());
    int64_t L = leaf_log_probs.size(1);
    // pbar_l = mean_i p_il. Through exp and a mean rather than logsumexp:
    // an empty leaf (log p = -inf for every input) then has pbar = 0 and a
    // zero, not NaN, gradient.
    torch::Tensor pbar = torch::exp(leaf_log_probs).mean(0);
    // pbar ln pbar -> 0 at pbar = 0: clamp inside the log only
    torch::Tensor logpbar =
            torch::log(pbar.clamp_min(std::numeric_limits<float>::min()));
    return (pbar * logpbar).sum() + std::log(double(L));
}

LossTerms ehi_loss(const LossInputs& in, const LossConfig& cfg) {
    LossTerms t;
    t.siamese = siamese_loss(in.Eq, in.Edp, in.Edn, cfg.gamma);
    t.indexing = indexing_loss(in.Tq, in.Tdp, in.Tdn, cfg.gamma);
    t.intra =
            intra_leaf_loss(in.Tdp, in.Tdn, in.Edp, in.Edn, cfg.gamma, cfg.tau);
    t.total = cfg.lambda1 * t.siamese + cfg.lambda2 * t.indexing +
            cfg.lambda3 * t.intra;
    if (cfg.bal != 0 && in.leaf_log_probs.defined()) {
        t.balance = balance_kl(in.leaf_log_probs);
        t.total = t.total + cfg.bal * t.balance;
    }
    return t;
}

} // namespace trainer
} // namespace faiss_ehi
