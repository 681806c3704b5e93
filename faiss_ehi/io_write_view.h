/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

// Internal to faiss_ehi's IO: a structure Faiss's write_index can write,
// built from an EHI index without modifying it.

#include <memory>
#include <vector>

#include <faiss/Index.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/io.h>

namespace faiss_ehi {
namespace io_detail {

/// State of one make_write_view pass.
struct WriteView {
    faiss::IOWriter* w;          ///< receives the IVF records
    faiss::VectorIOWriter heads; ///< the encoder head records
    uint32_t nheads = 0;         ///< number of head records
    uint32_t npretransforms = 0; ///< IndexPreTransforms numbered so far
    std::vector<std::unique_ptr<faiss::Index>> keep;
    std::vector<std::unique_ptr<faiss::VectorTransform>> keep_vt;
};

/** Build, without touching `idx`, an index structure Faiss can write: every
 * IVF routed by a tree is replaced by a shallow copy whose quantizer is an
 * IndexFlat of the leaf representatives, and every IndexPreTransform whose
 * chain holds an EncoderHead by a shallow copy in which each head is
 * replaced by a RemapDimensionsTransform of the same dimensions. Writes
 * each IVF's record (write_ivf_record) to `vw.w` in collect_ivf_slots order
 * and each head's (write_head_record) to `vw.heads`. Temporaries live in
 * `vw.keep*`. */
const faiss::Index* make_write_view(const faiss::Index* idx, WriteView& vw);

/// Count the IVF indexes reachable the same way collect_ivf_slots walks.
size_t count_ivfs(const faiss::Index* idx);

} // namespace io_detail
} // namespace faiss_ehi
