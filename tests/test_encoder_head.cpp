/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * faiss_ehi::EncoderHead (the serving side of the learned encoder head):
 * apply against a hand-written reference, identity initialisation, the
 * IndexPreTransform(head) -> EHI pipeline, its IO (round trips, plain Faiss
 * refusing it, truncation and corrupted head records, version 1 files) and
 * error handling.
 */
#include "test_helpers.h"

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <thread>
#include <typeinfo>

#include <faiss/IndexIDMap.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

using namespace ehi_test;
using faiss_ehi::EncoderHead;
using faiss_ehi::IndexEHITree;

namespace {

/// A head with seeded random parameters (scale `s`).
EncoderHead random_head(int d_in, int d_out, int hidden, bool normalize,
                        uint64_t seed, float s = 0.3f) {
    EncoderHead e(d_in, d_out, hidden, normalize);
    Rng rng(seed);
    auto fill = [&](std::vector<float>& v) {
        for (auto& x : v) {
            x = s * float(rng.normal());
        }
    };
    fill(e.A);
    fill(e.b);
    fill(e.W1);
    fill(e.c1);
    fill(e.W2);
    fill(e.c2);
    return e;
}

/// The head's equation written out in double precision.
std::vector<float> reference_apply(const EncoderHead& e,
                                   const std::vector<float>& x) {
    size_t n = x.size() / e.d_in;
    std::vector<float> y(n * e.d_out);
    for (size_t i = 0; i < n; i++) {
        const float* xi = x.data() + i * e.d_in;
        std::vector<double> h(e.hidden);
        for (int k = 0; k < e.hidden; k++) {
            double s = e.c1[k];
            for (int j = 0; j < e.d_in; j++) {
                s += double(e.W1[size_t(k) * e.d_in + j]) * xi[j];
            }
            h[k] = s > 0 ? s : 0;
        }
        std::vector<double> out(e.d_out);
        double norm2 = 0;
        for (int o = 0; o < e.d_out; o++) {
            double s = e.b[o];
            for (int j = 0; j < e.d_in; j++) {
                s += double(e.A[size_t(o) * e.d_in + j]) * xi[j];
            }
            if (e.hidden > 0) {
                s += e.c2[o];
                for (int k = 0; k < e.hidden; k++) {
                    s += double(e.W2[size_t(o) * e.hidden + k]) * h[k];
                }
            }
            out[o] = s;
            norm2 += s * s;
        }
        for (int o = 0; o < e.d_out; o++) {
            double v = out[o];
            if (e.normalize && norm2 > 0) {
                v /= std::sqrt(norm2);
            }
            y[i * e.d_out + o] = float(v);
        }
    }
    return y;
}

std::vector<float> head_apply(const faiss::VectorTransform& t,
                              const std::vector<float>& x) {
    std::vector<float> y(x.size() / t.d_in * t.d_out);
    t.apply_noalloc(x.size() / t.d_in, x.data(), y.data());
    return y;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b,
                  float tol) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) {
        ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << "entry " << i;
    }
}

std::vector<uint8_t> serialize(const faiss::Index* index) {
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index, &w);
    return w.data;
}

std::unique_ptr<faiss::Index> deserialize(const std::vector<uint8_t>& bytes) {
    faiss::VectorIOReader r;
    r.data = bytes;
    return std::unique_ptr<faiss::Index>(faiss_ehi::read_index(&r));
}

uint64_t fnv1a(const uint8_t* p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/// Rewrite the header (version, size, checksum) around a payload.
std::vector<uint8_t> with_header(const std::vector<uint8_t>& payload,
                                 uint32_t version) {
    std::vector<uint8_t> out(24 + payload.size());
    std::memcpy(out.data(), "FEHI", 4);
    uint64_t size = payload.size(), sum = fnv1a(payload.data(), size);
    std::memcpy(out.data() + 4, &version, 4);
    std::memcpy(out.data() + 8, &size, 8);
    std::memcpy(out.data() + 16, &sum, 8);
    if (size > 0) {
        std::memcpy(out.data() + 24, payload.data(), size);
    }
    return out;
}

/** IndexPreTransform(head) -> IndexEHITree(d_out, B, H), trained with the
 * k-means tree trainer and filled with xb. */
std::unique_ptr<faiss::IndexPreTransform> head_pipeline(
        const EncoderHead& head, int B, int H, const std::vector<float>& xt,
        const std::vector<float>& xb) {
    KMeansTrainerScope scope;
    auto* inner = new IndexEHITree(head.d_out, B, H, faiss::METRIC_L2);
    std::unique_ptr<faiss::IndexPreTransform> index(
            new faiss::IndexPreTransform(new EncoderHead(head), inner));
    index->own_fields = true;
    index->train(xt.size() / head.d_in, xt.data());
    index->add(xb.size() / head.d_in, xb.data());
    inner->nprobe = 3;
    return index;
}

const EncoderHead* head_of(const faiss::Index* index, size_t pos = 0) {
    auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index);
    if (!pt || pos >= pt->chain.size()) {
        return nullptr;
    }
    return dynamic_cast<const EncoderHead*>(pt->chain[pos]);
}

/// Offset in `bytes` of the first occurrence of `pat` (npos if none).
size_t find_bytes(const std::vector<uint8_t>& bytes, const void* pat,
                  size_t n) {
    auto* p = static_cast<const uint8_t*>(pat);
    for (size_t i = 0; i + n <= bytes.size(); i++) {
        if (std::memcmp(bytes.data() + i, p, n) == 0) {
            return i;
        }
    }
    return std::string::npos;
}

} // namespace

// ------------------------------------------------------------- apply

TEST(EncoderHead, ApplyMatchesReference) {
    // 5000 rows cross the 4096-row GEMM block boundary
    auto x = gaussian_data(5000, 7, 1);
    for (int hidden : {0, 6}) {
        for (bool normalize : {false, true}) {
            EncoderHead e = random_head(7, 5, hidden, normalize, 2 + hidden);
            e.check_consistent();
            auto y = head_apply(e, x);
            expect_close(y, reference_apply(e, x), 1e-5f);
            if (normalize) {
                for (size_t i = 0; i < 5000; i++) {
                    double s = 0;
                    for (int j = 0; j < 5; j++) {
                        s += double(y[i * 5 + j]) * y[i * 5 + j];
                    }
                    ASSERT_NEAR(s, 1.0, 1e-5) << "row " << i;
                }
            }
            // one vector at a time gives the same values
            std::vector<float> y1(5);
            e.apply_noalloc(1, x.data() + 7 * 4999, y1.data());
            expect_close(y1, std::vector<float>(y.end() - 5, y.end()), 1e-6f);
        }
    }
    // wider output than input, with a hidden layer
    EncoderHead wide = random_head(4, 9, 3, false, 5);
    auto xw = gaussian_data(33, 4, 6);
    expect_close(head_apply(wide, xw), reference_apply(wide, xw), 1e-5f);
    // apply() (allocating) agrees with apply_noalloc
    std::unique_ptr<float[]> ya(wide.apply(33, xw.data()));
    auto yn = head_apply(wide, xw);
    EXPECT_EQ(0, std::memcmp(ya.get(), yn.data(), yn.size() * sizeof(float)));
    // zero vectors stay zero under normalisation
    EncoderHead zn(3, 3, 0, true);
    std::vector<float> z(6, 0.0f);
    auto yz = head_apply(zn, z);
    for (float v : yz) {
        EXPECT_EQ(v, 0.0f);
    }
    // n = 0 is fine
    EXPECT_NO_THROW(wide.apply_noalloc(0, nullptr, nullptr));
}

TEST(EncoderHead, IdentityLeavesVectorsUnchanged) {
    auto x = gaussian_data(300, 12, 3);
    for (int hidden : {0, 16}) {
        EncoderHead e(12, 12, hidden);
        EXPECT_TRUE(e.is_trained);
        auto y = head_apply(e, x);
        EXPECT_EQ(0, std::memcmp(y.data(), x.data(), x.size() * sizeof(float)))
                << "hidden " << hidden;
    }
    // set_identity resets a random head
    EncoderHead r = random_head(12, 12, 5, false, 4);
    r.set_identity();
    auto y = head_apply(r, x);
    EXPECT_EQ(0, std::memcmp(y.data(), x.data(), x.size() * sizeof(float)));
    // normalised identity: L2-normalised input
    EncoderHead n(12, 12, 0, true);
    auto xn = x;
    normalize_rows(xn, 12);
    expect_close(head_apply(n, x), xn, 1e-6f);
    // rectangular identity: truncate, or pad with zeros
    EncoderHead down(12, 5);
    auto yd = head_apply(down, x);
    EncoderHead up(12, 20);
    auto yu = head_apply(up, x);
    for (size_t i = 0; i < 300; i++) {
        for (int j = 0; j < 5; j++) {
            ASSERT_EQ(yd[i * 5 + j], x[i * 12 + j]);
        }
        for (int j = 0; j < 20; j++) {
            ASSERT_EQ(yu[i * 20 + j], j < 12 ? x[i * 12 + j] : 0.0f);
        }
    }
}

TEST(EncoderHead, ConcurrentApplyIsDeterministic) {
    EncoderHead e = random_head(10, 8, 12, true, 7);
    auto x = gaussian_data(700, 10, 8);
    auto ref = head_apply(e, x);
    std::vector<std::vector<float>> out(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&, t] {
            for (int rep = 0; rep < 5; rep++) {
                out[t] = head_apply(e, x);
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    for (auto& o : out) {
        EXPECT_EQ(
                0,
                std::memcmp(o.data(), ref.data(), ref.size() * sizeof(float)));
    }
}

TEST(EncoderHead, CheckIdentical) {
    EncoderHead a = random_head(6, 4, 3, true, 9);
    EncoderHead b = a;
    EXPECT_NO_THROW(a.check_identical(b));
    b.W2[1] += 1;
    EXPECT_FALSE(faiss_error([&] { a.check_identical(b); }).empty());
    faiss::RemapDimensionsTransform other(6, 4, true);
    EXPECT_FALSE(faiss_error([&] { a.check_identical(other); }).empty());
}

// ------------------------------------------------------------- errors

TEST(EncoderHead, NonFiniteInputThrows) {
    EncoderHead e = random_head(5, 5, 4, true, 10);
    auto x = gaussian_data(20, 5, 11);
    std::vector<float> y(x.size());
    for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
        auto xb = x;
        xb[37] = bad;
        std::string msg =
                faiss_error([&] { e.apply_noalloc(20, xb.data(), y.data()); });
        EXPECT_TRUE(contains_any(msg, {"nan", "finite", "inf"})) << msg;
    }
    // overflow inside the head is reported, not passed on
    EncoderHead big(2, 2);
    big.A = {3e38f, 3e38f, 0, 1};
    std::vector<float> xo = {10, 10};
    std::vector<float> yo(2);
    std::string msg =
            faiss_error([&] { big.apply_noalloc(1, xo.data(), yo.data()); });
    EXPECT_TRUE(contains_any(msg, {"finite", "overflow"})) << msg;
}

TEST(EncoderHead, BadSizesThrow) {
    EXPECT_FALSE(faiss_error([] { EncoderHead e(0, 4); }).empty());
    EXPECT_FALSE(faiss_error([] { EncoderHead e(4, 0); }).empty());
    EXPECT_FALSE(faiss_error([] { EncoderHead e(4, 4, -1); }).empty());

    auto x = gaussian_data(3, 4, 12);
    std::vector<float> y(3 * 4);
    auto expect_bad = [&](EncoderHead e, const char* what) {
        std::string m1 = faiss_error([&] { e.check_consistent(); });
        EXPECT_FALSE(m1.empty()) << what;
        std::string m2 =
                faiss_error([&] { e.apply_noalloc(3, x.data(), y.data()); });
        EXPECT_FALSE(m2.empty()) << what;
    };
    EncoderHead good(4, 4, 2);
    {
        EncoderHead e = good;
        e.A.pop_back();
        expect_bad(e, "A");
    }
    {
        EncoderHead e = good;
        e.b.push_back(0);
        expect_bad(e, "b");
    }
    {
        EncoderHead e = good;
        e.W1.resize(3);
        expect_bad(e, "W1");
    }
    {
        EncoderHead e = good;
        e.c1.clear();
        expect_bad(e, "c1");
    }
    {
        EncoderHead e = good;
        e.W2.resize(9);
        expect_bad(e, "W2");
    }
    {
        EncoderHead e = good;
        e.c2.clear();
        expect_bad(e, "c2");
    }
    {
        EncoderHead e = good;
        e.hidden = 3; // arrays no longer match
        expect_bad(e, "hidden");
    }
    {
        EncoderHead e(4, 4, 0);
        e.c2.assign(4, 0.0f); // no hidden layer: c2 must be empty
        expect_bad(e, "c2 without hidden");
    }
    {
        EncoderHead e = good;
        e.d_in = 0;
        expect_bad(e, "d_in");
    }
    // non-finite parameters fail check_consistent (and writing)
    EncoderHead nan = good;
    nan.W1[2] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_FALSE(faiss_error([&] { nan.check_consistent(); }).empty());
    {
        faiss::IndexFlatL2 flat(4);
        faiss::IndexPreTransform pt(new EncoderHead(nan), &flat);
        pt.own_fields = false;
        std::string m = faiss_error([&] { serialize(&pt); });
        EXPECT_FALSE(m.empty());
        delete pt.chain[0];
    }
    // an untrained head neither trains nor applies
    EncoderHead empty;
    EXPECT_FALSE(empty.is_trained);
    EXPECT_FALSE(faiss_error([&] { empty.train(3, x.data()); }).empty());
    EncoderHead untrained(4, 4);
    untrained.is_trained = false;
    std::string m = faiss_error(
            [&] { untrained.apply_noalloc(3, x.data(), y.data()); });
    EXPECT_TRUE(contains_any(m, {"trained"})) << m;
    m = faiss_error([&] { untrained.train(3, x.data()); });
    EXPECT_TRUE(contains_any(m, {"trainer"})) << m;
    // a trained head's train() does nothing
    EXPECT_NO_THROW(good.train(3, x.data()));
    // not invertible
    m = faiss_error([&] { good.reverse_transform(3, y.data(), y.data()); });
    EXPECT_TRUE(contains_any(m, {"invertible"})) << m;
}

// ------------------------------------------------------------- pipeline

TEST(EncoderHeadIndex, TrainAddSearchRoundTrip) {
    const int d = 16;
    auto xt = clustered_data(2000, d, 20, 21, 1);
    auto xb = clustered_data(1500, d, 20, 21, 2);
    auto xq = clustered_data(50, d, 20, 21, 3);
    EncoderHead head = random_head(d, 12, 8, true, 22, 0.2f);
    auto index = head_pipeline(head, 4, 2, xt, xb);
    ASSERT_TRUE(index->is_trained);
    ASSERT_EQ(index->ntotal, 1500);
    Result r = search(*index, xq, 10);

    // Faiss applied the head: searching the inner index with the encoded
    // queries gives the same results
    auto yq = head_apply(head, xq);
    Result inner = search(*index->index, yq, 10);
    EXPECT_BIT_IDENTICAL(r, inner);
    // and it finds each query's encoded neighbours reasonably
    auto yb = head_apply(head, xb);
    Result gt = brute_force(12, faiss::METRIC_L2, yb, yq, 10);
    EXPECT_GT(recall_at_k(r, gt, 10), 0.3);

    // round trips: memory, clone, file
    auto back = deserialize(serialize(index.get()));
    std::unique_ptr<faiss::Index> cl(faiss_ehi::clone_index(index.get()));
    TempDir dir;
    std::string fname = dir.file("head.fehi");
    faiss_ehi::write_index(index.get(), fname.c_str());
    std::unique_ptr<faiss::Index> fromfile(
            faiss_ehi::read_index(fname.c_str()));
    for (const faiss::Index* copy : {back.get(), cl.get(), fromfile.get()}) {
        const EncoderHead* h = head_of(copy);
        ASSERT_TRUE(h);
        EXPECT_EQ(typeid(*h), typeid(EncoderHead));
        EXPECT_NO_THROW(h->check_identical(head));
        EXPECT_TRUE(h->is_trained);
        auto* pt = static_cast<const faiss::IndexPreTransform*>(copy);
        ASSERT_TRUE(dynamic_cast<const IndexEHITree*>(pt->index));
        EXPECT_EQ(copy->ntotal, index->ntotal);
        EXPECT_BIT_IDENTICAL(r, search(*copy, xq, 10));
    }
    // the original is untouched by writing
    EXPECT_EQ(head_of(index.get())->A, head.A);
    EXPECT_BIT_IDENTICAL(r, search(*index, xq, 10));
    // writing twice gives the same bytes
    EXPECT_EQ(serialize(index.get()), serialize(cl.get()));

    // adding more after the round trip behaves the same on both
    auto xb2 = clustered_data(100, d, 20, 21, 4);
    index->add(100, xb2.data());
    back->add(100, xb2.data());
    EXPECT_BIT_IDENTICAL(search(*index, xq, 10), search(*back, xq, 10));
}

TEST(EncoderHeadIndex, FactoryNestedAndWrappedRoundTrip) {
    const int d = 12;
    auto xt = clustered_data(1500, d, 10, 31, 1);
    auto xb = clustered_data(800, d, 10, 31, 2);
    auto xq = clustered_data(30, d, 10, 31, 3);
    KMeansTrainerScope scope;
    // head -> [PCA8 -> EHI4x2]: two IndexPreTransforms, the head in the
    // outer one; then an IDMap2 around it all, and a second head in front
    // of the PCA of the inner chain
    std::unique_ptr<faiss::Index> inner(
            faiss_ehi::index_factory(d, "PCA8,EHI4x2,Flat"));
    auto* ipt = dynamic_cast<faiss::IndexPreTransform*>(inner.get());
    ASSERT_TRUE(ipt);
    EncoderHead h2 = random_head(d, d, 0, false, 32, 0.2f);
    for (int i = 0; i < d; i++) {
        h2.A[i * d + i] += 1; // near identity
    }
    ipt->prepend_transform(new EncoderHead(h2));
    EncoderHead h1 = random_head(10, d, 5, true, 33, 0.2f);
    auto* outer =
            new faiss::IndexPreTransform(new EncoderHead(h1), inner.release());
    outer->own_fields = true;
    auto xt10 = gaussian_data(1500, 10, 34);
    auto xb10 = gaussian_data(800, 10, 35);
    auto xq10 = gaussian_data(30, 10, 36);
    faiss::IndexIDMap2 idmap(outer);
    idmap.own_fields = true;
    idmap.train(1500, xt10.data());
    auto ids = make_ids(800, 1000, 3);
    idmap.add_with_ids(800, xb10.data(), ids.data());
    Result r = search(idmap, xq10, 5);

    auto check = [&](const faiss::Index* copy) {
        auto* im = dynamic_cast<const faiss::IndexIDMap2*>(copy);
        ASSERT_TRUE(im);
        const EncoderHead* c1 = head_of(im->index, 0);
        ASSERT_TRUE(c1);
        EXPECT_NO_THROW(c1->check_identical(h1));
        auto* opt = static_cast<const faiss::IndexPreTransform*>(im->index);
        auto* cpt = dynamic_cast<const faiss::IndexPreTransform*>(opt->index);
        ASSERT_TRUE(cpt);
        ASSERT_EQ(cpt->chain.size(), 2u);
        const EncoderHead* c2 = head_of(cpt, 0);
        ASSERT_TRUE(c2);
        EXPECT_NO_THROW(c2->check_identical(h2));
        EXPECT_TRUE(dynamic_cast<const faiss::PCAMatrix*>(cpt->chain[1]));
        EXPECT_TRUE(dynamic_cast<const IndexEHITree*>(cpt->index));
        EXPECT_BIT_IDENTICAL(r, search(*copy, xq10, 5));
    };
    check(deserialize(serialize(&idmap)).get());
    std::unique_ptr<faiss::Index> cl(faiss_ehi::clone_index(&idmap));
    check(cl.get());

    // a head over a plain Faiss index (no tree at all) round-trips too
    faiss::IndexFlatL2 flat(d);
    faiss::IndexPreTransform pt(new EncoderHead(h1), &flat);
    pt.add(800, xb10.data());
    Result rf = search(pt, xq10, 5);
    auto back = deserialize(serialize(&pt));
    EXPECT_TRUE(head_of(back.get()));
    EXPECT_BIT_IDENTICAL(rf, search(*back, xq10, 5));
    delete pt.chain[0];
}

TEST(EncoderHeadIndex, PlainFaissWriteThrows) {
    auto xt = clustered_data(600, 8, 6, 41, 1);
    auto xb = clustered_data(200, 8, 6, 41, 2);
    auto index = head_pipeline(EncoderHead(8, 8, 4, true), 2, 2, xt, xb);
    faiss::VectorIOWriter w;
    EXPECT_FALSE(
            faiss_error([&] { faiss::write_index(index.get(), &w); }).empty());
    // also over a flat index: the head itself is what Faiss cannot write
    faiss::IndexFlatL2 flat(8);
    faiss::IndexPreTransform pt(new EncoderHead(8, 8), &flat);
    faiss::VectorIOWriter w2;
    EXPECT_FALSE(faiss_error([&] { faiss::write_index(&pt, &w2); }).empty());
    delete pt.chain[0];
}

TEST(EncoderHeadIndex, NaNQueriesAndVectorsThrow) {
    auto xt = clustered_data(600, 8, 6, 42, 1);
    auto xb = clustered_data(200, 8, 6, 42, 2);
    auto index = head_pipeline(EncoderHead(8, 8, 4, true), 2, 2, xt, xb);
    auto xq = clustered_data(4, 8, 6, 42, 3);
    xq[9] = std::numeric_limits<float>::quiet_NaN();
    std::string ms = faiss_error([&] { search(*index, xq, 5); });
    EXPECT_TRUE(contains_any(ms, {"nan", "finite"})) << ms;
    std::string ma = faiss_error([&] { index->add(4, xq.data()); });
    EXPECT_TRUE(contains_any(ma, {"nan", "finite"})) << ma;
    EXPECT_EQ(index->ntotal, 200);
    // reconstruction needs the inverse, which the head does not have
    static_cast<IndexEHITree*>(index->index)->make_direct_map(true);
    std::vector<float> rec(8);
    std::string m = faiss_error([&] { index->reconstruct(0, rec.data()); });
    EXPECT_TRUE(contains_any(m, {"invertible"})) << m;
}

// ------------------------------------------------------------- file format

namespace {

std::unique_ptr<faiss::IndexPreTransform> tiny_head_index(EncoderHead& head) {
    auto xt = clustered_data(200, 4, 4, 51, 1);
    auto xb = clustered_data(20, 4, 4, 51, 2);
    head = random_head(4, 3, 2, true, 52);
    head.A[0] = 1234.5f; // a marker to find the record in the file
    return head_pipeline(head, 2, 1, xt, xb);
}

} // namespace

TEST(EncoderHeadIO, TruncationAtEveryOffsetThrows) {
    EncoderHead head;
    auto index = tiny_head_index(head);
    std::vector<uint8_t> bytes = serialize(index.get());
    ASSERT_NO_THROW(deserialize(bytes));
    for (size_t len = 0; len < bytes.size(); len++) {
        std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + len);
        std::string msg = faiss_error([&] { deserialize(cut); });
        ASSERT_FALSE(msg.empty()) << "truncated at " << len;
    }
    // flipped bytes fail the checksum
    for (size_t off = 0; off < bytes.size(); off++) {
        std::vector<uint8_t> bad = bytes;
        bad[off] ^= 0x5A;
        ASSERT_FALSE(faiss_error([&] { deserialize(bad); }).empty())
                << "flip at " << off;
    }
}

TEST(EncoderHeadIO, CorruptHeadRecordsThrow) {
    // Corruptions that pass the checksum (recomputed) must still be caught
    // by the head record's own checks.
    EncoderHead head;
    auto index = tiny_head_index(head);
    std::vector<uint8_t> bytes = serialize(index.get());
    std::vector<uint8_t> payload(bytes.begin() + 24, bytes.end());
    ASSERT_NO_THROW(
            deserialize(with_header(payload, faiss_ehi::kFormatVersion)));
    // record: u32 ordinal, u32 pos, i32 d_in, d_out, hidden, u8 normalize,
    // u8 trained, then u64 size + floats of A (A[0] is the marker)
    float marker = 1234.5f;
    size_t a0 = find_bytes(payload, &marker, 4);
    ASSERT_NE(a0, std::string::npos);
    size_t rec = a0 - 8 - 2 - 12 - 8;
    auto u32_at = [&](size_t off) {
        uint32_t v;
        std::memcpy(&v, payload.data() + off, 4);
        return v;
    };
    ASSERT_EQ(u32_at(rec), 0u);      // ordinal
    ASSERT_EQ(u32_at(rec + 4), 0u);  // position in the chain
    ASSERT_EQ(u32_at(rec + 8), 4u);  // d_in
    ASSERT_EQ(u32_at(rec + 12), 3u); // d_out
    ASSERT_EQ(u32_at(rec + 16), 2u); // hidden
    ASSERT_EQ(u32_at(rec - 4), 1u);  // number of heads

    // `head_msg`: the head record's own checks must catch it
    auto expect_corrupt = [&](size_t off, const void* v, size_t n,
                              const char* what, bool head_msg = true) {
        std::vector<uint8_t> bad = payload;
        std::memcpy(bad.data() + off, v, n);
        std::string msg = faiss_error([&] {
            deserialize(with_header(bad, faiss_ehi::kFormatVersion));
        });
        EXPECT_FALSE(msg.empty()) << what;
        if (head_msg) {
            EXPECT_TRUE(contains_any(msg, {"encoder head"}))
                    << what << ": " << msg;
        }
    };
    uint32_t v;
    v = 1;
    expect_corrupt(rec, &v, 4, "ordinal out of range");
    v = 1;
    expect_corrupt(rec + 4, &v, 4, "position out of range");
    v = 0;
    expect_corrupt(rec + 8, &v, 4, "d_in = 0");
    v = 5;
    expect_corrupt(rec + 8, &v, 4, "d_in mismatch");
    v = 2;
    expect_corrupt(rec + 12, &v, 4, "d_out mismatch");
    v = 3;
    expect_corrupt(rec + 16, &v, 4, "hidden mismatch");
    v = uint32_t(-1);
    expect_corrupt(rec + 16, &v, 4, "negative hidden");
    uint8_t flag = 2;
    expect_corrupt(rec + 20, &flag, 1, "bad normalize flag");
    expect_corrupt(rec + 21, &flag, 1, "bad trained flag");
    float nan = std::numeric_limits<float>::quiet_NaN();
    expect_corrupt(a0, &nan, 4, "NaN parameter");
    // a wrong head count shifts where the Faiss part starts
    v = 0;
    expect_corrupt(rec - 4, &v, 4, "head count 0", false);
    v = 2;
    expect_corrupt(rec - 4, &v, 4, "head count 2", false);
    // the version 1 layout has no head section: reading this as version 1
    // fails
    EXPECT_FALSE(
            faiss_error([&] { deserialize(with_header(payload, 1)); }).empty());
}

TEST(EncoderHeadIO, Version1FilesStillRead) {
    // A version 1 file is a version 2 file without the head count.
    // Plain Faiss index (no IVF records): payload [u32 0][u32 0][Faiss].
    auto xb = gaussian_data(50, 6, 61);
    auto xq = gaussian_data(5, 6, 62);
    faiss::IndexFlatL2 flat(6);
    flat.add(50, xb.data());
    std::vector<uint8_t> bytes = serialize(&flat);
    uint32_t version;
    std::memcpy(&version, bytes.data() + 4, 4);
    EXPECT_EQ(version, faiss_ehi::kFormatVersion);
    EXPECT_EQ(version, 3u);
    std::vector<uint8_t> payload(bytes.begin() + 24, bytes.end());
    payload.erase(payload.begin() + 4, payload.begin() + 8);
    auto v1 = deserialize(with_header(payload, 1));
    EXPECT_BIT_IDENTICAL(search(flat, xq, 4), search(*v1, xq, 4));

    // An EHI tree index: the head count sits just before the Faiss part,
    // which starts with IndexIVFFlat's fourcc.
    auto xt = clustered_data(300, 6, 5, 63, 1);
    auto tree = kmeans_tree_index(6, 2, 2, faiss::METRIC_L2, xt);
    tree->add(50, xb.data());
    tree->nprobe = 2;
    bytes = serialize(tree.get());
    payload.assign(bytes.begin() + 24, bytes.end());
    size_t fc = find_bytes(payload, "IwFl", 4);
    ASSERT_NE(fc, std::string::npos);
    uint32_t nheads;
    std::memcpy(&nheads, payload.data() + fc - 4, 4);
    ASSERT_EQ(nheads, 0u);
    payload.erase(payload.begin() + fc - 4, payload.begin() + fc);
    // and the version 3 routing record ends the tree record: magic, u8,
    // f32, i32, u32 count, count x i32
    size_t rx = find_bytes(payload, "GRP1", 4);
    ASSERT_NE(rx, std::string::npos);
    uint32_t ngroups;
    std::memcpy(&ngroups, payload.data() + rx + 13, 4);
    payload.erase(payload.begin() + rx,
                  payload.begin() + rx + 17 + 4 * size_t(ngroups));
    // version 1 has no routing record: route as a version 1 reader would
    auto* tq = dynamic_cast<faiss_ehi::EHITreeQuantizer*>(
            dynamic_cast<faiss::IndexIVF*>(tree.get())->quantizer);
    ASSERT_TRUE(tq);
    tq->tree.group_expansion.clear();
    tq->assign_nearest = false;
    auto t1 = deserialize(with_header(payload, 1));
    ASSERT_TRUE(dynamic_cast<IndexEHITree*>(t1.get()));
    EXPECT_BIT_IDENTICAL(search(*tree, xq, 4), search(*t1, xq, 4));
    // versions beyond this build's are refused
    std::string m = faiss_error([&] {
        deserialize(with_header(payload, faiss_ehi::kFormatVersion + 1));
    });
    EXPECT_TRUE(contains_any(m, {"version"})) << m;
}
