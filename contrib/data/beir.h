/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * BEIR data directories:
 *
 *     DIR/corpus.jsonl      {"_id": ..., "title": ..., "text": ...} per line
 *     DIR/queries.jsonl     {"_id": ..., "text": ...} per line
 *     DIR/qrels/SPLIT.tsv   header "query-id corpus-id score", then
 *                           tab-separated lines (graded relevance)
 *
 * Loaders throw std::runtime_error naming the file and line on malformed
 * input, and the path on a missing file.
 */
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <faiss/Index.h>

#include "contrib/data/text.h"

namespace faiss_ehi {
namespace data {

using idx_t = faiss::Index::idx_t;

/// Documents in file order; row i of any embedding is document i.
struct BeirCorpus {
    std::vector<std::string> ids;
    std::vector<std::string> titles;
    std::vector<std::string> texts;
    std::unordered_map<std::string, idx_t> index; ///< _id -> row

    idx_t size() const {
        return idx_t(ids.size());
    }
    /// Row of `id`, or -1.
    idx_t find(const std::string& id) const;
    /// Title and text joined by a space (title omitted when empty).
    std::string full_text(idx_t i) const;
};

/// Queries in file order.
struct BeirQueries {
    std::vector<std::string> ids;
    std::vector<std::string> texts;
    std::unordered_map<std::string, idx_t> index; ///< _id -> row

    idx_t size() const {
        return idx_t(ids.size());
    }
    idx_t find(const std::string& id) const;
};

/// Graded relevance judgements of one split.
struct Qrels {
    /// Query ids in order of first appearance in the file.
    std::vector<std::string> query_ids;
    /// query id -> (corpus id, score) in file order.
    std::unordered_map<std::string, std::vector<std::pair<std::string, int>>>
            judgements;

    size_t num_queries() const {
        return query_ids.size();
    }
    size_t num_pairs() const;
    /// Number of pairs with score > 0.
    size_t num_relevant_pairs() const;
};

/// A whole BEIR directory and one split of its qrels.
struct BeirData {
    std::string dir;
    std::string split;
    BeirCorpus corpus;
    BeirQueries queries;
    Qrels qrels;
};

BeirCorpus read_beir_corpus(const std::string& path);
BeirQueries read_beir_queries(const std::string& path);
/// Lines with a repeated (query, doc) pair keep the last score.
Qrels read_beir_qrels(const std::string& path);

/** Load DIR/corpus.jsonl, DIR/queries.jsonl and DIR/qrels/SPLIT.tsv.
 * Throws with the missing path if any is absent. */
BeirData load_beir(const std::string& dir, const std::string& split = "test");

/// Per evaluated query, its relevant documents as (corpus row, grade).
using RelevanceLists = std::vector<std::vector<std::pair<idx_t, int>>>;

/// The qrels of a split in row space, ready for the metrics.
struct BeirEvalSet {
    std::vector<idx_t> query_rows; ///< row in BeirQueries per evaluated query
    RelevanceLists relevant;       ///< same order as query_rows
    size_t unknown_docs = 0;       ///< judged ids missing from the corpus
};

/** Map qrels ids to rows: one entry per query of `qrels` (in qrels order)
 * that has at least one judged document with score > 0 found in the
 * corpus. Judged ids absent from the corpus are counted and skipped; a
 * query id absent from `queries` throws. */
BeirEvalSet make_eval_set(const BeirCorpus& corpus, const BeirQueries& queries,
                          const Qrels& qrels);

/** Vocabulary of the corpus (title and text of every document), see
 * build_vocabulary. */
Vocabulary build_corpus_vocabulary(const BeirCorpus& corpus,
                                   int64_t min_count = 1, int max_size = 0);

} // namespace data
} // namespace faiss_ehi
