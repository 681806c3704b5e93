/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/RoutingTrainer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <string>

#include <omp.h>
#include <torch/torch.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/trainer/Losses.h>
#include <faiss_ehi/trainer/ThreadScope.h>
#include <faiss_ehi/trainer/TorchTree.h>

namespace faiss_ehi {
namespace trainer {

RoutingTargets RoutingTargets::from_neighbors(idx_t n, int k, const idx_t* nn,
                                              const idx_t* doc_leaf) {
    FAISS_THROW_IF_NOT_FMT(n >= 0 && k > 0,
                           "RoutingTargets::from_neighbors: n = %lld and k = "
                           "%lld, need n >= 0 and k > 0",
                           (long long)n, (long long)k);
    RoutingTargets t;
    t.offsets.resize(n + 1, 0);
    for (idx_t i = 0; i < n; i++) {
        std::map<idx_t, int> count;
        int total = 0;
        for (int j = 0; j < k; j++) {
            idx_t doc = nn[i * k + j];
            if (doc < 0) {
                continue;
            }
            idx_t leaf = doc_leaf[doc];
            if (leaf < 0) {
                continue;
            }
            count[leaf]++;
            total++;
        }
        for (const auto& kv : count) {
            t.leaves.push_back(kv.first);
            t.weights.push_back(float(kv.second) / float(total));
        }
        t.offsets[i + 1] = idx_t(t.leaves.size());
    }
    return t;
}

namespace {

/// Normalised targets, checked.
struct Targets {
    idx_t n = 0;
    std::vector<idx_t> offsets;
    std::vector<idx_t> leaves;
    std::vector<float> weights;
};

Targets check_targets(const RoutingTargets& t, idx_t n, idx_t nleaves) {
    FAISS_THROW_IF_NOT_FMT(t.size() == n,
                           "RoutingTrainer: %lld target sets for %lld queries",
                           (long long)t.size(), (long long)n);
    FAISS_THROW_IF_NOT_FMT(
            t.offsets[0] == 0 && t.leaves.size() == size_t(t.offsets[n]) &&
                    t.weights.size() == t.leaves.size(),
            "RoutingTrainer: targets' offsets (to %lld), "
            "leaves (%zd) and weights (%zd) disagree in size",
            (long long)t.offsets[n], t.leaves.size(), t.weights.size());
    Targets out;
    out.n = n;
    out.offsets = t.offsets;
    out.leaves = t.leaves;
    out.weights = t.weights;
    for (idx_t i = 0; i < n; i++) {
        idx_t b = t.offsets[i], e = t.offsets[i + 1];
        FAISS_THROW_IF_NOT_FMT(e >= b,
                               "RoutingTrainer: targets' offsets decrease at "
                               "query %lld",
                               (long long)i);
        double sum = 0;
        for (idx_t j = b; j < e; j++) {
            FAISS_THROW_IF_NOT_FMT(t.leaves[j] >= 0 && t.leaves[j] < nleaves,
                                   "RoutingTrainer: target leaf %lld of query "
                                   "%lld outside [0, %lld)",
                                   (long long)t.leaves[j], (long long)i,
                                   (long long)nleaves);
            float w = t.weights[j];
            FAISS_THROW_IF_NOT_FMT(std::isfinite(w) && w >= 0,
                                   "RoutingTrainer: target weight %g of query "
                                   "%lld, must be finite and >= 0",
                                   double(w), (long long)i);
            sum += w;
        }
        FAISS_THROW_IF_NOT_FMT(sum > 0,
                               "RoutingTrainer: query %lld has no target "
                               "weight",
                               (long long)i);
        for (idx_t j = b; j < e; j++) {
            out.weights[j] = float(t.weights[j] / sum);
        }
    }
    return out;
}

/// Targets of one batch of queries, in the form the loss needs.
struct BatchTargets {
    torch::Tensor dense; ///< full form: (nb, L)
    /// factorised form, per level h: query row, node at depth h, child mass
    std::vector<torch::Tensor> rows, nodes, mass;
};

BatchTargets make_batch(const Targets& t, const idx_t* ids, idx_t nb, int B,
                        int H, idx_t L, bool factorised) {
    BatchTargets bt;
    if (!factorised) {
        bt.dense = torch::zeros({nb, L}, torch::kFloat32);
        float* d = bt.dense.data_ptr<float>();
        for (idx_t r = 0; r < nb; r++) {
            idx_t i = ids[r];
            for (idx_t j = t.offsets[i]; j < t.offsets[i + 1]; j++) {
                d[r * L + t.leaves[j]] += t.weights[j];
            }
        }
        return bt;
    }
    bt.rows.resize(H);
    bt.nodes.resize(H);
    bt.mass.resize(H);
    for (int h = 0; h < H; h++) {
        // depth h+1 node of leaf l: l / B^(H-1-h)
        idx_t div = 1;
        for (int k = 0; k < H - 1 - h; k++) {
            div *= B;
        }
        std::vector<int64_t> rows, nodes;
        std::vector<float> mass;
        for (idx_t r = 0; r < nb; r++) {
            idx_t i = ids[r];
            std::map<idx_t, std::vector<float>> per_parent;
            for (idx_t j = t.offsets[i]; j < t.offsets[i + 1]; j++) {
                idx_t v = t.leaves[j] / div;
                auto& m = per_parent[v / B];
                if (m.empty()) {
                    m.assign(B, 0.0f);
                }
                m[v % B] += t.weights[j];
            }
            for (const auto& kv : per_parent) {
                rows.push_back(r);
                nodes.push_back(kv.first);
                mass.insert(mass.end(), kv.second.begin(), kv.second.end());
            }
        }
        int64_t E = int64_t(rows.size());
        bt.rows[h] = torch::tensor(rows, torch::kInt64);
        bt.nodes[h] = torch::tensor(nodes, torch::kInt64);
        bt.mass[h] =
                torch::from_blob(mass.data(), {E, int64_t(B)}, torch::kFloat32)
                        .clone();
    }
    return bt;
}

/// Sum over the batch of the CE (not the mean), differentiable.
torch::Tensor batch_ce_sum(const TorchTree& tree, const torch::Tensor& u,
                           const BatchTargets& bt, bool factorised,
                           torch::Tensor* leaf_lp_out) {
    if (!factorised) {
        torch::Tensor lp = tree->leaf_log_probs(u);
        if (leaf_lp_out) {
            *leaf_lp_out = lp;
        }
        // 0 * (-inf) would be nan: only target entries count
        torch::Tensor prod = torch::where(bt.dense > 0, bt.dense * lp,
                                          torch::zeros_like(lp));
        return -prod.sum();
    }
    torch::Tensor total = torch::zeros({}, torch::kFloat32);
    for (int h = 0; h < tree->H; h++) {
        if (bt.rows[h].numel() == 0) {
            continue;
        }
        torch::Tensor uh = u.index_select(0, bt.rows[h]);
        torch::Tensor clp = tree->child_log_probs(h, bt.nodes[h], uh);
        torch::Tensor prod = torch::where(bt.mass[h] > 0, bt.mass[h] * clp,
                                          torch::zeros_like(clp));
        total = total - prod.sum();
    }
    if (leaf_lp_out) {
        *leaf_lp_out = tree->leaf_log_probs(u);
    }
    return total;
}

torch::Tensor rows_of(const float* x, const idx_t* ids, idx_t nb, int m) {
    torch::Tensor u = torch::empty({nb, int64_t(m)}, torch::kFloat32);
    float* d = u.data_ptr<float>();
    for (idx_t r = 0; r < nb; r++) {
        std::copy(x + ids[r] * m, x + ids[r] * m + m, d + r * m);
    }
    return u;
}

/** Queries and their targets, cut into blocks once (they are evaluated many
 * times), unless the dense full-leaf targets would take more than
 * kEvalCacheFloats floats: then each block is rebuilt at every evaluation. */
constexpr idx_t kEvalBlock = 1024;
constexpr double kEvalCacheFloats = double(1 << 25);

struct EvalSet {
    const float* x = nullptr;
    const Targets* t = nullptr;
    std::vector<idx_t> ids;
    bool cached = false;
    std::vector<torch::Tensor> u;
    std::vector<BatchTargets> bt;
};

EvalSet make_eval_set(const TorchTree& tree, const float* x, const Targets& t,
                      const std::vector<idx_t>& ids, bool factorised) {
    EvalSet es;
    es.x = x;
    es.t = &t;
    es.ids = ids;
    es.cached = factorised ||
            double(ids.size()) * double(tree->nleaves()) <= kEvalCacheFloats;
    if (es.cached) {
        idx_t n = idx_t(ids.size());
        for (idx_t b = 0; b < n; b += kEvalBlock) {
            idx_t nb = std::min(kEvalBlock, n - b);
            es.bt.push_back(make_batch(t, ids.data() + b, nb, tree->B, tree->H,
                                       tree->nleaves(), factorised));
            es.u.push_back(rows_of(x, ids.data() + b, nb, tree->m));
        }
    }
    return es;
}

/// Mean CE over an evaluation set (no gradient).
double mean_ce(const TorchTree& tree, const EvalSet& es, bool factorised) {
    idx_t n = idx_t(es.ids.size());
    if (n == 0) {
        return 0;
    }
    torch::NoGradGuard ng;
    double sum = 0;
    for (idx_t b = 0, blk = 0; b < n; b += kEvalBlock, blk++) {
        if (es.cached) {
            sum += batch_ce_sum(tree, es.u[blk], es.bt[blk], factorised,
                                nullptr)
                           .item<double>();
        } else {
            idx_t nb = std::min(kEvalBlock, n - b);
            BatchTargets bt = make_batch(*es.t, es.ids.data() + b, nb, tree->B,
                                         tree->H, tree->nleaves(), factorised);
            torch::Tensor u = rows_of(es.x, es.ids.data() + b, nb, tree->m);
            sum += batch_ce_sum(tree, u, bt, factorised, nullptr)
                           .item<double>();
        }
    }
    return sum / double(n);
}

/// The tensors holding level h's logit scale (W and bias of either form).
std::vector<torch::Tensor> level_params(const TorchTree& tree, int h) {
    if (tree->form == NodeForm::PER_NODE) {
        return {tree->node_W[h], tree->node_b[h]};
    }
    return {tree->W[h], tree->bias[h]};
}

void set_level_scale(const TorchTree& tree, int h,
                     const std::vector<torch::Tensor>& orig, double t) {
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> p = level_params(tree, h);
    for (size_t i = 0; i < p.size(); i++) {
        if (p[i].defined() && p[i].numel() > 0) {
            p[i].copy_(orig[i] * t);
        }
    }
}

/// Coordinate descent of golden-section searches on log t_h.
std::vector<double> fit_temperatures(const TorchTree& tree, const EvalSet& es,
                                     bool factorised, double& ce,
                                     bool verbose) {
    int H = tree->H;
    std::vector<double> temp(H, 1.0);
    std::vector<std::vector<torch::Tensor>> orig(H);
    for (int h = 0; h < H; h++) {
        for (const torch::Tensor& p : level_params(tree, h)) {
            orig[h].push_back(p.defined() ? p.detach().clone() : p);
        }
    }
    const double lo0 = std::log(1e-2), hi0 = std::log(1e3);
    const double gr = (std::sqrt(5.0) - 1) / 2;
    int rounds = H == 1 ? 1 : 3;
    for (int round = 0; round < rounds; round++) {
        for (int h = 0; h < H; h++) {
            auto f = [&](double logt) {
                set_level_scale(tree, h, orig[h], std::exp(logt));
                return mean_ce(tree, es, factorised);
            };
            double a = lo0, b = hi0;
            double c = b - gr * (b - a), d = a + gr * (b - a);
            double fc = f(c), fd = f(d);
            for (int it = 0; it < 40 && b - a > 1e-2; it++) {
                if (fc < fd) {
                    b = d;
                    d = c;
                    fd = fc;
                    c = b - gr * (b - a);
                    fc = f(c);
                } else {
                    a = c;
                    c = d;
                    fc = fd;
                    d = a + gr * (b - a);
                    fd = f(d);
                }
            }
            double best_logt = fc < fd ? c : d;
            double best = std::min(fc, fd);
            if (std::isfinite(best) && best < ce) {
                ce = best;
                temp[h] = std::exp(best_logt);
            }
            set_level_scale(tree, h, orig[h], temp[h]);
        }
    }
    if (verbose) {
        std::cout << "RoutingTrainer: temperature factors";
        for (double v : temp) {
            std::cout << " " << v;
        }
        std::cout << ", training CE " << ce << std::endl;
    }
    return temp;
}

bool use_factorised(const RoutingTrainer& rt, idx_t L) {
    switch (rt.loss) {
        case RoutingLoss::FULL_LEAF:
            return false;
        case RoutingLoss::FACTORISED:
            return true;
        default:
            return L > rt.max_full_leaves;
    }
}

void check_inputs(const EHITree& tree, idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_MSG(tree.is_trained,
                           "RoutingTrainer: the tree must be trained (e.g. by "
                           "EHITreeKMeansInit) before routing is learned");
    FAISS_THROW_IF_NOT_FMT(n > 0 && x,
                           "RoutingTrainer: no training queries (n = %lld)",
                           (long long)n);
    for (size_t i = 0; i < size_t(n) * tree.m; i++) {
        FAISS_THROW_IF_NOT_FMT(std::isfinite(x[i]),
                               "RoutingTrainer: non-finite value in training "
                               "query %zd",
                               i / size_t(tree.m));
    }
}

} // namespace

double RoutingTrainer::cross_entropy(const EHITree& tree, idx_t n,
                                     const float* x,
                                     const RoutingTargets& targets) const {
    check_inputs(tree, n, x);
    TorchThreadScope ts(threads);
    Targets t = check_targets(targets, n, tree.nleaves());
    TorchTree tt = TorchTree::from_ehi(tree);
    std::vector<idx_t> ids(n);
    std::iota(ids.begin(), ids.end(), idx_t(0));
    bool factorised = use_factorised(*this, tree.nleaves());
    return mean_ce(tt, make_eval_set(tt, x, t, ids, factorised), factorised);
}

RoutingTrainerStats RoutingTrainer::train(EHITree& tree, idx_t n,
                                          const float* x,
                                          const RoutingTargets& targets) const {
    check_inputs(tree, n, x);
    if (epochs < 0 || batch_size <= 0 || !(learning_rate >= 0) ||
        !(holdout >= 0 && holdout < 1) || !(balance >= 0)) {
        FAISS_THROW_FMT("RoutingTrainer: bad parameters (epochs %d, "
                        "batch_size %d, learning_rate %g, holdout %g, "
                        "balance %g)",
                        epochs, batch_size, double(learning_rate),
                        double(holdout), double(balance));
    }
    TorchThreadScope ts(threads);
    const idx_t L = tree.nleaves();
    Targets t = check_targets(targets, n, L);
    const bool factorised = use_factorised(*this, L);
    FAISS_THROW_IF_NOT_FMT(!(balance > 0 && L > max_full_leaves),
                           "RoutingTrainer: the balance term needs the full "
                           "leaf distribution; B^H = %lld exceeds "
                           "max_full_leaves = %lld",
                           (long long)L, (long long)max_full_leaves);

    RoutingTrainerStats st;
    st.factorised = factorised;

    // split
    std::mt19937_64 rng(seed);
    std::vector<idx_t> perm(n);
    std::iota(perm.begin(), perm.end(), idx_t(0));
    std::shuffle(perm.begin(), perm.end(), rng);
    idx_t n_held = idx_t(std::floor(holdout * double(n)));
    if (n - n_held < 1) {
        n_held = n - 1;
    }
    std::vector<idx_t> held(perm.begin(), perm.begin() + n_held);
    std::vector<idx_t> train_ids(perm.begin() + n_held, perm.end());
    std::sort(held.begin(), held.end());
    std::sort(train_ids.begin(), train_ids.end());
    st.n_train = idx_t(train_ids.size());
    st.n_heldout = n_held;

    TorchTree tt = TorchTree::from_ehi(tree);

    const EvalSet train_set = make_eval_set(tt, x, t, train_ids, factorised);
    const EvalSet held_set = make_eval_set(tt, x, t, held, factorised);
    st.train_ce_initial = mean_ce(tt, train_set, factorised);
    st.heldout_ce_initial = mean_ce(tt, held_set, factorised);
    double ce = st.train_ce_initial;
    if (fit_temperature) {
        st.temperature =
                fit_temperatures(tt, train_set, factorised, ce, verbose);
    } else {
        st.temperature.assign(tree.H, 1.0);
    }
    st.train_ce_after_temp = ce;
    if (n_held > 0) {
        st.heldout_ce.push_back(mean_ce(tt, held_set, factorised));
    }
    if (verbose) {
        std::cout << "RoutingTrainer: " << st.n_train << " training / "
                  << n_held << " held-out queries, " << L << " leaves, "
                  << (factorised ? "factorised" : "full-leaf")
                  << " CE; training CE " << st.train_ce_initial << " -> "
                  << st.train_ce_after_temp << " (temperature)";
        if (n_held > 0) {
            std::cout << ", held-out CE " << st.heldout_ce_initial << " -> "
                      << st.heldout_ce[0];
        }
        std::cout << std::endl;
    }

    // Early stopping on the held-out split: the best weights so far.
    const bool track_best = keep_best && n_held > 0;
    EHITree best = tree;
    double best_ce = n_held > 0 ? st.heldout_ce[0] : 0;
    if (track_best) {
        tt->to_ehi(best);
    }
    st.best_epoch = 0;
    if (epochs > 0 && learning_rate > 0) {
        tt->train();
        torch::optim::Adam opt(tt->parameters(),
                               torch::optim::AdamOptions(learning_rate));
        std::vector<idx_t> order = train_ids;
        for (int ep = 0; ep < epochs; ep++) {
            std::mt19937_64 erng(seed * 1000003ULL + uint64_t(ep) + 1);
            std::shuffle(order.begin(), order.end(), erng);
            double loss_sum = 0;
            idx_t nbatches = 0;
            for (idx_t b = 0; b < idx_t(order.size()); b += batch_size) {
                idx_t nb = std::min(idx_t(batch_size), idx_t(order.size()) - b);
                BatchTargets bt = make_batch(t, order.data() + b, nb, tree.B,
                                             tree.H, L, factorised);
                torch::Tensor u = rows_of(x, order.data() + b, nb, tree.m);
                torch::Tensor lp;
                torch::Tensor loss = batch_ce_sum(tt, u, bt, factorised,
                                                  balance > 0 ? &lp : nullptr) /
                        double(nb);
                if (balance > 0) {
                    loss = loss + balance * balance_kl(lp);
                }
                opt.zero_grad();
                loss.backward();
                opt.step();
                loss_sum += loss.item<double>();
                nbatches++;
            }
            st.train_loss.push_back(nbatches ? loss_sum / nbatches : 0);
            if (n_held > 0) {
                st.heldout_ce.push_back(mean_ce(tt, held_set, factorised));
                if (track_best && st.heldout_ce.back() < best_ce) {
                    best_ce = st.heldout_ce.back();
                    st.best_epoch = ep + 1;
                    tt->to_ehi(best);
                }
            }
            if (!track_best) {
                st.best_epoch = ep + 1;
            }
            if (verbose) {
                char line[200];
                std::snprintf(line, sizeof(line),
                              "RoutingTrainer: epoch %d/%d train loss %.5f",
                              ep + 1, epochs, st.train_loss.back());
                std::cout << line;
                if (n_held > 0) {
                    std::snprintf(line, sizeof(line), " held-out CE %.5f",
                                  st.heldout_ce.back());
                    std::cout << line;
                }
                std::cout << std::endl;
            }
        }
        tt->eval();
    }
    if (track_best) {
        tree = best;
        if (verbose) {
            std::cout << "RoutingTrainer: keeping epoch " << st.best_epoch
                      << " (lowest held-out CE " << best_ce << ")" << std::endl;
        }
    } else {
        tt->to_ehi(tree);
    }
    return st;
}

} // namespace trainer
} // namespace faiss_ehi
