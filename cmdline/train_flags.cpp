/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */

#include "train_flags.h"

#include <map>
#include <sstream>
#include <stdexcept>

#include <gflags/gflags.h>

namespace ft = faiss_ehi::trainer;

// Tree
DEFINE_int32(B, 40, "branching factor of the tree");
DEFINE_int32(H, 1, "height of the tree (B^H leaves)");
DEFINE_string(form, "node", "node form: node (a classifier per node) or "
              "paper (per-level U_h, W_h with one-hot path inputs)");
DEFINE_int32(beam, 4, "beam width for hard negatives, held-out recall and "
             "the written index's default nprobe");
DEFINE_int32(d2l, 1, "leaves each document is stored in");
DEFINE_string(doc_assign, "probability", "where documents are stored: "
              "probability (the tree's most probable leaves) or nearest "
              "(nearest leaf representative)");
// Encoder
DEFINE_string(encoder, "head", "encoder: identity, head (learned head over "
              "the vectors) or text (GloVe embedding bag + head; BEIR data)");
DEFINE_int32(d_out, 0, "encoder output size (0: the input size)");
DEFINE_int32(hidden, 0, "hidden units of the head's residual MLP (0: none)");
DEFINE_bool(normalize, true, "L2-normalise the encoder output (inner "
            "product index); false: L2 index");
// Optimisation
DEFINE_int32(epochs, -1, "training epochs (-1: auto, about 100,000 "
             "pairs seen, within [10, 120] epochs; 20 for the probe recipe)");
DEFINE_int32(batch, 64, "relevance pairs per step");
DEFINE_double(enc_lr, 4e-4, "AdamW learning rate of the encoder");
DEFINE_double(cl_lr, 0.016, "AdamW learning rate of the tree (classifiers)");
DEFINE_double(weight_decay, 0.01, "AdamW weight decay");
DEFINE_double(lambda1, 1.0, "weight of the siamese loss");
DEFINE_double(lambda2, 0.8, "weight of the indexing loss");
DEFINE_double(lambda3, 0.2, "weight of the intra-leaf loss");
DEFINE_double(gamma, 0.3, "triplet margin");
DEFINE_double(tau, 0.9, "intra-leaf cosine gate");
DEFINE_double(balance, 0.0, "weight of the load-balance term (not in the "
              "paper; DESIGN.md section 7)");
DEFINE_double(routing, 1.0, "weight of the learned query-routing loss (not "
              "in the paper; DESIGN.md section 7)");
DEFINE_double(doc_routing, 1.0, "with --routing: weight (times --routing) "
              "of the same loss for documents toward their own leaves");
DEFINE_string(init, "kmeans", "tree initialisation: kmeans or random");
DEFINE_int32(warmup_epochs, -1, "siamese-only epochs before the tree "
             "trains (-1: auto, half of the epochs)");
DEFINE_double(joint_enc_lr, -1, "encoder learning rate once the tree trains "
              "(after the warm-up); negative: --enc_lr; 0: frozen");
DEFINE_bool(warmup_negatives, false, "mine hard negatives during the "
            "warm-up too (from a k-means tree on the current encoder)");
DEFINE_bool(fixed_leaves, true, "documents stay at their k-means leaves; "
            "the tree learns the query routing to them");
DEFINE_bool(recluster, true, "with --fixed_leaves: re-fit the leaves to "
            "the moving encoder's documents by balanced k-means every "
            "--refresh epochs once the tree trains");
DEFINE_double(leaf_slack, 1.1, "re-clustering: largest leaf at most this "
              "many times the ideal N/L");
DEFINE_double(tree_grad, 0.0, "share of the tree losses' gradient that "
              "reaches the encoder (1: the paper; 0: stop-gradient)");
DEFINE_bool(balanced_targets, false, "with --recluster: route toward the "
            "documents' leaves of the last balanced re-fit, not their "
            "nearest leaf now");
DEFINE_int32(de_negatives, 1, "hard negatives per query from the "
             "encoder's own exact top ranks (0: none)");
DEFINE_int32(refresh, 5, "hard negatives re-mined every r epochs");
DEFINE_int32(hard_negatives, 1, "hard negatives per query (0: in-batch only)");
DEFINE_bool(paper_recipe, false, "the paper as written: no balance term, "
            "random init, no routing loss, no warm-up");
DEFINE_string(recipe, "joint", "training procedure: joint (the paper's "
              "loop with the flags above; default for relevance data) or "
              "probe (k-NN data: flat k-means leaves, learned probing "
              "toward each sampled vector's nearest neighbours; default "
              "for fmnist, glove100, synthetic and vecs: data)");
DEFINE_int32(probe_k, 10, "probe recipe: neighbours per training query");
DEFINE_double(collapse_load, 2.0, "collapse guard: an empty leaf or an "
              "expected load above this many times ideal is a collapse");
DEFINE_bool(stop_on_collapse, true, "stop training with an error on a "
            "collapse (false: only log it)");
DEFINE_double(heldout_fraction, 0.1, "share of the training queries held out "
              "for the per-epoch recall");
DEFINE_uint64(seed, 1234, "random seed");
DEFINE_int32(threads, 0, "torch and OpenMP threads (0: all cores)");
DEFINE_string(checkpoint_dir, "", "write a checkpoint after every epoch here");
DEFINE_bool(resume, false, "continue from the checkpoint in --checkpoint_dir");
DEFINE_bool(progress, true, "progress bar per epoch on stderr");

namespace ehi_tools {

namespace {

bool is_default(const char* name) {
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name, &info)) {
        throw std::logic_error(std::string("no flag --") + name);
    }
    return info.is_default;
}

/// Per-data-set values for flags left at their defaults.
std::map<std::string, std::string> dataset_defaults(
        const faiss_ehi::data::RetrievalTask& t) {
    if (t.is_text) {
        // The relevance recipe is the flags' own defaults (those of
        // JointTrainerConfig); text data only needs the text encoder.
        return {{"encoder", "text"}};
    }
    // k-NN data: the Faiss drop-in's setting (identity encoder, ranking in
    // the data's own metric), trees of the mission's shapes.
    std::map<std::string, std::string> m = {
            {"encoder", "identity"}, {"normalize", "false"},
            {"epochs", "20"},        {"batch", "256"},
            {"refresh", "2"},        {"recipe", "probe"}};
    if (t.name == "fashion-mnist") {
        m["B"] = "16";
        m["H"] = "2";
    } else if (t.name.rfind("glove", 0) == 0) {
        m["B"] = "64";
        m["H"] = "2";
        m["normalize"] = "true";
    } else {
        m["B"] = "8";
        m["H"] = "2";
    }
    return m;
}

} // namespace

ft::JointTrainerConfig config_from_flags(
        const faiss_ehi::data::RetrievalTask& task) {
    for (const auto& kv : dataset_defaults(task)) {
        if (is_default(kv.first.c_str())) {
            gflags::SetCommandLineOptionWithMode(kv.first.c_str(),
                                                 kv.second.c_str(),
                                                 gflags::SET_FLAGS_DEFAULT);
        }
    }
    ft::JointTrainerConfig c;
    c.B = FLAGS_B;
    c.H = FLAGS_H;
    if (FLAGS_form == "node") {
        c.form = faiss_ehi::NodeForm::PER_NODE;
    } else if (FLAGS_form == "paper") {
        c.form = faiss_ehi::NodeForm::PAPER;
    } else {
        throw std::invalid_argument("--form must be node or paper, not \"" +
                                    FLAGS_form + "\"");
    }
    c.beam = FLAGS_beam;
    c.d2l = FLAGS_d2l;
    if (FLAGS_doc_assign == "probability") {
        c.doc_assign = faiss_ehi::DocAssignRule::PROBABILITY;
    } else if (FLAGS_doc_assign == "nearest") {
        c.doc_assign = faiss_ehi::DocAssignRule::NEAREST_LEAF;
    } else {
        throw std::invalid_argument(
                "--doc_assign must be probability or nearest, not \"" +
                FLAGS_doc_assign + "\"");
    }
    try {
        c.encoder = ft::encoder_kind_from_name(FLAGS_encoder);
    } catch (const std::exception& e) {
        throw std::invalid_argument("--encoder: " + std::string(e.what()));
    }
    if (task.is_text != (c.encoder == ft::EncoderKind::TEXT)) {
        throw std::invalid_argument(
                task.is_text ? "--encoder must be text for text data (BEIR)"
                             : "--encoder text needs text data (beir:DIR)");
    }
    c.d_out = FLAGS_d_out;
    c.hidden = FLAGS_hidden;
    c.normalize = FLAGS_normalize;
    c.epochs = FLAGS_epochs;
    c.batch = FLAGS_batch;
    c.enc_lr = float(FLAGS_enc_lr);
    c.cl_lr = float(FLAGS_cl_lr);
    c.weight_decay = float(FLAGS_weight_decay);
    c.lambda1 = float(FLAGS_lambda1);
    c.lambda2 = float(FLAGS_lambda2);
    c.lambda3 = float(FLAGS_lambda3);
    c.gamma = float(FLAGS_gamma);
    c.tau = float(FLAGS_tau);
    c.balance = float(FLAGS_balance);
    c.routing = float(FLAGS_routing);
    c.doc_routing = float(FLAGS_doc_routing);
    c.init = FLAGS_init;
    c.warmup_epochs = FLAGS_warmup_epochs;
    c.joint_enc_lr = float(FLAGS_joint_enc_lr);
    c.fixed_leaves = FLAGS_fixed_leaves;
    c.warmup_negatives = FLAGS_warmup_negatives;
    c.refresh = FLAGS_refresh;
    c.hard_negatives = FLAGS_hard_negatives;
    c.de_negatives = FLAGS_de_negatives;
    c.recluster = FLAGS_recluster;
    c.leaf_slack = float(FLAGS_leaf_slack);
    c.tree_grad = float(FLAGS_tree_grad);
    c.balanced_targets = FLAGS_balanced_targets;
    c.paper_recipe = FLAGS_paper_recipe;
    c.recipe = ft::train_recipe_from_name(FLAGS_recipe);
    c.probe_k = FLAGS_probe_k;
    c.collapse_load = float(FLAGS_collapse_load);
    c.stop_on_collapse = FLAGS_stop_on_collapse;
    if (c.recipe == ft::TrainRecipe::PROBE) {
        // The joint loop's settings mean nothing to the probe recipe: a
        // user who sets one expects it to act, so say which recipe runs.
        std::string ignored;
        for (const char* f :
             {"batch", "enc_lr", "cl_lr", "weight_decay", "lambda1",
              "lambda2", "lambda3", "gamma", "tau", "balance", "routing",
              "init", "warmup_epochs", "joint_enc_lr", "warmup_negatives",
              "fixed_leaves", "refresh", "hard_negatives", "paper_recipe",
              "de_negatives", "recluster", "leaf_slack", "tree_grad",
              "doc_routing", "balanced_targets",
              "d_out", "hidden", "checkpoint_dir", "resume"}) {
            if (!is_default(f)) {
                ignored += std::string(ignored.empty() ? "" : ", ") + "--" + f;
            }
        }
        if (!ignored.empty()) {
            throw std::invalid_argument(
                    "bad training flags: " + ignored +
                    " belong to --recipe joint, but this run uses --recipe "
                    "probe (the default for k-NN data); add --recipe joint "
                    "to train with them");
        }
    }
    c.heldout_fraction = float(FLAGS_heldout_fraction);
    c.seed = FLAGS_seed;
    c.threads = FLAGS_threads;
    c.checkpoint_dir = FLAGS_checkpoint_dir;
    c.resume = FLAGS_resume;
    c.progress = FLAGS_progress;
    try {
        c.check();
    } catch (const std::exception& e) {
        throw std::invalid_argument(std::string("bad training flags: ") +
                                    e.what());
    }
    return c;
}

namespace {
/// An epoch count, "auto" for -1 (resolved by the trainer).
std::string epochs_text(int e) {
    return e < 0 ? std::string("auto") : std::to_string(e);
}
} // namespace

std::string describe_config(const ft::JointTrainerConfig& given) {
    // What training will use: the paper recipe overrides some fields.
    ft::JointTrainerConfig c = given.resolved(1);
    c.d_out = given.d_out;
    std::ostringstream o;
    o << "B=" << c.B << " H=" << c.H
      << " form=" << (c.form == faiss_ehi::NodeForm::PAPER ? "paper" : "node")
      << " beam=" << c.beam << " d2l=" << c.d2l << " doc_assign="
      << (c.doc_assign == faiss_ehi::DocAssignRule::NEAREST_LEAF
                  ? "nearest"
                  : "probability")
      << " encoder=" << ft::encoder_kind_name(c.encoder)
      << " d_out=" << c.d_out << " hidden=" << c.hidden
      << " normalize=" << c.normalize
      << " epochs=" << epochs_text(c.epochs) << " batch=" << c.batch << " enc_lr=" << c.enc_lr
      << " cl_lr=" << c.cl_lr << " weight_decay=" << c.weight_decay
      << " lambda1=" << c.lambda1 << " lambda2=" << c.lambda2
      << " lambda3=" << c.lambda3 << " gamma=" << c.gamma
      << " tau=" << c.tau << " balance=" << c.balance
      << " routing=" << c.routing << " doc_routing=" << c.doc_routing
      << " init=" << c.init
      << " warmup_epochs=" << epochs_text(c.warmup_epochs)
      << " joint_enc_lr=" << c.joint_enc_lr
      << " fixed_leaves=" << c.fixed_leaves
      << " warmup_negatives=" << c.warmup_negatives << " refresh=" << c.refresh
      << " hard_negatives=" << c.hard_negatives
      << " de_negatives=" << c.de_negatives << " recluster=" << c.recluster
      << " leaf_slack=" << c.leaf_slack << " tree_grad=" << c.tree_grad
      << " balanced_targets=" << c.balanced_targets
      << " paper_recipe=" << c.paper_recipe << " seed=" << c.seed;
    if (c.recipe == ft::TrainRecipe::PROBE) {
        // only these shape a probe-recipe model
        o.str("");
        o << "recipe=probe B=" << c.B << " H=" << c.H << " beam=" << c.beam
          << " d2l=" << c.d2l << " normalize=" << c.normalize
          << " epochs=" << epochs_text(c.epochs) << " probe_k=" << c.probe_k
          << " seed=" << c.seed;
    } else {
        o << " recipe=joint";
    }
    return o.str();
}

} // namespace ehi_tools
