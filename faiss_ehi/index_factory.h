/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <faiss/Index.h>

namespace faiss_ehi {

/** Drop-in for faiss::index_factory that also understands EHI keys.
 *
 * The token EHI<B>x<H> (optionally with the suffix _paper or _node for the
 * node form; default per-node classifiers) stands where Faiss has IVF<n>:
 * "EHI64x2" (flat storage, an IndexEHITree), "EHI64x2,Flat", "EHI16x2,SQ8",
 * "EHI16x2,PQ16", with prefix transforms ("PCA64,EHI16x2,Flat",
 * "OPQ16,EHI16x2,PQ16", "L2norm,EHI16x2,Flat") and "IDMap,EHI16x2,Flat".
 * Any description without an EHI token goes unchanged to
 * faiss::index_factory. Malformed EHI tokens throw faiss::FaissException. */
faiss::Index* index_factory(int d, const char* description,
                            faiss::MetricType metric = faiss::METRIC_L2);

/// Largest number of leaves B^H that the factory accepts.
constexpr faiss::Index::idx_t kMaxLeaves = faiss::Index::idx_t(1) << 24;

} // namespace faiss_ehi
