/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The threads contract of IndexEHITree (docs/DESIGN.md, "Threads"):
 * searches running while other threads add and remove vectors, and
 * write_index while vectors are added. Every result is checked against
 * what the index may hold at that time.
 *
 * EHI_SOAK_SECONDS sets how long each soak runs (default 2 s, so that the
 * suite stays fast); benchs/run_soak.sh runs it for minutes.
 */
#include "test_helpers.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/distances.h>

#include <faiss_ehi/index_io.h>

using namespace ehi_test;
using faiss_ehi::IndexEHITree;

namespace {

double soak_seconds() {
    const char* s = std::getenv("EHI_SOAK_SECONDS");
    double v = s ? std::atof(s) : 0;
    return v > 0 ? v : 2.0;
}

using Clock = std::chrono::steady_clock;

/// Sorted (id, code bytes) entries of every list: the content of an index
/// independent of the order in which its vectors arrived.
std::vector<std::vector<std::pair<idx_t, std::vector<uint8_t>>>> list_contents(
        const faiss::IndexIVF& index) {
    std::vector<std::vector<std::pair<idx_t, std::vector<uint8_t>>>> out(
            index.nlist);
    for (size_t l = 0; l < index.nlist; l++) {
        size_t n = index.invlists->list_size(l);
        const uint8_t* codes = index.invlists->get_codes(l);
        const idx_t* ids = index.invlists->get_ids(l);
        for (size_t e = 0; e < n; e++) {
            const uint8_t* c = codes + e * index.code_size;
            out[l].push_back(
                    {ids[e], std::vector<uint8_t>(c, c + index.code_size)});
        }
        index.invlists->release_codes(l, codes);
        index.invlists->release_ids(l, ids);
        std::sort(out[l].begin(), out[l].end());
    }
    return out;
}

struct SoakStats {
    std::atomic<int64_t> searches{0}, range_searches{0}, reconstructs{0};
    std::atomic<int64_t> results_checked{0}, adds{0}, removes{0};
    std::atomic<int64_t> removed_ids{0};
};

class Concurrency : public ::testing::TestWithParam<int> {};

} // namespace

/* 4 searching threads, one adding batches, one removing ids; then the lists
 * must equal a serial replay of the same adds and removes. */
TEST_P(Concurrency, SoakSearchWhileAddAndRemove) {
    const int d2l = GetParam();
    const int d = 16, k = 10, nsearch = 4;
    const idx_t batch = 200, pool = 400000, nremove = 20;
    const double seconds = soak_seconds();
    auto xt = clustered_data(4000, d, 40, 5, 11);
    auto index = kmeans_tree_index(d, 8, 2, faiss::METRIC_L2, xt);
    index->d2l = d2l;
    index->nprobe = 4;
    index->set_direct_map_type(faiss::DirectMap::Hashtable);
    auto replay = same_tree_index(*index);
    replay->set_direct_map_type(faiss::DirectMap::Hashtable);
    // Vector of id i: row i of xb (ids are rows, so a result's true
    // distance is known).
    auto xb = clustered_data(pool, d, 40, 5, 12);
    auto xq = clustered_data(512, d, 40, 5, 13);

    // ids in [0, add_begun) may be in the index; ids in [0, add_done) were.
    std::atomic<idx_t> add_begun{0}, add_done{0};
    // removed_at[i]: logical time at which the removal of id i completed
    // (0: never removed, kRemoving: remove_ids running); `now` is the
    // logical clock.
    const uint64_t kRemoving = ~uint64_t(0);
    std::vector<std::atomic<uint64_t>> removed_at(pool);
    std::atomic<uint64_t> now{1};
    std::atomic<bool> stop{false};
    std::mutex fail_mutex;
    std::string first_failure;
    auto fail = [&](const std::string& what) {
        std::lock_guard<std::mutex> g(fail_mutex);
        if (first_failure.empty()) {
            first_failure = what;
        }
        stop = true;
    };
    SoakStats st;
    std::vector<idx_t> removed_log;

    // one check of a returned (id, distance) for query q
    auto check_hit = [&](idx_t id, float dis, const float* q, uint64_t start,
                         idx_t begun_after, const char* who) {
        if (id < 0 || id >= begun_after) {
            fail(std::string(who) + ": id " + std::to_string(id) +
                 " was never added (ids added: [0, " +
                 std::to_string(begun_after) + "))");
            return;
        }
        uint64_t r = removed_at[id].load();
        if (r != 0 && r != kRemoving && r <= start) {
            fail(std::string(who) + ": id " + std::to_string(id) +
                 " returned by a search that started after its removal");
            return;
        }
        float truth = faiss::fvec_L2sqr(q, xb.data() + size_t(id) * d, d);
        if (std::abs(truth - dis) > 1e-4f * (1 + truth)) {
            fail(std::string(who) + ": id " + std::to_string(id) +
                 " distance " + std::to_string(dis) + ", true distance " +
                 std::to_string(truth));
        }
    };

    auto searcher = [&](int t) {
        Rng rng(100 + t);
        std::vector<float> D(16 * k);
        std::vector<idx_t> I(16 * k);
        std::vector<float> rec(d);
        float radius = 0; // the last k-th distance: about k results
        for (int it = 0; !stop; it++) {
            idx_t nq = 1 + rng.below(16);
            const float* q = xq.data() + rng.below(512 - nq) * d;
            uint64_t start = now.load();
            if (it % 8 == 7 && radius > 0) { // range search
                faiss::RangeSearchResult res(nq);
                index->range_search(nq, q, radius, &res);
                idx_t begun = add_begun.load();
                for (idx_t i = 0; i < nq; i++) {
                    std::set<idx_t> seen;
                    for (size_t j = res.lims[i]; j < res.lims[i + 1]; j++) {
                        check_hit(res.labels[j], res.distances[j], q + i * d,
                                  start, begun, "range_search");
                        if (!seen.insert(res.labels[j]).second) {
                            fail("range_search: id returned twice");
                        }
                    }
                    st.results_checked += res.lims[i + 1] - res.lims[i];
                }
                st.range_searches++;
                continue;
            }
            index->search(nq, q, k, D.data(), I.data());
            idx_t begun = add_begun.load();
            for (idx_t i = 0; i < nq; i++) {
                std::set<idx_t> seen;
                for (int j = 0; j < k; j++) {
                    idx_t id = I[i * k + j];
                    if (id == -1) {
                        continue;
                    }
                    check_hit(id, D[i * k + j], q + i * d, start, begun,
                              "search");
                    if (!seen.insert(id).second) {
                        fail("search: id returned twice for one query");
                    }
                    if (j > 0 && D[i * k + j] < D[i * k + j - 1]) {
                        fail("search: distances not sorted");
                    }
                    st.results_checked++;
                }
            }
            st.searches++;
            if (I[k - 1] >= 0) {
                radius = D[k - 1];
            }
            // reconstruct one returned id: its vector, or "not found" if it
            // was removed meanwhile
            idx_t id = I[0];
            if (id >= 0) {
                try {
                    index->reconstruct(id, rec.data());
                    if (std::memcmp(rec.data(), xb.data() + size_t(id) * d,
                                    d * sizeof(float)) != 0) {
                        fail("reconstruct: wrong vector for id " +
                             std::to_string(id));
                    }
                } catch (const faiss::FaissException&) {
                    if (removed_at[id].load() == 0) {
                        fail("reconstruct: id " + std::to_string(id) +
                             " not found though never removed");
                    }
                }
                st.reconstructs++;
            }
        }
    };

    // paced so that the pool lasts the whole run
    auto pace = std::chrono::microseconds(
            int64_t(seconds * 1e6 * batch / pool * 0.9));
    auto adder = [&] {
        for (idx_t i0 = 0; !stop && i0 + batch <= pool; i0 += batch) {
            auto ids = make_ids(batch, i0, 1);
            add_begun = i0 + batch;
            index->add_with_ids(batch, xb.data() + size_t(i0) * d, ids.data());
            add_done = i0 + batch;
            st.adds++;
            std::this_thread::sleep_for(pace);
        }
        stop = true; // the pool is used up
    };

    auto remover = [&] {
        Rng rng(7);
        while (!stop) {
            idx_t done = add_done.load();
            if (done == 0) {
                std::this_thread::yield();
                continue;
            }
            std::vector<idx_t> ids;
            for (idx_t i = 0; i < nremove; i++) {
                idx_t id = idx_t(rng.below(done));
                if (removed_at[id].load() == 0 &&
                    std::find(ids.begin(), ids.end(), id) == ids.end()) {
                    ids.push_back(id);
                }
            }
            for (idx_t id : ids) {
                removed_at[id] = kRemoving;
            }
            faiss::IDSelectorArray sel(ids.size(), ids.data());
            size_t n = index->remove_ids(sel);
            if (n != ids.size()) {
                fail("remove_ids removed " + std::to_string(n) + " of " +
                     std::to_string(ids.size()) + " ids");
            }
            uint64_t t = now.fetch_add(1) + 1;
            for (idx_t id : ids) {
                removed_at[id] = t;
            }
            removed_log.insert(removed_log.end(), ids.begin(), ids.end());
            st.removes++;
            st.removed_ids += ids.size();
            // give the searchers room
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    };

    std::vector<std::thread> threads;
    for (int t = 0; t < nsearch; t++) {
        threads.emplace_back(searcher, t);
    }
    threads.emplace_back(adder);
    threads.emplace_back(remover);
    auto t0 = Clock::now();
    while (!stop &&
           std::chrono::duration<double>(Clock::now() - t0).count() < seconds) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop = true;
    for (auto& th : threads) {
        th.join();
    }
    double took = std::chrono::duration<double>(Clock::now() - t0).count();
    ASSERT_EQ(first_failure, "");

    // serial replay: the same vectors, then the same removals (adds of
    // distinct ids and removals of added ids commute, so the lists must
    // hold the same entries whatever order the threads ran in)
    idx_t added = add_done.load();
    auto ids = make_ids(added, 0, 1);
    replay->add_with_ids(added, xb.data(), ids.data());
    if (d2l == 1) { // Faiss's hashtable direct map wants an IDSelectorArray
        faiss::IDSelectorArray sel(removed_log.size(), removed_log.data());
        replay->remove_ids(sel);
    } else {
        faiss::IDSelectorBatch sel(removed_log.size(), removed_log.data());
        replay->remove_ids(sel);
    }
    EXPECT_EQ(index->ntotal, replay->ntotal);
    EXPECT_EQ(index->ntotal, added - st.removed_ids.load());
    EXPECT_TRUE(list_contents(*index) == list_contents(*replay))
            << "the lists differ from a serial replay";
    EXPECT_GT(st.searches.load(), 0);
    EXPECT_GT(st.adds.load(), 0);
    EXPECT_GT(st.removes.load(), 0);
    std::printf("[soak d2l=%d] %.1f s: %lld searches, %lld range searches, "
                "%lld reconstructs, %lld results checked; %lld adds (%lld "
                "vectors), %lld removes (%lld ids); ntotal %lld\n",
                d2l, took, (long long)st.searches, (long long)st.range_searches,
                (long long)st.reconstructs, (long long)st.results_checked,
                (long long)st.adds, (long long)added, (long long)st.removes,
                (long long)st.removed_ids, (long long)index->ntotal);
}

INSTANTIATE_TEST_SUITE_P(D2L, Concurrency, ::testing::Values(1, 2));

/* write_index while another thread adds: every file describes one state,
 * ntotal equal to the stored ids and a whole number of batches, also when
 * the tree is nested in an IndexPreTransform. */
TEST(ConcurrencyWrite, WriteIndexDuringAddsReadsBackConsistent) {
    const int d = 16;
    const idx_t batch = 100;
    auto xt = clustered_data(2000, d, 20, 5, 21);
    auto owned = kmeans_tree_index(d, 4, 2, faiss::METRIC_L2, xt);
    IndexEHITree* index = owned.get();
    faiss::IndexPreTransform wrapped(new faiss::NormalizationTransform(d),
                                     owned.release());
    wrapped.own_fields = true;
    index->d2l = 2; // copies make the stored count differ from ntotal
    auto xb = clustered_data(200000, d, 20, 5, 22);
    TempDir dir;
    std::atomic<bool> stop{false};
    std::atomic<idx_t> added{0};
    std::thread adder([&] {
        for (idx_t i0 = 0; !stop && i0 + batch <= 200000; i0 += batch) {
            index->add(batch, xb.data() + size_t(i0) * d);
            added = i0 + batch;
            std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
    });
    int files = 0;
    idx_t last = -1, distinct = 0;
    auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() <
                   soak_seconds() ||
           files < 10) {
        bool nested = files % 2 == 1;
        std::string path = dir.file(nested ? "nested.ehi" : "tree.ehi");
        if (nested) {
            faiss_ehi::write_index(&wrapped, path.c_str());
        } else {
            faiss_ehi::write_index(index, path.c_str());
        }
        std::unique_ptr<faiss::Index> back(faiss_ehi::read_index(path.c_str()));
        auto* e = dynamic_cast<IndexEHITree*>(back.get());
        if (nested) {
            auto* pt = dynamic_cast<faiss::IndexPreTransform*>(back.get());
            ASSERT_TRUE(pt);
            e = dynamic_cast<IndexEHITree*>(pt->index);
        }
        ASSERT_TRUE(e);
        ASSERT_EQ(e->ntotal % batch, 0) << "a file holds part of an add";
        // every id once per list it is stored in, the primary copies
        // counted by ntotal, ids exactly [0, ntotal)
        std::set<idx_t> ids;
        size_t copies = 0;
        for (size_t l = 0; l < e->nlist; l++) {
            for (size_t j = 0; j < e->invlists->list_size(l); j++) {
                ids.insert(e->invlists->get_single_id(l, j));
                copies++;
            }
        }
        ASSERT_EQ(idx_t(ids.size()), e->ntotal);
        ASSERT_TRUE(ids.empty() ||
                    (*ids.begin() == 0 && *ids.rbegin() == e->ntotal - 1));
        ASSERT_GE(copies, ids.size());
        if (e->ntotal != last) {
            distinct++;
            last = e->ntotal;
        }
        files++;
    }
    stop = true;
    adder.join();
    EXPECT_GT(added.load(), 0);
    std::printf("[write during adds] %d files written and read back, %lld "
                "distinct sizes, %lld vectors added\n",
                files, (long long)distinct, (long long)added.load());
}
