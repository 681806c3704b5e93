/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/EHITreeKMeansInit.h>

#include <algorithm>
#include <cmath>
#include <cinttypes>
#include <cstdio>
#include <limits>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/distances.h>

#include <faiss_ehi/balanced_groups.h>

namespace faiss_ehi {

namespace {

/** B centroids of np points. With fewer points than B, the points
 * themselves and then copies of `fallback` nudged apart (so that an
 * under-populated node still has B distinct children). */
void cluster_points(int m, int B, idx_t np, const float* pts,
                    const float* fallback, bool spherical, int niter, int seed,
                    int max_points_per_centroid, bool verbose,
                    float* centroids) {
    if (np >= B) {
        faiss::ClusteringParameters cp;
        cp.niter = niter;
        cp.seed = seed;
        cp.spherical = spherical;
        cp.verbose = verbose;
        cp.min_points_per_centroid = 1; // small nodes are expected deep down
        cp.max_points_per_centroid = max_points_per_centroid;
        faiss::Clustering clus(m, B, cp);
        faiss::IndexFlat assigner(
                m, spherical ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
        clus.train(np, pts, assigner);
        std::copy(clus.centroids.begin(), clus.centroids.end(), centroids);
        return;
    }
    std::copy(pts, pts + size_t(np) * m, centroids);
    for (int c = int(np); c < B; c++) {
        float* cc = centroids + size_t(c) * m;
        for (int i = 0; i < m; i++) {
            // deterministic, tiny, distinct per child and component
            cc[i] = fallback[i] +
                    1e-4f * float(((c + 1) * 7919 + i * 104729) % 2001 - 1000) /
                            1000.0f;
        }
    }
}

/// Index of the best of B centroids for x (nearest in L2, or largest IP).
int best_centroid(int m, int B, const float* x, const float* centroids,
                  bool inner_product, float* best_score) {
    int best = 0;
    float bs = inner_product ? -std::numeric_limits<float>::infinity()
                             : std::numeric_limits<float>::infinity();
    for (int c = 0; c < B; c++) {
        const float* cc = centroids + size_t(c) * m;
        float s = inner_product ? faiss::fvec_inner_product(x, cc, m)
                                : faiss::fvec_L2sqr(x, cc, m);
        if (inner_product ? s > bs : s < bs) {
            bs = s;
            best = c;
        }
    }
    *best_score = bs;
    return best;
}

float auto_temperature(double mean_sq, double scale) {
    return mean_sq > 1e-20 ? float(scale / mean_sq) : 1.0f;
}

} // namespace

void EHITreeKMeansInit::set_node_classifiers(
        EHITree& tree, int h, const std::vector<float>& child_centroids,
        float T, bool ip) const {
    const int B = tree.B, m = tree.m;
    idx_t nn = tree.nodes_at_depth(h);
    std::vector<float> Wl(size_t(nn) * B * m), bl(size_t(nn) * B);
    for (size_t r = 0; r < size_t(nn) * B; r++) {
        const float* c = child_centroids.data() + r * m;
        float* w = Wl.data() + r * m;
        for (int j = 0; j < m; j++) {
            w[j] = (ip ? 1.0f : 2.0f) * T * c[j];
        }
        bl[r] = ip ? 0.0f : -T * faiss::fvec_norm_L2sqr(c, m);
    }
    tree.set_node_level(h, Wl.data(), bl.data());
}

void EHITreeKMeansInit::init_flat_grouped(
        EHITree& tree, idx_t n, const float* x, bool ip,
        const std::vector<float>& mean,
        std::vector<float>* leaf_centroids) const {
    const int B = tree.B, H = tree.H, m = tree.m;
    const idx_t L = tree.nleaves();
    // (with fewer vectors than leaves, cluster_points pads the leaves with
    // distinct copies near the mean: they stay empty but routable)
    // depth_centroids[h]: the B^h node centroids at depth h
    std::vector<std::vector<float>> depth_centroids(H + 1);
    depth_centroids[H].resize(size_t(L) * m);
    cluster_points(m, int(L), n, x, mean.data(), ip, niter, seed,
                   max_points_per_centroid, verbose, depth_centroids[H].data());
    // Bottom-up: group the nodes of depth h into balanced parents; a
    // parent's move takes its whole subtree along.
    for (int h = H; h >= 1; h--) {
        idx_t nn = tree.nodes_at_depth(h);
        std::vector<idx_t> order;
        balanced_groups(nn, m, depth_centroids[h].data(), B, niter, seed + h,
                        order, depth_centroids[h - 1]);
        for (int hh = h; hh <= H; hh++) {
            size_t block = size_t(tree.nodes_at_depth(hh - h)) * m;
            const std::vector<float>& src = depth_centroids[hh];
            std::vector<float> dst(src.size());
            for (idx_t i = 0; i < nn; i++) {
                std::copy_n(src.data() + size_t(order[i]) * block, block,
                            dst.data() + size_t(i) * block);
            }
            depth_centroids[hh].swap(dst);
        }
    }
    // One temperature per level from a sample's distance to the nearest
    // centroid of that level (the leaf level must share one scale: its
    // logits are compared across groups).
    idx_t ns = std::min<idx_t>(n, 20000);
    for (int h = 0; h < H; h++) {
        float T = temperature;
        if (T <= 0) {
            idx_t nc = tree.nodes_at_depth(h + 1);
            faiss::IndexFlat flat(
                    m, ip ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
            flat.add(nc, depth_centroids[h + 1].data());
            std::vector<float> dis(ns);
            std::vector<idx_t> lab(ns);
            flat.search(ns, x, 1, dis.data(), lab.data());
            double sum_sq = 0;
            for (idx_t i = 0; i < ns; i++) {
                sum_sq += ip ? faiss::fvec_norm_L2sqr(x + size_t(i) * m, m)
                             : dis[i];
            }
            T = auto_temperature(sum_sq / double(ns), ip ? 30.0 : 10.0);
        }
        set_node_classifiers(tree, h, depth_centroids[h + 1], T, ip);
    }
    tree.strategy = BeamStrategy::GROUPED;
    tree.group_expansion.clear();
    if (leaf_centroids) {
        *leaf_centroids = depth_centroids[H];
    }
}

void EHITreeKMeansInit::refine_leaves(
        const EHITree& tree, idx_t n, const float* x, bool ip,
        std::vector<std::vector<float>>& depth_centroids) const {
    const int B = tree.B, H = tree.H, m = tree.m;
    const idx_t L = tree.nleaves();
    std::vector<idx_t> leaf(n);
    std::vector<float> dis(n);
    for (int it = 0; it < leaf_refine_iters; it++) {
        // Lloyd step over all leaves: documents at their nearest leaf.
        faiss::IndexFlat flat(
                m, ip ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
        flat.add(L, depth_centroids[H].data());
        flat.search(n, x, 1, dis.data(), leaf.data());
        // New centroid of every node at every depth: the mean of the
        // vectors whose leaf lies under it (empty nodes keep theirs).
        for (int h = 1; h <= H; h++) {
            idx_t nn = tree.nodes_at_depth(h);
            idx_t div = tree.nodes_at_depth(H - h);
            std::vector<double> sum(size_t(nn) * m, 0.0);
            std::vector<idx_t> count(nn, 0);
            for (idx_t i = 0; i < n; i++) {
                idx_t v = leaf[i] / div;
                count[v]++;
                const float* xi = x + size_t(i) * m;
                double* sv = sum.data() + size_t(v) * m;
                for (int j = 0; j < m; j++) {
                    sv[j] += xi[j];
                }
            }
            for (idx_t v = 0; v < nn; v++) {
                if (count[v] == 0) {
                    continue;
                }
                float* c = depth_centroids[h].data() + size_t(v) * m;
                for (int j = 0; j < m; j++) {
                    c[j] = float(sum[size_t(v) * m + j] / double(count[v]));
                }
                if (ip) {
                    float norm = std::sqrt(faiss::fvec_norm_L2sqr(c, m));
                    for (int j = 0; j < m && norm > 0; j++) {
                        c[j] /= norm;
                    }
                }
            }
        }
    }
    (void)B;
}

void EHITreeKMeansInit::init(EHITree& tree, idx_t n, const float* x,
                             faiss::MetricType metric,
                             std::vector<float>* leaf_centroids) const {
    const int B = tree.B, H = tree.H, m = tree.m;
    FAISS_THROW_IF_NOT_FMT(n >= B,
                           "k-means initialisation of a tree with B = %d "
                           "needs at least %d training vectors, got %" PRId64,
                           B, B, n);
    FAISS_THROW_IF_NOT_MSG(metric == faiss::METRIC_L2 ||
                                   metric == faiss::METRIC_INNER_PRODUCT,
                           "EHI supports METRIC_L2 and METRIC_INNER_PRODUCT");
    check_finite(n, m, x, "training vectors");
    const bool ip = metric == faiss::METRIC_INNER_PRODUCT;
    std::vector<float> mean(m, 0.0f);
    for (idx_t i = 0; i < n; i++) {
        for (int j = 0; j < m; j++) {
            mean[j] += x[size_t(i) * m + j] / float(n);
        }
    }

    if (tree.form == NodeForm::PER_NODE && flat_leaves) {
        init_flat_grouped(tree, n, x, ip, mean, leaf_centroids);
        return;
    }
    if (tree.form == NodeForm::PER_NODE) {
        // Hierarchical k-means, node by node. depth_centroids[h] holds the
        // centroids of the B^h nodes at depth h.
        std::vector<std::vector<float>> depth_centroids(H + 1);
        std::vector<float> temps(H);
        depth_centroids[0] = mean;
        std::vector<idx_t> node_of(n, 0);
        for (int h = 0; h < H; h++) {
            idx_t nn = tree.nodes_at_depth(h);
            std::vector<std::vector<idx_t>> members(nn);
            for (idx_t i = 0; i < n; i++) {
                members[node_of[i]].push_back(i);
            }
            std::vector<float>& child_centroids = depth_centroids[h + 1];
            child_centroids.assign(size_t(nn) * B * m, 0.0f);
            std::vector<float> pts;
            double sum_sq = 0;
            for (idx_t v = 0; v < nn; v++) {
                const auto& mem = members[v];
                pts.resize(mem.size() * m);
                for (size_t k = 0; k < mem.size(); k++) {
                    std::copy(x + size_t(mem[k]) * m,
                              x + size_t(mem[k] + 1) * m, pts.data() + k * m);
                }
                float* cv = child_centroids.data() + size_t(v) * B * m;
                cluster_points(m, B, idx_t(mem.size()), pts.data(),
                               depth_centroids[h].data() + size_t(v) * m, ip,
                               niter, seed + int(v), max_points_per_centroid,
                               verbose, cv);
                for (size_t k = 0; k < mem.size(); k++) {
                    float score;
                    int c = best_centroid(m, B, pts.data() + k * m, cv, ip,
                                          &score);
                    node_of[mem[k]] = v * B + c;
                    sum_sq += ip ? faiss::fvec_norm_L2sqr(pts.data() + k * m, m)
                                 : score;
                }
            }
            temps[h] = temperature > 0
                    ? temperature
                    : auto_temperature(sum_sq / double(n), ip ? 30.0 : 10.0);
        }
        if (leaf_refine_iters > 0) {
            refine_leaves(tree, n, x, ip, depth_centroids);
        }
        for (int h = 0; h < H; h++) {
            set_node_classifiers(tree, h, depth_centroids[h + 1], temps[h], ip);
        }
        if (leaf_centroids) {
            *leaf_centroids = depth_centroids[H];
        }
        return;
    }

    // Paper form: residual k-means per level, U_h = 0.
    std::vector<float> residual(x, x + size_t(n) * m);
    std::vector<std::vector<float>> R(H); // B x m per level
    std::vector<std::vector<int>> digit(H, std::vector<int>(n));
    for (int h = 0; h < H; h++) {
        R[h].resize(size_t(B) * m);
        cluster_points(m, B, n, residual.data(), mean.data(), false, niter,
                       seed + h, max_points_per_centroid, verbose, R[h].data());
        double sum_sq = 0;
        for (idx_t i = 0; i < n; i++) {
            float* r = residual.data() + size_t(i) * m;
            float score;
            int c = best_centroid(m, B, r, R[h].data(), false, &score);
            digit[h][i] = c;
            sum_sq += score;
            for (int j = 0; j < m; j++) {
                r[j] -= R[h][size_t(c) * m + j];
            }
        }
        float T = temperature > 0 ? temperature
                                  : auto_temperature(sum_sq / double(n), 10.0);
        int nh = tree.n_input(h);
        std::vector<float> Ul(size_t(nh) * nh, 0.0f), Wl(size_t(nh) * B, 0.0f),
                bl(B, 0.0f);
        for (int c = 0; c < B; c++) {
            const float* rc = R[h].data() + size_t(c) * m;
            for (int i = 0; i < m; i++) {
                Wl[size_t(B * h + i) * B + c] = 2 * T * rc[i];
            }
            // block j holds the one-hot of the choice made at level h-1-j
            for (int j = 0; j < h; j++) {
                const auto& Rl = R[h - 1 - j];
                for (int i = 0; i < B; i++) {
                    Wl[size_t(j * B + i) * B + c] = -2 * T *
                            faiss::fvec_inner_product(
                                    rc, Rl.data() + size_t(i) * m, m);
                }
            }
            float b = -T * faiss::fvec_norm_L2sqr(rc, m);
            if (tree.use_bias) {
                bl[c] = b;
            } else if (h > 0) {
                // exactly one row of block 0 is active: fold the bias there
                for (int i = 0; i < B; i++) {
                    Wl[size_t(i) * B + c] += b;
                }
            }
        }
        tree.set_paper_level(h, Ul.data(), Wl.data(), bl.data());
    }
    if (leaf_centroids) {
        idx_t L = tree.nleaves();
        leaf_centroids->assign(size_t(L) * m, 0.0f);
        for (idx_t leaf = 0; leaf < L; leaf++) {
            idx_t rest = leaf;
            float* lc = leaf_centroids->data() + size_t(leaf) * m;
            for (int h = H - 1; h >= 0; h--) {
                int c = int(rest % B);
                rest /= B;
                for (int j = 0; j < m; j++) {
                    lc[j] += R[h][size_t(c) * m + j];
                }
            }
        }
    }
}

} // namespace faiss_ehi
