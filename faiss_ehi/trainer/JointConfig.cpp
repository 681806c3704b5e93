/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * JointTrainerConfig and PairData checks (torch-free, fast to compile).
 */
#include <faiss_ehi/trainer/JointTrainer.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

#include <faiss/impl/FaissAssert.h>

namespace faiss_ehi {
namespace trainer {

namespace {
bool finite_nonneg(float x) {
    return std::isfinite(x) && x >= 0;
}
} // namespace

const char* train_recipe_name(TrainRecipe r) {
    return r == TrainRecipe::PROBE ? "probe" : "joint";
}

TrainRecipe train_recipe_from_name(const std::string& name) {
    if (name == "joint") {
        return TrainRecipe::JOINT;
    }
    if (name == "probe") {
        return TrainRecipe::PROBE;
    }
    throw std::invalid_argument("recipe must be joint or probe, not \"" +
                                name + "\"");
}

void JointTrainerConfig::check() const {
    FAISS_THROW_IF_NOT_FMT(B >= 2, "JointTrainerConfig: B = %d, must be >= 2",
                           B);
    FAISS_THROW_IF_NOT_FMT(H >= 1, "JointTrainerConfig: H = %d, must be >= 1",
                           H);
    double L = std::pow(double(B), double(H));
    FAISS_THROW_IF_NOT_FMT(L <= double(1 << 24),
                           "JointTrainerConfig: B^H = %g leaves, at most 2^24",
                           L);
    FAISS_THROW_IF_NOT_FMT(beam >= 1,
                           "JointTrainerConfig: beam = %d, must be >= 1", beam);
    FAISS_THROW_IF_NOT_FMT(d2l >= 1 && d2l <= L,
                           "JointTrainerConfig: d2l = %d outside [1, B^H]",
                           d2l);
    FAISS_THROW_IF_NOT_FMT(d_out >= 0 && hidden >= 0,
                           "JointTrainerConfig: d_out = %d and hidden = %d "
                           "must be >= 0",
                           d_out, hidden);
    FAISS_THROW_IF_NOT_MSG(encoder != EncoderKind::IDENTITY || hidden == 0,
                           "JointTrainerConfig: hidden > 0 needs a HEAD or "
                           "TEXT encoder, not IDENTITY");
    FAISS_THROW_IF_NOT_FMT(epochs >= -1,
                           "JointTrainerConfig: epochs = %d, must be >= 0 "
                           "(or -1: auto)",
                           epochs);
    FAISS_THROW_IF_NOT_FMT(batch >= 2,
                           "JointTrainerConfig: batch = %d, must be >= 2 "
                           "(in-batch negatives)",
                           batch);
    FAISS_THROW_IF_NOT_FMT(std::isfinite(enc_lr) && enc_lr > 0,
                           "JointTrainerConfig: enc_lr = %g, must be > 0",
                           enc_lr);
    FAISS_THROW_IF_NOT_FMT(std::isfinite(cl_lr) && cl_lr > 0,
                           "JointTrainerConfig: cl_lr = %g, must be > 0",
                           cl_lr);
    FAISS_THROW_IF_NOT_FMT(finite_nonneg(weight_decay),
                           "JointTrainerConfig: weight_decay = %g, must be "
                           ">= 0",
                           weight_decay);
    FAISS_THROW_IF_NOT_FMT(finite_nonneg(lambda1) && finite_nonneg(lambda2) &&
                                   finite_nonneg(lambda3),
                           "JointTrainerConfig: lambdas (%g, %g, %g) must be "
                           ">= 0",
                           lambda1, lambda2, lambda3);
    FAISS_THROW_IF_NOT_FMT(finite_nonneg(gamma),
                           "JointTrainerConfig: gamma = %g, must be >= 0",
                           gamma);
    FAISS_THROW_IF_NOT_FMT(std::isfinite(tau) && tau >= -1 && tau <= 1,
                           "JointTrainerConfig: tau = %g outside [-1, 1]",
                           tau);
    FAISS_THROW_IF_NOT_FMT(finite_nonneg(balance),
                           "JointTrainerConfig: balance = %g, must be >= 0",
                           balance);
    FAISS_THROW_IF_NOT_FMT(finite_nonneg(doc_routing),
                           "JointTrainerConfig: doc_routing = %g, must be "
                           ">= 0",
                           doc_routing);
    FAISS_THROW_IF_NOT_FMT(finite_nonneg(routing),
                           "JointTrainerConfig: routing = %g, must be >= 0",
                           routing);
    FAISS_THROW_IF_NOT_MSG(lambda1 + lambda2 + lambda3 + balance + routing > 0,
                           "JointTrainerConfig: every loss weight is 0");
    FAISS_THROW_IF_NOT_FMT(init == "kmeans" || init == "random",
                           "JointTrainerConfig: init = '%s', expected "
                           "'kmeans' or 'random'",
                           init.c_str());
    FAISS_THROW_IF_NOT_FMT(std::isfinite(joint_enc_lr),
                           "JointTrainerConfig: joint_enc_lr = %g, must be "
                           "finite (negative: enc_lr throughout)",
                           joint_enc_lr);
    FAISS_THROW_IF_NOT_MSG(!fixed_leaves || init == "kmeans" || paper_recipe,
                           "JointTrainerConfig: fixed_leaves needs init = "
                           "\"kmeans\" (the leaves are the k-means "
                           "centroids)");
    FAISS_THROW_IF_NOT_FMT(warmup_epochs >= -1,
                           "JointTrainerConfig: warmup_epochs = %d, must be "
                           ">= 0 (or -1: auto)",
                           warmup_epochs);
    FAISS_THROW_IF_NOT_FMT(refresh >= 1,
                           "JointTrainerConfig: refresh = %d, must be >= 1",
                           refresh);
    FAISS_THROW_IF_NOT_FMT(hard_negatives >= 0,
                           "JointTrainerConfig: hard_negatives = %d, must be "
                           ">= 0",
                           hard_negatives);
    FAISS_THROW_IF_NOT_FMT(de_negatives >= 0,
                           "JointTrainerConfig: de_negatives = %d, must be "
                           ">= 0",
                           de_negatives);
    FAISS_THROW_IF_NOT_MSG(!recluster || fixed_leaves || paper_recipe,
                           "JointTrainerConfig: recluster needs fixed_leaves "
                           "(it re-fits the leaves the documents are kept "
                           "at)");
    FAISS_THROW_IF_NOT_MSG(!balanced_targets || recluster || paper_recipe,
                           "JointTrainerConfig: balanced_targets needs "
                           "recluster (the targets are its assignment)");
    FAISS_THROW_IF_NOT_FMT(std::isfinite(tree_grad) && tree_grad >= 0 &&
                                   tree_grad <= 1,
                           "JointTrainerConfig: tree_grad = %g outside [0, 1]",
                           tree_grad);
    FAISS_THROW_IF_NOT_FMT(std::isfinite(leaf_slack) && leaf_slack >= 1,
                           "JointTrainerConfig: leaf_slack = %g, must be >= 1 "
                           "(times the ideal load)",
                           leaf_slack);
    FAISS_THROW_IF_NOT_FMT(std::isfinite(heldout_fraction) &&
                                   heldout_fraction >= 0 &&
                                   heldout_fraction < 1,
                           "JointTrainerConfig: heldout_fraction = %g outside "
                           "[0, 1)",
                           heldout_fraction);
    FAISS_THROW_IF_NOT_FMT(threads >= 0,
                           "JointTrainerConfig: threads = %d, must be >= 0",
                           threads);
    FAISS_THROW_IF_NOT_MSG(!resume || !checkpoint_dir.empty(),
                           "JointTrainerConfig: resume needs checkpoint_dir");
    FAISS_THROW_IF_NOT_MSG(recipe != TrainRecipe::PROBE ||
                                   (encoder == EncoderKind::IDENTITY &&
                                    form == NodeForm::PER_NODE),
                           "JointTrainerConfig: the probe recipe needs the "
                           "identity encoder and the per-node form (k-NN "
                           "data); use the joint recipe for relevance data");
    FAISS_THROW_IF_NOT_FMT(probe_k >= 1,
                           "JointTrainerConfig: probe_k = %d, must be >= 1",
                           probe_k);
    FAISS_THROW_IF_NOT_FMT(std::isfinite(collapse_load) && collapse_load > 1,
                           "JointTrainerConfig: collapse_load = %g, must be "
                           "> 1 (times the ideal load)",
                           collapse_load);
    FAISS_THROW_IF_NOT_FMT(stop_after_epoch == -1 || stop_after_epoch >= 1,
                           "JointTrainerConfig: stop_after_epoch = %d, must be "
                           "-1 or >= 1",
                           stop_after_epoch);
}

JointTrainerConfig JointTrainerConfig::resolved(int d_in) const {
    JointTrainerConfig c = *this;
    if (c.paper_recipe) {
        c.lambda1 = 0.2f;
        c.lambda2 = 0.8f;
        c.lambda3 = 0.2f;
        if (c.epochs < 0) {
            c.epochs = 100;
        }
        c.balance = 0;
        c.init = "random";
        c.routing = 0;
        c.warmup_epochs = 0;
        c.joint_enc_lr = -1;
        c.fixed_leaves = false;
        c.warmup_negatives = false;
        c.recluster = false;
        c.tree_grad = 1.0f;
        c.balanced_targets = false;
        c.de_negatives = 0;
        c.stop_on_collapse = false;
    }
    if (c.d_out == 0 || c.encoder == EncoderKind::IDENTITY) {
        c.d_out = d_in;
    }
    return c;
}

JointTrainerConfig JointTrainerConfig::scheduled(size_t train_pairs) const {
    JointTrainerConfig c = *this;
    if (c.epochs < 0) {
        if (c.recipe == TrainRecipe::PROBE) {
            c.epochs = 20;
        } else {
            // About 100,000 pairs seen (1,560 steps of 64): what the
            // dual encoder needed to converge on the development
            // collections (900 to 1,600 pairs, 100 to 120 epochs).
            double e = 1e5 / double(std::max<size_t>(train_pairs, 1));
            c.epochs = int(std::lround(std::min(120.0, std::max(10.0, e))));
        }
    }
    if (c.warmup_epochs < 0) {
        c.warmup_epochs = c.epochs / 2;
    }
    return c;
}

JointTrainerConfig JointTrainerConfig::dual_encoder() const {
    JointTrainerConfig de = *this;
    de.lambda1 = 1.0f;
    de.lambda2 = de.lambda3 = de.balance = de.routing = 0.0f;
    de.paper_recipe = false;
    de.warmup_epochs = 0;
    de.joint_enc_lr = -1.0f;
    de.fixed_leaves = false;
    de.recluster = false;
    de.balanced_targets = false;
    de.stop_on_collapse = false;
    de.checkpoint_dir.clear();
    de.resume = false;
    de.stop_after_epoch = -1;
    return de;
}

std::string JointTrainerConfig::fingerprint() const {
    // epochs, threads, progress and the checkpoint fields may change
    // between runs; everything else shapes the model.
    std::ostringstream s;
    s.precision(9);
    s << "B=" << B << " H=" << H << " form=" << int(form)
      << " use_bias=" << use_bias << " beam=" << beam << " d2l=" << d2l
      << " doc_assign=" << int(doc_assign)
      << " encoder=" << encoder_kind_name(encoder) << " d_out=" << d_out
      << " hidden=" << hidden << " normalize=" << normalize
      << " batch=" << batch << " enc_lr=" << enc_lr << " cl_lr=" << cl_lr
      << " weight_decay=" << weight_decay << " lambda1=" << lambda1
      << " lambda2=" << lambda2 << " lambda3=" << lambda3
      << " gamma=" << gamma << " tau=" << tau << " balance=" << balance
      << " routing=" << routing << " doc_routing=" << doc_routing
      << " init=" << init
      << " warmup_epochs=" << warmup_epochs
      << " joint_enc_lr=" << joint_enc_lr << " fixed_leaves=" << fixed_leaves
      << " warmup_negatives=" << warmup_negatives << " refresh=" << refresh
      << " hard_negatives=" << hard_negatives
      << " de_negatives=" << de_negatives << " recluster=" << recluster
      << " leaf_slack=" << leaf_slack << " tree_grad=" << tree_grad
      << " balanced_targets=" << balanced_targets
      << " paper_recipe=" << paper_recipe
      << " recipe=" << train_recipe_name(recipe) << " probe_k=" << probe_k
      << " heldout_fraction=" << heldout_fraction << " seed=" << seed;
    return s.str();
}

void PairData::check(EncoderKind kind, int64_t vocab_size) const {
    FAISS_THROW_IF_NOT_FMT(nq >= 1 && nd >= 1,
                           "PairData: nq = %zd and nd = %zd must be >= 1",
                           size_t(nq), size_t(nd));
    FAISS_THROW_IF_NOT_MSG(!pairs.empty(), "PairData: no relevance pairs");
    for (const auto& p : pairs) {
        FAISS_THROW_IF_NOT_FMT(p.first >= 0 && p.first < nq && p.second >= 0 &&
                                       p.second < nd,
                               "PairData: pair (%zd, %zd) out of range "
                               "(nq = %zd, nd = %zd)",
                               size_t(p.first), size_t(p.second), size_t(nq),
                               size_t(nd));
    }
    if (kind == EncoderKind::TEXT) {
        FAISS_THROW_IF_NOT_FMT(
                int64_t(query_tokens.size()) == nq &&
                        int64_t(doc_tokens.size()) == nd,
                "PairData: TEXT needs nq and nd token lists (got %zd, %zd)",
                query_tokens.size(), doc_tokens.size());
        for (const auto* side : {&query_tokens, &doc_tokens}) {
            for (const auto& toks : *side) {
                for (int64_t t : toks) {
                    FAISS_THROW_IF_NOT_FMT(t >= 0 && t < vocab_size,
                                           "PairData: token id %zd outside "
                                           "the vocabulary [0, %zd)",
                                           size_t(t), size_t(vocab_size));
                }
            }
        }
        return;
    }
    FAISS_THROW_IF_NOT_FMT(d >= 1, "PairData: d = %d, must be >= 1", d);
    FAISS_THROW_IF_NOT_FMT(
            query_vecs.size() == size_t(nq) * d &&
                    doc_vecs.size() == size_t(nd) * d,
            "PairData: %zd query floats and %zd doc floats, expected %zd x %d "
            "and %zd x %d",
            query_vecs.size(), doc_vecs.size(), size_t(nq), d, size_t(nd), d);
    for (const auto* v : {&query_vecs, &doc_vecs}) {
        for (size_t i = 0; i < v->size(); i++) {
            FAISS_THROW_IF_NOT_FMT(std::isfinite((*v)[i]),
                                   "PairData: non-finite value in %s vector "
                                   "%zd",
                                   v == &query_vecs ? "query" : "document",
                                   i / d);
        }
    }
}

} // namespace trainer
} // namespace faiss_ehi
