/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/ProbeTrainer.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/enum_names.h>
#include <torch/torch.h>

#include <faiss_ehi/trainer/ThreadScope.h>

namespace faiss_ehi {
namespace trainer {

namespace {

/// The rows `ids` of a sample as its own KnnSample.
KnnSample subset(const KnnSample& s, const std::vector<idx_t>& ids) {
    KnnSample o;
    o.nq = idx_t(ids.size());
    o.k = s.k;
    o.d = s.d;
    for (idx_t i : ids) {
        o.rows.push_back(s.rows[i]);
        o.queries.insert(o.queries.end(), s.queries.begin() + i * s.d,
                         s.queries.begin() + (i + 1) * s.d);
        o.neighbors.insert(o.neighbors.end(), s.neighbors.begin() + i * s.k,
                           s.neighbors.begin() + (i + 1) * s.k);
    }
    return o;
}

/// Dense leaf targets as a tensor (see ProbeTrainer::targets).
torch::Tensor leaf_targets(const KnnSample& s, const idx_t* ids, idx_t nb,
                           const idx_t* doc_leaf, idx_t L) {
    std::vector<float> t = ProbeTrainer::targets(s, ids, nb, doc_leaf, L);
    return torch::from_blob(t.data(), {nb, L}, torch::kFloat32).clone();
}

torch::Tensor rows(const KnnSample& s, const idx_t* ids, idx_t nb) {
    torch::Tensor u = torch::empty({nb, int64_t(s.d)}, torch::kFloat32);
    float* p = u.data_ptr<float>();
    for (idx_t r = 0; r < nb; r++) {
        std::copy_n(s.queries.data() + size_t(ids[r]) * s.d, s.d, p + r * s.d);
    }
    return u;
}

/// One level's classifier as trainable tensors (weights, bias, log-scale).
struct Level {
    torch::Tensor W, b, log_scale;
    torch::Tensor logits(const torch::Tensor& u) const {
        return (torch::matmul(u, W.t()) + b) * log_scale.exp();
    }
    void write_back(std::vector<float>& Wt, std::vector<float>& bt) const {
        torch::NoGradGuard ng;
        torch::Tensor s = log_scale.exp();
        torch::Tensor Wc = (W * s).contiguous(), bc = (b * s).contiguous();
        std::copy_n(Wc.data_ptr<float>(), Wt.size(), Wt.data());
        std::copy_n(bc.data_ptr<float>(), bt.size(), bt.data());
    }
};

Level level_from(const std::vector<float>& W, const std::vector<float>& b,
                 int64_t rows, int64_t m) {
    Level lv;
    lv.W = torch::from_blob(const_cast<float*>(W.data()), {rows, m},
                            torch::kFloat32)
                   .clone()
                   .set_requires_grad(true);
    lv.b = torch::from_blob(const_cast<float*>(b.data()), {rows},
                            torch::kFloat32)
                   .clone()
                   .set_requires_grad(true);
    lv.log_scale = torch::zeros({1}, torch::kFloat32).set_requires_grad(true);
    return lv;
}

torch::Tensor soft_ce(const torch::Tensor& logits, const torch::Tensor& t) {
    return -(t * torch::log_softmax(logits, 1)).sum(1).mean();
}

double mean_of(const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

} // namespace

std::vector<float> ProbeTrainer::targets(const KnnSample& s, const idx_t* ids,
                                         idx_t nb, const idx_t* doc_leaf,
                                         idx_t L) {
    std::vector<float> t(size_t(nb) * L, 0.0f);
    for (idx_t r = 0; r < nb; r++) {
        const idx_t* nn = s.neighbors.data() + size_t(ids[r]) * s.k;
        int cnt = 0;
        for (int j = 0; j < s.k; j++) {
            cnt += nn[j] >= 0;
        }
        for (int j = 0; j < s.k; j++) {
            if (nn[j] >= 0) {
                t[size_t(r) * L + doc_leaf[nn[j]]] += 1.0f / float(cnt);
            }
        }
    }
    return t;
}

ProbeTrainerStats ProbeTrainer::train(EHITree& tree, const KnnSample& sample,
                                      const idx_t* doc_leaf,
                                      idx_t ndocs) const {
    FAISS_THROW_IF_NOT_FMT(tree.is_trained && tree.form == NodeForm::PER_NODE,
                           "ProbeTrainer: needs a trained tree of the per-node "
                           "form (trained %d, form '%s')",
                           int(tree.is_trained), enum_name(tree.form));
    FAISS_THROW_IF_NOT_FMT(sample.nq >= 2 && sample.d == tree.m && doc_leaf &&
                                   ndocs > 0,
                           "ProbeTrainer: needs at least 2 queries of the "
                           "tree's dimension %d and the documents' leaves "
                           "(got %lld queries of dimension %d, %lld "
                           "documents%s)",
                           tree.m, (long long)sample.nq, sample.d,
                           (long long)ndocs, doc_leaf ? "" : ", no leaves");
    FAISS_THROW_IF_NOT_FMT(epochs >= 0 && batch_size > 0 && learning_rate > 0 &&
                                   holdout > 0 && holdout < 1 &&
                                   !budgets.empty(),
                           "ProbeTrainer: bad parameters (epochs %d, "
                           "batch_size %d, learning_rate %g, holdout %g, %zd "
                           "budgets)",
                           epochs, batch_size, double(learning_rate),
                           double(holdout), budgets.size());
    const idx_t L = tree.nleaves();
    sample.check(tree.m, ndocs, "ProbeTrainer");
    check_doc_leaves(doc_leaf, ndocs, L, "ProbeTrainer");
    // by default the OpenMP count of the caller, for torch too
    TorchThreadScope ts(threads > 0 ? threads : omp_get_max_threads());
    torch::manual_seed(seed);
    const int B = tree.B, H = tree.H, m = tree.m, hl = H - 1;

    ProbeTrainerStats st;
    std::mt19937_64 rng(seed);
    std::vector<idx_t> perm(sample.nq);
    std::iota(perm.begin(), perm.end(), idx_t(0));
    std::shuffle(perm.begin(), perm.end(), rng);
    idx_t n_held = std::max<idx_t>(1, idx_t(holdout * double(sample.nq)));
    std::vector<idx_t> held(perm.begin(), perm.begin() + n_held);
    std::vector<idx_t> tr(perm.begin() + n_held, perm.end());
    st.n_heldout = n_held;
    st.n_train = idx_t(tr.size());
    const KnnSample held_sample = subset(sample, held);

    Level leaf = level_from(tree.node_W[hl], tree.node_b[hl], L, m);
    const bool train_root = H == 2;
    Level root;
    std::vector<torch::Tensor> params = {leaf.W, leaf.b, leaf.log_scale};
    if (train_root) {
        root = level_from(tree.node_W[0], tree.node_b[0], B, m);
        params.insert(params.end(), {root.W, root.b, root.log_scale});
    }
    torch::optim::Adam opt(params, torch::optim::AdamOptions(learning_rate));

    EHITree best = tree;
    auto evaluate = [&]() {
        EHITree t = tree;
        leaf.write_back(t.node_W[hl], t.node_b[hl]);
        if (train_root) {
            root.write_back(t.node_W[0], t.node_b[0]);
        }
        double r = mean_of(
                budget_recall(t, held_sample, doc_leaf, ndocs, budgets));
        return std::make_pair(r, t);
    };
    double best_r =
            mean_of(budget_recall(tree, held_sample, doc_leaf, ndocs, budgets));
    st.heldout_recall.push_back(best_r);
    if (verbose) {
        std::printf("ProbeTrainer: %lld training / %lld held-out queries, "
                    "held-out budget recall %.4f at start\n",
                    (long long)st.n_train, (long long)n_held, best_r);
    }
    for (int ep = 1; ep <= epochs; ep++) {
        std::shuffle(tr.begin(), tr.end(), rng);
        double loss_sum = 0;
        idx_t nbatches = 0;
        for (size_t b0 = 0; b0 < tr.size(); b0 += batch_size) {
            idx_t nb = idx_t(std::min(tr.size() - b0, size_t(batch_size)));
            torch::Tensor u = rows(sample, tr.data() + b0, nb);
            torch::Tensor t =
                    leaf_targets(sample, tr.data() + b0, nb, doc_leaf, L);
            torch::Tensor loss = soft_ce(leaf.logits(u), t);
            if (train_root) {
                torch::Tensor tg = t.view({nb, B, B}).sum(2);
                loss = loss + soft_ce(root.logits(u), tg);
            }
            opt.zero_grad();
            loss.backward();
            opt.step();
            loss_sum += loss.item<double>();
            nbatches++;
        }
        st.train_loss.push_back(loss_sum /
                                double(std::max<idx_t>(1, nbatches)));
        auto [r, t] = evaluate();
        st.heldout_recall.push_back(r);
        if (r > best_r) {
            best_r = r;
            best = std::move(t);
            st.best_epoch = ep;
        }
        if (verbose) {
            std::printf("ProbeTrainer: epoch %d loss %.4f held-out budget "
                        "recall %.4f%s\n",
                        ep, st.train_loss.back(), r,
                        st.best_epoch == ep ? " (best)" : "");
        }
    }
    tree = std::move(best);
    return st;
}

} // namespace trainer
} // namespace faiss_ehi
