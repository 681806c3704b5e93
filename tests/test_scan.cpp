/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The list-scan kernels (scan_kernels.h) and SIMDListScanner: every level
 * the CPU runs equals the generic kernels to float rounding; the scanner
 * equals Faiss's own scanner for flat, SQ8 and fp16 lists, with selectors,
 * store_pairs, range search and deduplication.
 */
#include "test_helpers.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/utils/fp16.h>

#include <faiss_ehi/IndexEHITreeSQ.h>
#include <faiss_ehi/SIMDListScanner.h>
#include <faiss_ehi/blocked_scan.h>
#include <faiss_ehi/index_factory.h>
#include <faiss_ehi/scan_kernels.h>

using namespace ehi_test;
using faiss_ehi::ScanKernels;
using faiss_ehi::ScanLevel;
using faiss_ehi::SIMDListScanner;

namespace {

/// The levels this CPU runs, generic first.
std::vector<ScanLevel> runnable_levels() {
    std::vector<ScanLevel> v;
    for (int l = 0; l <= int(faiss_ehi::best_scan_level()); l++) {
        v.push_back(ScanLevel(l));
    }
    return v;
}

/// Tolerance of a sum of d terms whose magnitudes add up to `mag`.
float tol(double mag) {
    return float(4e-6 * mag + 1e-6);
}

/* Dimensions 1..1024 and starts shifted by 0..3 elements from a 64-byte
 * boundary, so that every tail length and alignment is met. */
TEST(ScanKernels, EveryLevelEqualsGeneric) {
    const size_t maxd = 1024, pad = 4;
    Rng rng(7);
    std::vector<float> q(maxd + pad), x(maxd + pad), scale(maxd + pad),
            offset(maxd + pad);
    std::vector<uint8_t> c8(maxd + pad);
    std::vector<uint16_t> c16(maxd + pad);
    for (size_t i = 0; i < maxd + pad; i++) {
        q[i] = float(rng.normal());
        x[i] = float(rng.normal());
        scale[i] = 0.01f + 0.02f * float(rng.uniform());
        offset[i] = float(rng.normal());
        c8[i] = uint8_t(rng.next() & 255);
        c16[i] = faiss::encode_fp16(float(rng.normal()));
    }
    const ScanKernels& g = faiss_ehi::scan_kernels(ScanLevel::GENERIC);
    std::vector<ScanLevel> levels = runnable_levels();
    size_t checked = 0;
    for (ScanLevel lv : levels) {
        const ScanKernels& k = faiss_ehi::scan_kernels(lv);
        EXPECT_EQ(k.level, lv);
        for (size_t d = 1; d <= maxd; d++) {
            size_t s = d % pad; // start shift, in elements
            const float *qs = q.data() + s, *xs = x.data() + (pad - 1 - s);
            const float *sc = scale.data() + s, *of = offset.data() + s;
            const uint8_t* cs = c8.data() + (d * 7) % pad;
            const uint16_t* hs = c16.data() + (d * 3) % pad;
            // magnitudes, for a tolerance independent of cancellation
            double m2 = 0, mi = 0, m8 = 0, m8i = 0, mh = 0, mhi = 0;
            double ip8 = 0;
            for (size_t i = 0; i < d; i++) {
                double x8 = of[i] + sc[i] * double(cs[i]);
                double xh = faiss::decode_fp16(hs[i]);
                m2 += (qs[i] - xs[i]) * double(qs[i] - xs[i]);
                mi += std::fabs(qs[i] * double(xs[i]));
                m8 += (qs[i] - x8) * (qs[i] - x8);
                m8i += std::fabs(qs[i] * x8);
                ip8 += qs[i] * x8;
                mh += (qs[i] - xh) * (qs[i] - xh);
                mhi += std::fabs(qs[i] * xh);
            }
            std::string at = std::string(faiss_ehi::scan_level_name(lv)) +
                    " d=" + std::to_string(d);
            ASSERT_NEAR(k.l2_f32(qs, xs, d), g.l2_f32(qs, xs, d), tol(m2))
                    << at;
            ASSERT_NEAR(k.ip_f32(qs, xs, d), g.ip_f32(qs, xs, d), tol(mi))
                    << at;
            // SQ8 kernels take the query prepared (scan_kernels.h)
            std::vector<float> qo(d), qsc(d);
            faiss_ehi::sq8_prepare_l2(qs, of, d, qo.data());
            float qoff = faiss_ehi::sq8_prepare_ip(qs, sc, of, d, qsc.data());
            ASSERT_NEAR(k.l2_sq8(qo.data(), cs, sc, d),
                        g.l2_sq8(qo.data(), cs, sc, d), tol(m8))
                    << at;
            ASSERT_NEAR(k.ip_sq8(qsc.data(), cs, d),
                        g.ip_sq8(qsc.data(), cs, d), tol(m8i))
                    << at;
            ASSERT_NEAR(k.l2_fp16(qs, hs, d), g.l2_fp16(qs, hs, d), tol(mh))
                    << at;
            ASSERT_NEAR(k.ip_fp16(qs, hs, d), g.ip_fp16(qs, hs, d), tol(mhi))
                    << at;
            // and generic against double precision
            ASSERT_NEAR(g.l2_f32(qs, xs, d), m2, tol(m2)) << at;
            ASSERT_NEAR(g.l2_sq8(qo.data(), cs, sc, d), m8, tol(m8)) << at;
            ASSERT_NEAR(qoff + g.ip_sq8(qsc.data(), cs, d), ip8, tol(m8i))
                    << at;
            ASSERT_NEAR(g.l2_fp16(qs, hs, d), mh, tol(mh)) << at;
            checked++;
        }
    }
    EXPECT_EQ(checked, maxd * levels.size());
}

// The rows kernels give exactly the one-row kernels' values (the scanner
// uses them for float lists, distance_to_code the one-row ones), for row
// counts around the prefetch distance and odd dimensions.
TEST(ScanKernels, RowsEqualOneRowAtATime) {
    for (ScanLevel lv : runnable_levels()) {
        const ScanKernels& k = faiss_ehi::scan_kernels(lv);
        for (size_t d : {1, 7, 33, 100, 784}) {
            for (size_t n : {0, 1, 3, 5, 64, 131}) {
                std::vector<float> x = gaussian_data(n + 1, d, int(d + n));
                std::vector<float> q = gaussian_data(1, d, 99);
                // rows start one float past the buffer: unaligned
                const float* rows = x.data() + 1;
                std::vector<float> l2(n + 1, -1), ip(n + 1, -1);
                k.l2_f32_rows(q.data(), rows, n, d, l2.data());
                k.ip_f32_rows(q.data(), rows, n, d, ip.data());
                for (size_t j = 0; j < n; j++) {
                    ASSERT_EQ(l2[j], k.l2_f32(q.data(), rows + j * d, d))
                            << faiss_ehi::scan_level_name(lv) << " d " << d;
                    ASSERT_EQ(ip[j], k.ip_f32(q.data(), rows + j * d, d))
                            << faiss_ehi::scan_level_name(lv) << " d " << d;
                }
                EXPECT_EQ(l2[n], -1); // nothing written past n
                EXPECT_EQ(ip[n], -1);
            }
        }
    }
}

// The same for the compressed codes' rows kernels (SQ8 bytes starting one
// byte past their buffer, fp16 halves two: unaligned for the vector loads;
// Faiss's lists keep 2-byte codes at even addresses).
TEST(ScanKernels, CodeRowsEqualOneCodeAtATime) {
    std::mt19937 rng(5);
    for (ScanLevel lv : runnable_levels()) {
        const ScanKernels& k = faiss_ehi::scan_kernels(lv);
        for (size_t d : {1, 7, 33, 100, 784}) {
            for (size_t n : {0, 1, 3, 5, 64, 131}) {
                std::vector<uint8_t> buf(1 + n * d * 2 + 1);
                for (auto& b : buf) {
                    b = uint8_t(rng());
                }
                const uint8_t* c8 = buf.data() + 1;
                // halves with a small exponent: finite, no NaN
                std::vector<uint8_t> hbuf(2 + n * d * 2);
                for (size_t i = 0; i < n * d; i++) {
                    uint16_t h = faiss::encode_fp16(float(rng() % 2001) / 1000 - 1);
                    std::memcpy(hbuf.data() + 2 + 2 * i, &h, 2);
                }
                const uint8_t* c16 = hbuf.data() + 2;
                std::vector<float> q = gaussian_data(1, d, 7);
                std::vector<float> sc = gaussian_data(1, d, 8);
                std::vector<float> o[4];
                for (auto& v : o) {
                    v.assign(n + 1, -1);
                }
                k.l2_sq8_rows(q.data(), c8, sc.data(), n, d, o[0].data());
                k.ip_sq8_rows(q.data(), c8, nullptr, n, d, o[1].data());
                k.l2_fp16_rows(q.data(), c16, nullptr, n, d, o[2].data());
                k.ip_fp16_rows(q.data(), c16, nullptr, n, d, o[3].data());
                for (size_t j = 0; j < n; j++) {
                    // one code at a time, copied to aligned storage
                    std::vector<uint16_t> h(d);
                    std::memcpy(h.data(), c16 + 2 * j * d, 2 * d);
                    const std::string at = std::string(
                            faiss_ehi::scan_level_name(lv)) + " d " +
                            std::to_string(d) + " row " + std::to_string(j);
                    ASSERT_EQ(o[0][j], k.l2_sq8(q.data(), c8 + j * d,
                                                sc.data(), d)) << at;
                    ASSERT_EQ(o[1][j], k.ip_sq8(q.data(), c8 + j * d, d))
                            << at;
                    ASSERT_EQ(o[2][j], k.l2_fp16(q.data(), h.data(), d)) << at;
                    ASSERT_EQ(o[3][j], k.ip_fp16(q.data(), h.data(), d)) << at;
                }
                for (auto& v : o) {
                    EXPECT_EQ(v[n], -1); // nothing written past n
                }
            }
        }
    }
}

TEST(ScanKernels, LevelNamesParseAndUnknownOnesThrow) {
    for (ScanLevel l :
         {ScanLevel::GENERIC, ScanLevel::AVX2, ScanLevel::AVX512}) {
        EXPECT_EQ(faiss_ehi::parse_scan_level(faiss_ehi::scan_level_name(l)),
                  l);
    }
    EXPECT_THROW(faiss_ehi::parse_scan_level("avx3"), faiss::FaissException);
    EXPECT_THROW(faiss_ehi::parse_scan_level(""), faiss::FaissException);
    EXPECT_THROW(faiss_ehi::parse_scan_level(nullptr), faiss::FaissException);
    // without FAISS_EHI_SCAN_LEVEL, searches use the best level
    const char* env = std::getenv("FAISS_EHI_SCAN_LEVEL");
    if (!env || !*env) {
        EXPECT_EQ(faiss_ehi::scan_level_in_use(),
                  faiss_ehi::best_scan_level());
        EXPECT_EQ(faiss_ehi::scan_kernels().level,
                  faiss_ehi::best_scan_level());
    }
}

TEST(ScanKernels, LevelAboveCpuThrows) {
    if (faiss_ehi::best_scan_level() == ScanLevel::AVX512) {
        GTEST_SKIP() << "this CPU runs every level";
    }
    EXPECT_THROW(faiss_ehi::scan_kernels(ScanLevel::AVX512),
                 faiss::FaissException);
}

/// Distances of `scanner` and `ref` to every code of every list agree.
void expect_same_distances(const faiss::IndexIVF& index,
                           faiss::InvertedListScanner& scanner,
                           faiss::InvertedListScanner& ref,
                           const std::vector<float>& xq,
                           const std::string& what) {
    std::vector<float> cd(index.nlist);
    std::vector<idx_t> cl(index.nlist);
    size_t nq = xq.size() / index.d, compared = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        const float* x = xq.data() + qi * index.d;
        index.quantizer->search(1, x, index.nlist, cd.data(), cl.data());
        scanner.set_query(x);
        ref.set_query(x);
        for (size_t l = 0; l < index.nlist; l++) {
            if (cl[l] < 0) {
                continue;
            }
            scanner.set_list(cl[l], cd[l]);
            ref.set_list(cl[l], cd[l]);
            faiss::InvertedLists::ScopedCodes codes(index.invlists, cl[l]);
            size_t ls = index.invlists->list_size(cl[l]);
            for (size_t j = 0; j < ls; j++) {
                const uint8_t* c = codes.get() + j * index.code_size;
                float a = scanner.distance_to_code(c);
                float b = ref.distance_to_code(c);
                ASSERT_NEAR(a, b, 1e-4f * std::max(1.0f, std::fabs(b)))
                        << what << " query " << qi << " list " << cl[l];
                compared++;
            }
        }
    }
    EXPECT_EQ(compared, nq * index.ntotal) << what;
}

struct SQCase {
    faiss::ScalarQuantizer::QuantizerType qtype;
    bool by_residual;
    faiss::MetricType metric;
    int d;
};

class ScanSQ : public ::testing::TestWithParam<SQCase> {};

TEST_P(ScanSQ, EqualsFaissScanner) {
    SQCase p = GetParam();
    auto xb = clustered_data(3000, p.d, 20, 5, 1);
    auto xq = clustered_data(20, p.d, 20, 5, 2);
    faiss::IndexFlat quantizer(p.d, p.metric);
    faiss::IndexIVFScalarQuantizer ivf(&quantizer, p.d, 16, p.qtype, p.metric,
                                       p.by_residual);
    ivf.train(3000, xb.data());
    ivf.add(3000, xb.data());
    ivf.nprobe = 4;
    std::string what = "qtype " + std::to_string(int(p.qtype)) + " d " +
            std::to_string(p.d) + (p.by_residual ? " residual" : "") +
            (p.metric == faiss::METRIC_L2 ? " L2" : " IP");

    ASSERT_TRUE(SIMDListScanner::supports(ivf)) << what;
    std::unique_ptr<faiss::InvertedListScanner> ours(
            SIMDListScanner::create(ivf));
    std::unique_ptr<faiss::InvertedListScanner> ref(
            ivf.get_InvertedListScanner(false, nullptr));
    expect_same_distances(ivf, *ours, *ref, xq, what);

    // The index class: search and range search equal Faiss's.
    faiss_ehi::IndexEHITreeSQ ehi(ivf);
    ehi.own_fields = false;
    ehi.own_invlists = false;
    Result a = search(ehi, xq, 10);
    Result b = search(ivf, xq, 10);
    expect_same_results(a, b, what + " search");

    float radius = b.D[5];
    faiss::RangeSearchResult ra(20), rb(20);
    ehi.range_search(20, xq.data(), radius, &ra);
    ivf.range_search(20, xq.data(), radius, &rb);
    EXPECT_NEAR(double(ra.lims[20]), double(rb.lims[20]),
                1 + 0.01 * rb.lims[20])
            << what << " range";
}

INSTANTIATE_TEST_SUITE_P(
        Codecs, ScanSQ,
        ::testing::Values(SQCase{faiss::ScalarQuantizer::QT_8bit, false,
                                 faiss::METRIC_L2, 33},
                          SQCase{faiss::ScalarQuantizer::QT_8bit, true,
                                 faiss::METRIC_L2, 64},
                          SQCase{faiss::ScalarQuantizer::QT_8bit, true,
                                 faiss::METRIC_INNER_PRODUCT, 33},
                          SQCase{faiss::ScalarQuantizer::QT_8bit, false,
                                 faiss::METRIC_INNER_PRODUCT, 17},
                          SQCase{faiss::ScalarQuantizer::QT_8bit_uniform, false,
                                 faiss::METRIC_L2, 40},
                          SQCase{faiss::ScalarQuantizer::QT_8bit_uniform, true,
                                 faiss::METRIC_INNER_PRODUCT, 9},
                          SQCase{faiss::ScalarQuantizer::QT_fp16, false,
                                 faiss::METRIC_L2, 31},
                          SQCase{faiss::ScalarQuantizer::QT_fp16, true,
                                 faiss::METRIC_L2, 64},
                          SQCase{faiss::ScalarQuantizer::QT_fp16, false,
                                 faiss::METRIC_INNER_PRODUCT, 100}));

TEST(ScanSQ, UnsupportedCodecsFallBack) {
    const int d = 16;
    faiss::IndexFlat quantizer(d, faiss::METRIC_L2);
    faiss::IndexIVFScalarQuantizer ivf(&quantizer, d, 4,
                                       faiss::ScalarQuantizer::QT_4bit);
    EXPECT_FALSE(SIMDListScanner::supports(ivf));
    EXPECT_EQ(SIMDListScanner::create(ivf), nullptr);
}

TEST(ScanSQ, FactoryKeyGivesEHISQ) {
    for (const char* key : {"EHI8x1,SQ8", "EHI8x1,SQfp16"}) {
        std::unique_ptr<faiss::Index> idx(faiss_ehi::index_factory(16, key));
        EXPECT_NE(dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(idx.get()), nullptr)
                << key;
    }
}

/// Flat lists: the EHI index with and without its kernels.
void expect_flat_paths_equal(faiss_ehi::IndexEHITree& index,
                             const std::vector<float>& xq,
                             const std::string& what) {
    idx_t nq = xq.size() / index.d;
    auto both = [&](auto&& f) {
        index.simd_scan = true;
        auto a = f();
        index.simd_scan = false;
        auto b = f();
        index.simd_scan = true;
        return std::make_pair(a, b);
    };
    auto s = both([&] { return search(index, xq, 10); });
    expect_same_results(s.first, s.second, what + " search");

    faiss::IDSelectorRange sel(0, 500);
    faiss::SearchParametersIVF params;
    params.sel = &sel;
    params.nprobe = index.nprobe;
    auto f = both([&] { return search(index, xq, 10, &params); });
    expect_same_results(f.first, f.second, what + " selector");
    for (idx_t id : f.first.I) {
        EXPECT_TRUE(id < 500) << what << " selector returned " << id;
    }

    // store_pairs: search_preassigned with pairs as labels
    std::vector<idx_t> assign(nq * index.nprobe);
    std::vector<float> cdis(nq * index.nprobe);
    index.quantizer->search(nq, xq.data(), index.nprobe, cdis.data(),
                            assign.data());
    auto sp = both([&] {
        Result r(nq, 10);
        index.search_preassigned(nq, xq.data(), 10, assign.data(), cdis.data(),
                                 r.D.data(), r.I.data(), true);
        return r;
    });
    expect_same_results(sp.first, sp.second, what + " store_pairs");

    auto rs = both([&] {
        faiss::RangeSearchResult r(nq);
        index.range_search(nq, xq.data(), s.second.D[3], &r);
        std::vector<std::set<idx_t>> out(nq);
        for (idx_t q = 0; q < nq; q++) {
            out[q].insert(r.labels + r.lims[q], r.labels + r.lims[q + 1]);
        }
        return out;
    });
    size_t diff = 0, total = 0;
    for (idx_t q = 0; q < nq; q++) {
        total += rs.second[q].size();
        diff += rs.first[q] != rs.second[q];
    }
    EXPECT_GT(total, 0u) << what;
    EXPECT_LE(diff, size_t(1)) << what << " range results differ";
}

TEST(ScanFlat, EqualsFaissScanner) {
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        for (int d : {7, 64, 100}) {
            auto xb = clustered_data(4000, d, 30, 11, 1);
            auto xq = clustered_data(30, d, 30, 11, 2);
            auto index = kmeans_tree_index(d, 16, 1, metric, xb);
            index->add(4000, xb.data());
            index->nprobe = 4;
            std::string what =
                    std::string(metric == faiss::METRIC_L2 ? "L2" : "IP") +
                    " d " + std::to_string(d);
            std::unique_ptr<faiss::InvertedListScanner> ours(
                    SIMDListScanner::create(*index));
            ASSERT_TRUE(ours) << what;
            std::unique_ptr<faiss::InvertedListScanner> ref(
                    index->faiss::IndexIVFFlat::get_InvertedListScanner(
                            false, nullptr));
            expect_same_distances(*index, *ours, *ref, xq, what);
            expect_flat_paths_equal(*index, xq, what);
        }
    }
}

TEST(ScanFlat, DeduplicatesWithD2L) {
    const int d = 24;
    auto xb = clustered_data(3000, d, 20, 21, 1);
    auto xq = clustered_data(25, d, 20, 21, 2);
    auto index = kmeans_tree_index(d, 8, 1, faiss::METRIC_L2, xb);
    index->d2l = 2;
    index->add(3000, xb.data());
    index->nprobe = 4;
    ASSERT_TRUE(index->lists_have_duplicates);
    Result r = search(*index, xq, 20);
    for (idx_t q = 0; q < r.nq; q++) {
        std::set<idx_t> seen;
        for (idx_t j = 0; j < r.k; j++) {
            idx_t id = r.I[q * r.k + j];
            EXPECT_TRUE(id < 0 || seen.insert(id).second)
                    << "query " << q << " repeats id " << id;
        }
    }
    expect_flat_paths_equal(*index, xq, "d2l 2");
}

} // namespace

namespace {

TEST(ScanBlocked, EqualsQueryMajor) {
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        const int d = 20;
        auto xb = clustered_data(5000, d, 25, 31, 1);
        auto xq = clustered_data(600, d, 25, 31, 2); // several blocks
        auto index = kmeans_tree_index(d, 16, 1, metric, xb);
        index->add(5000, xb.data());
        index->nprobe = 5;
        index->block_queries = false;
        faiss::indexIVF_stats.reset();
        Result a = search(*index, xq, 10);
        size_t ndis_a = faiss::indexIVF_stats.ndis;
        index->block_queries = true;
        faiss::indexIVF_stats.reset();
        Result b = search(*index, xq, 10);
        size_t ndis_b = faiss::indexIVF_stats.ndis;
        std::string what = metric == faiss::METRIC_L2 ? "L2" : "IP";
        expect_same_results(b, a, what + " blocked");
        EXPECT_EQ(ndis_a, ndis_b) << what;
        // nprobe above the number of lists: Faiss clamps it, so must this
        index->nprobe = 40;
        index->block_queries = false;
        Result e = search(*index, xq, 10);
        index->block_queries = true;
        expect_same_results(search(*index, xq, 10), e, what + " nprobe 40");
        index->nprobe = 5;
        // one query: the plain path
        std::vector<float> one(xq.begin(), xq.begin() + d);
        Result c = search(*index, one, 10);
        for (int j = 0; j < 10; j++) {
            EXPECT_EQ(c.I[j], a.I[j]) << what;
        }
    }
}

// SQ8 and fp16 lists block too, with the query-by-query results (the
// residual codecs included: each query's coarse distance per list).
TEST(ScanBlocked, ScalarQuantizedEqualsQueryMajor) {
    KMeansTrainerScope kmeans;
    const int d = 20;
    auto xb = clustered_data(4000, d, 25, 31, 1);
    auto xq = clustered_data(300, d, 25, 31, 2);
    for (const char* key : {"EHI16x1,SQ8", "EHI16x1,SQfp16"}) {
        for (faiss::MetricType metric :
             {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            std::unique_ptr<faiss::Index> idx(
                    faiss_ehi::index_factory(d, key, metric));
            idx->train(4000, xb.data());
            idx->add(4000, xb.data());
            auto* sq = dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(idx.get());
            ASSERT_NE(sq, nullptr);
            sq->nprobe = 4;
            sq->block_queries = false;
            faiss::indexIVF_stats.reset();
            Result a = search(*sq, xq, 10);
            const size_t ndis_a = faiss::indexIVF_stats.ndis;
            sq->block_queries = true;
            faiss::indexIVF_stats.reset();
            Result b = search(*sq, xq, 10);
            std::string what = std::string(key) +
                    (metric == faiss::METRIC_L2 ? " L2" : " IP");
            expect_same_results(b, a, what);
            EXPECT_EQ(faiss::indexIVF_stats.ndis, ndis_a) << what;
            // below block_min_batch: the plain path, the same results
            sq->block_min_batch = 1000;
            expect_same_results(search(*sq, xq, 10), a, what + " small");
        }
    }
}

// The list-major scan itself (search_preassigned_blocked, called
// directly, so it is known to run) against Faiss's query-major
// search_preassigned with the same scanner, on SQ8 and fp16 lists whose
// dimensions reach every part of the kernels (the 64-wide loop, whole
// 16-lane groups, a tail), with and without residuals: equal bit for bit.
TEST(ScanBlocked, CompressedListsEqualQueryMajorBitForBit) {
    KMeansTrainerScope kmeans;
    const size_t nb = 2000, nq = 300, k = 10, nprobe = 5;
    for (int d : {20, 129}) {
        auto xb = clustered_data(nb, d, 25, 31, 1);
        auto xq = clustered_data(nq, d, 25, 31, 2);
        for (const char* key : {"EHI16x1,SQ8", "EHI16x1,SQfp16"}) {
            for (faiss::MetricType metric :
                 {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
                for (bool residual : {false, true}) {
                    std::unique_ptr<faiss::Index> idx(
                            faiss_ehi::index_factory(d, key, metric));
                    auto* sq = dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(
                            idx.get());
                    ASSERT_NE(sq, nullptr);
                    sq->by_residual = residual;
                    sq->train(nb, xb.data());
                    sq->add(nb, xb.data());
                    std::vector<idx_t> assign(nq * nprobe);
                    std::vector<float> cdis(nq * nprobe);
                    sq->quantizer->search(nq, xq.data(), nprobe, cdis.data(),
                                          assign.data());
                    sq->nprobe = nprobe;
                    sq->block_queries = false; // Faiss's own loop for a
                    Result a(nq, k), b(nq, k);
                    sq->search_preassigned(nq, xq.data(), k, assign.data(),
                                           cdis.data(), a.D.data(),
                                           a.I.data(), false);
                    faiss_ehi::search_preassigned_blocked(
                            *sq, nq, xq.data(), k, nprobe, assign.data(),
                            cdis.data(), b.D.data(), b.I.data(), nullptr,
                            &sq->code_norms()); // as the index passes them
                    std::string what = std::string(key) + " d=" +
                            std::to_string(d) +
                            (metric == faiss::METRIC_L2 ? " L2" : " IP") +
                            (residual ? " residual" : "");
                    EXPECT_TRUE(bit_identical(a, b)) << what;
                }
            }
        }
    }
}

// Small integer coordinates: many distances tie, between vectors of
// different lists. List-major and query-major scans meet the lists in
// different orders and must still return the same ids (ties go by label).
TEST(ScanBlocked, TiesGiveTheSameResults) {
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        const int d = 6;
        std::mt19937 rng(7);
        std::uniform_int_distribution<int> coord(0, 3);
        std::vector<float> xb(3000 * d), xq(300 * d);
        for (float& v : xb) {
            v = float(coord(rng));
        }
        for (float& v : xq) {
            v = float(coord(rng));
        }
        auto index = kmeans_tree_index(d, 8, 1, metric, xb);
        index->add(3000, xb.data());
        index->nprobe = 4;
        index->block_queries = false;
        Result a = search(*index, xq, 7);
        index->block_queries = true;
        index->block_min_batch = 2;
        faiss::indexIVF_stats.reset();
        Result b = search(*index, xq, 7);
        std::string what = metric == faiss::METRIC_L2 ? "L2" : "IP";
        expect_same_results(b, a, what + " ties");
        // Equal distances come back in label order (the heap's order).
        size_t ties = 0;
        for (size_t i = 0; i + 1 < b.D.size(); i++) {
            if (i % 7 != 6 && b.D[i] == b.D[i + 1]) {
                ties++;
                EXPECT_EQ(b.I[i] < b.I[i + 1], metric == faiss::METRIC_L2)
                        << what << " rank " << i;
            }
        }
        EXPECT_GT(ties, 300u) << what << ": the data should tie";
    }
}

} // namespace
