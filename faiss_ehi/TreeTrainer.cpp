/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/TreeTrainer.h>

#include <cstdio>
#include <mutex>

#include <faiss_ehi/EHITreeKMeansInit.h>
#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/ProbeCalibration.h>

namespace faiss_ehi {

namespace {

/// How the registry's slot got its value.
enum class SlotState {
    NEVER_SET, ///< nothing registered it
    DEFAULT,   ///< set_default_tree_trainer (a library's self-registration)
    EXPLICIT,  ///< set_tree_trainer (the program's choice, maybe nullptr)
};

// Function-local statics: the registry is usable from other files' static
// initializers, whatever order they run in.
std::mutex& registry_mutex() {
    static std::mutex mu;
    return mu;
}
std::shared_ptr<TreeTrainer>& registry_slot() {
    static std::shared_ptr<TreeTrainer> slot;
    return slot;
}
SlotState& registry_state() {
    static SlotState state = SlotState::NEVER_SET;
    return state;
}

} // namespace

void set_tree_trainer(std::shared_ptr<TreeTrainer> trainer) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry_slot() = std::move(trainer);
    registry_state() = SlotState::EXPLICIT;
}

bool set_default_tree_trainer(std::shared_ptr<TreeTrainer> trainer) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    if (registry_state() == SlotState::EXPLICIT) {
        return false;
    }
    registry_slot() = std::move(trainer);
    registry_state() = SlotState::DEFAULT;
    return true;
}

bool set_fallback_tree_trainer(std::shared_ptr<TreeTrainer> trainer) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    if (registry_state() != SlotState::NEVER_SET) {
        return false;
    }
    registry_slot() = std::move(trainer);
    registry_state() = SlotState::DEFAULT;
    return true;
}

std::shared_ptr<TreeTrainer> get_tree_trainer() {
    std::lock_guard<std::mutex> lock(registry_mutex());
    return registry_slot();
}

std::string tree_trainer_name() {
    std::shared_ptr<TreeTrainer> t = get_tree_trainer();
    return t ? t->name() : std::string();
}

std::string no_tree_trainer_hint() {
    SlotState state;
    {
        std::lock_guard<std::mutex> lock(registry_mutex());
        state = registry_state();
    }
    std::string alternatives =
            "call faiss_ehi::set_tree_trainer(std::make_shared<faiss_ehi::"
            "KMeansTreeTrainer>()) for a k-means tree, or set the tree's "
            "parameters before train()";
    if (state == SlotState::EXPLICIT) {
        return "the program unregistered it (set_tree_trainer(nullptr)); "
               "call faiss_ehi::trainer::register_torch_trainer() (in a "
               "program that links faiss_ehi::trainer) for the LibTorch "
               "trainer, or " +
                alternatives;
    }
    return "link the LibTorch trainer (CMake target faiss_ehi::trainer, "
           "which registers itself; a link line that names the archive "
           "libfaiss_ehi_trainer.a directly also needs "
           "-Wl,--undefined=faiss_ehi_trainer_self_registration), or " +
            alternatives;
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
    init.flat_leaves = flat_leaves && q.tree.form == NodeForm::PER_NODE;
    std::vector<float> centroids;
    init.init(q.tree, n, x, q.metric_type, &centroids);
    if (!init.flat_leaves) {
        q.leaf_representatives.swap(centroids);
        q.update_is_trained();
        return;
    }
    adopt_flat_leaves(q, centroids);
    if (calibrate) {
        calibrate_probing(q, n, x, calib_queries, calib_k, calib_seed,
                          q.verbose);
    }
}

void adopt_flat_leaves(EHITreeQuantizer& q, std::vector<float>& centroids) {
    q.leaf_representatives.swap(centroids);
    q.assign_nearest = true;
    q.update_is_trained();
}

void calibrate_probing(EHITreeQuantizer& q, idx_t n, const float* x, idx_t nq,
                       int k, uint64_t seed, bool verbose,
                       const idx_t* doc_leaf) {
    if (n < 2 || nq < 1) {
        return;
    }
    KnnSample s = KnnSample::draw(n, q.d, x, q.metric_type, nq, k, seed);
    std::vector<idx_t> own;
    if (!doc_leaf) {
        own.resize(n);
        q.nearest_leaf(n, x, own.data());
        doc_leaf = own.data();
    }
    ProbeCalibration cal;
    cal.calibrate(q, s, doc_leaf, n);
    if (verbose) {
        std::printf("EHI probe calibration: size penalty %g, recall at "
                    "%g%% of documents %.4f -> %.4f, groups per beam",
                    cal.alpha, 100 * cal.budgets[1], cal.recall_before[1],
                    cal.recall_after[1]);
        for (int32_t g : q.tree.group_expansion) {
            std::printf(" %d", g);
        }
        std::printf("\n");
    }
}

} // namespace faiss_ehi
