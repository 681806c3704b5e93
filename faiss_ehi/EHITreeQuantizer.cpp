/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/EHITreeQuantizer.h>

#include <algorithm>
#include <cinttypes>
#include <limits>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/distances.h>

#include <faiss_ehi/TreeTrainer.h>

namespace faiss_ehi {

EHITreeQuantizer::EHITreeQuantizer() : faiss::Index(0, faiss::METRIC_L2) {
    is_trained = false;
}

EHITreeQuantizer::EHITreeQuantizer(int d, int B, int H,
                                   faiss::MetricType metric, NodeForm form)
        : faiss::Index(d, metric), tree(B, H, d, form) {
    FAISS_THROW_IF_NOT_MSG(metric == faiss::METRIC_L2 ||
                                   metric == faiss::METRIC_INNER_PRODUCT,
                           "EHI supports METRIC_L2 and METRIC_INNER_PRODUCT");
    ntotal = tree.nleaves();
    is_trained = false;
}

void EHITreeQuantizer::update_is_trained() {
    is_trained = tree.is_trained &&
            leaf_representatives.size() == size_t(tree.nleaves()) * d;
}

void EHITreeQuantizer::train(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_FMT(tree.m == d,
                           "EHITreeQuantizer: the tree routes %d-d inputs but "
                           "the quantizer has d = %d",
                           tree.m, d);
    FAISS_THROW_IF_NOT_MSG(n > 0,
                           "EHITreeQuantizer::train: no training vectors");
    check_finite(n, d, x, "training vectors");
    if (!tree.is_trained) {
        std::shared_ptr<TreeTrainer> trainer = get_tree_trainer();
        FAISS_THROW_IF_NOT_FMT(trainer,
                               "EHI tree training needs a trainer and none is "
                               "registered: %s",
                               no_tree_trainer_hint().c_str());
        trainer->train_tree(*this, n, x);
        FAISS_THROW_IF_NOT_FMT(tree.is_trained,
                               "tree trainer '%s' left the tree untrained",
                               trainer->name().c_str());
    }
    if (leaf_representatives.size() != size_t(tree.nleaves()) * d) {
        compute_representatives(n, x);
    }
    update_is_trained();
}

void EHITreeQuantizer::add(idx_t, const float*) {
    FAISS_THROW_MSG("EHITreeQuantizer: the leaves are fixed by (B, H); "
                    "vectors cannot be added to the quantizer");
}

void EHITreeQuantizer::reset() {}

void EHITreeQuantizer::search(idx_t n, const float* x, idx_t k,
                              float* distances, idx_t* labels,
                              const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_MSG(is_trained,
                           "EHI tree quantizer is not trained: train the "
                           "index first (or set the tree's parameters and "
                           "leaf representatives)");
    FAISS_THROW_IF_NOT_FMT(k > 0, "beam (k, nprobe) must be >= 1, got %" PRId64,
                           k);
    FAISS_THROW_IF_NOT_FMT(tree.m == d,
                           "EHITreeQuantizer: tree.m = %d differs from d = %d",
                           tree.m, d);
    check_finite(n, d, x, "query vectors");
    int strategy = -1;
    bool with_distances = true;
    float threshold = mass_threshold;
    int floor_beam = min_beam;
    if (auto* p = dynamic_cast<const SearchParametersEHITree*>(params)) {
        strategy = p->strategy;
        with_distances = p->compute_distances;
        // negative: the quantizer's own; NaN is an error, not "unset"
        if (!(p->mass_threshold < 0)) {
            threshold = p->mass_threshold;
        }
        if (p->min_beam >= 0) {
            floor_beam = p->min_beam;
        }
    }
    FAISS_THROW_IF_NOT_FMT(threshold >= 0 && threshold < 1,
                           "EHI adaptive beam: mass_threshold must be in "
                           "[0, 1), got %g",
                           threshold);
    // The routing probabilities are wanted by the adaptive beam only: the
    // distances returned are those to the leaf representatives (below).
    tree.route(n, x, k, labels, threshold > 0 ? distances : nullptr,
               strategy);
    if (threshold > 0) {
        apply_adaptive_beam(n, k, threshold, floor_beam, labels, distances);
    }
    if (!with_distances) {
        std::fill(distances, distances + size_t(n) * k, 0.0f);
        return;
    }
    const bool ip = metric_type == faiss::METRIC_INNER_PRODUCT;
    const float missing = ip ? -std::numeric_limits<float>::max()
                             : std::numeric_limits<float>::max();
#pragma omp parallel for if (n > 1)
    for (idx_t q = 0; q < n; q++) {
        const float* xq = x + size_t(q) * d;
        for (idx_t j = 0; j < k; j++) {
            idx_t leaf = labels[q * k + j];
            float& dis = distances[q * k + j];
            if (leaf < 0) {
                dis = missing;
                continue;
            }
            const float* rep = leaf_representatives.data() + size_t(leaf) * d;
            dis = ip ? faiss::fvec_inner_product(xq, rep, d)
                     : faiss::fvec_L2sqr(xq, rep, d);
        }
    }
}

void apply_adaptive_beam(idx_t n, idx_t beam, float mass_threshold,
                         int min_beam, idx_t* leaves, float* probs) {
    const double want = 1.0 - double(mass_threshold);
    for (idx_t q = 0; q < n; q++) {
        idx_t* lq = leaves + size_t(q) * beam;
        float* pq = probs + size_t(q) * beam;
        double taken = 0;
        for (idx_t j = 0; j < beam; j++) {
            if (j >= min_beam && taken >= want) {
                lq[j] = -1;
                pq[j] = 0;
                continue;
            }
            taken += pq[j];
        }
    }
}

void EHITreeQuantizer::assign(idx_t n, const float* x, idx_t* labels,
                              idx_t k) const {
    if (k != 1 || !assign_nearest) {
        faiss::Index::assign(n, x, labels, k);
        return;
    }
    FAISS_THROW_IF_NOT_MSG(is_trained,
                           "EHI tree quantizer is not trained: train the "
                           "index first");
    check_finite(n, d, x, "vectors to assign");
    nearest_leaf(n, x, labels);
}

void EHITreeQuantizer::nearest_leaf(idx_t n, const float* x,
                                    idx_t* labels) const {
    FAISS_THROW_IF_NOT_MSG(
            leaf_representatives.size() == size_t(ntotal) * d,
            "EHI tree quantizer has no leaf representatives (not trained)");
    faiss::IndexFlat reps(d, metric_type);
    reps.add(ntotal, leaf_representatives.data());
    std::vector<float> dis(n);
    reps.search(n, x, 1, dis.data(), labels);
}

void EHITreeQuantizer::reconstruct(idx_t key, float* recons) const {
    FAISS_THROW_IF_NOT_FMT(key >= 0 && key < ntotal,
                           "leaf %" PRId64 " outside [0, %" PRId64 ")", key,
                           ntotal);
    FAISS_THROW_IF_NOT_MSG(
            leaf_representatives.size() == size_t(ntotal) * d,
            "EHI tree quantizer has no leaf representatives (not trained)");
    std::copy_n(leaf_representatives.data() + size_t(key) * d, d, recons);
}

void EHITreeQuantizer::compute_representatives(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_MSG(tree.is_trained,
                           "compute_representatives needs a trained tree");
    FAISS_THROW_IF_NOT_FMT(tree.m == d,
                           "EHITreeQuantizer: tree.m = %d differs from d = %d",
                           tree.m, d);
    check_finite(n, d, x, "vectors for the leaf representatives");
    idx_t L = tree.nleaves();
    std::vector<idx_t> leaf(n);
    std::vector<float> prob(n);
    tree.route(n, x, 1, leaf.data(), prob.data());
    std::vector<double> sum(size_t(L) * d, 0.0), mean(d, 0.0);
    std::vector<idx_t> count(L, 0);
    for (idx_t i = 0; i < n; i++) {
        const float* xi = x + size_t(i) * d;
        double* s = sum.data() + size_t(leaf[i]) * d;
        for (int j = 0; j < d; j++) {
            s[j] += xi[j];
            mean[j] += xi[j] / double(n);
        }
        count[leaf[i]]++;
    }
    bool had = leaf_representatives.size() == size_t(L) * d;
    std::vector<float> reps(size_t(L) * d);
    for (idx_t l = 0; l < L; l++) {
        float* r = reps.data() + size_t(l) * d;
        for (int j = 0; j < d; j++) {
            if (count[l] > 0) {
                r[j] = float(sum[size_t(l) * d + j] / double(count[l]));
            } else if (had) {
                r[j] = leaf_representatives[size_t(l) * d + j];
            } else {
                r[j] = float(mean[j]);
            }
        }
    }
    leaf_representatives.swap(reps);
    update_is_trained();
}

} // namespace faiss_ehi
