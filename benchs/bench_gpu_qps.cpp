/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_gpu_qps: queries per second of the GPU EHI index (faiss_ehi::gpu)
 * against the CPU index it mirrors (all threads), on Fashion-MNIST and a
 * GloVe-100 subset, at the beam (nprobe) where recall@10 reaches a target
 * (0.9 by default), for batch sizes 1, 16 and 1024.
 *
 *   bench_gpu_qps --fmnist_dir /usr/share/datasets/fashion-mnist \
 *                 --glove_file glove100_sub.f16 --json out.json
 *
 * For each data set: the index comes from faiss_ehi::index_factory with the
 * built-in k-means tree trainer (EHI16x2 for Fashion-MNIST, EHI64x2 for
 * GloVe); the exact ground truth from faiss::IndexFlat; the beam is the
 * smallest of a ladder of beams whose CPU recall@10 reaches the target. At
 * that beam each batch size is timed (median of --runs runs, each over at
 * least --min_queries queries, whole search calls including the host-device
 * copies), then the GPU searches are repeated with CUDA events around the
 * routing phase to give the share of GPU time spent routing. The CPU runs
 * OpenMP over the queries with all threads and, by default, a one-thread
 * BLAS inside (--cpu_blas_threads); it is also timed with OpenBLAS's own
 * thread count, and the ratio uses the faster of the two.
 *
 * --glove_export FILE writes a GloVe subset (--glove_nb base words and
 * --glove_nq queries, from the npm package, see contrib/data/glove.h) in a
 * small fp16 file for machines without the package (scripts/gpu_pack.sh).
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <omp.h>

#include <cuda_fp16.h>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IndexIVF.h>

#include <faiss_ehi/faiss_ehi.h>
#include <faiss_ehi/gpu/GpuIndexEHITree.h>

#include "cmdline/flag_lists.h"
#include "cmdline/json.h"
#include "cmdline/program_main.h"
#include "cmdline/threads.h"
#include "cmdline/timing.h"
#include "contrib/data/dataset.h"
#include "contrib/data/fashion_mnist.h"
#include "contrib/data/glove.h"
#include "contrib/data/ground_truth.h"
#include "contrib/data/metrics.h"

DEFINE_string(datasets, "fmnist,glove", "comma-separated: fmnist, glove");
DEFINE_string(fmnist_dir, faiss_ehi::data::kFashionMnistDir,
              "directory of the Fashion-MNIST IDX files");
DEFINE_string(fmnist_key, "EHI16x2", "factory key for Fashion-MNIST");
DEFINE_string(glove_file, "",
              "GloVe subset written by --glove_export (else the npm package "
              "is read, see --glove_dir)");
DEFINE_string(glove_dir, "", "npm package directory (default: see glove.h)");
DEFINE_string(glove_key, "EHI64x2", "factory key for GloVe");
DEFINE_int64(glove_nb, 60000, "GloVe base vectors (subset)");
DEFINE_int64(glove_nq, 2000, "GloVe queries (subset)");
DEFINE_string(glove_export, "", "write a GloVe subset to this file and exit");
DEFINE_int64(nq, 0, "use at most this many queries (0: all)");
DEFINE_double(target_recall, 0.9, "recall@k that picks the beam");
DEFINE_int32(k, 10, "neighbours per query");
DEFINE_string(batches, "1,16,1024", "batch sizes");
DEFINE_string(beams,
              "1,2,3,4,5,6,8,10,12,16,20,24,32,40,48,64,80,96,128,160,"
              "192,256,320,384,512,640,768,1024",
              "beam ladder searched for the target recall");
DEFINE_int32(runs, 3, "timed runs per measurement (median reported)");
DEFINE_int64(min_queries, 8192,
             "queries per timed run at batch >= 16 (the query set cycles)");
DEFINE_int64(batch1_queries, 1000, "queries per timed run at batch 1");
DEFINE_int32(threads, 0, "CPU threads (0: all)");
DEFINE_bool(fp16, true, "also time the GPU index with fp16 storage");
DEFINE_int32(device, 0, "CUDA device");
DEFINE_string(json, "", "write the results as JSON to this file");
DEFINE_int32(cpu_blas_threads, 1,
             "BLAS threads inside the CPU searches (OpenMP runs over the "
             "queries with all threads; a multi-threaded BLAS inside them "
             "oversubscribes the cores); the CPU is also timed with the "
             "BLAS default (column 'CPU QPS, BLAS default')");
DEFINE_bool(cpu_only, false,
            "check the CPU side only (no GPU needed; GPU columns are 0)");

namespace {

using idx_t = faiss::Index::idx_t;
using faiss_ehi::gpu::GpuIndexEHITree;

// ---------------------------------------------------------------- GloVe

const char kGloveMagic[8] = {'E', 'H', 'I', 'G', 'L', 'V', 'h', '1'};

/// Header, then nb x d and nq x d IEEE halves (little-endian).
void write_glove_subset(const std::string& path,
                        const faiss_ehi::data::Dataset& ds) {
    std::ofstream f(path, std::ios::binary);
    if (!f) {
        throw std::runtime_error("cannot write " + path);
    }
    int64_t hdr[3] = {ds.d, ds.nb, ds.nq};
    f.write(kGloveMagic, 8);
    f.write(reinterpret_cast<const char*>(hdr), sizeof(hdr));
    for (const auto* v : {&ds.xb, &ds.xq}) {
        std::vector<uint16_t> h(v->size());
        for (size_t i = 0; i < v->size(); i++) {
            __half_raw r = __half_raw(__float2half_rn((*v)[i]));
            h[i] = r.x;
        }
        f.write(reinterpret_cast<const char*>(h.data()), h.size() * 2);
    }
    if (!f) {
        throw std::runtime_error("error writing " + path);
    }
}

faiss_ehi::data::Dataset read_glove_subset(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw std::runtime_error("cannot open " + path);
    }
    char magic[8];
    int64_t hdr[3];
    f.read(magic, 8);
    f.read(reinterpret_cast<char*>(hdr), sizeof(hdr));
    if (!f || std::string(magic, 8) != std::string(kGloveMagic, 8) ||
        hdr[0] <= 0 || hdr[1] <= 0 || hdr[2] <= 0) {
        throw std::runtime_error(path + ": not a GloVe subset file");
    }
    faiss_ehi::data::Dataset ds;
    ds.name = "glove-100-angular-subset";
    ds.d = int(hdr[0]);
    ds.nb = hdr[1];
    ds.nq = hdr[2];
    ds.metric = faiss::METRIC_INNER_PRODUCT;
    for (auto* v : {&ds.xb, &ds.xq}) {
        size_t n = size_t(v == &ds.xb ? ds.nb : ds.nq) * ds.d;
        std::vector<uint16_t> h(n);
        f.read(reinterpret_cast<char*>(h.data()), n * 2);
        if (!f) {
            throw std::runtime_error(path + ": truncated");
        }
        v->resize(n);
        for (size_t i = 0; i < n; i++) {
            __half_raw r;
            r.x = h[i];
            (*v)[i] = __half2float(__half(r));
        }
    }
    // renormalise after the fp16 rounding (angular data)
    faiss_ehi::data::l2_normalize_rows(ds.xb.data(), ds.nb, ds.d);
    faiss_ehi::data::l2_normalize_rows(ds.xq.data(), ds.nq, ds.d);
    return ds;
}

faiss_ehi::data::Dataset glove_from_package() {
    auto g = faiss_ehi::data::load_glove100(FLAGS_glove_dir, FLAGS_glove_nq);
    faiss_ehi::data::Dataset ds = std::move(g.ds);
    if (FLAGS_glove_nb > 0 && FLAGS_glove_nb < ds.nb) {
        ds.nb = FLAGS_glove_nb;
        ds.xb.resize(size_t(ds.nb) * ds.d);
    }
    ds.name = "glove-100-angular-subset";
    return ds;
}

// ------------------------------------------------------------- timing

/** Median QPS of `runs` runs; each run searches `total` queries in batches
 * of `batch`, cycling through the nq queries of xq. */
double time_qps(const faiss::Index& index, idx_t nq, const float* xq, int k,
                idx_t batch, idx_t total, int runs,
                const faiss::SearchParameters* params) {
    int d = index.d;
    std::vector<float> D(size_t(batch) * k);
    std::vector<idx_t> I(size_t(batch) * k);
    // warm-up
    index.search(std::min(batch, nq), xq, k, D.data(), I.data(), params);
    std::vector<double> qps;
    for (int r = 0; r < runs; r++) {
        double t0 = ehi_cmdline::now_s();
        idx_t done = 0, pos = 0;
        while (done < total) {
            idx_t b = std::min({batch, total - done, nq - pos});
            index.search(b, xq + size_t(pos) * d, k, D.data(), I.data(),
                         params);
            done += b;
            pos = (pos + b) % nq;
        }
        double t = ehi_cmdline::now_s() - t0;
        qps.push_back(double(total) / t);
    }
    return ehi_cmdline::median(qps);
}

double recall(const faiss::Index& index, const faiss_ehi::data::Dataset& ds,
              idx_t nq, const std::vector<idx_t>& gt, int k,
              const faiss::SearchParameters* params) {
    std::vector<float> D(size_t(nq) * k);
    std::vector<idx_t> I(size_t(nq) * k);
    // in blocks: the GPU index then also works for any nq
    for (idx_t i0 = 0; i0 < nq; i0 += 4096) {
        idx_t b = std::min<idx_t>(4096, nq - i0);
        index.search(b, ds.xq.data() + size_t(i0) * ds.d, k,
                     D.data() + size_t(i0) * k, I.data() + size_t(i0) * k,
                     params);
    }
    return faiss_ehi::data::knn_recall_at_k(nq, gt.data(), k, I.data(), k, k);
}

struct Row {
    std::string dataset, key;
    idx_t nb = 0, nq = 0;
    int d = 0;
    long beam = 0;
    double recall_cpu = 0, recall_gpu = 0, recall_gpu16 = 0;
    long batch = 0;
    double cpu_qps = 0, gpu_qps = 0, gpu16_qps = 0;
    double cpu_qps_blas_default = 0;
    int blas_default = 0;
    double route_share = 0, route_share16 = 0;
    double route_us_per_query = 0, scan_us_per_query = 0;
};

void run_dataset(const faiss_ehi::data::Dataset& ds_in, const std::string& key,
                 std::vector<Row>& rows) {
    faiss_ehi::data::Dataset ds = ds_in;
    if (FLAGS_nq > 0) {
        ds.truncate_queries(FLAGS_nq);
    }
    const int k = FLAGS_k;
    LOG(INFO) << ds.name << ": nb " << ds.nb << " nq " << ds.nq << " d " << ds.d
              << " metric " << (ds.metric == faiss::METRIC_L2 ? "L2" : "IP");
    double t0 = ehi_cmdline::now_s();
    std::vector<idx_t> gt = faiss_ehi::data::exact_knn(
            ds.d, ds.nb, ds.xb.data(), ds.nq, ds.xq.data(), k, ds.metric);
    LOG(INFO) << "exact ground truth (faiss IndexFlat): "
              << ehi_cmdline::now_s() - t0 << " s";

    t0 = ehi_cmdline::now_s();
    std::unique_ptr<faiss::Index> base(
            faiss_ehi::index_factory(ds.d, key.c_str(), ds.metric));
    auto* cpu = dynamic_cast<faiss_ehi::IndexEHITree*>(base.get());
    if (!cpu) {
        throw std::runtime_error(key + " does not make an IndexEHITree");
    }
    cpu->train(ds.nb, ds.xb.data());
    cpu->add(ds.nb, ds.xb.data());
    LOG(INFO) << key << " trained (k-means tree) and filled: "
              << ehi_cmdline::now_s() - t0 << " s";

    // beam for the target recall (CPU recall; the GPU's is reported too)
    faiss::SearchParametersIVF params;
    long beam = 0;
    double rec_cpu = 0;
    for (long b : ehi_cmdline::parse_int_list(FLAGS_beams, "beams")) {
        if (b > long(cpu->nlist) || b > faiss_ehi::gpu::kGpuMaxK) {
            break;
        }
        params.nprobe = b;
        double r = recall(*cpu, ds, ds.nq, gt, k, &params);
        LOG(INFO) << "  beam " << b << ": CPU recall@" << k << " " << r;
        beam = b;
        rec_cpu = r;
        if (r >= FLAGS_target_recall) {
            break;
        }
    }
    if (rec_cpu < FLAGS_target_recall) {
        LOG(WARNING) << "target recall not reached; using beam " << beam;
    }
    params.nprobe = beam;

    faiss_ehi::gpu::GpuIndexEHITreeConfig cfg;
    cfg.device = FLAGS_device;
    std::unique_ptr<GpuIndexEHITree> gpu, gpu16;
    if (!FLAGS_cpu_only) {
        t0 = ehi_cmdline::now_s();
        gpu.reset(faiss_ehi::gpu::index_cpu_to_gpu(cpu, cfg));
        LOG(INFO) << "GPU copy: " << ehi_cmdline::now_s() - t0 << " s, "
                  << gpu->list_bytes() / 1e6
                  << " MB of lists; GEMMs: " << GpuIndexEHITree::gemm_backend();
        if (FLAGS_fp16) {
            cfg.use_float16 = true;
            gpu16.reset(faiss_ehi::gpu::index_cpu_to_gpu(cpu, cfg));
        }
    }
    double rec_gpu = gpu ? recall(*gpu, ds, ds.nq, gt, k, &params) : 0;
    double rec_gpu16 = gpu16 ? recall(*gpu16, ds, ds.nq, gt, k, &params) : 0;

    for (long batch : ehi_cmdline::parse_int_list(FLAGS_batches, "batches")) {
        Row row;
        row.dataset = ds.name;
        row.key = key;
        row.nb = ds.nb;
        row.nq = ds.nq;
        row.d = ds.d;
        row.beam = beam;
        row.recall_cpu = rec_cpu;
        row.recall_gpu = rec_gpu;
        row.recall_gpu16 = rec_gpu16;
        row.batch = batch;
        idx_t total = batch == 1 ? FLAGS_batch1_queries
                                 : std::max<idx_t>(FLAGS_min_queries, batch);
        int blas_default = ehi_cmdline::blas_threads();
        row.blas_default = blas_default;
        row.cpu_qps_blas_default = time_qps(*cpu, ds.nq, ds.xq.data(), k, batch,
                                            total, FLAGS_runs, &params);
        ehi_cmdline::set_blas_threads(FLAGS_cpu_blas_threads);
        row.cpu_qps = time_qps(*cpu, ds.nq, ds.xq.data(), k, batch, total,
                               FLAGS_runs, &params);
        ehi_cmdline::set_blas_threads(blas_default);
        if (gpu) {
            row.gpu_qps = time_qps(*gpu, ds.nq, ds.xq.data(), k, batch, total,
                                   FLAGS_runs, &params);
        }
        // routing share: the same searches with CUDA events
        auto share = [&](GpuIndexEHITree& g, double* rus, double* sus) {
            g.collect_timing = true;
            g.timing.reset();
            time_qps(g, ds.nq, ds.xq.data(), k, batch, total, 1, &params);
            g.collect_timing = false;
            double all = g.timing.route_ms + g.timing.scan_ms;
            // the warm-up search is included in the timing: 1 + runs
            double nqs = double(total + std::min<idx_t>(batch, ds.nq));
            if (rus) {
                *rus = 1e3 * g.timing.route_ms / nqs;
                *sus = 1e3 * g.timing.scan_ms / nqs;
            }
            return all > 0 ? g.timing.route_ms / all : 0.0;
        };
        if (gpu) {
            row.route_share = share(*gpu, &row.route_us_per_query,
                                    &row.scan_us_per_query);
        }
        if (gpu16) {
            row.gpu16_qps = time_qps(*gpu16, ds.nq, ds.xq.data(), k, batch,
                                     total, FLAGS_runs, &params);
            row.route_share16 = share(*gpu16, nullptr, nullptr);
        }
        LOG(INFO) << "  batch " << batch << ": CPU " << row.cpu_qps
                  << " QPS (BLAS default, " << blas_default
                  << " threads: " << row.cpu_qps_blas_default << ")"
                  << ", GPU " << row.gpu_qps << " QPS (x"
                  << row.gpu_qps / row.cpu_qps << "), routing share "
                  << row.route_share;
        rows.push_back(row);
    }
}

void print_table(const std::vector<Row>& rows) {
    printf("\nGPU QPS benchmark (recall@%d target %.2f, k = %d, CPU threads "
           "%d, GEMMs: %s)\n",
           FLAGS_k, FLAGS_target_recall, FLAGS_k, omp_get_max_threads(),
           FLAGS_cpu_only ? "none (--cpu_only)"
                          : GpuIndexEHITree::gemm_backend());
    printf("CPU QPS: OpenMP over the queries with all threads, BLAS %d "
           "thread(s) inside; 'BLAS default' keeps OpenBLAS's own thread "
           "count. GPU/CPU is against the faster of the two CPU columns.\n",
           FLAGS_cpu_blas_threads);
    printf("| data set | key | beam | recall CPU / GPU / GPU fp16 | batch | "
           "CPU QPS | CPU QPS, BLAS default | GPU QPS | GPU/CPU | routing "
           "share | route / scan us/q | GPU fp16 QPS | fp16/CPU |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
           "| --- | --- |\n");
    for (const Row& r : rows) {
        double best = std::max(r.cpu_qps, r.cpu_qps_blas_default);
        printf("| %s (%ld x %d) | %s | %ld | %.4f / %.4f / %.4f | %ld | %.0f "
               "| %.0f | %.0f | %.1f | %.1f%% | %.2f / %.2f | %.0f | %.1f |\n",
               r.dataset.c_str(), long(r.nb), r.d, r.key.c_str(), r.beam,
               r.recall_cpu, r.recall_gpu, r.recall_gpu16, r.batch, r.cpu_qps,
               r.cpu_qps_blas_default, r.gpu_qps, r.gpu_qps / best,
               100 * r.route_share, r.route_us_per_query, r.scan_us_per_query,
               r.gpu16_qps, r.gpu16_qps / best);
    }
    fflush(stdout);
}

void write_json(const std::vector<Row>& rows, const std::string& path) {
    FILE* f = fopen(path.c_str(), "w");
    if (!f) {
        throw std::runtime_error("cannot write " + path);
    }
    fprintf(f,
            "{\"tool\": \"bench_gpu_qps\", \"k\": %d, \"target_recall\": "
            "%g, \"cpu_threads\": %d, \"runs\": %d, \"gemm\": \"%s\", "
            "\"rows\": [\n",
            FLAGS_k, FLAGS_target_recall, omp_get_max_threads(), FLAGS_runs,
            ehi_cmdline::json_escape(FLAGS_cpu_only
                                             ? "none (--cpu_only)"
                                             : GpuIndexEHITree::gemm_backend())
                    .c_str());
    for (size_t i = 0; i < rows.size(); i++) {
        const Row& r = rows[i];
        fprintf(f,
                "  {\"dataset\": \"%s\", \"key\": \"%s\", \"nb\": %ld, "
                "\"nq\": %ld, \"d\": %d, \"beam\": %ld, \"recall_cpu\": %.5f, "
                "\"recall_gpu\": %.5f, \"recall_gpu_fp16\": %.5f, "
                "\"batch\": %ld, \"cpu_qps\": %.1f, "
                "\"cpu_blas_threads\": %d, \"cpu_qps_blas_default\": %.1f, "
                "\"blas_default_threads\": %d, \"gpu_qps\": %.1f, "
                "\"ratio\": %.3f, \"route_share\": %.4f, "
                "\"route_us_per_query\": %.3f, \"scan_us_per_query\": %.3f, "
                "\"gpu_fp16_qps\": %.1f, \"route_share_fp16\": %.4f}%s\n",
                ehi_cmdline::json_escape(r.dataset).c_str(),
                ehi_cmdline::json_escape(r.key).c_str(), long(r.nb), long(r.nq),
                r.d, r.beam, r.recall_cpu, r.recall_gpu, r.recall_gpu16,
                r.batch, r.cpu_qps, FLAGS_cpu_blas_threads,
                r.cpu_qps_blas_default, r.blas_default, r.gpu_qps,
                r.gpu_qps / std::max(r.cpu_qps, r.cpu_qps_blas_default),
                r.route_share, r.route_us_per_query, r.scan_us_per_query,
                r.gpu16_qps, r.route_share16, i + 1 < rows.size() ? "," : "");
    }
    fprintf(f, "]}\n");
    fclose(f);
}

int run() {
    if (!FLAGS_glove_export.empty()) {
        auto ds = glove_from_package();
        write_glove_subset(FLAGS_glove_export, ds);
        LOG(INFO) << "wrote " << FLAGS_glove_export << ": " << ds.nb
                  << " base + " << ds.nq << " queries, d " << ds.d;
        return 0;
    }
    std::string why;
    if (!FLAGS_cpu_only && !faiss_ehi::gpu::cuda_device_available(&why)) {
        LOG(ERROR) << "no CUDA device: " << why;
        return 2;
    }
    ehi_cmdline::set_num_threads(FLAGS_threads);
    faiss_ehi::set_tree_trainer(
            std::make_shared<faiss_ehi::KMeansTreeTrainer>());
    std::vector<Row> rows;
    std::stringstream ss(FLAGS_datasets);
    std::string name;
    while (std::getline(ss, name, ',')) {
        if (name == "fmnist") {
            auto ds = faiss_ehi::data::load_fashion_mnist(FLAGS_fmnist_dir);
            run_dataset(ds, FLAGS_fmnist_key, rows);
        } else if (name == "glove") {
            auto ds = FLAGS_glove_file.empty()
                    ? glove_from_package()
                    : read_glove_subset(FLAGS_glove_file);
            run_dataset(ds, FLAGS_glove_key, rows);
        } else if (!name.empty()) {
            throw std::runtime_error("unknown data set " + name);
        }
        print_table(rows);
        if (!FLAGS_json.empty()) {
            write_json(rows, FLAGS_json);
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv, "GPU vs CPU QPS of EHI indexes at recall@10 0.9", run);
}
