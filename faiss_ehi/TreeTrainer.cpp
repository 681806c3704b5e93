/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/TreeTrainer.h>

#include <mutex>

#include <faiss_ehi/EHITreeKMeansInit.h>
#include <faiss_ehi/EHITreeQuantizer.h>

namespace faiss_ehi {

namespace {
std::mutex& registry_mutex() {
    static std::mutex mu;
    return mu;
}
std::shared_ptr<TreeTrainer>& registry_slot() {
    static std::shared_ptr<TreeTrainer> slot;
    return slot;
}
} // namespace

void set_tree_trainer(std::shared_ptr<TreeTrainer> trainer) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry_slot() = std::move(trainer);
}

std::shared_ptr<TreeTrainer> get_tree_trainer() {
    std::lock_guard<std::mutex> lock(registry_mutex());
    return registry_slot();
}

std::string KMeansTreeTrainer::name() const {
    return "k-means";
}

void KMeansTreeTrainer::train_tree(EHITreeQuantizer& q, idx_t n,
                                   const float* x) {
    EHITreeKMeansInit init;
    init.niter = niter;
    init.seed = seed;
    init.temperature = temperature;
    init.leaf_refine_iters = leaf_refine_iters;
    init.verbose = q.verbose;
    std::vector<float> centroids;
    init.init(q.tree, n, x, q.metric_type, &centroids);
    q.leaf_representatives.swap(centroids);
    q.update_is_trained();
}

} // namespace faiss_ehi
