/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * bench_train: what training costs. For one data set, each method runs in
 * a child process of its own (fork), so that its peak memory is its own:
 * - Faiss k-means: IndexIVFFlat::train with the same number of lists as
 *   the EHI tree, over the vectors EHI routes (the documents for k-NN
 *   data, the untrained text encoder's output for text data);
 * - EHI joint training (JointTrainer, ehi_train's flags and defaults);
 * - for k-NN data, the Faiss drop-in: faiss_ehi::index_factory's EHI key
 *   trained by the LibTorch tree trainer (k-means, then learned routing).
 * Reported: wall time, its ratio to Faiss k-means, the peak resident
 * memory added over the parent's at fork (VmHWM - VmRSS at start, from
 * /proc/self/status) and, for the joint trainer, training triplets per
 * second (pairs x epochs / time: each pair is one (query, positive,
 * negatives) triplet). Medians over --runs runs.
 *
 * Usage: bench_train --data SPEC [--json FILE] [training flags]
 */

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include <faiss_ehi/faiss_ehi.h>
#include <faiss_ehi/trainer/JointTrainer.h>
#include <faiss_ehi/trainer/TorchTreeTrainer.h>

#include "cmdline/json.h"
#include "cmdline/program_main.h"
#include "cmdline/task_inputs.h"
#include "cmdline/timing.h"
#include "cmdline/train_flags.h"

DEFINE_string(data, "fmnist", "data set (see ehi_train --data)");
DEFINE_int32(runs, 3, "runs per method (median reported)");
DEFINE_string(json, "", "write the results as JSON");

namespace ft = faiss_ehi::trainer;
namespace fd = faiss_ehi::data;
using idx_t = faiss::Index::idx_t;
using ehi_cmdline::now_s;

namespace {

/// kB of a /proc/self/status field ("VmHWM", "VmRSS").
long status_kb(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    size_t n = strlen(field);
    while (std::getline(in, line)) {
        if (line.compare(0, n, field) == 0 && line.size() > n &&
            line[n] == ':') {
            return std::stol(line.substr(n + 1));
        }
    }
    return -1;
}

/// Resets the peak (VmHWM) to the current RSS (Linux >= 4.0).
void reset_peak() {
    std::ofstream("/proc/self/clear_refs") << "5";
}

struct Measure {
    double seconds = NAN;
    double peak_mb = NAN;
    double triplets_per_s = NAN;
};

/// Run fn in a child; it returns seconds and triplets (or -1).
template <typename F>
Measure in_child(F fn) {
    int fds[2];
    if (pipe(fds) != 0) {
        throw std::runtime_error("pipe failed");
    }
    pid_t pid = fork();
    if (pid < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid == 0) {
        close(fds[0]);
        Measure m;
        try {
            reset_peak();
            long base = status_kb("VmRSS");
            double triplets = -1;
            double t0 = now_s();
            fn(&triplets);
            m.seconds = now_s() - t0;
            m.peak_mb = double(status_kb("VmHWM") - base) / 1024.0;
            if (triplets > 0) {
                m.triplets_per_s = triplets / m.seconds;
            }
        } catch (const std::exception& e) {
            fprintf(stderr, "bench_train child: %s\n", e.what());
            _exit(1);
        }
        ssize_t w = write(fds[1], &m, sizeof(m));
        _exit(w == ssize_t(sizeof(m)) ? 0 : 1);
    }
    close(fds[1]);
    Measure m;
    ssize_t r = read(fds[0], &m, sizeof(m));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (r != ssize_t(sizeof(m)) || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        throw std::runtime_error("a training child failed (see above)");
    }
    return m;
}

Measure median_of(const std::vector<Measure>& v) {
    std::vector<double> s, p, t;
    for (const Measure& m : v) {
        s.push_back(m.seconds);
        p.push_back(m.peak_mb);
        t.push_back(m.triplets_per_s);
    }
    Measure out;
    out.seconds = ehi_cmdline::median(s);
    out.peak_mb = ehi_cmdline::median(p);
    out.triplets_per_s = ehi_cmdline::median(t);
    return out;
}

int run() {
    fd::RetrievalTask task = fd::load_retrieval_task(FLAGS_data);
    ft::JointTrainerConfig cfg = ehi_tools::config_from_flags(task);
    cfg.progress = false;
    cfg.checkpoint_dir.clear();
    ehi_tools::TrainingInputs in =
            ehi_tools::make_training_inputs(task, cfg.encoder, cfg.seed);
    idx_t L = 1;
    for (int h = 0; h < cfg.H; h++) {
        L *= cfg.B;
    }
    // The vectors k-means clusters: the documents, or for text the
    // untrained text encoder (GloVe mean) output.
    std::vector<float> kx;
    int kd = task.d;
    if (task.is_text) {
        faiss_ehi::TextEncoder te(in.text.vocab, in.text.dim,
                                  in.text.embeddings);
        kx = te.encode(task.doc_texts);
        kd = in.text.dim;
    } else {
        kx = task.doc_vecs;
    }
    const size_t npairs = in.pairs.pairs.size();
    std::vector<std::pair<std::string, Measure>> results;
    auto bench = [&](const std::string& name, auto fn) {
        std::vector<Measure> ms;
        for (int r = 0; r < FLAGS_runs; r++) {
            ms.push_back(in_child(fn));
            LOG(INFO) << name << " run " << r + 1 << ": " << ms.back().seconds
                      << " s, peak +" << ms.back().peak_mb << " MB";
        }
        results.emplace_back(name, median_of(ms));
    };
    bench("Faiss k-means (IVF" + std::to_string(L) + ")", [&](double*) {
        faiss::IndexFlat q(kd, task.metric);
        faiss::IndexIVFFlat ivf(&q, kd, size_t(L), task.metric);
        ivf.train(task.nd, kx.data());
    });
    bench("EHI joint trainer", [&](double* triplets) {
        ft::JointModel m = ft::JointTrainer(cfg).train(
                in.pairs,
                cfg.encoder == ft::EncoderKind::TEXT ? &in.text : nullptr);
        *triplets = double(npairs) * cfg.epochs;
    });
    if (task.is_knn) {
        std::string key = "EHI" + std::to_string(cfg.B) + "x" +
                std::to_string(cfg.H) + ",Flat";
        bench("EHI drop-in " + key + " (torch trainer)", [&](double*) {
            ft::register_torch_trainer();
            std::unique_ptr<faiss::Index> idx(
                    faiss_ehi::index_factory(task.d, key.c_str(), task.metric));
            idx->train(task.nd, task.doc_vecs.data());
        });
    }
    const double base = results[0].second.seconds;
    printf("\n%s: %lld documents, %zu training pairs, %lld leaves; median "
           "of %d runs, %d threads\n| method | seconds | / k-means | peak "
           "memory added (MB) | triplets/s |\n|---|---|---|---|---|\n",
           task.name.c_str(), (long long)task.nd, npairs, (long long)L,
           FLAGS_runs, omp_get_max_threads());
    for (const auto& r : results) {
        printf("| %s | %.1f | %.1f | %.0f | %s |\n", r.first.c_str(),
               r.second.seconds, r.second.seconds / base, r.second.peak_mb,
               std::isfinite(r.second.triplets_per_s)
                       ? std::to_string(long(r.second.triplets_per_s)).c_str()
                       : "-");
    }
    if (!FLAGS_json.empty()) {
        std::ofstream o(FLAGS_json);
        o << "{\n  \"data\": \"" << ehi_cmdline::json_escape(task.name)
          << "\",\n  \"config\": \"" << ehi_cmdline::json_escape(cfg.describe())
          << "\",\n  \"methods\": [";
        for (size_t i = 0; i < results.size(); i++) {
            const Measure& m = results[i].second;
            o << (i ? ",\n    " : "\n    ") << "{\"name\": \""
              << ehi_cmdline::json_escape(results[i].first)
              << "\", \"seconds\": " << m.seconds
              << ", \"ratio\": " << m.seconds / base
              << ", \"peak_mb\": " << m.peak_mb << ", \"triplets_per_s\": "
              << ehi_cmdline::json_number(m.triplets_per_s) << "}";
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
            "Training time and memory: EHI vs Faiss k-means.\n"
            "Usage: bench_train --data SPEC [--json FILE] [training flags]",
            run);
}
