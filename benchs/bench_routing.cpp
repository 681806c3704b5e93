/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_routing: the paper's latency ablation on real data. For each tree
 * shape (B, H) an EHI index (faiss_ehi::index_factory "EHI<B>x<H>,Flat",
 * k-means tree) is built over the documents, and for beams 1 to 64:
 * - the routing time per query (the tree quantizer's search, k = beam)
 *   against a Faiss IndexFlat quantizer over the same number of leaves (the
 *   tree's leaf representatives), which is what IVF-Flat routes with;
 * - the whole search time per query at that beam and the share of it spent
 *   routing.
 * One thread (OpenMP and OpenBLAS), median of --runs runs after a warm-up.
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
#include <vector>

#include <omp.h>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>

#include <faiss_ehi/faiss_ehi.h>

#include "bench_main.h"
#include "contrib/data/retrieval_task.h"
#include "data_loaders.h"

DEFINE_string(data, "glove100", "k-NN data set (fmnist, glove100, synthetic, "
              "vecs:...)");
DEFINE_string(configs, "64x1,8x2,4x3,32x2,16x3,64x2",
              "tree shapes BxH");
DEFINE_string(beams, "1,2,4,8,16,32,64", "beams (nprobe)");
DEFINE_int64(nq, 2000, "queries timed (the first test queries)");
DEFINE_int32(runs, 3, "timed runs per measurement (median)");
DEFINE_string(json, "", "write the table as JSON");

namespace fd = faiss_ehi::data;
using ehi_bench::idx_t;
using ehi_bench::now_s;

namespace {

struct Row {
    int B = 0, H = 0, beam = 0;
    idx_t leaves = 0;
    double ehi_route_us = 0, flat_route_us = 0, search_us = 0;
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
    return ehi_bench::median(t);
}

int run() {
    fd::RetrievalTaskOptions opt;
    opt.max_test_queries = FLAGS_nq;
    opt.knn_train_queries = 1;
    fd::RetrievalTask t = fd::load_retrieval_task(FLAGS_data, opt);
    std::vector<int> beams = ehi_bench::parse_int_list(FLAGS_beams, "beams");
    faiss_ehi::set_tree_trainer(
            std::make_shared<faiss_ehi::KMeansTreeTrainer>());
    const idx_t nq = t.nq_test;
    const float* xq = t.test_query_vecs.data();
    std::vector<Row> rows;
    std::stringstream cs(FLAGS_configs);
    std::string cfg;
    while (std::getline(cs, cfg, ',')) {
        std::string key = "EHI" + cfg + ",Flat";
        ehi_bench::set_num_threads(omp_get_num_procs());
        std::unique_ptr<faiss::Index> index(
                faiss_ehi::index_factory(t.d, key.c_str(), t.metric));
        double t0 = now_s();
        index->train(t.nd, t.doc_vecs.data());
        index->add(t.nd, t.doc_vecs.data());
        LOG(INFO) << key << ": built in " << now_s() - t0 << " s";
        faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(index.get());
        const idx_t L = idx_t(ivf->nlist);
        std::vector<float> reps(size_t(L) * t.d);
        ivf->quantizer->reconstruct_n(0, L, reps.data());
        faiss::IndexFlat flat(t.d, t.metric);
        flat.add(L, reps.data());
        int B = std::stoi(cfg.substr(0, cfg.find('x')));
        int H = std::stoi(cfg.substr(cfg.find('x') + 1));
        ehi_bench::set_num_threads(1);
        for (int beam : beams) {
            if (beam > L) {
                continue;
            }
            std::vector<float> D(size_t(nq) * std::max(beam, 10));
            std::vector<idx_t> I(size_t(nq) * std::max(beam, 10));
            Row r;
            r.B = B;
            r.H = H;
            r.beam = beam;
            r.leaves = L;
            r.ehi_route_us = us_per_query(
                    [&] {
                        ivf->quantizer->search(nq, xq, beam, D.data(),
                                               I.data());
                    },
                    nq);
            r.flat_route_us = us_per_query(
                    [&] { flat.search(nq, xq, beam, D.data(), I.data()); },
                    nq);
            ivf->nprobe = size_t(beam);
            r.search_us = us_per_query(
                    [&] { index->search(nq, xq, 10, D.data(), I.data()); },
                    nq);
            r.share = r.ehi_route_us / r.search_us;
            printf("%dx%d beam %3d: EHI route %8.2f us, flat %8.2f us "
                   "(EHI/flat %.2f), search %8.2f us, routing share %.1f%%\n",
                   B, H, beam, r.ehi_route_us, r.flat_route_us,
                   r.ehi_route_us / r.flat_route_us, r.search_us,
                   100 * r.share);
            fflush(stdout);
            rows.push_back(r);
        }
    }
    printf("\n%s, %lld queries, 1 thread, median of %d runs\n"
           "| B x H | leaves | beam | EHI routing us | IndexFlat us | "
           "EHI / flat | EHI search us | routing share |\n"
           "|---|---|---|---|---|---|---|---|\n",
           t.name.c_str(), (long long)nq, FLAGS_runs);
    for (const Row& r : rows) {
        printf("| %dx%d | %lld | %d | %.2f | %.2f | %.2f | %.2f | %.1f%% |\n",
               r.B, r.H, (long long)r.leaves, r.beam, r.ehi_route_us,
               r.flat_route_us, r.ehi_route_us / r.flat_route_us, r.search_us,
               100 * r.share);
    }
    if (!FLAGS_json.empty()) {
        std::ofstream o(FLAGS_json);
        if (!o) {
            throw std::runtime_error("cannot write " + FLAGS_json);
        }
        o << "{\n  \"data\": \"" << ehi_bench::json_escape(t.name)
          << "\",\n  \"queries\": " << nq << ",\n  \"threads\": 1,\n"
          << "  \"rows\": [";
        for (size_t i = 0; i < rows.size(); i++) {
            const Row& r = rows[i];
            o << (i ? ",\n    " : "\n    ") << "{\"B\": " << r.B
              << ", \"H\": " << r.H << ", \"leaves\": " << r.leaves
              << ", \"beam\": " << r.beam << ", \"ehi_route_us\": "
              << r.ehi_route_us << ", \"flat_route_us\": " << r.flat_route_us
              << ", \"search_us\": " << r.search_us
              << ", \"routing_share\": " << r.share << "}";
        }
        o << "\n  ]\n}\n";
        printf("\nJSON written to %s\n", FLAGS_json.c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_bench::bench_main(
            argc, argv,
            "Routing time per query: EHI tree vs a flat quantizer.\n"
            "Usage: bench_routing --data SPEC [--configs 64x1,8x2] "
            "[--json FILE]",
            run);
}
