/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * load_retrieval_task: the --data specs of ehi_train and bench_visited.
 */

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "test_helpers.h"

#include "contrib/data/file_util.h"
#include "contrib/data/retrieval_task.h"
#include "contrib/data/synthetic.h"
#include "contrib/data/vecs_io.h"

using namespace faiss_ehi::data;
namespace fs = std::filesystem;

namespace {

using ehi_test::TempDir;

RetrievalTaskOptions no_cache() {
    RetrievalTaskOptions o;
    o.use_gt_cache = false;
    o.knn_train_queries = 50;
    return o;
}

} // namespace

TEST(RetrievalTask, VecsBaseAloneSplitsQueriesOff) {
    TempDir dir;
    std::vector<float> x = random_gaussian(500, 8, 7);
    fvecs_write(dir.path + "/base.fvecs", x.data(), 8, 500);
    RetrievalTask t =
            load_retrieval_task("vecs:" + dir.path + "/base.fvecs", no_cache());
    EXPECT_TRUE(t.is_knn);
    EXPECT_FALSE(t.is_text);
    EXPECT_EQ(t.nq_test, 50);
    EXPECT_EQ(t.nd, 450);
    EXPECT_EQ(t.k_gt, 10);
    ASSERT_EQ(t.test_relevant.size(), 50u);
    EXPECT_EQ(t.test_relevant[0].size(), 10u);
    // Training pairs: sampled documents and their neighbours, never
    // themselves, 10 each.
    EXPECT_EQ(t.nq_train, 50);
    EXPECT_EQ(t.train_pairs.size(), 500u);
    for (const auto& pr : t.train_pairs) {
        const float* q = t.train_query_vecs.data() + pr.first * 8;
        const float* d = t.doc_vecs.data() + pr.second * 8;
        EXPECT_FALSE(std::equal(q, q + 8, d)) << "a query paired with itself";
    }
    // The same spec gives the same task.
    RetrievalTask t2 =
            load_retrieval_task("vecs:" + dir.path + "/base.fvecs", no_cache());
    EXPECT_EQ(t.test_gt, t2.test_gt);
    EXPECT_EQ(t.train_pairs, t2.train_pairs);
}

TEST(RetrievalTask, VecsWithPairsIsRelevanceData) {
    TempDir dir;
    std::vector<float> xb = random_gaussian(100, 4, 1);
    std::vector<float> xq = random_gaussian(20, 4, 2);
    fvecs_write(dir.path + "/b.fvecs", xb.data(), 4, 100);
    npy_write(dir.path + "/q.npy", xq.data(), 4, 20);
    {
        std::ofstream p(dir.path + "/pairs.txt");
        p << "# query doc\n";
        for (int q = 0; q < 20; q++) {
            p << q << " " << (q * 3) % 100 << "\n";
            p << q << " " << (q * 7 + 1) % 100 << "  # second\n";
        }
    }
    RetrievalTask t =
            load_retrieval_task("vecs:" + dir.path + "/b.fvecs," + dir.path +
                                        "/q.npy," + dir.path + "/pairs.txt",
                                no_cache());
    EXPECT_FALSE(t.is_knn);
    EXPECT_EQ(t.nq_test, 4); // a fifth of 20
    EXPECT_EQ(t.nq_train, 16);
    EXPECT_EQ(t.train_pairs.size(), 32u);
    ASSERT_EQ(t.test_relevant.size(), 4u);
    for (const auto& r : t.test_relevant) {
        EXPECT_EQ(r.size(), 2u);
    }
    // Every test query's vector is one of the query file's rows and none
    // is also a training query.
    std::set<std::vector<float>> train_rows;
    for (idx_t i = 0; i < t.nq_train; i++) {
        train_rows.insert(
                std::vector<float>(t.train_query_vecs.begin() + i * 4,
                                   t.train_query_vecs.begin() + (i + 1) * 4));
    }
    for (idx_t i = 0; i < t.nq_test; i++) {
        std::vector<float> row(t.test_query_vecs.begin() + i * 4,
                               t.test_query_vecs.begin() + (i + 1) * 4);
        EXPECT_EQ(train_rows.count(row), 0u);
    }
}

TEST(RetrievalTask, SyntheticTrainsOnSkewedQueries) {
    RetrievalTaskOptions o = no_cache();
    RetrievalTask t = load_retrieval_task("synthetic", o);
    EXPECT_TRUE(t.is_knn);
    EXPECT_EQ(t.nd, 20000);
    EXPECT_EQ(t.nq_train, 10000);
    EXPECT_EQ(t.nq_test, 2000);
    EXPECT_EQ(t.train_pairs.size(), 100000u);
}

TEST(RetrievalTask, BadSpecsAndFilesNameTheProblem) {
    TempDir dir;
    auto message = [](const std::string& spec) {
        try {
            load_retrieval_task(spec, no_cache());
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::string("no exception");
    };
    EXPECT_NE(message("nonsense").find("unknown data spec"), std::string::npos);
    EXPECT_NE(message("beir:").find("needs a directory"), std::string::npos);
    EXPECT_NE(message("beir:/nonexistent/dir").find("/nonexistent/dir"),
              std::string::npos);
    EXPECT_NE(message("vecs:/nonexistent.fvecs").find("/nonexistent.fvecs"),
              std::string::npos);
    EXPECT_NE(message("fmnist:/nonexistent").find("dataset-fashion-mnist"),
              std::string::npos);

    std::vector<float> xb = random_gaussian(30, 4, 1);
    fvecs_write(dir.path + "/b.fvecs", xb.data(), 4, 30);
    std::vector<float> xq3 = random_gaussian(5, 3, 1);
    fvecs_write(dir.path + "/q3.fvecs", xq3.data(), 3, 5);
    EXPECT_NE(message("vecs:" + dir.path + "/b.fvecs," + dir.path + "/q3.fvecs")
                      .find("dimension 3"),
              std::string::npos);
    {
        std::ofstream p(dir.path + "/bad.txt");
        p << "0 1\n1 99\n";
    }
    EXPECT_NE(message("vecs:" + dir.path + "/b.fvecs," + dir.path +
                      "/b.fvecs," + dir.path + "/bad.txt")
                      .find("bad.txt:2"),
              std::string::npos);
}

TEST(RetrievalTask, SciFactSplits) {
    const char* env = getenv("FAISS_EHI_SCIFACT_DIR");
    std::string dir = env && *env
            ? std::string(env)
            : (fs::path(__FILE__).parent_path().parent_path().parent_path() /
               "shared" / "data" / "scifact")
                      .string();
    if (!dir_exists(dir)) {
        GTEST_SKIP() << "SciFact not found in " << dir
                     << " (set FAISS_EHI_SCIFACT_DIR)";
    }
    RetrievalTask t = load_retrieval_task("beir:" + dir, no_cache());
    EXPECT_TRUE(t.is_text);
    EXPECT_FALSE(t.is_knn);
    EXPECT_EQ(t.name, "scifact");
    EXPECT_EQ(t.nd, 5183);
    EXPECT_EQ(t.nq_train, 809);
    EXPECT_EQ(t.train_pairs.size(), 919u);
    EXPECT_EQ(t.nq_test, 300);
    size_t judged = 0;
    for (const auto& r : t.test_relevant) {
        judged += r.size();
    }
    EXPECT_EQ(judged, 339u);
}
