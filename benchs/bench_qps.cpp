/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_qps: queries per second against recall@10 on a k-NN data set, the
 * curve a Faiss user picks an index by. Methods, all built in this process
 * on the same data:
 * - EHI (faiss_ehi::index_factory "EHI<B>x<H>,Flat"), beam swept, d2l 1
 *   and 2;
 * - IVF-Flat with the same number of lists, nprobe swept;
 * - IVF-Flat at its best nlist: among L/4 .. 4L lists, the one with the
 *   highest single-thread QPS at recall 0.9 on validation queries (training
 *   queries sampled from the documents, never the test queries);
 * - HNSW32,Flat, efSearch swept.
 * Each setting is timed with 1 thread and with all threads, median of
 * --runs runs. Reported: QPS at recall 0.8, 0.9 and 0.95 (the fastest
 * measured setting that reaches the recall) and each peer's ratio to EHI.
 * Table on stdout, --json, --plot (PNG).
 *
 * Usage: bench_qps --data SPEC [--json FILE]
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
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>

#include <faiss_ehi/faiss_ehi.h>

#ifdef FAISS_EHI_WITH_TRAINER
#include <faiss_ehi/trainer/TorchTreeTrainer.h>
#endif

#include "bench_main.h"
#include "contrib/data/metrics.h"
#include "contrib/data/retrieval_task.h"
#include "data_loaders.h"
#include "plot_curves.h"
#include "visited_sweep.h"

DEFINE_string(data, "fmnist", "k-NN data set: fmnist[:DIR], glove100[:DIR], "
              "synthetic or vecs:BASE[,QUERIES]");
DEFINE_string(ehi, "", "EHI factory key (default: EHI16x2 for fmnist, "
              "EHI64x2 for glove100, EHI8x2 otherwise)");
DEFINE_string(trainer, "kmeans", "EHI tree trainer: kmeans (built in) or "
              "torch (LibTorch drop-in, if built)");
DEFINE_string(ehi_assign, "nearest", "EHI document placement: probability, "
              "nearest or soar");
DEFINE_int32(runs, 3, "timed runs per setting (median reported)");
DEFINE_int64(nq, 0, "test queries (0: all)");
DEFINE_int32(max_threads, 0, "the all-threads setting (0: all cores)");
DEFINE_double(max_visited, 0.25, "stop an IVF sweep beyond this fraction "
              "visited");
DEFINE_bool(best_nlist, true, "search IVF-Flat's best nlist");
DEFINE_bool(hnsw, true, "include HNSW32,Flat");
DEFINE_string(json, "", "write the results as JSON");
DEFINE_string(plot, "", "write a PNG plot (gnuplot)");

namespace fd = faiss_ehi::data;
using ehi_bench::idx_t;
using ehi_bench::now_s;

using ehi_bench::json_number;

namespace {

const std::vector<double> kTargets = {0.8, 0.9, 0.95};

struct Point {
    std::string param; ///< "nprobe" or "efSearch"
    int value = 0;
    double recall = 0;
    double visited = -1; ///< IVF only
    double qps_1 = 0;    ///< one thread
    double qps_all = 0;  ///< all threads
};

struct Method {
    std::string name;
    std::string key;
    std::unique_ptr<faiss::Index> index;
    double build_s = 0;
    std::vector<Point> points;
};

/// Set the search parameter of a point on the index.
void apply(faiss::Index& index, const std::string& param, int value) {
    if (param == "nprobe") {
        faiss::ivflib::extract_index_ivf(&index)->nprobe = size_t(value);
    } else {
        dynamic_cast<faiss::IndexHNSW&>(index).hnsw.efSearch = value;
    }
}

double measure_qps(faiss::Index& index, idx_t nq, const float* xq, int k,
                   int threads) {
    ehi_bench::set_num_threads(threads);
    std::vector<float> D(size_t(nq) * k);
    std::vector<idx_t> I(size_t(nq) * k);
    std::vector<double> qps;
    for (int r = 0; r < FLAGS_runs; r++) {
        double t0 = now_s();
        index.search(nq, xq, k, D.data(), I.data());
        qps.push_back(double(nq) / std::max(1e-9, now_s() - t0));
    }
    return ehi_bench::median(qps);
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
    m.index->train(t.nd, t.doc_vecs.data());
    m.index->add(t.nd, t.doc_vecs.data());
    m.build_s = now_s() - t0;
    LOG(INFO) << m.name << ": built in " << m.build_s << " s";
}

void sweep(Method& m, const fd::RetrievalTask& t, const std::string& param,
           const std::vector<int>& values, int all_threads) {
    const int k = 10;
    std::vector<float> D(size_t(t.nq_test) * k);
    std::vector<idx_t> I(size_t(t.nq_test) * k);
    for (int v : values) {
        apply(*m.index, param, v);
        Point p;
        p.param = param;
        p.value = v;
        ehi_bench::set_num_threads(all_threads);
        faiss::indexIVF_stats.reset();
        m.index->search(t.nq_test, t.test_query_vecs.data(), k, D.data(),
                        I.data());
        p.recall = fd::knn_recall_at_k(t.nq_test, t.test_gt.data(), t.k_gt,
                                       I.data(), k, 10);
        if (param == "nprobe") {
            p.visited = fd::fraction_visited(faiss::indexIVF_stats.ndis,
                                             t.nq_test, m.index->ntotal);
        }
        p.qps_1 = measure_qps(*m.index, t.nq_test, t.test_query_vecs.data(),
                              k, 1);
        p.qps_all = measure_qps(*m.index, t.nq_test,
                                t.test_query_vecs.data(), k, all_threads);
        printf("%-28s %9s %5d recall %.4f visited %7.3f%% QPS 1t %9.0f "
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

std::unique_ptr<faiss::Index> make_index(const fd::RetrievalTask& t,
                                         const std::string& key, int d2l) {
    std::unique_ptr<faiss::Index> idx(
            faiss_ehi::index_factory(t.d, key.c_str(), t.metric));
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(idx.get());
    if (auto* ehi = dynamic_cast<faiss_ehi::IndexEHITree*>(ivf)) {
        ehi->d2l = d2l;
        if (FLAGS_ehi_assign == "nearest") {
            ehi->assign_rule = faiss_ehi::DocAssignRule::NEAREST_LEAF;
        } else if (FLAGS_ehi_assign == "soar") {
            ehi->assign_rule = faiss_ehi::DocAssignRule::SOAR;
        } else if (FLAGS_ehi_assign != "probability") {
            throw std::invalid_argument("--ehi_assign: probability, nearest "
                                        "or soar");
        }
    }
    return idx;
}

void write_json(const std::string& file, const fd::RetrievalTask& t,
                int all_threads, const std::vector<Method*>& methods) {
    std::ofstream o(file);
    if (!o) {
        throw std::runtime_error("cannot write " + file);
    }
    o << "{\n  \"data\": \"" << ehi_bench::json_escape(t.name)
      << "\",\n  \"documents\": " << t.nd << ",\n  \"test_queries\": "
      << t.nq_test << ",\n  \"all_threads\": " << all_threads
      << ",\n  \"runs\": " << FLAGS_runs << ",\n  \"methods\": {";
    for (size_t i = 0; i < methods.size(); i++) {
        const Method& m = *methods[i];
        o << (i ? ",\n    " : "\n    ") << "\""
          << ehi_bench::json_escape(m.name) << "\": {\"key\": \""
          << ehi_bench::json_escape(m.key) << "\", \"build_s\": "
          << json_number(m.build_s) << ", \"qps_at_recall\": {";
        for (size_t j = 0; j < kTargets.size(); j++) {
            o << (j ? ", " : "") << "\"" << kTargets[j] << "\": {\"1\": "
              << json_number(qps_at(m, kTargets[j], false)) << ", \"all\": "
              << json_number(qps_at(m, kTargets[j], true)) << "}";
        }
        o << "},\n      \"points\": [";
        for (size_t j = 0; j < m.points.size(); j++) {
            const Point& p = m.points[j];
            o << (j ? ",\n        " : "\n        ") << "{\"" << p.param
              << "\": " << p.value
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

int run() {
    fd::RetrievalTaskOptions opt;
    opt.max_test_queries = FLAGS_nq;
    opt.knn_train_queries = 2000; // validation queries for best nlist
    fd::RetrievalTask t = fd::load_retrieval_task(FLAGS_data, opt);
    if (!t.is_knn) {
        throw std::invalid_argument("bench_qps needs k-NN data (fmnist, "
                                    "glove100, synthetic, vecs)");
    }
#ifdef FAISS_EHI_WITH_TRAINER
    if (FLAGS_trainer == "torch") {
        faiss_ehi::trainer::register_torch_trainer();
    } else if (FLAGS_trainer != "kmeans") {
        throw std::invalid_argument("--trainer: kmeans or torch");
    }
#else
    if (FLAGS_trainer != "kmeans") {
        throw std::invalid_argument("--trainer torch: built without LibTorch");
    }
#endif
    if (FLAGS_trainer == "kmeans") {
        faiss_ehi::set_tree_trainer(
                std::make_shared<faiss_ehi::KMeansTreeTrainer>());
    }
    std::string ehi_key = FLAGS_ehi;
    if (ehi_key.empty()) {
        ehi_key = t.name == "fashion-mnist"        ? "EHI16x2"
                : t.name.rfind("glove", 0) == 0 ? "EHI64x2"
                                                 : "EHI8x2";
    }
    const int all_threads =
            FLAGS_max_threads > 0 ? FLAGS_max_threads : omp_get_num_procs();

    std::vector<std::unique_ptr<Method>> methods;
    auto add = [&](const std::string& name, const std::string& key,
                   int d2l) -> Method& {
        methods.emplace_back(new Method);
        Method& m = *methods.back();
        m.name = name;
        m.key = key;
        m.index = make_index(t, key, d2l);
        ehi_bench::set_num_threads(all_threads);
        build(m, t);
        return m;
    };
    Method& ehi1 = add("EHI d2l=1", ehi_key + ",Flat", 1);
    const size_t L = faiss::ivflib::extract_index_ivf(ehi1.index.get())->nlist;
    sweep(ehi1, t, "nprobe", ehi_bench::nprobe_ladder(int(L)), all_threads);
    Method& ehi2 = add("EHI d2l=2", ehi_key + ",Flat", 2);
    sweep(ehi2, t, "nprobe", ehi_bench::nprobe_ladder(int(L)), all_threads);
    Method& ivf = add("IVF-Flat same lists",
                      "IVF" + std::to_string(L) + ",Flat", 1);
    sweep(ivf, t, "nprobe", ehi_bench::nprobe_ladder(int(L)), all_threads);

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
            ehi_bench::set_num_threads(all_threads);
            cand->train(t.nd, t.doc_vecs.data());
            cand->add(t.nd, t.doc_vecs.data());
            // the smallest nprobe reaching 0.9 validation recall
            double qps = -1;
            for (int np : ehi_bench::nprobe_ladder(int(nl))) {
                apply(*cand, "nprobe", np);
                ehi_bench::set_num_threads(all_threads);
                if (validation_recall(*cand, t, t.nq_train, rows) >= 0.9) {
                    qps = measure_qps(*cand, t.nq_train,
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
        sweep(best, t, "nprobe", ehi_bench::nprobe_ladder(int(best_nlist)),
              all_threads);
    }
    if (FLAGS_hnsw) {
        Method& h = add("HNSW32", "HNSW32,Flat", 1);
        sweep(h, t, "efSearch", {16, 24, 32, 48, 64, 96, 128, 192, 256, 384},
              all_threads);
    }

    std::vector<Method*> ms;
    for (auto& m : methods) {
        ms.push_back(m.get());
    }
    printf("\n%s, %lld documents, %lld queries; QPS at recall@10 (fastest "
           "setting reaching it), median of %d runs; ratio = method / EHI "
           "d2l=1\n",
           t.name.c_str(), (long long)t.nd, (long long)t.nq_test, FLAGS_runs);
    for (int all = 0; all < 2; all++) {
        printf("\n%s\n| method |", all ? "all threads" : "1 thread");
        for (double r : kTargets) {
            printf(" QPS@%.2f | ratio |", r);
        }
        printf("\n|---|");
        for (size_t j = 0; j < kTargets.size(); j++) {
            printf("---|---|");
        }
        printf("\n");
        for (const Method* m : ms) {
            printf("| %s |", m->name.c_str());
            for (double r : kTargets) {
                double q = qps_at(*m, r, all);
                double base = qps_at(ehi1, r, all);
                if (std::isfinite(q)) {
                    printf(" %.0f | %.2f |", q, q / base);
                } else {
                    printf(" - | - |");
                }
            }
            printf("\n");
        }
    }
    if (!FLAGS_json.empty()) {
        write_json(FLAGS_json, t, all_threads, ms);
        printf("\nJSON written to %s\n", FLAGS_json.c_str());
    }
    if (!FLAGS_plot.empty()) {
        std::vector<ehi_bench::Panel> panels(2);
        for (int all = 0; all < 2; all++) {
            ehi_bench::Panel& p = panels[all];
            p.title = all ? "all threads" : "1 thread";
            p.xlabel = "recall@10";
            p.ylabel = "queries per second";
            p.log_x = false;
            for (const Method* m : ms) {
                ehi_bench::Curve c;
                c.name = m->name;
                for (const Point& pt : m->points) {
                    c.x.push_back(pt.recall);
                    c.y.push_back(all ? pt.qps_all : pt.qps_1);
                }
                p.curves.push_back(std::move(c));
            }
        }
        if (ehi_bench::plot_panels(FLAGS_plot, t.name + ": QPS vs recall@10",
                                   panels)) {
            printf("plot written to %s\n", FLAGS_plot.c_str());
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_bench::bench_main(
            argc, argv,
            "QPS against recall@10: EHI vs IVF-Flat and HNSW32.\n"
            "Usage: bench_qps --data SPEC [--json FILE]",
            run);
}
