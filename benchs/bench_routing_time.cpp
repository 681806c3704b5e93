/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_routing_time: time to route a query to its `beam` best leaves with an
 * EHI tree (EHITree::route) against a flat coarse quantizer
 * (faiss::IndexFlatL2 over the same number of leaves, search k = beam).
 *
 *   bench_routing_time --configs 64x1,8x2,4x3 --beam 4 --d 100 --nq 10000
 *
 * Every tree shape is measured in both node forms (PER_NODE, PAPER) and both
 * beam strategies (BEST_FIRST, LEVEL_BEAM), single-threaded (OpenMP and
 * OpenBLAS set to 1 thread) and with all threads; each time is the median of
 * --runs runs over the whole query batch, after one warm-up run.
 */
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IndexFlat.h>

#include <faiss_ehi/faiss_ehi.h>

#include "cmdline/program_main.h"
#include "cmdline/threads.h"
#include "cmdline/timing.h"
#include "contrib/data/dataset.h"
#include "contrib/data/synthetic.h"

DEFINE_string(configs, "64x1,8x2,4x3",
              "comma-separated tree shapes BxH (flat baseline: B^H leaves)");
DEFINE_int32(beam, 4, "beam (leaves per query); the flat quantizer's k");
DEFINE_int32(d, 100, "dimension");
DEFINE_int32(nq, 10000, "number of queries");
DEFINE_int32(runs, 5, "timed runs per measurement (median reported)");
DEFINE_string(init, "random",
              "tree initialisation: random (EHITree::init_random) or kmeans "
              "(EHITreeKMeansInit on --nb training vectors; the flat "
              "quantizer then holds the tree's leaf centroids)");
DEFINE_string(data, "random",
              "vectors: random (N(0,1)) or synthetic (clustered)");
DEFINE_int32(nb, 20000, "training vectors for --init kmeans");
DEFINE_int32(seed, 1234, "seed");
DEFINE_int32(threads, 0, "threads for the all-threads columns; 0: default");
DEFINE_string(json, "", "optional JSON output file");

namespace {

using idx_t = faiss::Index::idx_t;
using ehi_cmdline::now_s;

struct Row {
    int B = 0, H = 0;
    std::string method; ///< "EHI" or "IndexFlatL2"
    std::string form;   ///< per_node / paper / -
    std::string strategy;
    size_t nparams = 0;
    double us1 = 0;    ///< median us/query, 1 thread
    double usN = 0;    ///< median us/query, all threads
    double ratio1 = 0; ///< us1 / flat us1
    double ratioN = 0;
    double overlap = -1; ///< |leaves ∩ flat leaves| / beam (kmeans init)
};

const char* form_name(faiss_ehi::NodeForm f) {
    return f == faiss_ehi::NodeForm::PAPER ? "paper" : "per_node";
}
const char* strategy_name(faiss_ehi::BeamStrategy s) {
    return s == faiss_ehi::BeamStrategy::LEVEL_BEAM ? "level_beam"
                                                    : "best_first";
}

/// Median us/query of `fn` (which handles the whole batch of nq queries).
template <typename F>
double time_us_per_query(F fn, idx_t nq, int runs) {
    fn(); // warm-up
    std::vector<double> t;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        fn();
        t.push_back((now_s() - t0) * 1e6 / double(nq));
    }
    return ehi_cmdline::median(t);
}

double overlap(const std::vector<idx_t>& a, const std::vector<idx_t>& b,
               idx_t nq, int beam) {
    size_t hits = 0;
    for (idx_t q = 0; q < nq; q++) {
        const idx_t* x = a.data() + size_t(q) * beam;
        const idx_t* y = b.data() + size_t(q) * beam;
        for (int i = 0; i < beam; i++) {
            if (x[i] >= 0 && std::find(y, y + beam, x[i]) != y + beam) {
                hits++;
            }
        }
    }
    return double(hits) / (double(nq) * beam);
}

bool parse_config(const std::string& tok, int* B, int* H) {
    size_t x = tok.find('x');
    if (x == std::string::npos) {
        return false;
    }
    try {
        *B = std::stoi(tok.substr(0, x));
        *H = std::stoi(tok.substr(x + 1));
    } catch (const std::exception&) {
        return false;
    }
    return *B >= 2 && *H >= 1;
}

std::vector<float> make_vectors(idx_t n, uint64_t seed) {
    if (FLAGS_data == "synthetic") {
        // queries and training data from the same clustered distribution
        faiss_ehi::data::Dataset ds = faiss_ehi::data::make_synthetic(
                FLAGS_d, n, 0, 1000, 0.5f, uint64_t(FLAGS_seed));
        (void)seed;
        return ds.xb;
    }
    return faiss_ehi::data::random_gaussian(n, FLAGS_d, seed);
}

int run() {
    const int nt_all =
            FLAGS_threads > 0 ? FLAGS_threads : omp_get_max_threads();
    if (FLAGS_data != "random" && FLAGS_data != "synthetic") {
        LOG(ERROR) << "--data must be random or synthetic";
        return 2;
    }
    if (FLAGS_init != "random" && FLAGS_init != "kmeans") {
        LOG(ERROR) << "--init must be random or kmeans";
        return 2;
    }
    std::vector<std::pair<int, int>> configs;
    {
        std::stringstream ss(FLAGS_configs);
        std::string tok;
        while (std::getline(ss, tok, ',')) {
            int B, H;
            if (!parse_config(tok, &B, &H)) {
                LOG(ERROR) << "bad config '" << tok << "' (want BxH)";
                return 2;
            }
            configs.emplace_back(B, H);
        }
    }
    const idx_t nq = FLAGS_nq;
    const int d = FLAGS_d;
    const int beam = FLAGS_beam;

    // Queries: for synthetic data, the tail of one clustered draw (so that
    // training vectors and queries are disjoint but alike).
    std::vector<float> xq, xt;
    if (FLAGS_data == "synthetic") {
        std::vector<float> all = make_vectors(nq + FLAGS_nb, FLAGS_seed);
        xt.assign(all.begin(), all.begin() + size_t(FLAGS_nb) * d);
        xq.assign(all.begin() + size_t(FLAGS_nb) * d, all.end());
    } else {
        xq = make_vectors(nq, FLAGS_seed + 1);
        if (FLAGS_init == "kmeans") {
            xt = make_vectors(FLAGS_nb, FLAGS_seed + 2);
        }
    }
    LOG(INFO) << "data " << FLAGS_data << ", d=" << d << ", nq=" << nq
              << ", init " << FLAGS_init << ", beam " << beam << ", " << nt_all
              << " threads for the all-threads columns"
              << ", OMP_WAIT_POLICY="
              << (getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY")
                                            : "unset")
              << (ehi_cmdline::running_on_openblas() ? ", OpenBLAS" : "");

    std::vector<Row> rows;
    std::vector<idx_t> leaves(size_t(nq) * beam);
    std::vector<float> probs(size_t(nq) * beam);
    std::vector<float> fdis(size_t(nq) * beam);

    for (auto [B, H] : configs) {
        idx_t nleaves = 1;
        for (int h = 0; h < H; h++) {
            nleaves *= B;
        }
        if (beam > nleaves) {
            LOG(WARNING) << B << "x" << H << ": beam " << beam << " > "
                         << nleaves << " leaves; skipped";
            continue;
        }
        double t_cfg = now_s();
        std::vector<float> centroids; // flat quantizer's content
        std::vector<std::unique_ptr<faiss_ehi::EHITree>> trees;
        // per tree (kmeans init): its own leaf centroids' exact top-beam
        std::vector<std::vector<idx_t>> own_flat_labels;
        for (auto form :
             {faiss_ehi::NodeForm::PER_NODE, faiss_ehi::NodeForm::PAPER}) {
            auto tree = std::make_unique<faiss_ehi::EHITree>(B, H, d, form);
            if (FLAGS_init == "random") {
                tree->init_random(uint64_t(FLAGS_seed));
            } else {
                faiss_ehi::EHITreeKMeansInit km;
                km.seed = FLAGS_seed;
                std::vector<float> lc;
                km.init(*tree, FLAGS_nb, xt.data(), faiss::METRIC_L2, &lc);
                if (lc.size() != size_t(nleaves) * d) {
                    LOG(ERROR) << "EHITreeKMeansInit returned " << lc.size()
                               << " leaf-centroid floats, expected "
                               << nleaves * d;
                    return 1;
                }
                if (form == faiss_ehi::NodeForm::PER_NODE) {
                    centroids = lc;
                }
                // The forms' k-means differ (hierarchical vs residual), so
                // each tree is compared with its own leaves' exact top-beam.
                faiss::IndexFlatL2 own(d);
                own.add(nleaves, lc.data());
                std::vector<idx_t> lab(size_t(nq) * beam);
                own.search(nq, xq.data(), beam, fdis.data(), lab.data());
                own_flat_labels.push_back(std::move(lab));
            }
            trees.push_back(std::move(tree));
        }
        if (centroids.empty()) {
            centroids = faiss_ehi::data::random_gaussian(nleaves, d,
                                                         FLAGS_seed + 7);
        }
        if (centroids.size() != size_t(nleaves) * d) {
            LOG(ERROR) << "leaf centroids have " << centroids.size()
                       << " floats, expected " << nleaves * d;
            return 1;
        }

        // flat baseline
        faiss::IndexFlatL2 flat(d);
        flat.add(nleaves, centroids.data());
        std::vector<idx_t> flat_labels(size_t(nq) * beam);
        auto flat_fn = [&]() {
            flat.search(nq, xq.data(), beam, fdis.data(), flat_labels.data());
        };
        Row fr;
        fr.B = B;
        fr.H = H;
        fr.method = "IndexFlatL2";
        fr.form = "-";
        fr.strategy = "-";
        fr.nparams = size_t(nleaves) * d;
        ehi_cmdline::set_num_threads(1);
        fr.us1 = time_us_per_query(flat_fn, nq, FLAGS_runs);
        ehi_cmdline::set_num_threads(nt_all);
        fr.usN = time_us_per_query(flat_fn, nq, FLAGS_runs);
        fr.ratio1 = fr.ratioN = 1;

        for (size_t ti = 0; ti < trees.size(); ti++) {
            auto& tree = trees[ti];
            for (auto strat : {faiss_ehi::BeamStrategy::BEST_FIRST,
                               faiss_ehi::BeamStrategy::LEVEL_BEAM}) {
                Row r;
                r.B = B;
                r.H = H;
                r.method = "EHI";
                r.form = form_name(tree->form);
                r.strategy = strategy_name(strat);
                r.nparams = tree->nparams();
                auto fn = [&]() {
                    tree->route(nq, xq.data(), beam, leaves.data(),
                                probs.data(), int(strat));
                };
                ehi_cmdline::set_num_threads(1);
                r.us1 = time_us_per_query(fn, nq, FLAGS_runs);
                ehi_cmdline::set_num_threads(nt_all);
                r.usN = time_us_per_query(fn, nq, FLAGS_runs);
                r.ratio1 = r.us1 / fr.us1;
                r.ratioN = r.usN / fr.usN;
                if (FLAGS_init == "kmeans") {
                    r.overlap = overlap(leaves, own_flat_labels[ti], nq, beam);
                }
                rows.push_back(r);
            }
        }
        rows.push_back(fr);
        LOG(INFO) << B << "x" << H << " done in " << now_s() - t_cfg << " s";
    }

    printf("\nrouting time per query: d=%d, nq=%ld, beam=%d, init %s, data "
           "%s, median of %d runs\n",
           d, long(nq), beam, FLAGS_init.c_str(), FLAGS_data.c_str(),
           FLAGS_runs);
    printf("ratio = time / IndexFlatL2 time at the same thread count "
           "(< 1: EHI faster)%s\n",
           FLAGS_init == "kmeans"
                   ? ";\noverlap = share of the exact top-beam leaves (nearest "
                     "leaf centroids of that tree's k-means) that the tree "
                     "finds"
                   : "");
    printf("%-6s %-12s %-9s %-11s %9s %10s %7s %10s %7s", "BxH", "method",
           "form", "strategy", "params", "us/q 1t", "ratio", "us/q Nt",
           "ratio");
    if (FLAGS_init == "kmeans") {
        printf(" %8s", "overlap");
    }
    printf("\n");
    for (const Row& r : rows) {
        std::string shape = std::to_string(r.B) + "x" + std::to_string(r.H);
        printf("%-6s %-12s %-9s %-11s %9zu %10.3f %7.3f %10.3f %7.3f",
               shape.c_str(), r.method.c_str(), r.form.c_str(),
               r.strategy.c_str(), r.nparams, r.us1, r.ratio1, r.usN, r.ratioN);
        if (FLAGS_init == "kmeans") {
            if (r.overlap >= 0) {
                printf(" %8.4f", r.overlap);
            } else {
                printf(" %8s", "-");
            }
        }
        printf("\n");
    }
    printf("(1t = 1 thread, Nt = %d threads)\n", nt_all);
    fflush(stdout);

    if (!FLAGS_json.empty()) {
        std::ofstream o(FLAGS_json);
        if (!o) {
            throw std::runtime_error("cannot write " + FLAGS_json);
        }
        o.precision(8);
        o << "{\n  \"d\": " << d << ", \"nq\": " << nq << ", \"beam\": " << beam
          << ", \"runs\": " << FLAGS_runs << ", \"init\": \"" << FLAGS_init
          << "\", \"data\": \"" << FLAGS_data
          << "\", \"threads_all\": " << nt_all << ",\n  \"rows\": [\n";
        for (size_t i = 0; i < rows.size(); i++) {
            const Row& r = rows[i];
            o << "    {\"B\": " << r.B << ", \"H\": " << r.H
              << ", \"method\": \"" << r.method << "\", \"form\": \"" << r.form
              << "\", \"strategy\": \"" << r.strategy
              << "\", \"nparams\": " << r.nparams
              << ", \"us_per_query_1t\": " << r.us1
              << ", \"ratio_1t\": " << r.ratio1
              << ", \"us_per_query_all\": " << r.usN
              << ", \"ratio_all\": " << r.ratioN;
            if (r.overlap >= 0) {
                o << ", \"overlap_with_flat\": " << r.overlap;
            }
            o << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
        }
        o << "  ]\n}\n";
        LOG(INFO) << "JSON written to " << FLAGS_json;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "routing time per query: EHI tree vs IndexFlatL2 quantizer", run);
}
