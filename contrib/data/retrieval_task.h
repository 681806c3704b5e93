/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * One retrieval task for training and benchmarking, whatever the data: a
 * document collection, training queries with relevant documents (the pairs
 * EHI trains on) and test queries with what counts as a hit. The trainer
 * tool (ehi_train) and the benchmarks (bench_visited) read their --data
 * flag through load_retrieval_task, so both see the same splits.
 *
 * Two kinds of task:
 * - relevance data (BEIR directories, vector files with a pairs file):
 *   queries and documents differ; test hits are graded qrels and the
 *   metrics are Recall@k, nDCG@10 and MRR@10;
 * - k-NN data (Fashion-MNIST, GloVe, synthetic, plain vector files): the
 *   queries live in the documents' space; a test hit is one of the true 10
 *   nearest neighbours (recall@10). Training pairs come from the data
 *   itself: a seeded sample of documents as queries, each paired with its
 *   exact k nearest other documents (docs/DESIGN.md, "Training pairs").
 */
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <faiss/Index.h>
#include <faiss/MetricType.h>

#include "contrib/data/beir.h"

namespace faiss_ehi {
namespace data {

/// How a task is cut; the defaults are what the tools use.
struct RetrievalTaskOptions {
    /// k-NN data: documents sampled as training queries.
    idx_t knn_train_queries = 10000;
    /// k-NN data: neighbours paired with each training query.
    int knn_pairs_k = 10;
    /// k-NN data: neighbours in the test ground truth.
    int knn_gt_k = 10;
    /// Keep at most this many test queries (first in file order; 0: all).
    idx_t max_test_queries = 0;
    /// Seed of every sample and split.
    uint64_t seed = 4321;
    /// Ground-truth cache directory (default_gt_cache_dir() when empty and
    /// use_gt_cache).
    std::string gt_cache_dir;
    bool use_gt_cache = true;
};

/// Documents, training pairs and test queries of one data set.
struct RetrievalTask {
    std::string name;     ///< e.g. "scifact", "fashion-mnist"
    bool is_text = false; ///< inputs are texts (BEIR), not vectors
    bool is_knn = false;  ///< k-NN data (hits = true neighbours)
    int d = 0;            ///< vector dimension (0 for text)
    /// Metric of the input vectors (k-NN ground truth, IVF baselines).
    faiss::MetricType metric = faiss::METRIC_L2;

    idx_t nd = 0;                       ///< documents
    std::vector<float> doc_vecs;        ///< nd x d (vector data)
    std::vector<std::string> doc_texts; ///< nd (text data)

    idx_t nq_train = 0;                         ///< training queries
    std::vector<float> train_query_vecs;        ///< nq_train x d
    std::vector<std::string> train_query_texts; ///< nq_train
    /// (training query, relevant document) rows, sorted, no duplicates.
    std::vector<std::pair<idx_t, idx_t>> train_pairs;

    idx_t nq_test = 0;                         ///< test queries
    std::vector<float> test_query_vecs;        ///< nq_test x d
    std::vector<std::string> test_query_texts; ///< nq_test
    /// Per test query: (document, grade > 0). For k-NN data: its true
    /// knn_gt_k neighbours with grade 1.
    RelevanceLists test_relevant;
    /// k-NN data: nq_test x k_gt exact neighbours, best first.
    std::vector<idx_t> test_gt;
    int k_gt = 0;
};

/** Load a task from a spec:
 * - `beir:DIR`: a BEIR directory (corpus.jsonl, queries.jsonl,
 *   qrels/train.tsv, qrels/test.tsv); text. Training pairs are the train
 *   qrels with score > 0, test hits the test qrels.
 * - `fmnist` or `fmnist:DIR`: Fashion-MNIST, 60,000 documents, the 10,000
 *   test images as test queries, L2.
 * - `glove100` or `glove100:DIR`: GloVe 100d from the npm package, 10,000
 *   query words split off with a fixed seed, normalised, inner product.
 * - `synthetic`: the skewed synthetic set (make_skewed_synthetic, 20,000
 *   documents in 64 clusters, 90% of the queries in 8 hot clusters that
 *   hold 10% of the documents), training and test queries from the same
 *   skewed distribution, L2.
 * - `vecs:BASE[,QUERIES[,PAIRS]]`: vector files (.fvecs or .npy). BASE
 *   alone: 1,000 test queries (at most a tenth) split off the base with a
 *   seeded permutation, k-NN. With QUERIES: those are the k-NN test
 *   queries. With PAIRS (a text file, one "query_row doc_row" per line,
 *   '#' comments allowed): relevance data; a seeded fifth of the queries
 *   that have pairs are the test queries, the rest train. L2.
 * Throws std::runtime_error (naming the spec, the file or the install
 * command) on an unknown spec or missing or malformed data. */
RetrievalTask load_retrieval_task(const std::string& spec,
                                  const RetrievalTaskOptions& opt = {});

/** Read a pairs file (see vecs: above). Rows must be >= 0 and below nq /
 * nd; throws naming the file and line otherwise. */
std::vector<std::pair<idx_t, idx_t>> read_pairs_file(const std::string& path,
                                                     idx_t nq, idx_t nd);

} // namespace data
} // namespace faiss_ehi
