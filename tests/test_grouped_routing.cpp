/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * GROUPED routing over flat k-means leaves (EHITreeKMeansInit::flat_leaves,
 * balanced_groups), the adaptive beam of EHITreeQuantizer, budget_recall
 * and the format-3 routing record of faiss_ehi's IO.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/io.h>
#include <faiss/utils/distances.h>

#include <faiss_ehi/ProbeCalibration.h>
#include <faiss_ehi/balanced_groups.h>
#include <faiss_ehi/io_primitives.h>

#include "test_helpers.h"

using namespace faiss_ehi;
using namespace ehi_test;

namespace {

/// A per-node tree started by EHITreeKMeansInit with flat leaves.
struct FlatTree {
    EHITree tree;
    std::vector<float> centroids; ///< L x d leaf centroids
};

FlatTree flat_tree(int d, int B, int H, faiss::MetricType metric,
                   const std::vector<float>& x) {
    FlatTree f;
    f.tree = EHITree(B, H, d, NodeForm::PER_NODE);
    EHITreeKMeansInit init;
    init.flat_leaves = true;
    init.init(f.tree, idx_t(x.size() / d), x.data(), metric, &f.centroids);
    return f;
}

/** True unless two of the `depth` + 1 best exact (double) scores of query
 * xq against the L rows of c are so close that float rounding could swap
 * them ("ties aside"). */
bool clear_ranking(const float* xq, const std::vector<float>& c, int d, bool ip,
                   idx_t depth) {
    idx_t L = idx_t(c.size() / d);
    std::vector<double> s(L);
    double scale = 0;
    for (idx_t l = 0; l < L; l++) {
        double acc = 0, nc = 0;
        for (int j = 0; j < d; j++) {
            double cj = c[l * d + j], qj = xq[j];
            acc += ip ? -qj * cj : (qj - cj) * (qj - cj);
            nc += cj * cj;
        }
        s[l] = acc;
        scale = std::max(scale, nc);
    }
    double nq = 0;
    for (int j = 0; j < d; j++) {
        nq += double(xq[j]) * xq[j];
    }
    // the size of the terms whose float rounding could reorder scores
    scale = ip ? std::sqrt(scale * nq) : scale + nq;
    std::sort(s.begin(), s.end());
    for (idx_t i = 0; i + 1 < L && i < depth; i++) {
        if (s[i + 1] - s[i] < 1e-5 * scale) {
            return false;
        }
    }
    return true;
}

/// The rows of xq (n x d) whose ranking has no near tie.
std::vector<float> clear_queries(const std::vector<float>& xq, int d,
                                 const std::vector<float>& c, bool ip,
                                 idx_t depth) {
    std::vector<float> out;
    for (size_t i = 0; i < xq.size() / d; i++) {
        if (clear_ranking(xq.data() + i * d, c, d, ip, depth)) {
            out.insert(out.end(), xq.begin() + i * d, xq.begin() + (i + 1) * d);
        }
    }
    return out;
}

std::vector<uint8_t> to_bytes(const faiss::Index* index) {
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index, &w);
    return w.data;
}

std::unique_ptr<faiss::Index> from_bytes(const std::vector<uint8_t>& b) {
    faiss::VectorIOReader r;
    r.data = b;
    return std::unique_ptr<faiss::Index>(faiss_ehi::read_index(&r));
}

/// Recompute the payload checksum of a faiss_ehi file after a patch.
void reseal(std::vector<uint8_t>& bytes) {
    const size_t header = 4 + 4 + 8 + 8;
    ASSERT_GE(bytes.size(), header);
    uint64_t sum =
            io_detail::fnv1a(bytes.data() + header, bytes.size() - header);
    std::memcpy(bytes.data() + 16, &sum, 8);
}

/// Offsets of every occurrence of the 4-byte tag in bytes.
std::vector<size_t> find_tag(const std::vector<uint8_t>& bytes,
                             const char* tag) {
    std::vector<size_t> out;
    for (size_t i = 0; i + 4 <= bytes.size(); i++) {
        if (std::memcmp(bytes.data() + i, tag, 4) == 0) {
            out.push_back(i);
        }
    }
    return out;
}

} // namespace

// ------------------------------------------------------------ routing

// Started at nearest-centroid with every group expanded, the GROUPED tree
// probes exactly in Faiss IVF's order, and an IVF over the same centroids
// returns bit-identical results at every nprobe.
TEST(GroupedRouting, NearestCentroidStartIsIVFProbeOrder) {
    const int d = 16, B = 8, H = 2;
    const idx_t L = 64, nb = 4000, k = 10;
    auto xb = clustered_data(nb, d, 40, 301, 1);
    auto xq_all = clustered_data(150, d, 40, 301, 2);
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        SCOPED_TRACE(metric == faiss::METRIC_L2 ? "L2" : "IP");
        const bool ip = metric == faiss::METRIC_INNER_PRODUCT;
        FlatTree f = flat_tree(d, B, H, metric, xb);
        ASSERT_TRUE(f.tree.is_trained);
        ASSERT_EQ(f.tree.nleaves(), L);
        ASSERT_EQ(f.centroids.size(), size_t(L) * d);
        EXPECT_EQ(f.tree.strategy, BeamStrategy::GROUPED);
        EXPECT_TRUE(f.tree.group_expansion.empty());
        f.tree.group_expansion.clear(); // every group expanded
        EXPECT_EQ(f.tree.groups_for_beam(1), idx_t(B));

        std::vector<float> xq = clear_queries(xq_all, d, f.centroids, ip, L);
        const idx_t nq = idx_t(xq.size() / d);
        // near ties are rare on continuous data
        ASSERT_GE(nq, 140) << "too many near ties";

        faiss::IndexFlat flat(d, metric);
        flat.add(L, f.centroids.data());
        for (idx_t beam : {L, idx_t(20), idx_t(7), idx_t(1)}) {
            std::vector<idx_t> leaves(nq * beam), ref(nq * beam);
            std::vector<float> probs(nq * beam), dis(nq * beam);
            f.tree.route(nq, xq.data(), beam, leaves.data(), probs.data());
            flat.search(nq, xq.data(), beam, dis.data(), ref.data());
            EXPECT_EQ(leaves, ref) << "beam " << beam;
            if (beam == L) {
                // the softmax over all leaves sums to 1, in decreasing order
                for (idx_t q = 0; q < nq; q++) {
                    double s = 0;
                    for (idx_t j = 0; j < L; j++) {
                        s += probs[q * L + j];
                        if (j > 0) {
                            EXPECT_LE(probs[q * L + j], probs[q * L + j - 1]);
                        }
                    }
                    EXPECT_NEAR(s, 1.0, 1e-4);
                }
            }
        }

        // IVF over the same centroids vs the EHI index (documents at their
        // nearest leaf)
        faiss::IndexFlat coarse(d, metric);
        coarse.add(L, f.centroids.data());
        faiss::IndexIVFFlat ivf(&coarse, d, L, metric);
        ASSERT_TRUE(ivf.is_trained);
        ivf.add(nb, xb.data());
        auto* tq = new EHITreeQuantizer(d, B, H, metric);
        tq->tree = f.tree;
        tq->leaf_representatives = f.centroids;
        tq->assign_nearest = true;
        tq->update_is_trained();
        IndexEHITree ehi(tq, metric);
        // Bit-identity needs Faiss's distances on both sides; faiss-ehi's
        // own scan kernels agree to float rounding (test_scan.cpp).
        ehi.simd_scan = false;
        ASSERT_TRUE(ehi.is_trained);
        ehi.add(nb, xb.data());
        for (idx_t l = 0; l < L; l++) {
            ASSERT_EQ(ehi.invlists->list_size(l), ivf.invlists->list_size(l))
                    << "list " << l;
        }
        for (size_t np : {1, 2, 5, 16, 64}) {
            SCOPED_TRACE("nprobe " + std::to_string(np));
            ivf.nprobe = np;
            ehi.nprobe = np;
            EXPECT_BIT_IDENTICAL(search(ehi, xq, k), search(ivf, xq, k));
        }
    }
}

// groups_for_beam follows the calibrated table, and with fewer groups
// expanded the leaves come from the root's best groups, in leaf-logit order.
TEST(GroupedRouting, ExpansionTableLimitsTheGroups) {
    const int d = 16, B = 8, H = 2;
    const idx_t L = 64;
    auto xb = clustered_data(3000, d, 40, 302, 1);
    auto xq_all = clustered_data(100, d, 40, 302, 2);
    FlatTree f = flat_tree(d, B, H, faiss::METRIC_L2, xb);
    EHITree& t = f.tree;
    t.group_expansion = {1, 2, 2, 3, 5, 8};
    // beam -> ceil(log2 beam) entry, at least ceil(beam / B), at most B
    std::map<idx_t, idx_t> want = {{1, 1},  {2, 2},  {3, 2},  {4, 2},
                                   {5, 3},  {8, 3},  {9, 5},  {16, 5},
                                   {17, 8}, {32, 8}, {64, 8}, {1000, 8}};
    for (auto& kv : want) {
        EXPECT_EQ(t.groups_for_beam(kv.first), kv.second)
                << "beam " << kv.first;
    }
    t.group_expansion = {1};
    EXPECT_EQ(t.groups_for_beam(1), 1);
    EXPECT_EQ(t.groups_for_beam(12), 2); // enough leaves for the beam
    t.group_expansion = {1, 1, 1};
    EXPECT_EQ(t.groups_for_beam(4), 1);

    // all_leaf_logits is W_l u + b_l
    const idx_t nq = idx_t(xq_all.size() / d);
    std::vector<float> logits(nq * L);
    t.all_leaf_logits(nq, xq_all.data(), logits.data());
    for (idx_t q = 0; q < nq; q++) {
        for (idx_t l = 0; l < L; l++) {
            double s = t.node_b[1][l];
            for (int j = 0; j < d; j++) {
                s += double(t.node_W[1][l * d + j]) * xq_all[q * d + j];
            }
            ASSERT_NEAR(logits[q * L + l], s, 1e-3 * (1 + std::abs(s)));
        }
    }

    // with 2 groups for beams up to 8: the leaves lie in the root's 2 best
    // groups and are the best leaf logits among those groups' leaves
    t.group_expansion = {2, 2, 2, 2, 2, 2};
    std::vector<float> xq = clear_queries(xq_all, d, f.centroids, false, L);
    const idx_t nc = idx_t(xq.size() / d);
    ASSERT_GE(nc, 90);
    std::vector<float> lg(nc * L);
    t.all_leaf_logits(nc, xq.data(), lg.data());
    for (idx_t beam : {idx_t(1), idx_t(5), idx_t(8)}) {
        std::vector<idx_t> leaves(nc * beam);
        std::vector<float> probs(nc * beam);
        t.route(nc, xq.data(), beam, leaves.data(), probs.data());
        for (idx_t q = 0; q < nc; q++) {
            const float* u = xq.data() + q * d;
            std::vector<std::pair<double, idx_t>> root(B);
            for (int g = 0; g < B; g++) {
                double s = t.node_b[0][g];
                for (int j = 0; j < d; j++) {
                    s += double(t.node_W[0][g * d + j]) * u[j];
                }
                root[g] = {-s, g};
            }
            std::sort(root.begin(), root.end());
            std::set<idx_t> groups = {root[0].second, root[1].second};
            std::vector<std::pair<float, idx_t>> cand;
            for (idx_t l = 0; l < L; l++) {
                if (groups.count(l / B)) {
                    cand.push_back({-lg[q * L + l], l});
                }
            }
            std::sort(cand.begin(), cand.end());
            double lse_max = -cand[0].first, sum = 0;
            for (auto& c : cand) {
                sum += std::exp(-c.first - lse_max);
            }
            for (idx_t j = 0; j < beam; j++) {
                idx_t leaf = leaves[q * beam + j];
                ASSERT_TRUE(groups.count(leaf / B))
                        << "query " << q << " leaf " << leaf;
                EXPECT_EQ(leaf, cand[j].second)
                        << "query " << q << " rank " << j;
                // probability: softmax over the scored candidates
                double p = std::exp(-cand[j].first - lse_max) / sum;
                EXPECT_NEAR(probs[q * beam + j], p, 1e-4 + 1e-3 * p);
            }
        }
    }
}

// ------------------------------------------------------------ balanced groups

TEST(GroupedBalancedGroups, ExactlyBMembersAndAPermutation) {
    struct Case {
        idx_t N;
        int d, B;
    };
    for (Case c :
         {Case{64, 16, 8}, Case{48, 5, 4}, Case{30, 3, 3}, Case{8, 4, 8}}) {
        SCOPED_TRACE("N " + std::to_string(c.N) + " B " + std::to_string(c.B));
        auto x = clustered_data(c.N, c.d, int(c.N / c.B), 303 + c.N, 1, 0.5f);
        std::vector<idx_t> order;
        std::vector<float> centres;
        balanced_groups(c.N, c.d, x.data(), c.B, 10, 7, order, centres);
        ASSERT_EQ(order.size(), size_t(c.N));
        std::vector<idx_t> sorted = order;
        std::sort(sorted.begin(), sorted.end());
        std::vector<idx_t> iota(c.N);
        std::iota(iota.begin(), iota.end(), idx_t(0));
        EXPECT_EQ(sorted, iota) << "order is not a permutation";
        const idx_t K = c.N / c.B;
        ASSERT_EQ(centres.size(), size_t(K) * c.d);
        // each group: exactly B points, its centre is their mean
        double within = 0;
        for (idx_t g = 0; g < K; g++) {
            for (int j = 0; j < c.d; j++) {
                double m = 0;
                for (int s = 0; s < c.B; s++) {
                    m += x[order[g * c.B + s] * c.d + j];
                }
                m /= c.B;
                EXPECT_NEAR(centres[g * c.d + j], m, 1e-4);
                for (int s = 0; s < c.B; s++) {
                    double v = x[order[g * c.B + s] * c.d + j] - m;
                    within += v * v;
                }
            }
        }
        // near points together: far tighter than the input order (which is
        // a random grouping of the mixture)
        if (K > 1) {
            double rnd = 0;
            for (idx_t g = 0; g < K; g++) {
                for (int j = 0; j < c.d; j++) {
                    double m = 0;
                    for (int s = 0; s < c.B; s++) {
                        m += x[(g * c.B + s) * c.d + j];
                    }
                    m /= c.B;
                    for (int s = 0; s < c.B; s++) {
                        double v = x[(g * c.B + s) * c.d + j] - m;
                        rnd += v * v;
                    }
                }
            }
            EXPECT_LT(within, 0.7 * rnd);
        }
    }
    auto x = gaussian_data(10, 4, 1);
    std::vector<idx_t> order;
    std::vector<float> centres;
    expect_error(
            [&] { balanced_groups(10, 4, x.data(), 4, 5, 1, order, centres); },
            "multiple of B");
}

// The flat-leaf tree's leaves are the centroids of one flat k-means (the
// grouping only permutes them), and every node classifier is
// nearest-centroid over its children (W = 2Tc, b = -T|c|^2, one T per level).
TEST(GroupedBalancedGroups, FlatLeavesArePermutedKMeansCentroids) {
    const int d = 16, B = 8, H = 2;
    const idx_t L = 64, n = 4000;
    auto x = clustered_data(n, d, 40, 304, 1);
    FlatTree f = flat_tree(d, B, H, faiss::METRIC_L2, x);

    EHITreeKMeansInit defaults;
    faiss::ClusteringParameters cp;
    cp.niter = defaults.niter;
    cp.seed = defaults.seed;
    cp.min_points_per_centroid = 1;
    cp.max_points_per_centroid = defaults.max_points_per_centroid;
    faiss::Clustering clus(d, int(L), cp);
    faiss::IndexFlatL2 assigner(d);
    clus.train(n, x.data(), assigner);

    auto rows = [&](const std::vector<float>& v) {
        std::vector<std::vector<float>> r;
        for (idx_t l = 0; l < L; l++) {
            r.emplace_back(v.begin() + l * d, v.begin() + (l + 1) * d);
        }
        std::sort(r.begin(), r.end());
        return r;
    };
    EXPECT_EQ(rows(f.centroids), rows(clus.centroids))
            << "leaves are not the k-means centroids";

    // leaf level: one temperature for all leaves
    const EHITree& t = f.tree;
    auto check_level = [&](int h, const std::vector<float>& child) {
        idx_t nc = t.nodes_at_depth(h + 1);
        double T = -t.node_b[h][0] / faiss::fvec_norm_L2sqr(child.data(), d);
        ASSERT_GT(T, 0);
        for (idx_t r = 0; r < nc; r++) {
            const float* c = child.data() + r * d;
            EXPECT_NEAR(t.node_b[h][r], -T * faiss::fvec_norm_L2sqr(c, d),
                        1e-4 * T * (1 + faiss::fvec_norm_L2sqr(c, d)));
            for (int j = 0; j < d; j++) {
                EXPECT_NEAR(t.node_W[h][r * d + j], 2 * T * c[j],
                            1e-4 * T * (1 + std::abs(c[j])))
                        << "level " << h << " child " << r;
            }
        }
    };
    check_level(1, f.centroids);
    // root level: a group's centroid is the mean of its B leaves
    std::vector<float> gc(size_t(B) * d, 0.0f);
    for (idx_t l = 0; l < L; l++) {
        for (int j = 0; j < d; j++) {
            gc[(l / B) * d + j] += f.centroids[l * d + j] / B;
        }
    }
    check_level(0, gc);
    // and the groups are tight: within-group spread well below a random
    // grouping's (the k-means order)
    auto spread = [&](const std::vector<float>& c) {
        double s = 0;
        for (idx_t g = 0; g < L / B; g++) {
            for (int j = 0; j < d; j++) {
                double m = 0;
                for (int i = 0; i < B; i++) {
                    m += c[(g * B + i) * d + j] / B;
                }
                for (int i = 0; i < B; i++) {
                    double v = c[(g * B + i) * d + j] - m;
                    s += v * v;
                }
            }
        }
        return s;
    };
    EXPECT_LT(spread(f.centroids), 0.8 * spread(clus.centroids));
}

// ------------------------------------------------------------ adaptive beam

TEST(GroupedAdaptiveBeam, ApplyCutsAfterTheMassWithAFloor) {
    // one row of 4 leaves, probabilities 0.5 0.3 0.1 0.1
    auto run = [](float thr, int min_beam) {
        std::vector<idx_t> l = {7, 3, 5, 1};
        std::vector<float> p = {0.5f, 0.3f, 0.1f, 0.1f};
        apply_adaptive_beam(1, 4, thr, min_beam, l.data(), p.data());
        return l;
    };
    EXPECT_EQ(run(0.25f, 1), (std::vector<idx_t>{7, 3, -1, -1}));
    EXPECT_EQ(run(0.5f, 1), (std::vector<idx_t>{7, -1, -1, -1}));
    EXPECT_EQ(run(0.5f, 3), (std::vector<idx_t>{7, 3, 5, -1}));
    EXPECT_EQ(run(0.01f, 1), (std::vector<idx_t>{7, 3, 5, 1}));
    EXPECT_EQ(run(0.9f, 10), (std::vector<idx_t>{7, 3, 5, 1}));
}

TEST(GroupedAdaptiveBeam, FloorCeilingAndRestrictedSearch) {
    const int d = 16, B = 8, H = 2;
    const idx_t nb = 3000, k = 10;
    auto xb = clustered_data(nb, d, 40, 305, 1);
    auto xq = clustered_data(60, d, 40, 305, 2);
    const idx_t nq = 60;
    auto index = kmeans_tree_index(d, B, H, faiss::METRIC_L2, xb);
    index->add(nb, xb.data());
    EHITreeQuantizer* q = index->tree_quantizer();
    ASSERT_EQ(q->tree.strategy, BeamStrategy::GROUPED);
    ASSERT_TRUE(q->assign_nearest);
    const idx_t nprobe = 16;
    // the plain route: leaves and probabilities without the cut
    std::vector<idx_t> rl(nq * nprobe);
    std::vector<float> rp(nq * nprobe);
    q->tree.route(nq, xq.data(), nprobe, rl.data(), rp.data());

    struct Case {
        float thr;
        int min_beam;
    };
    bool saw_floor = false, saw_cut = false;
    for (Case c : {Case{0.5f, 1}, Case{0.2f, 1}, Case{0.05f, 2}, Case{0.9f, 5},
                   Case{0.3f, 12}, Case{0.5f, 40}}) {
        SCOPED_TRACE("threshold " + std::to_string(c.thr) + " min_beam " +
                     std::to_string(c.min_beam));
        SearchParametersEHITree ep;
        ep.mass_threshold = c.thr;
        ep.min_beam = c.min_beam;
        std::vector<idx_t> lab(nq * nprobe);
        std::vector<float> dis(nq * nprobe);
        q->search(nq, xq.data(), nprobe, dis.data(), lab.data(), &ep);
        const double want = 1.0 - double(c.thr);
        size_t visited = 0;
        for (idx_t i = 0; i < nq; i++) {
            // how many leaves the mass alone needs
            idx_t mass_needs = nprobe;
            double taken = 0;
            for (idx_t j = 0; j < nprobe; j++) {
                if (taken >= want) {
                    mass_needs = j;
                    break;
                }
                taken += rp[i * nprobe + j];
            }
            idx_t expect =
                    std::min(nprobe, std::max<idx_t>(mass_needs, c.min_beam));
            idx_t count = 0;
            for (idx_t j = 0; j < nprobe; j++) {
                idx_t l = lab[i * nprobe + j];
                if (j < expect) {
                    EXPECT_EQ(l, rl[i * nprobe + j]) << "query " << i;
                    visited += index->invlists->list_size(l);
                } else {
                    EXPECT_EQ(l, -1) << "query " << i << " slot " << j;
                }
                count += l >= 0;
            }
            EXPECT_GE(count, std::min<idx_t>(c.min_beam, nprobe));
            EXPECT_LE(count, nprobe);
            EXPECT_GE(count, 1);
            saw_floor = saw_floor || mass_needs < c.min_beam;
            saw_cut = saw_cut || count < nprobe;
        }

        // the index's search with these parameters = a search restricted to
        // those leaves
        faiss::SearchParametersIVF sp;
        sp.nprobe = nprobe;
        sp.quantizer_params = &ep;
        faiss::indexIVF_stats.reset();
        Result got = search(*index, xq, k, &sp);
        EXPECT_EQ(faiss::indexIVF_stats.ndis, visited);
        Result pre(nq, k);
        faiss::SearchParametersIVF plain;
        plain.nprobe = nprobe;
        index->search_preassigned(nq, xq.data(), k, lab.data(), dis.data(),
                                  pre.D.data(), pre.I.data(), false, &plain);
        EXPECT_BIT_IDENTICAL(got, pre);
        // and by brute force over those leaves' documents
        for (idx_t i = 0; i < nq; i++) {
            std::vector<std::pair<float, idx_t>> cand;
            for (idx_t j = 0; j < nprobe; j++) {
                idx_t l = lab[i * nprobe + j];
                if (l < 0) {
                    continue;
                }
                const idx_t* ids = index->invlists->get_ids(l);
                for (size_t e = 0; e < index->invlists->list_size(l); e++) {
                    cand.push_back(
                            {faiss::fvec_L2sqr(xq.data() + i * d,
                                               xb.data() + ids[e] * d, d),
                             ids[e]});
                }
            }
            std::sort(cand.begin(), cand.end());
            for (idx_t j = 0; j < k; j++) {
                idx_t want_id = j < idx_t(cand.size()) ? cand[j].second : -1;
                EXPECT_EQ(got.I[i * k + j], want_id)
                        << "query " << i << " rank " << j;
            }
        }

        // the quantizer's own defaults give the same as the per-call ones
        q->mass_threshold = c.thr;
        q->min_beam = c.min_beam;
        index->nprobe = nprobe;
        EXPECT_BIT_IDENTICAL(search(*index, xq, k), got);
        q->mass_threshold = 0;
        q->min_beam = 1;
    }
    EXPECT_TRUE(saw_floor) << "no case where min_beam was binding";
    EXPECT_TRUE(saw_cut) << "no case where the threshold cut the beam";

    // mass_threshold outside [0, 1)
    std::vector<float> D(nq * k);
    std::vector<idx_t> I(nq * k);
    for (float bad :
         {1.0f, 1.5f, -0.1f, std::numeric_limits<float>::quiet_NaN()}) {
        SCOPED_TRACE("bad threshold " + std::to_string(bad));
        q->mass_threshold = bad;
        expect_error(
                [&] { index->search(nq, xq.data(), k, D.data(), I.data()); },
                "mass_threshold");
        expect_error([&] { q->search(nq, xq.data(), 4, D.data(), I.data()); },
                     "mass_threshold");
    }
    q->mass_threshold = 0;
    for (float bad : {1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN()}) {
        SearchParametersEHITree ep;
        ep.mass_threshold = bad;
        faiss::SearchParametersIVF sp;
        sp.nprobe = 4;
        sp.quantizer_params = &ep;
        expect_error(
                [&] {
                    index->search(nq, xq.data(), k, D.data(), I.data(), &sp);
                },
                "mass_threshold");
    }
}

// ------------------------------------------------------------ budget recall

namespace {

/** The hand-built case: m = 2, B = 2, H = 2 (4 leaves), leaf logits
 * W_l . u with W_l = (a_l, c_l), a = (4, 3, 2, 1), c = (1, 2, 3, 4): query
 * (1, 0) ranks the leaves 0 1 2 3, query (0, 1) ranks them 3 2 1 0. 20
 * documents, leaf sizes 2 4 6 8. */
struct HandCase {
    EHITree tree{2, 2, 2, NodeForm::PER_NODE};
    KnnSample s;
    std::vector<idx_t> doc_leaf;
    HandCase() {
        std::vector<float> W0(2 * 2, 0.0f), b0(2, 0.0f);
        std::vector<float> W1 = {4, 1, 3, 2, 2, 3, 1, 4}, b1(4, 0.0f);
        tree.set_node_level(0, W0.data(), b0.data());
        tree.set_node_level(1, W1.data(), b1.data());
        // documents 0-1 in leaf 0, 2-5 in leaf 1, 6-11 in leaf 2, 12-19 in
        // leaf 3
        for (idx_t l = 0, sz = 2; l < 4; l++, sz += 2) {
            doc_leaf.insert(doc_leaf.end(), sz, l);
        }
        s.nq = 2;
        s.k = 4;
        s.d = 2;
        s.rows = {100, 101};
        s.queries = {1, 0, 0, 1};
        // query 0: 2 neighbours in leaf 1, one in leaf 2, one in leaf 3;
        // query 1: one in leaf 0, one in leaf 3, one in leaf 2, one missing
        s.neighbors = {2, 5, 7, 13, 0, 19, -1, 10};
    }
};

} // namespace

TEST(GroupedBudgetRecall, HandComputedFractions) {
    HandCase h;
    ASSERT_TRUE(h.tree.is_trained);
    // budgets of 1, 4, 6, 10 and 20 documents
    std::vector<double> budgets = {0.05, 0.2, 0.3, 0.5, 1.0};
    std::vector<double> r =
            budget_recall(h.tree, h.s, h.doc_leaf.data(), 20, budgets);
    // query 0 (order 0 1 2 3, sizes 2 4 6 8, hits 0 2 1 1 of 4):
    //   1 doc: 0; 4: 2 * 2/4 = 1 -> 1/4; 6: 2 -> 1/2;
    //   10: 2 + 1 * 4/6 -> (8/3)/4 = 2/3; 20: 4/4 = 1
    // query 1 (order 3 2 1 0, sizes 8 6 4 2, hits 1 1 0 1 of 3):
    //   1 doc: 1/8 -> 1/24; 4: 4/8 -> 1/6; 6: 6/8 -> 1/4;
    //   10: 1 + 2/6 -> 4/9; 20: 3/3 = 1
    std::vector<double> want = {(0 + 1.0 / 24) / 2, (0.25 + 1.0 / 6) / 2,
                                (0.5 + 0.25) / 2, (2.0 / 3 + 4.0 / 9) / 2, 1.0};
    ASSERT_EQ(r.size(), want.size());
    for (size_t b = 0; b < want.size(); b++) {
        EXPECT_NEAR(r[b], want[b], 1e-12) << "budget " << budgets[b];
    }
    // a bias of +5 on leaf 3 puts it first for query 0 too (order 3 0 1 2):
    // 6 documents of leaf 3's 8 -> 1 * 6/8 of 4 neighbours = 3/16
    std::vector<float> bias = {0, 0, 0, 5};
    std::vector<double> rb = budget_recall(h.tree, h.s, h.doc_leaf.data(), 20,
                                           {0.3}, bias.data());
    ASSERT_EQ(rb.size(), 1u);
    EXPECT_NEAR(rb[0], (3.0 / 16 + 0.25) / 2, 1e-12);
    // budgets past everything count every neighbour
    std::vector<double> big =
            budget_recall(h.tree, h.s, h.doc_leaf.data(), 20, {2.0});
    EXPECT_NEAR(big[0], 1.0, 1e-12);
}

TEST(GroupedKnnSample, DrawExcludesSelfAndIsExact) {
    const int d = 8, k = 5;
    const idx_t n = 300;
    auto x = gaussian_data(n, d, 306);
    KnnSample s = KnnSample::draw(n, d, x.data(), faiss::METRIC_L2, 40, k, 9);
    ASSERT_EQ(s.nq, 40);
    ASSERT_EQ(s.k, k);
    ASSERT_EQ(s.rows.size(), 40u);
    ASSERT_EQ(s.neighbors.size(), size_t(40 * k));
    EXPECT_TRUE(std::is_sorted(s.rows.begin(), s.rows.end()));
    EXPECT_EQ(std::set<idx_t>(s.rows.begin(), s.rows.end()).size(), 40u);
    Result gt = brute_force(d, faiss::METRIC_L2, x, s.queries, k + 1);
    for (idx_t i = 0; i < s.nq; i++) {
        EXPECT_EQ(0,
                  std::memcmp(s.queries.data() + i * d,
                              x.data() + s.rows[i] * d, d * sizeof(float)));
        std::vector<idx_t> want;
        for (int j = 0; j <= k; j++) {
            if (gt.I[i * (k + 1) + j] != s.rows[i]) {
                want.push_back(gt.I[i * (k + 1) + j]);
            }
        }
        want.resize(k);
        EXPECT_EQ(std::vector<idx_t>(s.neighbors.begin() + i * k,
                                     s.neighbors.begin() + (i + 1) * k),
                  want);
    }
    // the same seed draws the same sample; nq is clamped to n
    KnnSample s2 = KnnSample::draw(n, d, x.data(), faiss::METRIC_L2, 40, k, 9);
    EXPECT_EQ(s2.rows, s.rows);
    EXPECT_EQ(s2.neighbors, s.neighbors);
    KnnSample all =
            KnnSample::draw(10, d, x.data(), faiss::METRIC_L2, 50, 20, 1);
    EXPECT_EQ(all.nq, 10);
    EXPECT_EQ(all.k, 9);
}

// ------------------------------------------------------------ IO

namespace {

/// Default k-means trainer (flat leaves, calibration) with adaptive-beam
/// defaults on the quantizer.
std::unique_ptr<IndexEHITree> calibrated_index(const std::vector<float>& xb,
                                               int d) {
    auto index = kmeans_tree_index(d, 8, 2, faiss::METRIC_L2, xb);
    EHITreeQuantizer* q = index->tree_quantizer();
    q->mass_threshold = 0.15f;
    q->min_beam = 3;
    index->add(idx_t(xb.size() / d), xb.data());
    return index;
}

} // namespace

TEST(GroupedIO, RoundTripKeepsRoutingAndResults) {
    const int d = 16;
    auto xb = clustered_data(3000, d, 40, 307, 1);
    auto more = clustered_data(400, d, 40, 307, 3);
    auto xq = clustered_data(50, d, 40, 307, 2);
    auto index = calibrated_index(xb, d);
    const EHITreeQuantizer* q = index->tree_quantizer();
    ASSERT_EQ(q->tree.strategy, BeamStrategy::GROUPED);
    ASSERT_FALSE(q->tree.group_expansion.empty());
    ASSERT_TRUE(q->assign_nearest);

    TempDir dir;
    std::string fname = dir.file("grouped_io.fehi");
    faiss_ehi::write_index(index.get(), fname.c_str());
    std::unique_ptr<faiss::Index> from_file(
            faiss_ehi::read_index(fname.c_str()));
    std::unique_ptr<faiss::Index> from_mem = from_bytes(to_bytes(index.get()));
    std::unique_ptr<faiss::Index> cloned(faiss_ehi::clone_index(index.get()));

    for (faiss::Index* r : {from_file.get(), from_mem.get(), cloned.get()}) {
        auto* e = dynamic_cast<IndexEHITree*>(r);
        ASSERT_NE(e, nullptr);
        const EHITreeQuantizer* rq = e->tree_quantizer();
        EXPECT_EQ(rq->tree.strategy, BeamStrategy::GROUPED);
        EXPECT_EQ(rq->tree.group_expansion, q->tree.group_expansion);
        EXPECT_EQ(rq->assign_nearest, q->assign_nearest);
        EXPECT_EQ(rq->mass_threshold, q->mass_threshold);
        EXPECT_EQ(rq->min_beam, q->min_beam);
        EXPECT_EQ(rq->tree.node_W, q->tree.node_W);
        EXPECT_EQ(rq->tree.node_b, q->tree.node_b);
        EXPECT_EQ(rq->leaf_representatives, q->leaf_representatives);
        for (size_t np : {1, 4, 16, 64}) {
            SCOPED_TRACE("nprobe " + std::to_string(np));
            e->nprobe = np;
            index->nprobe = np;
            EXPECT_BIT_IDENTICAL(search(*e, xq, 10), search(*index, xq, 10));
        }
        // writing the copy gives the same bytes
        EXPECT_EQ(to_bytes(r), to_bytes(index.get()));
    }
    // documents added after the round trip go to the same (nearest) leaves
    auto* e = dynamic_cast<IndexEHITree*>(cloned.get());
    e->add(400, more.data());
    index->add(400, more.data());
    for (idx_t l = 0; l < idx_t(index->nlist); l++) {
        ASSERT_EQ(e->invlists->list_size(l), index->invlists->list_size(l));
    }
    e->nprobe = index->nprobe = 8;
    EXPECT_BIT_IDENTICAL(search(*e, xq, 10), search(*index, xq, 10));
}

TEST(GroupedIO, CorruptRoutingRecordIsRejected) {
    const int d = 8;
    auto xb = clustered_data(1500, d, 20, 308, 1);
    auto index = calibrated_index(xb, d);
    const EHITreeQuantizer* q = index->tree_quantizer();
    const int ngroups = 8;
    ASSERT_FALSE(q->tree.group_expansion.empty());

    // 1. written from memory with a bad table: the reader refuses it
    for (int32_t bad : {0, -1, ngroups + 1}) {
        std::unique_ptr<faiss::Index> c(faiss_ehi::clone_index(index.get()));
        auto* e = dynamic_cast<IndexEHITree*>(c.get());
        e->tree_quantizer()->tree.group_expansion[0] = bad;
        std::vector<uint8_t> bytes;
        try {
            bytes = to_bytes(e);
        } catch (const faiss::FaissException&) {
            continue; // refusing to write it is fine too
        }
        std::string msg = faiss_error([&] { from_bytes(bytes); });
        EXPECT_NE(lower(msg).find("corrupt"), std::string::npos)
                << "entry " << bad << ": " << msg;
    }

    // 2. patched bytes with a valid checksum
    std::vector<uint8_t> bytes = to_bytes(index.get());
    std::vector<size_t> at = find_tag(bytes, "GRP1");
    ASSERT_EQ(at.size(), 1u);
    const size_t rec = at[0] + 4; // nearest u8, mass f32, min_beam i32, ng u32
    uint32_t ng;
    std::memcpy(&ng, bytes.data() + rec + 9, 4);
    ASSERT_EQ(ng, q->tree.group_expansion.size());
    {
        // sanity: resealing the untouched bytes still reads
        std::vector<uint8_t> same = bytes;
        reseal(same);
        EXPECT_NO_THROW(from_bytes(same));
    }
    auto patched = [&](size_t off, const void* v, size_t len) {
        std::vector<uint8_t> b = bytes;
        std::memcpy(b.data() + off, v, len);
        reseal(b);
        return b;
    };
    for (int32_t bad : {0, ngroups + 1, 1000}) {
        for (uint32_t i : {0u, ng - 1}) {
            auto b = patched(rec + 13 + 4 * i, &bad, 4);
            std::string msg = faiss_error([&] { from_bytes(b); });
            EXPECT_NE(lower(msg).find("corrupt"), std::string::npos)
                    << "entry " << i << " = " << bad << ": " << msg;
        }
    }
    // other routing fields: the document rule flag, the threshold, the
    // floor and the table length
    uint8_t flag = 2;
    float mass = 1.5f;
    int32_t floor = -1;
    uint32_t len = 65;
    for (auto b : {patched(rec, &flag, 1), patched(rec + 1, &mass, 4),
                   patched(rec + 5, &floor, 4), patched(rec + 9, &len, 4),
                   patched(at[0], "GRP2", 4)}) {
        std::string msg = faiss_error([&] { from_bytes(b); });
        EXPECT_NE(lower(msg).find("corrupt"), std::string::npos) << msg;
    }
}

// route() with no probabilities wanted (what the quantizer's search asks
// unless the adaptive beam is on) gives the same leaves as with them, for
// every strategy, beams below and above the number of leaves included.
TEST(GroupedRouting, LeavesWithoutProbabilitiesAreTheSame) {
    for (NodeForm form : {NodeForm::PER_NODE, NodeForm::PAPER}) {
        EHITree t(4, 3, 12, form);
        t.init_random(7);
        const idx_t n = 37;
        std::vector<float> x = gaussian_data(n, 12, 5);
        for (BeamStrategy s : {BeamStrategy::BEST_FIRST,
                               BeamStrategy::LEVEL_BEAM,
                               BeamStrategy::GROUPED}) {
            if (s == BeamStrategy::GROUPED && form != NodeForm::PER_NODE) {
                continue; // GROUPED needs the per-node form
            }
            for (idx_t beam : {1, 5, 16, 70}) {
                std::vector<idx_t> with(n * beam), without(n * beam);
                std::vector<float> probs(n * beam);
                t.route(n, x.data(), beam, with.data(), probs.data(), int(s));
                t.route(n, x.data(), beam, without.data(), nullptr, int(s));
                EXPECT_EQ(with, without)
                        << "strategy " << int(s) << " beam " << beam;
            }
        }
    }
}
