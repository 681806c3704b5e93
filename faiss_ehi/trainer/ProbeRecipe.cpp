/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * JointTrainer's PROBE recipe for k-NN data (torch-free here: the LibTorch
 * work happens inside TorchTreeTrainer).
 */
#include <faiss_ehi/trainer/JointTrainer.h>

#include <chrono>
#include <cmath>

#include <faiss/impl/FaissAssert.h>
#include <glog/logging.h>

#include <faiss_ehi/trainer/TorchTreeTrainer.h>
#include <faiss_ehi/trainer/TreeSnapshot.h>

namespace faiss_ehi {
namespace trainer {

JointModel JointTrainer::train_probe(const PairData& data,
                                     const JointTrainerConfig& c) {
    auto t0 = std::chrono::steady_clock::now();
    const faiss::MetricType metric =
            c.normalize ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
    const int d = data.d;
    const idx_t nd = data.nd;
    // The identity encoder with normalize ranks by inner product on unit
    // vectors: train on what the index will store.
    std::vector<float> docs(data.doc_vecs);
    if (c.normalize) {
        for (idx_t i = 0; i < nd; i++) {
            float* v = docs.data() + size_t(i) * d;
            double s = 0;
            for (int j = 0; j < d; j++) {
                s += double(v[j]) * v[j];
            }
            float inv = s > 0 ? float(1 / std::sqrt(s)) : 0.0f;
            for (int j = 0; j < d; j++) {
                v[j] *= inv;
            }
        }
    }
    auto* q = new EHITreeQuantizer(d, c.B, c.H, metric, NodeForm::PER_NODE);
    std::unique_ptr<IndexEHITree> index(new IndexEHITree(q, metric));
    TorchTreeTrainer tt;
    tt.kmeans.seed = int(c.seed);
    tt.k = c.probe_k;
    tt.sample_seed = c.seed + 1;
    tt.probe.seed = c.seed;
    tt.probe.epochs = c.epochs;
    tt.probe.threads = c.threads;
    tt.probe.verbose = c.progress;
    tt.train_tree(*q, nd, docs.data());
    index->is_trained = true;
    index->d2l = c.d2l;
    index->assign_rule = c.doc_assign;
    index->nprobe = std::min<size_t>(c.beam, index->nlist);

    // the trainer filed every document already: no second routing pass
    LoadStats ls = load_stats(tt.last_leaf_sizes);
    EpochStats es;
    es.epoch = tt.last_probe_stats.best_epoch;
    es.max_load = ls.max_load;
    es.expected_load = ls.expected_load;
    es.empty_leaves = ls.empty_leaves;
    if (!tt.last_probe_stats.heldout_recall.empty()) {
        es.heldout_recall =
                tt.last_probe_stats.heldout_recall[size_t(es.epoch)];
    }
    es.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                    .count();
    LOG(INFO) << "JointTrainer (probe recipe): best epoch " << es.epoch
              << ", held-out budget recall " << es.heldout_recall
              << ", expected load " << es.expected_load << "x ideal, "
              << "largest " << es.max_load << "x, " << es.empty_leaves
              << " empty leaves, " << es.seconds << " s";
    std::string collapse = collapse_report(ls, index->nlist, c.collapse_load);
    if (!collapse.empty()) {
        LOG(WARNING) << "JointTrainer (probe recipe): " << collapse;
        FAISS_THROW_IF_NOT_FMT(!c.stop_on_collapse,
                               "JointTrainer (probe recipe): %s",
                               collapse.c_str());
    }
    JointModel model;
    model.history.push_back(es);
    model.index = std::move(index);
    return model;
}

} // namespace trainer
} // namespace faiss_ehi
