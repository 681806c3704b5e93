/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Every bad input raises faiss::FaissException with a useful message.
 */
#include "test_helpers.h"

#include <limits>

#include <faiss/IndexIVF.h>

using namespace ehi_test;
using faiss_ehi::EHITree;
using faiss_ehi::EHITreeQuantizer;
using faiss_ehi::IndexEHITree;
using faiss_ehi::NodeForm;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

std::unique_ptr<IndexEHITree> small_index(int d2l = 1) {
    auto xb = gaussian_data(500, 8, 1);
    auto index = random_tree_index(8, 3, 2, faiss::METRIC_L2, xb, 2);
    index->d2l = d2l;
    index->add(500, xb.data());
    return index;
}

} // namespace

class NonFiniteAdd : public ::testing::TestWithParam<float> {};

TEST_P(NonFiniteAdd, Throws) {
    auto index = small_index();
    auto x = gaussian_data(20, 8, 3);
    x[13 * 8 + 5] = GetParam();
    idx_t before = index->ntotal;
    std::string msg = faiss_error([&] { index->add(20, x.data()); });
    EXPECT_TRUE(contains_any(msg, {"nan", "inf", "finite"})) << msg;
    auto ids = make_ids(20, 10000, 1);
    msg = faiss_error([&] { index->add_with_ids(20, x.data(), ids.data()); });
    EXPECT_TRUE(contains_any(msg, {"nan", "inf", "finite"})) << msg;
    EXPECT_EQ(index->ntotal, before) << "a failed add changed the index";
    size_t total = 0;
    for (size_t l = 0; l < index->nlist; l++) {
        total += index->invlists->list_size(l);
    }
    EXPECT_EQ(total, size_t(before));
}

TEST_P(NonFiniteAdd, ThrowsWithD2l) {
    auto index = small_index(2);
    auto x = gaussian_data(20, 8, 3);
    x[7] = GetParam();
    std::string msg = faiss_error([&] { index->add(20, x.data()); });
    EXPECT_FALSE(msg.empty());
    EXPECT_EQ(index->ntotal, 500);
}

TEST_P(NonFiniteAdd, TrainThrows) {
    KMeansTrainerScope trainer;
    auto xt = gaussian_data(2000, 8, 4);
    xt[1234] = GetParam();
    IndexEHITree index(8, 3, 2);
    std::string msg = faiss_error([&] { index.train(2000, xt.data()); });
    EXPECT_TRUE(contains_any(msg, {"nan", "inf", "finite"})) << msg;
    EXPECT_FALSE(index.is_trained);
    // the quantizer alone, both forms
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        EHITreeQuantizer q(8, 3, 2, faiss::METRIC_L2, form);
        msg = faiss_error([&] { q.train(2000, xt.data()); });
        EXPECT_FALSE(msg.empty());
    }
}

TEST_P(NonFiniteAdd, ComputeRepresentativesThrows) {
    auto xt = gaussian_data(2000, 8, 4);
    xt[1234] = GetParam();
    EHITreeQuantizer q(8, 3, 2);
    q.tree.init_random(1);
    std::string msg =
            faiss_error([&] { q.compute_representatives(2000, xt.data()); });
    EXPECT_TRUE(contains_any(msg, {"nan", "inf", "finite"})) << msg;
    EXPECT_TRUE(q.leaf_representatives.empty() ||
                std::all_of(q.leaf_representatives.begin(),
                            q.leaf_representatives.end(),
                            [](float v) { return std::isfinite(v); }))
            << "non-finite leaf representatives";
}

INSTANTIATE_TEST_SUITE_P(Values, NonFiniteAdd,
                         ::testing::Values(kNaN, kInf, -kInf),
                         [](const ::testing::TestParamInfo<float>& info) {
                             return std::string(std::isnan(info.param) ? "NaN"
                                                        : info.param > 0
                                                        ? "PlusInf"
                                                        : "MinusInf");
                         });

TEST(Errors, NonPositiveK) {
    auto index = small_index();
    auto xq = gaussian_data(3, 8, 5);
    std::vector<float> D(30);
    std::vector<idx_t> I(30);
    for (idx_t k : {idx_t(0), idx_t(-1)}) {
        std::string msg = faiss_error(
                [&] { index->search(3, xq.data(), k, D.data(), I.data()); });
        EXPECT_FALSE(msg.empty()) << "k = " << k;
    }
    // the quantizer alone: beam 0
    std::string msg = faiss_error([&] {
        index->quantizer->search(3, xq.data(), 0, D.data(), I.data());
    });
    EXPECT_FALSE(msg.empty());
}

TEST(Errors, ZeroNprobe) {
    auto index = small_index();
    auto xq = gaussian_data(3, 8, 5);
    std::vector<float> D(30);
    std::vector<idx_t> I(30);
    index->nprobe = 0;
    std::string msg = faiss_error(
            [&] { index->search(3, xq.data(), 10, D.data(), I.data()); });
    EXPECT_TRUE(contains_any(msg, {"nprobe", "beam"})) << msg;
    faiss::RangeSearchResult res(3);
    msg = faiss_error([&] { index->range_search(3, xq.data(), 1.0f, &res); });
    EXPECT_FALSE(msg.empty());
    // per call
    index->nprobe = 4;
    faiss::SearchParametersIVF params;
    params.nprobe = 0;
    msg = faiss_error([&] {
        index->search(3, xq.data(), 10, D.data(), I.data(), &params);
    });
    EXPECT_TRUE(contains_any(msg, {"nprobe", "beam"})) << msg;
}

TEST(Errors, UntrainedIndex) {
    IndexEHITree index(8, 3, 2);
    EXPECT_FALSE(index.is_trained);
    auto x = gaussian_data(10, 8, 6);
    std::string msg = faiss_error([&] { index.add(10, x.data()); });
    EXPECT_TRUE(contains_any(msg, {"train"})) << msg;
    std::vector<float> D(10);
    std::vector<idx_t> I(10);
    msg = faiss_error(
            [&] { index.search(1, x.data(), 10, D.data(), I.data()); });
    EXPECT_TRUE(contains_any(msg, {"train"})) << msg;
    // the quantizer alone
    EHITreeQuantizer q(8, 3, 2);
    msg = faiss_error([&] { q.search(1, x.data(), 2, D.data(), I.data()); });
    EXPECT_FALSE(msg.empty());
    // routing an untrained tree
    EHITree t(3, 2, 8);
    msg = faiss_error([&] { t.route(1, x.data(), 2, I.data(), D.data()); });
    EXPECT_FALSE(msg.empty());
}

TEST(Errors, D2lOutOfRange) {
    auto xb = gaussian_data(100, 8, 7);
    auto index = random_tree_index(8, 3, 2, faiss::METRIC_L2, xb, 8);
    for (int d2l : {0, -1, 10}) {
        index->d2l = d2l;
        std::string msg = faiss_error([&] { index->add(100, xb.data()); });
        EXPECT_TRUE(contains_any(msg, {"d2l"})) << "d2l " << d2l << ": " << msg;
        EXPECT_EQ(index->ntotal, 0);
    }
    index->d2l = 9; // B^H is allowed
    EXPECT_NO_THROW(index->add(100, xb.data()));
    EXPECT_EQ(index->ntotal, 100);
}

TEST(Errors, TrainWithoutTrainer) {
    NoTrainerScope none;
    EXPECT_EQ(faiss_ehi::get_tree_trainer(), nullptr);
    auto xt = gaussian_data(1000, 8, 9);
    IndexEHITree index(8, 3, 2);
    std::string msg = faiss_error([&] { index.train(1000, xt.data()); });
    EXPECT_TRUE(contains_any(msg, {"faiss_ehi::trainer", "set_tree_trainer"}))
            << msg;
    EXPECT_FALSE(index.is_trained);
    // through the factory as well
    std::unique_ptr<faiss::Index> f(faiss_ehi::index_factory(8, "EHI3x2,SQ8"));
    msg = faiss_error([&] { f->train(1000, xt.data()); });
    EXPECT_TRUE(contains_any(msg, {"faiss_ehi::trainer", "set_tree_trainer"}))
            << msg;
    // registering the trainer makes it work
    faiss_ehi::set_tree_trainer(
            std::make_shared<faiss_ehi::KMeansTreeTrainer>());
    ASSERT_NE(faiss_ehi::get_tree_trainer(), nullptr);
    EXPECT_FALSE(faiss_ehi::get_tree_trainer()->name().empty());
    index.train(1000, xt.data());
    EXPECT_TRUE(index.is_trained);
}

TEST(Errors, PresetTreeTrainsWithoutTrainer) {
    // a tree whose parameters are set needs no trainer: train() only
    // computes the leaf representatives
    NoTrainerScope none;
    auto xt = gaussian_data(500, 8, 10);
    auto* q = new EHITreeQuantizer(8, 3, 2);
    q->tree.init_random(3);
    IndexEHITree index(q, faiss::METRIC_L2);
    EXPECT_NO_THROW(index.train(500, xt.data()));
    EXPECT_TRUE(index.is_trained);
    EXPECT_EQ(q->leaf_representatives.size(), size_t(9 * 8));
}

TEST(Errors, RouteWithZeroBeam) {
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        EHITree t(3, 2, 4, form);
        t.init_random(1);
        auto u = gaussian_data(2, 4, 2);
        idx_t leaves[4];
        float probs[4];
        for (int s : {-1, 0, 1}) {
            std::string msg = faiss_error(
                    [&] { t.route(2, u.data(), 0, leaves, probs, s); });
            EXPECT_FALSE(msg.empty());
        }
        std::string msg =
                faiss_error([&] { t.route(2, u.data(), -3, leaves, probs); });
        EXPECT_FALSE(msg.empty());
    }
}

TEST(Errors, QuantizerTreeDimensionMismatch) {
    auto x = gaussian_data(200, 8, 11);
    // the quantizer alone
    {
        EHITreeQuantizer q(8, 3, 2);
        q.tree = EHITree(3, 2, 16);
        q.tree.init_random(1);
        q.leaf_representatives.assign(9 * 8, 0.0f);
        std::vector<float> D(4);
        std::vector<idx_t> I(4);
        std::string msg = faiss_error([&] {
            q.update_is_trained();
            q.search(2, x.data(), 2, D.data(), I.data());
        });
        EXPECT_FALSE(msg.empty());
        msg = faiss_error([&] { q.train(200, x.data()); });
        EXPECT_FALSE(msg.empty());
    }
    // in an index
    std::string msg = faiss_error([&] {
        // Owned here until the index accepts it: the constructor may be
        // the one that throws.
        auto q = std::make_unique<EHITreeQuantizer>(8, 3, 2);
        q->tree = EHITree(3, 2, 16);
        q->tree.init_random(1);
        q->leaf_representatives.assign(9 * 8, 0.0f);
        q->is_trained = true;
        IndexEHITree index(q.get(), faiss::METRIC_L2);
        q.release(); // the index owns it now
        index.train(200, x.data());
        index.add(200, x.data());
        std::vector<float> D(10);
        std::vector<idx_t> I(10);
        index.search(1, x.data(), 10, D.data(), I.data());
    });
    EXPECT_TRUE(contains_any(msg, {"m =", "tree.m", "d ="})) << msg;
}

TEST(Errors, QuantizerTreeDimensionMismatchAtAdd) {
    auto x = gaussian_data(200, 8, 11);
    {
        // a quantizer whose tree routes 16-d inputs cannot serve d = 8
        std::unique_ptr<EHITreeQuantizer> q(new EHITreeQuantizer(8, 3, 2));
        q->tree = EHITree(3, 2, 16);
        q->tree.init_random(1);
        std::string msg = faiss_error(
                [&] { IndexEHITree index(q.get(), faiss::METRIC_L2); });
        EXPECT_NE(msg.find("16-d"), std::string::npos) << msg;
    }
    // the tree replaced after construction: add must check tree.m == d
    // itself before routing
    auto* q = new EHITreeQuantizer(8, 3, 2);
    q->tree.init_random(1);
    q->leaf_representatives.assign(9 * 8, 0.0f);
    q->update_is_trained();
    IndexEHITree index(q, faiss::METRIC_L2);
    ASSERT_TRUE(index.is_trained);
    q->tree = EHITree(3, 2, 16);
    q->tree.init_random(1);
    for (int d2l : {1, 2}) {
        index.d2l = d2l;
        std::string msg = faiss_error([&] { index.add(200, x.data()); });
        EXPECT_FALSE(msg.empty()) << "d2l " << d2l;
        EXPECT_EQ(index.ntotal, 0);
    }
    std::vector<idx_t> lists(200 * index.d2l);
    std::string msg = faiss_error(
            [&] { index.assign_documents(200, x.data(), lists.data()); });
    EXPECT_FALSE(msg.empty());
}

TEST(Errors, BadTreeShapes) {
    EXPECT_THROW(EHITree(1, 3, 8), faiss::FaissException);
    EXPECT_THROW(EHITree(4, 0, 8), faiss::FaissException);
    EXPECT_THROW(EHITree(4, 2, 0), faiss::FaissException);
    EXPECT_THROW(EHITreeQuantizer(8, 1, 2), faiss::FaissException);
    EXPECT_THROW(IndexEHITree(8, 0, 2), faiss::FaissException);
}

TEST(Errors, BadTreeParameters) {
    // missing levels
    EHITree t(2, 2, 1, NodeForm::PER_NODE);
    float W0[2] = {1, -1};
    t.set_node_level(0, W0, nullptr);
    EXPECT_THROW(t.finalize(), faiss::FaissException);
    EXPECT_FALSE(t.is_trained);
    // non-finite weights
    float W1[4] = {0, kNaN, 0, 0};
    std::string msg = faiss_error([&] {
        t.set_node_level(1, W1, nullptr);
        t.finalize();
    });
    EXPECT_FALSE(msg.empty());
    // level out of range
    EXPECT_THROW(t.set_node_level(2, W1, nullptr), faiss::FaissException);
    EXPECT_THROW(t.set_node_level(-1, W1, nullptr), faiss::FaissException);
    EHITree p(2, 1, 1, NodeForm::PAPER);
    float U[1] = {0}, W[2] = {0, 0};
    EXPECT_THROW(p.set_paper_level(1, U, W), faiss::FaissException);
    // the wrong form's setter
    EXPECT_THROW(p.set_node_level(0, W, nullptr), faiss::FaissException);
    // inconsistent sizes
    EHITree q(2, 1, 1, NodeForm::PAPER);
    q.init_random(1);
    q.W[0].pop_back();
    EXPECT_THROW(q.check_consistent(), faiss::FaissException);
}

TEST(Errors, TooFewTrainingVectors) {
    KMeansTrainerScope trainer;
    // fewer vectors than B: no k-means possible
    auto xt = gaussian_data(3, 8, 12);
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        IndexEHITree index(8, 4, 2, faiss::METRIC_L2, form); // B = 4
        std::string msg = faiss_error([&] { index.train(3, xt.data()); });
        EXPECT_FALSE(msg.empty());
        EXPECT_FALSE(index.is_trained);
        msg = faiss_error([&] { index.train(0, xt.data()); });
        EXPECT_FALSE(msg.empty());
    }
}

TEST(Errors, FewerVectorsThanLeavesStillTrain) {
    // by design, under-populated nodes get distinct filler children
    KMeansTrainerScope trainer;
    auto xt = gaussian_data(10, 8, 12);
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        IndexEHITree index(8, 4, 2, faiss::METRIC_L2, form); // 16 leaves
        index.train(10, xt.data());
        EXPECT_TRUE(index.is_trained);
        index.add(10, xt.data());
        index.nprobe = 16;
        Result r = search(index, xt, 1);
        for (idx_t i = 0; i < 10; i++) {
            EXPECT_EQ(r.I[i], i);
        }
    }
}

TEST(Errors, AddToQuantizer) {
    auto index = small_index();
    auto x = gaussian_data(2, 8, 13);
    std::string msg = faiss_error([&] { index->quantizer->add(2, x.data()); });
    EXPECT_FALSE(msg.empty());
}

TEST(Errors, MergeIncompatible) {
    auto a = small_index();
    auto xb = gaussian_data(100, 8, 14);
    auto b = random_tree_index(8, 2, 3, faiss::METRIC_L2, xb, 15); // 8 leaves
    b->add(100, xb.data());
    EXPECT_THROW(a->merge_from(*b, 0), faiss::FaissException);
    faiss::IndexFlatL2 flat(8);
    EXPECT_THROW(a->merge_from(flat, 0), faiss::FaissException);
}

TEST(Errors, NonFiniteQueries) {
    auto index = small_index(2);
    auto xq = gaussian_data(4, 8, 15);
    xq[17] = kNaN;
    std::vector<float> D(40);
    std::vector<idx_t> I(40);
    std::string msg = faiss_error(
            [&] { index->search(4, xq.data(), 10, D.data(), I.data()); });
    EXPECT_TRUE(contains_any(msg, {"nan", "inf", "finite"})) << msg;
    faiss::RangeSearchResult res(4);
    msg = faiss_error([&] { index->range_search(4, xq.data(), 1.0f, &res); });
    EXPECT_FALSE(msg.empty());
    xq[17] = kInf;
    msg = faiss_error([&] {
        index->quantizer->search(4, xq.data(), 2, D.data(), I.data());
    });
    EXPECT_FALSE(msg.empty());
}
