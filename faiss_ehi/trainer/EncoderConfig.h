/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Torch-free description of the encoders the joint trainer learns, so that
 * tools can fill a JointTrainerConfig without including LibTorch.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <faiss_ehi/enum_names.h>

namespace faiss_ehi {
namespace trainer {

/// Which encoder E(x) the joint trainer learns (docs/DESIGN.md, "Encoder").
enum class EncoderKind : int {
    /// The vectors as they are (no parameters; only the tree learns).
    IDENTITY = 0,
    /** A learned head over the user's vectors: linear map started at the
     * identity plus a residual MLP branch started at zero, optional L2
     * normalisation; exports bit-exactly to faiss_ehi::EncoderHead. */
    HEAD = 1,
    /** Text: mean of learned token vectors (an embedding bag over a
     * vocabulary, started from GloVe), then the HEAD. The bag exports to
     * faiss_ehi::TextEncoder, the head to faiss_ehi::EncoderHead. */
    TEXT = 2,
};

/** Start of the TEXT encoder's token table: one row per vocabulary word
 * (vocabulary ids are row numbers). Rows of words GloVe lacks are expected
 * to be small seeded random vectors already (see make_text_init). */
struct TextInit {
    std::vector<std::string> vocab; ///< word of each id
    int dim = 100;                  ///< token vector size
    std::vector<float> embeddings;  ///< |V| x dim, row-major
};

/** Build a TextInit for `vocab`: each word found in `pretrained_words`
 * (whose vectors are `pretrained`, row-major, `dim` floats each, e.g. GloVe
 * 100d) gets its vector; the others get N(0, random_std^2) per entry from
 * `seed`. Returns the init; `n_found` (if given) receives how many words
 * were found. */
TextInit make_text_init(const std::vector<std::string>& vocab, int dim,
                        const std::vector<std::string>& pretrained_words,
                        const std::vector<float>& pretrained,
                        uint64_t seed = 1234, float random_std = 0.1f,
                        size_t* n_found = nullptr);

} // namespace trainer

/// "identity", "head", "text".
template <>
struct EnumNames<trainer::EncoderKind> {
    static const std::vector<std::pair<trainer::EncoderKind, const char*>>&
    all();
};

} // namespace faiss_ehi
