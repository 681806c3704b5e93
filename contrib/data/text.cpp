/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/text.h"

#include <algorithm>

#include <faiss_ehi/Tokenizer.h>

namespace faiss_ehi {
namespace data {

// The tokenizer lives in faiss_ehi (Tokenizer.h) so that the serving
// TextEncoder splits text exactly as the training data did.
using faiss_ehi::for_each_token;

std::vector<std::string> tokenize(const std::string& text) {
    return faiss_ehi::tokenize(text);
}

int Vocabulary::find(const std::string& word) const {
    auto it = ids.find(word);
    return it == ids.end() ? -1 : it->second;
}

std::vector<int> Vocabulary::encode(const std::string& text) const {
    std::vector<int64_t> ids = faiss_ehi::known_token_ids(
            text, [this](const std::string& w) { return int64_t(find(w)); });
    return std::vector<int>(ids.begin(), ids.end());
}

Vocabulary build_vocabulary(const std::vector<std::string>& texts,
                            int64_t min_count, int max_size) {
    std::unordered_map<std::string, int64_t> counts;
    for (const std::string& t : texts) {
        for_each_token(t, [&](const std::string& w) { counts[w]++; });
    }
    std::vector<std::pair<std::string, int64_t>> v;
    v.reserve(counts.size());
    for (auto& kv : counts) {
        if (kv.second >= min_count) {
            v.emplace_back(kv.first, kv.second);
        }
    }
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (max_size > 0 && v.size() > size_t(max_size)) {
        v.resize(size_t(max_size));
    }
    Vocabulary voc;
    voc.words.reserve(v.size());
    voc.counts.reserve(v.size());
    for (auto& p : v) {
        voc.ids.emplace(p.first, int(voc.words.size()));
        voc.words.push_back(p.first);
        voc.counts.push_back(p.second);
    }
    return voc;
}

} // namespace data
} // namespace faiss_ehi
