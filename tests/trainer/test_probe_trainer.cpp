/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// ProbeTrainer (learned probing of a GROUPED tree over flat k-means leaves,
// multi-label kNN targets, early stopping on held-out budget recall) and
// the default TorchTreeTrainer recipe built on it.
#include <gtest/gtest.h>

#include <faiss/impl/FaissException.h>

#include "test_helpers.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/EHITreeKMeansInit.h>
#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/ProbeCalibration.h>
#include <faiss_ehi/TreeTrainer.h>
#include <faiss_ehi/index_factory.h>
#include <faiss_ehi/trainer/ProbeTrainer.h>
#include <faiss_ehi/trainer/TorchTreeTrainer.h>

#include "contrib/data/ground_truth.h"
#include "contrib/data/metrics.h"
#include "visited_curve.h"
#include "contrib/data/synthetic.h"

using faiss_ehi::EHITree;
using faiss_ehi::EHITreeKMeansInit;
using faiss_ehi::EHITreeQuantizer;
using faiss_ehi::idx_t;
using faiss_ehi::IndexEHITree;
using faiss_ehi::KnnSample;
using faiss_ehi::NodeForm;
using faiss_ehi::trainer::ProbeTrainer;
using faiss_ehi::trainer::ProbeTrainerStats;

namespace {

using ehi_test::skewed_data;
using ehi_test::SkewedData;

/// A KnnSample of external queries: their exact neighbours among xb.
KnnSample sample_of(const SkewedData& s, const std::vector<float>& xq) {
    KnnSample o;
    o.d = s.d;
    o.k = s.k;
    o.nq = idx_t(xq.size() / s.d);
    o.rows.resize(o.nq);
    std::iota(o.rows.begin(), o.rows.end(), idx_t(0));
    o.queries = xq;
    o.neighbors = faiss_ehi::data::exact_knn(s.d, s.nb, s.xb.data(), o.nq,
                                             xq.data(), s.k);
    return o;
}

/// The flat-leaf k-means start and where it files the documents.
struct FlatStart {
    EHITree tree;
    std::vector<float> centroids;
    std::vector<idx_t> doc_leaf;
};

FlatStart flat_start(const SkewedData& s, int B, int H) {
    FlatStart f;
    f.tree = EHITree(B, H, s.d, NodeForm::PER_NODE);
    EHITreeKMeansInit init;
    init.flat_leaves = true;
    init.init(f.tree, s.nb, s.xb.data(), faiss::METRIC_L2, &f.centroids);
    faiss::IndexFlatL2 reps(s.d);
    reps.add(f.tree.nleaves(), f.centroids.data());
    f.doc_leaf.resize(s.nb);
    std::vector<float> dis(s.nb);
    reps.search(s.nb, s.xb.data(), 1, dis.data(), f.doc_leaf.data());
    return f;
}

bool same_weights(const EHITree& a, const EHITree& b) {
    auto eq = [](const std::vector<std::vector<float>>& x,
                 const std::vector<std::vector<float>>& y) {
        if (x.size() != y.size()) {
            return false;
        }
        for (size_t i = 0; i < x.size(); i++) {
            if (x[i].size() != y[i].size() ||
                (!x[i].empty() &&
                 std::memcmp(x[i].data(), y[i].data(),
                             x[i].size() * sizeof(float)) != 0)) {
                return false;
            }
        }
        return true;
    };
    return eq(a.node_W, b.node_W) && eq(a.node_b, b.node_b) && eq(a.W, b.W) &&
            eq(a.U, b.U) && eq(a.bias, b.bias);
}

/// The tree with Gaussian noise of std `noise` on its leaf biases.
EHITree damage(const EHITree& t, float noise, uint64_t seed) {
    EHITree o = t;
    ehi_test::Rng rng(seed);
    for (float& b : o.node_b[o.H - 1]) {
        b += noise * float(rng.normal());
    }
    return o;
}

double mean(const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

/// Restores the registered tree trainer at scope exit.
struct TrainerScope {
    std::shared_ptr<faiss_ehi::TreeTrainer> prev =
            faiss_ehi::get_tree_trainer();
    ~TrainerScope() {
        faiss_ehi::set_tree_trainer(prev);
    }
};

using ehi_test::recall_at;
using Curve = ehi_test::VisitedCurve;

Curve curve(const faiss::Index& index, const SkewedData& s,
            const std::vector<int>& nprobes) {
    return ehi_test::measure_curve(dynamic_cast<const faiss::IndexIVF&>(index),
                                   s.ntest, s.xtest.data(), s.k,
                                   s.gt_test.data(), s.nb, nprobes);
}

} // namespace

// Training keeps the best held-out epoch (never below the start) and
// does not hurt unseen skewed queries.
TEST(TrainerProbe, HeldOutRecallNeverBelowStart) {
    SkewedData s = skewed_data(3000, 1500, 400, 21);
    FlatStart f = flat_start(s, 8, 2);
    KnnSample train = sample_of(s, s.xtrain);
    KnnSample test = sample_of(s, s.xtest);
    ProbeTrainer pt;
    pt.epochs = 6;
    pt.batch_size = 128;
    pt.learning_rate = 5e-3;
    pt.threads = 2;
    pt.seed = 5;
    EHITree learned = f.tree;
    ProbeTrainerStats st = pt.train(learned, train, f.doc_leaf.data(), s.nb);
    ASSERT_EQ(st.heldout_recall.size(), size_t(pt.epochs) + 1);
    ASSERT_EQ(st.train_loss.size(), size_t(pt.epochs));
    EXPECT_EQ(st.n_heldout, idx_t(0.2 * 1500));
    EXPECT_EQ(st.n_train + st.n_heldout, 1500);
    ASSERT_GE(st.best_epoch, 0);
    ASSERT_LE(st.best_epoch, pt.epochs);
    double best = st.heldout_recall[st.best_epoch];
    EXPECT_GE(best, st.heldout_recall[0]);
    EXPECT_EQ(best,
              *std::max_element(st.heldout_recall.begin(),
                                st.heldout_recall.end()));
    EXPECT_LT(st.train_loss.back(), st.train_loss.front());
    // the start is returned unchanged when no epoch beat it
    EXPECT_EQ(same_weights(learned, f.tree), st.best_epoch == 0);
    EXPECT_EQ(learned.strategy, faiss_ehi::BeamStrategy::GROUPED);
    EXPECT_NO_THROW(learned.check_consistent());

    // unseen test queries: at least as good as the start (small tolerance)
    double r0 = mean(faiss_ehi::budget_recall(f.tree, test, f.doc_leaf.data(),
                                              s.nb, pt.budgets));
    double r1 = mean(faiss_ehi::budget_recall(learned, test, f.doc_leaf.data(),
                                              s.nb, pt.budgets));
    std::printf("ProbeTrainer: held-out %.4f -> %.4f (best epoch %d), test "
                "budget recall %.4f -> %.4f\n",
                st.heldout_recall[0], best, st.best_epoch, r0, r1);
    EXPECT_GE(r1, r0 - 0.01);
}

// From a damaged start (noise on the leaf biases) training recovers: a
// later epoch wins on held-out queries and on unseen ones, and the weights
// returned are exactly those of that epoch (a run stopped there gives them).
TEST(TrainerProbe, LearnsFromADamagedStartAndKeepsTheBestEpoch) {
    SkewedData s = skewed_data(3000, 1500, 400, 25);
    FlatStart f = flat_start(s, 8, 2);
    KnnSample train = sample_of(s, s.xtrain);
    KnnSample test = sample_of(s, s.xtest);
    EHITree damaged = damage(f.tree, 10.0f, 99);
    ProbeTrainer pt;
    pt.epochs = 6;
    pt.batch_size = 128;
    pt.learning_rate = 0.2; // measured: best epoch 5 of 6
    pt.threads = 2;
    pt.seed = 8;
    EHITree learned = damaged;
    ProbeTrainerStats st = pt.train(learned, train, f.doc_leaf.data(), s.nb);
    ASSERT_EQ(st.heldout_recall.size(), size_t(pt.epochs) + 1);
    double best = st.heldout_recall[st.best_epoch];
    EXPECT_EQ(best,
              *std::max_element(st.heldout_recall.begin(),
                                st.heldout_recall.end()));
    EXPECT_GT(st.best_epoch, 0);
    EXPECT_GT(best, st.heldout_recall[0] + 0.02);
    double r0 = mean(faiss_ehi::budget_recall(damaged, test, f.doc_leaf.data(),
                                              s.nb, pt.budgets));
    double r1 = mean(faiss_ehi::budget_recall(learned, test, f.doc_leaf.data(),
                                              s.nb, pt.budgets));
    std::printf("ProbeTrainer from a damaged start: held-out %.4f -> %.4f "
                "(best epoch %d), test %.4f -> %.4f\n",
                st.heldout_recall[0], best, st.best_epoch, r0, r1);
    EXPECT_GT(r1, r0 + 0.02);

    // a run of best_epoch epochs ends on the same weights
    if (st.best_epoch > 0) {
        ProbeTrainer stop = pt;
        stop.epochs = st.best_epoch;
        EHITree stopped = damaged;
        ProbeTrainerStats ss =
                stop.train(stopped, train, f.doc_leaf.data(), s.nb);
        EXPECT_EQ(ss.best_epoch, st.best_epoch);
        EXPECT_TRUE(same_weights(stopped, learned));
    }
}

// Same seed and thread count: bit-identical weights and statistics.
TEST(TrainerProbe, DeterministicForFixedSeed) {
    SkewedData s = skewed_data(2000, 800, 10, 22);
    FlatStart f = flat_start(s, 4, 2);
    KnnSample train = sample_of(s, s.xtrain);
    ProbeTrainer pt;
    pt.epochs = 3;
    pt.batch_size = 64;
    pt.threads = 2;
    pt.seed = 17;
    pt.learning_rate = 1e-2;
    const EHITree start = damage(f.tree, 10.0f, 7);
    EHITree a = start, b = start;
    ProbeTrainerStats sa = pt.train(a, train, f.doc_leaf.data(), s.nb);
    ProbeTrainerStats sb = pt.train(b, train, f.doc_leaf.data(), s.nb);
    EXPECT_TRUE(same_weights(a, b));
    EXPECT_EQ(sa.heldout_recall, sb.heldout_recall);
    EXPECT_EQ(sa.train_loss, sb.train_loss);
    EXPECT_EQ(sa.best_epoch, sb.best_epoch);
    // the run did train, and kept a trained epoch
    EXPECT_NE(sa.train_loss.front(), sa.train_loss.back());
    EXPECT_GT(sa.best_epoch, 0);
    EXPECT_FALSE(same_weights(a, start));
}

TEST(TrainerProbe, BadInputsThrow) {
    SkewedData s = skewed_data(600, 100, 1, 23);
    FlatStart f = flat_start(s, 4, 2);
    KnnSample train = sample_of(s, s.xtrain);
    const idx_t* dl = f.doc_leaf.data();
    ProbeTrainer pt;
    pt.epochs = 1;
    pt.threads = 2;
    EHITree t = f.tree;
    // untrained tree, paper form
    EHITree untrained(4, 2, s.d, NodeForm::PER_NODE);
    EXPECT_THROW(pt.train(untrained, train, dl, s.nb), faiss::FaissException);
    EHITree paper(4, 2, s.d, NodeForm::PAPER);
    paper.init_random(3);
    ASSERT_TRUE(paper.is_trained);
    EXPECT_THROW(pt.train(paper, train, dl, s.nb), faiss::FaissException);
    // too few queries, another dimension, no document leaves
    KnnSample one = train;
    one.nq = 1;
    one.rows.resize(1);
    one.queries.resize(s.d);
    one.neighbors.resize(one.k);
    EXPECT_THROW(pt.train(t, one, dl, s.nb), faiss::FaissException);
    KnnSample other_d = train;
    other_d.d = s.d + 1;
    EXPECT_THROW(pt.train(t, other_d, dl, s.nb), faiss::FaissException);
    EXPECT_THROW(pt.train(t, train, nullptr, s.nb), faiss::FaissException);
    EXPECT_THROW(pt.train(t, train, dl, 0), faiss::FaissException);
    // a document leaf out of range
    for (idx_t bad : {idx_t(-1), t.nleaves()}) {
        std::vector<idx_t> wrong = f.doc_leaf;
        wrong[7] = bad;
        EXPECT_THROW(pt.train(t, train, wrong.data(), s.nb),
                     faiss::FaissException)
                << "leaf " << bad;
    }
    // a neighbour id outside the documents, arrays of the wrong size
    for (idx_t bad : {idx_t(-2), s.nb, s.nb + 100000000}) {
        KnnSample wrong = train;
        wrong.neighbors[3] = bad;
        EXPECT_THROW(pt.train(t, wrong, dl, s.nb), faiss::FaissException)
                << "neighbour " << bad;
    }
    {
        KnnSample cut = train;
        cut.neighbors.resize(10);
        cut.queries.resize(10);
        EXPECT_THROW(pt.train(t, cut, dl, s.nb), faiss::FaissException);
    }
    // bad parameters
    auto with = [&](auto set) {
        ProbeTrainer p = pt;
        set(p);
        EXPECT_THROW(p.train(t, train, dl, s.nb), faiss::FaissException);
    };
    with([](ProbeTrainer& p) { p.epochs = -1; });
    with([](ProbeTrainer& p) { p.batch_size = 0; });
    with([](ProbeTrainer& p) { p.learning_rate = 0; });
    with([](ProbeTrainer& p) {
        p.learning_rate = std::numeric_limits<double>::quiet_NaN();
    });
    with([](ProbeTrainer& p) { p.holdout = 0; });
    with([](ProbeTrainer& p) { p.holdout = 1; });
    with([](ProbeTrainer& p) { p.budgets.clear(); });
    // the tree was left alone
    EXPECT_TRUE(same_weights(t, f.tree));
    // and the good inputs do train
    EXPECT_NO_THROW(pt.train(t, train, dl, s.nb));
}

// The default TorchTreeTrainer (flat leaves, learned probing, calibration)
// through the factory: no empty leaf, and at a fixed share of documents
// visited at least the recall of the k-means-only trainer.
TEST(TrainerTorchTreeTrainer, FlatLeavesDefaultMatchesKMeansAtEqualVisited) {
    TrainerScope restore;
    SkewedData s = skewed_data(3000, 1, 500, 24);
    const std::vector<int> nprobes = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48};
    std::vector<Curve> curves;
    std::vector<std::vector<float>> leaves;
    for (bool torch : {false, true}) {
        SCOPED_TRACE(torch ? "torch" : "k-means");
        if (torch) {
            auto t = std::make_shared<faiss_ehi::trainer::TorchTreeTrainer>();
            EXPECT_TRUE(t->kmeans.flat_leaves);
            t->probe.threads = 2;
            t->probe.seed = 3;
            t->n_queries = 1500;
            t->probe.epochs = 8;
            t->calib_queries = 1000;
            faiss_ehi::set_tree_trainer(t);
        } else {
            auto t = std::make_shared<faiss_ehi::KMeansTreeTrainer>();
            EXPECT_TRUE(t->flat_leaves);
            EXPECT_TRUE(t->calibrate);
            t->calib_queries = 1000;
            faiss_ehi::set_tree_trainer(t);
        }
        std::unique_ptr<faiss::Index> index(
                faiss_ehi::index_factory(s.d, "EHI16x2"));
        index->train(s.nb, s.xb.data());
        ASSERT_TRUE(index->is_trained);
        index->add(s.nb, s.xb.data());
        auto* e = dynamic_cast<IndexEHITree*>(index.get());
        ASSERT_NE(e, nullptr);
        const EHITreeQuantizer* q = e->tree_quantizer();
        EXPECT_EQ(q->tree.strategy, faiss_ehi::BeamStrategy::GROUPED);
        EXPECT_TRUE(q->assign_nearest);
        EXPECT_FALSE(q->tree.group_expansion.empty());
        idx_t empty = 0;
        for (size_t l = 0; l < e->nlist; l++) {
            empty += e->invlists->list_size(l) == 0;
        }
        EXPECT_EQ(empty, 0) << "empty leaves";
        if (torch) {
            auto t = std::dynamic_pointer_cast<
                    faiss_ehi::trainer::TorchTreeTrainer>(
                    faiss_ehi::get_tree_trainer());
            const ProbeTrainerStats& st = t->last_probe_stats;
            ASSERT_FALSE(st.heldout_recall.empty());
            EXPECT_GE(st.heldout_recall[st.best_epoch], st.heldout_recall[0]);
        }
        curves.push_back(curve(*index, s, nprobes));
        leaves.push_back(q->leaf_representatives);
    }
    // the same k-means leaves: only the probing differs
    EXPECT_EQ(leaves[0], leaves[1]);
    const Curve &km = curves[0], &tt = curves[1];
    for (size_t i = 0; i < nprobes.size(); i++) {
        std::printf("nprobe %2d: k-means %.4f @ %.2f%%, torch %.4f @ "
                    "%.2f%%\n",
                    nprobes[i], km.recall[i], 100 * km.visited[i], tt.recall[i],
                    100 * tt.visited[i]);
    }
    for (double v : {0.01, 0.02, 0.05}) {
        double a = recall_at(km, v), b = recall_at(tt, v);
        std::printf("at %.0f%% visited: k-means %.4f, torch %.4f\n", 100 * v, a,
                    b);
        EXPECT_GE(b, a - 0.02) << "visited " << v;
    }
}

// Multi-label targets on a hand-made case: 3 queries, k = 4, six documents
// in leaves 0 0 1 2 2 2 (L = 4); a missing neighbour (-1) is skipped.
TEST(TrainerProbe, MultiLabelTargetsHandMade) {
    KnnSample s;
    s.nq = 3;
    s.k = 4;
    s.d = 1;
    s.rows = {0, 1, 2};
    s.queries = {0.f, 1.f, 2.f};
    s.neighbors = {0, 1, 2, 3,  // leaves 0 0 1 2
                   3, 4, 5, -1, // leaves 2 2 2, one missing
                   2, 2, 0, 5}; // leaves 1 1 0 2
    const idx_t doc_leaf[6] = {0, 0, 1, 2, 2, 2};
    const idx_t ids[3] = {2, 0, 1}; // rows in this order
    std::vector<float> t = ProbeTrainer::targets(s, ids, 3, doc_leaf, 4);
    const std::vector<float> want = {0.25f, 0.5f,  0.25f, 0.f,  // query 2
                                     0.5f,  0.25f, 0.25f, 0.f,  // query 0
                                     0.f,   0.f,   1.f,   0.f}; // query 1
    ASSERT_EQ(t.size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {
        EXPECT_FLOAT_EQ(t[i], want[i]) << "entry " << i;
    }
}
