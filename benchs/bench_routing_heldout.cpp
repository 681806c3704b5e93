/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_routing_heldout: alternatives to EHI's search, tried on a trained
 * index over the training queries its training held out (the same seeded
 * split as JointTrainer, so no test query is looked at), each at equal
 * documents visited (Recall@100 and nDCG@10 interpolated in log visited
 * between beams, as bench_visited does):
 * - routing: the learned router (the index's own search) against routing
 *   by the nearest leaf representatives (IVF-style, same leaves, same
 *   documents);
 * - leaf prior: each visited document's score plus alpha x the log
 *   probability the router gives its leaf, so that the router's view of
 *   the query re-ranks what the beam gathered;
 * - spill: the documents that fit their own leaf worst (lowest score
 *   against its representative, the given share of the corpus) also
 *   stored in the leaf the router sends them to next; copies count as
 *   visited, duplicates are returned once;
 * and which relevant documents the beam loses: those in the exhaustive
 * top 100 whose leaf the router ranks past the beam (their exhaustive
 * rank, and where nearest-representative routing would rank their leaf).
 * Searches here are plain loops over the lists' float codes (EHI Flat
 * indexes only), for measuring recall, not speed.
 *
 * Usage: bench_routing_heldout --data beir:DIR --index FILE --seed S
 *        --heldout_fraction F   (as the index was trained: ehi_train
 *        --data beir:DIR --seed S --heldout_fraction F --out FILE)
 */

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IVFlib.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/utils/distances.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/index_io.h>
#include <faiss_ehi/trainer/JointTrainer.h>
#include "cmdline/flag_lists.h"
#include "cmdline/program_main.h"
#include "cmdline/task_inputs.h"
#include "cmdline/visited_sweep.h"
#include "contrib/data/metrics.h"
#include "contrib/data/retrieval_task.h"

DEFINE_string(data, "", "relevance data set: beir:DIR (required)");
DEFINE_string(index, "",
              "index trained on --data by ehi_train, with its .text encoder "
              "beside it (required)");
DEFINE_uint64(seed, 1, "the --seed the index was trained with");
DEFINE_double(heldout_fraction, 0.1,
              "the --heldout_fraction the index was trained with");
DEFINE_string(visited, "0.05,0.1,0.2", "fractions of documents visited");
DEFINE_string(prior, "0.005,0.01,0.02,0.05",
              "leaf-prior weights alpha (empty: none)");
DEFINE_string(spill, "0.05,0.1,0.2,0.3",
              "shares of the corpus spilled, below 1 (empty: none)");
DEFINE_int32(lost_beam, 8, "beam of the lost-documents analysis (0: none)");

namespace {

namespace fd = faiss_ehi::data;
using idx_t = faiss::Index::idx_t;
using ehi_cmdline::VisitedPoint;

/// The trained index's documents as flat rows by id, and their leaves.
struct Corpus {
    int d = 0;
    idx_t n = 0, nlist = 0;
    bool ip = true;             ///< inner product (else L2: score = -dist)
    std::vector<float> x;       ///< n x d, row = document id
    std::vector<idx_t> leaf;    ///< the list each document is stored in
    const faiss_ehi::EHITreeQuantizer* tree = nullptr;

    float score(const float* q, const float* v) const {
        return ip ? faiss::fvec_inner_product(q, v, d)
                  : -faiss::fvec_L2sqr(q, v, d);
    }
};

Corpus corpus_of(const faiss::IndexIVF& ivf) {
    Corpus c;
    c.tree = dynamic_cast<const faiss_ehi::EHITreeQuantizer*>(ivf.quantizer);
    if (!c.tree || !dynamic_cast<const faiss::IndexIVFFlat*>(&ivf)) {
        throw std::runtime_error(
                "--index: not an EHI tree over flat lists (EHI<B>x<H>,Flat)");
    }
    if (ivf.metric_type != faiss::METRIC_INNER_PRODUCT &&
        ivf.metric_type != faiss::METRIC_L2) {
        throw std::runtime_error("--index: metric neither IP nor L2");
    }
    c.d = int(ivf.d);
    c.n = ivf.ntotal;
    c.nlist = idx_t(ivf.nlist);
    c.ip = ivf.metric_type == faiss::METRIC_INNER_PRODUCT;
    c.x.assign(size_t(c.n) * c.d, 0.0f);
    c.leaf.assign(size_t(c.n), -1);
    for (idx_t l = 0; l < c.nlist; l++) {
        const size_t size = ivf.invlists->list_size(l);
        faiss::InvertedLists::ScopedCodes codes(ivf.invlists, l);
        faiss::InvertedLists::ScopedIds ids(ivf.invlists, l);
        const float* v = reinterpret_cast<const float*>(codes.get());
        for (size_t j = 0; j < size; j++) {
            const idx_t id = ids[j];
            if (id < 0 || id >= c.n || c.leaf[id] >= 0) {
                throw std::runtime_error(
                        "--index: ids must be 0..ntotal-1, each stored once "
                        "(d2l = 1, added without ids)");
            }
            c.leaf[id] = l;
            std::copy(v + j * c.d, v + (j + 1) * c.d,
                      c.x.begin() + size_t(id) * c.d);
        }
    }
    if (std::find(c.leaf.begin(), c.leaf.end(), idx_t(-1)) != c.leaf.end()) {
        throw std::runtime_error("--index: some ids are in no list");
    }
    return c;
}

/// Ranks of all leaves for each query: by the router, or by the nearest
/// representative. n x nlist, best first; `logp` (router only) the log
/// probabilities in the same order.
std::vector<idx_t> leaf_order(const Corpus& c, idx_t n, const float* q,
                              bool router, std::vector<float>* logp) {
    const idx_t L = c.nlist;
    std::vector<idx_t> order(size_t(n) * L);
    if (router) {
        std::vector<float> p(size_t(n) * L);
        c.tree->tree.route(n, q, L, order.data(), p.data());
        if (logp) {
            logp->resize(p.size());
            for (size_t i = 0; i < p.size(); i++) {
                (*logp)[i] = std::log(std::max(p[i], 1e-30f));
            }
        }
        return order;
    }
    std::vector<std::pair<float, idx_t>> s(static_cast<size_t>(L));
    for (idx_t i = 0; i < n; i++) {
        for (idx_t l = 0; l < L; l++) {
            s[l] = {c.score(q + i * c.d, c.tree->leaf_representatives.data() + l * c.d), l};
        }
        std::sort(s.begin(), s.end(), [](const auto& a, const auto& b) {
            return a.first > b.first;
        });
        for (idx_t l = 0; l < L; l++) {
            order[i * L + l] = s[l].second;
        }
    }
    return order;
}

/// One search variant over explicit lists (document ids per leaf).
struct Variant {
    const std::vector<std::vector<idx_t>>* lists;
    const std::vector<idx_t>* order; ///< leaf_order of the queries
    const std::vector<float>* logp;  ///< with alpha > 0
    float alpha = 0;
};

/// Recall@100 and nDCG@10 with the first `beam` leaves of each query's
/// order, and the fraction of stored entries scanned.
VisitedPoint search_point(const Corpus& c, const fd::RetrievalTask& t,
                          const float* q, const Variant& v, idx_t beam) {
    const idx_t nq = t.nq_test, L = c.nlist;
    const int k = 100;
    std::vector<idx_t> res(size_t(nq) * k, -1);
    size_t scanned = 0;
    std::vector<char> seen(size_t(c.n), 0);
    for (idx_t i = 0; i < nq; i++) {
        std::vector<std::pair<float, idx_t>> cand;
        for (idx_t b = 0; b < beam; b++) {
            const idx_t l = (*v.order)[i * L + b];
            const float prior = v.alpha > 0 ? v.alpha * (*v.logp)[i * L + b] : 0;
            for (idx_t id : (*v.lists)[l]) {
                scanned++;
                if (seen[id]) {
                    continue;
                }
                seen[id] = 1;
                cand.push_back(
                        {c.score(q + i * c.d, c.x.data() + id * c.d) + prior,
                         id});
            }
        }
        for (const auto& e : cand) {
            seen[e.second] = 0;
        }
        const size_t top = std::min<size_t>(k, cand.size());
        std::partial_sort(cand.begin(), cand.begin() + top, cand.end(),
                          [](const auto& a, const auto& b) {
                              return a.first > b.first ||
                                      (a.first == b.first &&
                                       a.second < b.second);
                          });
        for (size_t j = 0; j < top; j++) {
            res[i * k + j] = cand[j].second;
        }
    }
    VisitedPoint p;
    p.nprobe = int(beam);
    p.visited = fd::fraction_visited(scanned, nq, c.n);
    p.metrics["recall@100"] =
            fd::qrels_recall_at_k(t.test_relevant, res.data(), k, 100);
    p.metrics["ndcg@10"] = fd::ndcg_at_k(t.test_relevant, res.data(), k, 10);
    return p;
}

/// The variant's values at the target fractions (beams until the largest
/// target is covered).
std::vector<VisitedPoint> curve(const Corpus& c, const fd::RetrievalTask& t,
                                const float* q, const Variant& v,
                                const std::vector<double>& targets) {
    const double top = *std::max_element(targets.begin(), targets.end());
    std::vector<VisitedPoint> sweep;
    for (idx_t beam = 1; beam <= c.nlist; beam++) {
        sweep.push_back(search_point(c, t, q, v, beam));
        if (sweep.back().visited >= top) {
            break;
        }
    }
    return ehi_cmdline::at_visited(sweep, targets);
}

void print_row(const std::string& name, const std::vector<VisitedPoint>& pts) {
    printf("| %s |", name.c_str());
    for (const auto& p : pts) {
        printf(" %.4f / %.4f |", p.metrics.at("recall@100"),
               p.metrics.at("ndcg@10"));
    }
    printf("\n");
}

/// The held-out training queries as the task's evaluated queries.
void use_heldout_queries(fd::RetrievalTask& t) {
    std::vector<std::pair<int64_t, int64_t>> pairs(t.train_pairs.begin(),
                                                   t.train_pairs.end());
    std::vector<int64_t> held = faiss_ehi::trainer::heldout_queries(
            t.nq_train, pairs, FLAGS_seed, FLAGS_heldout_fraction);
    if (held.empty()) {
        throw std::runtime_error("no held-out query: --heldout_fraction " +
                                 std::to_string(FLAGS_heldout_fraction) +
                                 " of the training queries is none");
    }
    fd::RelevanceLists rel(size_t(t.nq_train));
    for (const auto& p : t.train_pairs) {
        rel[p.first].push_back({p.second, 1});
    }
    t.test_query_texts.clear();
    t.test_query_vecs.clear();
    t.test_relevant.clear();
    for (int64_t qi : held) {
        if (t.is_text) {
            t.test_query_texts.push_back(t.train_query_texts[qi]);
        } else {
            t.test_query_vecs.insert(
                    t.test_query_vecs.end(),
                    t.train_query_vecs.begin() + qi * t.d,
                    t.train_query_vecs.begin() + (qi + 1) * t.d);
        }
        t.test_relevant.push_back(rel[qi]);
    }
    t.nq_test = idx_t(held.size());
}

/// Relevant documents in the exhaustive top 100 whose leaf the router
/// ranks at `beam` or later.
void print_lost(const Corpus& c, const fd::RetrievalTask& t, const float* q,
                const std::vector<idx_t>& router,
                const std::vector<idx_t>& nearest, idx_t beam) {
    const idx_t L = c.nlist;
    int found = 0, lost = 0;
    int by_rank[4] = {0, 0, 0, 0};    // exhaustive rank <10, <30, <60, <100
    int nearest_in = 0;               // their leaf within nearest's beam
    std::vector<std::pair<float, idx_t>> all(size_t(c.n));
    for (idx_t i = 0; i < t.nq_test; i++) {
        for (idx_t id = 0; id < c.n; id++) {
            all[id] = {c.score(q + i * c.d, c.x.data() + id * c.d), id};
        }
        std::partial_sort(all.begin(), all.begin() + std::min<idx_t>(100, c.n),
                          all.end(), [](const auto& a, const auto& b) {
                              return a.first > b.first ||
                                      (a.first == b.first &&
                                       a.second < b.second);
                          });
        for (const auto& rg : t.test_relevant[i]) {
            int r = 0;
            while (r < 100 && r < c.n && all[r].second != rg.first) {
                r++;
            }
            if (r >= 100 || r >= c.n) {
                continue;
            }
            const idx_t l = c.leaf[rg.first];
            auto rank_in = [&](const std::vector<idx_t>& o) {
                return idx_t(std::find(o.begin() + i * L, o.begin() + (i + 1) * L,
                                       l) -
                             (o.begin() + i * L));
            };
            if (rank_in(router) < beam) {
                found++;
                continue;
            }
            lost++;
            by_rank[r < 10 ? 0 : r < 30 ? 1 : r < 60 ? 2 : 3]++;
            nearest_in += rank_in(nearest) < beam;
        }
    }
    printf("\nRelevant documents in the exhaustive top 100: %d inside the "
           "router's first %d leaves, %d outside.\n",
           found, int(beam), lost);
    printf("Those outside, by exhaustive rank: 1-10 %d, 11-30 %d, 31-60 %d, "
           "61-100 %d; inside nearest-representative routing's first %d "
           "leaves: %d.\n",
           by_rank[0], by_rank[1], by_rank[2], by_rank[3], int(beam),
           nearest_in);
}

int run() {
    if (FLAGS_data.empty() || FLAGS_index.empty()) {
        throw std::invalid_argument("--data and --index are required");
    }
    const std::vector<double> targets = ehi_cmdline::parse_double_list(
            FLAGS_visited, "visited", 0, 1, true);
    // --prior and --spill may be empty: that analysis is left out
    const std::vector<double> priors =
            FLAGS_prior.empty() ? std::vector<double>()
                                : ehi_cmdline::parse_double_list(
                                          FLAGS_prior, "prior", 0, INFINITY);
    const std::vector<double> spills =
            FLAGS_spill.empty() ? std::vector<double>()
                                : ehi_cmdline::parse_double_list(
                                          FLAGS_spill, "spill", 0, 0.99);
    if (!(FLAGS_heldout_fraction > 0 && FLAGS_heldout_fraction < 1)) {
        throw std::invalid_argument("--heldout_fraction must be in (0, 1)");
    }
    fd::RetrievalTask task = fd::load_retrieval_task(FLAGS_data);
    if (task.is_knn) {
        throw std::invalid_argument("--data: relevance data needed (beir:DIR "
                                    "or vecs:BASE,QUERIES,PAIRS)");
    }
    use_heldout_queries(task);
    std::unique_ptr<faiss::Index> index(
            faiss_ehi::read_index(FLAGS_index.c_str()));
    std::unique_ptr<faiss_ehi::TextEncoder> text;
    if (task.is_text) {
        text.reset(new faiss_ehi::TextEncoder(faiss_ehi::read_text_encoder(
                (FLAGS_index + ".text").c_str())));
    }
    if (index->ntotal == 0) {
        std::vector<float> xd = ehi_tools::document_inputs(task, text.get());
        index->add(task.nd, xd.data());
    }
    if (index->ntotal != task.nd) {
        throw std::runtime_error("--index holds " +
                                 std::to_string(index->ntotal) +
                                 " vectors, --data " + std::to_string(task.nd) +
                                 " documents");
    }
    const std::vector<float> xq = ehi_tools::stored_vectors(
            *index, task.nq_test,
            ehi_tools::test_query_inputs(task, text.get()));
    const faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(index.get());
    const Corpus c = corpus_of(*ivf);
    const float* q = xq.data();
    LOG(INFO) << task.name << ": " << task.nq_test << " held-out queries, "
              << c.n << " documents in " << c.nlist << " leaves";

    std::vector<float> logp;
    const std::vector<idx_t> router =
            leaf_order(c, task.nq_test, q, true, &logp);
    const std::vector<idx_t> nearest =
            leaf_order(c, task.nq_test, q, false, nullptr);
    std::vector<std::vector<idx_t>> lists(size_t(c.nlist));
    for (idx_t id = 0; id < c.n; id++) {
        lists[c.leaf[id]].push_back(id);
    }

    printf("%s, %ld held-out training queries (seed %lu, fraction %g): "
           "Recall@100 / nDCG@10 at documents visited\n\n| variant |",
           task.name.c_str(), long(task.nq_test),
           (unsigned long)FLAGS_seed, FLAGS_heldout_fraction);
    for (double v : targets) {
        printf(" %g%% |", 100 * v);
    }
    printf("\n|---|");
    for (size_t i = 0; i < targets.size(); i++) {
        printf("---|");
    }
    printf("\n");
    print_row("router (EHI)", curve(c, task, q, {&lists, &router, &logp, 0},
                                    targets));
    print_row("nearest representative",
              curve(c, task, q, {&lists, &nearest, nullptr, 0}, targets));
    for (double a : priors) {
        print_row("leaf prior " + std::to_string(a).substr(0, 5),
                  curve(c, task, q, {&lists, &router, &logp, float(a)},
                        targets));
    }
    if (!spills.empty() && c.nlist > 1) {
        // each document's fit to its own leaf, and the router's next leaf
        std::vector<float> fit(size_t(c.n));
        std::vector<idx_t> doc_order = leaf_order(c, c.n, c.x.data(), true,
                                                  nullptr);
        std::vector<idx_t> next(size_t(c.n));
        for (idx_t id = 0; id < c.n; id++) {
            fit[id] = c.score(c.x.data() + id * c.d,
                              c.tree->leaf_representatives.data() + c.leaf[id] * c.d);
            const idx_t* o = doc_order.data() + id * c.nlist;
            next[id] = o[0] != c.leaf[id] ? o[0] : o[1];
        }
        std::vector<float> sorted = fit;
        std::sort(sorted.begin(), sorted.end());
        for (double share : spills) {
            const size_t cut = size_t(share * double(c.n));
            const float below = cut > 0 ? sorted[std::min(cut, sorted.size() - 1)]
                                        : -INFINITY;
            std::vector<std::vector<idx_t>> spilled = lists;
            for (idx_t id = 0; id < c.n; id++) {
                if (fit[id] < below) {
                    spilled[next[id]].push_back(id);
                }
            }
            print_row("spill " + std::to_string(share).substr(0, 4),
                      curve(c, task, q, {&spilled, &router, &logp, 0},
                            targets));
        }
    }
    if (FLAGS_lost_beam > 0) {
        print_lost(c, task, q, router, nearest,
                   std::min<idx_t>(FLAGS_lost_beam, c.nlist));
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "Routing alternatives on a trained EHI index, on its held-out "
            "training queries.\nUsage: bench_routing_heldout --data beir:DIR "
            "--index FILE --seed S --heldout_fraction F",
            run);
}
