/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace faiss_ehi {

/** The one tokenizer of faiss-ehi, shared by the training data
 * (contrib/data/text.h) and the serving TextEncoder so that both see the
 * same tokens: tokens are the maximal runs of ASCII letters and digits,
 * lower-cased; every other byte (punctuation, space, any non-ASCII UTF-8
 * byte) separates tokens. */

/// Call f(token) for every token of `text`, in order.
void for_each_token(const std::string& text,
                    const std::function<void(const std::string&)>& f);

/// "Hello, World-42!" -> {"hello", "world", "42"}.
std::vector<std::string> tokenize(const std::string& text);

/** The ids of the tokens of `text`, in order, as `find` gives them (a
 * negative id marks a word outside the vocabulary: it is dropped). The one
 * tokenise-and-look-up behind TextEncoder::token_ids and the training
 * vocabulary's faiss_ehi::data::Vocabulary::encode, so that both give the
 * same ids for the same words. */
std::vector<int64_t> known_token_ids(
        const std::string& text,
        const std::function<int64_t(const std::string&)>& find);

} // namespace faiss_ehi
