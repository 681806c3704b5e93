/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/DedupScanner.h>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/Heap.h>

namespace faiss_ehi {

DedupScanner::DedupScanner(const faiss::IndexIVF& index,
                           faiss::InvertedListScanner* base, bool store_pairs,
                           const faiss::IDSelector* sel)
        : faiss::InvertedListScanner(store_pairs, sel), index_(index),
          base_(base) {
    // Faiss 1.7.3 scanners do not all set keep_max: derive it from the metric.
    keep_max = index.metric_type == faiss::METRIC_INNER_PRODUCT;
    code_size = index.code_size;
}

void DedupScanner::set_query(const float* query_vector) {
    base_->set_query(query_vector);
    reported_.clear();
}

void DedupScanner::set_list(idx_t list_no, float coarse_dis) {
    this->list_no = list_no;
    base_->set_list(list_no, coarse_dis);
    // Faiss passes no ids when store_pairs is set; dedup needs them.
    list_ids_.reset(store_pairs ? new faiss::InvertedLists::ScopedIds(
                                          index_.invlists, list_no)
                                : nullptr);
}

float DedupScanner::distance_to_code(const uint8_t* code) const {
    return base_->distance_to_code(code);
}

DedupScanner::idx_t DedupScanner::entry_id(const idx_t* ids, size_t j) const {
    return store_pairs ? list_ids_->get()[j] : ids[j];
}

DedupScanner::idx_t DedupScanner::label_to_id(idx_t label) const {
    if (label < 0 || !store_pairs) {
        return label;
    }
    return index_.invlists->get_single_id(faiss::lo_listno(label),
                                          faiss::lo_offset(label));
}

size_t DedupScanner::scan_codes(size_t n, const uint8_t* codes,
                                const idx_t* ids, float* distances,
                                idx_t* labels, size_t k) const {
    size_t nup = 0;
    for (size_t j = 0; j < n; j++) {
        idx_t id = entry_id(ids, j);
        if (sel && !sel->is_member(id)) {
            continue;
        }
        float dis = base_->distance_to_code(codes + j * code_size);
        bool better = keep_max ? dis > distances[0] : dis < distances[0];
        if (!better) {
            continue;
        }
        bool present = false;
        for (size_t e = 0; e < k && !present; e++) {
            present = labels[e] >= 0 && label_to_id(labels[e]) == id;
        }
        if (present) {
            continue;
        }
        idx_t label = store_pairs ? idx_t(faiss::lo_build(list_no, j)) : id;
        if (keep_max) {
            faiss::minheap_replace_top(k, distances, labels, dis, label);
        } else {
            faiss::maxheap_replace_top(k, distances, labels, dis, label);
        }
        nup++;
    }
    return nup;
}

void DedupScanner::scan_codes_range(size_t n, const uint8_t* codes,
                                    const idx_t* ids, float radius,
                                    faiss::RangeQueryResult& result) const {
    for (size_t j = 0; j < n; j++) {
        idx_t id = entry_id(ids, j);
        if (sel && !sel->is_member(id)) {
            continue;
        }
        float dis = base_->distance_to_code(codes + j * code_size);
        bool inside = keep_max ? dis > radius : dis < radius;
        if (inside && reported_.insert(id).second) {
            result.add(dis,
                       store_pairs ? idx_t(faiss::lo_build(list_no, j)) : id);
        }
    }
}

} // namespace faiss_ehi
