/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_scan: how fast inverted lists are scanned, against the memory
 * bandwidth of the machine measured in the same run.
 *
 * 1. Memory bandwidth: a STREAM-style triad a = b + s * c (and a read-only
 *    sum, the access pattern of a list scan) over arrays far larger than
 *    the caches, 1 thread and all threads, best of --runs.
 * 2. Scan throughput: per data set, an EHI<n>x1 index (k-means tree) with
 *    Flat, SQ8 and SQfp16 lists; every list scanned for --scan_queries
 *    queries with faiss-ehi's SIMDListScanner and with Faiss's scanner on
 *    the same index: GB/s of list codes read, 1 thread and all threads,
 *    median of --runs; each run of the new scan follows a triad on as
 *    many threads, and its share of the triad is the median of the runs'
 *    ratios (the VM's bandwidth drifts between the start and the scan).
 * 3. QPS at recall@10 0.9, 1 thread: Faiss IVF<n>,Flat; EHI<n>x1,Flat
 *    with Faiss's scanner and with the new one (same index); EHI<n>x1 SQ8
 *    and SQfp16 over the same tree. nprobe swept, median of --runs, the
 *    fastest setting reaching the recall. EHI<n>x1 and IVF<n> share the
 *    partition family (flat k-means), so the ratio measures the scan.
 *    Then EHI<sqrt n>x2 (Flat, SQfp16), the best EHI configuration, and
 *    list-major blocking against query by query per codec and batch.
 * 4. The codecs against Flat at recall 0.9, in both scan modes: the
 *    smallest integer nprobe reaching it, and the mix of it and one less
 *    that reaches it exactly, timed in --pair_rounds paired rounds.
 *
 * Usage: bench_scan [--data fmnist,glove100] [--runs 5]
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
#include <faiss/IndexIVF.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/index_factory.h>
#include <faiss/utils/Heap.h>

#include <faiss_ehi/faiss_ehi.h>

#include "cmdline/program_main.h"
#include "cmdline/threads.h"
#include "cmdline/timing.h"
#include "cmdline/visited_sweep.h"
#include "contrib/data/metrics.h"
#include "contrib/data/retrieval_task.h"

DEFINE_string(data, "fmnist,glove100",
              "comma-separated k-NN data sets (fmnist[:DIR], glove100[:DIR], "
              "synthetic, vecs:BASE[,QUERIES])");
DEFINE_int32(runs, 3, "timed runs per measurement (median; STREAM: best)");
DEFINE_int32(scan_queries, 8, "queries per full scan of all lists");
DEFINE_int64(stream_mib, 256, "size of each STREAM array (MiB)");
DEFINE_int32(nlist, 0,
             "n of EHI<n>x1 / IVF<n> (0: 256 for fmnist, 1024 "
             "otherwise)");
DEFINE_int64(nq, 500, "test queries for the QPS part (0: all)");
DEFINE_int32(max_threads, 0, "the all-threads setting (0: all cores)");
DEFINE_bool(qps, true, "run the QPS part");
DEFINE_int32(pair_rounds, 15,
             "rounds of the paired codec comparison at recall 0.9 (each "
             "round times every codec back to back; median of the ratios)");
DEFINE_bool(scan, true, "run the scan-throughput part");

namespace {

namespace fd = faiss_ehi::data;
using idx_t = faiss::Index::idx_t;
using ehi_cmdline::median;
using ehi_cmdline::now_s;

int all_threads() {
    return FLAGS_max_threads > 0 ? FLAGS_max_threads : omp_get_num_procs();
}

// ------------------------------------------------------------- bandwidth

struct Bandwidth {
    double triad_gbs = 0, read_gbs = 0;
};

/** Sum of n floats in 32 independent lanes: one chain of dependent adds
 * would measure the add latency, not the memory. */
__attribute__((target_clones("arch=haswell", "default"))) float sum_floats(
        const float* a, size_t n) {
    float acc[32] = {};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int j = 0; j < 32; j++) {
            acc[j] += a[i + j];
        }
    }
    float s = 0;
    for (; i < n; i++) {
        s += a[i];
    }
    for (int j = 0; j < 32; j++) {
        s += acc[j];
    }
    return s;
}

/// The STREAM arrays, kept for the whole run: the scan measurements
/// pair each of their runs with a triad taken just before (the VM's
/// bandwidth drifts by 2x within minutes, so one figure at the start
/// would not describe a scan run later).
struct StreamArrays {
    std::vector<float> a, b, c;
    explicit StreamArrays(size_t n) : a(n), b(n), c(n) {
#pragma omp parallel for
        for (size_t i = 0; i < n; i++) {
            a[i] = 0;
            b[i] = 1;
            c[i] = 2;
        }
    }
    /// One triad a = b + 3 c on `threads` threads: GB/s (3 arrays).
    double triad(int threads) {
        const size_t n = a.size();
        float *pa = a.data(), *pb = b.data(), *pc = c.data();
        const float s = 3;
        double t0 = now_s();
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            pa[i] = pb[i] + s * pc[i];
        }
        return 3.0 * n * 4 / (now_s() - t0) / 1e9;
    }
};

/** STREAM triad and a read-only sum, best of `runs` (STREAM's rule: the
 * best run is the one least disturbed). Triad counts 3 arrays of traffic
 * (as STREAM does, without the write-allocate read). */
Bandwidth measure_bandwidth(StreamArrays& st, int threads, int runs) {
    const size_t n = st.a.size();
    std::vector<float>& a = st.a;
    Bandwidth bw;
    volatile float sink = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        st.triad(threads);
        double t1 = now_s();
        float acc = 0;
#pragma omp parallel num_threads(threads) reduction(+ : acc)
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            size_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
            acc += sum_floats(a.data() + i0, i1 - i0);
        }
        double t2 = now_s();
        sink = sink + acc;
        bw.triad_gbs = std::max(bw.triad_gbs, 3.0 * n * 4 / (t1 - t0) / 1e9);
        bw.read_gbs = std::max(bw.read_gbs, 1.0 * n * 4 / (t2 - t1) / 1e9);
    }
    return bw;
}

// ------------------------------------------------------ scan throughput

void set_simd_scan(faiss::IndexIVF* ivf, bool on) {
    if (auto* e = dynamic_cast<faiss_ehi::IndexEHITree*>(ivf)) {
        e->simd_scan = on;
    } else if (auto* s = dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(ivf)) {
        s->simd_scan = on;
    }
}

/// A scan's GB/s, and its ratio to the triad on as many threads taken
/// just before each run (medians of the runs).
struct ScanRate {
    double gbs = 0, of_triad = 0;
};

/** GB/s of list codes read while every list is scanned for nq queries
 * (k = 10 heaps), median of `runs`; with `paired`, each run follows a
 * triad (best of 2) on its arrays and the same threads, and of_triad is
 * the median of the runs' ratios. */
ScanRate scan_gbs(faiss::IndexIVF* ivf, bool simd, const float* xq, int nq,
                  int threads, int runs, StreamArrays* paired) {
    set_simd_scan(ivf, simd);
    const size_t nlist = ivf->nlist;
    // coarse distances (read by the by-residual codecs), outside the timing
    std::vector<float> cd(size_t(nq) * nlist);
    std::vector<idx_t> cl(size_t(nq) * nlist);
    ivf->quantizer->search(nq, xq, nlist, cd.data(), cl.data());
    double bytes = 0;
    for (size_t l = 0; l < nlist; l++) {
        bytes += double(ivf->invlists->list_size(l)) * ivf->code_size;
    }
    std::vector<double> gbs, ratio;
    for (int r = 0; r < runs; r++) {
        double triad = 0;
        if (paired) {
            triad = std::max(paired->triad(threads), paired->triad(threads));
        }
        double t0 = now_s();
#pragma omp parallel num_threads(threads)
        {
            std::unique_ptr<faiss::InvertedListScanner> sc(
                    ivf->get_InvertedListScanner(false, nullptr));
            const size_t k = 10;
            std::vector<float> D(k);
            std::vector<idx_t> I(k);
#pragma omp for schedule(dynamic)
            for (int q = 0; q < nq; q++) {
                sc->set_query(xq + size_t(q) * ivf->d);
                if (ivf->metric_type == faiss::METRIC_L2) {
                    faiss::maxheap_heapify(k, D.data(), I.data());
                } else {
                    faiss::minheap_heapify(k, D.data(), I.data());
                }
                for (size_t j = 0; j < nlist; j++) {
                    idx_t l = cl[size_t(q) * nlist + j];
                    if (l < 0) {
                        continue;
                    }
                    sc->set_list(l, cd[size_t(q) * nlist + j]);
                    size_t ls = ivf->invlists->list_size(l);
                    faiss::InvertedLists::ScopedCodes codes(ivf->invlists, l);
                    faiss::InvertedLists::ScopedIds ids(ivf->invlists, l);
                    sc->scan_codes(ls, codes.get(), ids.get(), D.data(),
                                   I.data(), k);
                }
            }
        }
        gbs.push_back(bytes * nq / (now_s() - t0) / 1e9);
        if (paired) {
            ratio.push_back(gbs.back() / triad);
        }
    }
    set_simd_scan(ivf, true);
    ScanRate out;
    out.gbs = median(gbs);
    out.of_triad = paired ? median(ratio) : 0;
    return out;
}

// ---------------------------------------------------------------- QPS

struct Point {
    int nprobe = 0;
    double recall = 0, qps = 0;
};

/** Searches all test queries in one batch at `nprobe` (the thread count
 * as set); returns the seconds taken, and the recall@10 in *recall if
 * given. */
double search_at_nprobe(faiss::IndexIVF* ivf, const faiss::Index& top,
                        const fd::RetrievalTask& t, int nprobe,
                        double* recall = nullptr) {
    const idx_t k = 10;
    std::vector<float> D(t.nq_test * k);
    std::vector<idx_t> I(t.nq_test * k);
    ivf->nprobe = nprobe;
    double t0 = now_s();
    top.search(t.nq_test, t.test_query_vecs.data(), k, D.data(), I.data());
    double s = now_s() - t0;
    if (recall) {
        *recall = fd::knn_recall_at_k(t.nq_test, t.test_gt.data(), t.k_gt,
                                      I.data(), int(k), 10);
    }
    return s;
}

/// nprobe swept (1 thread) until recall@10 reaches 0.95 (or nlist).
std::vector<Point> sweep(faiss::IndexIVF* ivf, faiss::Index* top,
                         const fd::RetrievalTask& t, const std::string& name) {
    ehi_cmdline::set_num_threads(1);
    std::vector<Point> pts;
    for (int np : ehi_cmdline::nprobe_ladder(int(ivf->nlist))) {
        Point p;
        p.nprobe = np;
        std::vector<double> qps;
        for (int r = 0; r < FLAGS_runs; r++) {
            qps.push_back(t.nq_test /
                          search_at_nprobe(ivf, *top, t, np, &p.recall));
        }
        p.qps = median(qps);
        pts.push_back(p);
        printf("  %-30s nprobe %5d recall@10 %.4f QPS(1t) %9.1f\n",
               name.c_str(), np, p.recall, p.qps);
        fflush(stdout);
        if (p.recall >= 0.95) {
            break;
        }
    }
    ehi_cmdline::set_num_threads(all_threads());
    return pts;
}

/// The fastest setting reaching `target` (nullptr if none).
const Point* at_recall(const std::vector<Point>& pts, double target) {
    const Point* best = nullptr;
    for (const Point& p : pts) {
        if (p.recall >= target && (!best || p.qps > best->qps)) {
            best = &p;
        }
    }
    return best;
}

const Point* at_nprobe(const std::vector<Point>& pts, int nprobe) {
    for (const Point& p : pts) {
        if (p.nprobe == nprobe) {
            return &p;
        }
    }
    return nullptr;
}

/** Where a method crosses a recall target over the integer nprobes: the
 * smallest nprobe `hi` reaching it, the recall there and at hi - 1, and
 * `mix`, the share of queries to search at hi (the others at hi - 1) for a
 * mean recall of exactly the target. Mixing two settings query by query
 * is a setting a user can run, and it makes the comparison independent of
 * where each method's integer steps fall: one method's recall of 0.8994 at
 * nprobe 3 would otherwise cost it a whole extra list per query. */
struct Crossing {
    int hi = 0;
    double r_hi = 0, r_lo = 0, mix = 1;
};

Crossing find_crossing(faiss::IndexIVF* ivf, const faiss::Index& top,
                       const fd::RetrievalTask& t, double target) {
    Crossing c;
    double prev = 0;
    for (int np = 1; np <= int(ivf->nlist); np++) {
        double r = 0;
        search_at_nprobe(ivf, top, t, np, &r);
        if (r >= target) {
            c.hi = np;
            c.r_hi = r;
            c.r_lo = np > 1 ? prev : 0;
            c.mix = np > 1 && r > prev ? (target - prev) / (r - prev) : 1;
            return c;
        }
        prev = r;
    }
    return c; // hi == 0: never reached
}

/// QPS over the test queries searched `batch` at a time, median of runs.
double batch_qps(const faiss::Index& index, const fd::RetrievalTask& t,
                 int batch) {
    const idx_t k = 10;
    std::vector<float> D(t.nq_test * k);
    std::vector<idx_t> I(t.nq_test * k);
    std::vector<double> qps;
    for (int r = 0; r < FLAGS_runs; r++) {
        double t0 = now_s();
        for (idx_t q0 = 0; q0 < t.nq_test; q0 += batch) {
            idx_t nb = std::min<idx_t>(batch, t.nq_test - q0);
            index.search(nb, t.test_query_vecs.data() + q0 * t.d, k,
                         D.data() + q0 * k, I.data() + q0 * k);
        }
        qps.push_back(t.nq_test / (now_s() - t0));
    }
    return median(qps);
}

/// An EHI<n>x1 index with `codec` lists over a copy of `tree`.
std::unique_ptr<faiss::Index> same_tree(
        const fd::RetrievalTask& t, int n, const std::string& codec,
        const faiss_ehi::EHITreeQuantizer& tree) {
    std::string key = "EHI" + std::to_string(n) + "x1," + codec;
    std::unique_ptr<faiss::Index> idx(
            faiss_ehi::index_factory(t.d, key.c_str(), t.metric));
    faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(idx.get());
    if (ivf->own_fields) {
        delete ivf->quantizer;
    }
    ivf->quantizer = new faiss_ehi::EHITreeQuantizer(tree);
    ivf->own_fields = true;
    idx->train(t.nd, t.doc_vecs.data()); // the codec only: tree trained
    idx->add(t.nd, t.doc_vecs.data());
    return idx;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

void bench_data(const std::string& spec, StreamArrays& stream,
                const Bandwidth& bw1) {
    fd::RetrievalTaskOptions opt;
    opt.max_test_queries = FLAGS_nq;
    opt.knn_train_queries = 100; // unused: k-means trees need no pairs
    fd::RetrievalTask t = fd::load_retrieval_task(spec, opt);
    const int n = FLAGS_nlist > 0       ? FLAGS_nlist
            : t.name == "fashion-mnist" ? 256
                                        : 1024;
    const int nt = all_threads();
    printf("\n## %s: %ld documents, d = %d, %s, n = %d lists, %ld test "
           "queries\n",
           t.name.c_str(), long(t.nd), t.d,
           t.metric == faiss::METRIC_L2 ? "L2" : "IP", n, long(t.nq_test));
    ehi_cmdline::set_num_threads(nt);

    faiss_ehi::set_tree_trainer(
            std::make_shared<faiss_ehi::KMeansTreeTrainer>());
    const std::string ekey = "EHI" + std::to_string(n) + "x1";
    LOG(INFO) << t.name << ": training " << ekey << ",Flat";
    std::unique_ptr<faiss::Index> flat(
            faiss_ehi::index_factory(t.d, (ekey + ",Flat").c_str(), t.metric));
    flat->train(t.nd, t.doc_vecs.data());
    flat->add(t.nd, t.doc_vecs.data());
    auto* eflat = dynamic_cast<faiss_ehi::IndexEHITree*>(
            faiss::ivflib::extract_index_ivf(flat.get()));
    const faiss_ehi::EHITreeQuantizer& tree = *eflat->tree_quantizer();
    LOG(INFO) << t.name << ": SQ8 and SQfp16 lists over the same tree";
    std::unique_ptr<faiss::Index> sq8 = same_tree(t, n, "SQ8", tree);
    std::unique_ptr<faiss::Index> fp16 = same_tree(t, n, "SQfp16", tree);

    struct Codec {
        const char* name;
        faiss::Index* index;
    } codecs[] = {
            {"Flat", flat.get()}, {"SQ8", sq8.get()}, {"fp16", fp16.get()}};

    if (FLAGS_scan) {
        printf("\nScan throughput (%s, all %d lists, %d queries, median of "
               "%d): GB/s of list codes read; kernels: %s\n",
               t.name.c_str(), n, FLAGS_scan_queries, FLAGS_runs,
               faiss_ehi::scan_level_name(faiss_ehi::scan_level_in_use()));
        printf("(new / triad: each scan run against a triad on as many "
               "threads just before it, median of the runs' ratios; "
               "/ read: against the read-only sum at the start)\n");
        printf("| lists | MB | new 1t | Faiss 1t | new 1t / triad 1t | new "
               "1t / read 1t | new %dt | Faiss %dt | new %dt / triad %dt |\n",
               nt, nt, nt, nt);
        printf("|---|---|---|---|---|---|---|---|---|\n");
        int nqs = std::min<int>(FLAGS_scan_queries, int(t.nq_test));
        for (const Codec& c : codecs) {
            faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(c.index);
            LOG(INFO) << t.name << ": scanning " << c.name << " lists";
            double mb = double(ivf->ntotal) * ivf->code_size / 1e6;
            const float* xq = t.test_query_vecs.data();
            ScanRate n1 = scan_gbs(ivf, true, xq, nqs, 1, FLAGS_runs, &stream);
            ScanRate f1 = scan_gbs(ivf, false, xq, nqs, 1, FLAGS_runs, nullptr);
            ScanRate nn = scan_gbs(ivf, true, xq, nqs, nt, FLAGS_runs, &stream);
            ScanRate fn =
                    scan_gbs(ivf, false, xq, nqs, nt, FLAGS_runs, nullptr);
            printf("| %s | %.0f | %.2f | %.2f | %.0f%% | %.0f%% | %.2f | "
                   "%.2f | %.0f%% |\n",
                   c.name, mb, n1.gbs, f1.gbs, 100 * n1.of_triad,
                   100 * n1.gbs / bw1.read_gbs, nn.gbs, fn.gbs,
                   100 * nn.of_triad);
            fflush(stdout);
        }
    }
    if (!FLAGS_qps) {
        return;
    }
    printf("\nQPS sweep (%s, 1 thread, %ld queries, median of %d)\n",
           t.name.c_str(), long(t.nq_test), FLAGS_runs);
    const std::string ikey = "IVF" + std::to_string(n) + ",Flat";
    std::unique_ptr<faiss::Index> ivf(
            faiss::index_factory(t.d, ikey.c_str(), t.metric));
    ivf->train(t.nd, t.doc_vecs.data());
    ivf->add(t.nd, t.doc_vecs.data());
    auto* ivf_ivf = faiss::ivflib::extract_index_ivf(ivf.get());

    auto p_ivf = sweep(ivf_ivf, ivf.get(), t, ikey + " (Faiss scan)");
    // The kernel alone first: query by query, as Faiss's scan goes.
    eflat->block_queries = false;
    eflat->simd_scan = false;
    auto p_old = sweep(eflat, flat.get(), t, ekey + ",Flat Faiss scan");
    eflat->simd_scan = true;
    auto p_new = sweep(eflat, flat.get(), t, ekey + ",Flat new scan");
    // Then the defaults: a batch of --nq queries scans list-major.
    eflat->block_queries = true;
    auto p_block = sweep(eflat, flat.get(), t,
                         ekey + ",Flat new scan + blocking");
    auto* esq8 = dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(
            faiss::ivflib::extract_index_ivf(sq8.get()));
    auto* efp16 = dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(
            faiss::ivflib::extract_index_ivf(fp16.get()));
    FAISS_THROW_IF_NOT_MSG(esq8 && efp16, "bench_scan: EHI SQ index expected");
    esq8->block_queries = efp16->block_queries = false;
    auto p_sq8 = sweep(esq8, sq8.get(), t, ekey + ",SQ8 new scan");
    auto p_fp16 = sweep(efp16, fp16.get(), t, ekey + ",SQfp16 new scan");
    esq8->block_queries = efp16->block_queries = true;
    auto p_sq8_block = sweep(esq8, sq8.get(), t, ekey + ",SQ8 + blocking");
    auto p_fp16_block =
            sweep(efp16, fp16.get(), t, ekey + ",SQfp16 + blocking");

    // A two-level tree with as many leaves (EHI<sqrt n>x2, the k-means
    // tree trainer), Flat and fp16 lists, defaults: the other EHI
    // configurations in the table, so that the best one can be named.
    const int B = int(std::lround(std::sqrt(double(n))));
    std::vector<std::pair<std::string, std::vector<Point>>> two_level;
    std::vector<std::unique_ptr<faiss::Index>> keep;
    if (B * B == n) {
        for (const char* codec : {"Flat", "SQfp16"}) {
            const std::string key = "EHI" + std::to_string(B) + "x2," + codec;
            LOG(INFO) << t.name << ": training " << key;
            keep.emplace_back(
                    faiss_ehi::index_factory(t.d, key.c_str(), t.metric));
            keep.back()->train(t.nd, t.doc_vecs.data());
            keep.back()->add(t.nd, t.doc_vecs.data());
            two_level.emplace_back(
                    key + ", new scan + blocking (default)",
                    sweep(faiss::ivflib::extract_index_ivf(keep.back().get()),
                          keep.back().get(), t, key + " default"));
        }
    }

    const Point* ref = at_recall(p_ivf, 0.9);
    printf("\nQPS at recall@10 >= 0.9 (%s, 1 thread)\n", t.name.c_str());
    printf("| method | nprobe | recall@10 | QPS | / %s |\n", ikey.c_str());
    printf("|---|---|---|---|---|\n");
    auto row = [&](const std::string& name, const std::vector<Point>& pts) {
        const Point* p = at_recall(pts, 0.9);
        if (!p) {
            printf("| %s | - | < 0.9 | - | - |\n", name.c_str());
            return;
        }
        printf("| %s | %d | %.4f | %.1f | %s |\n", name.c_str(), p->nprobe,
               p->recall, p->qps,
               ref ? (std::to_string(p->qps / ref->qps).substr(0, 4) + "x")
                               .c_str()
                   : "-");
    };
    row(ikey + " (Faiss scan)", p_ivf);
    row(ekey + ",Flat, Faiss scan", p_old);
    row(ekey + ",Flat, new scan", p_new);
    row(ekey + ",Flat, new scan + list-major blocking (default, batch " +
                std::to_string(t.nq_test) + ")",
        p_block);
    row(ekey + ",SQ8, new scan", p_sq8);
    row(ekey + ",SQfp16, new scan", p_fp16);
    row(ekey + ",SQ8, new scan + blocking (default)", p_sq8_block);
    row(ekey + ",SQfp16, new scan + blocking (default)", p_fp16_block);
    for (const auto& tl : two_level) {
        row(tl.first, tl.second);
    }
    // the best EHI configuration of the table
    std::string best_name;
    const Point* best = nullptr;
    auto consider = [&](const std::string& name, const std::vector<Point>& p) {
        const Point* b = at_recall(p, 0.9);
        if (b && (!best || b->qps > best->qps)) {
            best = b;
            best_name = name;
        }
    };
    consider(ekey + ",Flat (default)", p_block);
    consider(ekey + ",SQ8 (default)", p_sq8_block);
    consider(ekey + ",SQfp16 (default)", p_fp16_block);
    for (const auto& tl : two_level) {
        consider(tl.first, tl.second);
    }
    if (best && ref) {
        printf("\nBest EHI configuration at recall@10 >= 0.9: %s, %.1f QPS, "
               "%.2fx %s\n",
               best_name.c_str(), best->qps, best->qps / ref->qps,
               ikey.c_str());
    }

    // The codecs against Flat at recall 0.9, paired: each round times
    // every method back to back, so the VM's drifting speed (2x within
    // minutes on the machines measured) cancels in the per-round ratios.
    {
        struct Method {
            std::string name;
            faiss::IndexIVF* ivf;
            const faiss::Index* top;
            bool blocked;
            Crossing c;
            std::vector<double> t_hi, t_lo;
        };
        std::vector<Method> ms;
        for (bool blocked : {true, false}) {
            const char* mode =
                    blocked ? " (default: list-major)" : " (query by query)";
            ms.push_back({"Flat" + std::string(mode), eflat, flat.get(),
                          blocked, {}, {}, {}});
            ms.push_back({"SQ8" + std::string(mode), esq8, sq8.get(), blocked,
                          {}, {}, {}});
            ms.push_back({"fp16" + std::string(mode), efp16, fp16.get(),
                          blocked, {}, {}, {}});
        }
        auto set_blocked = [&](const Method& m) {
            if (auto* e = dynamic_cast<faiss_ehi::IndexEHITree*>(m.ivf)) {
                e->block_queries = m.blocked;
            } else {
                dynamic_cast<faiss_ehi::IndexEHITreeSQ*>(m.ivf)
                        ->block_queries = m.blocked;
            }
        };
        ehi_cmdline::set_num_threads(1);
        for (Method& m : ms) {
            set_blocked(m);
            m.c = find_crossing(m.ivf, *m.top, t, 0.9);
        }
        for (int r = 0; r < FLAGS_pair_rounds; r++) {
            for (Method& m : ms) {
                if (m.c.hi == 0) {
                    continue;
                }
                set_blocked(m);
                m.t_hi.push_back(search_at_nprobe(m.ivf, *m.top, t, m.c.hi));
                m.t_lo.push_back(m.c.hi > 1 && m.c.mix < 1
                                         ? search_at_nprobe(m.ivf, *m.top, t,
                                                          m.c.hi - 1)
                                         : m.t_hi.back());
            }
        }
        ehi_cmdline::set_num_threads(nt);
        printf("\nCodecs against Flat at recall@10 0.9 (%s, 1 thread, batch "
               "%ld, %d paired rounds; ratios are medians of the rounds' "
               "ratios to Flat in the same mode)\n",
               t.name.c_str(), long(t.nq_test), FLAGS_pair_rounds);
        printf("| lists | smallest nprobe reaching 0.9 | recall there / one "
               "less | QPS there | / Flat | share at that nprobe for 0.9 "
               "exactly | QPS at 0.9 (mixed) | / Flat |\n");
        printf("|---|---|---|---|---|---|---|---|\n");
        const double nq = double(t.nq_test);
        for (size_t i = 0; i < ms.size(); i++) {
            const Method& m = ms[i];
            const Method& f = ms[i - i % 3]; // Flat of the same mode
            if (m.c.hi == 0 || f.c.hi == 0) {
                printf("| %s | < 0.9 at every nprobe | | | | | | |\n",
                       m.name.c_str());
                continue;
            }
            std::vector<double> q_hi, q_mix, ratio_hi, ratio_mix;
            for (size_t r = 0; r < m.t_hi.size(); r++) {
                auto mixed = [](const Method& x, size_t r) {
                    return x.c.mix * x.t_hi[r] + (1 - x.c.mix) * x.t_lo[r];
                };
                q_hi.push_back(nq / m.t_hi[r]);
                q_mix.push_back(nq / mixed(m, r));
                ratio_hi.push_back(f.t_hi[r] / m.t_hi[r]);
                ratio_mix.push_back(mixed(f, r) / mixed(m, r));
            }
            printf("| %s | %d | %.4f / %.4f | %.1f | %.2f | %.3f | %.1f | "
                   "%.2f |\n",
                   m.name.c_str(), m.c.hi, m.c.r_hi, m.c.r_lo, median(q_hi),
                   median(ratio_hi), m.c.mix, median(q_mix),
                   median(ratio_mix));
        }
        fflush(stdout);
        eflat->block_queries = esq8->block_queries = efp16->block_queries =
                true;
    }

    // SQ recall at the visited count (nprobe) where Flat reaches 0.9
    const Point* fp = at_recall(p_new, 0.9);
    if (fp) {
        printf("\nMulti-query blocking (%s, new scan, nprobe %d for every "
               "codec): QPS, query-major vs list-major\n",
               t.name.c_str(), fp->nprobe);
        printf("| lists | batch | threads | query-major | list-major | ratio "
               "|\n|---|---|---|---|---|---|\n");
        // One row per codec, batch and thread count; `idx` is the EHI
        // index (IndexEHITree or IndexEHITreeSQ: both have the switches).
        auto table = [&](const char* name, auto* idx, const faiss::Index& top) {
            idx->nprobe = fp->nprobe;
            const auto min_batch = idx->block_min_batch;
            idx->block_min_batch = 2; // blocking as asked, at any batch
            for (int batch : {1, 16, 256, 1024}) {
                for (int th : {1, nt}) {
                    ehi_cmdline::set_num_threads(th);
                    double q[2];
                    for (int blocked = 0; blocked < 2; blocked++) {
                        idx->block_queries = blocked;
                        q[blocked] = batch_qps(top, t, batch);
                    }
                    printf("| %s | %d | %d | %.1f | %.1f | %.2f |\n", name,
                           batch, th, q[0], q[1], q[1] / q[0]);
                    fflush(stdout);
                }
            }
            idx->block_queries = true;
            idx->block_min_batch = min_batch;
        };
        table("Flat", eflat, *flat);
        table("SQ8", esq8, *sq8);
        table("fp16", efp16, *fp16);
        ehi_cmdline::set_num_threads(nt);
    }
    if (fp) {
        printf("\nRecall@10 at equal visited (nprobe %d, the same tree):\n",
               fp->nprobe);
        for (auto* pr : {&p_sq8, &p_fp16}) {
            const Point* q = at_nprobe(*pr, fp->nprobe);
            printf("  %s: %s (Flat %.4f)\n", pr == &p_sq8 ? "SQ8" : "SQfp16",
                   q ? std::to_string(q->recall).c_str()
                     : "not measured (stopped below)",
                   fp->recall);
        }
    }
}

int run() {
    const int nt = all_threads();
    size_t n = size_t(FLAGS_stream_mib) << 20 >> 2;
    LOG(INFO) << "STREAM arrays: 3 x " << FLAGS_stream_mib << " MiB";
    StreamArrays stream(n);
    Bandwidth bw1 = measure_bandwidth(stream, 1, FLAGS_runs);
    Bandwidth bwn = measure_bandwidth(stream, nt, FLAGS_runs);
    printf("## Memory bandwidth (best of %d)\n", FLAGS_runs);
    printf("| threads | triad GB/s | read GB/s |\n|---|---|---|\n");
    printf("| 1 | %.2f | %.2f |\n| %d | %.2f | %.2f |\n", bw1.triad_gbs,
           bw1.read_gbs, nt, bwn.triad_gbs, bwn.read_gbs);
    fflush(stdout);
    for (const std::string& spec : split(FLAGS_data)) {
        bench_data(spec, stream, bw1);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "List-scan throughput (GB/s) against memory bandwidth, and QPS "
            "at recall@10 0.9 of EHI<n>x1 with faiss-ehi's scan kernels vs "
            "Faiss IVF<n>,Flat.\nUsage: bench_scan [--data fmnist,glove100]",
            run);
}
