/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// The upper envelope of several sweeps (bench_visited's "best nlist"
// baseline), on hand-made points.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

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
