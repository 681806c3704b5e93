/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/TorchTreeTrainer.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/ProbeCalibration.h>
#include <faiss_ehi/TreeTrainer.h>

namespace faiss_ehi {
namespace trainer {

std::string TorchTreeTrainer::name() const {
    return kmeans.flat_leaves ? "torch-probe" : "torch-routing";
}

void TorchTreeTrainer::train_tree(EHITreeQuantizer& q, idx_t n,
                                  const float* x) {
    FAISS_THROW_IF_NOT_MSG(n > 0 && x, "TorchTreeTrainer: no training data");
    FAISS_THROW_IF_NOT_MSG(k > 0 && n_queries >= 0,
                           "TorchTreeTrainer: bad k or n_queries");
    if (kmeans.flat_leaves && q.tree.form == NodeForm::PER_NODE) {
        train_probing(q, n, x);
        return;
    }
    kmeans.train_tree(q, n, x);

    idx_t nq = std::min(n_queries, n);
    if (n >= 2 && nq >= 1) {
        const int d = q.d;
        // seeded sample of the queries
        std::vector<idx_t> perm(n);
        std::iota(perm.begin(), perm.end(), idx_t(0));
        std::mt19937_64 rng(sample_seed);
        for (idx_t i = 0; i < nq; i++) {
            std::uniform_int_distribution<idx_t> pick(i, n - 1);
            std::swap(perm[i], perm[pick(rng)]);
        }
        std::vector<idx_t> qids(perm.begin(), perm.begin() + nq);
        std::sort(qids.begin(), qids.end());
        std::vector<float> xq(size_t(nq) * d);
        for (idx_t i = 0; i < nq; i++) {
            std::copy(x + qids[i] * d, x + qids[i] * d + d,
                      xq.data() + size_t(i) * d);
        }
        // exact neighbours among the training vectors, self excluded
        int keff = int(std::min<idx_t>(k, n - 1));
        int ks = keff + 1;
        faiss::IndexFlat flat(d, q.metric_type);
        flat.add(n, x);
        std::vector<float> dist(size_t(nq) * ks);
        std::vector<idx_t> lab(size_t(nq) * ks);
        flat.search(nq, xq.data(), ks, dist.data(), lab.data());
        std::vector<idx_t> nn(size_t(nq) * keff);
        for (idx_t i = 0; i < nq; i++) {
            int o = 0;
            for (int j = 0; j < ks && o < keff; j++) {
                idx_t l = lab[i * ks + j];
                if (l == qids[i]) {
                    continue;
                }
                nn[i * keff + o++] = l;
            }
            for (; o < keff; o++) {
                nn[i * keff + o] = -1;
            }
        }
        // where the documents will be stored: the k-means tree's top-1
        // leaf, or the nearest leaf representative (to match an index
        // that places documents with DocAssignRule::NEAREST_LEAF)
        std::vector<idx_t> doc_leaf(n);
        std::vector<float> prob(n);
        if (targets_at_nearest_leaf) {
            faiss::IndexFlat reps(d, q.metric_type);
            reps.add(q.ntotal, q.leaf_representatives.data());
            reps.search(n, x, 1, prob.data(), doc_leaf.data());
        } else {
            q.tree.route(n, x, 1, doc_leaf.data(), prob.data());
        }
        RoutingTargets targets = RoutingTargets::from_neighbors(
                nq, keff, nn.data(), doc_leaf.data());
        RoutingTrainer rt = routing;
        rt.verbose = rt.verbose || q.verbose;
        last_stats = rt.train(q.tree, nq, xq.data(), targets);
    }
    q.update_is_trained();
}

void TorchTreeTrainer::train_probing(EHITreeQuantizer& q, idx_t n,
                                     const float* x) {
    last_leaf_sizes.clear();
    KMeansTreeTrainer start = kmeans;
    start.calibrate = false;
    start.train_tree(q, n, x);
    if (n < 2 || n_queries < 1) {
        return;
    }
    std::vector<idx_t> doc_leaf(n);
    q.nearest_leaf(n, x, doc_leaf.data());
    KnnSample s = KnnSample::draw(n, q.d, x, q.metric_type, n_queries, k,
                                  sample_seed);
    ProbeTrainer pt = probe;
    pt.verbose = pt.verbose || q.verbose;
    last_probe_stats = pt.train(q.tree, s, doc_leaf.data(), n);
    // calibration on queries the probe trainer did not fit
    calibrate_probing(q, n, x, calib_queries, k, sample_seed + 1, pt.verbose,
                      doc_leaf.data());
    last_leaf_sizes.assign(q.ntotal, 0);
    for (idx_t l : doc_leaf) {
        last_leaf_sizes[l]++;
    }
    q.update_is_trained();
}

std::shared_ptr<TorchTreeTrainer> default_torch_trainer() {
    // Function-local: safe to call from another file's static initializer.
    static const std::shared_ptr<TorchTreeTrainer> instance =
            std::make_shared<TorchTreeTrainer>();
    return instance;
}

void register_torch_trainer() {
    faiss_ehi::set_tree_trainer(default_torch_trainer());
}

} // namespace trainer
} // namespace faiss_ehi
