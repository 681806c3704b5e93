/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * faiss_ehi::TextEncoder (the torch-free first stage of the trained text
 * encoder), the shared tokenizer and the text encoder file format.
 */
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_helpers.h"

#include <faiss/impl/FaissException.h>

#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/Tokenizer.h>

#include "contrib/data/text.h"

namespace {

using ehi_test::expect_error;
using faiss_ehi::TextEncoder;

TextEncoder small_encoder() {
    // 3 words, dim 2
    return TextEncoder({"hello", "world", "42"}, 2,
                       {1, 2, /**/ 3, 4, /**/ -1, 0.5f});
}

std::vector<char> slurp(const std::string& f) {
    std::ifstream in(f, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& f, const std::vector<char>& bytes) {
    std::ofstream out(f, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), bytes.size());
}

} // namespace

TEST(TextEncoder, TokenizerSharedWithData) {
    const std::string t = "Hello, World-42! caf\xc3\xa9 x_y";
    std::vector<std::string> want = {"hello", "world", "42", "caf", "x", "y"};
    EXPECT_EQ(faiss_ehi::tokenize(t), want);
    EXPECT_EQ(faiss_ehi::data::tokenize(t), want);
}

TEST(TextEncoder, MeanOfKnownTokens) {
    TextEncoder enc = small_encoder();
    std::vector<std::string> texts = {"Hello hello, WORLD!", "unknown words",
                                      "", "42 and hello"};
    std::vector<float> y = enc.encode(texts);
    ASSERT_EQ(y.size(), 8u);
    // (1+1+3)/3, (2+2+4)/3
    EXPECT_FLOAT_EQ(y[0], 5.0f / 3);
    EXPECT_FLOAT_EQ(y[1], 8.0f / 3);
    EXPECT_EQ(y[2], 0.0f); // no known token: zero vector
    EXPECT_EQ(y[3], 0.0f);
    EXPECT_EQ(y[4], 0.0f);
    EXPECT_EQ(y[5], 0.0f);
    EXPECT_FLOAT_EQ(y[6], 0.0f); // (-1 + 1) / 2
    EXPECT_FLOAT_EQ(y[7], 1.25f);
    std::vector<int64_t> ids = enc.token_ids("42 and hello");
    EXPECT_EQ(ids, (std::vector<int64_t>{2, 0}));
}

TEST(TextEncoder, BadConstruction) {
    expect_error([] { TextEncoder({"a", "a"}, 1, {1, 2}); }, "twice");
    expect_error([] { TextEncoder({"a", "b"}, 2, {1, 2}); }, "expected");
    expect_error([] { TextEncoder({"a"}, 0, {}); }, "dim");
    expect_error([] { TextEncoder({"a"}, 1, {NAN}); }, "non-finite");
}

TEST(TextEncoder, FileRoundTrip) {
    ehi_test::TempDir dir;
    std::string f = dir.file("enc.feht");
    TextEncoder enc = small_encoder();
    faiss_ehi::write_text_encoder(enc, f.c_str());
    TextEncoder back = faiss_ehi::read_text_encoder(f.c_str());
    EXPECT_EQ(back.dim, enc.dim);
    EXPECT_EQ(back.vocab, enc.vocab);
    EXPECT_EQ(back.embeddings, enc.embeddings);
    std::vector<std::string> texts = {"world 42", "hello"};
    EXPECT_EQ(back.encode(texts), enc.encode(texts));
    // only the file itself is left (the temporary was renamed)
    EXPECT_EQ(dir.files(), std::vector<std::string>{"enc.feht"});
}

TEST(TextEncoder, TruncatedAndCorruptFilesThrow) {
    ehi_test::TempDir dir;
    std::string f = dir.file("enc.feht");
    faiss_ehi::write_text_encoder(small_encoder(), f.c_str());
    std::vector<char> good = slurp(f);
    ASSERT_GT(good.size(), 30u);

    std::string g = dir.file("bad.feht");
    // truncated header, truncated payload
    spit(g, std::vector<char>(good.begin(), good.begin() + 10));
    expect_error([&] { faiss_ehi::read_text_encoder(g.c_str()); }, "truncated");
    spit(g, std::vector<char>(good.begin(), good.end() - 3));
    expect_error([&] { faiss_ehi::read_text_encoder(g.c_str()); }, "truncated");
    // flipped payload byte
    std::vector<char> bad = good;
    bad[bad.size() - 2] ^= 0x40;
    spit(g, bad);
    expect_error([&] { faiss_ehi::read_text_encoder(g.c_str()); }, "checksum");
    // bad magic, bad version
    bad = good;
    bad[0] = 'X';
    spit(g, bad);
    expect_error([&] { faiss_ehi::read_text_encoder(g.c_str()); }, "magic");
    bad = good;
    bad[4] = 99;
    spit(g, bad);
    expect_error([&] { faiss_ehi::read_text_encoder(g.c_str()); }, "version");
}

TEST(TextEncoder, FailedWriteKeepsOldFile) {
    ehi_test::TempDir dir;
    std::string f = dir.file("enc.feht");
    faiss_ehi::write_text_encoder(small_encoder(), f.c_str());
    std::vector<char> before = slurp(f);
    TextEncoder broken = small_encoder();
    broken.embeddings.pop_back(); // inconsistent: refused before writing
    EXPECT_THROW(faiss_ehi::write_text_encoder(broken, f.c_str()),
                 faiss::FaissException);
    EXPECT_EQ(slurp(f), before);
    // a directory that does not exist
    expect_error(
            [&] {
                faiss_ehi::write_text_encoder(
                        small_encoder(), dir.file("no/such/x.feht").c_str());
            },
            "cannot open");
}
