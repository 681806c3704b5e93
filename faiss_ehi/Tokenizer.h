/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

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

} // namespace faiss_ehi
