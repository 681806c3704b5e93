/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * IndexEHITree: exactness at full beam, d2l, statistics, range search,
 * remove_ids, direct map, reset, merge_from, recall as the beam grows.
 */
#include "test_helpers.h"

#include <map>

#include <faiss/IndexIVF.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/DirectMap.h>

using namespace ehi_test;
using faiss_ehi::IndexEHITree;
using faiss_ehi::NodeForm;

namespace {

const char* metric_name(faiss::MetricType m) {
    return m == faiss::METRIC_L2 ? "L2" : "IP";
}

/// Labels equal, distances within 1e-5 relative.
void expect_equal_to_brute_force(const Result& r, const Result& gt,
                                 const std::vector<idx_t>* ids,
                                 const std::string& what) {
    ASSERT_EQ(r.I.size(), gt.I.size());
    for (size_t i = 0; i < r.I.size(); i++) {
        idx_t expected = ids ? (*ids)[gt.I[i]] : gt.I[i];
        EXPECT_EQ(r.I[i], expected) << what << " entry " << i;
        float tol = 1e-5f * std::max(1.0f, std::fabs(gt.D[i]));
        EXPECT_NEAR(r.D[i], gt.D[i], tol) << what << " entry " << i;
    }
}

/// The ids of every query's result are distinct (ignoring -1).
void expect_unique_ids(const Result& r, const std::string& what) {
    size_t dups = 0;
    std::string first;
    for (idx_t q = 0; q < r.nq; q++) {
        std::set<idx_t> s;
        for (idx_t j = 0; j < r.k; j++) {
            idx_t id = r.I[q * r.k + j];
            if (id >= 0 && !s.insert(id).second) {
                if (dups++ == 0) {
                    first = "query " + std::to_string(q) + " id " +
                            std::to_string(id);
                }
            }
        }
    }
    EXPECT_EQ(dups, 0u) << what << ": duplicate ids, first: " << first;
}

/// Number of entries stored per id, over all inverted lists.
std::map<idx_t, int> stored_id_counts(const faiss::IndexIVF& index) {
    std::map<idx_t, int> counts;
    for (size_t l = 0; l < index.nlist; l++) {
        size_t ls = index.invlists->list_size(l);
        if (ls == 0) {
            continue;
        }
        const idx_t* ids = index.invlists->get_ids(l);
        for (size_t j = 0; j < ls; j++) {
            counts[ids[j]]++;
        }
        index.invlists->release_ids(l, ids);
    }
    return counts;
}

size_t total_list_sizes(const faiss::IndexIVF& index) {
    size_t s = 0;
    for (size_t l = 0; l < index.nlist; l++) {
        s += index.invlists->list_size(l);
    }
    return s;
}

} // namespace

// ---------------------------------------------------------------- exactness

struct ExactCase {
    faiss::MetricType metric;
    int d2l;
    bool with_ids;
    NodeForm form;
};

class FullBeamExact : public ::testing::TestWithParam<ExactCase> {};

TEST_P(FullBeamExact, EqualsBruteForce) {
    ExactCase c = GetParam();
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 2000, nq = 15, k = 10; // nq < 20: scalar distances
    auto xb = gaussian_data(nb, d, 1);
    auto xq = gaussian_data(nq, d, 2);
    auto index = random_tree_index(d, B, H, c.metric, xb, 7, c.form);
    index->d2l = c.d2l;
    std::vector<idx_t> ids = make_ids(nb, 1000, 3);
    if (c.with_ids) {
        index->add_with_ids(nb, xb.data(), ids.data());
    } else {
        index->add(nb, xb.data());
    }
    EXPECT_EQ(index->ntotal, nb);
    // every vector stored in exactly d2l lists
    auto counts = stored_id_counts(*index);
    EXPECT_EQ(counts.size(), size_t(nb));
    for (auto& kv : counts) {
        ASSERT_EQ(kv.second, c.d2l) << "id " << kv.first;
    }
    index->nprobe = B * B;
    Result r = search(*index, xq, k);
    Result gt = brute_force(d, c.metric, xb, xq, k);
    std::string what = std::string(metric_name(c.metric)) + " d2l " +
            std::to_string(c.d2l);
    expect_equal_to_brute_force(r, gt, c.with_ids ? &ids : nullptr, what);
    expect_unique_ids(r, what);
    // nprobe larger than the number of leaves is the same
    index->nprobe = B * B + 5;
    Result r2 = search(*index, xq, k);
    EXPECT_BIT_IDENTICAL(r, r2);
}

INSTANTIATE_TEST_SUITE_P(
        Variants, FullBeamExact,
        ::testing::Values(
                ExactCase{faiss::METRIC_L2, 1, false, NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_L2, 1, true, NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_L2, 3, false, NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_L2, 3, true, NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_INNER_PRODUCT, 1, false,
                          NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_INNER_PRODUCT, 1, true,
                          NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_INNER_PRODUCT, 3, false,
                          NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_INNER_PRODUCT, 3, true,
                          NodeForm::PER_NODE},
                ExactCase{faiss::METRIC_L2, 1, true, NodeForm::PAPER},
                ExactCase{faiss::METRIC_L2, 3, true, NodeForm::PAPER},
                ExactCase{faiss::METRIC_INNER_PRODUCT, 3, false,
                          NodeForm::PAPER}),
        [](const ::testing::TestParamInfo<ExactCase>& info) {
            const ExactCase& c = info.param;
            return std::string(metric_name(c.metric)) + "_d2l" +
                    std::to_string(c.d2l) + (c.with_ids ? "_ids" : "_seq") +
                    (c.form == NodeForm::PAPER ? "_paper" : "_node");
        });

TEST(Index, D2lEqualsAllLeavesStoresEverywhere) {
    const int d = 8, B = 3, H = 2;
    auto xb = gaussian_data(300, d, 3);
    auto xq = gaussian_data(10, d, 4);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 5);
    index->d2l = B * B;
    index->add(300, xb.data());
    for (idx_t l = 0; l < B * B; l++) {
        EXPECT_EQ(index->invlists->list_size(l), 300u);
    }
    EXPECT_EQ(index->ntotal, 300);
    // a single probe already sees everything, without duplicates
    index->nprobe = 1;
    Result r = search(*index, xq, 20);
    Result gt = brute_force(d, faiss::METRIC_L2, xb, xq, 20);
    expect_equal_to_brute_force(r, gt, nullptr, "d2l = L");
    expect_unique_ids(r, "d2l = L");
}

TEST(Index, AssignDocumentsMatchesLists) {
    const int d = 8, B = 3, H = 2;
    auto xb = gaussian_data(200, d, 13);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 5);
    index->d2l = 2;
    std::vector<idx_t> lists(200 * 2);
    index->assign_documents(200, xb.data(), lists.data());
    index->add(200, xb.data());
    std::vector<std::set<idx_t>> where(200);
    for (size_t l = 0; l < index->nlist; l++) {
        size_t ls = index->invlists->list_size(l);
        const idx_t* ids = index->invlists->get_ids(l);
        for (size_t j = 0; j < ls; j++) {
            where[ids[j]].insert(l);
        }
        index->invlists->release_ids(l, ids);
    }
    for (idx_t i = 0; i < 200; i++) {
        std::set<idx_t> expected(lists.begin() + 2 * i,
                                 lists.begin() + 2 * i + 2);
        EXPECT_EQ(where[i], expected) << "vector " << i;
        EXPECT_NE(lists[2 * i], lists[2 * i + 1]);
    }
    // PROBABILITY rule: the first list is the tree's top-1 leaf
    std::vector<idx_t> top(200 * 2);
    std::vector<float> pr(200 * 2);
    index->tree_quantizer()->tree.route(200, xb.data(), 2, top.data(),
                                        pr.data());
    for (idx_t i = 0; i < 200; i++) {
        EXPECT_EQ(lists[2 * i], top[2 * i]);
        EXPECT_EQ(lists[2 * i + 1], top[2 * i + 1]);
    }
}

// ---------------------------------------------------------------- stats

class NdisStats : public ::testing::TestWithParam<int> {};

TEST_P(NdisStats, NdisIsSumOfProbedListSizes) {
    const int d2l = GetParam();
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 3000, nq = 25;
    auto xb = clustered_data(nb, d, 30, 1, 2);
    auto xq = clustered_data(nq, d, 30, 1, 3);
    auto index = kmeans_tree_index(d, B, H, faiss::METRIC_L2, xb);
    index->d2l = d2l;
    index->add(nb, xb.data());
    EXPECT_EQ(total_list_sizes(*index), size_t(nb * d2l));
    for (idx_t nprobe : {1, 3, 7, 16}) {
        index->nprobe = nprobe;
        std::vector<idx_t> Iq(nq * nprobe);
        std::vector<float> Dq(nq * nprobe);
        index->quantizer->search(nq, xq.data(), nprobe, Dq.data(), Iq.data());
        size_t expected = 0;
        for (idx_t l : Iq) {
            if (l >= 0) {
                expected += index->invlists->list_size(l);
            }
        }
        faiss::indexIVF_stats.reset();
        search(*index, xq, 10);
        EXPECT_EQ(faiss::indexIVF_stats.ndis, expected)
                << "d2l " << d2l << " nprobe " << nprobe;
        EXPECT_EQ(faiss::indexIVF_stats.nq, size_t(nq));
    }
}

INSTANTIATE_TEST_SUITE_P(D2l, NdisStats, ::testing::Values(1, 2));

// ---------------------------------------------------------------- range

TEST(RangeSearch, D2lReturnsEachIdOnce) {
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 2000, nq = 15;
    auto xb = gaussian_data(nb, d, 21);
    auto xq = gaussian_data(nq, d, 22);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 23);
    index->d2l = 3;
    index->add(nb, xb.data());
    index->nprobe = 6;
    float radius = 20.0f; // about 10% of the points of N(0, I_16)
    faiss::RangeSearchResult res(nq);
    index->range_search(nq, xq.data(), radius, &res);
    size_t total = 0;
    for (idx_t q = 0; q < nq; q++) {
        std::set<idx_t> s;
        for (size_t j = res.lims[q]; j < res.lims[q + 1]; j++) {
            EXPECT_TRUE(s.insert(res.labels[j]).second)
                    << "query " << q << " id " << res.labels[j] << " twice";
            EXPECT_LT(res.distances[j], radius);
            total++;
        }
    }
    EXPECT_GT(total, 0u);
}

struct RangeCase {
    faiss::MetricType metric;
    int d2l;
};

class RangeFullBeam : public ::testing::TestWithParam<RangeCase> {};

TEST_P(RangeFullBeam, EqualsFlatRangeSearch) {
    RangeCase c = GetParam();
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 2000, nq = 15;
    auto xb = gaussian_data(nb, d, 31);
    auto xq = gaussian_data(nq, d, 32);
    auto index = random_tree_index(d, B, H, c.metric, xb, 33);
    index->d2l = c.d2l;
    std::vector<idx_t> ids = make_ids(nb, 5, 2);
    index->add_with_ids(nb, xb.data(), ids.data());
    index->nprobe = B * B;
    faiss::IndexFlat flat(d, c.metric);
    flat.add(nb, xb.data());
    float radius = c.metric == faiss::METRIC_L2 ? 20.0f : 6.0f;
    faiss::RangeSearchResult r1(nq), r2(nq);
    index->range_search(nq, xq.data(), radius, &r1);
    flat.range_search(nq, xq.data(), radius, &r2);
    size_t total = 0;
    for (idx_t q = 0; q < nq; q++) {
        std::map<idx_t, float> a, b;
        for (size_t j = r1.lims[q]; j < r1.lims[q + 1]; j++) {
            EXPECT_TRUE(a.emplace(r1.labels[j], r1.distances[j]).second)
                    << "duplicate id " << r1.labels[j];
        }
        for (size_t j = r2.lims[q]; j < r2.lims[q + 1]; j++) {
            b.emplace(ids[r2.labels[j]], r2.distances[j]);
        }
        ASSERT_EQ(a.size(), b.size()) << "query " << q;
        for (auto& kv : b) {
            auto it = a.find(kv.first);
            ASSERT_NE(it, a.end())
                    << "query " << q << " misses id " << kv.first;
            EXPECT_NEAR(it->second, kv.second,
                        1e-5f * std::max(1.0f, std::fabs(kv.second)));
        }
        total += b.size();
    }
    EXPECT_GT(total, size_t(nq)); // the radius selects something
}

INSTANTIATE_TEST_SUITE_P(
        Variants, RangeFullBeam,
        ::testing::Values(RangeCase{faiss::METRIC_L2, 1},
                          RangeCase{faiss::METRIC_L2, 3},
                          RangeCase{faiss::METRIC_INNER_PRODUCT, 1},
                          RangeCase{faiss::METRIC_INNER_PRODUCT, 3}),
        [](const ::testing::TestParamInfo<RangeCase>& info) {
            return std::string(metric_name(info.param.metric)) + "_d2l" +
                    std::to_string(info.param.d2l);
        });

// ---------------------------------------------------------------- remove

class RemoveIds : public ::testing::TestWithParam<int> {};

TEST_P(RemoveIds, AllCopiesGone) {
    const int d2l = GetParam();
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 1500, nq = 15;
    auto xb = gaussian_data(nb, d, 41);
    auto xq = gaussian_data(nq, d, 42);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 43);
    index->d2l = d2l;
    index->add(nb, xb.data());
    ASSERT_EQ(total_list_sizes(*index), size_t(nb * d2l));
    // remove the even ids below 1000 (500 ids) and ids 1400..1499
    std::vector<idx_t> to_remove;
    for (idx_t i = 0; i < 1000; i += 2) {
        to_remove.push_back(i);
    }
    faiss::IDSelectorBatch sel(to_remove.size(), to_remove.data());
    size_t removed = index->remove_ids(sel);
    EXPECT_TRUE(removed == to_remove.size() ||
                removed == to_remove.size() * d2l)
            << "remove_ids returned " << removed;
    faiss::IDSelectorRange range(1400, 1500);
    index->remove_ids(range);
    idx_t remaining = nb - idx_t(to_remove.size()) - 100;
    EXPECT_EQ(index->ntotal, remaining);
    EXPECT_EQ(total_list_sizes(*index), size_t(remaining * d2l));
    auto counts = stored_id_counts(*index);
    EXPECT_EQ(counts.size(), size_t(remaining));
    for (auto& kv : counts) {
        EXPECT_FALSE(kv.first < 1000 && kv.first % 2 == 0) << kv.first;
        EXPECT_FALSE(kv.first >= 1400) << kv.first;
        EXPECT_EQ(kv.second, d2l) << kv.first;
    }
    // search at full beam equals brute force over the remaining vectors
    std::vector<float> kept;
    std::vector<idx_t> kept_ids;
    for (idx_t i = 0; i < nb; i++) {
        if ((i < 1000 && i % 2 == 0) || i >= 1400) {
            continue;
        }
        kept.insert(kept.end(), xb.begin() + i * d, xb.begin() + (i + 1) * d);
        kept_ids.push_back(i);
    }
    index->nprobe = B * B;
    Result r = search(*index, xq, 10);
    Result gt = brute_force(d, faiss::METRIC_L2, kept, xq, 10);
    expect_equal_to_brute_force(r, gt, &kept_ids, "after remove_ids");
    // removing ids that are not there removes nothing
    EXPECT_EQ(index->remove_ids(sel), 0u);
    EXPECT_EQ(index->ntotal, remaining);
}

INSTANTIATE_TEST_SUITE_P(D2l, RemoveIds, ::testing::Values(1, 2));

// ---------------------------------------------------------------- direct map

TEST(DirectMap, ArrayReconstruct) {
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 1000;
    auto xb = gaussian_data(nb, d, 51);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 52);
    index->add(600, xb.data());
    index->make_direct_map(true);
    index->add(nb - 600, xb.data() + 600 * d); // maintained on add
    std::vector<float> rec(d);
    for (idx_t i = 0; i < nb; i += 37) {
        index->reconstruct(i, rec.data());
        EXPECT_EQ(0,
                  std::memcmp(rec.data(), xb.data() + i * d, d * sizeof(float)))
                << "id " << i;
    }
    std::vector<float> all(nb * d);
    index->reconstruct_n(0, nb, all.data());
    EXPECT_EQ(0, std::memcmp(all.data(), xb.data(), nb * d * sizeof(float)));
}

TEST(DirectMap, HashtableWithIds) {
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 1000;
    auto xb = gaussian_data(nb, d, 53);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 54);
    auto ids = make_ids(nb, 123456789, 1001);
    index->add_with_ids(500, xb.data(), ids.data());
    index->set_direct_map_type(faiss::DirectMap::Hashtable);
    index->add_with_ids(nb - 500, xb.data() + 500 * d, ids.data() + 500);
    std::vector<float> rec(d);
    for (idx_t i = 0; i < nb; i += 13) {
        index->reconstruct(ids[i], rec.data());
        EXPECT_EQ(0,
                  std::memcmp(rec.data(), xb.data() + i * d, d * sizeof(float)))
                << "id " << ids[i];
    }
    // remove_ids keeps the hashtable consistent (Faiss's hashtable direct
    // map only supports IDSelectorArray)
    faiss::IDSelectorArray sel(10, ids.data());
    EXPECT_EQ(index->remove_ids(sel), 10u);
    EXPECT_EQ(index->ntotal, nb - 10);
    index->reconstruct(ids[20], rec.data());
    EXPECT_EQ(0,
              std::memcmp(rec.data(), xb.data() + 20 * d, d * sizeof(float)));
    EXPECT_THROW(index->reconstruct(ids[3], rec.data()), faiss::FaissException);
}

// ---------------------------------------------------------------- reset/merge

TEST(Index, ResetKeepsTree) {
    const int d = 16, B = 4, H = 2;
    auto xb = gaussian_data(1000, d, 61);
    auto xq = gaussian_data(15, d, 62);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 63);
    index->d2l = 2;
    index->nprobe = 5;
    index->add(1000, xb.data());
    Result before = search(*index, xq, 10);
    index->reset();
    EXPECT_EQ(index->ntotal, 0);
    EXPECT_TRUE(index->is_trained);
    EXPECT_TRUE(index->quantizer->is_trained);
    EXPECT_EQ(index->quantizer->ntotal, B * B);
    EXPECT_EQ(total_list_sizes(*index), 0u);
    Result empty = search(*index, xq, 10);
    for (idx_t l : empty.I) {
        EXPECT_EQ(l, -1);
    }
    index->add(1000, xb.data());
    Result after = search(*index, xq, 10);
    EXPECT_BIT_IDENTICAL(before, after);
}

class MergeFrom : public ::testing::TestWithParam<int> {};

TEST_P(MergeFrom, EqualsSingleIndex) {
    const int d2l = GetParam();
    const int d = 16, B = 4, H = 2;
    const idx_t nb = 2000;
    auto xb = gaussian_data(nb, d, 71);
    auto xq = gaussian_data(15, d, 72);
    auto full = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 73);
    full->d2l = d2l;
    full->nprobe = 6;
    auto a = same_tree_index(*full);
    auto b = same_tree_index(*full);
    ASSERT_TRUE(a->is_trained);
    ASSERT_TRUE(b->is_trained);
    full->add(nb, xb.data());
    a->add(1200, xb.data());
    b->add(nb - 1200, xb.data() + 1200 * d);
    a->merge_from(*b, 1200);
    EXPECT_EQ(a->ntotal, nb);
    EXPECT_EQ(b->ntotal, 0);
    EXPECT_EQ(total_list_sizes(*b), 0u);
    EXPECT_EQ(total_list_sizes(*a), size_t(nb * d2l));
    Result ra = search(*a, xq, 10);
    Result rf = search(*full, xq, 10);
    EXPECT_BIT_IDENTICAL(ra, rf);
    expect_unique_ids(ra, "merged");
    a->nprobe = B * B;
    Result gt = brute_force(d, faiss::METRIC_L2, xb, xq, 10);
    expect_equal_to_brute_force(search(*a, xq, 10), gt, nullptr, "merged");
}

INSTANTIATE_TEST_SUITE_P(D2l, MergeFrom, ::testing::Values(1, 2));

TEST(Index, MergeFromWithIds) {
    const int d = 16, B = 4, H = 2;
    auto xb = gaussian_data(1000, d, 74);
    auto xq = gaussian_data(15, d, 75);
    auto full = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 76);
    full->nprobe = 5;
    auto a = same_tree_index(*full);
    auto b = same_tree_index(*full);
    auto ids = make_ids(1000, 10, 10);
    full->add_with_ids(1000, xb.data(), ids.data());
    a->add_with_ids(400, xb.data(), ids.data());
    b->add_with_ids(600, xb.data() + 400 * d, ids.data() + 400);
    a->merge_from(*b, 0);
    EXPECT_BIT_IDENTICAL(search(*a, xq, 10), search(*full, xq, 10));
}

// ---------------------------------------------------------------- recall

class RecallGrows : public ::testing::TestWithParam<int> {};

TEST_P(RecallGrows, NonDecreasingInNprobe) {
    const int d2l = GetParam();
    const int d = 16, B = 5, H = 2;
    const idx_t nb = 5000, nq = 100, k = 10;
    auto xb = clustered_data(nb, d, 50, 81, 1, 0.8f);
    auto xq = clustered_data(nq, d, 50, 81, 2, 0.8f);
    auto index = kmeans_tree_index(d, B, H, faiss::METRIC_L2, xb);
    index->d2l = d2l;
    index->add(nb, xb.data());
    Result gt = brute_force(d, faiss::METRIC_L2, xb, xq, k);
    double prev = -1;
    std::vector<double> recalls;
    for (idx_t nprobe = 1; nprobe <= B * B; nprobe++) {
        index->nprobe = nprobe;
        double r = recall_at_k(search(*index, xq, k), gt, k);
        recalls.push_back(r);
        EXPECT_GE(r, prev) << "nprobe " << nprobe;
        prev = r;
    }
    EXPECT_EQ(recalls.back(), 1.0);
    // a k-means tree on clustered data is a useful index
    EXPECT_GE(recalls[0], d2l == 1 ? 0.5 : 0.6) << "recall at nprobe 1";
    EXPECT_GE(recalls[4], 0.85) << "recall at nprobe 5";
}

INSTANTIATE_TEST_SUITE_P(D2l, RecallGrows, ::testing::Values(1, 2));

TEST(Index, KMeansTrainedIndexIsTrained) {
    const int d = 16;
    auto xt = clustered_data(3000, d, 20, 91, 1);
    auto index = kmeans_tree_index(d, 4, 2, faiss::METRIC_L2, xt);
    EXPECT_TRUE(index->is_trained);
    EXPECT_TRUE(index->quantizer->is_trained);
    EXPECT_EQ(index->nlist, 16u);
    EXPECT_EQ(index->quantizer->ntotal, 16);
    auto* q = index->tree_quantizer();
    EXPECT_EQ(q->tree.m, d);
    EXPECT_EQ(q->leaf_representatives.size(), size_t(16 * d));
    // the quantizer's reconstruct gives the leaf representatives
    std::vector<float> rec(d);
    q->reconstruct(5, rec.data());
    EXPECT_EQ(0,
              std::memcmp(rec.data(), q->leaf_representatives.data() + 5 * d,
                          d * sizeof(float)));
    // quantizer search: leaves in decreasing path probability, distances
    // are the true L2 distances to the representatives
    auto xq = clustered_data(10, d, 20, 91, 2);
    std::vector<float> D(10 * 4);
    std::vector<idx_t> I(10 * 4);
    q->search(10, xq.data(), 4, D.data(), I.data());
    std::vector<idx_t> leaves(10 * 4);
    std::vector<float> probs(10 * 4);
    q->tree.route(10, xq.data(), 4, leaves.data(), probs.data());
    EXPECT_EQ(I, leaves);
    for (int i = 0; i < 40; i++) {
        const float* c = q->leaf_representatives.data() + I[i] * d;
        const float* x = xq.data() + (i / 4) * d;
        double dist = 0;
        for (int j = 0; j < d; j++) {
            dist += double(x[j] - c[j]) * (x[j] - c[j]);
        }
        EXPECT_NEAR(D[i], dist, 1e-4 * std::max(1.0, dist));
    }
    // a beam wider than the number of leaves: every leaf once, then -1
    std::vector<float> D2(2 * 20);
    std::vector<idx_t> I2(2 * 20);
    q->search(2, xq.data(), 20, D2.data(), I2.data());
    for (int r = 0; r < 2; r++) {
        std::set<idx_t> s(I2.begin() + r * 20, I2.begin() + r * 20 + 16);
        EXPECT_EQ(s.size(), 16u);
        EXPECT_EQ(*s.begin(), 0);
        EXPECT_EQ(*s.rbegin(), 15);
        for (int j = 16; j < 20; j++) {
            EXPECT_EQ(I2[r * 20 + j], -1);
        }
    }
}

TEST(Index, InnerProductKMeansRecall) {
    const int d = 16, B = 4, H = 2;
    auto xb = clustered_data(4000, d, 40, 95, 1);
    auto xq = clustered_data(50, d, 40, 95, 2);
    normalize_rows(xb, d);
    normalize_rows(xq, d);
    auto index = kmeans_tree_index(d, B, H, faiss::METRIC_INNER_PRODUCT, xb);
    index->add(4000, xb.data());
    Result gt = brute_force(d, faiss::METRIC_INNER_PRODUCT, xb, xq, 10);
    index->nprobe = 4;
    EXPECT_GE(recall_at_k(search(*index, xq, 10), gt, 10), 0.8);
    index->nprobe = B * B;
    EXPECT_EQ(recall_at_k(search(*index, xq, 10), gt, 10), 1.0);
}

TEST(Index, PaperFormKMeansRecall) {
    const int d = 16, B = 4, H = 2;
    auto xb = clustered_data(4000, d, 40, 97, 1);
    auto xq = clustered_data(50, d, 40, 97, 2);
    auto index =
            kmeans_tree_index(d, B, H, faiss::METRIC_L2, xb, NodeForm::PAPER);
    EXPECT_EQ(index->tree_quantizer()->tree.form, NodeForm::PAPER);
    index->add(4000, xb.data());
    Result gt = brute_force(d, faiss::METRIC_L2, xb, xq, 10);
    index->nprobe = 6;
    EXPECT_GE(recall_at_k(search(*index, xq, 10), gt, 10), 0.7);
}

TEST(Index, VersionString) {
    std::string v = faiss_ehi::version();
    EXPECT_FALSE(v.empty());
    EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
}

// ---------------------------------------------------------------- more d2l

TEST(Index, MergeDuplicatesIntoPlainIndex) {
    // a has d2l 1 (no duplicates), b d2l 2: after the merge, a deduplicates
    const int d = 16, B = 4, H = 2;
    auto xb = gaussian_data(1000, d, 101);
    auto xq = gaussian_data(15, d, 102);
    auto a = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 103);
    auto b = same_tree_index(*a);
    b->d2l = 2;
    a->add(500, xb.data());
    b->add(500, xb.data() + 500 * d);
    a->merge_from(*b, 500);
    EXPECT_TRUE(a->lists_have_duplicates);
    a->nprobe = B * B;
    Result r = search(*a, xq, 20);
    expect_unique_ids(r, "merged");
    Result gt = brute_force(d, faiss::METRIC_L2, xb, xq, 20);
    expect_equal_to_brute_force(r, gt, nullptr, "merged");
}

TEST(Index, AddCoreWithD2LMarksDuplicates) {
    // A shard of faiss_ehi.distributed is filled through add_core with the
    // client's lists, one list per call for an id stored in several: the
    // index must then deduplicate as after add.
    const int d = 16, B = 4, H = 2;
    auto xb = gaussian_data(600, d, 111);
    auto xq = gaussian_data(15, d, 112);
    auto a = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 113);
    a->d2l = 2;
    std::vector<idx_t> lists(600 * 2), ids(600);
    a->assign_documents(600, xb.data(), lists.data());
    for (int r = 0; r < 2; r++) {
        std::vector<idx_t> one(600);
        for (idx_t i = 0; i < 600; i++) {
            ids[i] = i;
            one[i] = lists[i * 2 + r];
        }
        a->add_core(600, xb.data(), ids.data(), one.data());
    }
    EXPECT_TRUE(a->lists_have_duplicates);
    a->nprobe = B * B;
    Result res = search(*a, xq, 20);
    expect_unique_ids(res, "add_core d2l 2");
    Result gt = brute_force(d, faiss::METRIC_L2, xb, xq, 20);
    expect_equal_to_brute_force(res, gt, nullptr, "add_core d2l 2");
}

TEST(Index, MergeRejectsOtherTree) {
    const int d = 8;
    auto xb = gaussian_data(200, d, 104);
    auto a = random_tree_index(d, 3, 2, faiss::METRIC_L2, xb, 105);
    auto b =
            random_tree_index(d, 3, 2, faiss::METRIC_L2, xb, 106); // other seed
    b->add(200, xb.data());
    std::string msg = faiss_error([&] { a->merge_from(*b, 0); });
    EXPECT_FALSE(msg.empty());
    EXPECT_EQ(a->ntotal, 0);
    EXPECT_EQ(b->ntotal, 200);
}

TEST(Index, KLargerThanDatabaseWithD2l) {
    const int d = 8, B = 3, H = 2;
    auto xb = gaussian_data(30, d, 107);
    auto xq = gaussian_data(5, d, 108);
    auto index = random_tree_index(d, B, H, faiss::METRIC_L2, xb, 109);
    index->d2l = 3;
    index->add(30, xb.data());
    index->nprobe = 9;
    Result r = search(*index, xq, 50);
    expect_unique_ids(r, "k > ntotal");
    for (idx_t q = 0; q < 5; q++) {
        for (idx_t j = 0; j < 50; j++) {
            idx_t l = r.I[q * 50 + j];
            if (j < 30) {
                EXPECT_GE(l, 0) << "query " << q << " rank " << j;
            } else {
                EXPECT_EQ(l, -1) << "query " << q << " rank " << j;
            }
        }
    }
}

TEST(Index, EmptyBatches) {
    auto xb = gaussian_data(100, 8, 110);
    auto index = random_tree_index(8, 3, 2, faiss::METRIC_L2, xb, 111);
    index->d2l = 2;
    EXPECT_NO_THROW(index->add(0, xb.data()));
    EXPECT_EQ(index->ntotal, 0);
    index->add(100, xb.data());
    std::vector<float> D(1);
    std::vector<idx_t> I(1);
    EXPECT_NO_THROW(index->search(0, xb.data(), 10, D.data(), I.data()));
    faiss::RangeSearchResult res(0);
    EXPECT_NO_THROW(index->range_search(0, xb.data(), 1.0f, &res));
}

class AssignRules : public ::testing::TestWithParam<faiss_ehi::DocAssignRule> {
};

TEST_P(AssignRules, FullBeamExactAndStoredD2lTimes) {
    const int d = 16, B = 4, H = 2, d2l = 3;
    auto xb = clustered_data(2000, d, 20, 112, 1);
    auto xq = clustered_data(15, d, 20, 112, 2);
    auto index = kmeans_tree_index(d, B, H, faiss::METRIC_L2, xb);
    index->assign_rule = GetParam();
    index->d2l = d2l;
    std::vector<idx_t> lists(2000 * d2l);
    index->assign_documents(2000, xb.data(), lists.data());
    for (idx_t i = 0; i < 2000; i++) {
        std::set<idx_t> s(lists.begin() + i * d2l,
                          lists.begin() + (i + 1) * d2l);
        EXPECT_EQ(s.size(), size_t(d2l)) << "vector " << i;
        for (idx_t l : s) {
            EXPECT_GE(l, 0);
            EXPECT_LT(l, B * B);
        }
    }
    index->add(2000, xb.data());
    auto counts = stored_id_counts(*index);
    for (auto& kv : counts) {
        ASSERT_EQ(kv.second, d2l) << "id " << kv.first;
    }
    index->nprobe = B * B;
    Result r = search(*index, xq, 10);
    Result gt = brute_force(d, faiss::METRIC_L2, xb, xq, 10);
    expect_equal_to_brute_force(r, gt, nullptr, "assign rule");
    expect_unique_ids(r, "assign rule");
    // NEAREST_LEAF: the first list is the nearest representative
    if (GetParam() == faiss_ehi::DocAssignRule::NEAREST_LEAF) {
        const auto& reps = index->tree_quantizer()->leaf_representatives;
        for (idx_t i = 0; i < 2000; i += 50) {
            float best = 1e30f;
            idx_t arg = -1;
            for (idx_t l = 0; l < B * B; l++) {
                float dist = 0;
                for (int j = 0; j < d; j++) {
                    float t = xb[i * d + j] - reps[l * d + j];
                    dist += t * t;
                }
                if (dist < best) {
                    best = dist;
                    arg = l;
                }
            }
            EXPECT_EQ(lists[i * d2l], arg) << "vector " << i;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
        Rules, AssignRules,
        ::testing::Values(faiss_ehi::DocAssignRule::PROBABILITY,
                          faiss_ehi::DocAssignRule::NEAREST_LEAF,
                          faiss_ehi::DocAssignRule::SOAR),
        [](const ::testing::TestParamInfo<faiss_ehi::DocAssignRule>& info) {
            switch (info.param) {
                case faiss_ehi::DocAssignRule::PROBABILITY:
                    return std::string("PROBABILITY");
                case faiss_ehi::DocAssignRule::NEAREST_LEAF:
                    return std::string("NEAREST_LEAF");
                default:
                    return std::string("SOAR");
            }
        });

TEST(Index, QuantizerInnerProductDistances) {
    const int d = 16;
    auto xt = clustered_data(2000, d, 20, 113, 1);
    normalize_rows(xt, d);
    auto index = kmeans_tree_index(d, 4, 2, faiss::METRIC_INNER_PRODUCT, xt);
    auto* q = index->tree_quantizer();
    auto xq = clustered_data(5, d, 20, 113, 2);
    std::vector<float> D(5 * 3);
    std::vector<idx_t> I(5 * 3);
    q->search(5, xq.data(), 3, D.data(), I.data());
    for (int i = 0; i < 15; i++) {
        ASSERT_GE(I[i], 0);
        const float* c = q->leaf_representatives.data() + I[i] * d;
        const float* x = xq.data() + (i / 3) * d;
        double ip = 0;
        for (int j = 0; j < d; j++) {
            ip += double(x[j]) * c[j];
        }
        EXPECT_NEAR(D[i], ip, 1e-4 * std::max(1.0, std::fabs(ip)));
    }
}
