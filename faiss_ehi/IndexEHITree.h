/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <mutex>
#include <shared_mutex>

#include <faiss/IndexIVFFlat.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/rw_mutex.h>

namespace faiss_ehi {

/// Which leaves a vector is stored in when d2l > 1 (or how its leaf is
/// chosen at all).
enum class DocAssignRule : int {
    /// The d2l most probable leaves of the tree (the paper's rule).
    PROBABILITY = 0,
    /// The d2l leaves with the nearest representatives.
    NEAREST_LEAF = 1,
    /** First leaf by probability; each further leaf minimises the SOAR
     * score |x-c'|^2 + lambda <r, x-c'>^2 / |r|^2 over the tree's top
     * candidates, r the residual to the first leaf (docs/DESIGN.md,
     * "Document placement"). */
    SOAR = 2,
};

/// The DocAssignRule of largest value: the range a stored rule is checked
/// against when an index is read. Keep it the last enumerator.
constexpr DocAssignRule kLastDocAssignRule = DocAssignRule::SOAR;

/** The default EHI index: an IVF index with flat storage whose coarse
 * quantizer is the learned tree (EHITreeQuantizer).
 *
 * - nprobe is the beam width (also per call, SearchParametersIVF::nprobe);
 * - d2l (documents to leaves, paper appendix E.10): each added vector is
 *   stored in d2l leaves; every search path (search, range_search,
 *   search_and_reconstruct, ivflib) still returns each id at most once;
 *   with duplicates stored, parallel_mode must stay 0 (the default);
 * - indexIVF_stats.ndis counts the stored entries scanned, that is the sum
 *   of the probed lists' sizes ("documents visited");
 * - threads: the reading calls (search, range_search, search_preassigned,
 *   search_and_reconstruct, reconstruct, reconstruct_n, and
 *   faiss_ehi::write_index / clone_index) may run concurrently with each
 *   other and with the changing calls (train, add, add_with_ids, add_core,
 *   remove_ids, reset, merge_from), which are serialised among themselves.
 *   A reading call sees the index before or after a change, never in
 *   between (docs/DESIGN.md, "Threads").
 */
struct IndexEHITree : faiss::IndexIVFFlat {
    int d2l = 1; ///< leaves per added vector, in [1, B^H]
    DocAssignRule assign_rule = DocAssignRule::PROBABILITY;
    float soar_lambda = 1.0f; ///< lambda of the SOAR rule
    /// Some id may be stored in several lists (set by adds with d2l > 1).
    bool lists_have_duplicates = false;
    /** Scan lists with faiss-ehi's kernels (SIMDListScanner) rather than
     * Faiss's. Not stored in files; false only to compare the two. */
    bool simd_scan = true;
    /** k-NN batches of at least block_min_batch queries scan each probed
     * list once for all the queries of a block that probe it
     * (search_preassigned_blocked), where the search allows it (no
     * selector, store_pairs, max_codes or duplicates). The results are
     * those of the query-by-query scan, ties included (SIMDListScanner
     * breaks them by label). false: never. Not stored. */
    bool block_queries = true;
    /** The smallest batch that blocks: list-major order paid 1.35-1.84x
     * at 1,024 queries and nothing at 16 (benchs/RESULTS.md, "Scan
     * kernels"). Not stored. */
    idx_t block_min_batch = 256;

    /// An index over a new tree quantizer (owned).
    IndexEHITree(int d, int B, int H,
                 faiss::MetricType metric = faiss::METRIC_L2,
                 NodeForm form = NodeForm::PER_NODE);
    /// An index over the given quantizer; takes ownership.
    IndexEHITree(EHITreeQuantizer* quantizer, faiss::MetricType metric);
    IndexEHITree();
    /** Takes over the state of a plain IndexIVFFlat (lists, ids, direct
     * map, parameters) whose quantizer is an EHITreeQuantizer. The pointers
     * are shared: the caller must clear ivf.own_fields and
     * ivf.own_invlists before deleting ivf (used when reading files). */
    explicit IndexEHITree(const faiss::IndexIVFFlat& ivf);
    /** Copies share the pointers, as IndexIVFFlat's copies do; each copy
     * has its own lock, and the source is read under its shared lock. */
    IndexEHITree(const IndexEHITree& other);
    /// Not assignable, as faiss::IndexIVF.
    IndexEHITree& operator=(const IndexEHITree&) = delete;

    /** Holds this index's lock in shared mode until the returned object is
     * destroyed: no change (add, remove_ids, ...) runs meanwhile, so
     * several fields and lists can be read consistently. The lock is not
     * recursive: while holding it, call none of this index's locking
     * methods (a change would wait forever; a search or write_index could
     * wait forever behind a waiting change). */
    std::shared_lock<WriterFirstMutex> read_lock() const;

    /// The tree quantizer (throws if the quantizer is not one).
    EHITreeQuantizer* tree_quantizer() const;

    void train(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* xids) override;
    /// Locked like add; files every vector in one list (ignores d2l).
    /// With d2l > 1 it sets lists_have_duplicates: the caller may be
    /// filing one id in several lists, one call per list.
    void add_core(idx_t n, const float* x, const idx_t* xids,
                  const idx_t* precomputed_idx) override;
    void search(idx_t n, const float* x, idx_t k, float* distances,
                idx_t* labels,
                const faiss::SearchParameters* params = nullptr) const override;
    void range_search(
            idx_t n, const float* x, float radius,
            faiss::RangeSearchResult* result,
            const faiss::SearchParameters* params = nullptr) const override;
    /// Takes the shared lock unless called from this index's own search.
    void search_preassigned(
            idx_t n, const float* x, idx_t k, const idx_t* assign,
            const float* centroid_dis, float* distances, idx_t* labels,
            bool store_pairs,
            const faiss::IVFSearchParameters* params = nullptr,
            faiss::IndexIVFStats* stats = nullptr) const override;
    void search_and_reconstruct(
            idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
            float* recons,
            const faiss::SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* recons) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* recons) const override;
    /** The SIMDListScanner (Faiss's if simd_scan is false), wrapped in a DedupScanner when some id is stored in
     * several lists; every Faiss search path then returns each id once. */
    faiss::InvertedListScanner* get_InvertedListScanner(
            bool store_pairs = false,
            const faiss::IDSelector* sel = nullptr) const override;
    size_t remove_ids(const faiss::IDSelector& sel) override;
    void reset() override;
    void merge_from(faiss::Index& other, idx_t add_id) override;
    /// Also requires both trees to be identical (same routing).
    void check_compatible_for_merge(const faiss::Index& other) const override;

    /** The lists each of n vectors goes to under d2l and assign_rule
     * (n x d2l, -1 where fewer distinct leaves exist). */
    void assign_documents(idx_t n, const float* x, idx_t* lists) const;

    /// Throws if duplicates are stored and parallel_mode is not 0.
    void check_parallel_mode() const;

  private:
    /// Shared by the reading calls, exclusive for the changing ones.
    mutable WriterFirstMutex rw_mutex;

    IndexEHITree(const IndexEHITree& other,
                 std::shared_lock<WriterFirstMutex>&& held);
    // The unlocked bodies; the caller holds rw_mutex.
    void add_with_ids_unlocked(idx_t n, const float* x, const idx_t* xids);
    size_t remove_ids_unlocked(const faiss::IDSelector& sel);
};

} // namespace faiss_ehi
