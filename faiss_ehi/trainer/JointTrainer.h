/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The paper's joint encoder + tree training loop (Algorithm 1; DESIGN.md
 * sections 2 and 7). Torch-free header: tools fill the config and the data
 * and get a ready (empty) faiss index back.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <faiss/Index.h>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/trainer/EncoderConfig.h>

namespace faiss_ehi {
namespace trainer {

/// Which training procedure JointTrainer runs (see JointTrainerConfig).
enum class TrainRecipe : int { JOINT = 0, PROBE = 1 };

/// "joint" / "probe".
const char* train_recipe_name(TrainRecipe r);
/// Parses "joint" or "probe"; throws std::invalid_argument otherwise.
TrainRecipe train_recipe_from_name(const std::string& name);

/** Hyper-parameters of JointTrainer. Defaults: the relevance recipe
 * (docs/DESIGN.md, "Relevance data"), chosen on held-out training queries
 * of the development collections: the paper's shapes and rates (B = 40,
 * H = 1, batch 64, enc_lr 4e-4, cl_lr 0.016), a dual-encoder warm-up,
 * then k-means leaves re-clustered (balanced) as the encoder keeps
 * training, the tree learning the query routing with its gradient stopped
 * at the encoder; epochs from the data's size. paper_recipe = true runs
 * the paper as written (its Table 2 SciFact row). */
struct JointTrainerConfig {
    // tree
    int B = 40;                         ///< branching factor
    int H = 1;                          ///< height; B^H leaves
    NodeForm form = NodeForm::PER_NODE; ///< node form of the tree
    bool use_bias = true;               ///< paper form: bias per level
    int beam = 4;  ///< beam for hard negatives and held-out recall
    int d2l = 1;   ///< leaves per document in the built index
    /// How the built index places documents (PROBABILITY: the tree, as in
    /// the paper; NEAREST_LEAF: leaf representative nearest).
    DocAssignRule doc_assign = DocAssignRule::PROBABILITY;

    // encoder
    EncoderKind encoder = EncoderKind::HEAD;
    int d_out = 0;         ///< encoder output size; 0: = input size
    int hidden = 0;        ///< hidden size of the head's MLP branch
    bool normalize = true; ///< L2-normalise E(x); index metric IP, else L2

    // optimisation
    /** Passes over the training pairs. -1: auto, about 100,000 pairs seen
     * (100000 / pairs epochs, within [10, 120]): small collections get many
     * epochs, a large one a few, so that training time follows the data
     * (see scheduled()). */
    int epochs = -1;
    int batch = 64;              ///< relevance pairs per step
    float enc_lr = 4e-4f;        ///< AdamW, encoder parameters
    float cl_lr = 0.016f;        ///< AdamW, tree parameters
    float weight_decay = 0.01f;  ///< AdamW decoupled weight decay (both)

    // loss (DESIGN.md section 2, paper eq. 2-6)
    float lambda1 = 1.0f; ///< siamese
    float lambda2 = 0.8f; ///< indexing (triplet on path embeddings)
    float lambda3 = 0.2f; ///< intra-leaf
    float gamma = 0.3f;   ///< triplet margin
    float tau = 0.9f;     ///< intra-leaf cosine gate
    /** bal * KL(mean joint leaf distribution || uniform) (DESIGN.md 7.2),
     * the mean taken over a uniform sample of `batch` corpus documents per
     * step (the stored documents decide the leaf loads). */
    float balance = 0.0f;
    /** Weight of a cross-entropy of each query's leaf distribution toward
     * the leaf its relevant document is routed to (DESIGN.md 7, learned
     * query routing). 0: off. */
    float routing = 1.0f;
    /** With routing: the same cross-entropy for the step's documents
     * (positives and negatives) toward their own leaves, weighted by
     * routing * doc_routing. It pulls the router toward nearest-leaf
     * routing, which generalises, so that a collection with few training
     * queries does not end with a router fitted to them alone. 0: off. */
    float doc_routing = 1.0f;

    /** "kmeans": the tree from (hierarchical) k-means on the encoded
     * documents, per-level temperatures fitted on the training pairs;
     * "random": seeded random tree (the paper). */
    std::string init = "kmeans";
    /// siamese-only epochs before the tree starts; -1: auto, half of the
    /// epochs (the other half train the tree and the encoder together)
    int warmup_epochs = -1;
    /** During the warm-up, mine hard negatives every `refresh` epochs too,
     * from a k-means tree fitted to the current encoder (the tree proper is
     * initialised again when the warm-up ends). */
    bool warmup_negatives = false;
    /** Encoder learning rate once the tree has started (after the warm-up);
     * negative: enc_lr throughout. 0 freezes the encoder after the
     * warm-up, so that the tree learns on fixed embeddings (with
     * fixed_leaves: the learned query routing of DESIGN.md section 7 over
     * the warm-up dual encoder). */
    float joint_enc_lr = -1.0f;
    /** Documents stay at their k-means leaves (needs init = "kmeans"): the
     * leaf representatives stay the k-means centroids, documents are stored
     * at the nearest one (doc_assign is then NEAREST_LEAF), and the routing
     * loss targets the leaf of that centroid, so the tree learns where the
     * queries must go rather than moving the documents. */
    bool fixed_leaves = true;
    /** With fixed_leaves: every `refresh` epochs once the tree trains,
     * the leaves are fitted again to the moving encoder's documents by
     * balanced k-means (started from the current leaves, so that each leaf
     * keeps its identity for the tree's classifiers; no leaf above
     * leaf_slack times N / L while training), so that the encoder can keep
     * learning (joint_enc_lr != 0) without the leaves collapsing. */
    bool recluster = true;
    /** Share of the tree terms' gradient (indexing, intra-leaf, balance,
     * routing) that reaches the encoder, in [0, 1]; the tree itself always
     * gets all of it. 1: the paper (fully end-to-end). 0: stop-gradient,
     * the encoder learns from the siamese term and the index-mined
     * negatives only. With the routing term and a moving encoder, a full
     * gradient lets the encoder gather every document in one leaf, which
     * makes routing trivial (a collapse within one epoch). */
    float tree_grad = 0.0f;
    float leaf_slack = 1.1f; ///< capacity of a leaf in re-clustering, >= 1
    /** With recluster: the routing targets are the documents' leaves in
     * the last balanced assignment (fixed until the next re-fit) rather
     * than their nearest leaf under the current encoder, so that an
     * encoder that gets the tree's gradient (tree_grad > 0) cannot make
     * routing easy by moving the documents. */
    bool balanced_targets = false;
    int refresh = 5;        ///< hard negatives re-mined every r epochs
    /** Per training query, from the leaves its beam reaches (mined from
     * the first tree epoch on). A pair whose query has none uses the next
     * pair's document of the step as its row-aligned negative. */
    int hard_negatives = 1;
    /** Per training query, hard negatives from the encoder's own top ranks
     * (exact search over all documents, relevant ones skipped), re-mined
     * every `refresh` epochs from the first epoch on, warm-up included:
     * they sharpen the dual encoder's top ranks, where the index-mined
     * ones only reach the documents of the probed leaves. 0: off. */
    int de_negatives = 1;
    /** The paper as written, its Table 2 SciFact row: lambdas 0.2 / 0.8 /
     * 0.2, random init, no balance, routing, warm-up, fixed leaves,
     * re-clustering or DE negatives, the full gradient, 100 epochs when
     * epochs is auto (overrides those fields). */
    bool paper_recipe = false;

    /** JOINT: the paper's joint loop (Algorithm 1) with the fields above.
     * PROBE: the k-NN recipe (identity encoder, per-node form): flat
     * k-means leaves in balanced groups, documents at their nearest leaf,
     * learned probing toward the leaves of each sampled document's
     * `probe_k` nearest neighbours (ProbeTrainer, `epochs` epochs) and
     * probe calibration; the TorchTreeTrainer drop-in on the documents. */
    TrainRecipe recipe = TrainRecipe::JOINT;
    int probe_k = 10; ///< PROBE: neighbours per training query

    /** Collapse guard, checked on the documents' leaves after every epoch
     * once the tree trains: any empty leaf, or an expected load above
     * collapse_load times the ideal N/L, is a collapse. It is logged with
     * its figures; with stop_on_collapse the run stops there with an
     * error (the last checkpoint stays the one before). paper_recipe
     * turns the stop off, so that the paper's collapse can be observed. */
    float collapse_load = 2.0f;
    bool stop_on_collapse = true;

    float heldout_fraction = 0.1f; ///< of the training queries, in [0, 1)
    uint64_t seed = 1234;
    int threads = 0; ///< torch and OpenMP threads; 0: all cores

    std::string checkpoint_dir; ///< "": no checkpoints
    bool resume = false;        ///< continue from checkpoint_dir
    bool progress = true;       ///< progress bar on stderr
    /** Test hook: return after this many finished epochs as if killed,
     * the checkpoint written; the returned JointModel then holds only the
     * history (no index). -1: off. */
    int stop_after_epoch = -1;

    /// Throws faiss::FaissException naming the first bad field.
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
    /// Text of every field that changes the trained model (resume check).
    std::string fingerprint() const;
};

/** Relevance pairs and their inputs: vectors (IDENTITY, HEAD) or token ids
 * (TEXT), the same form for queries and documents. */
struct PairData {
    int64_t nq = 0;
    int64_t nd = 0;
    int d = 0; ///< vector size (vector input)
    std::vector<float> query_vecs; ///< nq x d
    std::vector<float> doc_vecs;   ///< nd x d
    std::vector<std::vector<int64_t>> query_tokens; ///< vocabulary ids (TEXT)
    std::vector<std::vector<int64_t>> doc_tokens;   ///< vocabulary ids (TEXT)
    std::vector<std::pair<int64_t, int64_t>> pairs; ///< (query, relevant doc)

    /// Throws unless sizes and ids are consistent for `kind`.
    void check(EncoderKind kind, int64_t vocab_size) const;
};

/// What one epoch measured (means over the epoch's steps).
struct EpochStats {
    int epoch = 0; ///< 1-based
    float loss = 0, siamese = 0, indexing = 0, intra_leaf = 0;
    float balance_term = 0, routing_term = 0; ///< before their weights
    /// max over leaves of documents stored / (N / L) at the end of the epoch
    double max_load = 0;
    /// expected documents scanned per document, sum c_l^2 / N, over N / L
    double expected_load = 0;
    int empty_leaves = 0;
    /// recall@100 of the held-out queries' relevant docs at `beam`; -1: none
    double heldout_recall = -1;
    double seconds = 0; ///< wall time of the epoch
};

/// The result of JointTrainer::train.
struct JointModel {
    /** Trained and EMPTY: IndexPreTransform(EncoderHead) -> IndexEHITree
     * (IndexEHITree alone for IDENTITY), nprobe = beam, metric IP when
     * normalize else L2. Input: the raw vectors, or TextEncoder output for
     * TEXT. Add the documents, then search. */
    std::unique_ptr<faiss::Index> index;
    /// TEXT only: texts -> the index's input vectors.
    std::unique_ptr<faiss_ehi::TextEncoder> text_encoder;
    std::vector<EpochStats> history;
};

/** EHI's joint training (Algorithm 1 of the paper):
 *
 * loss = lambda1 L_siamese(E q, E d+, E d-)
 *      + lambda2 L_indexing(T q, T d+, T d-)
 *      + lambda3 L_intra(T d+, T d-; gate cos(E d+, E d-) < tau)
 *      + balance KL(mean leaf distribution of sampled docs || uniform)
 *      + routing CE(query leaf distribution, leaf of d+)
 *
 * with in-batch negatives (the other pairs' documents that are not
 * relevant) plus hard negatives: every `refresh` epochs the current tree is
 * exported to faiss_ehi (TorchTree::to_ehi), all documents are encoded and
 * stored in an IndexEHITree, each training query is searched with `beam`
 * and its best non-relevant documents become its negatives. AdamW with
 * separate learning rates for encoder and tree.
 *
 * With lambda2 = lambda3 = balance = routing = 0 the tree is never in the
 * graph and stays as initialised: a siamese-only dual encoder.
 *
 * Deterministic for a fixed seed and thread count (epoch e shuffles with
 * seed + e). A checkpoint is written after every epoch when checkpoint_dir
 * is set; resume continues bit-identically. A NaN or Inf loss throws,
 * naming the epoch, the step and the last good checkpoint, which is left
 * as it was. */
class JointTrainer {
  public:
    explicit JointTrainer(JointTrainerConfig cfg);

    /** Train on `data`; `text` (required for TEXT, ignored otherwise) gives
     * the vocabulary and the token vectors to start from. */
    JointModel train(const PairData& data, const TextInit* text = nullptr);

    const JointTrainerConfig& config() const {
        return cfg_;
    }

    /// File name of the checkpoint inside checkpoint_dir.
    static const char* checkpoint_name() {
        return "joint_trainer.ckpt";
    }

  private:
    /// The PROBE recipe (ProbeRecipe.cpp).
    JointModel train_probe(const PairData& data, const JointTrainerConfig& c);

    JointTrainerConfig cfg_;
};

} // namespace trainer
} // namespace faiss_ehi
