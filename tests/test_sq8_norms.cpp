/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * SQ8 code norms (SQ8CodeNorms) and the scans that use them: the norm
 * form of the L2 distance equals the direct one to float rounding, the
 * index keeps its norms right through the calls that change its lists
 * (and falls back to the direct kernel where it cannot know), and a code
 * scores the same whether it is scanned in a block, alone, or gathered
 * past a selector.
 */
#include "test_helpers.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/invlists/InvertedLists.h>

#include <faiss_ehi/IndexEHITreeSQ.h>
#include <faiss_ehi/SIMDListScanner.h>
#include <faiss_ehi/index_factory.h>
#include <faiss_ehi/index_io.h>

using namespace ehi_test;
using faiss_ehi::IndexEHITreeSQ;
using faiss_ehi::SIMDListScanner;

namespace {

constexpr size_t kNb = 2000, kNq = 30;
constexpr int kD = 33;

using QT = faiss::ScalarQuantizer::QuantizerType;

/// `key` ("EHI16x1,SQ8" or ",SQfp16"), trained and filled with xb; `qtype`
/// replaces the key's 8-bit type (Faiss's factory has no key for the
/// uniform one).
std::unique_ptr<IndexEHITreeSQ> make_index(
        const char* key, faiss::MetricType metric, bool residual,
        const std::vector<float>& xb, QT qtype = QT::QT_8bit, int d = kD) {
    std::unique_ptr<faiss::Index> idx(
            faiss_ehi::index_factory(d, key, metric));
    auto* sq = dynamic_cast<IndexEHITreeSQ*>(idx.get());
    EXPECT_NE(sq, nullptr) << key;
    if (!sq) {
        return nullptr;
    }
    idx.release();
    std::unique_ptr<IndexEHITreeSQ> out(sq);
    out->by_residual = residual;
    if (out->sq.qtype == QT::QT_8bit) {
        out->sq.qtype = qtype;
    }
    out->train(kNb, xb.data());
    out->add(kNb, xb.data());
    out->nprobe = 6;
    return out;
}

/// Whether every non-empty list of `index` has norms its scanners use.
bool norms_in_use(const IndexEHITreeSQ& index) {
    if (!index.code_norms().valid_for(index)) {
        return false;
    }
    for (size_t l = 0; l < index.nlist; l++) {
        size_t ls = index.invlists->list_size(l);
        if (ls > 0 && !index.code_norms().list(l, ls)) {
            return false;
        }
    }
    return true;
}

/// The index's own scan against Faiss's scanner on the same lists.
void expect_like_faiss(IndexEHITreeSQ& index, const std::vector<float>& xq,
                       const std::string& what) {
    index.simd_scan = false;
    Result ref = search(index, xq, 10);
    index.simd_scan = true;
    expect_same_results(search(index, xq, 10), ref, what);
}

} // namespace

TEST(SQ8CodeNorms, HeldUnderL2ForSQ8Only) {
    KMeansTrainerScope kmeans;
    auto xb = clustered_data(kNb, kD, 20, 5, 1);
    for (QT qt : {QT::QT_8bit, QT::QT_8bit_uniform}) {
        for (bool residual : {false, true}) {
            auto l2 = make_index("EHI16x1,SQ8", faiss::METRIC_L2, residual,
                                 xb, qt);
            ASSERT_TRUE(l2);
            EXPECT_TRUE(norms_in_use(*l2))
                    << "qtype " << int(qt) << " residual " << residual;
        }
        auto ip = make_index("EHI16x1,SQ8", faiss::METRIC_INNER_PRODUCT, true,
                             xb, qt);
        ASSERT_TRUE(ip);
        EXPECT_FALSE(ip->code_norms().valid_for(*ip)) << "IP " << int(qt);
    }
    auto fp16 = make_index("EHI16x1,SQfp16", faiss::METRIC_L2, true, xb);
    ASSERT_TRUE(fp16);
    EXPECT_FALSE(fp16->code_norms().valid_for(*fp16));
}

// Every code of every list, scored with the norms and directly: equal to
// float rounding (the norm form expands the square around the centre of
// the code range; measured 3e-6 relative on Fashion-MNIST and GloVe).
TEST(SQ8CodeNorms, NormFormEqualsDirectDistances) {
    KMeansTrainerScope kmeans;
    for (int d : {1, 7, 33, 100}) {
        auto xb = clustered_data(kNb, d, 20, 5, 1);
        auto xq = clustered_data(kNq, d, 20, 5, 2);
        for (QT qt : {QT::QT_8bit, QT::QT_8bit_uniform}) {
            for (bool residual : {false, true}) {
                auto idx = make_index("EHI16x1,SQ8", faiss::METRIC_L2,
                                      residual, xb, qt, d);
                ASSERT_TRUE(idx);
                IndexEHITreeSQ& index = *idx;
                std::unique_ptr<faiss::InvertedListScanner> fast(
                        SIMDListScanner::create(index, false, nullptr, nullptr,
                                                &index.code_norms()));
                std::unique_ptr<faiss::InvertedListScanner> direct(
                        SIMDListScanner::create(index));
                std::string what = "qtype " + std::to_string(int(qt)) +
                        " d " + std::to_string(d) +
                        (residual ? " residual" : "");
                std::vector<float> cd(index.nlist);
                std::vector<idx_t> cl(index.nlist);
                size_t compared = 0;
                for (size_t q = 0; q < kNq; q++) {
                    const float* x = xq.data() + q * d;
                    index.quantizer->search(1, x, index.nlist, cd.data(),
                                            cl.data());
                    fast->set_query(x);
                    direct->set_query(x);
                    for (size_t p = 0; p < index.nlist; p++) {
                        fast->set_list(cl[p], cd[p]);
                        direct->set_list(cl[p], cd[p]);
                        faiss::InvertedLists::ScopedCodes codes(index.invlists,
                                                                cl[p]);
                        size_t ls = index.invlists->list_size(cl[p]);
                        for (size_t j = 0; j < ls; j++) {
                            const uint8_t* c = codes.get() + j * index.code_size;
                            float a = fast->distance_to_code(c);
                            float b = direct->distance_to_code(c);
                            ASSERT_NEAR(a, b,
                                        2e-5f * std::max(1.0f, std::fabs(b)))
                                    << what << " query " << q;
                            ASSERT_GE(a, 0.0f) << what;
                            compared++;
                        }
                    }
                }
                EXPECT_EQ(compared, kNq * kNb) << what;
            }
        }
    }
}

// Files do not hold the norms: reading (and cloning, a write and a read)
// recomputes them, and the copy searches bit for bit like the original.
TEST(SQ8CodeNorms, RecomputedOnReadingAndCloning) {
    KMeansTrainerScope kmeans;
    auto xb = clustered_data(kNb, kD, 20, 5, 1);
    auto xq = clustered_data(300, kD, 20, 5, 2);
    auto index = make_index("EHI16x1,SQ8", faiss::METRIC_L2, true, xb);
    ASSERT_TRUE(index);
    ASSERT_TRUE(norms_in_use(*index));
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index.get(), &w);
    faiss::VectorIOReader r;
    r.data = w.data;
    std::unique_ptr<faiss::Index> read(faiss_ehi::read_index(&r));
    std::unique_ptr<faiss::Index> cloned(faiss_ehi::clone_index(index.get()));
    for (faiss::Index* copy : {read.get(), cloned.get()}) {
        auto* sq = dynamic_cast<IndexEHITreeSQ*>(copy);
        ASSERT_NE(sq, nullptr);
        EXPECT_TRUE(norms_in_use(*sq));
        sq->nprobe = index->nprobe;
        // 300 queries: the list-major path; 30: query by query
        EXPECT_BIT_IDENTICAL(search(*sq, xq, 10), search(*index, xq, 10));
        std::vector<float> few(xq.begin(), xq.begin() + kNq * kD);
        EXPECT_BIT_IDENTICAL(search(*sq, few, 10), search(*index, few, 10));
    }
}

// Each call that changes the lists, then a search against Faiss's own
// scanner. Stale norms would be off by the difference of two codes'
// norms, far beyond rounding; where the index cannot know (a list
// replaced behind its back), it must scan directly.
TEST(SQ8CodeNorms, ChangesKeepSearchesRight) {
    KMeansTrainerScope kmeans;
    auto xb = clustered_data(kNb, kD, 20, 5, 1);
    auto xq = clustered_data(kNq, kD, 20, 5, 2);
    auto index = make_index("EHI16x1,SQ8", faiss::METRIC_L2, true, xb);
    ASSERT_TRUE(index);
    expect_like_faiss(*index, xq, "after add");

    // update_vectors with an array direct map moves each vector to the
    // end of its new list (with a hash table it removes and adds): a
    // vector that stays in its list keeps the list's length but not the
    // order of its codes
    index->set_direct_map_type(faiss::DirectMap::Array);
    std::vector<idx_t> upd;
    for (idx_t id = 0; id < idx_t(kNb); id += 10) {
        upd.push_back(id);
    }
    std::vector<float> newv(upd.size() * kD);
    for (size_t i = 0; i < upd.size(); i++) {
        for (int j = 0; j < kD; j++) {
            newv[i * kD + j] = xb[upd[i] * kD + j] + 0.05f * float(j % 3);
        }
    }
    index->update_vectors(int(upd.size()), upd.data(), newv.data());
    EXPECT_TRUE(norms_in_use(*index));
    expect_like_faiss(*index, xq, "after update_vectors");
    index->set_direct_map_type(faiss::DirectMap::NoMap);

    // adds of other vectors: lists grow
    auto more = clustered_data(500, kD, 20, 9, 3, 1.0f);
    std::vector<idx_t> more_ids(500);
    for (size_t i = 0; i < 500; i++) {
        more_ids[i] = idx_t(kNb + i);
    }
    index->add_with_ids(500, more.data(), more_ids.data());
    EXPECT_TRUE(norms_in_use(*index));
    expect_like_faiss(*index, xq, "after a second add");

    // removes: lists shrink, entries move within them
    faiss::IDSelectorRange first(0, 700);
    EXPECT_EQ(index->remove_ids(first), 700u);
    EXPECT_TRUE(norms_in_use(*index));
    expect_like_faiss(*index, xq, "after remove_ids");

    // add_sa_codes is not virtual: the lengths tell the scan the norms
    // are stale, until refresh_code_norms
    std::vector<uint8_t> codes(100 * index->sa_code_size());
    std::vector<idx_t> sa_ids(100);
    std::vector<float> sa_x(100 * kD);
    for (size_t i = 0; i < 100; i++) {
        sa_ids[i] = idx_t(5000 + i);
        for (int j = 0; j < kD; j++) {
            sa_x[i * kD + j] = xq[(i % kNq) * kD + j] + 0.05f * float(i / kNq);
        }
    }
    index->sa_encode(100, sa_x.data(), codes.data());
    index->add_sa_codes(100, codes.data(), sa_ids.data());
    EXPECT_FALSE(norms_in_use(*index));
    expect_like_faiss(*index, xq, "after add_sa_codes");
    index->refresh_code_norms();
    EXPECT_TRUE(norms_in_use(*index));
    expect_like_faiss(*index, xq, "after refresh_code_norms");

    // a codes rewrite through the lists themselves, then a refresh
    {
        size_t l = 0;
        while (index->invlists->list_size(l) < 2) {
            l++;
        }
        faiss::InvertedLists::ScopedCodes c0(index->invlists, l, 0);
        std::vector<uint8_t> code(c0.get(), c0.get() + index->code_size);
        std::reverse(code.begin(), code.end());
        index->invlists->update_entry(l, 1, index->invlists->get_single_id(l, 1),
                                      code.data());
    }
    index->refresh_code_norms();
    expect_like_faiss(*index, xq, "after update_entry and a refresh");

    // replace_invlists (not virtual) with the same lengths but each list
    // in reverse order: norms kept by position would be wrong, so the
    // scan must notice the new lists object and score directly
    auto* rev = new faiss::ArrayInvertedLists(index->nlist, index->code_size);
    for (size_t l = 0; l < index->nlist; l++) {
        size_t ls = index->invlists->list_size(l);
        faiss::InvertedLists::ScopedCodes c(index->invlists, l);
        faiss::InvertedLists::ScopedIds ids(index->invlists, l);
        for (size_t j = ls; j-- > 0;) {
            rev->add_entry(l, ids[j], c.get() + j * index->code_size);
        }
    }
    index->replace_invlists(rev, true);
    EXPECT_FALSE(index->code_norms().valid_for(*index));
    expect_like_faiss(*index, xq, "after replace_invlists");
    index->refresh_code_norms();
    EXPECT_TRUE(norms_in_use(*index));

    // merge_from another index on the same tree and codec
    std::unique_ptr<faiss::Index> other_raw(faiss_ehi::clone_index(index.get()));
    auto* other = dynamic_cast<IndexEHITreeSQ*>(other_raw.get());
    ASSERT_NE(other, nullptr);
    other->reset();
    std::vector<idx_t> other_ids(500);
    for (size_t i = 0; i < 500; i++) {
        other_ids[i] = idx_t(9000 + i);
    }
    other->add_with_ids(500, more.data(), other_ids.data());
    index->merge_from(*other, 0);
    EXPECT_TRUE(norms_in_use(*index));
    expect_like_faiss(*index, xq, "after merge_from");

    // reset, then a fresh add
    index->reset();
    EXPECT_EQ(search(*index, xq, 10).I[0], -1);
    index->add(kNb, xb.data());
    EXPECT_TRUE(norms_in_use(*index));
    expect_like_faiss(*index, xq, "after reset and add");
}

// A selector makes the scanner gather the codes it keeps and score them
// four per kernel call; a code's distance must not depend on that: with a
// selector that keeps everything the results equal the plain search bit
// for bit, and with one that keeps half, each returned distance is that
// id's distance in the plain search.
TEST(SQ8CodeNorms, SelectorScoresCodesAsThePlainScan) {
    KMeansTrainerScope kmeans;
    auto xb = clustered_data(kNb, kD, 20, 5, 1);
    auto xq = clustered_data(kNq, kD, 20, 5, 2);
    for (const char* key : {"EHI16x1,SQ8", "EHI16x1,SQfp16"}) {
        for (faiss::MetricType metric :
             {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            auto index = make_index(key, metric, true, xb);
            ASSERT_TRUE(index);
            index->block_queries = false;
            std::string what = std::string(key) +
                    (metric == faiss::METRIC_L2 ? " L2" : " IP");
            const idx_t kAll = idx_t(kNb);
            Result plain = search(*index, xq, kAll);

            faiss::IDSelectorRange all(0, kAll);
            faiss::SearchParametersIVF params;
            params.nprobe = index->nprobe;
            params.sel = &all;
            EXPECT_BIT_IDENTICAL(search(*index, xq, 10, &params),
                                 search(*index, xq, 10));

            std::vector<idx_t> even;
            for (idx_t i = 0; i < kAll; i += 2) {
                even.push_back(i);
            }
            faiss::IDSelectorBatch half(even.size(), even.data());
            params.sel = &half;
            Result r = search(*index, xq, 10, &params);
            size_t checked = 0;
            for (size_t q = 0; q < kNq; q++) {
                for (size_t t = 0; t < 10; t++) {
                    idx_t id = r.I[q * 10 + t];
                    if (id < 0) {
                        continue;
                    }
                    ASSERT_EQ(id % 2, 0) << what;
                    const idx_t* row = plain.I.data() + q * kAll;
                    const idx_t* at = std::find(row, row + kAll, id);
                    ASSERT_NE(at, row + kAll) << what << " id " << id;
                    EXPECT_EQ(r.D[q * 10 + t], plain.D[q * kAll + (at - row)])
                            << what << " id " << id;
                    checked++;
                }
            }
            EXPECT_GT(checked, kNq * 5) << what;
        }
    }
}
