/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The joint trainer's settings (JointTrainerConfig), described once in
 * FAISS_EHI_JOINT_CONFIG_FIELDS: name, type, default, valid values, role
 * and help of every field. The struct's members, its checks, the resume
 * fingerprint, the description line of logs and result files, the command
 * line flags of the tools and the Python keyword arguments are all made
 * from that one list, so that a new setting reaches every one of them.
 * Torch-free: tools include it without LibTorch.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/enum_names.h>
#include <faiss_ehi/trainer/EncoderConfig.h>

namespace faiss_ehi {

namespace trainer {

/// Which training procedure JointTrainer runs (see the `recipe` field).
enum class TrainRecipe : int { JOINT = 0, PROBE = 1 };

/// How the tree starts when it starts training (the `init` field).
enum class TreeInit : int {
    /// (hierarchical) k-means on the encoded documents, temperatures
    /// fitted on the training pairs
    KMEANS = 0,
    /// seeded random tree (the paper)
    RANDOM = 1,
};

/// What a field of JointTrainerConfig is part of (bits of
/// ConfigField::roles).
namespace field_role {
/// Shapes the trained model: part of the resume fingerprint.
constexpr unsigned MODEL = 1;
/// In the description line of a joint-recipe run.
constexpr unsigned DESCRIBED = 2;
/// In the description line of a probe-recipe run.
constexpr unsigned PROBE = 4;
/// Means nothing to the probe recipe: a tool that is told to set it for a
/// probe-recipe run says so rather than ignoring it.
constexpr unsigned JOINT_ONLY = 8;
/// -1 means "resolved by the trainer" and is described as "auto".
constexpr unsigned AUTO = 16;
} // namespace field_role

} // namespace trainer

template <>
struct EnumNames<trainer::TrainRecipe> {
    static const std::vector<std::pair<trainer::TrainRecipe, const char*>>&
    all();
};

template <>
struct EnumNames<trainer::TreeInit> {
    static const std::vector<std::pair<trainer::TreeInit, const char*>>& all();
};

namespace trainer {

// clang-format off
/** Every setting of the joint trainer, one X(...) each:
 *   X(type, name, default, valid, valid_text, roles, help)
 * `valid` is a condition on the value `v` (floats must also be finite;
 * enumerations must be one of their named values); `valid_text` says it
 * in words for error messages and help. The defaults are the relevance
 * recipe (docs/DESIGN.md, "Relevance data: the default recipe"), chosen on
 * held-out training queries of the development collections; the k-NN
 * tools change some of them per data set (their flags say which). */
#define FAISS_EHI_JOINT_CONFIG_FIELDS(X)                                       \
    /* ---- tree */                                                            \
    X(int, B, 40, v >= 2, ">= 2",                                              \
      MODEL | DESCRIBED | PROBE,                                               \
      "branching factor of the tree")                                          \
    X(int, H, 1, v >= 1, ">= 1",                                               \
      MODEL | DESCRIBED | PROBE,                                               \
      "height of the tree (B^H leaves, at most 2^24)")                         \
    X(::faiss_ehi::NodeForm, form, ::faiss_ehi::NodeForm::PER_NODE, true, "",  \
      MODEL | DESCRIBED,                                                       \
      "node form: node (a classifier per node) or paper (per-level U_h, W_h "  \
      "with one-hot path inputs)")                                             \
    X(bool, use_bias, true, true, "",                                          \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "paper node form: a bias per level")                                     \
    X(int, beam, 4, v >= 1, ">= 1",                                            \
      MODEL | DESCRIBED | PROBE,                                               \
      "beam for hard negatives, held-out recall and the written index's "      \
      "default nprobe")                                                        \
    X(int, d2l, 1, v >= 1, ">= 1",                                             \
      MODEL | DESCRIBED | PROBE,                                               \
      "leaves each document is stored in (at most B^H)")                       \
    X(::faiss_ehi::DocAssignRule, doc_assign,                                  \
      ::faiss_ehi::DocAssignRule::PROBABILITY, true, "",                       \
      MODEL | DESCRIBED,                                                       \
      "where the built index stores documents: probability (the tree's most "  \
      "probable leaves, the paper), nearest (nearest leaf representative) or " \
      "soar; fixed_leaves stores them at the nearest leaf")                    \
    /* ---- encoder */                                                         \
    X(EncoderKind, encoder, EncoderKind::HEAD, true, "",                       \
      MODEL | DESCRIBED,                                                       \
      "encoder: identity, head (learned head over the vectors) or text "       \
      "(GloVe embedding bag + head; BEIR data)")                               \
    X(int, d_out, 0, v >= 0, ">= 0",                                           \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "encoder output size (0: the input size)")                               \
    X(int, hidden, 0, v >= 0, ">= 0",                                          \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "hidden units of the head's residual MLP (0: none)")                     \
    X(bool, normalize, true, true, "",                                         \
      MODEL | DESCRIBED | PROBE,                                               \
      "L2-normalise the encoder output (inner-product index); false: L2 "      \
      "index")                                                                 \
    /* ---- optimisation */                                                    \
    X(int, epochs, -1, v >= -1, ">= 0 (or -1: auto)",                          \
      DESCRIBED | PROBE | AUTO,                                                \
      "passes over the training pairs; -1: auto, about 100,000 pairs seen "    \
      "(100000 / pairs epochs within [10, 120]; 20 for the probe recipe), "    \
      "so that training time follows the data")                                \
    X(int, batch, 64, v >= 2, ">= 2 (in-batch negatives)",                     \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "relevance pairs per step")                                              \
    X(float, enc_lr, 4e-4f, v > 0, "> 0",                                      \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "AdamW learning rate of the encoder")                                    \
    X(float, cl_lr, 0.016f, v > 0, "> 0",                                      \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "AdamW learning rate of the tree (classifiers)")                         \
    X(float, weight_decay, 0.01f, v >= 0, ">= 0",                              \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "AdamW decoupled weight decay (encoder and tree)")                       \
    /* ---- loss (the paper's eq. 2 to 6, docs/DESIGN.md, "The losses") */     \
    X(float, lambda1, 1.0f, v >= 0, ">= 0",                                    \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "weight of the siamese loss")                                            \
    X(float, lambda2, 0.8f, v >= 0, ">= 0",                                    \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "weight of the indexing loss (triplet on path embeddings)")              \
    X(float, lambda3, 0.2f, v >= 0, ">= 0",                                    \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "weight of the intra-leaf loss")                                         \
    X(float, gamma, 0.3f, v >= 0, ">= 0",                                      \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "triplet margin")                                                        \
    X(float, tau, 0.9f, v >= -1 && v <= 1, "in [-1, 1]",                       \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "intra-leaf cosine gate")                                                \
    X(float, balance, 0.0f, v >= 0, ">= 0",                                    \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "weight of KL(mean leaf distribution || uniform) over a uniform "        \
      "sample of batch corpus documents per step (not in the paper)")          \
    X(float, routing, 1.0f, v >= 0, ">= 0",                                    \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "weight of a cross-entropy of each query's leaf distribution toward "    \
      "the leaf of its relevant document: learned query routing (not in the " \
      "paper); 0: off")                                                        \
    X(float, doc_routing, 1.0f, v >= 0, ">= 0",                                \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "with routing: weight (times routing) of the same cross-entropy for "    \
      "documents toward their own leaves, which keeps the router near "        \
      "nearest-leaf routing where training queries are few")                   \
    X(bool, doc_routing_corpus, true, true, "",                                \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "doc_routing: route documents drawn uniformly from the corpus (as many " \
      "as the step has), so that documents no training pair touches are "     \
      "routed too; false: the step's own documents")                           \
    X(int, doc_routing_window, 0, v >= -1, ">= 0 (or -1: auto)",               \
      MODEL | DESCRIBED | JOINT_ONLY | AUTO,                                   \
      "doc_routing, text encoder: route a random window of this many tokens "  \
      "of each document (a query-like excerpt) toward the whole document's "   \
      "leaf; 0: the whole document; -1: the median training query length")     \
    X(TreeInit, init, TreeInit::KMEANS, true, "",                              \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "tree initialisation: kmeans (k-means on the encoded documents, "        \
      "temperatures fitted on the training pairs) or random (the paper)")      \
    X(int, warmup_epochs, -1, v >= -1, ">= 0 (or -1: auto)",                   \
      MODEL | DESCRIBED | JOINT_ONLY | AUTO,                                   \
      "siamese-only epochs before the tree trains; -1: auto, half of the "     \
      "epochs")                                                                \
    X(bool, warmup_negatives, false, true, "",                                 \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "mine index hard negatives during the warm-up too, every refresh "       \
      "epochs, from a k-means tree on the current encoder")                    \
    X(float, joint_enc_lr, -1.0f, true, "finite",                              \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "encoder learning rate once the tree trains (after the warm-up); "       \
      "negative: enc_lr throughout; 0: frozen, the tree learns on the "        \
      "warm-up dual encoder")                                                  \
    X(bool, fixed_leaves, true, true, "",                                      \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "documents stay at their k-means leaves (needs init kmeans): stored at " \
      "the nearest centroid, the routing loss targets that leaf, so the tree " \
      "learns where queries must go rather than moving the documents")         \
    X(bool, recluster, true, true, "",                                         \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "with fixed_leaves: every refresh epochs once the tree trains, re-fit "  \
      "the leaves to the moving encoder's documents by balanced k-means "      \
      "started from the current leaves (no leaf above leaf_slack N / L), so "  \
      "that the encoder keeps learning without the leaves collapsing")         \
    X(float, tree_grad, 0.005f, v >= 0 && v <= 1, "in [0, 1]",                 \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "share of the tree terms' gradient that reaches the encoder (the tree "  \
      "gets all of it); 1: the paper, fully end-to-end; 0: stop-gradient. "    \
      "The default small share pulls the corpus documents toward their "       \
      "leaves, which makes the encoder easier to partition, and leaves the "   \
      "ranking to the siamese loss. Without balanced_targets the encoder can " \
      "gather the documents in one leaf")                                      \
    X(float, leaf_slack, 1.1f, v >= 1, ">= 1 (times the ideal load)",          \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "re-clustering: largest leaf at most this many times the ideal N / L")   \
    X(float, drift_refit, 1.3f, v == 0 || v >= 1, "0 or >= 1",                 \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "with recluster: re-fit the leaves at once when, at the end of a tree "  \
      "epoch, a leaf is empty or the expected load exceeds this many times "   \
      "the ideal (the encoder moved the documents since the last re-fit); "    \
      "0: only every refresh epochs")                                          \
    X(bool, balanced_targets, true, true, "",                                  \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "with recluster: route toward the documents' leaves of the last "        \
      "balanced re-fit rather than their nearest leaf now, so that an "        \
      "encoder given the tree's gradient cannot make routing easy by moving "  \
      "the documents; without recluster (no balanced assignment) the "         \
      "targets are the nearest leaves")                                        \
    X(int, refresh, 5, v >= 1, ">= 1",                                         \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "hard negatives re-mined (and leaves re-fitted) every r epochs")         \
    X(int, hard_negatives, 1, v >= 0, ">= 0",                                  \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "hard negatives per training query from the leaves its beam reaches "    \
      "(0: in-batch only)")                                                    \
    X(int, de_negatives, 1, v >= 0, ">= 0",                                    \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "hard negatives per training query from the encoder's own exact top "    \
      "ranks, from the first epoch on: they sharpen the dual encoder's top "   \
      "ranks (0: none)")                                                       \
    X(bool, paper_recipe, false, true, "",                                     \
      MODEL | DESCRIBED | JOINT_ONLY,                                          \
      "the paper as written (its Table 2 SciFact row): lambdas 0.2/0.8/0.2, "  \
      "random init, the full gradient, no balance, routing, warm-up, fixed "   \
      "leaves, re-clustering or DE negatives, 100 epochs when auto")           \
    X(TrainRecipe, recipe, TrainRecipe::JOINT, true, "",                       \
      MODEL | DESCRIBED,                                                       \
      "training procedure: joint (the paper's loop with the settings above; "  \
      "relevance data) or probe (k-NN data: flat k-means leaves, documents "   \
      "at their nearest leaf, learned probing toward each sampled vector's "   \
      "nearest neighbours, probe calibration)")                                \
    X(int, probe_k, 10, v >= 1, ">= 1",                                        \
      MODEL | PROBE,                                                           \
      "probe recipe: neighbours per training query")                           \
    /* ---- run */                                                             \
    X(float, collapse_load, 2.0f, v > 1, "> 1 (times the ideal load)",         \
      0,                                                                       \
      "collapse guard, after every tree epoch: an empty leaf or an expected "  \
      "load above this many times ideal is a collapse")                        \
    X(bool, stop_on_collapse, true, true, "",                                  \
      0,                                                                       \
      "stop training with an error on a collapse (the checkpoint stays the "   \
      "previous epoch's); false: only log it; the paper recipe only logs")     \
    X(float, heldout_fraction, 0.1f, v >= 0 && v < 1, "in [0, 1)",             \
      MODEL | DESCRIBED,                                                       \
      "share of the training queries held out for the per-epoch recall")       \
    X(uint64_t, seed, 1234, true, "",                                          \
      MODEL | DESCRIBED | PROBE,                                               \
      "random seed")                                                           \
    X(int, threads, 0, v >= 0, ">= 0",                                         \
      0,                                                                       \
      "torch and OpenMP threads (0: all cores)")                               \
    X(std::string, checkpoint_dir, "", true, "",                               \
      JOINT_ONLY,                                                              \
      "write a checkpoint after every epoch in this directory (empty: none)")  \
    X(bool, resume, false, true, "",                                           \
      JOINT_ONLY,                                                              \
      "continue from the checkpoint in checkpoint_dir (bit-identical)")        \
    X(bool, progress, true, true, "",                                          \
      0,                                                                       \
      "progress bar with the time left on stderr")
// clang-format on

/** Hyper-parameters of JointTrainer: one member per entry of
 * FAISS_EHI_JOINT_CONFIG_FIELDS above (see there for each one's meaning,
 * default and valid values). Defaults: the relevance recipe. */
struct JointTrainerConfig {
#define FAISS_EHI_DECLARE_FIELD(type, name, def, valid, valid_text, roles,     \
                                help)                                          \
    type name = def;
    FAISS_EHI_JOINT_CONFIG_FIELDS(FAISS_EHI_DECLARE_FIELD)
#undef FAISS_EHI_DECLARE_FIELD

    /// Throws faiss::FaissException naming the first bad field and value.
    void check() const;
    /** The config with epochs and warmup_epochs resolved (auto values)
     * for `train_pairs` training pairs. */
    JointTrainerConfig scheduled(size_t train_pairs) const;
    /** The same run as a siamese-only dual encoder (the paper's DE
     * baseline): the same encoder, negatives, epochs, seed and held-out
     * split, every tree term and tree-only setting off, the encoder at
     * enc_lr throughout, no checkpoints. Its tree only mines negatives, so
     * the collapse guard does not stop it. */
    JointTrainerConfig dual_encoder() const;
    /** The config with paper_recipe applied and d_out resolved against
     * the input dimension d_in. */
    JointTrainerConfig resolved(int d_in) const;
    /// Every field that shapes the model, name=value (resume check).
    std::string fingerprint() const;
    /** The run as training will do it (paper_recipe applied), one
     * name=value per field that shapes its result, for logs and result
     * files: "recipe=probe" and the probe recipe's fields for that recipe;
     * auto values are written "auto". */
    std::string describe() const;
};

/// The kind of value a field holds.
enum class ConfigFieldType { INT, FLOAT, BOOL, UINT64, STRING, ENUM };

/** One entry of FAISS_EHI_JOINT_CONFIG_FIELDS, for code that handles every
 * field alike (flags, Python, checks, descriptions). */
struct ConfigField {
    const char* name;
    ConfigFieldType type;
    unsigned roles;         ///< field_role bits
    const char* valid_text; ///< valid values in words ("" : any)
    const char* help;
    /// ENUM: the names of the values, with their integer values.
    std::vector<std::pair<std::string, int>> choices;
    /** The value as text: integers and names as they are, booleans 1 / 0,
     * floats with `precision` significant digits. */
    std::function<std::string(const JointTrainerConfig&, int precision)> text;
    /** Set the field from text (integers, floats, true/false/1/0, the
     * enumeration's value names); throws faiss::FaissException naming the
     * field for text that is not such a value. The range is checked by
     * check(), not here. */
    std::function<void(JointTrainerConfig&, const std::string&)> parse;
    /// Throws faiss::FaissException naming the field if its value is bad.
    std::function<void(const JointTrainerConfig&)> check;
};

/// Every field, in declaration order.
const std::vector<ConfigField>& joint_config_fields();

/// The field named `name`, or nullptr.
const ConfigField* find_joint_config_field(const std::string& name);

} // namespace trainer
} // namespace faiss_ehi
