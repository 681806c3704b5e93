/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Determinism across OpenMP thread counts, and concurrent searches.
 */
#include "test_helpers.h"

#include <omp.h>

#include <atomic>
#include <functional>
#include <thread>

#include <faiss/IndexIVF.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_ehi/IndexEHITreeSQ.h>
#include <faiss_ehi/index_factory.h>
#include <faiss_ehi/thread_scope.h>

using namespace ehi_test;
using faiss_ehi::IndexEHITree;
using faiss_ehi::NodeForm;

namespace {

struct ThreadCase {
    NodeForm form;
    int d2l;
};

class Threads : public ::testing::TestWithParam<ThreadCase> {};

/** Calls same(t, r) for rounds r = 0..rounds-1 on each of nthreads
 * threads at once; expects every call to return true (its result equal to
 * the single-threaded one) and none to throw. */
void expect_same_concurrently(int nthreads, int rounds,
                              const std::function<bool(int, int)>& same) {
    std::atomic<int> mismatches{0}, errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < nthreads; t++) {
        threads.emplace_back([&, t] {
            try {
                for (int r = 0; r < rounds; r++) {
                    mismatches += !same(t, r);
                }
            } catch (...) {
                errors++;
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(mismatches.load(), 0);
}

} // namespace

TEST_P(Threads, TrainingAndAddingAreThreadCountIndependent) {
    ThreadCase c = GetParam();
    const int d = 16;
    auto xb = clustered_data(4000, d, 40, 5, 1);
    auto xq = clustered_data(300, d, 40, 5, 2);
    int all = std::max(4, omp_get_max_threads());
    Result r1, rall;
    std::unique_ptr<IndexEHITree> i1, iall;
    {
        faiss_ehi::OmpThreadScope o(1);
        i1 = kmeans_tree_index(d, 5, 2, faiss::METRIC_L2, xb, c.form);
        i1->d2l = c.d2l;
        i1->add(4000, xb.data());
        i1->nprobe = 5;
        r1 = search(*i1, xq, 10);
    }
    {
        faiss_ehi::OmpThreadScope o(all);
        iall = kmeans_tree_index(d, 5, 2, faiss::METRIC_L2, xb, c.form);
        iall->d2l = c.d2l;
        iall->add(4000, xb.data());
        iall->nprobe = 5;
        rall = search(*iall, xq, 10);
    }
    EXPECT_EQ(i1->tree_quantizer()->leaf_representatives,
              iall->tree_quantizer()->leaf_representatives);
    for (size_t l = 0; l < i1->nlist; l++) {
        ASSERT_EQ(i1->invlists->list_size(l), iall->invlists->list_size(l));
    }
    EXPECT_BIT_IDENTICAL(r1, rall);
}

TEST_P(Threads, OneThreadEqualsAllThreads) {
    ThreadCase c = GetParam();
    const int d = 16;
    auto xb = clustered_data(4000, d, 40, 5, 1);
    auto xq = clustered_data(300, d, 40, 5, 2);
    int all = std::max(4, omp_get_max_threads());
    Result t1, tall;
    std::vector<float> p1, pall;
    auto iall = kmeans_tree_index(d, 5, 2, faiss::METRIC_L2, xb, c.form);
    iall->d2l = c.d2l;
    iall->add(4000, xb.data());
    iall->nprobe = 5;
    // searching one index with 1 and with all threads
    {
        faiss_ehi::OmpThreadScope o(1);
        t1 = search(*iall, xq, 10);
    }
    {
        faiss_ehi::OmpThreadScope o(all);
        tall = search(*iall, xq, 10);
    }
    EXPECT_BIT_IDENTICAL(t1, tall);
    // tree routing and leaf probabilities
    const auto& tree = iall->tree_quantizer()->tree;
    idx_t nq = 300, beam = 7, L = tree.nleaves();
    std::vector<idx_t> l1(nq * beam), lall(nq * beam);
    std::vector<float> q1(nq * beam), qall(nq * beam);
    p1.resize(nq * L);
    pall.resize(nq * L);
    {
        faiss_ehi::OmpThreadScope o(1);
        tree.route(nq, xq.data(), beam, l1.data(), q1.data());
        tree.all_leaf_probabilities(nq, xq.data(), p1.data());
    }
    {
        faiss_ehi::OmpThreadScope o(all);
        tree.route(nq, xq.data(), beam, lall.data(), qall.data());
        tree.all_leaf_probabilities(nq, xq.data(), pall.data());
    }
    EXPECT_EQ(l1, lall);
    EXPECT_EQ(0,
              std::memcmp(q1.data(), qall.data(), q1.size() * sizeof(float)));
    EXPECT_EQ(0,
              std::memcmp(p1.data(), pall.data(), p1.size() * sizeof(float)));
    // range search
    faiss::RangeSearchResult rr1(nq), rrall(nq);
    {
        faiss_ehi::OmpThreadScope o(1);
        iall->range_search(nq, xq.data(), 1.5f, &rr1);
    }
    {
        faiss_ehi::OmpThreadScope o(all);
        iall->range_search(nq, xq.data(), 1.5f, &rrall);
    }
    ASSERT_EQ(0, std::memcmp(rr1.lims, rrall.lims, (nq + 1) * sizeof(size_t)));
    for (idx_t q = 0; q < nq; q++) {
        std::set<std::pair<idx_t, float>> a, b;
        for (size_t j = rr1.lims[q]; j < rr1.lims[q + 1]; j++) {
            a.emplace(rr1.labels[j], rr1.distances[j]);
            b.emplace(rrall.labels[j], rrall.distances[j]);
        }
        EXPECT_EQ(a, b) << "range query " << q;
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, Threads,
                         ::testing::Values(ThreadCase{NodeForm::PER_NODE, 1},
                                           ThreadCase{NodeForm::PER_NODE, 2},
                                           ThreadCase{NodeForm::PAPER, 1}),
                         [](const ::testing::TestParamInfo<ThreadCase>& info) {
                             return std::string(info.param.form ==
                                                                NodeForm::PAPER
                                                        ? "paper"
                                                        : "node") +
                                     "_d2l" + std::to_string(info.param.d2l);
                         });

TEST(Threads, ConcurrentSearchesAreSafe) {
    const int d = 16;
    auto xb = clustered_data(4000, d, 40, 6, 1);
    auto xq = clustered_data(200, d, 40, 6, 2);
    auto index = kmeans_tree_index(d, 5, 2, faiss::METRIC_L2, xb);
    index->d2l = 2;
    index->add(4000, xb.data());
    index->nprobe = 4;
    // single-threaded references, one per nprobe used below
    std::vector<Result> ref;
    {
        faiss_ehi::OmpThreadScope o(1);
        for (size_t np = 1; np <= 6; np++) {
            faiss::SearchParametersIVF params;
            params.nprobe = np;
            ref.push_back(search(*index, xq, 10, &params));
        }
    }
    Result ref_default = ref[3];
    expect_same_concurrently(6, 4, [&](int t, int r) {
        // alternate between the index's nprobe and per-call parameters
        if ((t + r) % 2 == 0) {
            return bit_identical(search(*index, xq, 10), ref_default);
        }
        faiss::SearchParametersIVF params;
        params.nprobe = 1 + (t + r) % 6;
        return bit_identical(search(*index, xq, 10, &params),
                             ref[params.nprobe - 1]);
    });
}

// An SQ8 index under L2 scans with its code norms; searches read them,
// and several searches may run on one index at once: list-major batches,
// query-by-query ones, selector searches (which gather codes into the
// scanner's own buffer) and range searches, each equal to its
// single-threaded result.
TEST(Threads, ConcurrentSQ8SearchesAreSafe) {
    KMeansTrainerScope kmeans;
    const int d = 24;
    auto xb = clustered_data(4000, d, 40, 6, 1);
    auto xq = clustered_data(300, d, 40, 6, 2);
    std::unique_ptr<faiss::Index> idx(
            faiss_ehi::index_factory(d, "EHI16x1,SQ8", faiss::METRIC_L2));
    auto* index = dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(idx.get());
    ASSERT_NE(index, nullptr);
    index->train(4000, xb.data());
    index->add(4000, xb.data());
    index->nprobe = 4;
    ASSERT_TRUE(index->code_norms().valid_for(*index));
    faiss::IDSelectorRange sel(0, 2000);
    faiss::SearchParametersIVF with_sel;
    with_sel.nprobe = 4;
    with_sel.sel = &sel;
    std::vector<float> xq16(xq.begin(), xq.begin() + 16 * d);
    auto run = [&](int what) {
        switch (what) {
            case 0:
                return search(*index, xq, 10); // list-major (300 >= 256)
            case 1:
                return search(*index, xq16, 10); // query by query
            default:
                return search(*index, xq, 10, &with_sel);
        }
    };
    std::vector<Result> ref;
    faiss::RangeSearchResult ref_range(16);
    {
        faiss_ehi::OmpThreadScope o(1);
        for (int w = 0; w < 3; w++) {
            ref.push_back(run(w));
        }
        index->range_search(16, xq16.data(), ref[1].D[5], &ref_range);
    }
    expect_same_concurrently(6, 4, [&](int t, int r) {
        int w = (t + r) % 4;
        if (w < 3) {
            return bit_identical(run(w), ref[w]);
        }
        faiss::RangeSearchResult rr(16);
        index->range_search(16, xq16.data(), ref[1].D[5], &rr);
        return rr.lims[16] == ref_range.lims[16] &&
                std::equal(rr.labels, rr.labels + rr.lims[16],
                           ref_range.labels);
    });
}

TEST(Threads, ConcurrentTreeRouting) {
    faiss_ehi::EHITree tree(4, 3, 12, NodeForm::PAPER);
    tree.init_random(9);
    auto u = gaussian_data(100, 12, 10);
    std::vector<idx_t> ref(100 * 8);
    std::vector<float> refp(100 * 8);
    tree.route(100, u.data(), 8, ref.data(), refp.data());
    expect_same_concurrently(4, 5, [&](int t, int r) {
        std::vector<idx_t> l(100 * 8);
        std::vector<float> p(100 * 8);
        tree.route(100, u.data(), 8, l.data(), p.data(),
                   (t + r) % 2 ? -1 : int(faiss_ehi::BeamStrategy::BEST_FIRST));
        return l == ref && p == refp;
    });
}
