/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/io_write_view.h>

#include <typeinfo>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexIVFPQR.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/IndexEHITreeSQ.h>
#include <faiss_ehi/index_walk.h>
#include <faiss_ehi/io_records.h>

namespace faiss_ehi {
namespace io_detail {

namespace {

/** A copy (sharing every pointer) of *idx if its dynamic type is exactly
 * one of Ts, else nullptr. Exact types only: copying a subclass through a
 * base would silently drop its fields from the file. */
template <class Base, class T, class... Ts>
std::unique_ptr<Base> copy_exact(const Base* idx) {
    if (typeid(*idx) == typeid(T)) {
        return std::make_unique<T>(static_cast<const T&>(*idx));
    }
    if constexpr (sizeof...(Ts) > 0) {
        return copy_exact<Base, Ts...>(idx);
    } else {
        return nullptr;
    }
}

/** A shallow copy of an IVF index of a type Faiss can write, sharing the
 * lists, with ownership flags cleared. An IndexEHITree is written as the
 * IndexIVFFlat it extends; its own fields go into the EHI payload. */
std::unique_ptr<faiss::IndexIVF> shallow_ivf(const faiss::IndexIVF* ivf) {
    std::unique_ptr<faiss::IndexIVF> c;
    if (dynamic_cast<const IndexEHITree*>(ivf)) {
        c = std::make_unique<faiss::IndexIVFFlat>(
                static_cast<const faiss::IndexIVFFlat&>(*ivf));
    } else if (typeid(*ivf) == typeid(IndexEHITreeSQ)) {
        // Its only own field (simd_scan) is not stored; reading promotes
        // the IndexIVFScalarQuantizer back.
        c = std::make_unique<faiss::IndexIVFScalarQuantizer>(
                static_cast<const faiss::IndexIVFScalarQuantizer&>(*ivf));
    } else {
        c = copy_exact<faiss::IndexIVF, faiss::IndexIVFFlat,
                       faiss::IndexIVFScalarQuantizer, faiss::IndexIVFPQ,
                       faiss::IndexIVFPQR, faiss::IndexIVFPQFastScan>(ivf);
    }
    FAISS_THROW_IF_NOT_FMT(c,
                           "faiss_ehi::write_index: an EHI tree inside %s "
                           "cannot be serialised yet",
                           typeid(*ivf).name());
    c->own_fields = false;
    c->own_invlists = false;
    return c;
}

/// A shallow copy of a wrapper index, not owning what it wraps.
std::unique_ptr<faiss::Index> shallow_wrapper(const faiss::Index* idx) {
    std::unique_ptr<faiss::Index> c =
            copy_exact<faiss::Index, faiss::IndexPreTransform,
                       faiss::IndexIDMap, faiss::IndexIDMap2,
                       faiss::IndexRefine, faiss::IndexRefineFlat>(idx);
    FAISS_THROW_IF_NOT_FMT(c, "faiss_ehi::write_index: cannot wrap %s",
                           typeid(*idx).name());
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(c.get())) {
        pt->own_fields = false;
    } else if (auto* im = dynamic_cast<faiss::IndexIDMap*>(c.get())) {
        im->own_fields = false; // IndexIDMap2 too
    } else if (auto* rf = dynamic_cast<faiss::IndexRefine*>(c.get())) {
        rf->own_fields = false;
        rf->own_refine_index = false;
    }
    return c;
}

} // namespace

const faiss::Index* make_write_view(const faiss::Index* idx, WriteView& vw) {
    faiss::IOWriter* w = vw.w;
    std::vector<std::unique_ptr<faiss::Index>>& keep = vw.keep;
    if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(idx)) {
        write_ivf_record(w, *ivf);
        auto* q = dynamic_cast<const EHITreeQuantizer*>(ivf->quantizer);
        if (!q) {
            return idx;
        }
        auto flat = std::make_unique<faiss::IndexFlat>(q->d, q->metric_type);
        if (q->leaf_representatives.size() == size_t(q->ntotal) * q->d) {
            flat->add(q->ntotal, q->leaf_representatives.data());
        }
        std::unique_ptr<faiss::IndexIVF> copy = shallow_ivf(ivf);
        copy->quantizer = flat.get();
        keep.push_back(std::move(flat));
        keep.push_back(std::move(copy));
        return keep.back().get();
    }
    auto* mut = const_cast<faiss::Index*>(idx); // only read below
    // pre-order numbering, as collect_pretransforms
    auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(idx);
    uint32_t ordinal = pt ? vw.npretransforms++ : 0;
    bool has_head = false;
    if (pt) {
        for (const faiss::VectorTransform* vt : pt->chain) {
            has_head = has_head || dynamic_cast<const EncoderHead*>(vt);
        }
    }
    std::vector<faiss::Index**> children = wrapper_children(mut);
    std::vector<const faiss::Index*> views;
    bool changed = false;
    for (faiss::Index** child : children) {
        const faiss::Index* v = make_write_view(*child, vw);
        views.push_back(v);
        changed = changed || v != *child;
    }
    if (!changed && !has_head) {
        return idx;
    }
    std::unique_ptr<faiss::Index> copy = shallow_wrapper(idx);
    std::vector<faiss::Index**> slots = wrapper_children(copy.get());
    for (size_t i = 0; i < slots.size(); i++) {
        *slots[i] = const_cast<faiss::Index*>(views[i]);
    }
    if (has_head) {
        auto* cpt = dynamic_cast<faiss::IndexPreTransform*>(copy.get());
        FAISS_THROW_IF_NOT(cpt);
        for (size_t i = 0; i < cpt->chain.size(); i++) {
            auto* e = dynamic_cast<const EncoderHead*>(cpt->chain[i]);
            if (!e) {
                continue;
            }
            FAISS_THROW_IF_NOT_FMT(typeid(*e) == typeid(EncoderHead),
                                   "faiss_ehi::write_index: cannot serialise "
                                   "%s, a subclass of EncoderHead",
                                   typeid(*e).name());
            e->check_consistent();
            write_head_record(&vw.heads, ordinal, uint32_t(i), *e);
            vw.nheads++;
            auto ph = std::make_unique<faiss::RemapDimensionsTransform>(
                    e->d_in, e->d_out, true);
            ph->is_trained = e->is_trained;
            cpt->chain[i] = ph.get();
            vw.keep_vt.push_back(std::move(ph));
        }
    }
    keep.push_back(std::move(copy));
    return keep.back().get();
}

size_t count_ivfs(const faiss::Index* idx) {
    std::vector<faiss::Index**> slots;
    auto* p = const_cast<faiss::Index*>(idx);
    collect_ivf_slots(&p, slots);
    return slots.size();
}

} // namespace io_detail
} // namespace faiss_ehi
