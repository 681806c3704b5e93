/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * faiss_ehi::index_factory keys, and faiss_ehi's IO: round trips, corrupted
 * and truncated input, atomic writes, plain Faiss refusing EHI indexes.
 */
#include "test_helpers.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <typeinfo>

#include <faiss/IVFlib.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/VectorTransform.h>
#include <faiss/clone_index.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <faiss_ehi/io_primitives.h>

using namespace ehi_test;
using faiss_ehi::EHITreeQuantizer;
using faiss_ehi::IndexEHITree;
using faiss_ehi::NodeForm;

namespace {

std::vector<uint8_t> read_bytes(const std::string& fname) {
    std::ifstream f(fname, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f),
                                std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& fname, const std::vector<uint8_t>& b) {
    std::ofstream f(fname, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), b.size());
}

std::vector<uint8_t> serialize(const faiss::Index* index) {
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index, &w);
    return w.data;
}

std::unique_ptr<faiss::Index> deserialize(const std::vector<uint8_t>& b) {
    faiss::VectorIOReader r;
    r.data = b;
    return std::unique_ptr<faiss::Index>(faiss_ehi::read_index(&r));
}

/// The IVF inside an index (through pre-transforms, IDMap and IndexRefine,
/// which Faiss 1.7.3's extract_index_ivf does not unwrap).
faiss::IndexIVF* ivf_of(faiss::Index* index) {
    if (auto* rf = dynamic_cast<faiss::IndexRefine*>(index)) {
        index = rf->base_index;
    }
    return faiss::ivflib::extract_index_ivf(index);
}

struct FactoryCase {
    const char* key;
    int d;
    faiss::MetricType metric;
    int B, H;
    NodeForm form;
    idx_t nt;       // training vectors
    idx_t nprobe;   // generous beam for the recall check
    double recall;  // recall@10 floor at that beam
    bool normalize; // data on the unit sphere
    const char* name;
};

// recall floors: about two thirds of what the k-means trainer measured
// Recall floors: about 0.9 times what the k-means trainer measured on this
// data (a tree routing at random would find about nprobe / 256 of it).
const FactoryCase kFactoryCases[] = {
        {"EHI16x2", 16, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE, 5000, 16,
         0.9, false, "EHI16x2"},
        {"EHI16x2,Flat", 16, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE, 5000,
         16, 0.9, false, "EHI16x2_Flat"},
        {"EHI16x2,Flat", 16, faiss::METRIC_INNER_PRODUCT, 16, 2,
         NodeForm::PER_NODE, 5000, 16, 0.9, true, "EHI16x2_Flat_IP"},
        {"EHI16x2,SQ8", 16, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE, 5000,
         16, 0.85, false, "EHI16x2_SQ8"},
        {"EHI16x2,PQ16", 32, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE, 5000,
         16, 0.75, false, "EHI16x2_PQ16"},
        {"PCA64,EHI16x2,Flat", 96, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE,
         5000, 16, 0.5, false, "PCA64_EHI16x2_Flat"},
        {"OPQ16,EHI16x2,PQ16", 32, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE,
         5000, 16, 0.75, false, "OPQ16_EHI16x2_PQ16"},
        {"L2norm,EHI16x2,Flat", 16, faiss::METRIC_INNER_PRODUCT, 16, 2,
         NodeForm::PER_NODE, 5000, 16, 0.9, true, "L2norm_EHI16x2_Flat"},
        {"IDMap,EHI16x2,Flat", 16, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE,
         5000, 16, 0.9, false, "IDMap_EHI16x2_Flat"},
        {"EHI16x2_paper", 16, faiss::METRIC_L2, 16, 2, NodeForm::PAPER, 5000,
         16, 0.9, false, "EHI16x2_paper"},
        {"EHI8x3_node,Flat", 16, faiss::METRIC_L2, 8, 3, NodeForm::PER_NODE,
         5000, 16, 0.9, false, "EHI8x3_node_Flat"},
        {"EHI16x2,SQ8", 16, faiss::METRIC_INNER_PRODUCT, 16, 2,
         NodeForm::PER_NODE, 5000, 16, 0.8, true, "EHI16x2_SQ8_IP"},
        {"EHI16x2,PQ16", 32, faiss::METRIC_INNER_PRODUCT, 16, 2,
         NodeForm::PER_NODE, 5000, 16, 0.6, true, "EHI16x2_PQ16_IP"},
        {"IDMap2,EHI16x2,Flat", 16, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE,
         5000, 16, 0.9, false, "IDMap2_EHI16x2_Flat"},
        {"EHI16x2,PQ16,RFlat", 32, faiss::METRIC_L2, 16, 2, NodeForm::PER_NODE,
         5000, 16, 0.9, false, "EHI16x2_PQ16_RFlat"},
        {"EHI64x2", 16, faiss::METRIC_L2, 64, 2, NodeForm::PER_NODE, 0, 0, 0,
         false, "EHI64x2_untrained"},
};

class Factory : public ::testing::TestWithParam<FactoryCase> {};

void check_structure(faiss::Index* index, const FactoryCase& c) {
    EXPECT_EQ(index->d, c.d);
    EXPECT_EQ(index->metric_type, c.metric);
    faiss::IndexIVF* ivf = ivf_of(index);
    ASSERT_NE(ivf, nullptr);
    EXPECT_EQ(ivf->nlist, size_t(std::pow(c.B, c.H) + 0.5));
    auto* q = dynamic_cast<EHITreeQuantizer*>(ivf->quantizer);
    ASSERT_NE(q, nullptr) << "the quantizer is not an EHITreeQuantizer";
    EXPECT_EQ(q->tree.B, c.B);
    EXPECT_EQ(q->tree.H, c.H);
    EXPECT_EQ(q->tree.m, ivf->d);
    EXPECT_EQ(q->tree.form, c.form);
    EXPECT_EQ(q->metric_type, c.metric);
    EXPECT_EQ(q->ntotal, idx_t(ivf->nlist));
    std::string key = c.key;
    if (key.rfind("IDMap2", 0) == 0) {
        EXPECT_NE(dynamic_cast<faiss::IndexIDMap2*>(index), nullptr);
    } else if (key.rfind("IDMap", 0) == 0) {
        EXPECT_NE(dynamic_cast<faiss::IndexIDMap*>(index), nullptr);
    }
    if (key.find("RFlat") != std::string::npos) {
        EXPECT_NE(dynamic_cast<faiss::IndexRefine*>(index), nullptr);
    }
    if (key.find("PCA") != std::string::npos ||
        key.find("OPQ") != std::string::npos ||
        key.find("L2norm") != std::string::npos) {
        EXPECT_NE(dynamic_cast<faiss::IndexPreTransform*>(index), nullptr);
    }
    if (key == "EHI16x2" || key == "EHI64x2" || key == "EHI16x2,Flat" ||
        key == "EHI16x2_paper") {
        EXPECT_NE(dynamic_cast<IndexEHITree*>(index), nullptr)
                << "flat storage must make an IndexEHITree";
    }
}

/** The dynamic type an index has after a round trip: its own, except that
 * Faiss itself reads a METRIC_L2 / IP IndexFlat back as IndexFlatL2 /
 * IndexFlatIP. */
const std::type_info& round_trip_type(const faiss::Index* index) {
    if (!index) {
        return typeid(nullptr);
    }
    if (typeid(*index) == typeid(faiss::IndexFlat)) {
        return index->metric_type == faiss::METRIC_L2
                ? typeid(faiss::IndexFlatL2)
                : typeid(faiss::IndexFlatIP);
    }
    // and an IndexRefine over an IndexFlat as IndexRefineFlat
    if (typeid(*index) == typeid(faiss::IndexRefine) &&
        dynamic_cast<const faiss::IndexFlat*>(
                static_cast<const faiss::IndexRefine*>(index)->refine_index)) {
        return typeid(faiss::IndexRefineFlat);
    }
    return typeid(*index);
}

void round_trips(faiss::Index* index, const std::vector<float>& xq, idx_t k) {
    Result ref = search(*index, xq, k);
    const std::type_info& type = round_trip_type(index);
    TempDir dir;
    // by file name
    std::string fname = dir.file("index.fehi");
    faiss_ehi::write_index(index, fname.c_str());
    std::unique_ptr<faiss::Index> a(faiss_ehi::read_index(fname.c_str()));
    ASSERT_TRUE(a);
    EXPECT_EQ(typeid(*a), type);
    EXPECT_EQ(a->ntotal, index->ntotal);
    EXPECT_BIT_IDENTICAL(search(*a, xq, k), ref);
    // through VectorIOWriter / VectorIOReader
    std::vector<uint8_t> bytes = serialize(index);
    EXPECT_EQ(bytes, read_bytes(fname)) << "file and memory formats differ";
    std::unique_ptr<faiss::Index> b = deserialize(bytes);
    EXPECT_BIT_IDENTICAL(search(*b, xq, k), ref);
    // re-serialising the copy gives the same bytes
    EXPECT_EQ(serialize(b.get()), bytes);
    // clone
    std::unique_ptr<faiss::Index> c(faiss_ehi::clone_index(index));
    EXPECT_EQ(typeid(*c), type);
    EXPECT_BIT_IDENTICAL(search(*c, xq, k), ref);
    // the copies are independent of the original and of each other
    a.reset();
    EXPECT_BIT_IDENTICAL(search(*b, xq, k), ref);
    EXPECT_BIT_IDENTICAL(search(*c, xq, k), ref);
}

} // namespace

TEST_P(Factory, TrainAddSearchWriteReadClone) {
    const FactoryCase& c = GetParam();
    KMeansTrainerScope trainer;
    std::unique_ptr<faiss::Index> index(
            faiss_ehi::index_factory(c.d, c.key, c.metric));
    ASSERT_TRUE(index);
    check_structure(index.get(), c);
    EXPECT_FALSE(index->is_trained);

    // an untrained index round-trips too
    {
        std::unique_ptr<faiss::Index> u = deserialize(serialize(index.get()));
        EXPECT_FALSE(u->is_trained);
        EXPECT_EQ(typeid(*u), round_trip_type(index.get()));
        check_structure(u.get(), c);
        std::unique_ptr<faiss::Index> cl(faiss_ehi::clone_index(index.get()));
        EXPECT_FALSE(cl->is_trained);
        check_structure(cl.get(), c);
    }
    if (c.nt == 0) {
        return; // construction and IO only (see Factory.EHI64x2Trains)
    }

    auto xt = clustered_data(c.nt, c.d, 100, 7, 1);
    auto xq = clustered_data(50, c.d, 100, 7, 2);
    if (c.normalize) {
        normalize_rows(xt, c.d);
        normalize_rows(xq, c.d);
    }
    if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(ivf_of(index.get()))) {
        // faiss::index_factory turns polysemous training on for IVF-PQ; it
        // takes minutes and is unrelated to the tree.
        pq->do_polysemous_training = false;
    }
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index.get())) {
        if (auto* opq = dynamic_cast<faiss::OPQMatrix*>(pt->chain[0])) {
            opq->niter = 8; // default 50: slow, and not what is tested here
        }
    }
    index->train(c.nt, xt.data());
    ASSERT_TRUE(index->is_trained);
    check_structure(index.get(), c);
    auto* q = dynamic_cast<EHITreeQuantizer*>(ivf_of(index.get())->quantizer);
    EXPECT_TRUE(q->tree.is_trained);
    EXPECT_TRUE(q->is_trained);

    // the database is the training set
    const idx_t nb = c.nt;
    std::string key = c.key;
    std::vector<idx_t> ids = make_ids(nb, 1000000, 3);
    bool idmap = key.rfind("IDMap", 0) == 0;
    if (idmap) {
        index->add_with_ids(nb, xt.data(), ids.data());
    } else {
        index->add(nb, xt.data());
    }
    EXPECT_EQ(index->ntotal, nb);
    if (auto* rf = dynamic_cast<faiss::IndexRefine*>(index.get())) {
        rf->k_factor = 4; // re-rank 40 candidates
    }
    ivf_of(index.get())->nprobe = c.nprobe;
    Result r = search(*index, xq, 10);
    Result gt = brute_force(c.d, c.metric, xt, xq, 10);
    if (idmap) {
        for (auto& l : gt.I) {
            l = ids[l];
        }
    }
    double recall = recall_at_k(r, gt, 10);
    printf("%s: recall@10 at nprobe %d = %.3f\n", c.key, int(c.nprobe), recall);
    EXPECT_GE(recall, c.recall) << c.key << " nprobe " << c.nprobe;
    // all leaves: the flat-storage indexes are exact
    ivf_of(index.get())->nprobe = size_t(std::pow(c.B, c.H) + 0.5);
    bool exact = key.find("RFlat") != std::string::npos ||
            (key.find("SQ") == std::string::npos &&
             key.find("PQ") == std::string::npos &&
             key.find("PCA") == std::string::npos);
    if (exact) {
        EXPECT_EQ(recall_at_k(search(*index, xq, 10), gt, 10), 1.0);
    }
    ivf_of(index.get())->nprobe = c.nprobe;
    round_trips(index.get(), xq, 10);
}

INSTANTIATE_TEST_SUITE_P(Keys, Factory, ::testing::ValuesIn(kFactoryCases),
                         [](const ::testing::TestParamInfo<FactoryCase>& info) {
                             return std::string(info.param.name);
                         });

TEST(FactoryLarge, EHI64x2Trains) {
    // 4096 leaves: the k-means trainer needs at least 64 vectors per
    // level-1 node.
    KMeansTrainerScope trainer(5);
    const int d = 16;
    const idx_t nt = 70000;
    std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, "EHI64x2"));
    auto* ehi = dynamic_cast<IndexEHITree*>(index.get());
    ASSERT_NE(ehi, nullptr);
    EXPECT_EQ(ehi->nlist, 4096u);
    auto xt = clustered_data(nt, d, 500, 3, 1, 0.5f);
    auto xq = clustered_data(30, d, 500, 3, 2, 0.5f);
    index->train(nt, xt.data());
    index->add(nt, xt.data());
    ehi->nprobe = 256;
    Result gt = brute_force(d, faiss::METRIC_L2, xt, xq, 10);
    double recall = recall_at_k(search(*index, xq, 10), gt, 10);
    printf("EHI64x2: recall@10 at nprobe 256 = %.3f\n", recall);
    EXPECT_GE(recall, 0.9);
    round_trips(index.get(), xq, 10);
}

// ------------------------------------------------------- plain Faiss keys

class PlainFactory : public ::testing::TestWithParam<const char*> {};

TEST_P(PlainFactory, BehavesLikeFaiss) {
    const char* key = GetParam();
    const int d = 16;
    auto xt = clustered_data(2000, d, 20, 1, 1);
    auto xq = clustered_data(20, d, 20, 1, 2);
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        std::unique_ptr<faiss::Index> a(
                faiss_ehi::index_factory(d, key, metric));
        std::unique_ptr<faiss::Index> b(faiss::index_factory(d, key, metric));
        const faiss::Index& type_a = *a;
        const faiss::Index& type_b = *b;
        EXPECT_EQ(typeid(type_a), typeid(type_b));
        EXPECT_EQ(a->metric_type, metric);
        a->train(2000, xt.data());
        b->train(2000, xt.data());
        a->add(2000, xt.data());
        b->add(2000, xt.data());
        if (auto* ivf = faiss::ivflib::try_extract_index_ivf(a.get())) {
            ivf->nprobe = 4;
            faiss::ivflib::extract_index_ivf(b.get())->nprobe = 4;
        }
        Result ra = search(*a, xq, 10);
        EXPECT_BIT_IDENTICAL(ra, search(*b, xq, 10));
        // faiss_ehi's IO handles plain Faiss indexes
        round_trips(a.get(), xq, 10);
    }
}

INSTANTIATE_TEST_SUITE_P(Keys, PlainFactory,
                         ::testing::Values("IVF16,Flat", "Flat",
                                           "PCA8,IVF8,SQ8"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                             std::string s = info.param;
                             for (auto& ch : s) {
                                 if (!isalnum((unsigned char)ch)) {
                                     ch = '_';
                                 }
                             }
                             return s;
                         });

class MalformedFactory : public ::testing::TestWithParam<const char*> {};

TEST_P(MalformedFactory, Throws) {
    const char* key = GetParam();
    std::string msg = faiss_error([&] {
        std::unique_ptr<faiss::Index> idx(faiss_ehi::index_factory(32, key));
    });
    EXPECT_FALSE(msg.empty()) << key;
}

INSTANTIATE_TEST_SUITE_P(
        Keys, MalformedFactory,
        ::testing::Values("EHI0x2", "EHI64x0", "EHI64", "EHI1x3", "EHIx2",
                          "EHI100000x3",
                          "EHI2x25", // 2^25 leaves > kMaxLeaves
                          "EHI-4x2", "EHI16x2_bogus", "EHI16x2,Bogus"),
        [](const ::testing::TestParamInfo<const char*>& info) {
            return "case" + std::to_string(info.index);
        });

TEST(Factory, UnsupportedMetricThrows) {
    std::string msg = faiss_error([] {
        std::unique_ptr<faiss::Index> idx(
                faiss_ehi::index_factory(16, "EHI4x2", faiss::METRIC_L1));
    });
    EXPECT_FALSE(msg.empty());
}

TEST(Factory, DefaultIsPerNodeAndSuffixesWork) {
    std::unique_ptr<faiss::Index> a(faiss_ehi::index_factory(16, "EHI4x2"));
    std::unique_ptr<faiss::Index> b(
            faiss_ehi::index_factory(16, "EHI4x2_node"));
    std::unique_ptr<faiss::Index> c(
            faiss_ehi::index_factory(16, "EHI4x2_paper,Flat"));
    auto form = [](faiss::Index* idx) {
        return dynamic_cast<EHITreeQuantizer*>(ivf_of(idx)->quantizer)
                ->tree.form;
    };
    EXPECT_EQ(form(a.get()), NodeForm::PER_NODE);
    EXPECT_EQ(form(b.get()), NodeForm::PER_NODE);
    EXPECT_EQ(form(c.get()), NodeForm::PAPER);
    EXPECT_EQ(ivf_of(a.get())->nlist, 16u);
}

TEST(Factory, LeavesLimit) {
    EXPECT_EQ(faiss_ehi::kMaxLeaves, idx_t(1) << 24);
    EXPECT_THROW(std::unique_ptr<faiss::Index>(
                         faiss_ehi::index_factory(8, "EHI4096x3")),
                 faiss::FaissException);
    EXPECT_THROW(std::unique_ptr<faiss::Index>(
                         faiss_ehi::index_factory(8, "EHI2x40")),
                 faiss::FaissException);
}

// ------------------------------------------------------------ corruption

namespace {

/// The tiny index of the corruption tests: d 8, B 3, H 2, 200 vectors.
std::unique_ptr<IndexEHITree> tiny_index() {
    auto xb = gaussian_data(200, 8, 77);
    auto index = random_tree_index(8, 3, 2, faiss::METRIC_L2, xb, 78);
    index->d2l = 2;
    index->add(200, xb.data());
    return index;
}

} // namespace

TEST(IO, TruncationAtEveryOffsetThrows) {
    auto index = tiny_index();
    std::vector<uint8_t> bytes = serialize(index.get());
    ASSERT_GT(bytes.size(), 16u);
    ASSERT_EQ(0, std::memcmp(bytes.data(), "FEHI", 4));
    // the full buffer reads back
    ASSERT_NO_THROW(deserialize(bytes));
    for (size_t len = 0; len < bytes.size(); len++) {
        std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + len);
        std::string msg = faiss_error([&] { deserialize(cut); });
        ASSERT_FALSE(msg.empty()) << "truncated at " << len;
    }
    // a few truncated files
    TempDir dir;
    std::string f = dir.file("t.fehi");
    for (size_t len : {size_t(0), size_t(3), size_t(4), bytes.size() / 2,
                       bytes.size() - 1}) {
        write_bytes(f,
                    std::vector<uint8_t>(bytes.begin(), bytes.begin() + len));
        EXPECT_THROW(
                std::unique_ptr<faiss::Index>(faiss_ehi::read_index(f.c_str())),
                faiss::FaissException)
                << "file truncated at " << len;
    }
    // a missing file
    EXPECT_THROW(std::unique_ptr<faiss::Index>(
                         faiss_ehi::read_index(dir.file("missing").c_str())),
                 faiss::FaissException);
}

TEST(IO, FlippedBytesThrow) {
    auto index = tiny_index();
    std::vector<uint8_t> bytes = serialize(index.get());
    for (uint8_t mask : {uint8_t(0xFF), uint8_t(0x01), uint8_t(0x80)}) {
        for (size_t off = 0; off < bytes.size(); off++) {
            std::vector<uint8_t> bad = bytes;
            bad[off] ^= mask;
            std::string msg = faiss_error([&] { deserialize(bad); });
            ASSERT_FALSE(msg.empty())
                    << "flip " << int(mask) << " at offset " << off;
        }
    }
}

// ------------------------------------ consistency and resource limits

namespace {

/// Offset of the payload in a faiss_ehi file (magic, version, size, sum).
constexpr size_t kPayloadAt = 24;

/// Recompute the frame's checksum after an edit of the payload, so that
/// the reader gets past it to the records edited.
void reseal(std::vector<uint8_t>& b) {
    uint64_t sum = faiss_ehi::io_detail::fnv1a(b.data() + kPayloadAt,
                                               b.size() - kPayloadAt);
    std::memcpy(b.data() + 16, &sum, 8);
}

/// The only offset of a four-character code in the payload.
size_t find_fourcc(const std::vector<uint8_t>& b, const char* code) {
    size_t at = std::string::npos;
    for (size_t i = kPayloadAt; i + 4 <= b.size(); i++) {
        if (std::memcmp(b.data() + i, code, 4) == 0) {
            EXPECT_EQ(at, std::string::npos) << code << " found twice";
            at = i;
        }
    }
    EXPECT_NE(at, std::string::npos) << code << " not found";
    return at;
}

template <class T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
    ASSERT_LE(at + sizeof(T), b.size());
    std::memcpy(b.data() + at, &v, sizeof(T));
}

// Offsets in an IndexIVFFlat record of Faiss ("IwFl", L2): fourcc, d,
// ntotal, two unused counts, is_trained, metric, nlist.
constexpr size_t kIwFlNtotal = 8;
constexpr size_t kIwFlNlist = 4 + 4 + 8 + 8 + 8 + 1 + 4;

/// An index without copies (d2l 1): d 8, B 3, H 2, 200 vectors.
std::unique_ptr<IndexEHITree> tiny_single_index() {
    auto xb = gaussian_data(200, 8, 77);
    auto index = random_tree_index(8, 3, 2, faiss::METRIC_L2, xb, 78);
    index->add(200, xb.data());
    return index;
}

} // namespace

TEST(IO, NtotalMustMatchTheLists) {
    for (bool copies : {false, true}) {
        SCOPED_TRACE(copies ? "d2l 2" : "d2l 1");
        auto index = copies ? tiny_index() : tiny_single_index();
        ASSERT_NO_THROW(deserialize(serialize(index.get())));
        // an inconsistent index built in memory and written
        index->ntotal += 1000;
        std::string msg =
                faiss_error([&] { deserialize(serialize(index.get())); });
        EXPECT_TRUE(contains_any(msg, {"ntotal = 1200"})) << msg;
        index->ntotal -= 1000;
        // the same, edited in a valid file (checksum recomputed)
        std::vector<uint8_t> bytes = serialize(index.get());
        size_t ivf = find_fourcc(bytes, "IwFl");
        int64_t ntotal;
        std::memcpy(&ntotal, bytes.data() + ivf + kIwFlNtotal, 8);
        ASSERT_EQ(ntotal, 200);
        // a header that claims 10^12 vectors
        for (int64_t claim :
             {int64_t(copies ? 100000 : 199), int64_t(1000000000000)}) {
            std::vector<uint8_t> bad = bytes;
            poke<int64_t>(bad, ivf + kIwFlNtotal, claim);
            reseal(bad);
            msg = faiss_error([&] { deserialize(bad); });
            EXPECT_TRUE(contains_any(
                    msg, {("ntotal = " + std::to_string(claim)).c_str()}))
                    << msg;
            EXPECT_TRUE(contains_any(msg, {"entries"})) << msg;
        }
    }
}

// Ids may repeat, as in Faiss (add_with_ids with repeats, add after
// remove_ids): such an index reads back as it was written.
TEST(IO, RepeatedIdsReadBack) {
    auto xb = gaussian_data(200, 8, 77);
    auto index = random_tree_index(8, 3, 2, faiss::METRIC_L2, xb, 78);
    std::vector<idx_t> ids = make_ids(200, 0, 1);
    ids[150] = 7; // id 7 twice
    index->add_with_ids(200, xb.data(), ids.data());
    ASSERT_EQ(index->d2l, 1);
    std::unique_ptr<faiss::Index> back = deserialize(serialize(index.get()));
    EXPECT_EQ(back->ntotal, 200);
    EXPECT_EQ(serialize(back.get()), serialize(index.get()));
}

TEST(IO, DirectoryIsNamed) {
    TempDir dir;
    std::string msg = faiss_error([&] {
        std::unique_ptr<faiss::Index>(faiss_ehi::read_index(dir.path.c_str()));
    });
    EXPECT_TRUE(contains_any(msg, {"is a directory"})) << msg;
    EXPECT_FALSE(contains_any(msg, {"truncated"})) << msg;
}

TEST(IO, HugeCountsFailBeforeAllocating) {
    auto index = tiny_single_index();
    const std::vector<uint8_t> bytes = serialize(index.get());
    ASSERT_NO_THROW(deserialize(bytes));
    // the frame's payload size: read in chunks, so the data runs out first
    {
        std::vector<uint8_t> bad = bytes;
        poke<uint64_t>(bad, 8, uint64_t(1000000000000));
        std::string msg = faiss_error([&] { deserialize(bad); });
        EXPECT_TRUE(contains_any(msg, {"1000000000000 payload bytes"})) << msg;
    }
    // the tree record: B and H after the IVF record's EHI fields
    // (count, has tree, is EHI, d2l, rule, SOAR lambda, duplicates, d,
    // metric)
    const size_t tree_B = kPayloadAt + 4 + 1 + 1 + 4 + 4 + 4 + 1 + 4 + 4;
    int32_t B, H;
    std::memcpy(&B, bytes.data() + tree_B, 4);
    std::memcpy(&H, bytes.data() + tree_B + 4, 4);
    ASSERT_EQ(B, 3);
    ASSERT_EQ(H, 2);
    for (auto bh : {std::pair<int32_t, int32_t>{2, 40},
                    std::pair<int32_t, int32_t>{1000000, 2},
                    std::pair<int32_t, int32_t>{2, 31}}) {
        std::vector<uint8_t> bad = bytes;
        poke<int32_t>(bad, tree_B, bh.first);
        poke<int32_t>(bad, tree_B + 4, bh.second);
        reseal(bad);
        std::string msg = faiss_error([&] { deserialize(bad); });
        EXPECT_TRUE(contains_any(msg, {"leaves"})) << msg;
        EXPECT_TRUE(contains_any(msg,
                                 {("B = " + std::to_string(bh.first) +
                                   ", H = " + std::to_string(bh.second))
                                          .c_str()}))
                << msg;
    }
    // Faiss's IVF: 2^40 inverted lists
    size_t ivf = find_fourcc(bytes, "IwFl");
    {
        std::vector<uint8_t> bad = bytes;
        poke<uint64_t>(bad, ivf + kIwFlNlist, uint64_t(1) << 40);
        reseal(bad);
        std::string msg = faiss_error([&] { deserialize(bad); });
        EXPECT_TRUE(contains_any(msg, {"1099511627776 inverted lists"})) << msg;
    }
    // an inverted list of 10^12 entries: "ilar", nlist, code size, list
    // type, then the sizes (one per list when most lists have entries)
    size_t il = find_fourcc(bytes, "ilar");
    ASSERT_EQ(0, std::memcmp(bytes.data() + il + 20, "full", 4));
    {
        std::vector<uint8_t> bad = bytes;
        poke<uint64_t>(bad, il + 32 + 8 * 4, uint64_t(1000000000000));
        reseal(bad);
        std::string msg = faiss_error([&] { deserialize(bad); });
        EXPECT_TRUE(contains_any(
                msg, {"inverted list 4 declares 1000000000000 entries"}))
                << msg;
    }
    // one entry more than the file holds is caught too
    {
        std::vector<uint8_t> bad = bytes;
        uint64_t n0;
        std::memcpy(&n0, bytes.data() + il + 32, 8);
        poke<uint64_t>(bad, il + 32, n0 + 1);
        reseal(bad);
        std::string msg = faiss_error([&] { deserialize(bad); });
        // (list 0 still fits: the list found short is a later one)
        EXPECT_TRUE(contains_any(msg, {"declares"})) << msg;
        EXPECT_TRUE(contains_any(msg, {"the file holds at most"})) << msg;
    }
}

TEST(IO, PlainFaissFilesAreRejected) {
    // a file written by plain Faiss is not a faiss_ehi file
    faiss::IndexFlatL2 flat(8);
    auto xb = gaussian_data(10, 8, 1);
    flat.add(10, xb.data());
    faiss::VectorIOWriter w;
    faiss::write_index(&flat, &w);
    EXPECT_THROW(deserialize(w.data), faiss::FaissException);
    EXPECT_THROW(deserialize(std::vector<uint8_t>()), faiss::FaissException);
}

namespace {

/// An index that Faiss cannot serialise.
struct OpaqueIndex : faiss::Index {
    explicit OpaqueIndex(int d) : faiss::Index(d) {}
    void add(idx_t, const float*) override {}
    void reset() override {}
    void search(idx_t n, const float*, idx_t k, float* D, idx_t* I,
                const faiss::SearchParameters* = nullptr) const override {
        std::fill(D, D + n * k, 0.0f);
        std::fill(I, I + n * k, idx_t(-1));
    }
};

} // namespace

TEST(IO, AtomicWriteKeepsOldFile) {
    auto index = tiny_index();
    TempDir dir;
    std::string fname = dir.file("index.fehi");
    faiss_ehi::write_index(index.get(), fname.c_str());
    std::vector<uint8_t> before = read_bytes(fname);
    ASSERT_FALSE(before.empty());
    auto files_before = dir.files();

    // a path in a directory that does not exist
    std::string bad = dir.file("no/such/dir/index.fehi");
    EXPECT_THROW(faiss_ehi::write_index(index.get(), bad.c_str()),
                 faiss::FaissException);

    // indexes that Faiss cannot serialise, over the existing file
    OpaqueIndex opaque(8);
    std::string msg = faiss_error(
            [&] { faiss_ehi::write_index(&opaque, fname.c_str()); });
    EXPECT_FALSE(msg.empty());
    EXPECT_EQ(read_bytes(fname), before);
    {
        auto* q = new OpaqueIndex(8);
        q->is_trained = true;
        faiss::IndexIVFFlat ivf(q, 8, 4);
        ivf.own_fields = true;
        EXPECT_THROW(faiss_ehi::write_index(&ivf, fname.c_str()),
                     faiss::FaissException);
    }
    EXPECT_EQ(read_bytes(fname), before) << "the old file was modified";
    EXPECT_EQ(dir.files(), files_before) << "a temporary file was left behind";

    // the old file still reads and equals the index
    std::unique_ptr<faiss::Index> r(faiss_ehi::read_index(fname.c_str()));
    auto xq = gaussian_data(10, 8, 3);
    EXPECT_BIT_IDENTICAL(search(*r, xq, 5), search(*index, xq, 5));

    // a successful write replaces the file
    index->add(10, xq.data());
    faiss_ehi::write_index(index.get(), fname.c_str());
    std::unique_ptr<faiss::Index> r2(faiss_ehi::read_index(fname.c_str()));
    EXPECT_EQ(r2->ntotal, 210);
    EXPECT_EQ(dir.files(), files_before);
}

TEST(IO, PlainFaissRefusesEHIIndexes) {
    auto index = tiny_index();
    faiss::VectorIOWriter w;
    EXPECT_THROW(faiss::write_index(index.get(), &w), faiss::FaissException);
    EXPECT_THROW(faiss::write_index(index->quantizer, &w),
                 faiss::FaissException);
    EXPECT_THROW(std::unique_ptr<faiss::Index>(faiss::clone_index(index.get())),
                 faiss::FaissException);
    EXPECT_THROW(
            std::unique_ptr<faiss::Index>(faiss::clone_index(index->quantizer)),
            faiss::FaissException);
    // and inside composite indexes
    KMeansTrainerScope trainer;
    std::unique_ptr<faiss::Index> pt(
            faiss_ehi::index_factory(16, "PCA8,EHI4x2,Flat"));
    faiss::VectorIOWriter w2;
    EXPECT_THROW(faiss::write_index(pt.get(), &w2), faiss::FaissException);
}

TEST(IO, QuantizerAloneRoundTripsOrFailsLoudly) {
    // A bare EHITreeQuantizer is not something the factory makes: writing
    // it may be refused, but only with a FaissException, and if it is
    // written it must read back identical.
    auto index = tiny_index();
    const EHITreeQuantizer* q = index->tree_quantizer();
    std::vector<uint8_t> bytes;
    try {
        bytes = serialize(q);
    } catch (const faiss::FaissException& e) {
        EXPECT_FALSE(std::string(e.what()).empty());
        return;
    }
    std::unique_ptr<faiss::Index> r = deserialize(bytes);
    auto* rq = dynamic_cast<EHITreeQuantizer*>(r.get());
    ASSERT_NE(rq, nullptr);
    EXPECT_EQ(rq->leaf_representatives, q->leaf_representatives);
    auto xq = gaussian_data(10, 8, 5);
    EXPECT_BIT_IDENTICAL(search(*rq, xq, 4), search(*q, xq, 4));
}

TEST(IO, EHIFieldsRoundTrip) {
    auto index = tiny_index();
    index->nprobe = 3;
    index->assign_rule = faiss_ehi::DocAssignRule::NEAREST_LEAF;
    index->soar_lambda = 0.25f;
    index->tree_quantizer()->tree.strategy =
            faiss_ehi::BeamStrategy::LEVEL_BEAM;
    std::unique_ptr<faiss::Index> r = deserialize(serialize(index.get()));
    auto* e = dynamic_cast<IndexEHITree*>(r.get());
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->d2l, 2);
    EXPECT_EQ(e->nprobe, 3u);
    EXPECT_EQ(e->assign_rule, faiss_ehi::DocAssignRule::NEAREST_LEAF);
    EXPECT_EQ(e->soar_lambda, 0.25f);
    EXPECT_TRUE(e->lists_have_duplicates);
    const auto& t0 = index->tree_quantizer()->tree;
    const auto& t1 = e->tree_quantizer()->tree;
    EXPECT_EQ(t1.B, t0.B);
    EXPECT_EQ(t1.H, t0.H);
    EXPECT_EQ(t1.m, t0.m);
    EXPECT_EQ(t1.form, t0.form);
    EXPECT_EQ(t1.strategy, t0.strategy);
    EXPECT_EQ(t1.node_W, t0.node_W);
    EXPECT_EQ(t1.node_b, t0.node_b);
    // a d2l index keeps deduplicating after the round trip
    auto xq = gaussian_data(10, 8, 6);
    e->nprobe = 9;
    Result res = search(*e, xq, 50);
    for (idx_t q = 0; q < 10; q++) {
        std::set<idx_t> s;
        for (idx_t j = 0; j < 50; j++) {
            idx_t id = res.I[q * 50 + j];
            if (id >= 0) {
                EXPECT_TRUE(s.insert(id).second);
            }
        }
    }
}

TEST(IO, ReadIndexKeepsWorking) {
    // a read index accepts more vectors exactly like the original
    for (NodeForm form : {NodeForm::PAPER, NodeForm::PER_NODE}) {
        const int d = 16;
        auto xb = clustered_data(3000, d, 30, 201, 1);
        auto more = clustered_data(500, d, 30, 201, 3);
        auto xq = clustered_data(20, d, 30, 201, 2);
        auto index = kmeans_tree_index(d, 4, 2, faiss::METRIC_L2, xb, form);
        index->d2l = 2;
        index->nprobe = 3;
        index->add(3000, xb.data());
        std::unique_ptr<faiss::Index> r = deserialize(serialize(index.get()));
        auto* e = dynamic_cast<IndexEHITree*>(r.get());
        ASSERT_NE(e, nullptr);
        EXPECT_TRUE(e->is_trained);
        index->add(500, more.data());
        e->add(500, more.data());
        EXPECT_EQ(e->ntotal, 3500);
        EXPECT_BIT_IDENTICAL(search(*e, xq, 10), search(*index, xq, 10));
        // the same tree: merge works between original and copy
        auto c = same_tree_index(*index);
        c->add(10, more.data());
        EXPECT_NO_THROW(e->merge_from(*c, 0));
    }
}

TEST(IO, DirectMapSurvives) {
    const int d = 8;
    auto xb = gaussian_data(300, d, 202);
    auto index = random_tree_index(d, 3, 2, faiss::METRIC_L2, xb, 203);
    auto ids = make_ids(300, 5000, 11);
    index->set_direct_map_type(faiss::DirectMap::Hashtable);
    index->add_with_ids(300, xb.data(), ids.data());
    std::unique_ptr<faiss::Index> r = deserialize(serialize(index.get()));
    std::vector<float> rec(d);
    for (idx_t i = 0; i < 300; i += 7) {
        r->reconstruct(ids[i], rec.data());
        EXPECT_EQ(
                0,
                std::memcmp(rec.data(), xb.data() + i * d, d * sizeof(float)));
    }
}
