/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// The joint encoder + tree trainer (JointTrainer) and its encoders:
// export to faiss_ehi (EncoderHead, TextEncoder), the skewed synthetic case
// of the paper's appendix B, determinism, checkpoint / resume, the NaN stop
// and config checks. Suites TrainerEncoder and TrainerJoint.
#include <gtest/gtest.h>

#include "test_helpers.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissException.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/index_io.h>
#include <faiss_ehi/trainer/Encoder.h>
#include <faiss_ehi/trainer/JointTrainer.h>
#include <faiss_ehi/trainer/TreeSnapshot.h>

#include "contrib/data/ground_truth.h"
#include "contrib/data/synthetic.h"

using ehi_test::expect_error;
using faiss_ehi::EncoderHead;
using faiss_ehi::idx_t;
using faiss_ehi::IndexEHITree;
using faiss_ehi::TextEncoder;
using namespace faiss_ehi::trainer;

namespace {

/// Perturb every parameter so the export test is not run at the identity.
void perturb(torch::nn::Module& m, uint64_t seed) {
    torch::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(seed);
    for (auto& p : m.parameters()) {
        p.add_(at::normal(0.0, 0.3, p.sizes(), gen));
    }
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    float m = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); i++) {
        m = std::max(m, std::fabs(a[i] - b[i]));
    }
    return m;
}

/// The index pieces of a JointModel.
IndexEHITree* ivf_of(const faiss::Index* index) {
    if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        return dynamic_cast<IndexEHITree*>(pt->index);
    }
    return dynamic_cast<IndexEHITree*>(const_cast<faiss::Index*>(index));
}
const EncoderHead* head_of(const faiss::Index* index) {
    auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index);
    return pt ? dynamic_cast<const EncoderHead*>(pt->chain.at(0)) : nullptr;
}

/// Every learned float of a model: head then tree.
std::vector<float> model_params(const JointModel& m) {
    std::vector<float> out;
    if (const EncoderHead* h = head_of(m.index.get())) {
        for (const auto* v : {&h->A, &h->b, &h->W1, &h->c1, &h->W2, &h->c2}) {
            out.insert(out.end(), v->begin(), v->end());
        }
    }
    const auto& t = ivf_of(m.index.get())->tree_quantizer()->tree;
    for (const auto* vv : {&t.U, &t.W, &t.bias, &t.node_W, &t.node_b}) {
        for (const auto& v : *vv) {
            out.insert(out.end(), v.begin(), v.end());
        }
    }
    return out;
}

std::vector<float> tree_params(const JointModel& m) {
    std::vector<float> out;
    const auto& t = ivf_of(m.index.get())->tree_quantizer()->tree;
    for (const auto& v : t.node_W) {
        out.insert(out.end(), v.begin(), v.end());
    }
    for (const auto& v : t.node_b) {
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

std::string slurp(const std::string& f) {
    std::ifstream in(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/** Skewed clustered data (appendix B: most queries ask for a minority of
 * the documents) in `sig` dimensions, followed by `noise` dimensions of
 * independent Gaussian noise (std 2) that dominate raw distances. Each
 * query's relevant documents are its k nearest in the signal dimensions:
 * an untrained encoder and a tree fitted to the raw vectors route on the
 * noise; the joint training has to find the signal. */
struct SkewedPairs {
    PairData data; ///< training queries and pairs
    int d = 0;
    idx_t ntest = 0;
    std::vector<float> xtest;                   ///< ntest x d
    std::vector<std::vector<int64_t>> rel_test; ///< sorted
};

SkewedPairs make_skewed_pairs(idx_t nb, idx_t ntrain, idx_t ntest, int sig,
                              int noise, int k, uint64_t seed) {
    faiss_ehi::data::SkewedSyntheticParams p;
    p.d = sig;
    p.nb = nb;
    p.nq = ntrain + ntest;
    p.nclusters = 32;
    p.n_hot = 4;
    p.seed = seed;
    faiss_ehi::data::SkewedSynthetic sk =
            faiss_ehi::data::make_skewed_synthetic(p);
    std::vector<idx_t> gt = faiss_ehi::data::exact_knn(
            sig, nb, sk.ds.xb.data(), p.nq, sk.ds.xq.data(), k);
    const int d = sig + noise;
    std::mt19937_64 rng(seed + 1);
    std::normal_distribution<float> g(0.0f, 2.0f);
    auto widen = [&](const std::vector<float>& x, idx_t n) {
        std::vector<float> y(size_t(n) * d);
        for (idx_t i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                y[i * d + j] = j < sig ? x[i * sig + j] : g(rng);
            }
        }
        return y;
    };
    std::vector<float> xb = widen(sk.ds.xb, nb);
    std::vector<float> xq = widen(sk.ds.xq, p.nq);
    SkewedPairs s;
    s.d = d;
    s.data.nq = ntrain;
    s.data.nd = nb;
    s.data.d = d;
    s.data.doc_vecs = xb;
    s.data.query_vecs.assign(xq.begin(), xq.begin() + size_t(ntrain) * d);
    for (idx_t q = 0; q < ntrain; q++) {
        for (int j = 0; j < k; j++) {
            s.data.pairs.emplace_back(q, gt[q * k + j]);
        }
    }
    s.ntest = ntest;
    s.xtest.assign(xq.begin() + size_t(ntrain) * d, xq.end());
    for (idx_t q = 0; q < ntest; q++) {
        std::vector<int64_t> r(gt.begin() + (ntrain + q) * k,
                               gt.begin() + (ntrain + q + 1) * k);
        std::sort(r.begin(), r.end());
        s.rel_test.push_back(r);
    }
    return s;
}

/** Recall@100 of the test queries' relevant documents at `target` fraction
 * of the base visited, interpolated linearly between beams. The index is
 * filled with the documents first. */
double recall_at_visited(faiss::Index& index, const SkewedPairs& s,
                         double target, std::string* table = nullptr) {
    index.add(s.data.nd, s.data.doc_vecs.data());
    IndexEHITree* ivf = ivf_of(&index);
    const int k = 100;
    std::vector<float> D(size_t(s.ntest) * k);
    std::vector<idx_t> I(size_t(s.ntest) * k);
    double prev_v = 0, prev_r = 0, result = -1;
    for (size_t beam = 1; beam <= ivf->nlist; beam++) {
        ivf->nprobe = beam;
        faiss::indexIVF_stats.reset();
        index.search(s.ntest, s.xtest.data(), k, D.data(), I.data());
        double visited = double(faiss::indexIVF_stats.ndis) /
                (double(s.ntest) * double(s.data.nd));
        double hit = 0;
        for (idx_t q = 0; q < s.ntest; q++) {
            const auto& r = s.rel_test[q];
            for (int j = 0; j < k; j++) {
                hit += std::binary_search(r.begin(), r.end(),
                                          int64_t(I[q * k + j]));
            }
            (void)r;
        }
        double recall = hit / double(s.ntest * s.rel_test[0].size());
        if (table) {
            char line[96];
            std::snprintf(line, sizeof(line),
                          "  beam %2zu visited %.3f "
                          "recall %.3f\n",
                          beam, visited, recall);
            *table += line;
        }
        if (result < 0 && visited >= target) {
            result = visited == prev_v ? recall
                                       : prev_r +
                            (recall - prev_r) * (target - prev_v) /
                                    (visited - prev_v);
        }
        prev_v = visited;
        prev_r = recall;
    }
    index.reset();
    return result < 0 ? prev_r : result;
}

JointTrainerConfig small_config() {
    JointTrainerConfig c;
    c.B = 8;
    c.H = 1;
    c.epochs = 2;
    c.batch = 32;
    c.enc_lr = 5e-3f;
    c.lambda1 = 1.0f;
    c.hidden = 4;
    c.refresh = 1;
    // The paper's joint loop (tree from the first epoch, balance term,
    // full gradient), which these tests exercise, rather than the
    // relevance recipe's defaults (tested on their own below).
    c.warmup_epochs = 0;
    c.balance = 1.0f;
    c.routing = 0.0f;
    c.fixed_leaves = false;
    c.recluster = false;
    c.tree_grad = 1.0f;
    // One thread: these runs are tiny, and OpenMP barriers crawl when the
    // test machine's cores are busy (the determinism test uses 2).
    c.threads = 1;
    c.progress = false;
    return c;
}

SkewedPairs small_data() {
    return make_skewed_pairs(600, 150, 20, 8, 4, 3, 77);
}

} // namespace

TEST(TrainerEncoder, HeadExportMatchesEncoderHead) {
    for (bool normalize : {false, true}) {
        Encoder enc(EncoderKind::HEAD, 12, 10, 8, normalize, 5);
        perturb(*enc, 9);
        std::unique_ptr<EncoderHead> head = enc->to_faiss();
        std::vector<float> x(30 * 12);
        std::mt19937 rng(3);
        std::normal_distribution<float> g;
        for (auto& v : x) {
            v = g(rng);
        }
        EncoderInput in;
        in.vecs = x.data();
        in.d = 12;
        in.n = 30;
        std::vector<float> want = enc->encode_all(in);
        std::vector<float> got(30 * 10);
        head->apply_noalloc(30, x.data(), got.data());
        EXPECT_LT(max_abs_diff(want, got), 1e-5f) << "normalize " << normalize;
    }
}

TEST(TrainerEncoder, FreshHeadIsIdentity) {
    Encoder enc(EncoderKind::HEAD, 6, 6, 4, false, 5);
    std::vector<float> x = {1, -2, 3, 0.5f, 0, 7};
    EncoderInput in;
    in.vecs = x.data();
    in.d = 6;
    in.n = 1;
    EXPECT_EQ(enc->encode_all(in), x);
}

TEST(TrainerEncoder, TextExportMatchesTextEncoderAndHead) {
    // vocabulary: 40 words, 30 of them "pretrained"
    std::vector<std::string> vocab, pre_words;
    std::vector<float> pre;
    for (int i = 0; i < 40; i++) {
        vocab.push_back("w" + std::to_string(i));
    }
    for (int i = 0; i < 30; i++) {
        pre_words.push_back("w" + std::to_string(2 * i)); // half unknown
        for (int j = 0; j < 6; j++) {
            pre.push_back(float(i) * 0.1f + float(j));
        }
    }
    size_t found = 0;
    TextInit ti = make_text_init(vocab, 6, pre_words, pre, 11, 0.1f, &found);
    EXPECT_EQ(found, 20u);
    EXPECT_EQ(ti.embeddings[2 * 6 + 3], 0.1f + 3.0f); // w2 = pretrained 1
    Encoder enc(EncoderKind::TEXT, 0, 5, 3, true, 5, &ti);
    perturb(*enc, 4);

    std::vector<std::string> texts = {"w1 w2 W3, w1", "", "zzz unknown", "w39"};
    std::unique_ptr<TextEncoder> te = enc->to_text_encoder(vocab);
    std::vector<std::vector<int64_t>> toks;
    for (const auto& t : texts) {
        toks.push_back(te->token_ids(t));
    }
    EXPECT_EQ(toks[0], (std::vector<int64_t>{1, 2, 3, 1}));
    EncoderInput in;
    in.tokens = &toks;
    in.n = int64_t(texts.size());
    std::vector<float> want = enc->encode_all(in);

    std::vector<float> bag = te->encode(texts);
    std::unique_ptr<EncoderHead> head = enc->to_faiss();
    ASSERT_EQ(head->d_in, 6);
    std::vector<float> got(texts.size() * 5);
    head->apply_noalloc(idx_t(texts.size()), bag.data(), got.data());
    EXPECT_LT(max_abs_diff(want, got), 1e-5f);
}

TEST(TrainerJoint, SkewedBeatsRandomTreeAndUntrainedEncoder) {
    SkewedPairs s = make_skewed_pairs(4000, 1000, 200, 16, 16, 5, 1234);
    JointTrainerConfig c;
    c.B = 16;
    c.H = 1;
    c.epochs = 5;
    c.batch = 64;
    // Mined hard negatives are the 6th+ nearest neighbours here and pull
    // the encoder the wrong way; in-batch negatives only.
    c.hard_negatives = 0;
    c.enc_lr = 5e-3f;
    c.lambda1 = 1.0f;
    c.hidden = 0;
    c.threads = 1; // see small_config
    c.progress = false;

    JointTrainer trainer(c);
    JointModel trained = trainer.train(s.data);
    ASSERT_TRUE(trained.index);
    ASSERT_EQ(int(trained.history.size()), c.epochs);

    // untrained: the same pipeline with no epoch (identity head, k-means
    // tree on the raw vectors, temperatures fitted)
    JointTrainerConfig c0 = c;
    c0.epochs = 0;
    JointModel untrained = JointTrainer(c0).train(s.data);

    // the trained encoder under a random tree
    std::unique_ptr<faiss::Index> random_tree(
            faiss_ehi::clone_index(trained.index.get()));
    {
        auto* q = ivf_of(random_tree.get())->tree_quantizer();
        q->tree.init_random(99);
        q->leaf_representatives.clear();
        const EncoderHead* h = head_of(random_tree.get());
        std::vector<float> enc_docs(size_t(s.data.nd) * h->d_out);
        h->apply_noalloc(s.data.nd, s.data.doc_vecs.data(), enc_docs.data());
        q->compute_representatives(s.data.nd, enc_docs.data());
        q->update_is_trained();
    }

    std::string t_tab, u_tab, r_tab;
    double r_trained = recall_at_visited(*trained.index, s, 0.10, &t_tab);
    double r_untrained = recall_at_visited(*untrained.index, s, 0.10, &u_tab);
    double r_random = recall_at_visited(*random_tree, s, 0.10, &r_tab);
    std::printf("recall@100 at 10%% visited: trained %.3f, untrained encoder "
                "%.3f, random tree %.3f\n",
                r_trained, r_untrained, r_random);
    std::printf("trained:\n%suntrained:\n%srandom tree:\n%s", t_tab.c_str(),
                u_tab.c_str(), r_tab.c_str());
    for (const auto& e : trained.history) {
        std::printf("epoch %d loss %.4f max_load %.2f empty %d heldout "
                    "R@100 %.3f\n",
                    e.epoch, e.loss, e.max_load, e.empty_leaves,
                    e.heldout_recall);
    }
    // measured with the default (relevance) recipe, 2 warm-up and 3 tree
    // epochs: trained .804, untrained .082, the trained encoder under a
    // random tree .528 (B = 16, 1 thread); floors leave room for other
    // BLAS / thread counts
    EXPECT_GE(r_trained, 0.72);
    EXPECT_GE(r_trained, r_untrained + 0.40);
    EXPECT_GE(r_trained, r_random + 0.18);
}

TEST(TrainerJoint, DeterministicForSeedAndThreads) {
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.threads = 2;
    JointModel a = JointTrainer(c).train(s.data);
    JointModel b = JointTrainer(c).train(s.data);
    EXPECT_EQ(model_params(a), model_params(b));
    c.seed = 99;
    JointModel other = JointTrainer(c).train(s.data);
    EXPECT_NE(model_params(a), model_params(other));
}

TEST(TrainerJoint, HeldOutQueriesAreSeededSortedAndWithPairs) {
    std::vector<std::pair<int64_t, int64_t>> pairs;
    for (int64_t q = 0; q < 100; q += 2) { // odd queries have no pair
        pairs.emplace_back(q, q % 7);
        pairs.emplace_back(q, q % 5);
    }
    std::vector<int64_t> h = heldout_queries(100, pairs, 3, 0.3);
    ASSERT_EQ(h.size(), 15u); // floor(0.3 x 50 queries with pairs)
    EXPECT_TRUE(std::is_sorted(h.begin(), h.end()));
    EXPECT_EQ(std::adjacent_find(h.begin(), h.end()), h.end());
    for (int64_t q : h) {
        EXPECT_EQ(q % 2, 0) << q << " has no pair";
    }
    EXPECT_EQ(heldout_queries(100, pairs, 3, 0.3), h);
    EXPECT_NE(heldout_queries(100, pairs, 4, 0.3), h);
    EXPECT_TRUE(heldout_queries(100, pairs, 3, 0.0).empty());
    EXPECT_THROW(heldout_queries(100, pairs, 3, 1.0), faiss::FaissException);
    EXPECT_THROW(heldout_queries(100, pairs, 3, NAN), faiss::FaissException);
    pairs.emplace_back(100, 0);
    EXPECT_THROW(heldout_queries(100, pairs, 3, 0.3), faiss::FaissException);
}

// Benchmarks evaluate a trained index on heldout_queries(); training must
// not have seen them: the same run on the data without their pairs, and
// nothing held out, learns exactly the same model.
TEST(TrainerJoint, HeldOutQueriesNeverTrain) {
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.heldout_fraction = 0.3;
    JointModel with_split = JointTrainer(c).train(s.data);
    std::vector<int64_t> held =
            heldout_queries(s.data.nq, s.data.pairs, c.seed, 0.3);
    ASSERT_FALSE(held.empty());
    PairData rest = s.data;
    rest.pairs.clear();
    for (const auto& p : s.data.pairs) {
        if (!std::binary_search(held.begin(), held.end(), p.first)) {
            rest.pairs.push_back(p);
        }
    }
    ASSERT_LT(rest.pairs.size(), s.data.pairs.size());
    c.heldout_fraction = 0;
    JointModel without = JointTrainer(c).train(rest);
    EXPECT_EQ(model_params(with_split), model_params(without));
}

TEST(TrainerJoint, SiameseOnlyLeavesTreeUntouched) {
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.lambda2 = c.lambda3 = c.balance = c.routing = 0;
    JointModel de = JointTrainer(c).train(s.data);
    JointTrainerConfig c0 = c;
    c0.epochs = 0;
    JointModel start = JointTrainer(c0).train(s.data);
    EXPECT_EQ(tree_params(de), tree_params(start));
    // ... while the encoder moved
    EXPECT_NE(model_params(de), model_params(start));
    for (const auto& e : de.history) {
        EXPECT_EQ(e.indexing, 0.0f);
        EXPECT_EQ(e.balance_term, 0.0f);
    }
}

TEST(TrainerJoint, FrozenEncoderAndFixedLeavesAfterWarmup) {
    // warm-up 2 epochs, then 2 tree epochs with the encoder frozen
    // (joint_enc_lr 0) and the documents at their k-means leaves
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.warmup_epochs = 2;
    c.epochs = 4;
    c.joint_enc_lr = 0;
    c.fixed_leaves = true;
    c.routing = 1;
    c.balance = 0;
    JointModel m = JointTrainer(c).train(s.data);
    // the same run stopped when the warm-up ends
    JointTrainerConfig w = c;
    w.epochs = 2;
    JointModel warm = JointTrainer(w).train(s.data);

    const EncoderHead* h = head_of(m.index.get());
    const EncoderHead* hw = head_of(warm.index.get());
    ASSERT_TRUE(h && hw);
    EXPECT_EQ(h->A, hw->A) << "the encoder moved after the warm-up";
    EXPECT_EQ(h->W2, hw->W2);
    // the tree did train, toward fixed leaves: same representatives (the
    // k-means centroids), documents stored at the nearest one
    EXPECT_NE(tree_params(m), tree_params(warm));
    IndexEHITree* ivf = ivf_of(m.index.get());
    IndexEHITree* ivfw = ivf_of(warm.index.get());
    EXPECT_EQ(ivf->tree_quantizer()->leaf_representatives,
              ivfw->tree_quantizer()->leaf_representatives);
    EXPECT_EQ(ivf->assign_rule, faiss_ehi::DocAssignRule::NEAREST_LEAF);
    EXPECT_GT(m.history.back().routing_term, 0.0f);

    // ... and without the freeze it does move (the check above can fail)
    JointTrainerConfig moving = c;
    moving.joint_enc_lr = -1;
    JointModel mv = JointTrainer(moving).train(s.data);
    EXPECT_NE(head_of(mv.index.get())->A, hw->A);

    JointTrainerConfig bad = c;
    bad.init = faiss_ehi::trainer::TreeInit::RANDOM;
    expect_error([&] { JointTrainer(bad).train(s.data); }, "fixed_leaves");
}

/// A trainer that returns after `stop` epochs as if killed (-1: never).
JointTrainer stopping_trainer(const JointTrainerConfig& c, int stop) {
    JointTrainer t(c);
    t.stop_after_epoch = stop;
    return t;
}

TEST(TrainerJoint, CheckpointResumeIsBitIdentical) {
    int stop = -1; // epochs before the run stops as if killed
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.epochs = 3;
    c.warmup_epochs = 1; // the resume crosses the tree initialisation
    c.routing = 0.5f;
    // Leaves the tree routes no document to keep their k-means
    // representatives, which steer NEAREST_LEAF placement: they must be
    // restored too.
    c.B = 32;
    c.doc_assign = faiss_ehi::DocAssignRule::NEAREST_LEAF;
    ehi_test::TempDir d1, d2;
    c.checkpoint_dir = d1.path;
    JointModel full = stopping_trainer(c, stop).train(s.data);
    ASSERT_TRUE(full.index);

    c.checkpoint_dir = d2.path;
    stop = 1;
    JointModel part = stopping_trainer(c, stop).train(s.data);
    EXPECT_FALSE(part.index);
    ASSERT_EQ(part.history.size(), 1u);
    stop = 2;
    c.resume = true;
    part = stopping_trainer(c, stop).train(s.data);
    EXPECT_FALSE(part.index);
    ASSERT_EQ(part.history.size(), 2u);
    stop = -1;
    JointModel resumed = stopping_trainer(c, stop).train(s.data);
    ASSERT_TRUE(resumed.index);
    EXPECT_EQ(model_params(full), model_params(resumed));
    ASSERT_EQ(resumed.history.size(), full.history.size());
    for (size_t i = 0; i < full.history.size(); i++) {
        EXPECT_EQ(full.history[i].loss, resumed.history[i].loss);
    }
    // a different config refuses to resume
    c.lambda1 = 0.5f;
    expect_error([&] { stopping_trainer(c, stop).train(s.data); },
                 "different configuration");
    // a truncated checkpoint is refused with a message
    c.lambda1 = 1.0f;
    std::string path = d2.path + "/" + JointTrainer::checkpoint_name();
    std::string bytes = slurp(path);
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), bytes.size() / 2);
    }
    expect_error([&] { stopping_trainer(c, stop).train(s.data); },
                 "cannot read");
    // no checkpoint to resume from
    ehi_test::TempDir d3;
    c.checkpoint_dir = d3.path;
    expect_error([&] { stopping_trainer(c, stop).train(s.data); },
                 "no checkpoint");
}

TEST(TrainerJoint, NonFiniteLossStopsAndKeepsCheckpoint) {
    int stop = -1; // epochs before the run stops as if killed
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.epochs = 3;
    c.warmup_epochs = 1; // epoch 1 trains the encoder only: fine
    c.cl_lr = 1e30f;     // the tree explodes from epoch 2 on
    ehi_test::TempDir dir;
    c.checkpoint_dir = dir.path;
    stop = 1;
    stopping_trainer(c, stop).train(s.data);
    std::string path = dir.path + "/" + JointTrainer::checkpoint_name();
    std::string before = slurp(path);
    ASSERT_FALSE(before.empty());
    stop = -1;
    c.resume = true;
    try {
        stopping_trainer(c, stop).train(s.data);
        ADD_FAILURE() << "no exception";
    } catch (const faiss::FaissException& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
        EXPECT_NE(msg.find("epoch 2"), std::string::npos) << msg;
        EXPECT_NE(msg.find(path), std::string::npos) << msg;
    }
    EXPECT_EQ(slurp(path), before);
}

namespace {

/** 8 topics of 20 words; a document is 6 words of its topic, a query 3
 * other words of the same topic; relevant = the documents of its topic
 * that share a word with it. Pretrained vectors for half the words. */
struct TopicText {
    std::vector<std::string> vocab;
    PairData d;
    std::vector<int> dtopic, qtopic;
    TextInit ti;
};

TopicText topic_text() {
    TopicText t;
    const int ntopic = 8, per = 20, dim = 8;
    std::vector<std::string>& vocab = t.vocab;
    PairData& d = t.d;
    std::vector<int>& dtopic = t.dtopic;
    std::vector<int>& qtopic = t.qtopic;
    for (int w = 0; w < ntopic * per; w++) {
        vocab.push_back("w" + std::to_string(w));
    }
    std::mt19937_64 rng(5);
    auto words = [&](int topic, int k) {
        std::vector<int64_t> ids;
        for (int j = 0; j < k; j++) {
            ids.push_back(topic * per + int64_t(rng() % per));
        }
        return ids;
    };
    d.nd = 400;
    d.nq = 160;
    dtopic.resize(d.nd);
    qtopic.resize(d.nq);
    for (int64_t i = 0; i < d.nd; i++) {
        dtopic[i] = int(i % ntopic);
        d.doc_tokens.push_back(words(dtopic[i], 6));
    }
    for (int64_t q = 0; q < d.nq; q++) {
        qtopic[q] = int(q % ntopic);
        d.query_tokens.push_back(words(qtopic[q], 3));
        for (int64_t i = q % ntopic; i < d.nd; i += ntopic) {
            bool share = false;
            for (int64_t a : d.query_tokens[q]) {
                for (int64_t b : d.doc_tokens[i]) {
                    share |= a == b;
                }
            }
            if (share) {
                d.pairs.emplace_back(q, i);
            }
        }
    }
    // "pretrained" vectors for half the words
    std::vector<std::string> pre_words(vocab.begin(), vocab.begin() + 80);
    std::vector<float> pre(80 * dim);
    std::normal_distribution<float> g;
    for (auto& v : pre) {
        v = g(rng);
    }
    t.ti = make_text_init(vocab, dim, pre_words, pre, 3);
    return t;
}

} // namespace

TEST(TrainerJoint, TextEncoderEndToEnd) {
    TopicText tt = topic_text();
    const std::vector<std::string>& vocab = tt.vocab;
    const PairData& d = tt.d;
    const std::vector<int>& dtopic = tt.dtopic;
    const std::vector<int>& qtopic = tt.qtopic;
    const int dim = 8;
    const TextInit& ti = tt.ti;

    JointTrainerConfig c = small_config();
    c.encoder = EncoderKind::TEXT;
    c.B = 4;
    c.d_out = 6;
    c.enc_lr = 1e-2f;
    JointModel m = JointTrainer(c).train(d, &ti);
    ASSERT_TRUE(m.index);
    ASSERT_TRUE(m.text_encoder);
    EXPECT_EQ(m.index->d, dim);
    EXPECT_EQ(m.text_encoder->size(), int64_t(vocab.size()));
    ASSERT_EQ(m.history.size(), 2u);
    EXPECT_GE(m.history.back().heldout_recall, 0.0);

    // serve: texts -> TextEncoder -> index (head + tree)
    auto text_of = [&](const std::vector<int64_t>& ids) {
        std::string t;
        for (int64_t id : ids) {
            t += vocab[id] + " ";
        }
        return t;
    };
    std::vector<std::string> dtexts, qtexts;
    for (const auto& t : d.doc_tokens) {
        dtexts.push_back(text_of(t));
    }
    for (const auto& t : d.query_tokens) {
        qtexts.push_back(text_of(t));
    }
    std::vector<float> xb = m.text_encoder->encode(dtexts);
    std::vector<float> xq = m.text_encoder->encode(qtexts);
    m.index->add(d.nd, xb.data());
    const int k = 10;
    std::vector<float> D(size_t(d.nq) * k);
    std::vector<idx_t> I(size_t(d.nq) * k);
    m.index->search(d.nq, xq.data(), k, D.data(), I.data());
    int same_topic = 0, found = 0;
    for (int64_t q = 0; q < d.nq; q++) {
        for (int j = 0; j < k; j++) {
            if (I[q * k + j] >= 0) {
                found++;
                same_topic += dtopic[I[q * k + j]] == qtopic[q];
            }
        }
    }
    ASSERT_GT(found, 0);
    // 8 topics: chance is 1/8
    EXPECT_GT(double(same_topic) / found, 0.5) << same_topic << " of " << found;

    // the text encoder survives its file format
    ehi_test::TempDir dir;
    std::string f = dir.path + "/text.feht";
    faiss_ehi::write_text_encoder(*m.text_encoder, f.c_str());
    TextEncoder back = faiss_ehi::read_text_encoder(f.c_str());
    EXPECT_EQ(back.encode(qtexts), xq);
}

TEST(TrainerJoint, IdentityEncoderWithWarmup) {
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.encoder = EncoderKind::IDENTITY;
    c.hidden = 0;
    c.normalize = false;
    c.warmup_epochs = 1; // nothing to learn in warm-up: must not fail
    JointModel m = JointTrainer(c).train(s.data);
    ASSERT_TRUE(m.index);
    EXPECT_TRUE(dynamic_cast<IndexEHITree*>(m.index.get()));
    EXPECT_EQ(m.index->metric_type, faiss::METRIC_L2);
    EXPECT_EQ(m.index->d, s.d);
    EXPECT_EQ(m.history.size(), 2u);
}

TEST(TrainerJoint, PaperFormPaperRecipeTwoLevels) {
    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    c.form = faiss_ehi::NodeForm::PAPER;
    c.B = 4;
    c.H = 2;
    c.paper_recipe = true; // random init, no balance, no routing
    c.routing = 1.0f;      // ... overridden by the recipe
    JointModel m = JointTrainer(c).train(s.data);
    ASSERT_TRUE(m.index);
    EXPECT_EQ(m.index->metric_type, faiss::METRIC_INNER_PRODUCT);
    for (const auto& e : m.history) {
        EXPECT_EQ(e.routing_term, 0.0f);
        EXPECT_EQ(e.balance_term, 0.0f);
    }
    // per-node form, two levels, k-means init, learned routing on
    c = small_config();
    c.B = 4;
    c.H = 2;
    c.routing = 1.0f;
    c.d2l = 2;
    c.doc_assign = faiss_ehi::DocAssignRule::NEAREST_LEAF;
    m = JointTrainer(c).train(s.data);
    ASSERT_TRUE(m.index);
    EXPECT_GT(m.history.back().routing_term, 0.0f);
    EXPECT_EQ(ivf_of(m.index.get())->d2l, 2);
    m.index->add(s.data.nd, s.data.doc_vecs.data());
    EXPECT_EQ(m.index->ntotal, s.data.nd);
}

TEST(TrainerJoint, BadConfigAndDataThrow) {
    auto bad = [](auto edit, const std::string& what) {
        JointTrainerConfig c;
        edit(c);
        expect_error([&] { JointTrainer t(c); }, what);
    };
    bad([](JointTrainerConfig& c) { c.B = 1; }, "B = 1");
    bad([](JointTrainerConfig& c) { c.H = 0; }, "H = 0");
    bad([](JointTrainerConfig& c) { c.beam = 0; }, "beam");
    bad([](JointTrainerConfig& c) { c.d2l = 41; }, "d2l");
    bad([](JointTrainerConfig& c) { c.batch = 1; }, "batch");
    bad([](JointTrainerConfig& c) { c.enc_lr = -1; }, "enc_lr");
    bad([](JointTrainerConfig& c) { c.cl_lr = NAN; }, "cl_lr");
    bad([](JointTrainerConfig& c) { c.lambda2 = -0.1f; }, "lambda2 = -0.1");
    bad([](JointTrainerConfig& c) { c.tau = 2; }, "tau");
    bad([](JointTrainerConfig& c) { c.init = faiss_ehi::trainer::TreeInit(7); },
        "init = 7, must be one of 'kmeans', 'random'");
    bad([](JointTrainerConfig& c) { c.refresh = 0; }, "refresh");
    bad([](JointTrainerConfig& c) { c.heldout_fraction = 1; },
        "heldout_fraction");
    bad([](JointTrainerConfig& c) { c.resume = true; }, "checkpoint_dir");
    bad([](JointTrainerConfig& c) { c.epochs = -2; }, "epochs");
    bad([](JointTrainerConfig& c) { c.warmup_epochs = -2; }, "warmup_epochs");
    bad([](JointTrainerConfig& c) { c.de_negatives = -1; }, "de_negatives");
    bad([](JointTrainerConfig& c) { c.tree_grad = 1.5f; }, "tree_grad");
    bad([](JointTrainerConfig& c) { c.leaf_slack = 0.9f; }, "leaf_slack");
    bad(
            [](JointTrainerConfig& c) {
                c.fixed_leaves = false;
                c.recluster = true;
            },
            "recluster needs fixed_leaves");
    bad(
            [](JointTrainerConfig& c) {
                c.encoder = EncoderKind::IDENTITY;
                c.hidden = 4;
            },
            "IDENTITY");

    SkewedPairs s = small_data();
    JointTrainerConfig c = small_config();
    PairData d = s.data;
    d.pairs.emplace_back(0, d.nd);
    expect_error([&] { JointTrainer(c).train(d); }, "out of range");
    d = s.data;
    d.query_vecs[5] = NAN;
    expect_error([&] { JointTrainer(c).train(d); }, "non-finite");
    d = s.data;
    d.doc_vecs.pop_back();
    expect_error([&] { JointTrainer(c).train(d); }, "doc floats");
    c.encoder = EncoderKind::TEXT;
    expect_error([&] { JointTrainer(c).train(s.data); }, "TextInit");
    expect_error(
            [] { faiss_ehi::enum_from_name<EncoderKind>("bert", "encoder"); },
            "encoder = 'bert', expected one of 'identity', 'head', 'text'");
}

// The collapse guard: the load figures and the report are exact on a
// hand-made case, and a run whose leaves break the limit stops with the
// figures (joint and probe recipes), unless told to go on; the paper's
// recipe only reports.
TEST(TrainerJoint, CollapseGuardStopsAndReports) {
    using faiss_ehi::trainer::collapse_report;
    using faiss_ehi::trainer::load_stats;
    using faiss_ehi::trainer::LoadStats;
    LoadStats ls = load_stats({0, 10, 10, 20});
    EXPECT_EQ(ls.empty_leaves, 1);
    EXPECT_DOUBLE_EQ(ls.expected_load, 1.5); // (100+100+400)/40 over 40/4
    EXPECT_DOUBLE_EQ(ls.max_load, 2.0);
    std::string r = collapse_report(ls, 4, 2.0);
    EXPECT_NE(r.find("1 of 4 leaves empty"), std::string::npos) << r;
    EXPECT_NE(r.find("1.50x"), std::string::npos) << r;
    EXPECT_EQ(collapse_report(load_stats({10, 10, 10, 10}), 4, 2.0), "");
    EXPECT_NE(collapse_report(load_stats({5, 10, 10, 15}), 4, 1.1), "");

    SkewedPairs s = small_data();
    // A limit just above 1: any real tree is over it.
    JointTrainerConfig c = small_config();
    c.collapse_load = 1.0001f;
    expect_error([&] { JointTrainer(c).train(s.data); }, "collapsed");
    c.stop_on_collapse = false;
    JointModel m = JointTrainer(c).train(s.data);
    ASSERT_TRUE(m.index);
    EXPECT_GT(m.history.back().expected_load, 1.0001);
    c = small_config();
    c.collapse_load = 1.0001f;
    c.paper_recipe = true;
    EXPECT_TRUE(JointTrainer(c).train(s.data).index);

    JointTrainerConfig p = small_config();
    p.recipe = faiss_ehi::trainer::TrainRecipe::PROBE;
    p.encoder = faiss_ehi::trainer::EncoderKind::IDENTITY;
    p.hidden = 0;
    p.B = 4;
    p.H = 2;
    p.normalize = false;
    p.collapse_load = 1.0001f;
    expect_error([&] { JointTrainer(p).train(s.data); }, "collapsed");
    p.collapse_load = 2.0f;
    JointModel pm = JointTrainer(p).train(s.data);
    ASSERT_TRUE(pm.index);
    ASSERT_EQ(pm.history.size(), 1u);
    EXPECT_EQ(pm.history[0].empty_leaves, 0);
    EXPECT_LE(pm.history[0].expected_load, 2.0);
}

TEST(TrainerJoint, DefaultsAreTheRelevanceRecipe) {
    const JointTrainerConfig c;
    EXPECT_EQ(c.B, 40);
    EXPECT_EQ(c.H, 1);
    EXPECT_EQ(c.recipe, TrainRecipe::JOINT);
    EXPECT_EQ(c.epochs, -1);
    EXPECT_EQ(c.warmup_epochs, -1);
    EXPECT_EQ(c.lambda1, 1.0f);
    EXPECT_EQ(c.routing, 1.0f);
    EXPECT_EQ(c.balance, 0.0f);
    EXPECT_TRUE(c.fixed_leaves);
    EXPECT_TRUE(c.recluster);
    // a small share of the tree's gradient, toward fixed balanced targets
    EXPECT_EQ(c.tree_grad, 0.005f);
    EXPECT_TRUE(c.balanced_targets);
    // without re-fits there is no balanced assignment: the targets are the
    // nearest leaves, and turning re-fits off alone stays valid
    JointTrainerConfig no_refit = c;
    no_refit.recluster = false;
    EXPECT_NO_THROW(no_refit.check());
    EXPECT_EQ(c.doc_routing, 1.0f);
    EXPECT_TRUE(c.doc_routing_corpus);
    EXPECT_EQ(c.doc_routing_window, 0);
    EXPECT_EQ(c.de_negatives, 1);
    EXPECT_LT(c.joint_enc_lr, 0.0f); // the encoder keeps training
    // epochs from the data: ~100,000 pairs seen, within [10, 120]
    EXPECT_EQ(c.scheduled(900).epochs, 111);
    EXPECT_EQ(c.scheduled(900).warmup_epochs, 55);
    EXPECT_EQ(c.scheduled(300).epochs, 120);
    EXPECT_EQ(c.scheduled(110000).epochs, 10);
    EXPECT_EQ(c.scheduled(110000).warmup_epochs, 5);
    JointTrainerConfig given = c;
    given.epochs = 7;
    given.warmup_epochs = 3;
    EXPECT_EQ(given.scheduled(900).epochs, 7);
    EXPECT_EQ(given.scheduled(900).warmup_epochs, 3);
    // the paper as written takes its own Table 2 row
    JointTrainerConfig paper = c;
    paper.paper_recipe = true;
    JointTrainerConfig p = paper.resolved(16);
    EXPECT_EQ(p.lambda1, 0.2f);
    EXPECT_EQ(p.epochs, 100);
    EXPECT_FALSE(p.fixed_leaves);
    EXPECT_FALSE(p.recluster);
    EXPECT_EQ(p.tree_grad, 1.0f);
    EXPECT_EQ(p.de_negatives, 0);
    // the DE baseline: same run, no tree term, no tree-only setting
    JointTrainerConfig de = c.dual_encoder();
    EXPECT_NO_THROW(de.check());
    EXPECT_EQ(de.lambda1, 1.0f);
    EXPECT_EQ(de.lambda2 + de.lambda3 + de.balance + de.routing, 0.0f);
    EXPECT_EQ(de.warmup_epochs, 0);
    EXPECT_FALSE(de.recluster || de.fixed_leaves || de.balanced_targets);
    EXPECT_EQ(de.de_negatives, c.de_negatives);
    EXPECT_EQ(de.epochs, c.epochs);
    EXPECT_EQ(de.seed, c.seed);
}

// The default recipe end to end (warm-up with DE negatives, then the tree
// with re-clustered leaves and a moving encoder): the same model twice for
// one seed and thread count, balanced leaves after every tree epoch, and
// tree epochs that did move the encoder (it is not frozen).
TEST(TrainerJoint, DefaultRecipeDeterministicAndBalanced) {
    SkewedPairs s = small_data();
    JointTrainerConfig c;
    c.B = 8;
    c.epochs = 8; // warm-up: auto, 4
    c.threads = 2;
    c.progress = false;
    JointModel a = JointTrainer(c).train(s.data);
    JointModel b = JointTrainer(c).train(s.data);
    ASSERT_TRUE(a.index && b.index);
    EXPECT_EQ(model_params(a), model_params(b));
    ASSERT_EQ(a.history.size(), 8u);
    for (size_t e = 4; e < 8; e++) {
        const EpochStats& h = a.history[e];
        EXPECT_EQ(h.empty_leaves, 0) << "epoch " << h.epoch;
        EXPECT_LE(h.expected_load, 1.3) << "epoch " << h.epoch;
        EXPECT_GT(h.routing_term, 0.0f);
    }
    for (size_t e = 0; e < 4; e++) {
        EXPECT_EQ(a.history[e].routing_term, 0.0f); // warm-up
    }
    // the encoder moved during the tree epochs: its head differs from a
    // run whose encoder froze when the tree started
    JointTrainerConfig frozen = c;
    frozen.joint_enc_lr = 0.0f;
    JointModel f = JointTrainer(frozen).train(s.data);
    EXPECT_NE(head_of(a.index.get())->A, head_of(f.index.get())->A);
}

// The default recipe with the text encoder, killed and resumed across the
// warm-up's end and a re-clustering: the token table's sparse optimizer
// state and the re-fitted leaves come back from the checkpoint, so the
// resumed run ends with the same model, token table included.
TEST(TrainerJoint, DefaultRecipeTextResumeIsBitIdentical) {
    int stop = -1; // epochs before the run stops as if killed
    TopicText tt = topic_text();
    JointTrainerConfig c;
    c.encoder = EncoderKind::TEXT;
    c.B = 4;
    c.d_out = 6;
    c.epochs = 6; // warm-up: auto, 3
    c.refresh = 1;
    c.threads = 1;
    c.progress = false;
    ehi_test::TempDir d1, d2;
    c.checkpoint_dir = d1.path;
    JointModel full = stopping_trainer(c, stop).train(tt.d, &tt.ti);
    ASSERT_TRUE(full.index && full.text_encoder);

    c.checkpoint_dir = d2.path;
    stop = 2;
    EXPECT_FALSE(stopping_trainer(c, stop).train(tt.d, &tt.ti).index);
    c.resume = true;
    stop = 5;
    EXPECT_FALSE(stopping_trainer(c, stop).train(tt.d, &tt.ti).index);
    stop = -1;
    JointModel resumed = stopping_trainer(c, stop).train(tt.d, &tt.ti);
    ASSERT_TRUE(resumed.index && resumed.text_encoder);
    EXPECT_EQ(model_params(full), model_params(resumed));
    std::vector<std::string> texts = {"w1 w2 w3", "w40 w41", "w150"};
    EXPECT_EQ(full.text_encoder->encode(texts),
              resumed.text_encoder->encode(texts));
    EXPECT_EQ(ivf_of(full.index.get())->tree_quantizer()->leaf_representatives,
              ivf_of(resumed.index.get())
                      ->tree_quantizer()
                      ->leaf_representatives);
}

// Fully end-to-end (the tree's whole gradient in the encoder) with the
// routing targets fixed by the balanced re-fits: the leaves stay balanced
// and the routing term trains.
TEST(TrainerJoint, BalancedTargetsWithFullGradientStayBalanced) {
    SkewedPairs s = small_data();
    JointTrainerConfig c;
    c.B = 8;
    c.epochs = 8;
    c.refresh = 2;
    c.balanced_targets = true;
    c.tree_grad = 1.0f;
    c.threads = 1;
    c.progress = false;
    JointModel m = JointTrainer(c).train(s.data);
    ASSERT_TRUE(m.index);
    for (size_t e = 4; e < m.history.size(); e++) {
        EXPECT_EQ(m.history[e].empty_leaves, 0) << "epoch " << e + 1;
        EXPECT_LE(m.history[e].expected_load, 1.3) << "epoch " << e + 1;
        EXPECT_GT(m.history[e].routing_term, 0.0f);
    }
    m.index->add(s.data.nd, s.data.doc_vecs.data());
    std::vector<idx_t> sizes;
    auto* ivf = ivf_of(m.index.get());
    for (size_t l = 0; l < ivf->nlist; l++) {
        sizes.push_back(idx_t(ivf->invlists->list_size(l)));
    }
    LoadStats ls = load_stats(sizes);
    EXPECT_EQ(ls.empty_leaves, 0);
    EXPECT_LE(ls.expected_load, 1.3);
}

namespace {

/// The default recipe with the text encoder, small: one thread, quiet.
JointTrainerConfig text_recipe(int B, int epochs) {
    JointTrainerConfig c;
    c.encoder = EncoderKind::TEXT;
    c.B = B;
    c.d_out = 6;
    c.epochs = epochs;
    c.threads = 1;
    c.progress = false;
    return c;
}

/// The topic text with the training pairs of topics 4 to 7 removed: their
/// documents are touched by no training pair.
TopicText half_topics_untouched() {
    TopicText tt = topic_text();
    std::vector<std::pair<int64_t, int64_t>> kept;
    for (const auto& p : tt.d.pairs) {
        if (tt.qtopic[p.first] < 4) {
            kept.push_back(p);
        }
    }
    tt.d.pairs = kept;
    return tt;
}

/// Trains the text recipe (8 leaves, 12 epochs) and returns the share of
/// the untouched topics' documents that the router sends to the leaf that
/// stores them.
double untouched_self_routed(const TopicText& tt, bool corpus,
                             float tree_grad = JointTrainerConfig().tree_grad) {
    JointTrainerConfig c = text_recipe(8, 12);
    c.doc_routing_corpus = corpus;
    c.tree_grad = tree_grad;
    JointModel m = JointTrainer(c).train(tt.d, &tt.ti);
    EXPECT_TRUE(m.index && m.text_encoder);
    if (!m.index) {
        return 0.0;
    }
    std::vector<std::string> texts;
    for (const auto& t : tt.d.doc_tokens) {
        std::string s;
        for (int64_t id : t) {
            s += tt.vocab[id] + " ";
        }
        texts.push_back(s);
    }
    std::vector<float> x = m.text_encoder->encode(texts);
    m.index->add(tt.d.nd, x.data());
    IndexEHITree* ivf = ivf_of(m.index.get());
    std::vector<idx_t> stored(size_t(tt.d.nd), -1);
    for (size_t l = 0; l < ivf->nlist; l++) {
        const idx_t* ids = ivf->invlists->get_ids(l);
        for (size_t j = 0; j < ivf->invlists->list_size(l); j++) {
            stored[size_t(ids[j])] = idx_t(l);
        }
    }
    auto* pt = dynamic_cast<faiss::IndexPreTransform*>(m.index.get());
    const float* y = pt ? pt->apply_chain(tt.d.nd, x.data()) : x.data();
    std::vector<idx_t> routed(size_t(tt.d.nd));
    ivf->quantizer->assign(tt.d.nd, y, routed.data());
    if (y != x.data()) {
        delete[] y;
    }
    int right = 0, untouched = 0;
    for (int64_t i = 0; i < tt.d.nd; i++) {
        if (tt.dtopic[i] >= 4) {
            untouched++;
            right += routed[size_t(i)] == stored[size_t(i)];
        }
    }
    return double(right) / untouched;
}

} // namespace

// Documents that no training pair touches (here: four of eight topics have
// no training query) reach the router only through doc_routing. Drawn from
// the whole corpus, they are routed to the leaves that store them; drawn
// from the step's pairs, the router learns them from nothing.
TEST(TrainerJoint, CorpusDocRoutingRoutesUntouchedDocuments) {
    const TopicText tt = half_topics_untouched();
    const double corpus = untouched_self_routed(tt, true);
    const double step_only = untouched_self_routed(tt, false);
    std::printf("untouched documents routed to their own leaf: corpus %.3f, "
                "step's documents %.3f\n",
                corpus, step_only);
    // measured 0.93 against 0.48 (fixed seeds)
    EXPECT_GE(corpus, 0.85);
    EXPECT_GT(corpus, step_only + 0.2);
}

// The default small share of the tree's gradient in the encoder pulls the
// corpus documents toward their leaves (here the untouched topics'
// documents, through the corpus document routing): they become easier to
// route than with the gradient stopped.
TEST(TrainerJoint, TreeGradientShareRoutesUntouchedDocuments) {
    const TopicText tt = half_topics_untouched();
    const double share = untouched_self_routed(tt, true, 0.005f);
    const double stopped = untouched_self_routed(tt, true, 0.0f);
    std::printf("untouched documents routed to their own leaf: tree_grad "
                "0.005 %.3f, 0 %.3f\n",
                share, stopped);
    // measured 0.93 against 0.89 (fixed seeds)
    EXPECT_GT(share, stopped);
    EXPECT_GE(share, 0.9);
}

// Routing excerpts (doc_routing_window, auto: the median query length, 3
// tokens here) trains the routing term and stays deterministic; a window
// below -1 is refused.
TEST(TrainerJoint, DocRoutingWindowIsDeterministic) {
    TopicText tt = topic_text();
    JointTrainerConfig c = text_recipe(4, 4);
    c.doc_routing_window = -1;
    JointModel a = JointTrainer(c).train(tt.d, &tt.ti);
    JointModel b = JointTrainer(c).train(tt.d, &tt.ti);
    ASSERT_TRUE(a.index && b.index);
    EXPECT_EQ(model_params(a), model_params(b));
    EXPECT_GT(a.history.back().routing_term, 0.0f);
    c.doc_routing_window = 0;
    JointModel whole = JointTrainer(c).train(tt.d, &tt.ti);
    EXPECT_NE(tree_params(a), tree_params(whole));
    c.doc_routing_window = -2;
    EXPECT_THROW(JointTrainer(c).train(tt.d, &tt.ti), faiss::FaissException);
}

// A fast-moving encoder with no scheduled re-fit within the run (refresh
// beyond the last epoch) carries documents away from their leaves; the
// drift re-fit puts them back at the end of the epoch it is seen in, so
// every tree epoch ends balanced. Without it the same run drifts.
TEST(TrainerJoint, DriftRefitKeepsEveryEpochBalanced) {
    TopicText tt = topic_text();
    JointTrainerConfig c = text_recipe(32, 20);
    c.enc_lr = 0.2f;
    c.refresh = 100;
    c.stop_on_collapse = false;
    auto worst = [&](float drift_refit) {
        c.drift_refit = drift_refit;
        JointModel m = JointTrainer(c).train(tt.d, &tt.ti);
        EXPECT_TRUE(m.index);
        double expected = 0;
        int empty = 0;
        for (const EpochStats& h : m.history) {
            if (h.epoch > 10) { // tree epochs
                expected = std::max(expected, h.expected_load);
                empty = std::max(empty, h.empty_leaves);
            }
        }
        std::printf("drift_refit %.1f: worst tree epoch expected load %.2f, "
                    "%d empty leaves\n",
                    drift_refit, expected, empty);
        return std::make_pair(expected, empty);
    };
    auto with = worst(1.3f);
    auto without = worst(0.0f);
    EXPECT_LE(with.first, 1.3);
    EXPECT_EQ(with.second, 0);
    EXPECT_TRUE(without.first > 1.3 || without.second > 0);
}
