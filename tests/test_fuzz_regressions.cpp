/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Regression tests for inputs found by the fuzz targets (tests/fuzz) or the
 * sanitizer build: each one goes through the public API with the smallest
 * input that showed the problem, and expects the documented error instead
 * of a crash, a sanitizer report or a result that lies about its size.
 */
#include <algorithm>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>

#include <faiss_ehi/io_primitives.h>

#include "contrib/data/beir.h"
#include "contrib/data/json.h"
#include "contrib/data/vecs_io.h"
#include "test_helpers.h"

namespace {

using ehi_test::TempDir;
using idx_t = faiss::Index::idx_t;

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f << bytes;
}

/// Runs f, expecting a std::runtime_error whose message contains `what`.
template <class F>
void expect_runtime_error(F&& f, const std::string& what) {
    try {
        f();
        ADD_FAILURE() << "no exception thrown";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(what), std::string::npos)
                << e.what();
    }
}

/// An .npy version 1.0 file with header dict `dict` and `nbytes` data.
std::string npy_bytes(const std::string& dict, size_t nbytes) {
    std::string h = dict + "\n";
    std::string buf = std::string("\x93NUMPY\x01\x00", 8);
    buf += char(h.size() & 0xff);
    buf += char(h.size() >> 8);
    return buf + h + std::string(nbytes, '\0');
}

} // namespace

// The data size n * d * 4 of shape (2^40, 2^24) wraps to 0 in 64 bits: the
// reader accepted a file without data and returned n = 2^40, d = 2^24 with
// an empty vector.
TEST(FuzzRegression, NpyShapeWhoseSizeWrapsThrows) {
    TempDir t;
    std::string path = t.file("wrap.npy");
    write_file(path,
               npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (1099511627776, 16777216), }",
                         0));
    int d = 0;
    idx_t n = 0;
    expect_runtime_error([&] { faiss_ehi::data::npy_read(path, &d, &n); },
                         "too large");
}

// A BEIR line whose extra field nests arrays 300,000 deep: the JSON reader
// recursed once per level and overflowed the stack. It must throw instead,
// naming the limit, and still read nesting within it.
TEST(FuzzRegression, BeirLineNestedTooDeepThrows) {
    TempDir t;
    const int deep = 300000;
    std::string path = t.file("corpus.jsonl");
    write_file(path,
               "{\"_id\": \"a\", \"text\": \"b\", \"x\": " +
                       std::string(deep, '[') + std::string(deep, ']') + "}\n");
    expect_runtime_error([&] { faiss_ehi::data::read_beir_corpus(path); },
                         "nested deeper than");

    const int ok = faiss_ehi::data::kJsonMaxDepth;
    write_file(path,
               "{\"_id\": \"a\", \"text\": \"b\", \"x\": " +
                       std::string(ok, '[') + std::string(ok, ']') + "}\n");
    faiss_ehi::data::BeirCorpus c = faiss_ehi::data::read_beir_corpus(path);
    ASSERT_EQ(c.ids.size(), 1u);
    EXPECT_EQ(c.texts[0], "b");
}

// A 21-byte text encoder payload: dim = 385,875,075 and no words. It read,
// and encoding one text then allocated 1.5 GB. Without words nothing in
// the file bounds dim: such a file is refused, and not written.
TEST(FuzzRegression, TextEncoderWithoutWordsIsRefused) {
    std::vector<uint8_t> payload(20, 0);
    const int32_t dim = 385875075;
    std::memcpy(payload.data(), &dim, 4); // then |V| = 0, an empty table
    faiss::VectorIOReader reader;
    {
        faiss::VectorIOWriter w;
        const char magic[4] = {'F', 'E', 'H', 'T'};
        faiss_ehi::io_detail::write_frame(&w, magic, 1, payload);
        reader.data = w.data;
    }
    ehi_test::expect_error([&] { faiss_ehi::read_text_encoder(&reader); },
                           "empty vocabulary");

    faiss_ehi::TextEncoder empty;
    empty.dim = 4;
    faiss::VectorIOWriter w;
    ehi_test::expect_error([&] { faiss_ehi::write_text_encoder(empty, &w); },
                           "empty vocabulary");
}

// An IDMap whose id table is one entry short of its vectors: Faiss's
// reader took it, and a search then read past the table (a segfault).
TEST(FuzzRegression, IDMapWithFewerIdsThanVectorsIsRefused) {
    const int d = 8;
    std::unique_ptr<faiss::Index> index(
            faiss_ehi::index_factory(d, "IDMap,Flat"));
    std::vector<float> x = ehi_test::gaussian_data(5, d, 3);
    std::vector<idx_t> ids = {10, 11, 12, 13, 14};
    index->add_with_ids(5, x.data(), ids.data());
    dynamic_cast<faiss::IndexIDMap&>(*index).id_map.pop_back();
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index.get(), &w);
    faiss::VectorIOReader r;
    r.data = w.data;
    ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                           "IDMap holds 4 ids for 5 vectors");
}

namespace {

/** An index file of 200 vectors (factory key `key`, EHI4x2 unless given;
 * with an array direct map if asked), written and re-framed after `change`
 * edited the payload bytes of Faiss's IVF part (`at` is the offset of its
 * fourcc "IwFl"). */
template <class Change>
std::vector<uint8_t> ehi_file_with_ivf_header(Change&& change,
                                              bool direct_map = false,
                                              const char* key = "EHI4x2") {
    ehi_test::KMeansTrainerScope kmeans;
    const int d = 8;
    std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, key));
    std::vector<float> x = ehi_test::gaussian_data(200, d, 5);
    index->train(200, x.data());
    std::vector<idx_t> ids(200);
    for (int i = 0; i < 200; i++) {
        ids[i] = i;
    }
    index->add_with_ids(200, x.data(), ids.data());
    if (direct_map) {
        dynamic_cast<faiss::IndexIVF&>(*index).set_direct_map_type(
                faiss::DirectMap::Array);
    }
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index.get(), &w);

    const char magic[4] = {'F', 'E', 'H', 'I'};
    faiss::VectorIOReader r;
    r.data = w.data;
    uint32_t version = 0;
    std::vector<uint8_t> payload = faiss_ehi::io_detail::read_frame(
            &r, magic, faiss_ehi::kFormatVersion, "test", "", &version);
    const std::string fourcc = "IwFl";
    auto at = std::search(payload.begin(), payload.end(), fourcc.begin(),
                          fourcc.end());
    EXPECT_NE(at, payload.end());
    change(payload, size_t(at - payload.begin()));
    faiss::VectorIOWriter out;
    faiss_ehi::io_detail::write_frame(&out, magic, version, payload);
    return out.data;
}

// Faiss's IVF header: fourcc "IwFl", d (4 bytes), ntotal and two unused
// counts (8 bytes each), the is_trained byte, the metric (4 bytes).
constexpr size_t kTrainedOffset = 4 + 4 + 3 * 8;
constexpr size_t kMetricOffset = kTrainedOffset + 1;
// After the header (the L2 metric has no parameter): nlist, 8 bytes.
constexpr size_t kNlistOffset = kMetricOffset + 4;

} // namespace

// A file whose IVF header stores is_trained as 96: Faiss's reader copied
// the byte into the bool, and the first search read a bool that was
// neither true nor false (UBSan: "not a valid value for type 'bool'").
TEST(FuzzRegression, BoolFieldOutsideZeroOneIsRefused) {
    faiss::VectorIOReader r;
    r.data = ehi_file_with_ivf_header([](std::vector<uint8_t>& p, size_t at) {
        ASSERT_EQ(p.at(at + kTrainedOffset), 1);
        p[at + kTrainedOffset] = 96;
    });
    ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                           "is_trained flag is stored as 96, not 0 or 1");
}

// The same for the metric, an enum read as 4 raw bytes: 2^24 reached the
// tree installer's comparison of metrics (UBSan: "not a valid value for
// type 'faiss::MetricType'").
TEST(FuzzRegression, UnknownMetricIsRefused) {
    faiss::VectorIOReader r;
    r.data = ehi_file_with_ivf_header([](std::vector<uint8_t>& p, size_t at) {
        const int32_t metric = 1 << 24;
        std::memcpy(&p.at(at + kMetricOffset), &metric, sizeof(metric));
    });
    ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                           "unknown metric type 16777216");
}

// An IDMap over an EHI index whose lists hold an id that is no position in
// the IDMap's table: Faiss's IDMap search looked it up unchecked (a
// segfault).
TEST(FuzzRegression, IDMapOverListsWithForeignIdsIsRefused) {
    ehi_test::KMeansTrainerScope kmeans;
    const int d = 8;
    std::unique_ptr<faiss::Index> index(
            faiss_ehi::index_factory(d, "IDMap,EHI4x2,Flat"));
    std::vector<float> x = ehi_test::gaussian_data(100, d, 7);
    index->train(100, x.data());
    std::vector<idx_t> ids(100);
    for (int i = 0; i < 100; i++) {
        ids[i] = 1000 + i;
    }
    index->add_with_ids(100, x.data(), ids.data());
    auto& ivf = dynamic_cast<faiss::IndexIVF&>(
            *dynamic_cast<faiss::IndexIDMap&>(*index).index);
    size_t list = 0;
    while (ivf.invlists->list_size(list) == 0) {
        list++;
    }
    faiss::InvertedLists::ScopedCodes code(ivf.invlists, list, 0);
    ivf.invlists->update_entry(list, 0, 5000, code.get());
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index.get(), &w);
    faiss::VectorIOReader r;
    r.data = w.data;
    ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                           "holds id 5000, not a position in the IDMap's 100");
}

// A direct map declaring 2^40 entries in a file of a few kilobytes: Faiss
// allocated them before finding the file short, and leaked them; the
// fuzzer ran out of memory.
TEST(FuzzRegression, DirectMapCountBeyondTheFileIsRefused) {
    faiss::VectorIOReader r;
    r.data = ehi_file_with_ivf_header(
            [](std::vector<uint8_t>& p, size_t at) {
                // the direct map: type byte 1 (Array), then its count 200
                std::vector<uint8_t> mark = {1, 200, 0, 0, 0, 0, 0, 0, 0};
                auto dm = std::search(p.begin() + at, p.end(), mark.begin(),
                                      mark.end());
                ASSERT_NE(dm, p.end());
                const uint64_t huge = uint64_t(1) << 40;
                std::memcpy(&*(dm + 1), &huge, sizeof(huge));
            },
            true);
    ehi_test::expect_error(
            [&] { delete faiss_ehi::read_index(&r); },
            "the IVF's direct map declares 1099511627776 entries, more than "
            "the file holds");
}

// An IVF declaring 2^28 inverted lists (its tree has 16 leaves), inside an
// IDMap: Faiss allocated two vectors of 2^28 lists (12 GiB) before the tree
// was compared with them, and leaked them when the read failed further on;
// the fuzzer's process ran out of memory.
TEST(FuzzRegression, ListCountOtherThanTheTreesIsRefused) {
    for (const char* key : {"EHI4x2", "IDMap,EHI4x2,Flat"}) {
        SCOPED_TRACE(key);
        faiss::VectorIOReader r;
        r.data = ehi_file_with_ivf_header(
                [](std::vector<uint8_t>& p, size_t at) {
                    uint64_t nlist = 0;
                    std::memcpy(&nlist, &p.at(at + kNlistOffset), 8);
                    ASSERT_EQ(nlist, 16u);
                    nlist = uint64_t(1) << 28;
                    std::memcpy(&p.at(at + kNlistOffset), &nlist, 8);
                },
                false, key);
        ehi_test::expect_error(
                [&] { delete faiss_ehi::read_index(&r); },
                "the IVF declares 268435456 inverted lists but its tree has "
                "16 leaves");
    }
}

// The same count in the inverted lists' own header, which Faiss sizes them
// by.
TEST(FuzzRegression, InvertedListsCountOtherThanTheIVFsIsRefused) {
    faiss::VectorIOReader r;
    r.data = ehi_file_with_ivf_header([](std::vector<uint8_t>& p, size_t at) {
        const std::string fourcc = "ilar";
        auto il = std::search(p.begin() + at, p.end(), fourcc.begin(),
                              fourcc.end());
        ASSERT_NE(il, p.end());
        const uint64_t nlist = uint64_t(1) << 28;
        std::memcpy(&*(il + 4), &nlist, 8);
    });
    ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                           "the inverted lists declare 268435456 lists, the "
                           "IVF 16");
}

// An IVF inside an IDMap whose header declares dimension -16777208: Faiss
// took it, and the lists read after it were sized by a code size that no
// longer matched anything (a 128 MiB table for a 1.3 kB file, leaked when
// the read failed).
TEST(FuzzRegression, NegativeDimensionIsRefused) {
    faiss::VectorIOReader r;
    r.data = ehi_file_with_ivf_header(
            [](std::vector<uint8_t>& p, size_t at) {
                const int32_t d = int32_t(0xff000008u);
                std::memcpy(&p.at(at + 4), &d, sizeof(d));
            },
            false, "IDMap,EHI4x2,Flat");
    ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                           "an index header declares dimension -16777208");
}

// "OPQ4,EHI4x2,PQ0" (fuzz_index_factory): Faiss builds a product quantizer
// of 0 sub-quantizers and divides by it (SIGFPE). Every form of it must
// throw, with or without an EHI token; valid PQ keys, and OPQ0, which
// Faiss handles, still build.
TEST(FuzzRegression, ProductQuantizerOfNoSubQuantizerIsRefused) {
    for (const char* key :
         {"OPQ4,EHI4x2,PQ0", "EHI4x2,PQ0", "IVF16,PQ0", "PQ0", "PQ00x8",
          "PQ0x4fs", "IVF16,PQ0np", "HNSW8_PQ0", "IMI2x4,PQ0",
          "IVF16,PQ4+0", "IVF16,PQ0+4", "EHI4x2,PQ4+0"}) {
        ehi_test::expect_error(
                [&] { delete faiss_ehi::index_factory(8, key); },
                "sub-quantizer");
    }
    for (const char* key : {"IVF16,PQ4", "EHI4x2,PQ4", "OPQ4,EHI4x2,PQ4",
                            "PQ4x4fs", "HNSW8_PQ2", "IVF16,PQ4+2",
                            "OPQ0,IVF16,Flat"}) {
        std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(8, key));
        EXPECT_NE(index, nullptr) << key;
    }
}

// An SQ8 EHI index whose file says it is trained but whose scalar quantizer
// holds no ranges (fuzz_read_index): the read succeeded and the first
// search threw inside Faiss's parallel scan, which ended the process. The
// quantizer's ranges, dimension and code size must match the index's.
TEST(FuzzRegression, ScalarQuantizerInconsistentWithItsIndexIsRefused) {
    ehi_test::KMeansTrainerScope kmeans;
    const int d = 8;
    std::vector<float> x = ehi_test::gaussian_data(200, d, 11);
    auto file_after = [&](auto&& edit) {
        std::unique_ptr<faiss::Index> index(
                faiss_ehi::index_factory(d, "EHI4x2,SQ8"));
        index->train(200, x.data());
        index->add(200, x.data());
        edit(dynamic_cast<faiss::IndexIVFScalarQuantizer&>(*index));
        faiss::VectorIOWriter w;
        faiss_ehi::write_index(index.get(), &w);
        return w.data;
    };
    struct Case {
        void (*edit)(faiss::IndexIVFScalarQuantizer&);
        const char* message;
    };
    const Case cases[] = {
            {[](faiss::IndexIVFScalarQuantizer& i) { i.sq.trained.clear(); },
             "a trained scalar quantizer holds 0 range values where its type "
             "needs 16"},
            {[](faiss::IndexIVFScalarQuantizer& i) {
                 i.sq.trained.resize(3);
             },
             "holds 3 range values where its type needs 16"},
            {[](faiss::IndexIVFScalarQuantizer& i) { i.sq.d = 4; },
             "scalar quantizer of dimension 4 in an index of dimension 8"},
            {[](faiss::IndexIVFScalarQuantizer& i) {
                 i.code_size = 4;
                 i.invlists->code_size = 4;
             },
             "scalar quantizer codes of 8 bytes in an index whose codes "
             "have 4"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.message);
        faiss::VectorIOReader r;
        r.data = file_after(c.edit);
        ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                               c.message);
    }
    // The unedited file reads and searches.
    faiss::VectorIOReader r;
    r.data = file_after([](faiss::IndexIVFScalarQuantizer&) {});
    std::unique_ptr<faiss::Index> back(faiss_ehi::read_index(&r));
    idx_t label = -1;
    float dist = 0;
    back->search(1, x.data(), 1, &dist, &label);
    EXPECT_EQ(label, 0);
}

// The check above against every scalar quantizer type Faiss 1.7.3 has:
// each one, trained, written and read back, reads and searches alike.
TEST(FuzzRegression, ScalarQuantizerOfEveryTypeReadsBack) {
    using SQ = faiss::ScalarQuantizer;
    ehi_test::KMeansTrainerScope kmeans;
    const int d = 8;
    std::vector<float> x = ehi_test::gaussian_data(200, d, 12);
    for (SQ::QuantizerType qtype :
         {SQ::QT_8bit, SQ::QT_4bit, SQ::QT_8bit_uniform, SQ::QT_4bit_uniform,
          SQ::QT_fp16, SQ::QT_8bit_direct, SQ::QT_6bit}) {
        SCOPED_TRACE(int(qtype));
        std::unique_ptr<faiss::Index> index(
                faiss_ehi::index_factory(d, "EHI4x2,SQ8"));
        auto& ivf = dynamic_cast<faiss::IndexIVFScalarQuantizer&>(*index);
        ivf.sq.qtype = qtype;
        ivf.sq.set_derived_sizes();
        ivf.code_size = ivf.sq.code_size;
        ivf.invlists->code_size = ivf.code_size;
        index->train(200, x.data());
        index->add(200, x.data());
        std::vector<float> dist(5 * 3), dist2(5 * 3);
        std::vector<idx_t> lab(5 * 3), lab2(5 * 3);
        index->search(5, x.data(), 3, dist.data(), lab.data());
        faiss::VectorIOWriter w;
        faiss_ehi::write_index(index.get(), &w);
        faiss::VectorIOReader r;
        r.data = w.data;
        std::unique_ptr<faiss::Index> back(faiss_ehi::read_index(&r));
        back->search(5, x.data(), 3, dist2.data(), lab2.data());
        EXPECT_EQ(lab, lab2);
        EXPECT_EQ(dist, dist2);
    }
}

// The same for an IndexIDMap2 (fuzz_read_index): Faiss builds its reverse
// map while reading, from the header's count, and read past the short id
// table (a segfault) before any check could run. The file must be refused,
// and a sound IDMap2 file must still read back as an IDMap2 whose reverse
// map holds every id.
TEST(FuzzRegression, IDMap2WithFewerIdsThanVectorsIsRefused) {
    const int d = 8;
    std::vector<float> x = ehi_test::gaussian_data(5, d, 3);
    std::vector<idx_t> ids = {10, 11, 12, 13, 14};
    auto file = [&](bool drop_one, const char* key) {
        std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, key));
        index->train(5, x.data());
        index->add_with_ids(5, x.data(), ids.data());
        if (drop_one) {
            dynamic_cast<faiss::IndexIDMap&>(*index).id_map.pop_back();
        }
        faiss::VectorIOWriter w;
        faiss_ehi::write_index(index.get(), &w);
        return w.data;
    };
    faiss::VectorIOReader r;
    r.data = file(true, "IDMap2,Flat");
    ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r); },
                           "IDMap holds 4 ids for 5 vectors");
    for (const char* key : {"IDMap2,Flat", "IDMap2,EHI2x1,Flat"}) {
        SCOPED_TRACE(key);
        ehi_test::KMeansTrainerScope kmeans;
        faiss::VectorIOReader ok;
        ok.data = file(false, key);
        std::unique_ptr<faiss::Index> back(faiss_ehi::read_index(&ok));
        auto* m2 = dynamic_cast<faiss::IndexIDMap2*>(back.get());
        ASSERT_NE(m2, nullptr);
        EXPECT_EQ(m2->ntotal, 5);
        EXPECT_EQ(m2->rev_map.size(), 5u);
        EXPECT_EQ(m2->rev_map.at(13), 3);
        idx_t label = -1;
        float dist = 0;
        m2->search(1, x.data() + 3 * d, 1, &dist, &label);
        EXPECT_EQ(label, 13);
    }
}

// A PCA index whose matrix is shorter than its sizes say
// (fuzz_read_index): the read succeeded and the first search multiplied
// past the end of the matrix (a segfault in BLAS). A transform chain must
// hold the arrays its sizes need and fit together.
TEST(FuzzRegression, TransformChainInconsistentWithItsSizesIsRefused) {
    ehi_test::KMeansTrainerScope kmeans;
    const int d = 8;
    std::vector<float> x = ehi_test::gaussian_data(200, d, 13);
    auto read_after = [&](const char* key, auto&& edit) {
        std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, key));
        index->train(200, x.data());
        index->add(200, x.data());
        edit(dynamic_cast<faiss::IndexPreTransform&>(*index));
        faiss::VectorIOWriter w;
        faiss_ehi::write_index(index.get(), &w);
        faiss::VectorIOReader r;
        r.data = w.data;
        return std::unique_ptr<faiss::Index>(faiss_ehi::read_index(&r));
    };
    ehi_test::expect_error(
            [&] {
                read_after("PCA4,EHI4x2,Flat", [](faiss::IndexPreTransform& pt) {
                    dynamic_cast<faiss::LinearTransform&>(*pt.chain[0])
                            .A.pop_back();
                });
            },
            "a linear transform of 8 -> 4 dimensions holds 31 weights");
    ehi_test::expect_error(
            [&] {
                read_after("PCA4,EHI4x2,Flat", [](faiss::IndexPreTransform& pt) {
                    dynamic_cast<faiss::LinearTransform&>(*pt.chain[0])
                            .b.resize(2);
                });
            },
            "a linear transform of 4 outputs holds 2 biases");
    ehi_test::expect_error(
            [&] {
                read_after("PCA4,EHI4x2,Flat", [](faiss::IndexPreTransform& pt) {
                    pt.d = 9;
                });
            },
            "transform 0 maps 8 -> 4 dimensions, its input has 9");
    // Sound chains read back and search alike.
    for (const char* key :
         {"PCA4,EHI4x2,Flat", "L2norm,EHI4x2,Flat", "PCAR4,EHI4x2,Flat"}) {
        SCOPED_TRACE(key);
        std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, key));
        index->train(200, x.data());
        index->add(200, x.data());
        std::unique_ptr<faiss::Index> back =
                read_after(key, [](faiss::IndexPreTransform&) {});
        std::vector<float> d1(3), d2(3);
        std::vector<idx_t> l1(3), l2(3);
        index->search(1, x.data(), 3, d1.data(), l1.data());
        back->search(1, x.data(), 3, d2.data(), l2.data());
        EXPECT_EQ(l1, l2);
    }
}

// A product quantizer header of 0 sub-quantizers (fuzz_read_index, an
// IndexPQ): Faiss divided by it while reading (SIGFPE), before any check
// could run. The header must be refused first, in an IndexPQ and in an
// IVF-PQ; sound files still read and search alike.
TEST(FuzzRegression, ProductQuantizerHeaderIsCheckedBeforeFaissReadsIt) {
    ehi_test::KMeansTrainerScope kmeans;
    const int d = 8;
    std::vector<float> x = ehi_test::gaussian_data(300, d, 14);
    for (const char* key : {"PQ4x4", "EHI4x2,PQ4x4"}) {
        SCOPED_TRACE(key);
        std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, key));
        index->train(300, x.data());
        index->add(300, x.data());
        faiss::ProductQuantizer& pq =
                dynamic_cast<faiss::IndexPQ*>(index.get())
                ? dynamic_cast<faiss::IndexPQ&>(*index).pq
                : dynamic_cast<faiss::IndexIVFPQ&>(*index).pq;
        auto written = [&] {
            faiss::VectorIOWriter w;
            faiss_ehi::write_index(index.get(), &w);
            return w.data;
        };
        faiss::VectorIOReader ok;
        ok.data = written();
        std::unique_ptr<faiss::Index> back(faiss_ehi::read_index(&ok));
        std::vector<float> d1(3), d2(3);
        std::vector<idx_t> l1(3), l2(3);
        index->search(1, x.data(), 3, d1.data(), l1.data());
        back->search(1, x.data(), 3, d2.data(), l2.data());
        EXPECT_EQ(l1, l2);

        pq.M = 0;
        faiss::VectorIOReader r0;
        r0.data = written();
        ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r0); },
                               "a product quantizer of 8 dimensions in 0 "
                               "sub-quantizers of 4 bits");
        pq.M = 4;
        pq.nbits = 20; // 8 x 2^20 centroids in a file of a few kilobytes
        faiss::VectorIOReader r1;
        r1.data = written();
        ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r1); },
                               "8 x 2^20 centroids do not fit in the file");
        pq.nbits = 4;
        if (!dynamic_cast<faiss::IndexPQ*>(index.get())) {
            continue; // an IVF-PQ's precomputed table already checks it
        }
        // a sound quantizer of another dimension than its index's
        pq.d = 4;
        pq.set_derived_values();
        faiss::VectorIOReader r2;
        r2.data = written();
        ehi_test::expect_error([&] { delete faiss_ehi::read_index(&r2); },
                               "a product quantizer of dimension 4 and "
                               "2-byte codes in an index of dimension 8");
    }
}
