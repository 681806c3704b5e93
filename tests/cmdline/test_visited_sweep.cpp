/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// The upper envelope of several sweeps (bench_visited's "best nlist"
// baseline), on hand-made points; the per-query values that the paired
// comparisons of the relevance benches read, on a hand-made task.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include "cmdline/visited_sweep.h"

using ehi_cmdline::VisitedPoint;

namespace {

VisitedPoint point(double visited, double recall) {
    VisitedPoint p;
    p.visited = visited;
    p.metrics["recall@100"] = recall;
    return p;
}

} // namespace

TEST(VisitedSweep, UpperEnvelopeKeepsTheBestForEachBudget) {
    // coarse lists: better at small budgets; fine lists: better later;
    // a dip (more visited, lower recall) is never on the envelope
    std::vector<VisitedPoint> coarse = {point(0.10, 0.50), point(0.20, 0.60),
                                        point(0.40, 0.58), point(1.00, 0.70)};
    std::vector<VisitedPoint> fine = {point(0.05, 0.30), point(0.10, 0.55),
                                      point(0.15, 0.65), point(0.50, 0.68)};
    auto env = ehi_cmdline::upper_envelope({&coarse, &fine}, "recall@100");
    std::vector<double> v, r;
    for (const auto& p : env) {
        v.push_back(p.visited);
        r.push_back(p.metrics.at("recall@100"));
    }
    EXPECT_EQ(v, (std::vector<double>{0.05, 0.10, 0.15, 0.50, 1.00}));
    EXPECT_EQ(r, (std::vector<double>{0.30, 0.55, 0.65, 0.68, 0.70}));

    // at a budget between two envelope points: interpolated like a curve
    auto at = ehi_cmdline::at_visited(env, {0.10, 0.30});
    EXPECT_DOUBLE_EQ(at[0].metrics.at("recall@100"), 0.55);
    EXPECT_GT(at[1].metrics.at("recall@100"), 0.65);
    EXPECT_LT(at[1].metrics.at("recall@100"), 0.68);
}

TEST(VisitedSweep, UpperEnvelopeStaysFlatAfterItsBestPoint) {
    // the best point comes early: a larger budget can still use it
    std::vector<VisitedPoint> a = {point(0.10, 0.80), point(0.50, 0.75),
                                   point(1.00, 0.70)};
    auto env = ehi_cmdline::upper_envelope({&a}, "recall@100");
    ASSERT_EQ(env.size(), 2u);
    EXPECT_EQ(env[1].visited, 1.00);
    EXPECT_EQ(env[1].metrics.at("recall@100"), 0.80);
    auto at = ehi_cmdline::at_visited(env, {0.20, 1.0});
    EXPECT_DOUBLE_EQ(at[0].metrics.at("recall@100"), 0.80);
    EXPECT_DOUBLE_EQ(at[1].metrics.at("recall@100"), 0.80);
    EXPECT_TRUE(ehi_cmdline::upper_envelope({}, "recall@100").empty());
}

namespace {

double mean(const std::vector<double>& v) {
    return v.empty() ? 0.0
                     : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

} // namespace

TEST(VisitedSweep, PerQueryValuesAreReadBetweenTheSameSettings) {
    // two queries; query 0 gains between 10% and 40% visited, query 1
    // only between 40% and 100%
    auto with_queries = [](double visited, std::vector<double> q) {
        VisitedPoint p = point(visited, mean(q));
        p.per_query["recall@100"] = q;
        return p;
    };
    std::vector<VisitedPoint> sweep = {with_queries(0.10, {0.0, 0.5}),
                                       with_queries(0.40, {1.0, 0.5}),
                                       with_queries(1.00, {1.0, 1.0})};
    auto at = ehi_cmdline::at_visited(sweep, {0.20, 0.40, 1.0, 0.05});
    // at 20%: log(0.2 / 0.1) / log(0.4 / 0.1) = 1/2 of the way
    ASSERT_EQ(at[0].per_query.at("recall@100").size(), 2u);
    EXPECT_DOUBLE_EQ(at[0].per_query.at("recall@100")[0], 0.5);
    EXPECT_DOUBLE_EQ(at[0].per_query.at("recall@100")[1], 0.5);
    for (size_t i = 0; i < 3; i++) {
        EXPECT_NEAR(mean(at[i].per_query.at("recall@100")),
                    at[i].metrics.at("recall@100"), 1e-12);
    }
    EXPECT_EQ(at[1].per_query.at("recall@100"),
              (std::vector<double>{1.0, 0.5}));
    EXPECT_EQ(at[2].per_query.at("recall@100"),
              (std::vector<double>{1.0, 1.0}));
    // below the sweep: no value, no per-query values
    EXPECT_TRUE(std::isnan(at[3].metrics.at("recall@100")));
    EXPECT_TRUE(at[3].per_query.empty());

    // two settings at the same budget: the better one, for each query too
    std::vector<VisitedPoint> tie = {with_queries(0.20, {1.0, 0.0}),
                                     with_queries(0.20, {1.0, 1.0}),
                                     with_queries(0.40, {0.0, 0.0})};
    auto t = ehi_cmdline::at_visited(tie, {0.20});
    EXPECT_EQ(t[0].per_query.at("recall@100"),
              (std::vector<double>{1.0, 1.0}));
    EXPECT_DOUBLE_EQ(t[0].metrics.at("recall@100"), 1.0);
}

TEST(VisitedSweep, SweepScoresEachQueryOfARelevanceTask) {
    // 1-d documents 0..199 in two lists (centroids 50 and 150); query 0
    // sits at 95 (list 0) and is relevant to documents 60 and 120, query 1
    // sits at 197 (list 1) and is relevant to document 199
    faiss_ehi::data::RetrievalTask t;
    t.d = 1;
    t.nd = 200;
    t.nq_test = 2;
    t.test_relevant = {{{60, 1}, {120, 1}}, {{199, 2}}};
    std::vector<float> docs(200);
    std::iota(docs.begin(), docs.end(), 0.0f);
    std::vector<float> q = {95.0f, 197.0f};
    faiss::IndexFlatL2 coarse(1);
    faiss::IndexIVFFlat ivf(&coarse, 1, 2);
    std::vector<float> centroids = {50.0f, 150.0f};
    coarse.add(2, centroids.data());
    ivf.is_trained = true;
    ivf.add(200, docs.data());

    auto sweep = ehi_cmdline::sweep_nprobe(ivf, q.data(), t, {1, 2});
    ASSERT_EQ(sweep.size(), 2u);
    // one list: query 0 sees documents 0..99 only
    EXPECT_EQ(sweep[0].per_query.at("recall@100"),
              (std::vector<double>{0.5, 1.0}));
    // both lists: its 100 nearest (about 45..145) hold both
    EXPECT_EQ(sweep[1].per_query.at("recall@100"),
              (std::vector<double>{1.0, 1.0}));
    for (const auto& p : sweep) {
        EXPECT_DOUBLE_EQ(mean(p.per_query.at("recall@100")),
                         p.metrics.at("recall@100"));
        EXPECT_DOUBLE_EQ(mean(p.per_query.at("ndcg@10")),
                         p.metrics.at("ndcg@10"));
        ASSERT_EQ(p.per_query.at("ndcg@10").size(), 2u);
        // query 1's document is 2 away: 4th or 5th, as ties fall
        EXPECT_GT(p.per_query.at("ndcg@10")[1], 0.38);
        EXPECT_LT(p.per_query.at("ndcg@10")[1], 0.44);
    }

    // k-NN tasks carry no per-query values
    t.is_knn = true;
    t.k_gt = 10;
    t.test_gt.assign(20, 0);
    auto knn = ehi_cmdline::sweep_nprobe(ivf, q.data(), t, {1});
    EXPECT_TRUE(knn[0].per_query.empty());
}
