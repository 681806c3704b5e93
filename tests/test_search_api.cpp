/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The Faiss search entry points agree: search, quantizer->search +
 * search_preassigned, ivflib::search_with_parameters, SearchParametersIVF,
 * IDSelector filtering.
 */
#include "test_helpers.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/IDSelector.h>

using namespace ehi_test;
using faiss_ehi::IndexEHITree;

namespace {

struct Fixture {
    static const int d = 16, B = 4, H = 2;
    std::vector<float> xb, xq;
    std::vector<idx_t> ids;
    std::unique_ptr<IndexEHITree> index;

    Fixture(int d2l, faiss::MetricType metric = faiss::METRIC_L2,
            idx_t nb = 3000, idx_t nq = 40) {
        xb = clustered_data(nb, d, 30, 11, 1);
        xq = clustered_data(nq, d, 30, 11, 2);
        index = kmeans_tree_index(d, B, H, metric, xb);
        index->d2l = d2l;
        ids = make_ids(nb, 100, 7);
        index->add_with_ids(nb, xb.data(), ids.data());
    }
};

Result preassigned(const IndexEHITree& index, const std::vector<float>& xq,
                   idx_t k, idx_t nprobe,
                   const faiss::SearchParametersIVF* params = nullptr) {
    idx_t nq = xq.size() / index.d;
    std::vector<idx_t> Iq(nq * nprobe);
    std::vector<float> Dq(nq * nprobe);
    index.quantizer->search(nq, xq.data(), nprobe, Dq.data(), Iq.data());
    Result r(nq, k);
    index.search_preassigned(nq, xq.data(), k, Iq.data(), Dq.data(), r.D.data(),
                             r.I.data(), false, params);
    return r;
}

} // namespace

class SearchApi : public ::testing::TestWithParam<int> {};

TEST_P(SearchApi, SearchEqualsQuantizerPlusPreassigned) {
    Fixture f(GetParam());
    for (idx_t nprobe : {1, 4, 16}) {
        f.index->nprobe = nprobe;
        Result a = search(*f.index, f.xq, 10);
        Result b = preassigned(*f.index, f.xq, 10, nprobe);
        EXPECT_BIT_IDENTICAL(a, b);
    }
}

TEST_P(SearchApi, SearchWithParametersEqualsSearch) {
    Fixture f(GetParam());
    for (idx_t nprobe : {1, 5, 16}) {
        f.index->nprobe = nprobe;
        Result a = search(*f.index, f.xq, 10);
        faiss::SearchParametersIVF params;
        params.nprobe = nprobe;
        idx_t nq = f.xq.size() / f.index->d;
        Result b(nq, 10);
        f.index->nprobe = 1; // must not matter
        faiss::ivflib::search_with_parameters(f.index.get(), nq, f.xq.data(),
                                              10, b.D.data(), b.I.data(),
                                              &params);
        EXPECT_BIT_IDENTICAL(a, b);
        // SearchParametersIVF::nprobe passed to search() equals setting it
        Result c = search(*f.index, f.xq, 10, &params);
        EXPECT_BIT_IDENTICAL(a, c);
    }
}

TEST_P(SearchApi, ParamsDoNotChangeIndexState) {
    Fixture f(GetParam());
    f.index->nprobe = 2;
    Result a = search(*f.index, f.xq, 10);
    faiss::SearchParametersIVF params;
    params.nprobe = 9;
    search(*f.index, f.xq, 10, &params);
    EXPECT_EQ(f.index->nprobe, 2u);
    EXPECT_BIT_IDENTICAL(a, search(*f.index, f.xq, 10));
}

TEST_P(SearchApi, QuantizerParamsSelectStrategy) {
    Fixture f(GetParam());
    const idx_t nprobe = 3;
    faiss_ehi::SearchParametersEHITree qp;
    qp.strategy = int(faiss_ehi::BeamStrategy::LEVEL_BEAM);
    faiss::SearchParametersIVF params;
    params.nprobe = nprobe;
    params.quantizer_params = &qp;
    Result a = search(*f.index, f.xq, 10, &params);
    // the same as switching the tree's own strategy
    f.index->tree_quantizer()->tree.strategy =
            faiss_ehi::BeamStrategy::LEVEL_BEAM;
    f.index->nprobe = nprobe;
    Result b = search(*f.index, f.xq, 10);
    EXPECT_BIT_IDENTICAL(a, b);
    // and the quantizer alone honours it
    idx_t nq = f.xq.size() / f.index->d;
    std::vector<idx_t> I1(nq * nprobe), I2(nq * nprobe);
    std::vector<float> D1(nq * nprobe), D2(nq * nprobe);
    f.index->tree_quantizer()->tree.strategy =
            faiss_ehi::BeamStrategy::BEST_FIRST;
    f.index->quantizer->search(nq, f.xq.data(), nprobe, D1.data(), I1.data(),
                               &qp);
    std::vector<float> probs(nq * nprobe);
    f.index->tree_quantizer()->tree.route(
            nq, f.xq.data(), nprobe, I2.data(), probs.data(),
            int(faiss_ehi::BeamStrategy::LEVEL_BEAM));
    EXPECT_EQ(I1, I2);
}

struct SelCase {
    int d2l;
    bool range; // IDSelectorRange, else IDSelectorBatch
};

class IDSelectorSearch : public ::testing::TestWithParam<SelCase> {};

TEST_P(IDSelectorSearch, EqualsSubsetIndex) {
    SelCase c = GetParam();
    Fixture f(c.d2l);
    idx_t nb = f.xb.size() / f.d;
    // subset: ids in [ids[1000], ids[2200]) or a random ~third of the ids
    std::vector<idx_t> subset_pos;
    std::unique_ptr<faiss::IDSelector> sel;
    if (c.range) {
        for (idx_t i = 1000; i < 2200; i++) {
            subset_pos.push_back(i);
        }
        sel.reset(new faiss::IDSelectorRange(f.ids[1000], f.ids[2200]));
    } else {
        Rng rng(5);
        std::vector<idx_t> sel_ids;
        for (idx_t i = 0; i < nb; i++) {
            if (rng.below(3) == 0) {
                subset_pos.push_back(i);
                sel_ids.push_back(f.ids[i]);
            }
        }
        sel.reset(new faiss::IDSelectorBatch(sel_ids.size(), sel_ids.data()));
    }
    std::vector<float> xs;
    std::vector<idx_t> ids_s;
    for (idx_t i : subset_pos) {
        xs.insert(xs.end(), f.xb.begin() + i * f.d,
                  f.xb.begin() + (i + 1) * f.d);
        ids_s.push_back(f.ids[i]);
    }
    auto sub = same_tree_index(*f.index);
    ASSERT_TRUE(sub->is_trained);
    sub->add_with_ids(ids_s.size(), xs.data(), ids_s.data());
    for (idx_t nprobe : {1, 3, 16}) {
        faiss::SearchParametersIVF params;
        params.nprobe = nprobe;
        params.sel = sel.get();
        Result a = search(*f.index, f.xq, 10, &params);
        sub->nprobe = nprobe;
        Result b = search(*sub, f.xq, 10);
        EXPECT_BIT_IDENTICAL(a, b);
        for (idx_t l : a.I) {
            if (l >= 0) {
                EXPECT_TRUE(sel->is_member(l)) << "id " << l;
            }
        }
        // range search with a selector too
        faiss::RangeSearchResult ra(f.xq.size() / f.d), rb(f.xq.size() / f.d);
        f.index->range_search(f.xq.size() / f.d, f.xq.data(), 2.0f, &ra,
                              &params);
        sub->range_search(f.xq.size() / f.d, f.xq.data(), 2.0f, &rb);
        for (size_t q = 0; q < f.xq.size() / f.d; q++) {
            std::set<idx_t> sa(ra.labels + ra.lims[q],
                               ra.labels + ra.lims[q + 1]);
            std::set<idx_t> sb(rb.labels + rb.lims[q],
                               rb.labels + rb.lims[q + 1]);
            EXPECT_EQ(sa, sb) << "range query " << q;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, IDSelectorSearch,
                         ::testing::Values(SelCase{1, true}, SelCase{1, false},
                                           SelCase{2, true}, SelCase{2, false}),
                         [](const ::testing::TestParamInfo<SelCase>& info) {
                             return std::string(info.param.range ? "Range"
                                                                 : "Batch") +
                                     "_d2l" + std::to_string(info.param.d2l);
                         });

INSTANTIATE_TEST_SUITE_P(D2l, SearchApi, ::testing::Values(1, 3));

TEST(SearchApi, PreassignedWithParamsSelector) {
    Fixture f(1);
    std::vector<idx_t> sel_ids(f.ids.begin(), f.ids.begin() + 500);
    faiss::IDSelectorBatch sel(sel_ids.size(), sel_ids.data());
    faiss::SearchParametersIVF params;
    params.nprobe = 4;
    params.sel = &sel;
    Result a = search(*f.index, f.xq, 10, &params);
    Result b = preassigned(*f.index, f.xq, 10, 4, &params);
    EXPECT_BIT_IDENTICAL(a, b);
}

TEST(SearchApi, SearchAndReconstruct) {
    Fixture f(1);
    f.index->nprobe = 4;
    idx_t nq = 10, k = 5;
    std::vector<float> xq(f.xq.begin(), f.xq.begin() + nq * f.d);
    std::vector<float> D(nq * k), R(nq * k * f.d);
    std::vector<idx_t> I(nq * k);
    f.index->search_and_reconstruct(nq, xq.data(), k, D.data(), I.data(),
                                    R.data());
    Result plain = search(*f.index, xq, k);
    EXPECT_EQ(I, plain.I);
    for (idx_t i = 0; i < nq * k; i++) {
        ASSERT_GE(I[i], 0);
        idx_t pos = (I[i] - 100) / 7;
        EXPECT_EQ(0,
                  std::memcmp(R.data() + i * f.d, f.xb.data() + pos * f.d,
                              f.d * sizeof(float)));
    }
}

TEST(SearchApi, SearchAndReconstructDeduplicates) {
    // with d2l > 1, search_and_reconstruct must return the same ids as
    // search: each id at most once
    Fixture f(3);
    f.index->nprobe = 6;
    idx_t nq = 10, k = 20;
    std::vector<float> xq(f.xq.begin(), f.xq.begin() + nq * f.d);
    std::vector<float> D(nq * k), R(nq * k * f.d);
    std::vector<idx_t> I(nq * k);
    f.index->search_and_reconstruct(nq, xq.data(), k, D.data(), I.data(),
                                    R.data());
    Result plain = search(*f.index, xq, k);
    EXPECT_TRUE(I == plain.I) << "labels differ from search()";
    size_t dups = 0;
    for (idx_t q = 0; q < nq; q++) {
        std::set<idx_t> s;
        for (idx_t j = 0; j < k; j++) {
            idx_t id = I[q * k + j];
            if (id >= 0 && !s.insert(id).second) {
                dups++;
            }
        }
    }
    EXPECT_EQ(dups, 0u) << "duplicate ids returned by search_and_reconstruct";
}

TEST(SearchApi, RangeSearchWithParametersDeduplicates) {
    // faiss::ivflib::range_search_with_parameters calls
    // range_search_preassigned directly: still each id at most once
    Fixture f(3);
    idx_t nq = f.xq.size() / f.d;
    faiss::SearchParametersIVF params;
    params.nprobe = 6;
    faiss::RangeSearchResult a(nq), b(nq);
    faiss::ivflib::range_search_with_parameters(f.index.get(), nq, f.xq.data(),
                                                2.0f, &a, &params);
    f.index->range_search(nq, f.xq.data(), 2.0f, &b, &params);
    size_t dups = 0, differ = 0;
    for (idx_t q = 0; q < nq; q++) {
        std::multiset<idx_t> sa(a.labels + a.lims[q], a.labels + a.lims[q + 1]);
        std::set<idx_t> sb(b.labels + b.lims[q], b.labels + b.lims[q + 1]);
        std::set<idx_t> ua(sa.begin(), sa.end());
        dups += sa.size() - ua.size();
        differ += ua != sb;
    }
    EXPECT_EQ(dups, 0u) << "duplicate ids from range_search_with_parameters";
    EXPECT_EQ(differ, 0u) << "queries whose id sets differ from range_search";
}
