/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * From a RetrievalTask to what the joint trainer and the index take:
 * training pairs with vector or token inputs, the text encoder's starting
 * token table (GloVe 100d), and the index inputs of documents and test
 * queries once a model is trained.
 */
#pragma once

#include <vector>

#include <faiss/Index.h>

#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/trainer/JointTrainer.h>

#include "contrib/data/retrieval_task.h"

namespace ehi_tools {

/// Training inputs for the joint trainer.
struct TrainingInputs {
    faiss_ehi::trainer::PairData pairs;
    faiss_ehi::trainer::TextInit text; ///< TEXT only
    size_t glove_words_found = 0;      ///< TEXT only
};

/** Pairs of `task` in the form `kind` needs. For text tasks (kind must be
 * TEXT) the vocabulary is the corpus's words (title and text of every
 * document), ids in vocabulary order, and the token table starts from GloVe
 * 100d (the npm package, faiss_ehi::data::load_glove_embeddings; words it
 * lacks get small seeded random vectors). */
TrainingInputs make_training_inputs(const faiss_ehi::data::RetrievalTask& task,
                                    faiss_ehi::trainer::EncoderKind kind,
                                    uint64_t seed);

/** The index inputs (rows) of the task's documents: the vectors, or for
 * text tasks the text encoder's output. */
std::vector<float> document_inputs(const faiss_ehi::data::RetrievalTask& task,
                                   const faiss_ehi::TextEncoder* text);

/// The same for the test queries.
std::vector<float> test_query_inputs(const faiss_ehi::data::RetrievalTask& task,
                                     const faiss_ehi::TextEncoder* text);

/// n index inputs `x` as the IVF part of `index` stores them: through the
/// index's pre-transforms (EHI's encoder head), or `x` itself.
std::vector<float> stored_vectors(const faiss::Index& index,
                                  faiss::Index::idx_t n,
                                  const std::vector<float>& x);

} // namespace ehi_tools
