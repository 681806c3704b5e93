/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * A simple tokenizer and a vocabulary for the text encoder: tokens are the
 * maximal runs of ASCII letters and digits, lower-cased; every other byte
 * (punctuation, space, any non-ASCII UTF-8 byte) separates tokens.
 */
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace faiss_ehi {
namespace data {

/// "Hello, World-42!" -> {"hello", "world", "42"}.
std::vector<std::string> tokenize(const std::string& text);

/// Words of a corpus with their counts; id i is words[i].
struct Vocabulary {
    std::vector<std::string> words;
    std::vector<int64_t> counts;
    std::unordered_map<std::string, int> ids;

    int size() const {
        return int(words.size());
    }
    /// Id of `word`, or -1.
    int find(const std::string& word) const;
    /// Token ids of `text`; out-of-vocabulary tokens are dropped.
    std::vector<int> encode(const std::string& text) const;
};

/** Count the tokens of `texts`; keep words seen at least `min_count` times,
 * most frequent first (ties by byte order of the word), at most `max_size`
 * of them (<= 0: no limit). Deterministic. */
Vocabulary build_vocabulary(const std::vector<std::string>& texts,
                            int64_t min_count = 1, int max_size = 0);

} // namespace data
} // namespace faiss_ehi
