/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/IndexEHITree.h>

#include <algorithm>
#include <cinttypes>
#include <limits>
#include <unordered_set>

#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/utils/distances.h>

#include <faiss_ehi/DedupScanner.h>
#include <faiss_ehi/SIMDListScanner.h>
#include <faiss_ehi/blocked_scan.h>

namespace faiss_ehi {

namespace {

bool same_tree(const EHITree& a, const EHITree& b) {
    return a.B == b.B && a.H == b.H && a.m == b.m && a.form == b.form &&
            a.use_bias == b.use_bias && a.U == b.U && a.W == b.W &&
            a.bias == b.bias && a.node_W == b.node_W && a.node_b == b.node_b;
}

/** Search parameters that IndexEHITree's own reading calls pass down to
 * search_preassigned: `holder` already holds its lock in shared mode.
 * Faiss runs search_preassigned on its OpenMP threads, so a thread-local
 * flag could not say so; taking the lock again would be a recursive lock. */
struct HeldSearchParams : faiss::SearchParametersIVF {
    const IndexEHITree* holder = nullptr;
};

/** `out` = the nprobe, max_codes, selector and quantizer parameters of
 * `params` (a SearchParametersIVF, or null for the index's own). */
void fill_held_params(const IndexEHITree& index,
                      const faiss::SearchParameters* params,
                      HeldSearchParams& out) {
    out.holder = &index;
    out.nprobe = index.nprobe;
    out.max_codes = index.max_codes;
    if (!params) {
        return;
    }
    auto* p = dynamic_cast<const faiss::SearchParametersIVF*>(params);
    FAISS_THROW_IF_NOT_MSG(p,
                           "IndexEHITree: search parameters must be "
                           "SearchParametersIVF");
    out.nprobe = p->nprobe;
    out.max_codes = p->max_codes;
    out.sel = p->sel;
    out.quantizer_params = p->quantizer_params;
}

} // namespace

IndexEHITree::IndexEHITree(int d, int B, int H, faiss::MetricType metric,
                           NodeForm form)
        : IndexEHITree(new EHITreeQuantizer(d, B, H, metric, form), metric) {}

IndexEHITree::IndexEHITree(EHITreeQuantizer* q, faiss::MetricType metric)
        : faiss::IndexIVFFlat(q, q->d, q->ntotal, metric) {
    FAISS_THROW_IF_NOT_MSG(q->metric_type == metric,
                           "the tree quantizer and the index must use the "
                           "same metric");
    FAISS_THROW_IF_NOT_FMT(q->tree.m == q->d,
                           "the tree routes %d-d inputs but the quantizer "
                           "has d = %d",
                           q->tree.m, q->d);
    own_fields = true;
    quantizer_trains_alone = 1;
}

IndexEHITree::IndexEHITree() : faiss::IndexIVFFlat() {}

IndexEHITree::IndexEHITree(const IndexEHITree& other)
        : IndexEHITree(other, other.read_lock()) {}

// `held` keeps other's shared lock until the copy is complete.
IndexEHITree::IndexEHITree(const IndexEHITree& other,
                           std::shared_lock<WriterFirstMutex>&& /* held */)
        : faiss::IndexIVFFlat(other), d2l(other.d2l),
          assign_rule(other.assign_rule), soar_lambda(other.soar_lambda),
          lists_have_duplicates(other.lists_have_duplicates),
          simd_scan(other.simd_scan), block_queries(other.block_queries),
          block_min_batch(other.block_min_batch) {}

std::shared_lock<WriterFirstMutex> IndexEHITree::read_lock() const {
    return std::shared_lock<WriterFirstMutex>(rw_mutex);
}

IndexEHITree::IndexEHITree(const faiss::IndexIVFFlat& ivf)
        : faiss::IndexIVFFlat(ivf) {
    tree_quantizer(); // throws unless routed by a tree
    quantizer_trains_alone = 1;
}

EHITreeQuantizer* IndexEHITree::tree_quantizer() const {
    auto* q = dynamic_cast<EHITreeQuantizer*>(quantizer);
    FAISS_THROW_IF_NOT_MSG(q,
                           "IndexEHITree: the quantizer is not an "
                           "EHITreeQuantizer");
    return q;
}

void IndexEHITree::train(idx_t n, const float* x) {
    check_finite(n, d, x, "training vectors");
    std::unique_lock<WriterFirstMutex> lock(rw_mutex);
    faiss::IndexIVFFlat::train(n, x);
}

void IndexEHITree::assign_documents(idx_t n, const float* x,
                                    idx_t* lists) const {
    const EHITreeQuantizer* q = tree_quantizer();
    FAISS_THROW_IF_NOT_FMT(q->tree.m == d,
                           "the tree routes %d-d inputs but the index has "
                           "d = %d",
                           q->tree.m, d);
    FAISS_THROW_IF_NOT_FMT(d2l >= 1 && d2l <= idx_t(nlist),
                           "d2l = %d outside [1, B^H = %zd]", d2l, nlist);
    std::vector<float> tmp(size_t(n) * d2l);
    // A tree over flat k-means cells (assign_nearest) files documents by
    // the nearest representative, as IVF does: its probing model was
    // trained on where the documents' cells are, not on its own top leaf.
    if (assign_rule == DocAssignRule::PROBABILITY && !q->assign_nearest) {
        q->tree.route(n, x, d2l, lists, tmp.data());
        return;
    }
    if (assign_rule != DocAssignRule::SOAR) {
        faiss::IndexFlat reps(d, metric_type);
        reps.add(nlist, q->leaf_representatives.data());
        reps.search(n, x, d2l, tmp.data(), lists);
        return;
    }
    FAISS_THROW_IF_NOT_MSG(assign_rule == DocAssignRule::SOAR,
                           "unknown document assignment rule");
    // SOAR: the primary leaf by probability, the others among the tree's
    // best candidates by the spilled-residual score.
    idx_t ncand = std::min(idx_t(nlist), std::max(idx_t(4) * d2l, idx_t(16)));
    std::vector<idx_t> cand(size_t(n) * ncand);
    std::vector<float> cprob(size_t(n) * ncand);
    if (q->assign_nearest) {
        faiss::IndexFlat reps(d, metric_type);
        reps.add(nlist, q->leaf_representatives.data());
        reps.search(n, x, ncand, cprob.data(), cand.data());
    } else {
        q->tree.route(n, x, ncand, cand.data(), cprob.data());
    }
#pragma omp parallel for if (n > 1)
    for (idx_t i = 0; i < n; i++) {
        const float* xi = x + size_t(i) * d;
        const idx_t* ci = cand.data() + size_t(i) * ncand;
        idx_t* out = lists + size_t(i) * d2l;
        out[0] = ci[0];
        std::vector<float> r(d);
        const float* c0 = q->leaf_representatives.data() + size_t(ci[0]) * d;
        for (int j = 0; j < d; j++) {
            r[j] = xi[j] - c0[j];
        }
        float rn = faiss::fvec_norm_L2sqr(r.data(), d);
        std::vector<std::pair<float, idx_t>> scored;
        for (idx_t c = 1; c < ncand; c++) {
            if (ci[c] < 0) {
                continue;
            }
            const float* cc =
                    q->leaf_representatives.data() + size_t(ci[c]) * d;
            float dist = 0, proj = 0;
            for (int j = 0; j < d; j++) {
                float diff = xi[j] - cc[j];
                dist += diff * diff;
                proj += r[j] * diff;
            }
            float score = dist + (rn > 0 ? soar_lambda * proj * proj / rn : 0);
            scored.push_back({score, ci[c]});
        }
        std::sort(scored.begin(), scored.end());
        for (int s = 1; s < d2l; s++) {
            out[s] = size_t(s - 1) < scored.size() ? scored[s - 1].second : -1;
        }
    }
}

void IndexEHITree::add_with_ids(idx_t n, const float* x, const idx_t* xids) {
    std::unique_lock<WriterFirstMutex> lock(rw_mutex);
    add_with_ids_unlocked(n, x, xids);
}

void IndexEHITree::add_core(idx_t n, const float* x, const idx_t* xids,
                            const idx_t* precomputed_idx) {
    std::unique_lock<WriterFirstMutex> lock(rw_mutex);
    faiss::IndexIVFFlat::add_core(n, x, xids, precomputed_idx);
    // The caller chose the lists: with d2l > 1 they are one document's
    // d2l leaves given one at a time (a shard of faiss_ehi.distributed
    // filled through DistributedEHI.add gets an id in each of its leaves
    // that the shard owns), so an id may now sit in several lists and the
    // searches must deduplicate.
    if (n > 0 && d2l > 1) {
        lists_have_duplicates = true;
    }
}

void IndexEHITree::add_with_ids_unlocked(idx_t n, const float* x,
                                         const idx_t* xids) {
    FAISS_THROW_IF_NOT_MSG(is_trained,
                           "IndexEHITree: add on an untrained index (call "
                           "train first)");
    FAISS_THROW_IF_NOT_FMT(d2l >= 1 && d2l <= idx_t(nlist),
                           "d2l = %d outside [1, B^H = %zd]", d2l, nlist);
    if (n == 0) {
        return;
    }
    check_finite(n, d, x, "added vectors");
    std::vector<idx_t> lists(size_t(n) * d2l);
    assign_documents(n, x, lists.data());
    if (d2l == 1) {
        faiss::IndexIVFFlat::add_core(n, x, xids, lists.data());
        return;
    }
    std::vector<idx_t> primary(n);
    for (idx_t i = 0; i < n; i++) {
        primary[i] = lists[size_t(i) * d2l];
    }
    idx_t id0 = ntotal;
    // The primary copy goes through Faiss (ids, direct map, ntotal); the
    // other copies are extra list entries that only search sees.
    faiss::IndexIVFFlat::add_core(n, x, xids, primary.data());
    for (idx_t i = 0; i < n; i++) {
        idx_t id = xids ? xids[i] : id0 + i;
        for (int r = 1; r < d2l; r++) {
            idx_t list = lists[size_t(i) * d2l + r];
            if (list < 0 || list == primary[i]) {
                continue;
            }
            invlists->add_entry(
                    list, id,
                    reinterpret_cast<const uint8_t*>(x + size_t(i) * d));
            lists_have_duplicates = true;
        }
    }
}

void IndexEHITree::search(idx_t n, const float* x, idx_t k, float* distances,
                          idx_t* labels,
                          const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_FMT(k > 0, "search: k must be > 0, got %" PRId64, k);
    FAISS_THROW_IF_NOT_MSG(is_trained,
                           "IndexEHITree: search on an untrained index");
    HeldSearchParams local;
    fill_held_params(*this, params, local);
    // Flat storage never reads the coarse distances, so the tree is asked
    // not to compute them, unless the caller passed quantizer parameters.
    SearchParametersEHITree qparams;
    qparams.compute_distances = false;
    if (!local.quantizer_params) {
        local.quantizer_params = &qparams;
    }
    FAISS_THROW_IF_NOT_MSG(
            local.nprobe >= 1,
            "IndexEHITree: nprobe (the beam width) must be >= 1");
    std::shared_lock<WriterFirstMutex> lock(rw_mutex);
    // NaN/Inf queries are rejected by the tree quantizer's search.
    check_parallel_mode();
    faiss::IndexIVFFlat::search(n, x, k, distances, labels, &local);
}

void IndexEHITree::search_preassigned(idx_t n, const float* x, idx_t k,
                                      const idx_t* assign,
                                      const float* centroid_dis,
                                      float* distances, idx_t* labels,
                                      bool store_pairs,
                                      const faiss::IVFSearchParameters* params,
                                      faiss::IndexIVFStats* stats) const {
    auto* held = dynamic_cast<const HeldSearchParams*>(params);
    std::shared_lock<WriterFirstMutex> lock(rw_mutex, std::defer_lock);
    if (!held || held->holder != this) {
        lock.lock();
    }
    // As Faiss: assign holds min(nlist, nprobe) lists per query.
    size_t np = std::min(nlist, params ? params->nprobe : nprobe);
    bool blockable = block_queries && simd_scan && !lists_have_duplicates &&
            blocking_applies(*this, n, block_min_batch, store_pairs, params);
    if (blockable) {
        search_preassigned_blocked(*this, n, x, k, np, assign, centroid_dis,
                                   distances, labels, stats);
        return;
    }
    faiss::IndexIVFFlat::search_preassigned(n, x, k, assign, centroid_dis,
                                            distances, labels, store_pairs,
                                            params, stats);
}

void IndexEHITree::search_and_reconstruct(
        idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
        float* recons, const faiss::SearchParameters* params) const {
    HeldSearchParams local;
    fill_held_params(*this, params, local);
    std::shared_lock<WriterFirstMutex> lock(rw_mutex);
    faiss::IndexIVFFlat::search_and_reconstruct(n, x, k, distances, labels,
                                                recons, &local);
}

void IndexEHITree::reconstruct(idx_t key, float* recons) const {
    std::shared_lock<WriterFirstMutex> lock(rw_mutex);
    faiss::IndexIVFFlat::reconstruct(key, recons);
}

void IndexEHITree::reconstruct_n(idx_t i0, idx_t ni, float* recons) const {
    std::shared_lock<WriterFirstMutex> lock(rw_mutex);
    faiss::IndexIVFFlat::reconstruct_n(i0, ni, recons);
}

void IndexEHITree::range_search(idx_t n, const float* x, float radius,
                                faiss::RangeSearchResult* result,
                                const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_MSG(is_trained,
                           "IndexEHITree: range_search on an untrained index");
    std::shared_lock<WriterFirstMutex> lock(rw_mutex);
    check_parallel_mode();
    faiss::IndexIVFFlat::range_search(n, x, radius, result, params);
}

faiss::InvertedListScanner* IndexEHITree::get_InvertedListScanner(
        bool store_pairs, const faiss::IDSelector* sel) const {
    faiss::InvertedListScanner* base = simd_scan
            ? SIMDListScanner::create(*this, store_pairs, sel)
            : nullptr;
    if (!base) {
        base = faiss::IndexIVFFlat::get_InvertedListScanner(store_pairs, sel);
    }
    if (!lists_have_duplicates) {
        return base;
    }
    return new DedupScanner(*this, base, store_pairs, sel);
}

size_t IndexEHITree::remove_ids(const faiss::IDSelector& sel) {
    std::unique_lock<WriterFirstMutex> lock(rw_mutex);
    return remove_ids_unlocked(sel);
}

size_t IndexEHITree::remove_ids_unlocked(const faiss::IDSelector& sel) {
    if (!lists_have_duplicates) {
        return faiss::IndexIVFFlat::remove_ids(sel);
    }
    FAISS_THROW_IF_NOT_MSG(direct_map.type != faiss::DirectMap::Array,
                           "remove_ids is not supported with an array direct "
                           "map (use a hashtable direct map or none)");
    // Every copy of a removed id must go, so scan all lists.
    std::unordered_set<idx_t> removed;
    for (size_t list = 0; list < nlist; list++) {
        size_t ls = invlists->list_size(list);
        size_t e = 0;
        while (e < ls) {
            idx_t id = invlists->get_single_id(list, e);
            if (sel.is_member(id)) {
                removed.insert(id);
                ls--;
                if (e < ls) {
                    faiss::InvertedLists::ScopedCodes last(invlists, list, ls);
                    invlists->update_entry(list, e,
                                           invlists->get_single_id(list, ls),
                                           last.get());
                }
            } else {
                e++;
            }
        }
        invlists->resize(list, ls);
    }
    ntotal -= removed.size();
    if (direct_map.type == faiss::DirectMap::Hashtable) {
        direct_map.set_type(faiss::DirectMap::NoMap, invlists, ntotal);
        direct_map.set_type(faiss::DirectMap::Hashtable, invlists, ntotal);
    }
    return removed.size();
}

void IndexEHITree::check_parallel_mode() const {
    FAISS_THROW_IF_NOT_MSG(
            !lists_have_duplicates ||
                    (parallel_mode & ~PARALLEL_MODE_NO_HEAP_INIT) == 0,
            "IndexEHITree: with d2l > 1 ids are stored in several lists and "
            "are deduplicated per query, which needs parallel_mode 0");
}

void IndexEHITree::reset() {
    std::unique_lock<WriterFirstMutex> lock(rw_mutex);
    faiss::IndexIVFFlat::reset();
    lists_have_duplicates = false;
}

void IndexEHITree::check_compatible_for_merge(const faiss::Index& other) const {
    faiss::IndexIVFFlat::check_compatible_for_merge(other);
    auto* o = dynamic_cast<const IndexEHITree*>(&other);
    FAISS_THROW_IF_NOT_MSG(o,
                           "merge_from: the other index is not an "
                           "IndexEHITree");
    FAISS_THROW_IF_NOT_MSG(
            same_tree(tree_quantizer()->tree, o->tree_quantizer()->tree),
            "merge_from: the two indexes route with different "
            "trees");
}

void IndexEHITree::merge_from(faiss::Index& other, idx_t add_id) {
    auto* o = dynamic_cast<IndexEHITree*>(&other);
    if (!o) {
        check_compatible_for_merge(other); // throws, naming the mismatch
    }
    FAISS_THROW_IF_NOT_MSG(o && o != this,
                           "merge_from: the other index must be another "
                           "IndexEHITree than this one");
    // Both indexes change; std::lock takes the two locks without deadlock
    // against a merge in the other direction.
    std::unique_lock<WriterFirstMutex> mine(rw_mutex, std::defer_lock);
    std::unique_lock<WriterFirstMutex> theirs(o->rw_mutex, std::defer_lock);
    std::lock(mine, theirs);
    // Faiss checks compatibility first, through the override above.
    faiss::IndexIVFFlat::merge_from(other, add_id);
    lists_have_duplicates = lists_have_duplicates || o->lists_have_duplicates;
    o->lists_have_duplicates = false;
}

} // namespace faiss_ehi
