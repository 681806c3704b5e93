/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <memory>
#include <unordered_set>

#include <faiss/IndexIVF.h>
#include <faiss/invlists/InvertedLists.h>

namespace faiss_ehi {

/** An inverted-list scanner that returns each id at most once per query,
 * for IVF indexes where one id is stored in several lists (d2l > 1).
 *
 * It wraps the index's own scanner (for the distances) and is what
 * IndexEHITree::get_InvertedListScanner hands to Faiss, so every Faiss
 * search path deduplicates: search, search_preassigned, range_search,
 * search_and_reconstruct (store_pairs) and the ivflib functions.
 *
 * k-NN: a copy of an id has the same code, hence the same distance, as the
 * first; if the id is in the heap the copy is skipped, and if it was pushed
 * out it cannot re-enter. Range: a per-query set of ids reported.
 * Deduplication is per scanner, so it holds for parallel_mode 0 (one
 * scanner sees all lists of a query), which IndexEHITree enforces. */
struct DedupScanner : faiss::InvertedListScanner {
    DedupScanner(const faiss::IndexIVF& index, faiss::InvertedListScanner* base,
                 bool store_pairs, const faiss::IDSelector* sel);

    void set_query(const float* query_vector) override;
    void set_list(idx_t list_no, float coarse_dis) override;
    float distance_to_code(const uint8_t* code) const override;
    size_t scan_codes(size_t n, const uint8_t* codes, const idx_t* ids,
                      float* distances, idx_t* labels, size_t k) const override;
    void scan_codes_range(size_t n, const uint8_t* codes, const idx_t* ids,
                          float radius,
                          faiss::RangeQueryResult& result) const override;

  private:
    /// The stored id behind a heap label (labels are pairs if store_pairs).
    idx_t label_to_id(idx_t label) const;
    /// The stored id of entry j of the current list.
    idx_t entry_id(const idx_t* ids, size_t j) const;

    const faiss::IndexIVF& index_;
    std::unique_ptr<faiss::InvertedListScanner> base_;
    std::unique_ptr<faiss::InvertedLists::ScopedIds> list_ids_;
    mutable std::unordered_set<idx_t> reported_; ///< range results so far
};

} // namespace faiss_ehi
