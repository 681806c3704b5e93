/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */

#include "cmdline/task_inputs.h"

#include <stdexcept>

#include <glog/logging.h>

#include <faiss/IndexPreTransform.h>

#include "contrib/data/glove.h"
#include "contrib/data/text.h"

namespace ft = faiss_ehi::trainer;
namespace fd = faiss_ehi::data;

namespace ehi_tools {

namespace {

std::vector<std::vector<int64_t>> token_ids(
        const fd::Vocabulary& vocab, const std::vector<std::string>& texts) {
    std::vector<std::vector<int64_t>> out;
    out.reserve(texts.size());
    for (const std::string& t : texts) {
        std::vector<int> ids = vocab.encode(t);
        out.emplace_back(ids.begin(), ids.end());
    }
    return out;
}

} // namespace

TrainingInputs make_training_inputs(const fd::RetrievalTask& task,
                                    ft::EncoderKind kind, uint64_t seed) {
    TrainingInputs in;
    ft::PairData& p = in.pairs;
    p.nq = task.nq_train;
    p.nd = task.nd;
    p.pairs.assign(task.train_pairs.begin(), task.train_pairs.end());
    if (!task.is_text) {
        if (kind == ft::EncoderKind::TEXT) {
            throw std::invalid_argument(
                    "the text encoder needs text data (beir:DIR)");
        }
        p.d = task.d;
        p.query_vecs = task.train_query_vecs;
        p.doc_vecs = task.doc_vecs;
        return in;
    }
    if (kind != ft::EncoderKind::TEXT) {
        throw std::invalid_argument("text data needs the text encoder");
    }
    fd::Vocabulary vocab = fd::build_vocabulary(task.doc_texts);
    p.doc_tokens = token_ids(vocab, task.doc_texts);
    p.query_tokens = token_ids(vocab, task.train_query_texts);
    LOG(INFO) << "vocabulary: " << vocab.size() << " words from " << task.nd
              << " documents; loading GloVe 100d";
    fd::WordEmbeddings glove = fd::load_glove_embeddings();
    in.text =
            ft::make_text_init(vocab.words, glove.d, glove.words, glove.vectors,
                               seed, 0.1f, &in.glove_words_found);
    LOG(INFO) << in.glove_words_found << " of " << vocab.size()
              << " words have a GloVe vector; the others start random";
    return in;
}

namespace {

std::vector<float> inputs_of(const fd::RetrievalTask& task,
                             const std::vector<float>& vecs,
                             const std::vector<std::string>& texts,
                             const faiss_ehi::TextEncoder* text) {
    if (!task.is_text) {
        return vecs;
    }
    if (!text) {
        throw std::invalid_argument(
                "text data needs the trained text encoder (written beside "
                "the index as FILE.text by ehi_train)");
    }
    return text->encode(texts);
}

} // namespace

std::vector<float> document_inputs(const fd::RetrievalTask& task,
                                   const faiss_ehi::TextEncoder* text) {
    return inputs_of(task, task.doc_vecs, task.doc_texts, text);
}

std::vector<float> test_query_inputs(const fd::RetrievalTask& task,
                                     const faiss_ehi::TextEncoder* text) {
    return inputs_of(task, task.test_query_vecs, task.test_query_texts, text);
}

std::vector<float> stored_vectors(const faiss::Index& index,
                                  faiss::Index::idx_t n,
                                  const std::vector<float>& x) {
    auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index);
    if (!pt) {
        return x;
    }
    const float* y = pt->apply_chain(n, x.data());
    std::vector<float> out(y, y + size_t(n) * pt->index->d);
    if (y != x.data()) {
        delete[] y;
    }
    return out;
}

} // namespace ehi_tools
