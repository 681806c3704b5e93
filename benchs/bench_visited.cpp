/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_visited: retrieval quality against the fraction of documents
 * visited, the paper's Figure 2 / Table 6 protocol. For one data set:
 * - EHI: the trained index, beam swept;
 * - IVF-Flat: Faiss k-means IVF with the same number of leaves over the
 *   very vectors EHI stores (EHI's encoder output), nprobe swept;
 * - DE+IVF-Flat (relevance data): the same encoder trained with the
 *   siamese loss alone, then Faiss k-means IVF-Flat with the same leaves;
 * - DE+IVF-Flat best nlist (relevance data): the upper envelope (in
 *   Recall@100) of that encoder's Faiss IVF-Flat with half, once, twice and
 *   four times as many lists: for each fraction visited, the best setting
 *   that visits no more. The envelope is read on the test queries, so it
 *   favours Faiss (its strongest setting for each budget, which a user
 *   could not pick in advance);
 * - exact (relevance data): that siamese-only encoder over all documents.
 * With --count_routing the routing's scores (centroids, tree nodes) count
 * as documents visited, so that list counts compare at equal work.
 * Curves are read at 1, 2, 5, 10, 20, 50 and 100% visited (interpolated in
 * log visited between measured settings). Table on stdout, --json, --csv
 * and a PNG (--plot) with one panel per metric.
 *
 * Usage: bench_visited --data SPEC [--index FILE] [--json FILE]
 * Without --index the EHI model is trained here (the training flags are
 * ehi_train's). EHI's hyper-parameters are never chosen on the test
 * queries here.
 */

#include <algorithm>
#include <cmath>
#include <cstdio>
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
#include <faiss/IndexIVFFlat.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/index_io.h>

#include "cmdline/flag_lists.h"
#include "cmdline/index_stats.h"
#include "cmdline/json.h"
#include "cmdline/plot_curves.h"
#include "cmdline/program_main.h"
#include "cmdline/task_inputs.h"
#include "cmdline/timing.h"
#include "cmdline/train_flags.h"
#include "cmdline/visited_sweep.h"
#include "contrib/data/file_util.h"

DEFINE_string(data, "",
              "data set: beir:DIR, fmnist[:DIR], glove100[:DIR], "
              "synthetic or vecs:BASE[,QUERIES[,PAIRS]] (required)");
DEFINE_string(index, "",
              "trained EHI index (ehi_train --out); its text "
              "encoder is read from FILE.text for text data. Empty: train "
              "here with the training flags");
DEFINE_string(json, "", "write the curves as JSON");
DEFINE_string(csv, "", "write the curves as CSV");
DEFINE_string(plot, "", "write a PNG plot (gnuplot)");
DEFINE_string(visited, "0.01,0.02,0.05,0.1,0.2,0.5,1",
              "fractions of documents visited to report");
DEFINE_bool(baselines, true,
            "measure IVF-Flat (and DE+IVF-Flat, exact for "
            "relevance data)");
DEFINE_int64(max_test_queries, 0,
             "use at most this many test queries (0: "
             "all)");
DEFINE_string(label, "EHI", "name of the EHI curve");
DEFINE_bool(count_routing, false,
            "count the routing's scores as documents visited: the lists' "
            "centroids for Faiss IVF (nlist per query), every node's "
            "children for EHI (B + B^2 + ... + B^H, an upper bound for "
            "H > 1), so that list counts compare at equal work");
DEFINE_bool(adaptive, true,
            "also measure EHI's adaptive beam (mass "
            "threshold swept, nprobe capped by --adaptive_cap) as its own "
            "curve");
DEFINE_int32(adaptive_cap, 0,
             "adaptive beam: the most leaves a query may visit (0: nlist/8)");

namespace ft = faiss_ehi::trainer;
namespace fd = faiss_ehi::data;
using ehi_cmdline::VisitedCurve;
using ehi_cmdline::VisitedPoint;
using idx_t = faiss::Index::idx_t;

using ehi_cmdline::json_number;

namespace {

/// Faiss k-means IVF-Flat with `nlist` lists over (nd x d) documents.
struct IvfBaseline {
    std::unique_ptr<faiss::IndexFlat> quantizer;
    std::unique_ptr<faiss::IndexIVFFlat> index;
    double train_s = 0;
};

IvfBaseline make_ivf(int d, size_t nlist, faiss::MetricType metric, idx_t nd,
                     const float* xd) {
    IvfBaseline b;
    b.quantizer.reset(metric == faiss::METRIC_INNER_PRODUCT
                              ? (faiss::IndexFlat*)new faiss::IndexFlatIP(d)
                              : new faiss::IndexFlatL2(d));
    b.index.reset(new faiss::IndexIVFFlat(b.quantizer.get(), d, nlist, metric));
    double t0 = ehi_cmdline::now_s();
    b.index->train(nd, xd);
    b.train_s = ehi_cmdline::now_s() - t0;
    b.index->add(nd, xd);
    return b;
}

/// With --count_routing: the routing's scores per query, as a fraction of
/// the documents (0 otherwise).
double routing_share(const faiss::IndexIVF& ivf, idx_t nd) {
    if (!FLAGS_count_routing) {
        return 0.0;
    }
    double scores = double(ivf.nlist);
    if (auto* q = dynamic_cast<const faiss_ehi::EHITreeQuantizer*>(
                ivf.quantizer)) {
        scores = 0;
        double level = 1;
        for (int h = 0; h < q->tree.H; h++) {
            level *= q->tree.B;
            scores += level;
        }
    }
    return scores / double(nd);
}

/// Adds the routing's share to every point of a sweep.
void add_routing(std::vector<VisitedPoint>& sweep, double share) {
    for (VisitedPoint& p : sweep) {
        p.visited += share;
    }
}

VisitedCurve curve_of(const std::string& name, faiss::Index& index,
                      const std::vector<float>& xq, const fd::RetrievalTask& t,
                      const std::vector<double>& targets) {
    VisitedCurve c;
    c.method = name;
    const faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(&index);
    const double share = routing_share(*ivf, t.nd);
    // the sweep ends once the largest target is covered
    double top = targets.empty()
            ? 1.0
            : *std::max_element(targets.begin(), targets.end());
    c.sweep = ehi_cmdline::sweep_nprobe(
            index, xq.data(), t, ehi_cmdline::nprobe_ladder(int(ivf->nlist)),
            std::max(top - share, 0.0));
    add_routing(c.sweep, share);
    c.targets = ehi_cmdline::at_visited(c.sweep, targets);
    return c;
}

// with_per_query: each point's per-query values too (the fixed fractions;
// the raw sweep would make the file many times larger)
void write_points(std::ostream& o, const std::vector<VisitedPoint>& pts,
                  bool with_per_query) {
    o << "[";
    for (size_t i = 0; i < pts.size(); i++) {
        const VisitedPoint& p = pts[i];
        o << (i ? ",\n        " : "\n        ")
          << "{\"visited\": " << json_number(p.visited);
        if (p.nprobe > 0) {
            o << ", \"nprobe\": " << p.nprobe;
        }
        for (const auto& kv : p.metrics) {
            o << ", \"" << kv.first << "\": " << json_number(kv.second);
        }
        if (with_per_query && !p.per_query.empty()) {
            o << ", \"per_query\": {";
            const char* sep = "";
            for (const auto& kv : p.per_query) {
                o << sep << "\"" << kv.first << "\": [";
                for (size_t q = 0; q < kv.second.size(); q++) {
                    o << (q ? "," : "") << json_number(kv.second[q]);
                }
                o << "]";
                sep = ", ";
            }
            o << "}";
        }
        o << "}";
    }
    o << "]";
}

struct RunInfo {
    std::string config;
    double ehi_train_s = -1;
    double kmeans_train_s = -1;
    double de_train_s = -1;
    ehi_cmdline::LeafLoad load;
};

void write_json(const std::string& file, const fd::RetrievalTask& t,
                const RunInfo& info, const std::vector<VisitedCurve>& curves) {
    // built in memory and renamed into place: a failed write leaves an
    // earlier file intact
    std::ostringstream o;
    o << "{\n  \"data\": \"" << ehi_cmdline::json_escape(t.name) << "\",\n"
      << "  \"spec\": \"" << ehi_cmdline::json_escape(FLAGS_data) << "\",\n"
      << "  \"documents\": " << t.nd << ",\n  \"test_queries\": " << t.nq_test
      << ",\n  \"config\": \"" << ehi_cmdline::json_escape(info.config)
      << "\",\n"
      << "  \"train_seconds\": {\"EHI\": " << json_number(info.ehi_train_s)
      << ", \"IVF-Flat kmeans\": " << json_number(info.kmeans_train_s)
      << ", \"DE\": " << json_number(info.de_train_s) << "},\n"
      << "  \"ehi_load\": {\"lists\": " << info.load.nlist
      << ", \"empty\": " << info.load.empty << ", \"expected_over_ideal\": "
      << json_number(info.load.expected_over_ideal)
      << ", \"largest_over_ideal\": "
      << json_number(info.load.largest_over_ideal) << "},\n"
      << "  \"methods\": {";
    for (size_t i = 0; i < curves.size(); i++) {
        o << (i ? ",\n    " : "\n    ") << "\""
          << ehi_cmdline::json_escape(curves[i].method)
          << "\": {\n      \"points\": ";
        write_points(o, curves[i].targets, true);
        o << ",\n      \"sweep\": ";
        write_points(o, curves[i].sweep, false);
        o << "}";
    }
    o << "\n  }\n}\n";
    fd::write_file_atomic(file, o.str());
}

void write_csv(const std::string& file, const std::vector<std::string>& names,
               const std::vector<VisitedCurve>& curves) {
    std::ostringstream o; // renamed into place, as the JSON
    o << "method,kind,nprobe,visited";
    for (const std::string& n : names) {
        o << "," << n;
    }
    o << "\n";
    for (const VisitedCurve& c : curves) {
        for (int kind = 0; kind < 2; kind++) {
            for (const VisitedPoint& p : kind ? c.sweep : c.targets) {
                o << c.method << "," << (kind ? "measured" : "interpolated")
                  << "," << p.nprobe << "," << p.visited;
                for (const std::string& n : names) {
                    auto it = p.metrics.find(n);
                    double v = it == p.metrics.end() ? NAN : it->second;
                    o << ",";
                    if (std::isfinite(v)) {
                        o << v;
                    }
                }
                o << "\n";
            }
        }
    }
    fd::write_file_atomic(file, o.str());
}

void print_tables(const std::vector<std::string>& names,
                  const std::vector<double>& targets,
                  const std::vector<VisitedCurve>& curves) {
    for (const std::string& metric : names) {
        printf("\n%s at %% of documents visited\n| visited |", metric.c_str());
        for (const VisitedCurve& c : curves) {
            printf(" %s |", c.method.c_str());
        }
        printf("\n|---|");
        for (size_t i = 0; i < curves.size(); i++) {
            printf("---|");
        }
        printf("\n");
        for (size_t ti = 0; ti < targets.size(); ti++) {
            printf("| %g%% |", 100 * targets[ti]);
            for (const VisitedCurve& c : curves) {
                double v = c.targets[ti].metrics.count(metric)
                        ? c.targets[ti].metrics.at(metric)
                        : NAN;
                if (std::isfinite(v)) {
                    printf(" %.3f |", v);
                } else {
                    printf(" - |");
                }
            }
            printf("\n");
        }
    }
}

/** Fraction of documents a curve visits to reach `level` of `metric`:
 * log(visited) interpolated linearly in the metric between the two measured
 * points around the level; NaN when the sweep never reaches it. */
double visited_at(const std::vector<VisitedPoint>& sweep,
                  const std::string& metric, double level) {
    for (size_t i = 0; i < sweep.size(); i++) {
        auto it = sweep[i].metrics.find(metric);
        if (it == sweep[i].metrics.end() || it->second < level) {
            continue;
        }
        if (i == 0) {
            return sweep[0].visited;
        }
        double r0 = sweep[i - 1].metrics.at(metric), r1 = it->second;
        double v0 = std::log(sweep[i - 1].visited);
        double v1 = std::log(sweep[i].visited);
        double f = r1 > r0 ? (level - r0) / (r1 - r0) : 1.0;
        return std::exp(v0 + f * (v1 - v0));
    }
    return NAN;
}

/// k-NN data: documents visited at recall@10 0.9 and 0.95 per curve, and
/// each curve's ratio to IVF-Flat's.
void print_visited_at_recall(const std::vector<VisitedCurve>& curves) {
    const VisitedCurve* ivf = nullptr;
    for (const VisitedCurve& c : curves) {
        if (c.method == "IVF-Flat") {
            ivf = &c;
        }
    }
    printf("\ndocuments visited to reach recall@10 (ratio to IVF-Flat)\n"
           "| method | at 0.9 | at 0.95 |\n|---|---|---|\n");
    for (const VisitedCurve& c : curves) {
        printf("| %s |", c.method.c_str());
        for (double level : {0.9, 0.95}) {
            double v = visited_at(c.sweep, "recall@10", level);
            double base =
                    ivf ? visited_at(ivf->sweep, "recall@10", level) : NAN;
            if (std::isfinite(v)) {
                printf(" %.3f%% (%.2fx) |", 100 * v, v / base);
            } else {
                printf(" - |");
            }
        }
        printf("\n");
    }
}

int run() {
    if (FLAGS_data.empty()) {
        throw std::invalid_argument("--data is required (see --help)");
    }
    if (FLAGS_adaptive_cap < 0) {
        throw std::invalid_argument("--adaptive_cap " +
                                    std::to_string(FLAGS_adaptive_cap) +
                                    ": a number of leaves, >= 0");
    }
    std::vector<double> targets =
            ehi_cmdline::parse_double_list(FLAGS_visited, "visited", 0, 1, true);
    fd::RetrievalTaskOptions opt;
    opt.max_test_queries = FLAGS_max_test_queries;
    fd::RetrievalTask task = fd::load_retrieval_task(FLAGS_data, opt);
    ft::JointTrainerConfig cfg = ehi_tools::config_from_flags(task);
    LOG(INFO) << "data " << task.name << ": " << task.nd << " documents, "
              << task.nq_train << " training queries, " << task.nq_test
              << " test queries";
    RunInfo info;
    // LibTorch may leave this thread's OpenMP count at 1: searches and
    // adds after training get it back.
    const int omp_threads = omp_get_max_threads();

    // ---- EHI: read or train
    std::unique_ptr<faiss::Index> ehi;
    std::unique_ptr<faiss_ehi::TextEncoder> text;
    ehi_tools::TrainingInputs in;
    bool have_inputs = false;
    auto inputs = [&]() -> ehi_tools::TrainingInputs& {
        if (!have_inputs) {
            in = ehi_tools::make_training_inputs(task, cfg.encoder, cfg.seed);
            have_inputs = true;
        }
        return in;
    };
    if (!FLAGS_index.empty()) {
        ehi.reset(faiss_ehi::read_index(FLAGS_index.c_str()));
        if (task.is_text) {
            text.reset(new faiss_ehi::TextEncoder(faiss_ehi::read_text_encoder(
                    (FLAGS_index + ".text").c_str())));
        }
        info.config = "read from " + FLAGS_index;
    } else {
        info.config = cfg.describe();
        LOG(INFO) << "training EHI: " << info.config;
        double t0 = ehi_cmdline::now_s();
        ft::JointModel m = ft::JointTrainer(cfg).train(
                inputs().pairs,
                cfg.encoder == ft::EncoderKind::TEXT ? &in.text : nullptr);
        info.ehi_train_s = ehi_cmdline::now_s() - t0;
        ehi = std::move(m.index);
        text = std::move(m.text_encoder);
    }
    omp_set_num_threads(omp_threads);
    std::vector<float> xd = ehi_tools::document_inputs(task, text.get());
    std::vector<float> xq = ehi_tools::test_query_inputs(task, text.get());
    if (ehi->ntotal == 0) {
        ehi->add(task.nd, xd.data());
    } else if (ehi->ntotal != task.nd) {
        throw std::runtime_error("the index holds " +
                                 std::to_string(ehi->ntotal) +
                                 " vectors, the data set " +
                                 std::to_string(task.nd) + " documents");
    }
    info.load = ehi_cmdline::leaf_load(*ehi);
    LOG(INFO) << "EHI lists: " << ehi_cmdline::describe(info.load);
    std::vector<VisitedCurve> curves;
    curves.push_back(curve_of(FLAGS_label, *ehi, xq, task, targets));
    if (FLAGS_adaptive) {
        // the per-query adaptive beam, its own curve (same index)
        faiss::IndexIVF* e = faiss::ivflib::extract_index_ivf(ehi.get());
        if (dynamic_cast<faiss_ehi::EHITreeQuantizer*>(e->quantizer)) {
            VisitedCurve c;
            c.method = FLAGS_label + " adaptive";
            int cap = FLAGS_adaptive_cap > 0
                              ? std::min<int>(FLAGS_adaptive_cap, e->nlist)
                              : std::max<int>(1, int(e->nlist / 8));
            double top = *std::max_element(targets.begin(), targets.end());
            c.sweep = ehi_cmdline::sweep_mass(*ehi, xq.data(), task, cap,
                                              {0.6, 0.5, 0.4, 0.3, 0.2, 0.15,
                                               0.1, 0.07, 0.05, 0.03, 0.02,
                                               0.01, 0.005, 0.002, 0.001},
                                              top);
            add_routing(c.sweep, routing_share(*e, task.nd));
            c.targets = ehi_cmdline::at_visited(c.sweep, targets);
            curves.push_back(std::move(c));
        }
    }

    if (FLAGS_baselines) {
        // ---- IVF-Flat over the very vectors EHI stores
        faiss::IndexIVF* ehi_ivf = faiss::ivflib::extract_index_ivf(ehi.get());
        std::vector<float> ed = ehi_tools::stored_vectors(*ehi, task.nd, xd);
        std::vector<float> eq = ehi_tools::stored_vectors(*ehi, task.nq_test, xq);
        IvfBaseline ivf = make_ivf(ehi_ivf->d, ehi_ivf->nlist,
                                   ehi_ivf->metric_type, task.nd, ed.data());
        info.kmeans_train_s = ivf.train_s;
        curves.push_back(curve_of("IVF-Flat", *ivf.index, eq, task, targets));

        // ---- siamese-only dual encoder: + IVF-Flat, exact
        if (!task.is_knn) {
            ft::JointTrainerConfig de = cfg.dual_encoder();
            LOG(INFO) << "training the siamese-only dual encoder";
            double t0 = ehi_cmdline::now_s();
            ft::JointModel m = ft::JointTrainer(de).train(
                    inputs().pairs,
                    de.encoder == ft::EncoderKind::TEXT ? &in.text : nullptr);
            info.de_train_s = ehi_cmdline::now_s() - t0;
            omp_set_num_threads(omp_threads);
            std::vector<float> dxd =
                    ehi_tools::document_inputs(task, m.text_encoder.get());
            std::vector<float> dxq =
                    ehi_tools::test_query_inputs(task, m.text_encoder.get());
            std::vector<float> ded = ehi_tools::stored_vectors(*m.index, task.nd, dxd);
            std::vector<float> deq = ehi_tools::stored_vectors(*m.index, task.nq_test, dxq);
            faiss::IndexIVF* de_ivf =
                    faiss::ivflib::extract_index_ivf(m.index.get());
            IvfBaseline div =
                    make_ivf(de_ivf->d, ehi_ivf->nlist, de_ivf->metric_type,
                             task.nd, ded.data());
            curves.push_back(
                    curve_of("DE+IVF-Flat", *div.index, deq, task, targets));
            // Faiss's strongest setting: the best of several list counts
            std::vector<VisitedCurve> others;
            for (double scale : {0.5, 2.0, 4.0}) {
                size_t nl = size_t(std::lround(scale * ehi_ivf->nlist));
                if (nl < 1 || idx_t(nl) > task.nd) {
                    continue;
                }
                IvfBaseline b = make_ivf(de_ivf->d, nl, de_ivf->metric_type,
                                         task.nd, ded.data());
                others.push_back(curve_of("DE+IVF-Flat " + std::to_string(nl),
                                          *b.index, deq, task, targets));
            }
            std::vector<const std::vector<VisitedPoint>*> from = {
                    &curves.back().sweep};
            for (const VisitedCurve& c : others) {
                from.push_back(&c.sweep);
            }
            VisitedCurve best;
            best.method = "DE+IVF-Flat best nlist";
            best.sweep = ehi_cmdline::upper_envelope(from, "recall@100");
            best.targets = ehi_cmdline::at_visited(best.sweep, targets);
            curves.push_back(std::move(best));
            faiss::IndexFlat flat(de_ivf->d, de_ivf->metric_type);
            flat.add(task.nd, ded.data());
            VisitedCurve ex;
            ex.method = "exact";
            ex.sweep.push_back(
                    ehi_cmdline::exact_point(flat, deq.data(), task));
            for (double target : targets) {
                VisitedPoint p = ex.sweep[0];
                p.visited = target;
                if (target < 1.0) {
                    for (auto& kv : p.metrics) {
                        kv.second = NAN; // exact search visits everything
                    }
                }
                ex.targets.push_back(p);
            }
            curves.push_back(std::move(ex));
        }
    }

    std::vector<std::string> names = ehi_cmdline::task_metrics(task);
    printf("\n%s: %lld documents, %lld test queries; EHI %s (%s)\n",
           task.name.c_str(), (long long)task.nd, (long long)task.nq_test,
           info.config.c_str(), ehi_cmdline::describe(info.load).c_str());
    if (info.ehi_train_s >= 0) {
        printf("training: EHI %.1f s, Faiss k-means for IVF-Flat %.2f s "
               "(ratio %.0f)",
               info.ehi_train_s, info.kmeans_train_s,
               info.ehi_train_s / std::max(1e-9, info.kmeans_train_s));
        if (info.de_train_s >= 0) {
            printf(", siamese-only dual encoder %.1f s", info.de_train_s);
        }
        printf("\n");
    }
    print_tables(names, targets, curves);
    if (task.is_knn) {
        print_visited_at_recall(curves);
    }
    if (!FLAGS_json.empty()) {
        write_json(FLAGS_json, task, info, curves);
        printf("\nJSON written to %s\n", FLAGS_json.c_str());
    }
    if (!FLAGS_csv.empty()) {
        write_csv(FLAGS_csv, names, curves);
        printf("CSV written to %s\n", FLAGS_csv.c_str());
    }
    if (!FLAGS_plot.empty()) {
        std::vector<ehi_cmdline::Panel> panels;
        for (const std::string& n : names) {
            ehi_cmdline::Panel p;
            p.title = n;
            p.xlabel = "% of documents visited";
            p.ylabel = n;
            for (const VisitedCurve& c : curves) {
                ehi_cmdline::Curve cv;
                cv.name = c.method;
                for (const VisitedPoint& s : c.sweep) {
                    cv.x.push_back(100 * s.visited);
                    cv.y.push_back(s.metrics.at(n));
                }
                p.curves.push_back(std::move(cv));
            }
            panels.push_back(std::move(p));
        }
        if (ehi_cmdline::plot_panels(FLAGS_plot, task.name, panels)) {
            printf("plot written to %s\n", FLAGS_plot.c_str());
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "Quality against documents visited: EHI vs Faiss IVF-Flat.\n"
            "Usage: bench_visited --data SPEC [--index FILE] [--json FILE]",
            run);
}
