/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <faiss_ehi/EHITree.h>

namespace faiss_ehi {

struct EHITreeQuantizer;

/** Learns a tree for EHITreeQuantizer::train (and so for every index's
 * train()). faiss_ehi itself holds no learning code that needs LibTorch: a
 * program links a trainer library (faiss_ehi::trainer registers itself when
 * linked) or registers one explicitly with set_tree_trainer. */
struct TreeTrainer {
    virtual ~TreeTrainer() = default;
    /// Human-readable name, for logs.
    virtual std::string name() const = 0;
    /** Set q.tree's parameters (and, optionally, q.leaf_representatives)
     * from n training vectors of dimension q.d in metric q.metric_type. */
    virtual void train_tree(EHITreeQuantizer& q, idx_t n, const float* x) = 0;
};

/// Register the trainer used by every later train() (nullptr unregisters).
/// An explicit choice: set_default_tree_trainer never replaces it.
void set_tree_trainer(std::shared_ptr<TreeTrainer> trainer);

/** Register `trainer` unless set_tree_trainer was called before (with any
 * value, nullptr included); returns whether it was registered. For a
 * library's static initializer (faiss_ehi::trainer's self-registration):
 * the order of static initializers across files is unspecified, so a
 * program that chose a trainer in its own initializer must keep it whether
 * that ran first or not, and any later set_tree_trainer call wins. */
bool set_default_tree_trainer(std::shared_ptr<TreeTrainer> trainer);

/** Register `trainer` only if nothing was ever registered (neither
 * set_tree_trainer nor set_default_tree_trainer ran); returns whether it
 * was registered. For code that runs after the static initializers (the
 * C++ drop-in's first EHI call): a library's self-registration and the
 * program's explicit choice, nullptr included, both take precedence. */
bool set_fallback_tree_trainer(std::shared_ptr<TreeTrainer> trainer);

/// The registered trainer, or nullptr.
std::shared_ptr<TreeTrainer> get_tree_trainer();

/// The registered trainer's name(), or "" when none is registered.
std::string tree_trainer_name();

/** Why no trainer is registered, with what to do, for the error message of
 * a train() that needs one (set_tree_trainer(nullptr) was called, or no
 * trainer library registered itself). */
std::string no_tree_trainer_hint();

/** Flat-leaf set-up shared by the k-means and the LibTorch trainers: the
 * tree's leaves become the quantizer's representatives and documents go to
 * their nearest leaf (assign_nearest). */
void adopt_flat_leaves(EHITreeQuantizer& q, std::vector<float>& centroids);

/** ProbeCalibration of a flat-leaf tree on a KnnSample of x; the documents
 * are x filed at their nearest leaf (doc_leaf, n entries, when the caller
 * has them already; nullptr: computed here). Logs what it chose when
 * verbose. */
void calibrate_probing(EHITreeQuantizer& q, idx_t n, const float* x, idx_t nq,
                       int k, uint64_t seed, bool verbose,
                       const idx_t* doc_leaf = nullptr);

/** Built-in trainer without learning: initialises the tree by k-means
 * (EHITreeKMeansInit). Useful on its own as a balanced hierarchical
 * k-means index, and the starting point of the LibTorch trainer. */
struct KMeansTreeTrainer : TreeTrainer {
    int niter = 20;            ///< k-means iterations per clustering
    int seed = 1234;           ///< k-means seed
    float temperature = 0;     ///< 0: automatic (see EHITreeKMeansInit)
    int leaf_refine_iters = 0; ///< see EHITreeKMeansInit::leaf_refine_iters
    /** Per-node trees: flat k-means leaves in balanced groups
     * (EHITreeKMeansInit::flat_leaves), documents at their nearest leaf,
     * GROUPED routing. false: nested (hierarchical) k-means. */
    bool flat_leaves = true;
    /** With flat_leaves: ProbeCalibration on `calib_queries` training
     * vectors used as queries (their `calib_k` nearest neighbours). */
    bool calibrate = true;
    idx_t calib_queries = 2000;
    int calib_k = 10;
    uint64_t calib_seed = 4321;
    std::string name() const override;
    void train_tree(EHITreeQuantizer& q, idx_t n, const float* x) override;
};

} // namespace faiss_ehi
