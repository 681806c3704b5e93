/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <vector>

#include <faiss/Index.h>

#include <faiss_ehi/EHITree.h>

namespace faiss_ehi {

/** The EHI tree as a faiss::Index, usable as the coarse quantizer of any
 * faiss::IndexIVF (Flat, SQ, PQ, ...).
 *
 * Its "vectors" are the B^H leaves, so ntotal = B^H from construction on.
 * search(n, x, k) is the tree's beam search with beam = k (IndexIVF passes
 * nprobe as k): labels are leaves in decreasing path probability. The
 * distances returned are true metric distances from x to each leaf's
 * representative (see leaf_representatives), so residual codecs (IVFPQ,
 * IVFSQ by_residual) work; they are not path scores and need not be sorted.
 *
 * Deliberately derives from faiss::Index and not IndexFlat: Faiss's
 * write_index and clone_index dispatch with dynamic_cast and would treat a
 * subclass of IndexFlat as a flat index. Plain Faiss therefore refuses to
 * write or clone an index that holds this quantizer; use faiss_ehi's IO.
 */
struct EHITreeQuantizer : faiss::Index {
    EHITree tree; ///< the routing model; tree.m == d

    /** One representative per leaf (B^H x d): the mean of the training
     * vectors the tree routes there, or the k-means leaf centroid. Used for
     * reconstruct(leaf) and for the distances returned by search. */
    std::vector<float> leaf_representatives;

    /** Where assign() (IndexIVF::add, and IndexEHITree's d2l = 1 rule)
     * puts a vector: false, the tree's most probable leaf; true, the leaf
     * with the nearest representative, as Faiss IVF does with its
     * centroids. Trees whose leaves are flat k-means cells set it, so that
     * documents stay in the cells the probing model was trained for. */
    bool assign_nearest = false;

    /** Adaptive beam, default for every search (SearchParametersEHITree
     * overrides it per call): with mass_threshold > 0 a query stops
     * probing once the leaves taken so far hold at least 1 -
     * mass_threshold of its leaf probability, but never before
     * min_beam leaves (nor after nprobe). The leaves left out are
     * returned as -1, which every Faiss IVF search skips. */
    float mass_threshold = 0;
    int min_beam = 1; ///< floor of the adaptive beam

    EHITreeQuantizer();
    EHITreeQuantizer(int d, int B, int H,
                     faiss::MetricType metric = faiss::METRIC_L2,
                     NodeForm form = NodeForm::PER_NODE);

    /** Learn the tree from n training vectors. If the tree has no parameters
     * yet, the registered TreeTrainer (see TreeTrainer.h) learns them; then
     * leaf representatives are computed from x where missing. */
    void train(idx_t n, const float* x) override;

    /// Leaves are virtual: adding vectors to the quantizer is an error.
    void add(idx_t n, const float* x) override;

    /// Keeps the tree: the leaves are fixed by (B, H). Does nothing.
    void reset() override;

    /// Beam search, beam = k. Thread-safe; IndexIVF calls it concurrently.
    void search(idx_t n, const float* x, idx_t k, float* distances,
                idx_t* labels,
                const faiss::SearchParameters* params = nullptr) const override;

    /** k = 1: the document rule (see assign_nearest); other k: search. */
    void assign(idx_t n, const float* x, idx_t* labels,
                idx_t k = 1) const override;

    /** The leaf with the nearest representative for each of n vectors
     * (exact, one BLAS pass over all leaves). */
    void nearest_leaf(idx_t n, const float* x, idx_t* labels) const;

    /// Leaf representative of leaf `key`.
    void reconstruct(idx_t key, float* recons) const override;

    /** Set the representatives to the mean of the vectors that the tree
     * routes (top-1) to each leaf; a leaf that gets none keeps its previous
     * representative, or the mean of all x if it has none. */
    void compute_representatives(idx_t n, const float* x);

    /// Tree trained and representatives present.
    void update_is_trained();
};

/** Per-call parameters for an EHITreeQuantizer, passed as
 * SearchParametersIVF::quantizer_params. */
struct SearchParametersEHITree : faiss::SearchParameters {
    int strategy = -1; ///< -1: the tree's own; else a BeamStrategy value
    /** false: skip the beam x d distances to the leaf representatives and
     * return 0 instead (IndexEHITree does this: flat storage ignores them). */
    bool compute_distances = true;
    /// Adaptive beam (see EHITreeQuantizer::mass_threshold); < 0: the
    /// quantizer's own setting.
    float mass_threshold = -1;
    int min_beam = -1; ///< < 0: the quantizer's own min_beam
};

/** Cut each of n rows of `beam` leaves (ordered, with their
 * probabilities) after the first min_beam leaves once the mass taken
 * reaches 1 - mass_threshold; the rest become -1 (probability 0). */
void apply_adaptive_beam(idx_t n, idx_t beam, float mass_threshold,
                         int min_beam, idx_t* leaves, float* probs);

} // namespace faiss_ehi
