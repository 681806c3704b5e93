/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/index_walk.h>

#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>

namespace faiss_ehi {

std::vector<faiss::Index**> wrapper_children(faiss::Index* index) {
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
        return {&pt->index};
    }
    if (auto* idm = dynamic_cast<faiss::IndexIDMap*>(index)) {
        return {&idm->index};
    }
    if (auto* rf = dynamic_cast<faiss::IndexRefine*>(index)) {
        return {&rf->base_index, &rf->refine_index};
    }
    return {};
}

void collect_ivf_slots(faiss::Index** root, std::vector<faiss::Index**>& out) {
    if (!*root) {
        return;
    }
    if (dynamic_cast<faiss::IndexIVF*>(*root)) {
        out.push_back(root);
        return;
    }
    for (faiss::Index** child : wrapper_children(*root)) {
        collect_ivf_slots(child, out);
    }
}

} // namespace faiss_ehi
