/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/EncoderConfig.h>

#include <random>
#include <unordered_map>

#include <faiss/impl/FaissAssert.h>

namespace faiss_ehi {

const std::vector<std::pair<trainer::EncoderKind, const char*>>&
EnumNames<trainer::EncoderKind>::all() {
    using trainer::EncoderKind;
    static const std::vector<std::pair<EncoderKind, const char*>> names = {
            {EncoderKind::IDENTITY, "identity"},
            {EncoderKind::HEAD, "head"},
            {EncoderKind::TEXT, "text"}};
    return names;
}

namespace trainer {

TextInit make_text_init(const std::vector<std::string>& vocab, int dim,
                        const std::vector<std::string>& pretrained_words,
                        const std::vector<float>& pretrained, uint64_t seed,
                        float random_std, size_t* n_found) {
    FAISS_THROW_IF_NOT_FMT(dim >= 1, "make_text_init: dim = %d", dim);
    FAISS_THROW_IF_NOT_FMT(
            pretrained.size() == pretrained_words.size() * size_t(dim),
            "make_text_init: %zd pretrained floats for %zd words of dim %d",
            pretrained.size(), pretrained_words.size(), dim);
    std::unordered_map<std::string, size_t> where;
    where.reserve(pretrained_words.size());
    for (size_t i = 0; i < pretrained_words.size(); i++) {
        where.emplace(pretrained_words[i], i);
    }
    TextInit t;
    t.vocab = vocab;
    t.dim = dim;
    t.embeddings.resize(vocab.size() * size_t(dim));
    // One generator walked in vocabulary order: the result depends only on
    // the arguments.
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> gauss(0.0f, random_std);
    size_t found = 0;
    for (size_t w = 0; w < vocab.size(); w++) {
        float* row = t.embeddings.data() + w * dim;
        auto it = where.find(vocab[w]);
        if (it != where.end()) {
            const float* src = pretrained.data() + it->second * dim;
            std::copy(src, src + dim, row);
            found++;
        } else {
            for (int j = 0; j < dim; j++) {
                row[j] = gauss(rng);
            }
        }
    }
    if (n_found) {
        *n_found = found;
    }
    return t;
}

} // namespace trainer
} // namespace faiss_ehi
