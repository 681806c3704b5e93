/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */

#include "contrib/data/retrieval_task.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "contrib/data/fashion_mnist.h"
#include "contrib/data/glove.h"
#include "contrib/data/ground_truth.h"
#include "contrib/data/random.h"
#include "contrib/data/synthetic.h"
#include "contrib/data/vecs_io.h"

#include <faiss_ehi/string_split.h>

namespace faiss_ehi {
namespace data {

namespace {

std::vector<float> gather_rows(const std::vector<float>& x, int d,
                               const std::vector<idx_t>& rows) {
    std::vector<float> out(rows.size() * size_t(d));
    for (size_t i = 0; i < rows.size(); i++) {
        std::copy_n(x.data() + size_t(rows[i]) * d, d,
                    out.data() + i * size_t(d));
    }
    return out;
}

std::string cache_dir_of(const RetrievalTaskOptions& opt) {
    if (!opt.use_gt_cache) {
        return "";
    }
    return opt.gt_cache_dir.empty() ? default_gt_cache_dir() : opt.gt_cache_dir;
}

/// Test hits and training pairs of a k-NN task whose documents and test
/// queries are set (pairs from the data itself: docs/DESIGN.md,
/// "Training pairs").
void finish_knn_task(RetrievalTask& t, const RetrievalTaskOptions& opt) {
    t.is_knn = true;
    if (opt.max_test_queries > 0 && t.nq_test > opt.max_test_queries) {
        t.nq_test = opt.max_test_queries;
        t.test_query_vecs.resize(size_t(t.nq_test) * t.d);
    }
    const std::string cache = cache_dir_of(opt);
    GroundTruth gt = compute_ground_truth(t.name, t.d, t.nd, t.doc_vecs.data(),
                                          t.nq_test, t.test_query_vecs.data(),
                                          opt.knn_gt_k, t.metric, cache);
    t.k_gt = gt.k;
    t.test_gt = std::move(gt.labels);
    t.test_relevant.assign(size_t(t.nq_test), {});
    for (idx_t q = 0; q < t.nq_test; q++) {
        for (int j = 0; j < t.k_gt; j++) {
            idx_t id = t.test_gt[size_t(q) * t.k_gt + j];
            if (id >= 0) {
                t.test_relevant[size_t(q)].emplace_back(id, 1);
            }
        }
    }

    // Training queries: a seeded sample of documents; their neighbours
    // among the documents, themselves excluded.
    idx_t nq = std::min(opt.knn_train_queries, t.nd);
    std::vector<int64_t> perm = random_permutation(t.nd, opt.seed);
    std::vector<idx_t> rows(perm.begin(), perm.begin() + nq);
    std::sort(rows.begin(), rows.end());
    t.nq_train = nq;
    t.train_query_vecs = gather_rows(t.doc_vecs, t.d, rows);
    const int k = opt.knn_pairs_k;
    GroundTruth nn = compute_ground_truth(
            t.name + "-train-pairs", t.d, t.nd, t.doc_vecs.data(), nq,
            t.train_query_vecs.data(), k + 1, t.metric, cache);
    for (idx_t q = 0; q < nq; q++) {
        int kept = 0;
        for (int j = 0; j <= k && kept < k; j++) {
            idx_t id = nn.labels[size_t(q) * (k + 1) + j];
            if (id < 0 || id == rows[size_t(q)]) {
                continue;
            }
            t.train_pairs.emplace_back(q, id);
            kept++;
        }
    }
    std::sort(t.train_pairs.begin(), t.train_pairs.end());
}

RetrievalTask task_from_dataset(Dataset ds, const RetrievalTaskOptions& opt) {
    RetrievalTask t;
    t.name = ds.name;
    t.d = ds.d;
    t.metric = ds.metric;
    t.nd = ds.nb;
    t.doc_vecs = std::move(ds.xb);
    t.nq_test = ds.nq;
    t.test_query_vecs = std::move(ds.xq);
    finish_knn_task(t, opt);
    return t;
}

RetrievalTask load_beir_task(const std::string& dir,
                             const RetrievalTaskOptions& opt) {
    BeirData test = load_beir(dir, "test");
    Qrels train_qrels = read_beir_qrels(dir + "/qrels/train.tsv");
    RetrievalTask t;
    std::string base = dir;
    while (base.size() > 1 && base.back() == '/') {
        base.pop_back();
    }
    size_t slash = base.find_last_of('/');
    t.name = slash == std::string::npos ? base : base.substr(slash + 1);
    t.is_text = true;
    t.metric = faiss::METRIC_INNER_PRODUCT;
    t.nd = test.corpus.size();
    t.doc_texts.reserve(size_t(t.nd));
    for (idx_t i = 0; i < t.nd; i++) {
        t.doc_texts.push_back(test.corpus.full_text(i));
    }

    BeirEvalSet train = make_eval_set(test.corpus, test.queries, train_qrels);
    t.nq_train = idx_t(train.query_rows.size());
    for (size_t q = 0; q < train.query_rows.size(); q++) {
        t.train_query_texts.push_back(
                test.queries.texts[size_t(train.query_rows[q])]);
        for (const auto& rel : train.relevant[q]) {
            t.train_pairs.emplace_back(idx_t(q), rel.first);
        }
    }
    std::sort(t.train_pairs.begin(), t.train_pairs.end());
    t.train_pairs.erase(std::unique(t.train_pairs.begin(), t.train_pairs.end()),
                        t.train_pairs.end());

    BeirEvalSet ev = make_eval_set(test.corpus, test.queries, test.qrels);
    idx_t nq = idx_t(ev.query_rows.size());
    if (opt.max_test_queries > 0) {
        nq = std::min(nq, opt.max_test_queries);
    }
    t.nq_test = nq;
    for (idx_t q = 0; q < nq; q++) {
        t.test_query_texts.push_back(
                test.queries.texts[size_t(ev.query_rows[size_t(q)])]);
    }
    t.test_relevant.assign(ev.relevant.begin(), ev.relevant.begin() + nq);
    if (t.nq_train == 0 || t.nq_test == 0) {
        throw std::runtime_error("BEIR directory " + dir +
                                 ": no training or no test query with a "
                                 "relevant document in the corpus");
    }
    return t;
}

RetrievalTask load_synthetic_task(const RetrievalTaskOptions& opt) {
    SkewedSyntheticParams p;
    p.d = 32;
    p.nb = 20000;
    p.nq = 12000; // 10,000 training + 2,000 test queries
    p.nclusters = 64;
    p.n_hot = 8;
    p.seed = opt.seed;
    SkewedSynthetic s = make_skewed_synthetic(p);
    RetrievalTask t;
    t.name = "synthetic-skewed";
    t.d = p.d;
    t.metric = faiss::METRIC_L2;
    t.nd = p.nb;
    t.doc_vecs = std::move(s.ds.xb);
    const idx_t n_train = 10000;
    t.nq_test = p.nq - n_train;
    t.test_query_vecs.assign(s.ds.xq.begin() + size_t(n_train) * p.d,
                             s.ds.xq.end());
    finish_knn_task(t, opt);
    // Training queries from the skewed query distribution (not sampled
    // documents): learning that distribution is the point of this set.
    t.nq_train = n_train;
    t.train_query_vecs.assign(s.ds.xq.begin(),
                              s.ds.xq.begin() + size_t(n_train) * p.d);
    t.train_pairs.clear();
    const int k = opt.knn_pairs_k;
    GroundTruth nn = compute_ground_truth(
            t.name + "-train-queries", t.d, t.nd, t.doc_vecs.data(), n_train,
            t.train_query_vecs.data(), k, t.metric, cache_dir_of(opt));
    for (idx_t q = 0; q < n_train; q++) {
        for (int j = 0; j < k; j++) {
            t.train_pairs.emplace_back(q, nn.labels[size_t(q) * k + j]);
        }
    }
    std::sort(t.train_pairs.begin(), t.train_pairs.end());
    return t;
}

/// The files of a vecs: spec; a trailing comma adds no empty file.
std::vector<std::string> vecs_files(const std::string& arg) {
    std::vector<std::string> files = faiss_ehi::split_commas(arg);
    if (files.back().empty()) {
        files.pop_back();
    }
    return files;
}

RetrievalTask load_vecs_task(const std::string& arg,
                             const RetrievalTaskOptions& opt) {
    std::vector<std::string> files = vecs_files(arg);
    if (files.empty() || files.size() > 3 || files[0].empty()) {
        throw std::runtime_error("bad data spec \"vecs:" + arg +
                                 "\": expected vecs:BASE[,QUERIES[,PAIRS]]");
    }
    RetrievalTask t;
    t.name = files[0];
    size_t slash = t.name.find_last_of('/');
    if (slash != std::string::npos) {
        t.name = t.name.substr(slash + 1);
    }
    idx_t nb = 0;
    t.doc_vecs = read_float_vectors(files[0], &t.d, &nb);
    t.nd = nb;
    t.metric = faiss::METRIC_L2;
    if (files.size() == 1) {
        // Split test queries off the base.
        idx_t nq = std::min<idx_t>(1000, nb / 10);
        if (nq < 1) {
            throw std::runtime_error(files[0] +
                                     ": too few vectors to split queries off");
        }
        std::vector<int64_t> perm = random_permutation(nb, opt.seed + 1);
        std::vector<idx_t> qrows(perm.begin(), perm.begin() + nq);
        std::vector<idx_t> brows(perm.begin() + nq, perm.end());
        std::sort(qrows.begin(), qrows.end());
        std::sort(brows.begin(), brows.end());
        t.test_query_vecs = gather_rows(t.doc_vecs, t.d, qrows);
        t.doc_vecs = gather_rows(t.doc_vecs, t.d, brows);
        t.nd = idx_t(brows.size());
        t.nq_test = nq;
        finish_knn_task(t, opt);
        return t;
    }
    int dq = 0;
    idx_t nq = 0;
    std::vector<float> xq = read_float_vectors(files[1], &dq, &nq);
    if (dq != t.d) {
        throw std::runtime_error(files[1] + ": dimension " +
                                 std::to_string(dq) +
                                 " differs from the "
                                 "base's " +
                                 std::to_string(t.d));
    }
    if (files.size() == 2) {
        t.nq_test = nq;
        t.test_query_vecs = std::move(xq);
        finish_knn_task(t, opt);
        return t;
    }
    // Relevance pairs: a seeded fifth of the queries with pairs are test.
    std::vector<std::pair<idx_t, idx_t>> pairs =
            read_pairs_file(files[2], nq, nb);
    std::vector<std::vector<idx_t>> rel(static_cast<size_t>(nq));
    for (const auto& pr : pairs) {
        rel[size_t(pr.first)].push_back(pr.second);
    }
    std::vector<idx_t> with_pairs;
    for (idx_t q = 0; q < nq; q++) {
        if (!rel[size_t(q)].empty()) {
            with_pairs.push_back(q);
        }
    }
    if (with_pairs.size() < 2) {
        throw std::runtime_error(files[2] +
                                 ": need pairs for at least 2 queries");
    }
    std::vector<int64_t> perm =
            random_permutation(int64_t(with_pairs.size()), opt.seed + 2);
    size_t n_test = std::max<size_t>(1, with_pairs.size() / 5);
    std::vector<idx_t> test_rows, train_rows;
    for (size_t i = 0; i < perm.size(); i++) {
        (i < n_test ? test_rows : train_rows)
                .push_back(with_pairs[size_t(perm[i])]);
    }
    std::sort(test_rows.begin(), test_rows.end());
    std::sort(train_rows.begin(), train_rows.end());
    if (opt.max_test_queries > 0 &&
        idx_t(test_rows.size()) > opt.max_test_queries) {
        test_rows.resize(size_t(opt.max_test_queries));
    }
    t.nq_train = idx_t(train_rows.size());
    t.train_query_vecs = gather_rows(xq, t.d, train_rows);
    for (size_t i = 0; i < train_rows.size(); i++) {
        for (idx_t doc : rel[size_t(train_rows[i])]) {
            t.train_pairs.emplace_back(idx_t(i), doc);
        }
    }
    std::sort(t.train_pairs.begin(), t.train_pairs.end());
    t.nq_test = idx_t(test_rows.size());
    t.test_query_vecs = gather_rows(xq, t.d, test_rows);
    for (idx_t q : test_rows) {
        std::vector<std::pair<idx_t, int>> r;
        for (idx_t doc : rel[size_t(q)]) {
            r.emplace_back(doc, 1);
        }
        t.test_relevant.push_back(std::move(r));
    }
    return t;
}

} // namespace

std::vector<std::pair<idx_t, idx_t>> read_pairs_file(const std::string& path,
                                                     idx_t nq, idx_t nd) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot open pairs file " + path);
    }
    std::vector<std::pair<idx_t, idx_t>> pairs;
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
        lineno++;
        size_t hash = line.find('#');
        if (hash != std::string::npos) {
            line.resize(hash);
        }
        std::istringstream ls(line);
        long long q, d;
        if (!(ls >> q)) {
            continue; // blank or comment line
        }
        std::string rest;
        if (!(ls >> d) || (ls >> rest) || q < 0 || q >= nq || d < 0 ||
            d >= nd) {
            throw std::runtime_error(
                    path + ":" + std::to_string(lineno) +
                    ": expected \"query_row doc_row\" with 0 <= query_row < " +
                    std::to_string(nq) + " and 0 <= doc_row < " +
                    std::to_string(nd));
        }
        pairs.emplace_back(idx_t(q), idx_t(d));
    }
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    if (pairs.empty()) {
        throw std::runtime_error("pairs file " + path + " holds no pair");
    }
    return pairs;
}

RetrievalTask load_retrieval_task(const std::string& spec,
                                  const RetrievalTaskOptions& opt) {
    size_t colon = spec.find(':');
    std::string kind = spec.substr(0, colon);
    std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (kind == "beir") {
        if (arg.empty()) {
            throw std::runtime_error("data spec \"beir:\" needs a directory, "
                                     "e.g. beir:../shared/data/scifact");
        }
        return load_beir_task(arg, opt);
    }
    if (kind == "fmnist") {
        return task_from_dataset(
                load_fashion_mnist(arg.empty() ? kFashionMnistDir : arg), opt);
    }
    if (kind == "glove100") {
        return task_from_dataset(load_glove100(arg).ds, opt);
    }
    if (kind == "synthetic" && arg.empty()) {
        return load_synthetic_task(opt);
    }
    if (kind == "vecs") {
        return load_vecs_task(arg, opt);
    }
    throw std::runtime_error(
            "unknown data spec \"" + spec +
            "\": expected beir:DIR, fmnist[:DIR], glove100[:DIR], synthetic "
            "or vecs:BASE[,QUERIES[,PAIRS]]");
}

} // namespace data
} // namespace faiss_ehi
