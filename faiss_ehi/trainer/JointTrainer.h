/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The paper's joint encoder + tree training loop (Algorithm 1; see
 * docs/DESIGN.md, "Trainer recipes"). Torch-free header: tools fill the
 * config (JointConfig.h) and the data and get a ready (empty) faiss index
 * back.
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
#include <faiss_ehi/trainer/JointConfig.h>

namespace faiss_ehi {
namespace trainer {

/** Relevance pairs and their inputs: vectors (IDENTITY, HEAD) or token ids
 * (TEXT), the same form for queries and documents. */
struct PairData {
    int64_t nq = 0;
    int64_t nd = 0;
    int d = 0;                     ///< vector size (vector input)
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

/** The training queries JointTrainer holds out for its per-epoch recall
 * (JointTrainerConfig::heldout_fraction): of the queries 0..nq-1 that have
 * a pair, the first floor(fraction x their count) of a shuffle seeded by
 * `seed`, in increasing order. Benchmarks call it to evaluate a trained
 * index on the very queries its training did not see. */
std::vector<int64_t> heldout_queries(
        int64_t nq, const std::vector<std::pair<int64_t, int64_t>>& pairs,
        uint64_t seed, double fraction);

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

    /** Test hook, not a setting: train() returns after this many finished
     * epochs as if killed, the checkpoint written; the returned JointModel
     * then holds only the history (no index). -1: off. */
    int stop_after_epoch = -1;

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
