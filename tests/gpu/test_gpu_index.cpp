/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The GPU search (faiss_ehi/gpu) against the CPU tree and index. Every test
 * skips, saying why, where no CUDA device can be used.
 */
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>

#include <faiss_ehi/faiss_ehi.h>
#include <faiss_ehi/gpu/GpuIndexEHITree.h>

#include "test_helpers.h"

namespace {

using namespace ehi_test;
using faiss_ehi::BeamStrategy;
using faiss_ehi::EHITree;
using faiss_ehi::IndexEHITree;
using faiss_ehi::NodeForm;
using faiss_ehi::gpu::GpuIndexEHITree;
using faiss_ehi::gpu::GpuIndexEHITreeConfig;

#define SKIP_WITHOUT_GPU()                                                     \
    do {                                                                       \
        std::string why_;                                                      \
        if (!faiss_ehi::gpu::cuda_device_available(&why_)) {                   \
            GTEST_SKIP() << "no CUDA device: " << why_;                        \
        }                                                                      \
    } while (0)

const char* form_name(NodeForm f) {
    return f == NodeForm::PAPER ? "paper" : "node";
}

/** Compares GPU routes with the CPU's: probabilities position by position
 * to 1e-4 relative, and any leaf that differs must be a near tie (its CPU
 * probability within 1e-4 of the CPU's leaf at that position). Returns the
 * number of differing positions. */
size_t compare_routes(const EHITree& tree, const std::vector<float>& u, idx_t n,
                      idx_t beam, const std::vector<idx_t>& cl,
                      const std::vector<float>& cp,
                      const std::vector<idx_t>& gl,
                      const std::vector<float>& gp, const std::string& what) {
    idx_t L = tree.nleaves();
    std::vector<float> all(size_t(n) * L);
    tree.all_leaf_probabilities(n, u.data(), all.data());
    size_t diff = 0;
    for (idx_t q = 0; q < n; q++) {
        std::set<idx_t> seen;
        for (idx_t i = 0; i < beam; i++) {
            size_t j = size_t(q) * beam + i;
            float tol = 1e-4f * std::max(cp[j], gp[j]) + 1e-12f;
            EXPECT_NEAR(cp[j], gp[j], tol) << what << " q " << q << " i " << i;
            if (cl[j] == gl[j]) {
                if (gl[j] >= 0) {
                    seen.insert(gl[j]);
                }
                continue;
            }
            diff++;
            if (gl[j] < 0 || gl[j] >= L) {
                ADD_FAILURE() << what << ": leaf " << gl[j] << " outside [0, "
                              << L << ")";
                continue;
            }
            EXPECT_TRUE(seen.insert(gl[j]).second) << what << ": leaf twice";
            float pg = all[size_t(q) * L + gl[j]];
            EXPECT_NEAR(pg, cp[j], tol)
                    << what << " q " << q << " i " << i << ": GPU leaf "
                    << gl[j] << " vs CPU leaf " << cl[j] << " is no tie";
        }
    }
    return diff;
}

struct RouteCase {
    NodeForm form;
    int B, H;
    BeamStrategy strategy;
};

class GpuRouting : public ::testing::TestWithParam<RouteCase> {};

TEST_P(GpuRouting, LeavesAndOrderEqualCpu) {
    SKIP_WITHOUT_GPU();
    const RouteCase c = GetParam();
    const int d = 24;
    const idx_t n = 300;
    auto xt = gaussian_data(2000, d, 11);
    auto index =
            random_tree_index(d, c.B, c.H, faiss::METRIC_L2, xt, 5, c.form);
    EHITree& tree = index->tree_quantizer()->tree;
    tree.strategy = c.strategy;
    GpuIndexEHITree gpu(*index);
    auto u = gaussian_data(n, d, 12);
    idx_t L = tree.nleaves();
    for (idx_t beam : {idx_t(1), idx_t(2), idx_t(5), idx_t(17), L, L + 3}) {
        if (beam > faiss_ehi::gpu::kGpuMaxK) {
            continue;
        }
        std::vector<idx_t> cl(n * beam), gl(n * beam);
        std::vector<float> cp(n * beam), gp(n * beam);
        tree.route(n, u.data(), beam, cl.data(), cp.data());
        gpu.route(n, u.data(), beam, gl.data(), gp.data());
        std::string what = std::string(form_name(c.form)) + " " +
                std::to_string(c.B) + "x" + std::to_string(c.H) + " beam " +
                std::to_string(beam);
        size_t diff = compare_routes(tree, u, n, beam, cl, cp, gl, gp, what);
        EXPECT_LE(diff, size_t(n * beam) / 100 + 1) << what;
    }
}

INSTANTIATE_TEST_SUITE_P(
        Forms, GpuRouting,
        ::testing::Values(
                RouteCase{NodeForm::PER_NODE, 8, 1, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PER_NODE, 4, 2, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PER_NODE, 16, 2, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PER_NODE, 3, 4, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PER_NODE, 300, 1, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PER_NODE, 8, 3, BeamStrategy::LEVEL_BEAM},
                RouteCase{NodeForm::PAPER, 8, 1, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PAPER, 4, 2, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PAPER, 16, 2, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PAPER, 3, 4, BeamStrategy::BEST_FIRST},
                RouteCase{NodeForm::PAPER, 8, 3, BeamStrategy::LEVEL_BEAM}),
        [](const ::testing::TestParamInfo<RouteCase>& info) {
            const RouteCase& c = info.param;
            return std::string(form_name(c.form)) + "_" + std::to_string(c.B) +
                    "x" + std::to_string(c.H) +
                    (c.strategy == BeamStrategy::LEVEL_BEAM ? "_level"
                                                            : "_best");
        });

TEST(GpuRouting, LargeBeamOn4096Leaves) {
    SKIP_WITHOUT_GPU();
    const int d = 16;
    const idx_t n = 64;
    auto xt = gaussian_data(1000, d, 3);
    auto index = random_tree_index(d, 64, 2, faiss::METRIC_L2, xt, 9);
    const EHITree& tree = index->tree_quantizer()->tree;
    GpuIndexEHITree gpu(*index);
    auto u = gaussian_data(n, d, 4);
    for (idx_t beam : {idx_t(64), idx_t(1000), idx_t(1024)}) {
        std::vector<idx_t> cl(n * beam), gl(n * beam);
        std::vector<float> cp(n * beam), gp(n * beam);
        tree.route(n, u.data(), beam, cl.data(), cp.data());
        gpu.route(n, u.data(), beam, gl.data(), gp.data());
        size_t diff = compare_routes(tree, u, n, beam, cl, cp, gl, gp,
                                     "64x2 beam " + std::to_string(beam));
        EXPECT_LE(diff, size_t(n * beam) / 100 + 1);
    }
}

// ------------------------------------------------------------------ search

/// Leaves of each query's beam as a set (CPU), to excuse near-tie routing.
std::vector<std::set<idx_t>> leaf_sets(const EHITree& tree, idx_t n,
                                       const float* x, idx_t beam) {
    std::vector<idx_t> l(n * beam);
    std::vector<float> p(n * beam);
    tree.route(n, x, beam, l.data(), p.data());
    std::vector<std::set<idx_t>> s(n);
    for (idx_t q = 0; q < n; q++) {
        s[q].insert(l.begin() + q * beam, l.begin() + (q + 1) * beam);
    }
    return s;
}

/** Same ids and distances to 1e-4 relative, except for queries whose GPU
 * beam holds other leaves than the CPU's (near ties of the routing; at most
 * 2% of them), and except ids swapped between equal distances. */
void expect_same_results(const Result& cpu, const Result& gpu,
                         const std::vector<std::set<idx_t>>& cpu_leaves,
                         const std::vector<std::set<idx_t>>& gpu_leaves,
                         const std::string& what) {
    ASSERT_EQ(cpu.I.size(), gpu.I.size());
    idx_t routed_apart = 0;
    for (idx_t q = 0; q < cpu.nq; q++) {
        if (cpu_leaves[q] != gpu_leaves[q]) {
            routed_apart++;
            continue;
        }
        for (idx_t j = 0; j < cpu.k; j++) {
            size_t i = size_t(q) * cpu.k + j;
            float a = cpu.D[i], b = gpu.D[i];
            if (cpu.I[i] < 0 || gpu.I[i] < 0) {
                ASSERT_EQ(cpu.I[i], gpu.I[i]) << what << " q " << q;
                continue;
            }
            ASSERT_NEAR(a, b,
                        1e-4 * std::max(std::fabs(a), std::fabs(b)) + 1e-5)
                    << what << " q " << q << " rank " << j;
            if (cpu.I[i] != gpu.I[i]) {
                // only a tie may swap ids
                EXPECT_NEAR(a, b, 1e-5 * std::fabs(a) + 1e-6)
                        << what << " q " << q << " rank " << j << ": id "
                        << cpu.I[i] << " vs " << gpu.I[i];
            }
        }
    }
    EXPECT_LE(routed_apart, cpu.nq / 50 + 1) << what;
}

std::vector<std::set<idx_t>> gpu_leaf_sets(const GpuIndexEHITree& gpu, idx_t n,
                                           const float* x, idx_t beam) {
    beam = std::min<idx_t>(beam, gpu.cpu_index().nlist);
    std::vector<idx_t> l(n * beam);
    std::vector<float> p(n * beam);
    gpu.route(n, x, beam, l.data(), p.data());
    std::vector<std::set<idx_t>> s(n);
    for (idx_t q = 0; q < n; q++) {
        s[q].insert(l.begin() + q * beam, l.begin() + (q + 1) * beam);
    }
    return s;
}

struct SearchCase {
    faiss::MetricType metric;
    int d2l;
    NodeForm form;
    BeamStrategy strategy;
};

class GpuSearch : public ::testing::TestWithParam<SearchCase> {};

std::unique_ptr<IndexEHITree> make_index(const SearchCase& c, int d,
                                         std::vector<float>& xb) {
    std::unique_ptr<IndexEHITree> index;
    if (c.form == NodeForm::PAPER) {
        index = random_tree_index(d, 8, 2, c.metric, xb, 21, c.form);
    } else {
        index = kmeans_tree_index(d, 8, 2, c.metric, xb, c.form);
    }
    index->tree_quantizer()->tree.strategy = c.strategy;
    index->d2l = c.d2l;
    index->add(xb.size() / d, xb.data());
    return index;
}

TEST_P(GpuSearch, EqualsCpuAtEveryBeam) {
    SKIP_WITHOUT_GPU();
    const SearchCase c = GetParam();
    const int d = 32;
    const idx_t nb = 6000, nq = 300, k = 10;
    auto xb = clustered_data(nb, d, 40, 1, 2);
    auto xq = clustered_data(nq, d, 40, 1, 3);
    if (c.metric == faiss::METRIC_INNER_PRODUCT) {
        normalize_rows(xb, d);
        normalize_rows(xq, d);
    }
    auto index = make_index(c, d, xb);
    ASSERT_EQ(index->lists_have_duplicates, c.d2l > 1);
    GpuIndexEHITree gpu(*index);
    EXPECT_EQ(gpu.ntotal, index->ntotal);
    const EHITree& tree = index->tree_quantizer()->tree;
    for (size_t beam : {1, 2, 3, 5, 8, 16, 40, 64, 70}) {
        index->nprobe = beam;
        gpu.nprobe = beam;
        Result rc = search(*index, xq, k);
        idx_t b = std::min<idx_t>(beam, index->nlist);
        auto cl = leaf_sets(tree, nq, xq.data(), b);
        auto gl = gpu_leaf_sets(gpu, nq, xq.data(), b);
        for (int mode : {1, 2}) {
            gpu.scan_mode = mode;
            Result rg = search(gpu, xq, k);
            std::string what =
                    std::string(c.metric == faiss::METRIC_L2 ? "L2" : "IP") +
                    " d2l " + std::to_string(c.d2l) + " " + form_name(c.form) +
                    " beam " + std::to_string(beam) + " scan mode " +
                    std::to_string(mode);
            expect_same_results(rc, rg, cl, gl, what);
            if (c.d2l > 1) {
                for (idx_t q = 0; q < nq; q++) {
                    std::set<idx_t> s;
                    for (idx_t j = 0; j < k; j++) {
                        idx_t id = rg.I[q * k + j];
                        if (id >= 0) {
                            EXPECT_TRUE(s.insert(id).second)
                                    << what << ": id " << id << " twice";
                        }
                    }
                }
            }
        }
    }
    // per-call parameters
    faiss::SearchParametersIVF params;
    params.nprobe = 4;
    index->nprobe = 4;
    Result rc = search(*index, xq, k);
    gpu.nprobe = 1;
    Result rg = search(gpu, xq, k, &params);
    expect_same_results(rc, rg, leaf_sets(tree, nq, xq.data(), 4),
                        gpu_leaf_sets(gpu, nq, xq.data(), 4), "params");
}

INSTANTIATE_TEST_SUITE_P(
        Variants, GpuSearch,
        ::testing::Values(SearchCase{faiss::METRIC_L2, 1, NodeForm::PER_NODE,
                                     BeamStrategy::BEST_FIRST},
                          SearchCase{faiss::METRIC_L2, 2, NodeForm::PER_NODE,
                                     BeamStrategy::BEST_FIRST},
                          SearchCase{faiss::METRIC_INNER_PRODUCT, 1,
                                     NodeForm::PER_NODE,
                                     BeamStrategy::BEST_FIRST},
                          SearchCase{faiss::METRIC_INNER_PRODUCT, 2,
                                     NodeForm::PER_NODE,
                                     BeamStrategy::BEST_FIRST},
                          SearchCase{faiss::METRIC_L2, 2, NodeForm::PAPER,
                                     BeamStrategy::BEST_FIRST},
                          SearchCase{faiss::METRIC_INNER_PRODUCT, 1,
                                     NodeForm::PAPER, BeamStrategy::BEST_FIRST},
                          SearchCase{faiss::METRIC_L2, 1, NodeForm::PER_NODE,
                                     BeamStrategy::LEVEL_BEAM}),
        [](const ::testing::TestParamInfo<SearchCase>& info) {
            const SearchCase& c = info.param;
            return std::string(c.metric == faiss::METRIC_L2 ? "L2" : "IP") +
                    "_d2l" + std::to_string(c.d2l) + "_" + form_name(c.form) +
                    (c.strategy == BeamStrategy::LEVEL_BEAM ? "_level" : "");
        });

TEST(GpuSearchFp16, RecallAgainstCpu) {
    SKIP_WITHOUT_GPU();
    const int d = 32;
    const idx_t nb = 6000, nq = 300, k = 10;
    auto xb = clustered_data(nb, d, 40, 1, 2);
    auto xq = clustered_data(nq, d, 40, 1, 3);
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        for (int d2l : {1, 2}) {
            SearchCase c{metric, d2l, NodeForm::PER_NODE,
                         BeamStrategy::BEST_FIRST};
            auto index = make_index(c, d, xb);
            GpuIndexEHITreeConfig cfg;
            cfg.use_float16 = true;
            GpuIndexEHITree gpu(*index, cfg);
            EXPECT_LT(gpu.list_bytes(),
                      size_t(index->ntotal) * d2l * (d * 4 + 8));
            for (size_t beam : {1, 4, 16}) {
                for (int mode : {1, 2}) {
                    gpu.scan_mode = mode;
                    index->nprobe = gpu.nprobe = beam;
                    Result rc = search(*index, xq, k);
                    Result rg = search(gpu, xq, k);
                    double rec = recall_at_k(rg, rc, k);
                    EXPECT_GE(rec, 0.95)
                            << "fp16 d2l " << d2l << " beam " << beam;
                    for (size_t i = 0; i < rc.D.size(); i++) {
                        if (rg.I[i] >= 0 && rg.I[i] == rc.I[i]) {
                            EXPECT_NEAR(rg.D[i], rc.D[i],
                                        2e-2 * std::fabs(rc.D[i]) + 1e-2);
                        }
                    }
                }
            }
        }
    }
}

TEST(GpuIndex, LargeBatchAndBigK) {
    SKIP_WITHOUT_GPU();
    const int d = 16;
    const idx_t nb = 20000, nq = 5000;
    auto xb = clustered_data(nb, d, 30, 5, 6);
    auto xq = clustered_data(nq, d, 30, 5, 7);
    auto index = kmeans_tree_index(d, 16, 2, faiss::METRIC_L2, xb);
    index->add(nb, xb.data());
    GpuIndexEHITree gpu(*index);
    const EHITree& tree = index->tree_quantizer()->tree;
    index->nprobe = gpu.nprobe = 8;
    auto cl = leaf_sets(tree, nq, xq.data(), 8);
    auto gl = gpu_leaf_sets(gpu, nq, xq.data(), 8);
    for (idx_t k : {idx_t(1), idx_t(100), idx_t(1024)}) {
        Result rc = search(*index, xq, k);
        for (int mode : {0, 1, 2}) {
            gpu.scan_mode = mode;
            Result rg = search(gpu, xq, k);
            expect_same_results(rc, rg, cl, gl,
                                "k " + std::to_string(k) + " mode " +
                                        std::to_string(mode));
        }
    }
    // odd dimension (no vector loads) and a query batch of one
    const int d2 = 13;
    auto yb = clustered_data(3000, d2, 10, 8, 6);
    auto yq = clustered_data(200, d2, 10, 8, 7);
    auto idx2 = kmeans_tree_index(d2, 8, 2, faiss::METRIC_INNER_PRODUCT, yb);
    idx2->d2l = 2;
    idx2->add(3000, yb.data());
    GpuIndexEHITree g2(*idx2);
    idx2->nprobe = g2.nprobe = 5;
    Result rc = search(*idx2, yq, 10);
    auto cl2 = leaf_sets(idx2->tree_quantizer()->tree, 200, yq.data(), 5);
    auto gl2 = gpu_leaf_sets(g2, 200, yq.data(), 5);
    for (int mode : {1, 2}) {
        g2.scan_mode = mode;
        Result rg = search(g2, yq, 10);
        expect_same_results(rc, rg, cl2, gl2,
                            "d 13 mode " + std::to_string(mode));
        Result one(200, 10);
        for (idx_t q = 0; q < 200; q++) {
            g2.search(1, yq.data() + q * d2, 10, one.D.data() + q * 10,
                      one.I.data() + q * 10);
        }
        expect_same_results(rc, one, cl2, gl2, "d 13 batch 1");
    }
}

TEST(GpuIndex, AddResetAddWithIds) {
    SKIP_WITHOUT_GPU();
    const int d = 24;
    const idx_t nb = 4000, nq = 200, k = 10;
    auto xb = clustered_data(nb, d, 20, 8, 9);
    auto xq = clustered_data(nq, d, 20, 8, 10);
    auto cpu = kmeans_tree_index(d, 8, 2, faiss::METRIC_L2, xb);
    GpuIndexEHITree gpu(*cpu);
    EXPECT_TRUE(gpu.is_trained);
    EXPECT_EQ(gpu.ntotal, 0);
    gpu.nprobe = cpu->nprobe = 6;
    // empty: all -1
    Result r0 = search(gpu, xq, k);
    for (idx_t v : r0.I) {
        ASSERT_EQ(v, -1);
    }
    const EHITree& tree = cpu->tree_quantizer()->tree;
    auto check = [&](const std::string& what) {
        ASSERT_EQ(gpu.ntotal, cpu->ntotal) << what;
        Result rc = search(*cpu, xq, k);
        Result rg = search(gpu, xq, k);
        expect_same_results(rc, rg, leaf_sets(tree, nq, xq.data(), 6),
                            gpu_leaf_sets(gpu, nq, xq.data(), 6), what);
    };
    gpu.add(nb / 2, xb.data());
    cpu->add(nb / 2, xb.data());
    check("first half");
    gpu.add(nb / 2, xb.data() + nb / 2 * d);
    cpu->add(nb / 2, xb.data() + nb / 2 * d);
    check("second half");
    gpu.reset();
    cpu->reset();
    EXPECT_EQ(gpu.ntotal, 0);
    Result r1 = search(gpu, xq, k);
    for (idx_t v : r1.I) {
        ASSERT_EQ(v, -1);
    }
    auto ids = make_ids(nb, 1000000, 7);
    gpu.add_with_ids(nb, xb.data(), ids.data());
    cpu->add_with_ids(nb, xb.data(), ids.data());
    check("add_with_ids");
    Result rg = search(gpu, xq, k);
    std::set<idx_t> valid(ids.begin(), ids.end());
    for (idx_t v : rg.I) {
        EXPECT_TRUE(v == -1 || valid.count(v)) << v;
    }
}

TEST(GpuIndex, Errors) {
    SKIP_WITHOUT_GPU();
    const int d = 16;
    auto xb = gaussian_data(2000, d, 1);
    auto xq = gaussian_data(5, d, 2);
    auto cpu = kmeans_tree_index(d, 4, 2, faiss::METRIC_L2, xb);
    cpu->add(2000, xb.data());
    GpuIndexEHITree gpu(*cpu);
    std::vector<float> D(5 * 2000);
    std::vector<idx_t> I(5 * 2000);
    EXPECT_NE(faiss_error(
                      [&] { gpu.search(5, xq.data(), 0, D.data(), I.data()); }),
              "");
    std::string msg = faiss_error(
            [&] { gpu.search(5, xq.data(), 1025, D.data(), I.data()); });
    EXPECT_NE(lower(msg).find("limit"), std::string::npos) << msg;
    auto bad = xq;
    bad[7] = std::numeric_limits<float>::quiet_NaN();
    msg = faiss_error(
            [&] { gpu.search(5, bad.data(), 5, D.data(), I.data()); });
    EXPECT_NE(lower(msg).find("nan"), std::string::npos) << msg;
    faiss::SearchParametersIVF p0;
    p0.nprobe = 0;
    EXPECT_NE(faiss_error([&] {
                  gpu.search(5, xq.data(), 5, D.data(), I.data(), &p0);
              }),
              "");
    faiss::SearchParameters plain;
    EXPECT_NE(faiss_error([&] {
                  gpu.search(5, xq.data(), 5, D.data(), I.data(), &plain);
              }),
              "");
    std::vector<idx_t> l(5);
    std::vector<float> p(5);
    EXPECT_NE(faiss_error(
                      [&] { gpu.route(5, xq.data(), 0, l.data(), p.data()); }),
              "");
    // untrained
    IndexEHITree untrained(d, 4, 2);
    GpuIndexEHITree gu(untrained);
    EXPECT_FALSE(gu.is_trained);
    msg = faiss_error([&] { gu.search(5, xq.data(), 5, D.data(), I.data()); });
    EXPECT_NE(lower(msg).find("untrained"), std::string::npos) << msg;
    EXPECT_NE(faiss_error([&] { gu.add(5, xq.data()); }), "");
    // converter refuses other index types
    faiss::IndexFlatL2 flat(d);
    EXPECT_NE(faiss_error(
                      [&] { delete faiss_ehi::gpu::index_cpu_to_gpu(&flat); }),
              "");
}

TEST(GpuIndex, TrainOnGpuIndex) {
    SKIP_WITHOUT_GPU();
    KMeansTrainerScope scope;
    const int d = 16;
    auto xb = clustered_data(3000, d, 10, 3, 4);
    IndexEHITree untrained(d, 4, 2);
    GpuIndexEHITree gpu(untrained);
    gpu.train(3000, xb.data());
    EXPECT_TRUE(gpu.is_trained);
    gpu.add(3000, xb.data());
    EXPECT_EQ(gpu.ntotal, 3000);
    Result r =
            search(gpu, std::vector<float>(xb.begin(), xb.begin() + 10 * d), 1);
    for (idx_t q = 0; q < 10; q++) {
        EXPECT_EQ(r.I[q], q); // itself, at distance 0
    }
}

TEST(GpuIndex, CopyBackToCpu) {
    SKIP_WITHOUT_GPU();
    const int d = 24;
    const idx_t nb = 4000, nq = 100, k = 10;
    auto xb = clustered_data(nb, d, 20, 8, 9);
    auto xq = clustered_data(nq, d, 20, 8, 10);
    auto cpu = kmeans_tree_index(d, 8, 2, faiss::METRIC_INNER_PRODUCT, xb);
    cpu->d2l = 2;
    cpu->add(nb / 2, xb.data());
    cpu->nprobe = 5;
    std::unique_ptr<GpuIndexEHITree> gpu(
            faiss_ehi::gpu::index_cpu_to_gpu(cpu.get()));
    EXPECT_EQ(gpu->nprobe, 5u);
    gpu->add(nb / 2, xb.data() + nb / 2 * d);
    cpu->add(nb / 2, xb.data() + nb / 2 * d);
    std::unique_ptr<IndexEHITree> back(
            faiss_ehi::gpu::index_gpu_to_cpu(gpu.get()));
    EXPECT_EQ(back->ntotal, cpu->ntotal);
    EXPECT_EQ(back->d2l, 2);
    EXPECT_TRUE(back->lists_have_duplicates);
    EXPECT_EQ(back->nprobe, 5u);
    for (size_t l = 0; l < cpu->nlist; l++) {
        ASSERT_EQ(back->invlists->list_size(l), cpu->invlists->list_size(l));
    }
    Result a = search(*cpu, xq, k);
    Result b = search(*back, xq, k);
    EXPECT_BIT_IDENTICAL(a, b);
    // and the copy still saves and loads through faiss_ehi's IO
    std::unique_ptr<faiss::Index> c(faiss_ehi::clone_index(back.get()));
    Result r3 = search(*c, xq, k);
    EXPECT_BIT_IDENTICAL(a, r3);
}

} // namespace
