/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_routing: the paper's latency ablation on real data. For each tree
 * shape (B, H) an EHI index (faiss_ehi::index_factory "EHI<B>x<H>,Flat",
 * KMeansTreeTrainer: flat k-means leaves, GROUPED routing) is built over
 * the documents, and for beams 1 to 64 the routing time per query (a
 * coarse quantizer's search, k = beam, distances included) of:
 * - the EHI tree with the BEST_FIRST and the GROUPED beam strategy (each
 *   forced per call with SearchParametersEHITree::strategy; GROUPED only
 *   for per-node trees), and with the tree's own strategy, the one its
 *   searches use;
 * - a Faiss IndexFlat over the same L leaves (the tree's leaf
 *   representatives), which is what IVF-Flat routes with;
 * - a Faiss IndexHNSWFlat (M = 32) over the same L leaves, IVF<L>_HNSW32's
 *   quantizer, at efSearch = max(2 beam, 64) (bench_qps's rule), with the
 *   share of IndexFlat's top-beam lists it returns (its list recall);
 * then the whole EHI search time per query at that beam and the share of
 * it spent routing. One thread (OpenMP and OpenBLAS), median of --runs
 * runs after a warm-up.
 *
 * Usage: bench_routing --data SPEC [--configs 64x1,8x2] [--json FILE]
 */

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include <omp.h>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>

#include <faiss_ehi/faiss_ehi.h>

#include "cmdline/flag_lists.h"
#include "cmdline/json.h"
#include "cmdline/program_main.h"
#include "cmdline/threads.h"
#include "cmdline/timing.h"
#include "contrib/data/retrieval_task.h"

DEFINE_string(data, "glove100",
              "k-NN data set (fmnist, glove100, synthetic, "
              "vecs:...)");
DEFINE_string(configs, "64x1,8x2,4x3,32x2,16x3,64x2", "tree shapes BxH");
DEFINE_string(beams, "1,2,4,8,16,32,64", "beams (nprobe)");
DEFINE_int64(nq, 2000, "queries timed (the first test queries)");
DEFINE_int32(runs, 3, "timed runs per measurement (median)");
DEFINE_string(json, "", "write the table as JSON");

namespace fd = faiss_ehi::data;
using idx_t = faiss::Index::idx_t;
using ehi_cmdline::json_number;
using ehi_cmdline::now_s;
using faiss_ehi::BeamStrategy;

namespace {

/// HNSW quantizer's efSearch for a beam, as bench_qps sets it.
int hnsw_ef(int beam) {
    return std::max(2 * beam, 64);
}

const char* strategy_name(BeamStrategy s) {
    switch (s) {
        case BeamStrategy::BEST_FIRST:
            return "BEST_FIRST";
        case BeamStrategy::LEVEL_BEAM:
            return "LEVEL_BEAM";
        case BeamStrategy::GROUPED:
            return "GROUPED";
    }
    return "?";
}

struct Row {
    int B = 0, H = 0, beam = 0;
    idx_t leaves = 0;
    std::string strategy;    ///< the tree's own
    double ehi_route_us = 0; ///< the tree's own strategy
    double best_first_us = 0;
    double grouped_us = NAN; ///< NaN: not a per-node tree
    double flat_route_us = 0;
    double hnsw_route_us = 0;
    int hnsw_ef = 0;
    double hnsw_list_recall = 0; ///< share of IndexFlat's lists returned
    double search_us = 0;
    double share = 0; ///< ehi_route_us / search_us
};

template <typename F>
double us_per_query(F fn, idx_t nq) {
    fn();
    std::vector<double> t;
    for (int r = 0; r < FLAGS_runs; r++) {
        double t0 = now_s();
        fn();
        t.push_back((now_s() - t0) * 1e6 / double(nq));
    }
    return ehi_cmdline::median(t);
}

/// Share of the reference's lists (nq x k, -1 ignored) found in `got`.
double list_recall(idx_t nq, int k, const idx_t* ref, const idx_t* got) {
    size_t hits = 0, total = 0;
    for (idx_t q = 0; q < nq; q++) {
        std::unordered_set<idx_t> g(got + size_t(q) * k,
                                    got + size_t(q + 1) * k);
        for (int j = 0; j < k; j++) {
            idx_t l = ref[size_t(q) * k + j];
            if (l >= 0) {
                total++;
                hits += g.count(l);
            }
        }
    }
    return total ? double(hits) / double(total) : NAN;
}

int run() {
    fd::RetrievalTaskOptions opt;
    opt.max_test_queries = FLAGS_nq;
    opt.knn_train_queries = 1;
    fd::RetrievalTask t = fd::load_retrieval_task(FLAGS_data, opt);
    std::vector<int> beams = ehi_cmdline::parse_int_list(FLAGS_beams, "beams");
    faiss_ehi::set_tree_trainer(
            std::make_shared<faiss_ehi::KMeansTreeTrainer>());
    const idx_t nq = t.nq_test;
    const float* xq = t.test_query_vecs.data();
    std::vector<Row> rows;
    std::stringstream cs(FLAGS_configs);
    std::string cfg;
    while (std::getline(cs, cfg, ',')) {
        std::string key = "EHI" + cfg + ",Flat";
        ehi_cmdline::set_num_threads(omp_get_num_procs());
        std::unique_ptr<faiss::Index> index(
                faiss_ehi::index_factory(t.d, key.c_str(), t.metric));
        double t0 = now_s();
        index->train(t.nd, t.doc_vecs.data());
        index->add(t.nd, t.doc_vecs.data());
        LOG(INFO) << key << ": built in " << now_s() - t0 << " s";
        faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(index.get());
        auto* tq = dynamic_cast<faiss_ehi::EHITreeQuantizer*>(ivf->quantizer);
        FAISS_THROW_IF_NOT_MSG(tq, "bench_routing: not an EHI tree");
        const idx_t L = idx_t(ivf->nlist);
        std::vector<float> reps(size_t(L) * t.d);
        ivf->quantizer->reconstruct_n(0, L, reps.data());
        faiss::IndexFlat flat(t.d, t.metric);
        flat.add(L, reps.data());
        faiss::IndexHNSWFlat hnsw(t.d, 32, t.metric);
        hnsw.add(L, reps.data()); // graph built with all threads
        const BeamStrategy own = tq->tree.strategy;
        const bool per_node = tq->tree.form == faiss_ehi::NodeForm::PER_NODE;
        LOG(INFO) << key << ": " << L << " leaves, tree strategy "
                  << strategy_name(own);
        int B = std::stoi(cfg.substr(0, cfg.find('x')));
        int H = std::stoi(cfg.substr(cfg.find('x') + 1));
        ehi_cmdline::set_num_threads(1);
        for (int beam : beams) {
            if (beam > L) {
                continue;
            }
            const size_t sz = size_t(nq) * std::max(beam, 10);
            std::vector<float> D(sz);
            std::vector<idx_t> I(sz), I_flat(sz), I_hnsw(sz);
            Row r;
            r.B = B;
            r.H = H;
            r.beam = beam;
            r.leaves = L;
            r.strategy = strategy_name(own);
            auto tree_us = [&](BeamStrategy s) {
                faiss_ehi::SearchParametersEHITree sp;
                sp.strategy = int(s);
                return us_per_query(
                        [&] {
                            tq->search(nq, xq, beam, D.data(), I.data(), &sp);
                        },
                        nq);
            };
            r.best_first_us = tree_us(BeamStrategy::BEST_FIRST);
            if (per_node) {
                r.grouped_us = tree_us(BeamStrategy::GROUPED);
            }
            r.ehi_route_us = own == BeamStrategy::BEST_FIRST ? r.best_first_us
                    : own == BeamStrategy::GROUPED           ? r.grouped_us
                                                             : tree_us(own);
            r.flat_route_us = us_per_query(
                    [&] { flat.search(nq, xq, beam, D.data(), I_flat.data()); },
                    nq);
            r.hnsw_ef = hnsw_ef(beam);
            hnsw.hnsw.efSearch = r.hnsw_ef;
            r.hnsw_route_us = us_per_query(
                    [&] { hnsw.search(nq, xq, beam, D.data(), I_hnsw.data()); },
                    nq);
            r.hnsw_list_recall =
                    list_recall(nq, beam, I_flat.data(), I_hnsw.data());
            ivf->nprobe = size_t(beam);
            r.search_us = us_per_query(
                    [&] { index->search(nq, xq, 10, D.data(), I.data()); }, nq);
            r.share = r.ehi_route_us / r.search_us;
            printf("%dx%d beam %3d: EHI route %s %8.2f us, BEST_FIRST %8.2f "
                   "us, GROUPED %8.2f us, flat %8.2f us, HNSW32 (ef %d) "
                   "%8.2f us (list recall %.3f), search %8.2f us, routing "
                   "share %.1f%%\n",
                   B, H, beam, r.strategy.c_str(), r.ehi_route_us,
                   r.best_first_us, r.grouped_us, r.flat_route_us, r.hnsw_ef,
                   r.hnsw_route_us, r.hnsw_list_recall, r.search_us,
                   100 * r.share);
            fflush(stdout);
            rows.push_back(r);
        }
    }
    printf("\n%s, %lld queries, 1 thread, median of %d runs; routing us per "
           "query; ratios to IndexFlat over the same leaves; HNSW32 at "
           "efSearch max(2 beam, 64)\n"
           "| B x H | leaves | beam | tree strategy | BEST_FIRST us | "
           "GROUPED us | IndexFlat us | HNSW32 us | HNSW list recall | "
           "GROUPED / flat | HNSW / flat | EHI search us | routing share |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
           t.name.c_str(), (long long)nq, FLAGS_runs);
    auto cell = [](double v, const char* fmt) {
        char buf[32];
        if (std::isfinite(v)) {
            snprintf(buf, sizeof(buf), fmt, v);
        } else {
            snprintf(buf, sizeof(buf), "-");
        }
        return std::string(buf);
    };
    for (const Row& r : rows) {
        printf("| %dx%d | %lld | %d | %s | %.2f | %s | %.2f | %.2f | %.3f | "
               "%s | %.2f | %.2f | %.1f%% |\n",
               r.B, r.H, (long long)r.leaves, r.beam, r.strategy.c_str(),
               r.best_first_us, cell(r.grouped_us, "%.2f").c_str(),
               r.flat_route_us, r.hnsw_route_us, r.hnsw_list_recall,
               cell(r.grouped_us / r.flat_route_us, "%.2f").c_str(),
               r.hnsw_route_us / r.flat_route_us, r.search_us, 100 * r.share);
    }
    if (!FLAGS_json.empty()) {
        std::ofstream o(FLAGS_json);
        if (!o) {
            throw std::runtime_error("cannot write " + FLAGS_json);
        }
        o << "{\n  \"data\": \"" << ehi_cmdline::json_escape(t.name)
          << "\",\n  \"queries\": " << nq << ",\n  \"threads\": 1,\n"
          << "  \"rows\": [";
        for (size_t i = 0; i < rows.size(); i++) {
            const Row& r = rows[i];
            o << (i ? ",\n    " : "\n    ") << "{\"B\": " << r.B
              << ", \"H\": " << r.H << ", \"leaves\": " << r.leaves
              << ", \"beam\": " << r.beam << ", \"strategy\": \"" << r.strategy
              << "\", \"ehi_route_us\": " << json_number(r.ehi_route_us)
              << ", \"best_first_route_us\": " << json_number(r.best_first_us)
              << ", \"grouped_route_us\": " << json_number(r.grouped_us)
              << ", \"flat_route_us\": " << json_number(r.flat_route_us)
              << ", \"hnsw_route_us\": " << json_number(r.hnsw_route_us)
              << ", \"hnsw_ef\": " << r.hnsw_ef
              << ", \"hnsw_list_recall\": " << json_number(r.hnsw_list_recall)
              << ", \"search_us\": " << json_number(r.search_us)
              << ", \"routing_share\": " << json_number(r.share) << "}";
        }
        o << "\n  ]\n}\n";
        printf("\nJSON written to %s\n", FLAGS_json.c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "Routing time per query: EHI tree (BEST_FIRST, GROUPED) vs "
            "IndexFlat and IndexHNSWFlat quantizers.\n"
            "Usage: bench_routing --data SPEC [--configs 64x1,8x2] "
            "[--json FILE]",
            run);
}
