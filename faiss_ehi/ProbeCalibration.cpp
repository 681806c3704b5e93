/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/ProbeCalibration.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <numeric>
#include <random>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/blas.h>

namespace faiss_ehi {

KnnSample KnnSample::draw(idx_t n, int d, const float* x,
                          faiss::MetricType metric, idx_t nq, int k,
                          uint64_t seed) {
    FAISS_THROW_IF_NOT_MSG(n >= 2 && d >= 1 && k >= 1 && nq >= 1,
                           "KnnSample: needs n >= 2, d, k and nq >= 1");
    KnnSample s;
    s.d = d;
    s.k = int(std::min<idx_t>(k, n - 1));
    s.nq = std::min(nq, n);
    std::vector<idx_t> perm(n);
    std::iota(perm.begin(), perm.end(), idx_t(0));
    std::mt19937_64 rng(seed);
    for (idx_t i = 0; i < s.nq; i++) {
        std::uniform_int_distribution<idx_t> pick(i, n - 1);
        std::swap(perm[i], perm[pick(rng)]);
    }
    s.rows.assign(perm.begin(), perm.begin() + s.nq);
    std::sort(s.rows.begin(), s.rows.end());
    s.queries.resize(size_t(s.nq) * d);
    for (idx_t i = 0; i < s.nq; i++) {
        std::copy_n(x + size_t(s.rows[i]) * d, d,
                    s.queries.data() + size_t(i) * d);
    }
    int ks = s.k + 1;
    faiss::IndexFlat flat(d, metric);
    flat.add(n, x);
    std::vector<float> dis(size_t(s.nq) * ks);
    std::vector<idx_t> lab(size_t(s.nq) * ks);
    flat.search(s.nq, s.queries.data(), ks, dis.data(), lab.data());
    s.neighbors.assign(size_t(s.nq) * s.k, -1);
    for (idx_t i = 0; i < s.nq; i++) {
        int o = 0;
        for (int j = 0; j < ks && o < s.k; j++) {
            idx_t l = lab[size_t(i) * ks + j];
            if (l != s.rows[i]) {
                s.neighbors[size_t(i) * s.k + o++] = l;
            }
        }
    }
    return s;
}

void KnnSample::check(int dim, idx_t ndocs, const char* who) const {
    FAISS_THROW_IF_NOT_FMT(
            nq >= 1 && k >= 1 && d == dim && rows.size() == size_t(nq) &&
                    queries.size() == size_t(nq) * d &&
                    neighbors.size() == size_t(nq) * k,
            "%s: malformed KnnSample (nq, k, d or array sizes; d must be "
            "%d)",
            who, dim);
    for (idx_t nb : neighbors) {
        FAISS_THROW_IF_NOT_FMT(nb >= -1 && nb < ndocs,
                               "%s: KnnSample neighbour id %" PRId64
                               " outside [0, %" PRId64 ")",
                               who, nb, ndocs);
    }
}

void check_doc_leaves(const idx_t* doc_leaf, idx_t ndocs, idx_t nleaves,
                      const char* who) {
    FAISS_THROW_IF_NOT_FMT(doc_leaf && ndocs > 0, "%s: no documents' leaves",
                           who);
    for (idx_t i = 0; i < ndocs; i++) {
        FAISS_THROW_IF_NOT_FMT(doc_leaf[i] >= 0 && doc_leaf[i] < nleaves,
                               "%s: document %" PRId64 " in leaf %" PRId64
                               ", outside [0, %" PRId64 ")",
                               who, i, doc_leaf[i], nleaves);
    }
}

namespace {

constexpr idx_t kBlock = 512; ///< queries per block of leaf logits

/// Per query: its neighbours' leaves (-1 skipped).
std::vector<idx_t> neighbor_leaves(const KnnSample& s, const idx_t* doc_leaf,
                                   idx_t q) {
    std::vector<idx_t> out;
    for (int j = 0; j < s.k; j++) {
        idx_t nb = s.neighbors[size_t(q) * s.k + j];
        if (nb >= 0) {
            out.push_back(doc_leaf[nb]);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

std::vector<double> budget_recall(const EHITree& tree, const KnnSample& s,
                                  const idx_t* doc_leaf, idx_t ndocs,
                                  const std::vector<double>& budgets,
                                  const float* bias) {
    const idx_t L = tree.nleaves();
    s.check(tree.m, ndocs, "budget_recall");
    check_doc_leaves(doc_leaf, ndocs, L, "budget_recall");
    std::vector<idx_t> size(L, 0);
    for (idx_t i = 0; i < ndocs; i++) {
        size[doc_leaf[i]]++;
    }
    std::vector<double> total(budgets.size(), 0.0);
    double found_max = 0;
    std::vector<float> logits(size_t(kBlock) * L);
    for (idx_t q0 = 0; q0 < s.nq; q0 += kBlock) {
        idx_t nb = std::min(kBlock, s.nq - q0);
        tree.all_leaf_logits(nb, s.queries.data() + size_t(q0) * s.d,
                             logits.data());
        std::vector<std::vector<double>> part(nb);
#pragma omp parallel for
        for (idx_t r = 0; r < nb; r++) {
            const float* z = logits.data() + size_t(r) * L;
            std::vector<idx_t> nl = neighbor_leaves(s, doc_leaf, q0 + r);
            part[r].assign(budgets.size(), 0.0);
            if (nl.empty()) {
                continue;
            }
            std::vector<idx_t> ord(L);
            std::iota(ord.begin(), ord.end(), idx_t(0));
            auto score = [&](idx_t l) { return z[l] + (bias ? bias[l] : 0); };
            std::sort(ord.begin(), ord.end(), [&](idx_t a, idx_t b) {
                float sa = score(a), sb = score(b);
                return sa != sb ? sa > sb : a < b;
            });
            double taken = 0;
            size_t bi = 0;
            std::vector<double> got(budgets.size(), 0.0);
            double hits_so_far = 0;
            for (idx_t l : ord) {
                if (bi == budgets.size()) {
                    break;
                }
                auto range = std::equal_range(nl.begin(), nl.end(), l);
                double hits = double(range.second - range.first);
                double sz = double(size[l]);
                // budgets this leaf crosses get a pro-rata share of it
                while (bi < budgets.size() &&
                       taken + sz >= budgets[bi] * double(ndocs)) {
                    double room = budgets[bi] * double(ndocs) - taken;
                    got[bi] = hits_so_far + (sz > 0 ? hits * room / sz : 0);
                    bi++;
                }
                hits_so_far += hits;
                taken += sz;
            }
            for (; bi < budgets.size(); bi++) {
                got[bi] = hits_so_far;
            }
            for (size_t b = 0; b < budgets.size(); b++) {
                part[r][b] = got[b] / double(nl.size());
            }
        }
        for (idx_t r = 0; r < nb; r++) {
            for (size_t b = 0; b < budgets.size(); b++) {
                total[b] += part[r][b];
            }
        }
        found_max += double(nb);
    }
    for (double& t : total) {
        t = found_max > 0 ? t / found_max : 0;
    }
    return total;
}

void ProbeCalibration::calibrate(EHITreeQuantizer& q, const KnnSample& s,
                                 const idx_t* doc_leaf, idx_t ndocs) {
    EHITree& tree = q.tree;
    FAISS_THROW_IF_NOT_MSG(tree.form == NodeForm::PER_NODE && tree.is_trained,
                           "ProbeCalibration: needs a trained per-node tree");
    s.check(tree.m, ndocs, "ProbeCalibration");
    check_doc_leaves(doc_leaf, ndocs, tree.nleaves(), "ProbeCalibration");
    const idx_t L = tree.nleaves();
    const int hl = tree.H - 1;
    std::vector<float> logsize(L, 0.0f);
    {
        std::vector<idx_t> size(L, 0);
        for (idx_t i = 0; i < ndocs; i++) {
            size[doc_leaf[i]]++;
        }
        for (idx_t l = 0; l < L; l++) {
            logsize[l] = std::log1p(float(size[l]));
        }
    }
    auto mean = [](const std::vector<double>& v) {
        return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
    };
    // 1. size penalty
    recall_before = budget_recall(tree, s, doc_leaf, ndocs, budgets);
    alpha = 0;
    recall_after = recall_before;
    std::vector<float> bias(L);
    for (float a : size_penalties) {
        if (a == 0) {
            continue;
        }
        for (idx_t l = 0; l < L; l++) {
            bias[l] = -a * logsize[l];
        }
        std::vector<double> r =
                budget_recall(tree, s, doc_leaf, ndocs, budgets, bias.data());
        if (mean(r) > mean(recall_after) &&
            mean(r) > mean(recall_before) + min_gain) {
            recall_after = r;
            alpha = a;
        }
    }
    for (idx_t l = 0; l < L; l++) {
        tree.node_b[hl][l] -= alpha * logsize[l];
    }
    // 2. group expansion (height 2: groups are the root's children)
    tree.group_expansion.clear();
    if (tree.H != 2) {
        return;
    }
    const int B = tree.B;
    std::vector<int> beams;
    for (idx_t b = 1; b <= L / 2; b *= 2) {
        beams.push_back(int(b));
    }
    // Per query: root logits and the exact top leaves of the flat ranking.
    const idx_t top = beams.back();
    std::vector<float> root(size_t(s.nq) * B);
    std::vector<idx_t> best(size_t(s.nq) * top);
    std::vector<float> logits(size_t(kBlock) * L);
    for (idx_t q0 = 0; q0 < s.nq; q0 += kBlock) {
        idx_t nb = std::min(kBlock, s.nq - q0);
        const float* xq = s.queries.data() + size_t(q0) * s.d;
        tree.all_leaf_logits(nb, xq, logits.data());
        gemm_rowmajor_bt(nb, B, tree.m, xq, tree.node_W[0].data(),
                         root.data() + size_t(q0) * B);
#pragma omp parallel for
        for (idx_t r = 0; r < nb; r++) {
            const float* z = logits.data() + size_t(r) * L;
            std::vector<idx_t> ord(L);
            std::iota(ord.begin(), ord.end(), idx_t(0));
            std::partial_sort(ord.begin(), ord.begin() + top, ord.end(),
                              [&](idx_t a, idx_t b) {
                                  return z[a] != z[b] ? z[a] > z[b] : a < b;
                              });
            std::copy_n(ord.begin(), top, best.begin() + (q0 + r) * top);
            float* zr = root.data() + size_t(q0 + r) * B;
            for (int g = 0; g < B; g++) {
                zr[g] += tree.node_b[0][g];
            }
        }
    }
    // A group's reach: the largest distance from its centre to one of its
    // leaves' representatives. A wide group may hold a query's best leaf
    // though its centre ranks low, so its root score gets a bonus
    // alpha * S * reach / mean reach (S: the root logits' typical spread),
    // alpha picked by the smallest expansion table.
    std::vector<float> reach(B, 0.0f);
    double mean_reach = 0;
    if (q.leaf_representatives.size() == size_t(L) * q.d) {
        for (int g = 0; g < B; g++) {
            std::vector<double> c(q.d, 0.0);
            for (int j = 0; j < B; j++) {
                const float* r =
                        q.leaf_representatives.data() + size_t(g * B + j) * q.d;
                for (int t = 0; t < q.d; t++) {
                    c[t] += r[t] / double(B);
                }
            }
            for (int j = 0; j < B; j++) {
                const float* r =
                        q.leaf_representatives.data() + size_t(g * B + j) * q.d;
                double d2 = 0;
                for (int t = 0; t < q.d; t++) {
                    d2 += (r[t] - c[t]) * (r[t] - c[t]);
                }
                reach[g] = std::max(reach[g], float(std::sqrt(d2)));
            }
            mean_reach += reach[g] / double(B);
        }
    }
    double spread = 0;
    for (idx_t i = 0; i < s.nq; i++) {
        const float* zr = root.data() + size_t(i) * B;
        double mu = std::accumulate(zr, zr + B, 0.0) / B, var = 0;
        for (int g = 0; g < B; g++) {
            var += (zr[g] - mu) * (zr[g] - mu) / B;
        }
        spread += std::sqrt(var) / double(s.nq);
    }
    auto table_for = [&](const std::vector<float>& bonus) {
        // cover[j][g]: summed share of the exact top-beams[j] leaves held
        // by the first g + 1 groups in the root's order
        std::vector<std::vector<double>> cover(beams.size(),
                                               std::vector<double>(B, 0.0));
        std::vector<std::vector<std::vector<double>>> part(s.nq);
#pragma omp parallel for
        for (idx_t i = 0; i < s.nq; i++) {
            const float* zr = root.data() + size_t(i) * B;
            std::vector<idx_t> gord(B), rank(B);
            std::iota(gord.begin(), gord.end(), idx_t(0));
            std::sort(gord.begin(), gord.end(), [&](idx_t a, idx_t b) {
                float sa = zr[a] + bonus[a], sb = zr[b] + bonus[b];
                return sa != sb ? sa > sb : a < b;
            });
            for (int g = 0; g < B; g++) {
                rank[gord[g]] = g;
            }
            const idx_t* ord = best.data() + size_t(i) * top;
            part[i].assign(beams.size(), std::vector<double>(B, 0.0));
            for (size_t j = 0; j < beams.size(); j++) {
                int b = beams[j];
                std::vector<double>& cnt = part[i][j];
                for (int t = 0; t < b; t++) {
                    cnt[rank[ord[t] / B]] += 1.0 / b;
                }
                for (int g = 1; g < B; g++) {
                    cnt[g] += cnt[g - 1];
                }
            }
        }
        for (idx_t i = 0; i < s.nq; i++) {
            for (size_t j = 0; j < beams.size(); j++) {
                for (int g = 0; g < B; g++) {
                    cover[j][g] += part[i][j][g];
                }
            }
        }
        std::vector<int32_t> table;
        int prev = 1;
        for (size_t j = 0; j < beams.size(); j++) {
            int need = B;
            for (int g = 0; g < B; g++) {
                if (cover[j][g] / double(s.nq) >= coverage) {
                    need = g + 1;
                    break;
                }
            }
            prev = std::max(prev, need);
            table.push_back(prev);
        }
        return table;
    };
    std::vector<float> bonus(B, 0.0f), best_bonus = bonus;
    std::vector<int32_t> best_table = table_for(bonus);
    reach_bonus = 0;
    for (float a : reach_bonuses) {
        if (a == 0 || mean_reach <= 0) {
            continue;
        }
        for (int g = 0; g < B; g++) {
            bonus[g] = float(a * spread * reach[g] / mean_reach);
        }
        std::vector<int32_t> t = table_for(bonus);
        if (std::accumulate(t.begin(), t.end(), 0) <
            std::accumulate(best_table.begin(), best_table.end(), 0)) {
            best_table = t;
            best_bonus = bonus;
            reach_bonus = a;
        }
    }
    for (int g = 0; g < B; g++) {
        tree.node_b[0][g] += best_bonus[g];
    }
    tree.group_expansion = best_table;
}

} // namespace faiss_ehi
