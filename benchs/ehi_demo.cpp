/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * ehi_demo: an EHI tree index (faiss_ehi::index_factory "EHI<B>x<H>") against
 * Faiss IVF-Flat with the same number of lists (k-means), compared at equal
 * documents visited (docs/DESIGN.md, "Measuring").
 *
 *   ehi_demo --data fmnist --B 16 --H 2 --nq 10000 --plot ehi_demo.png
 *
 * For each method and nprobe (the beam, for EHI) it reports the fraction of
 * the base scanned (faiss::indexIVF_stats.ndis / (nq * ntotal)), recall@k of
 * the exact k nearest neighbours (IndexFlatL2), the routing time per query
 * (the coarse quantizer's search alone) and the total search time per query;
 * then each method's recall interpolated at 1%, 2% and 5% visited, and a PNG
 * plot of recall against % visited (gnuplot).
 */
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>
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

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>

#include <faiss_ehi/faiss_ehi.h>

#ifdef FAISS_EHI_WITH_TRAINER
#include <faiss_ehi/trainer/TorchTreeTrainer.h>
#endif

#include "cmdline/flag_lists.h"
#include "cmdline/index_stats.h"
#include "cmdline/json.h"
#include "cmdline/plot_curves.h"
#include "cmdline/program_main.h"
#include "cmdline/threads.h"
#include "cmdline/timing.h"
#include "cmdline/visited_sweep.h"
#include "contrib/data/dataset.h"
#include "contrib/data/fashion_mnist.h"
#include "contrib/data/ground_truth.h"
#include "contrib/data/metrics.h"
#include "contrib/data/retrieval_task.h"
#include "contrib/data/synthetic.h"

DEFINE_string(data, "fmnist",
              "data set: fmnist (Debian dataset-fashion-mnist), synthetic, "
              "or any k-NN spec of faiss_ehi::data::load_retrieval_task "
              "(glove100[:DIR], vecs:BASE[,QUERIES]); the latter use the "
              "task's test queries, first --nq of them");
DEFINE_string(fmnist_dir, faiss_ehi::data::kFashionMnistDir,
              "directory of the Fashion-MNIST IDX files");
DEFINE_int32(B, 16, "EHI branching factor");
DEFINE_int32(H, 2, "EHI height; the IVF baseline gets B^H lists");
DEFINE_int32(nq, 10000, "number of queries (first nq of the query set)");
DEFINE_int32(k, 10, "recall@k against the exact k nearest neighbours");
DEFINE_string(plot, "ehi_demo.png", "PNG plot file (empty: no plot)");
DEFINE_string(json, "", "optional JSON output file");
DEFINE_int32(threads, 0, "OpenMP (and OpenBLAS) threads; 0: default");
DEFINE_string(nprobes, "",
              "comma-separated nprobe values (default: 1..8, then about "
              "x1.25 steps up to --max_visited)");
DEFINE_double(max_visited, 0.06,
              "stop a method's sweep once its visited fraction exceeds this");
DEFINE_string(ehi_node_form, "",
              "EHI node form: empty (factory default), node or paper");
DEFINE_string(ehi_strategy, "",
              "EHI beam: empty keeps the trained tree's own; best_first, "
              "level_beam or grouped");
DEFINE_string(ehi_assign, "probability",
              "EHI leaf of each added vector: probability (the tree's), "
              "nearest (nearest leaf representative) or soar");
DEFINE_int32(d2l, 1, "EHI: leaves per added vector (documents to leaves)");
DEFINE_int32(kmeans_refine, 0,
             "Lloyd iterations over all leaves after the hierarchical "
             "k-means of the EHI tree (EHITreeKMeansInit::leaf_refine_iters)");
DEFINE_string(trainer, "kmeans",
              "EHI tree trainer: kmeans (built in) or torch (the LibTorch "
              "drop-in: k-means start, then learned query routing)");
DEFINE_double(routing_balance, 0.0,
              "--trainer torch: weight of the balance term");
DEFINE_int32(routing_epochs, 10, "--trainer torch: epochs of routing training");
DEFINE_bool(flat_leaves, true,
            "per-node trees: flat k-means leaves in "
            "balanced groups with GROUPED routing (false: nested k-means)");
DEFINE_int32(heldout_queries, 0,
             "also report recall at equal visited on "
             "this many training vectors used as queries (0: none)");
DEFINE_bool(calibrate, true,
            "flat-leaf trees: probe calibration (size "
            "penalty, group expansion)");
DEFINE_int32(probe_epochs, 20, "--trainer torch: learned-probing epochs");
DEFINE_double(probe_lr, 2e-3, "--trainer torch: learned-probing Adam rate");
DEFINE_int32(probe_k, 10, "--trainer torch: neighbours per training query");
DEFINE_int32(probe_queries, 10000,
             "--trainer torch: training vectors used as queries");
DEFINE_int32(kmeans_niter, 20, "k-means iterations of the EHI tree trainer");
DEFINE_int32(seed, 1234, "seed (tree k-means and synthetic data)");
DEFINE_int32(syn_d, 64, "synthetic: dimension");
DEFINE_int32(syn_nb, 100000, "synthetic: base size");
DEFINE_int32(syn_nq, 10000, "synthetic: query set size");
DEFINE_int32(syn_nclusters, 1000, "synthetic: number of Gaussian clusters");
DEFINE_double(syn_spread, 0.5, "synthetic: per-coordinate noise std");

namespace {

using idx_t = faiss::Index::idx_t;
using ehi_cmdline::now_s;

struct Point {
    int nprobe = 0;
    double visited = 0;       ///< ndis / (nq * ntotal)
    double visited_lists = 0; ///< from the quantizer's lists, cross-check
    double recall = 0;
    double route_us = 0;  ///< quantizer->search per query
    double search_us = 0; ///< index->search per query
};

struct Method {
    std::string name;
    std::string factory;
    std::unique_ptr<faiss::Index> index;
    faiss::IndexIVF* ivf = nullptr;
    double train_s = 0, add_s = 0;
    std::vector<Point> points;
    // list balance
    size_t nonempty = 0, max_list = 0;
    double imbalance = 0;
};

void build(Method& m, const faiss_ehi::data::Dataset& ds) {
    double t0 = now_s();
    LOG(INFO) << m.name << ": training on " << ds.nb << " vectors";
    m.index->train(ds.nb, ds.xb.data());
    m.train_s = now_s() - t0;
    LOG(INFO) << m.name << ": trained in " << m.train_s << " s; adding";
    t0 = now_s();
    m.index->add(ds.nb, ds.xb.data());
    m.add_s = now_s() - t0;
    LOG(INFO) << m.name << ": added in " << m.add_s << " s";
    m.ivf = faiss::ivflib::extract_index_ivf(m.index.get());
    ehi_cmdline::LeafLoad load = ehi_cmdline::leaf_load(*m.index);
    m.nonempty = load.nlist - load.empty;
    m.max_list = load.largest;
    m.imbalance = load.expected_over_ideal;
}

void print_header() {
    printf("%-12s %6s %9s %9s %9s %11s %11s %7s\n", "method", "nprobe",
           "visited%", "lists%", "recall", "route_us/q", "search_us/q",
           "route%");
}

void print_point(const Method& m, const Point& p) {
    printf("%-12s %6d %9.3f %9.3f %9.4f %11.2f %11.2f %6.1f%%\n",
           m.name.c_str(), p.nprobe, 100 * p.visited, 100 * p.visited_lists,
           p.recall, p.route_us, p.search_us,
           p.search_us > 0 ? 100 * p.route_us / p.search_us : 0.0);
    fflush(stdout);
}

void sweep(Method& m, const faiss_ehi::data::Dataset& ds,
           const std::vector<idx_t>& gt, int k,
           const std::vector<int>& nprobes) {
    const idx_t nq = ds.nq;
    const double ntotal = double(m.index->ntotal);
    std::vector<float> D(size_t(nq) * k);
    std::vector<idx_t> I(size_t(nq) * k);
    bool warned = false;
    double t_start = now_s();
    {
        // warm-up (thread pools, first-touch allocations) before timing
        idx_t nw = std::min<idx_t>(nq, 256);
        idx_t kw = std::min<idx_t>(k, idx_t(m.ivf->nlist));
        std::vector<float> wd(size_t(nw) * kw);
        std::vector<idx_t> wi(size_t(nw) * kw);
        m.ivf->quantizer->search(nw, ds.xq.data(), kw, wd.data(), wi.data());
    }
    for (int np : nprobes) {
        if (np <= 0 || size_t(np) > m.ivf->nlist) {
            continue;
        }
        Point p;
        p.nprobe = np;
        m.ivf->nprobe = np;

        // Routing alone: the coarse quantizer's search with k = nprobe.
        std::vector<float> qd(size_t(nq) * np);
        std::vector<idx_t> qi(size_t(nq) * np);
        double t0 = now_s();
        m.ivf->quantizer->search(nq, ds.xq.data(), np, qd.data(), qi.data());
        p.route_us = (now_s() - t0) * 1e6 / nq;
        double lists_total = 0;
        for (size_t i = 0; i < qi.size(); i++) {
            if (qi[i] >= 0) {
                lists_total += double(m.ivf->invlists->list_size(qi[i]));
            }
        }
        p.visited_lists = lists_total / (double(nq) * ntotal);

        faiss::indexIVF_stats.reset();
        t0 = now_s();
        m.index->search(nq, ds.xq.data(), k, D.data(), I.data());
        p.search_us = (now_s() - t0) * 1e6 / nq;
        p.visited = double(faiss::indexIVF_stats.ndis) / (double(nq) * ntotal);
        if (!warned &&
            std::fabs(p.visited - p.visited_lists) >
                    0.01 * std::max(p.visited, p.visited_lists)) {
            LOG(WARNING) << m.name << " nprobe " << np
                         << ": indexIVF_stats.ndis gives " << 100 * p.visited
                         << "% visited but the quantizer's lists give "
                         << 100 * p.visited_lists << "%";
            warned = true;
        }
        p.recall = faiss_ehi::data::knn_recall_at_k(nq, gt.data(), k, I.data(),
                                                    k, k);
        m.points.push_back(p);
        print_point(m, p);
        if (p.visited > FLAGS_max_visited && FLAGS_nprobes.empty()) {
            break;
        }
    }
    LOG(INFO) << m.name << ": sweep took " << now_s() - t_start << " s";
}

double visited_of(const Point& p) {
    // ndis is the documented measure; fall back to the lists' sizes if the
    // stats stayed at zero (an index that does not report them).
    return p.visited > 0 ? p.visited : p.visited_lists;
}

/// recall@k against % visited, one curve per method.
bool make_plot(const std::vector<Method*>& methods, const std::string& file,
               int k, const std::string& title) {
    ehi_cmdline::Panel panel; // one panel: the figure's title names it
    panel.xlabel = "% of documents visited (log scale)";
    panel.ylabel = "recall@" + std::to_string(k);
    panel.y_min = 0;
    panel.y_max = 1;
    for (const Method* m : methods) {
        ehi_cmdline::Curve c;
        c.name = m->name;
        for (const Point& p : m->points) {
            c.x.push_back(100 * visited_of(p));
            c.y.push_back(p.recall);
        }
        panel.curves.push_back(std::move(c));
    }
    printf("\n");
    if (!ehi_cmdline::plot_panels(file, title, {panel})) {
        return false;
    }
    printf("plot written to %s\n", file.c_str());
    return true;
}

void write_json(const std::string& file, const faiss_ehi::data::Dataset& ds,
                const std::vector<Method*>& methods,
                const std::vector<double>& targets,
                const std::vector<std::vector<double>>& interp, double gt_s) {
    std::ofstream o(file);
    if (!o) {
        throw std::runtime_error("cannot write " + file);
    }
    o.precision(8);
    o << "{\n  \"data\": \"" << ehi_cmdline::json_escape(ds.name) << "\",\n"
      << "  \"d\": " << ds.d << ", \"nb\": " << ds.nb << ", \"nq\": " << ds.nq
      << ", \"k\": " << FLAGS_k << ",\n"
      << "  \"B\": " << FLAGS_B << ", \"H\": " << FLAGS_H
      << ", \"threads\": " << omp_get_max_threads()
      << ", \"ground_truth_s\": " << gt_s << ",\n"
      << "  \"ehi_strategy\": \""
      << ehi_cmdline::json_escape(FLAGS_ehi_strategy)
      << "\",\n  \"faiss_ehi_version\": \"" << faiss_ehi::version()
      << "\",\n  \"methods\": [\n";
    for (size_t i = 0; i < methods.size(); i++) {
        const Method& m = *methods[i];
        o << "    {\"name\": \"" << ehi_cmdline::json_escape(m.name)
          << "\", \"factory\": \"" << ehi_cmdline::json_escape(m.factory)
          << "\", \"nlist\": " << m.ivf->nlist << ", \"train_s\": " << m.train_s
          << ", \"add_s\": " << m.add_s
          << ", \"nonempty_lists\": " << m.nonempty
          << ", \"max_list\": " << m.max_list
          << ", \"imbalance_factor\": " << m.imbalance << ",\n"
          << "     \"points\": [\n";
        for (size_t j = 0; j < m.points.size(); j++) {
            const Point& p = m.points[j];
            o << "       {\"nprobe\": " << p.nprobe
              << ", \"visited\": " << p.visited
              << ", \"visited_lists\": " << p.visited_lists
              << ", \"recall\": " << p.recall
              << ", \"route_us\": " << p.route_us
              << ", \"search_us\": " << p.search_us << "}"
              << (j + 1 < m.points.size() ? "," : "") << "\n";
        }
        o << "     ],\n     \"recall_at_visited\": {";
        for (size_t t = 0; t < targets.size(); t++) {
            o << (t ? ", " : "") << "\"" << targets[t] << "\": ";
            if (std::isnan(interp[i][t])) {
                o << "null";
            } else {
                o << interp[i][t];
            }
        }
        o << "}}" << (i + 1 < methods.size() ? "," : "") << "\n";
    }
    o << "  ]\n}\n";
    LOG(INFO) << "JSON written to " << file;
}

int run() {
    ehi_cmdline::set_num_threads(FLAGS_threads);
    LOG(INFO) << "threads: " << omp_get_max_threads() << ", faiss_ehi "
              << faiss_ehi::version() << ", OMP_WAIT_POLICY="
              << (getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY")
                                            : "unset")
              << (ehi_cmdline::running_on_openblas() ? ", OpenBLAS" : "");
    if (FLAGS_B < 2 || FLAGS_H < 1) {
        LOG(ERROR) << "need B >= 2 and H >= 1";
        return 2;
    }
    if (!FLAGS_ehi_strategy.empty() && FLAGS_ehi_strategy != "best_first" &&
        FLAGS_ehi_strategy != "level_beam" && FLAGS_ehi_strategy != "grouped") {
        LOG(ERROR) << "--ehi_strategy must be empty, best_first, level_beam "
                      "or grouped";
        return 2;
    }

    // ------------------------------------------------------------- data
    double t0 = now_s();
    faiss_ehi::data::Dataset ds;
    if (FLAGS_data == "fmnist" || FLAGS_data == "fashion-mnist") {
        ds = faiss_ehi::data::load_fashion_mnist(FLAGS_fmnist_dir);
    } else if (FLAGS_data == "synthetic") {
        ds = faiss_ehi::data::make_synthetic(
                FLAGS_syn_d, FLAGS_syn_nb, FLAGS_syn_nq, FLAGS_syn_nclusters,
                float(FLAGS_syn_spread), FLAGS_seed);
    } else {
        // glove100[:DIR], vecs:... : the retrieval task's documents and test
        // queries (GloVe: normalised, inner product)
        faiss_ehi::data::RetrievalTaskOptions opt;
        opt.max_test_queries = FLAGS_nq;
        opt.knn_train_queries = 1; // the demo trains on the documents
        faiss_ehi::data::RetrievalTask t =
                faiss_ehi::data::load_retrieval_task(FLAGS_data, opt);
        if (!t.is_knn || t.is_text) {
            LOG(ERROR) << "--data " << FLAGS_data
                       << ": ehi_demo needs k-NN vector data";
            return 2;
        }
        ds.name = t.name;
        ds.d = t.d;
        ds.nb = t.nd;
        ds.nq = t.nq_test;
        ds.xb = std::move(t.doc_vecs);
        ds.xq = std::move(t.test_query_vecs);
        ds.metric = t.metric;
    }
    ds.truncate_queries(FLAGS_nq);
    LOG(INFO) << "data " << ds.name << ": nb=" << ds.nb << " nq=" << ds.nq
              << " d=" << ds.d << " (" << now_s() - t0 << " s)";

    // ----------------------------------------------------- ground truth
    t0 = now_s();
    LOG(INFO) << "exact " << FLAGS_k << "-NN ground truth (IndexFlatL2)";
    std::vector<idx_t> gt = faiss_ehi::data::exact_knn(
            ds.d, ds.nb, ds.xb.data(), ds.nq, ds.xq.data(), FLAGS_k, ds.metric);
    double gt_s = now_s() - t0;
    LOG(INFO) << "ground truth in " << gt_s << " s (" << gt_s * 1e6 / ds.nq
              << " us/query, exact search)";

    // ---------------------------------------------------------- indexes
    if (FLAGS_trainer == "torch") {
#ifdef FAISS_EHI_WITH_TRAINER
        auto trainer = std::make_shared<faiss_ehi::trainer::TorchTreeTrainer>();
        trainer->kmeans.niter = FLAGS_kmeans_niter;
        trainer->kmeans.seed = FLAGS_seed;
        trainer->kmeans.leaf_refine_iters = FLAGS_kmeans_refine;
        trainer->routing.verbose = true;
        trainer->routing.balance = FLAGS_routing_balance;
        trainer->targets_at_nearest_leaf = FLAGS_ehi_assign == "nearest";
        trainer->routing.epochs = FLAGS_routing_epochs;
        trainer->kmeans.flat_leaves = FLAGS_flat_leaves;
        trainer->probe.verbose = true;
        trainer->probe.epochs = FLAGS_probe_epochs;
        trainer->probe.learning_rate = FLAGS_probe_lr;
        trainer->probe.threads = omp_get_num_procs();
        trainer->k = FLAGS_probe_k;
        trainer->n_queries = FLAGS_probe_queries;
        // explicit: torch has set OpenMP to one thread at start-up
        trainer->routing.threads = omp_get_num_procs();
        faiss_ehi::set_tree_trainer(trainer);
        LOG(INFO) << "tree trainer: " << trainer->name();
#else
        LOG(ERROR) << "--trainer torch: this build has no LibTorch trainer "
                      "(apt-get install libtorch-dev, then rebuild)";
        return 2;
#endif
    } else if (FLAGS_trainer == "kmeans") {
        auto trainer = std::make_shared<faiss_ehi::KMeansTreeTrainer>();
        trainer->niter = FLAGS_kmeans_niter;
        trainer->seed = FLAGS_seed;
        trainer->leaf_refine_iters = FLAGS_kmeans_refine;
        trainer->flat_leaves = FLAGS_flat_leaves;
        trainer->calibrate = FLAGS_calibrate;
        faiss_ehi::set_tree_trainer(trainer);
        LOG(INFO) << "tree trainer: " << trainer->name();
    } else {
        LOG(ERROR) << "--trainer must be kmeans or torch";
        return 2;
    }

    idx_t nleaves = 1;
    for (int h = 0; h < FLAGS_H; h++) {
        nleaves *= FLAGS_B;
    }
    Method ehi, ivf;
    ehi.name = "EHI" + std::to_string(FLAGS_B) + "x" + std::to_string(FLAGS_H);
    ehi.factory = ehi.name;
    if (!FLAGS_ehi_node_form.empty()) {
        ehi.factory += "_" + FLAGS_ehi_node_form;
    }
    ehi.index.reset(
            faiss_ehi::index_factory(ds.d, ehi.factory.c_str(), ds.metric));
    ivf.name = "IVF" + std::to_string(nleaves);
    ivf.factory = ivf.name + ",Flat";
    ivf.index.reset(faiss::index_factory(ds.d, ivf.factory.c_str(), ds.metric));
    if (auto* e = dynamic_cast<faiss_ehi::IndexEHITree*>(
                faiss::ivflib::extract_index_ivf(ehi.index.get()))) {
        e->d2l = FLAGS_d2l;
        if (FLAGS_ehi_assign == "nearest") {
            e->assign_rule = faiss_ehi::DocAssignRule::NEAREST_LEAF;
        } else if (FLAGS_ehi_assign == "soar") {
            e->assign_rule = faiss_ehi::DocAssignRule::SOAR;
        } else if (FLAGS_ehi_assign != "probability") {
            LOG(ERROR) << "--ehi_assign must be probability, nearest or soar";
            return 2;
        }
    }
    build(ehi, ds);
    {
        auto* tq =
                dynamic_cast<faiss_ehi::EHITreeQuantizer*>(ehi.ivf->quantizer);
        if (tq) {
            if (FLAGS_ehi_strategy == "level_beam") {
                tq->tree.strategy = faiss_ehi::BeamStrategy::LEVEL_BEAM;
            } else if (FLAGS_ehi_strategy == "best_first") {
                tq->tree.strategy = faiss_ehi::BeamStrategy::BEST_FIRST;
            } else if (FLAGS_ehi_strategy == "grouped") {
                tq->tree.strategy = faiss_ehi::BeamStrategy::GROUPED;
            }
            std::string table;
            for (int32_t g : tq->tree.group_expansion) {
                table += " " + std::to_string(g);
            }
            LOG(INFO) << ehi.name << ": group expansion per beam 2^j:"
                      << (table.empty() ? " all groups" : table);
            LOG(INFO) << ehi.name << ": " << tq->tree.nparams()
                      << " tree parameters, form "
                      << (tq->tree.form == faiss_ehi::NodeForm::PAPER
                                  ? "paper"
                                  : "per-node");
        } else {
            LOG(WARNING) << ehi.name
                         << ": quantizer is not an EHITreeQuantizer";
        }
    }
    build(ivf, ds);

    printf("\n%s: nb=%ld nq=%ld d=%d, recall@%d of the exact %d-NN, "
           "%d threads\n",
           ds.name.c_str(), long(ds.nb), long(ds.nq), ds.d, FLAGS_k, FLAGS_k,
           omp_get_max_threads());
    printf("exact search (IndexFlat): %.1f us/query\n", gt_s * 1e6 / ds.nq);
    for (Method* m : {&ehi, &ivf}) {
        printf("%-12s (%s): train %.1f s, add %.1f s, %zu/%zu lists "
               "non-empty, largest %zu, imbalance factor %.3f\n",
               m->name.c_str(), m->factory.c_str(), m->train_s, m->add_s,
               m->nonempty, size_t(m->ivf->nlist), m->max_list, m->imbalance);
    }

    // ------------------------------------------------------------ sweep
    std::vector<int> nprobes = FLAGS_nprobes.empty()
            ? ehi_cmdline::nprobe_ladder(int(nleaves), true)
            : ehi_cmdline::parse_int_list(FLAGS_nprobes, "nprobes");
    printf("\nvisited%% = indexIVF_stats.ndis / (nq * ntotal); lists%% = the "
           "same from the probed lists' sizes\n");
    print_header();
    sweep(ehi, ds, gt, FLAGS_k, nprobes);
    sweep(ivf, ds, gt, FLAGS_k, nprobes);

    // ------------------------------------------- held-out (training) queries
    // Variants are compared on training vectors used as queries (their own
    // row counts as a neighbour for every method alike), never on the test
    // queries: this is the column hyper-parameters are chosen by.
    std::vector<double> targets = {0.01, 0.02, 0.05};
    if (FLAGS_heldout_queries > 0) {
        faiss_ehi::data::Dataset hd = ds;
        idx_t nh = std::min<idx_t>(FLAGS_heldout_queries, ds.nb);
        hd.xq.resize(size_t(nh) * ds.d);
        std::mt19937_64 rng(FLAGS_seed + 99);
        std::uniform_int_distribution<idx_t> pick(0, ds.nb - 1);
        for (idx_t i = 0; i < nh; i++) {
            idx_t r = pick(rng);
            std::copy_n(ds.xb.data() + size_t(r) * ds.d, ds.d,
                        hd.xq.data() + size_t(i) * ds.d);
        }
        hd.nq = nh;
        std::vector<idx_t> hgt =
                faiss_ehi::data::exact_knn(ds.d, ds.nb, ds.xb.data(), nh,
                                           hd.xq.data(), FLAGS_k, ds.metric);
        printf("\nheld-out: %ld training vectors as queries, recall@%d at "
               "equal documents visited\n",
               long(nh), FLAGS_k);
        for (Method* m : {&ehi, &ivf}) {
            std::vector<Point> saved = m->points;
            m->points.clear();
            sweep(*m, hd, hgt, FLAGS_k, nprobes);
            printf("%-12s held-out", m->name.c_str());
            for (double t : targets) {
                std::vector<double> xs, ys;
                for (const Point& p : m->points) {
                    xs.push_back(visited_of(p));
                    ys.push_back(p.recall);
                }
                printf("  %g%%: %.4f", 100 * t,
                       ehi_cmdline::interpolate_log_x(xs, ys, t));
            }
            printf("\n");
            m->points = saved;
        }
    }

    // ---------------------------------------------- at equal visited
    std::vector<Method*> methods = {&ehi, &ivf};
    std::vector<std::vector<double>> interp(methods.size());
    printf("\nrecall@%d at equal documents visited (interpolated in "
           "log(visited); '-' = outside the measured range)\n",
           FLAGS_k);
    printf("%-10s", "visited");
    for (Method* m : methods) {
        printf(" %12s", m->name.c_str());
    }
    printf(" %12s\n", "EHI - IVF");
    for (size_t t = 0; t < targets.size(); t++) {
        printf("%9.0f%%", 100 * targets[t]);
        for (size_t i = 0; i < methods.size(); i++) {
            std::vector<double> xs, ys;
            for (const Point& p : methods[i]->points) {
                xs.push_back(visited_of(p));
                ys.push_back(p.recall);
            }
            double r = ehi_cmdline::interpolate_log_x(xs, ys, targets[t]);
            interp[i].push_back(r);
            if (std::isnan(r)) {
                printf(" %12s", "-");
            } else {
                printf(" %12.4f", r);
            }
        }
        double diff = interp[0][t] - interp[1][t];
        if (std::isnan(diff)) {
            printf(" %12s\n", "-");
        } else {
            printf(" %+12.4f\n", diff);
        }
    }
    fflush(stdout);

    if (!FLAGS_plot.empty()) {
        std::string title = ds.name + ": " + ehi.name + " vs " + ivf.name +
                ",Flat (recall@" + std::to_string(FLAGS_k) + ")";
        make_plot(methods, FLAGS_plot, FLAGS_k, title);
    }
    if (!FLAGS_json.empty()) {
        write_json(FLAGS_json, ds, methods, targets, interp, gt_s);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "EHI tree index vs Faiss IVF-Flat at equal documents visited", run);
}
