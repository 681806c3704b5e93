/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <vector>

#include <faiss/Index.h>

namespace faiss_ehi {

/** The slots (pointers to the pointer fields) holding every faiss::IndexIVF
 * reachable from *root through IndexPreTransform, IndexIDMap/IDMap2 and
 * IndexRefine, in a fixed depth-first order. The factory swaps quantizers
 * through them and the IO code pairs written and read IVFs by this order. */
void collect_ivf_slots(faiss::Index** root, std::vector<faiss::Index**>& out);

/// The sub-indexes a wrapper holds, in the order collect_ivf_slots uses.
std::vector<faiss::Index**> wrapper_children(faiss::Index* index);

} // namespace faiss_ehi
