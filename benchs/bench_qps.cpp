/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_qps: queries per second against recall@10 on a k-NN data set, the
 * curve a Faiss user picks an index by. Methods, all built in this process
 * on the same data:
 * - EHI (faiss_ehi::index_factory "EHI<B>x<H>,Flat") trained by --trainer
 *   (default: the LibTorch recipe when built, flat k-means leaves +
 *   learned probing + calibration), beam swept, d2l 1 and 2 (the same
 *   tree); the tree keeps its own beam strategy and document placement;
 * - EHI adaptive: the same index, beam chosen per query by
 *   SearchParametersEHITree::mass_threshold (swept) under an nprobe cap;
 * - EHI<L>x1 with the k-means trainer: IVF's partition (one softmax over
 *   L k-means leaves) on EHI's code path, which isolates the share of the
 *   partition from the share of the code;
 * - IVF-Flat with the same number of lists L, nprobe swept;
 * - IVF<L>_HNSW32,Flat: the same lists routed by Faiss's HNSW quantizer;
 * - IVF-Flat at its best nlist: among L/4 .. 4L lists, the one with the
 *   highest single-thread QPS at recall 0.9 on validation queries (training
 *   queries sampled from the documents, never the test queries);
 * - HNSW32,Flat, efSearch swept.
 * Each setting is timed with 1 thread and with all threads, median of
 * --runs runs. Reported: QPS at recall 0.9 and 0.95 (the fastest measured
 * setting that reaches the recall) and each peer's ratio to EHI, and the
 * fraction of documents visited at recall 0.9 by the IVF-family methods.
 * Table on stdout, --json (also QPS at 0.8), --plot (PNG).
 *
 * Usage: bench_qps --data SPEC [--json FILE]
 */

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <omp.h>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>

#include <faiss_ehi/faiss_ehi.h>

#ifdef FAISS_EHI_WITH_TRAINER
#include <faiss_ehi/trainer/TorchTreeTrainer.h>
#endif

#include "cmdline/json.h"
#include "cmdline/plot_curves.h"
#include "cmdline/program_main.h"
#include "cmdline/threads.h"
#include "cmdline/timing.h"
#include "cmdline/visited_sweep.h"
#include "contrib/data/metrics.h"
#include "contrib/data/retrieval_task.h"

namespace {
// The project's best recipe is the default wherever it is built.
#ifdef FAISS_EHI_WITH_TRAINER
constexpr const char* kDefaultTrainer = "torch";
#else
constexpr const char* kDefaultTrainer = "kmeans";
#endif
} // namespace

DEFINE_string(data, "fmnist",
              "k-NN data set: fmnist[:DIR], glove100[:DIR], "
              "synthetic or vecs:BASE[,QUERIES]");
DEFINE_string(ehi, "",
              "EHI factory key (default: EHI16x2 for fmnist, "
              "EHI64x2 for glove100, EHI8x2 otherwise)");
DEFINE_string(trainer, kDefaultTrainer,
              "EHI tree trainer: torch (LibTorch "
              "recipe: flat k-means leaves, learned probing, calibration; "
              "the default when built) or kmeans (built in)");
DEFINE_string(ehi_assign, "probability",
              "EHI document placement: "
              "probability (the tree's own rule; flat-leaf trees put each "
              "document at its nearest leaf), nearest or soar");
DEFINE_int32(runs, 3, "timed runs per setting (median reported)");
DEFINE_int64(nq, 0, "test queries (0: all)");
DEFINE_int32(max_threads, 0, "the all-threads setting (0: all cores)");
DEFINE_double(max_visited, 0.25,
              "stop an IVF sweep beyond this fraction "
              "visited");
DEFINE_bool(d2l2, true,
            "include EHI d2l=2 (the same tree, each document "
            "in 2 leaves)");
DEFINE_bool(adaptive, true,
            "include EHI's adaptive beam (mass_threshold "
            "swept)");
DEFINE_string(mass_thresholds, "0.5,0.3,0.2,0.1,0.05,0.02,0.01,0.005",
              "adaptive beam: mass_threshold values, in sweep order");
DEFINE_int32(adaptive_cap, 0,
             "adaptive beam: nprobe cap (0: 4x the "
             "smallest beam with EHI recall >= 0.99, else L/8)");
DEFINE_bool(ehi_kmeans, true,
            "include EHI<L>x1,Flat trained by the k-means "
            "trainer (IVF's partition on EHI's code path)");
DEFINE_bool(ivf_hnsw, true,
            "include IVF<L>_HNSW32,Flat (same lists, HNSW "
            "coarse quantizer)");
DEFINE_bool(best_nlist, true, "search IVF-Flat's best nlist");
DEFINE_bool(hnsw, true, "include HNSW32,Flat");
DEFINE_string(json, "", "write the results as JSON");
DEFINE_string(plot, "", "write a PNG plot (gnuplot)");

namespace fd = faiss_ehi::data;
using idx_t = faiss::Index::idx_t;
using ehi_cmdline::now_s;

using ehi_cmdline::json_number;

namespace {

/// Recalls of the JSON's QPS table; the summary prints kTableTargets.
const std::vector<double> kTargets = {0.8, 0.9, 0.95};
const std::vector<double> kTableTargets = {0.9, 0.95};
const double kVisitedTarget = 0.9; ///< documents visited reported here

/** efSearch of an HNSW coarse quantizer asked for nprobe lists: twice
 * nprobe, at least 64. The quantizer must return nprobe lists close to
 * the exact nearest centroids (HNSW's own recall below 1 costs documents
 * the IVF never scans), and ef = 2k is the usual margin; below 64 the
 * graph search costs about the same, so a floor loses nothing. */
int hnsw_quantizer_ef(int nprobe) {
    return std::max(2 * nprobe, 64);
}

struct Point {
    std::string param; ///< "nprobe", "efSearch" or "mass_threshold"
    double value = 0;
    double recall = 0;
    double visited = -1; ///< IVF family only
    double qps_1 = 0;    ///< one thread
    double qps_all = 0;  ///< all threads
};

struct Method {
    std::string name;
    std::string key;
    /// Shared: the adaptive curve searches the EHI d2l=1 index.
    std::shared_ptr<faiss::Index> index;
    double build_s = 0;
    /** Per-call parameters given to every search (the adaptive beam:
     * ivf.quantizer_params = &ehi); none when ivf.quantizer_params is
     * null, so the index's own nprobe applies. */
    faiss::SearchParametersIVF ivf;
    faiss_ehi::SearchParametersEHITree ehi;
    std::vector<Point> points;

    const faiss::SearchParameters* params() const {
        return ivf.quantizer_params ? &ivf : nullptr;
    }
};

/// Set the search parameter of a point on the method.
void apply(Method& m, const std::string& param, double value) {
    if (param == "nprobe") {
        faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(m.index.get());
        ivf->nprobe = size_t(value);
        if (auto* hq = dynamic_cast<faiss::IndexHNSW*>(ivf->quantizer)) {
            hq->hnsw.efSearch = hnsw_quantizer_ef(int(value));
        }
    } else if (param == "efSearch") {
        dynamic_cast<faiss::IndexHNSW&>(*m.index).hnsw.efSearch = int(value);
    } else if (param == "mass_threshold") {
        m.ehi.mass_threshold = float(value);
    } else {
        throw std::invalid_argument("unknown search parameter " + param);
    }
}

double measure_qps(const faiss::Index& index,
                   const faiss::SearchParameters* params, idx_t nq,
                   const float* xq, int k, int threads) {
    ehi_cmdline::set_num_threads(threads);
    std::vector<float> D(size_t(nq) * k);
    std::vector<idx_t> I(size_t(nq) * k);
    std::vector<double> qps;
    for (int r = 0; r < FLAGS_runs; r++) {
        double t0 = now_s();
        index.search(nq, xq, k, D.data(), I.data(), params);
        qps.push_back(double(nq) / std::max(1e-9, now_s() - t0));
    }
    return ehi_cmdline::median(qps);
}

/// Recall of the validation queries (sampled documents): the top 10 other
/// documents against their exact 10 nearest other documents.
double validation_recall(faiss::Index& index, const fd::RetrievalTask& t,
                         idx_t nval, const std::vector<idx_t>& self) {
    const int k = 11;
    std::vector<float> D(size_t(nval) * k);
    std::vector<idx_t> I(size_t(nval) * k);
    index.search(nval, t.train_query_vecs.data(), k, D.data(), I.data());
    double hits = 0, total = 0;
    size_t pi = 0;
    for (idx_t q = 0; q < nval; q++) {
        std::vector<idx_t> got;
        for (int j = 0; j < k && got.size() < 10; j++) {
            idx_t id = I[size_t(q) * k + j];
            if (id >= 0 && id != self[size_t(q)]) {
                got.push_back(id);
            }
        }
        while (pi < t.train_pairs.size() && t.train_pairs[pi].first < q) {
            pi++;
        }
        for (; pi < t.train_pairs.size() && t.train_pairs[pi].first == q;
             pi++) {
            total++;
            hits += std::count(got.begin(), got.end(),
                               t.train_pairs[pi].second) > 0;
        }
    }
    return total > 0 ? hits / total : 0;
}

void build(Method& m, const fd::RetrievalTask& t) {
    double t0 = now_s();
    LOG(INFO) << m.name << ": building " << m.key;
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(m.index.get());
    // An HNSW coarse quantizer is trained by exact k-means (IndexFlat
    // assignment, as IVF-Flat trains): the lists are then IVF-Flat's and
    // the method differs from it in routing only. Faiss would otherwise
    // assign through the HNSW graph while clustering.
    std::unique_ptr<faiss::IndexFlat> exact;
    if (ivf && dynamic_cast<faiss::IndexHNSW*>(ivf->quantizer)) {
        exact.reset(new faiss::IndexFlat(ivf->d, ivf->metric_type));
        ivf->clustering_index = exact.get();
    }
    m.index->train(t.nd, t.doc_vecs.data());
    if (exact) {
        ivf->clustering_index = nullptr;
    }
    m.index->add(t.nd, t.doc_vecs.data());
    m.build_s = now_s() - t0;
    LOG(INFO) << m.name << ": built in " << m.build_s << " s";
}

void sweep(Method& m, const fd::RetrievalTask& t, const std::string& param,
           const std::vector<double>& values, int all_threads) {
    const int k = 10;
    std::vector<float> D(size_t(t.nq_test) * k);
    std::vector<idx_t> I(size_t(t.nq_test) * k);
    const bool is_ivf =
            faiss::ivflib::try_extract_index_ivf(m.index.get()) != nullptr;
    for (double v : values) {
        apply(m, param, v);
        Point p;
        p.param = param;
        p.value = v;
        ehi_cmdline::set_num_threads(all_threads);
        faiss::indexIVF_stats.reset();
        m.index->search(t.nq_test, t.test_query_vecs.data(), k, D.data(),
                        I.data(), m.params());
        p.recall = fd::knn_recall_at_k(t.nq_test, t.test_gt.data(), t.k_gt,
                                       I.data(), k, 10);
        if (is_ivf) {
            p.visited = fd::fraction_visited(faiss::indexIVF_stats.ndis,
                                             t.nq_test, m.index->ntotal);
        }
        p.qps_1 = measure_qps(*m.index, m.params(), t.nq_test,
                              t.test_query_vecs.data(), k, 1);
        p.qps_all = measure_qps(*m.index, m.params(), t.nq_test,
                                t.test_query_vecs.data(), k, all_threads);
        printf("%-28s %14s %7g recall %.4f visited %7.3f%% QPS 1t %9.0f "
               "%dt %9.0f\n",
               m.name.c_str(), param.c_str(), v, p.recall,
               p.visited >= 0 ? 100 * p.visited : NAN, p.qps_1, all_threads,
               p.qps_all);
        fflush(stdout);
        m.points.push_back(p);
        if (p.recall >= 0.995 || (p.visited > FLAGS_max_visited)) {
            break;
        }
    }
}

std::vector<double> as_values(const std::vector<int>& v) {
    return std::vector<double>(v.begin(), v.end());
}

/// Comma-separated mass thresholds, each in (0, 1).
std::vector<double> parse_thresholds(const std::string& s) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string tok;
    while (std::getline(ss, tok, ',')) {
        size_t used = 0;
        double v = NAN;
        try {
            v = std::stod(tok, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != tok.size() || !(v > 0 && v < 1)) {
            throw std::invalid_argument("--mass_thresholds: '" + tok +
                                        "' is not a number in (0, 1)");
        }
        out.push_back(v);
    }
    if (out.empty()) {
        throw std::invalid_argument("--mass_thresholds: empty");
    }
    return out;
}

/// The fastest measured setting reaching `target` recall (NaN if none).
double qps_at(const Method& m, double target, bool all) {
    double best = NAN;
    for (const Point& p : m.points) {
        if (p.recall >= target) {
            double q = all ? p.qps_all : p.qps_1;
            if (!(best >= q)) {
                best = q;
            }
        }
    }
    return best;
}

/** The measured setting with the fewest documents visited among those
 * reaching `target` recall (nullptr if none, or not an IVF). */
const Point* visited_at(const Method& m, double target) {
    const Point* best = nullptr;
    for (const Point& p : m.points) {
        if (p.visited >= 0 && p.recall >= target &&
            (!best || p.visited < best->visited)) {
            best = &p;
        }
    }
    return best;
}

/// d2l and document placement of an EHI index (no-op for other indexes).
void configure_ehi(faiss::Index* index, int d2l) {
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index);
    if (auto* ehi = dynamic_cast<faiss_ehi::IndexEHITree*>(ivf)) {
        ehi->d2l = d2l;
        if (FLAGS_ehi_assign == "nearest") {
            ehi->assign_rule = faiss_ehi::DocAssignRule::NEAREST_LEAF;
        } else if (FLAGS_ehi_assign == "soar") {
            ehi->assign_rule = faiss_ehi::DocAssignRule::SOAR;
        } else if (FLAGS_ehi_assign == "probability") {
            ehi->assign_rule = faiss_ehi::DocAssignRule::PROBABILITY;
        } else {
            throw std::invalid_argument("--ehi_assign: probability, nearest "
                                        "or soar");
        }
    }
}

std::shared_ptr<faiss::Index> make_index(const fd::RetrievalTask& t,
                                         const std::string& key, int d2l) {
    std::shared_ptr<faiss::Index> idx(
            faiss_ehi::index_factory(t.d, key.c_str(), t.metric));
    configure_ehi(idx.get(), d2l);
    return idx;
}

/** The tree trainer named by --trainer. The torch recipe is configured as
 * ehi_demo does: LibTorch resets OpenMP to one thread when it starts, so
 * both learning steps are given `threads` back explicitly. */
std::shared_ptr<faiss_ehi::TreeTrainer> make_trainer(const std::string& name,
                                                     int threads) {
    if (name == "kmeans") {
        return std::make_shared<faiss_ehi::KMeansTreeTrainer>();
    }
    if (name != "torch") {
        throw std::invalid_argument("--trainer: torch or kmeans");
    }
#ifdef FAISS_EHI_WITH_TRAINER
    auto tr = std::make_shared<faiss_ehi::trainer::TorchTreeTrainer>();
    tr->probe.threads = threads;
    tr->routing.threads = threads;
    tr->targets_at_nearest_leaf = FLAGS_ehi_assign == "nearest";
    return tr;
#else
    throw std::invalid_argument("--trainer torch: built without LibTorch "
                                "(apt-get install libtorch-dev, rebuild)");
#endif
}

/// After training: how the trainer ended (learned probing's held-out
/// recall, for the torch recipe) and the tree's routing settings.
void log_tree(const Method& m, const faiss_ehi::TreeTrainer& trainer) {
    faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(m.index.get());
    auto* tq = dynamic_cast<faiss_ehi::EHITreeQuantizer*>(ivf->quantizer);
    if (!tq) {
        return;
    }
    std::ostringstream ge;
    for (size_t i = 0; i < tq->tree.group_expansion.size(); i++) {
        ge << (i ? "," : "") << tq->tree.group_expansion[i];
    }
    LOG(INFO) << m.name << ": tree strategy " << int(tq->tree.strategy)
              << " (2 = GROUPED), group expansion [" << ge.str()
              << "], documents at nearest leaf " << tq->assign_nearest;
#ifdef FAISS_EHI_WITH_TRAINER
    if (auto* tt = dynamic_cast<const faiss_ehi::trainer::TorchTreeTrainer*>(
                &trainer)) {
        const auto& st = tt->last_probe_stats;
        if (!st.heldout_recall.empty()) {
            LOG(INFO) << m.name << ": learned probing kept epoch "
                      << st.best_epoch << ", held-out budget recall "
                      << st.heldout_recall.front() << " -> "
                      << st.heldout_recall[size_t(st.best_epoch)];
        }
    }
#endif
}

void write_json(const std::string& file, const fd::RetrievalTask& t,
                int all_threads, const std::vector<Method*>& methods) {
    std::ofstream o(file);
    if (!o) {
        throw std::runtime_error("cannot write " + file);
    }
    o << "{\n  \"data\": \"" << ehi_cmdline::json_escape(t.name)
      << "\",\n  \"documents\": " << t.nd
      << ",\n  \"test_queries\": " << t.nq_test
      << ",\n  \"all_threads\": " << all_threads
      << ",\n  \"runs\": " << FLAGS_runs << ",\n  \"trainer\": \""
      << ehi_cmdline::json_escape(FLAGS_trainer) << "\",\n  \"methods\": {";
    for (size_t i = 0; i < methods.size(); i++) {
        const Method& m = *methods[i];
        o << (i ? ",\n    " : "\n    ") << "\""
          << ehi_cmdline::json_escape(m.name) << "\": {\"key\": \""
          << ehi_cmdline::json_escape(m.key)
          << "\", \"build_s\": " << json_number(m.build_s)
          << ", \"qps_at_recall\": {";
        for (size_t j = 0; j < kTargets.size(); j++) {
            o << (j ? ", " : "") << "\"" << kTargets[j]
              << "\": {\"1\": " << json_number(qps_at(m, kTargets[j], false))
              << ", \"all\": " << json_number(qps_at(m, kTargets[j], true))
              << "}";
        }
        const Point* v = visited_at(m, kVisitedTarget);
        o << "}, \"visited_at_recall\": {\"" << kVisitedTarget
          << "\": " << json_number(v ? v->visited : NAN) << "}";
        o << ",\n      \"points\": [";
        for (size_t j = 0; j < m.points.size(); j++) {
            const Point& p = m.points[j];
            o << (j ? ",\n        " : "\n        ") << "{\"" << p.param
              << "\": " << json_number(p.value)
              << ", \"recall@10\": " << json_number(p.recall)
              << ", \"visited\": "
              << json_number(p.visited >= 0 ? p.visited : NAN)
              << ", \"qps\": " << json_number(p.qps_all)
              << ", \"qps_1thread\": " << json_number(p.qps_1) << "}";
        }
        o << "]}";
    }
    o << "\n  }\n}\n";
}

void print_summary(const fd::RetrievalTask& t, const Method& base,
                   const std::vector<Method*>& ms, int all_threads) {
    printf("\n%s, %lld documents, %lld queries; EHI tree trainer %s; QPS "
           "at recall@10 (fastest setting reaching it), median of %d runs; "
           "ratio = method / %s\n",
           t.name.c_str(), (long long)t.nd, (long long)t.nq_test,
           FLAGS_trainer.c_str(), FLAGS_runs, base.name.c_str());
    for (int all = 0; all < 2; all++) {
        if (all) {
            printf("\nall threads (%d)\n| method |", all_threads);
        } else {
            printf("\n1 thread\n| method |");
        }
        for (double r : kTableTargets) {
            printf(" QPS@%.2f | ratio |", r);
        }
        printf("\n|---|");
        for (size_t j = 0; j < kTableTargets.size(); j++) {
            printf("---|---|");
        }
        printf("\n");
        for (const Method* m : ms) {
            printf("| %s |", m->name.c_str());
            for (double r : kTableTargets) {
                double q = qps_at(*m, r, all);
                double b = qps_at(base, r, all);
                if (std::isfinite(q)) {
                    printf(" %.0f | %.2f |", q, q / b);
                } else {
                    printf(" - | - |");
                }
            }
            printf("\n");
        }
    }
    // Documents scanned (indexIVF_stats.ndis / (nq * ntotal)): the cost
    // that QPS follows once routing is cheap; HNSW32 has no lists.
    const Point* bv = visited_at(base, kVisitedTarget);
    printf("\nDocuments visited at recall %.2f (IVF family; the measured "
           "setting with the fewest reaching it; ratio = method / %s)\n"
           "| method | setting | recall | visited | ratio |\n"
           "|---|---|---|---|---|\n",
           kVisitedTarget, base.name.c_str());
    for (const Method* m : ms) {
        if (!faiss::ivflib::try_extract_index_ivf(m->index.get())) {
            continue;
        }
        const Point* v = visited_at(*m, kVisitedTarget);
        if (!v) {
            printf("| %s | - | - | - | - |\n", m->name.c_str());
            continue;
        }
        printf("| %s | %s %g | %.4f | %.3f%% |", m->name.c_str(),
               v->param.c_str(), v->value, v->recall, 100 * v->visited);
        if (bv) {
            printf(" %.2f |\n", v->visited / bv->visited);
        } else {
            printf(" - |\n");
        }
    }
}

int run() {
    fd::RetrievalTaskOptions opt;
    opt.max_test_queries = FLAGS_nq;
    opt.knn_train_queries = 2000; // validation queries for best nlist
    fd::RetrievalTask t = fd::load_retrieval_task(FLAGS_data, opt);
    if (!t.is_knn) {
        throw std::invalid_argument("bench_qps needs k-NN data (fmnist, "
                                    "glove100, synthetic, vecs)");
    }
    const std::vector<double> thresholds =
            parse_thresholds(FLAGS_mass_thresholds);
    const int all_threads =
            FLAGS_max_threads > 0 ? FLAGS_max_threads : omp_get_num_procs();
    std::shared_ptr<faiss_ehi::TreeTrainer> trainer =
            make_trainer(FLAGS_trainer, all_threads);
    faiss_ehi::set_tree_trainer(trainer);
    LOG(INFO) << "EHI tree trainer: " << trainer->name() << " (--trainer "
              << FLAGS_trainer
              << (gflags::GetCommandLineFlagInfoOrDie("trainer").is_default
                          ? ", the default"
                          : "")
              << "); document placement --ehi_assign " << FLAGS_ehi_assign
              << "; beam strategy: the trained tree's own";
    std::string ehi_key = FLAGS_ehi;
    if (ehi_key.empty()) {
        ehi_key = t.name == "fashion-mnist"     ? "EHI16x2"
                : t.name.rfind("glove", 0) == 0 ? "EHI64x2"
                                                : "EHI8x2";
    }

    std::vector<std::unique_ptr<Method>> methods;
    auto new_method = [&](const std::string& name,
                          const std::string& key) -> Method& {
        methods.emplace_back(new Method);
        Method& m = *methods.back();
        m.name = name;
        m.key = key;
        return m;
    };
    auto add = [&](const std::string& name, const std::string& key,
                   int d2l) -> Method& {
        Method& m = new_method(name, key);
        m.index = make_index(t, key, d2l);
        ehi_cmdline::set_num_threads(all_threads);
        build(m, t);
        return m;
    };
    Method& ehi1 = add(ehi_key + " d2l=1", ehi_key + ",Flat", 1);
    log_tree(ehi1, *trainer);
    const size_t L = faiss::ivflib::extract_index_ivf(ehi1.index.get())->nlist;
    const std::vector<double> ladder =
            as_values(ehi_cmdline::nprobe_ladder(int(L)));
    sweep(ehi1, t, "nprobe", ladder, all_threads);
    if (FLAGS_d2l2) {
        // The same tree, documents in 2 leaves: a clone with its lists
        // emptied, so d2l alone differs (and the tree is trained once).
        Method& ehi2 = new_method(ehi_key + " d2l=2",
                                  ehi_key + ",Flat (tree of d2l=1)");
        double t0 = now_s();
        ehi2.index.reset(faiss_ehi::clone_index(ehi1.index.get()));
        ehi2.index->reset();
        configure_ehi(ehi2.index.get(), 2);
        ehi_cmdline::set_num_threads(all_threads);
        ehi2.index->add(t.nd, t.doc_vecs.data());
        ehi2.build_s = now_s() - t0;
        LOG(INFO) << ehi2.name << ": documents added in " << ehi2.build_s
                  << " s";
        sweep(ehi2, t, "nprobe", ladder, all_threads);
    }
    if (FLAGS_adaptive) {
        // The cap bounds the routing work (the tree ranks `cap` leaves
        // before the cut) and the worst-case visit; 4x the beam that
        // fixed-beam EHI needs for recall 0.99 leaves the mass threshold
        // the whole say up to that recall.
        int cap = FLAGS_adaptive_cap;
        if (cap <= 0) {
            for (const Point& p : ehi1.points) {
                if (p.recall >= 0.99) {
                    cap = 4 * int(p.value);
                    break;
                }
            }
            if (cap <= 0) {
                cap = std::max(1, int(L / 8));
            }
        }
        cap = std::min(cap, int(L));
        Method& ad = new_method(ehi_key + " adaptive",
                                ehi_key + ",Flat d2l=1, nprobe cap " +
                                        std::to_string(cap) + ", min_beam 1");
        ad.index = ehi1.index;
        ad.build_s = ehi1.build_s;
        ad.ivf.nprobe = size_t(cap);
        ad.ivf.quantizer_params = &ad.ehi;
        ad.ehi.min_beam = 1;
        // flat storage ignores the coarse distances (IndexEHITree skips
        // them too when it passes its own quantizer parameters)
        ad.ehi.compute_distances = false;
        LOG(INFO) << ad.name << ": nprobe cap " << cap << ", min_beam 1";
        sweep(ad, t, "mass_threshold", thresholds, all_threads);
    }
    if (FLAGS_ehi_kmeans) {
        // One softmax over L k-means leaves, trained without learning:
        // the IVF partition searched through EHI's code path.
        faiss_ehi::set_tree_trainer(
                std::make_shared<faiss_ehi::KMeansTreeTrainer>());
        const std::string key = "EHI" + std::to_string(L) + "x1";
        Method& km = add(key + " kmeans", key + ",Flat", 1);
        faiss_ehi::set_tree_trainer(trainer);
        sweep(km, t, "nprobe", ladder, all_threads);
    }
    const std::string ivf_key = "IVF" + std::to_string(L);
    Method& ivf = add(ivf_key + ",Flat", ivf_key + ",Flat", 1);
    sweep(ivf, t, "nprobe", ladder, all_threads);
    if (FLAGS_ivf_hnsw) {
        Method& ih = add(ivf_key + "_HNSW32,Flat", ivf_key + "_HNSW32,Flat", 1);
        sweep(ih, t, "nprobe", ladder, all_threads);
    }

    if (FLAGS_best_nlist) {
        // Best nlist on validation queries (documents sampled as queries).
        std::vector<int64_t> rows; // the sampled documents, for self-matches
        {
            // load_retrieval_task samples training queries as documents;
            // find each one's row by exact equality of vectors.
            std::unique_ptr<faiss::Index> flat(
                    faiss::index_factory(t.d, "Flat", t.metric));
            flat->add(t.nd, t.doc_vecs.data());
            std::vector<float> D(size_t(t.nq_train));
            std::vector<idx_t> I(size_t(t.nq_train));
            flat->search(t.nq_train, t.train_query_vecs.data(), 1, D.data(),
                         I.data());
            rows.assign(I.begin(), I.end());
        }
        size_t best_nlist = L;
        double best_qps = -1;
        for (size_t nl : {L / 4, L / 2, L, 2 * L, 4 * L}) {
            if (nl < 8 || nl * 39 > size_t(t.nd)) {
                continue;
            }
            std::unique_ptr<faiss::Index> cand(faiss::index_factory(
                    t.d, ("IVF" + std::to_string(nl) + ",Flat").c_str(),
                    t.metric));
            ehi_cmdline::set_num_threads(all_threads);
            cand->train(t.nd, t.doc_vecs.data());
            cand->add(t.nd, t.doc_vecs.data());
            // the smallest nprobe reaching 0.9 validation recall
            double qps = -1;
            for (int np : ehi_cmdline::nprobe_ladder(int(nl))) {
                faiss::ivflib::extract_index_ivf(cand.get())->nprobe =
                        size_t(np);
                ehi_cmdline::set_num_threads(all_threads);
                if (validation_recall(*cand, t, t.nq_train, rows) >= 0.9) {
                    qps = measure_qps(*cand, nullptr, t.nq_train,
                                      t.train_query_vecs.data(), 11, 1);
                    break;
                }
            }
            LOG(INFO) << "IVF" << nl << ",Flat: validation QPS at recall "
                      << "0.9 = " << qps;
            if (qps > best_qps) {
                best_qps = qps;
                best_nlist = nl;
            }
        }
        Method& best = add("IVF-Flat best nlist=" + std::to_string(best_nlist),
                           "IVF" + std::to_string(best_nlist) + ",Flat", 1);
        sweep(best, t, "nprobe",
              as_values(ehi_cmdline::nprobe_ladder(int(best_nlist))),
              all_threads);
    }
    if (FLAGS_hnsw) {
        Method& h = add("HNSW32,Flat", "HNSW32,Flat", 1);
        sweep(h, t, "efSearch", {16, 24, 32, 48, 64, 96, 128, 192, 256, 384},
              all_threads);
    }

    std::vector<Method*> ms;
    for (auto& m : methods) {
        ms.push_back(m.get());
    }
    print_summary(t, ehi1, ms, all_threads);
    if (!FLAGS_json.empty()) {
        write_json(FLAGS_json, t, all_threads, ms);
        printf("\nJSON written to %s\n", FLAGS_json.c_str());
    }
    if (!FLAGS_plot.empty()) {
        std::vector<ehi_cmdline::Panel> panels(2);
        for (int all = 0; all < 2; all++) {
            ehi_cmdline::Panel& p = panels[all];
            p.title = all ? "all threads" : "1 thread";
            p.xlabel = "recall@10";
            p.ylabel = "queries per second";
            p.log_x = false;
            for (const Method* m : ms) {
                ehi_cmdline::Curve c;
                c.name = m->name;
                for (const Point& pt : m->points) {
                    c.x.push_back(pt.recall);
                    c.y.push_back(all ? pt.qps_all : pt.qps_1);
                }
                p.curves.push_back(std::move(c));
            }
        }
        if (ehi_cmdline::plot_panels(FLAGS_plot, t.name + ": QPS vs recall@10",
                                     panels)) {
            printf("plot written to %s\n", FLAGS_plot.c_str());
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "QPS against recall@10: EHI (fixed and adaptive beam) vs "
            "EHI<L>x1 k-means, IVF-Flat, IVF-HNSW and HNSW32.\n"
            "Usage: bench_qps --data SPEC [--json FILE]",
            run);
}
