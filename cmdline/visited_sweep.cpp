/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */

#include "cmdline/visited_sweep.h"

#include <faiss_ehi/EHITreeQuantizer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>

#include "contrib/data/metrics.h"

namespace ehi_cmdline {

namespace fd = faiss_ehi::data;

std::vector<std::string> task_metrics(const fd::RetrievalTask& t) {
    if (t.is_knn) {
        return {"recall@10"};
    }
    return {"recall@10", "recall@100", "ndcg@10", "mrr@10"};
}

std::vector<int> nprobe_ladder(int nlist, bool fine) {
    std::vector<int> out;
    if (fine) {
        for (int p = 1; p <= 8 && p <= nlist; p++) {
            out.push_back(p);
        }
        if (out.empty()) {
            return out;
        }
        double p = 8;
        while (true) {
            p *= 1.25;
            int ip = int(std::lround(p));
            if (ip <= out.back()) {
                ip = out.back() + 1;
            }
            if (ip > nlist) {
                break;
            }
            out.push_back(ip);
            p = ip;
        }
        return out;
    }
    // 1 2 3 4 6 8 12 16 24 32 ...: steps of about sqrt(2)
    for (long pw = 1; pw < nlist; pw *= 2) {
        out.push_back(int(pw));
        if (pw >= 2 && pw * 3 / 2 < nlist) {
            out.push_back(int(pw * 3 / 2));
        }
    }
    out.push_back(nlist);
    return out;
}

LogXBracket bracket_log_x(const std::vector<double>& xs,
                          const std::vector<double>& ys, double target) {
    LogXBracket b;
    if (xs.size() != ys.size() || xs.empty() || !(target > 0)) {
        return b;
    }
    std::vector<size_t> order(xs.size());
    for (size_t i = 0; i < order.size(); i++) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t c) { return xs[a] < xs[c]; });
    if (target < xs[order.front()] || target > xs[order.back()]) {
        return b;
    }
    b.found = true;
    for (size_t t = 0; t + 1 < order.size(); t++) {
        const size_t i0 = order[t], i1 = order[t + 1];
        const double x0 = xs[i0], x1 = xs[i1];
        if (target >= x0 && target <= x1) {
            if (x1 <= x0 || x0 <= 0) {
                // no log-x slope: the better of the two points
                b.lo = b.hi = ys[i1] > ys[i0] ? i1 : i0;
                return b;
            }
            b.lo = i0;
            b.hi = i1;
            b.weight = (std::log(target) - std::log(x0)) /
                    (std::log(x1) - std::log(x0));
            return b;
        }
    }
    b.lo = b.hi = order.back(); // target == max x
    return b;
}

double interpolate_log_x(std::vector<double> xs, std::vector<double> ys,
                         double target) {
    const LogXBracket b = bracket_log_x(xs, ys, target);
    if (!b.found) {
        return std::numeric_limits<double>::quiet_NaN();
    }
    return ys[b.lo] + b.weight * (ys[b.hi] - ys[b.lo]);
}

namespace {

using idx_t = faiss::Index::idx_t;

int search_k(const fd::RetrievalTask& t) {
    return t.is_knn ? t.k_gt : 100;
}

double mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) {
        sum += x;
    }
    return v.empty() ? 0.0 : sum / double(v.size());
}

// The point's metrics; for relevance data also each query's Recall@100
// and nDCG@10 (for paired comparisons between methods), whose means are
// those two metrics (summed in query order, as the metrics library does).
void score(const fd::RetrievalTask& t, const std::vector<idx_t>& I, int k,
           VisitedPoint& p) {
    if (t.is_knn) {
        p.metrics["recall@10"] = fd::knn_recall_at_k(
                t.nq_test, t.test_gt.data(), t.k_gt, I.data(), k, 10);
        return;
    }
    std::vector<double>& recall = p.per_query["recall@100"];
    std::vector<double>& ndcg = p.per_query["ndcg@10"];
    for (idx_t q = 0; q < t.nq_test; q++) {
        const auto& rel = t.test_relevant[size_t(q)];
        const idx_t* row = I.data() + size_t(q) * size_t(k);
        recall.push_back(fd::query_recall_at_k(rel, row, 100));
        ndcg.push_back(fd::query_ndcg_at_k(rel, row, 10));
    }
    p.metrics["recall@10"] =
            fd::qrels_recall_at_k(t.test_relevant, I.data(), k, 10);
    p.metrics["recall@100"] = mean(recall);
    p.metrics["ndcg@10"] = mean(ndcg);
    p.metrics["mrr@10"] = fd::mrr_at_k(t.test_relevant, I.data(), k, 10);
}

} // namespace

std::vector<VisitedPoint> sweep_nprobe(faiss::Index& index, const float* xq,
                                       const fd::RetrievalTask& t,
                                       const std::vector<int>& nprobes,
                                       double stop_at) {
    faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(&index);
    if (ivf->ntotal <= 0) {
        throw std::runtime_error("sweep_nprobe: the index holds no document");
    }
    const int k = search_k(t);
    std::vector<VisitedPoint> out;
    std::vector<float> D(size_t(t.nq_test) * k);
    std::vector<idx_t> I(size_t(t.nq_test) * k);
    const size_t saved = ivf->nprobe;
    for (int np : nprobes) {
        ivf->nprobe = size_t(np);
        faiss::indexIVF_stats.reset();
        index.search(t.nq_test, xq, k, D.data(), I.data());
        VisitedPoint p;
        p.nprobe = np;
        p.visited = fd::fraction_visited(faiss::indexIVF_stats.ndis, t.nq_test,
                                         ivf->ntotal);
        score(t, I, k, p);
        out.push_back(std::move(p));
        if (out.back().visited >= stop_at) {
            break; // the targets are covered; larger beams cost the most
        }
    }
    ivf->nprobe = saved;
    return out;
}

std::vector<VisitedPoint> sweep_mass(faiss::Index& index, const float* xq,
                                     const fd::RetrievalTask& t, int cap,
                                     const std::vector<double>& thresholds,
                                     double stop_at) {
    faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(&index);
    auto* tq = dynamic_cast<faiss_ehi::EHITreeQuantizer*>(ivf->quantizer);
    if (!tq) {
        throw std::runtime_error("sweep_mass: the index is not routed by an "
                                 "EHI tree");
    }
    const float saved_mass = tq->mass_threshold;
    const int saved_min = tq->min_beam;
    tq->min_beam = 1;
    std::vector<VisitedPoint> out;
    try {
        for (double th : thresholds) {
            tq->mass_threshold = float(th);
            std::vector<VisitedPoint> p = sweep_nprobe(index, xq, t, {cap});
            p[0].metrics["mass_threshold"] = th;
            out.push_back(p[0]);
            if (out.back().visited >= stop_at) {
                break;
            }
        }
    } catch (...) {
        tq->mass_threshold = saved_mass;
        tq->min_beam = saved_min;
        throw;
    }
    tq->mass_threshold = saved_mass;
    tq->min_beam = saved_min;
    return out;
}

VisitedPoint exact_point(faiss::Index& index, const float* xq,
                         const fd::RetrievalTask& t) {
    const int k = search_k(t);
    std::vector<float> D(size_t(t.nq_test) * k);
    std::vector<idx_t> I(size_t(t.nq_test) * k);
    index.search(t.nq_test, xq, k, D.data(), I.data());
    VisitedPoint p;
    p.visited = 1.0;
    score(t, I, k, p);
    return p;
}

std::vector<VisitedPoint> at_visited(const std::vector<VisitedPoint>& sweep,
                                     const std::vector<double>& targets) {
    std::vector<VisitedPoint> out;
    std::vector<double> xs;
    for (const VisitedPoint& s : sweep) {
        xs.push_back(s.visited);
    }
    for (double target : targets) {
        VisitedPoint p;
        p.visited = target;
        if (!sweep.empty()) {
            for (const auto& kv : sweep[0].metrics) {
                std::vector<double> ys;
                for (const VisitedPoint& s : sweep) {
                    ys.push_back(s.metrics.at(kv.first));
                }
                LogXBracket b = bracket_log_x(xs, ys, target);
                // A curve that ends within 0.5% of 100% counts as reaching
                // it (d2l = 1 at full beam scans exactly everything).
                if (!b.found && target == 1.0) {
                    double best_x = 0;
                    for (size_t i = 0; i < xs.size(); i++) {
                        if (xs[i] >= best_x && xs[i] >= 0.995) {
                            best_x = xs[i];
                            b.found = true;
                            b.lo = b.hi = i;
                        }
                    }
                }
                if (!b.found) {
                    p.metrics[kv.first] =
                            std::numeric_limits<double>::quiet_NaN();
                    continue;
                }
                p.metrics[kv.first] =
                        ys[b.lo] + b.weight * (ys[b.hi] - ys[b.lo]);
                // each query read between the same two settings, so that
                // the per-query values average to the curve's value
                auto lo = sweep[b.lo].per_query.find(kv.first);
                auto hi = sweep[b.hi].per_query.find(kv.first);
                if (lo == sweep[b.lo].per_query.end() ||
                    hi == sweep[b.hi].per_query.end() ||
                    lo->second.size() != hi->second.size()) {
                    continue;
                }
                std::vector<double>& v = p.per_query[kv.first];
                for (size_t q = 0; q < lo->second.size(); q++) {
                    v.push_back(lo->second[q] +
                                b.weight * (hi->second[q] - lo->second[q]));
                }
            }
        }
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<VisitedPoint> upper_envelope(
        const std::vector<const std::vector<VisitedPoint>*>& sweeps,
        const std::string& metric) {
    std::vector<VisitedPoint> all;
    for (const auto* sweep : sweeps) {
        all.insert(all.end(), sweep->begin(), sweep->end());
    }
    std::stable_sort(all.begin(), all.end(),
                     [](const VisitedPoint& a, const VisitedPoint& b) {
                         return a.visited < b.visited;
                     });
    std::vector<VisitedPoint> env;
    double best = -INFINITY;
    for (const VisitedPoint& p : all) {
        double v = p.metrics.at(metric);
        if (v > best) {
            if (!env.empty() && env.back().visited == p.visited) {
                env.back() = p; // same budget, better point
            } else {
                env.push_back(p);
            }
            best = v;
        }
    }
    if (!env.empty() && all.back().visited > env.back().visited) {
        VisitedPoint last = env.back();
        last.visited = all.back().visited;
        env.push_back(last);
    }
    return env;
}

} // namespace ehi_cmdline
