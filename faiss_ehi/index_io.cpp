/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/index_io.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

#include <unistd.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexIVFPQR.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/index_io.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/index_walk.h>

namespace faiss_ehi {

namespace {

const char kMagic[4] = {'F', 'E', 'H', 'I'};
/// Header: magic, version, payload size, checksum.
constexpr size_t kHeaderSize = 4 + 4 + 8 + 8;

uint64_t fnv1a(const uint8_t* p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

// ------------------------------------------------------------ primitives

void put_bytes(faiss::IOWriter* w, const void* p, size_t n) {
    if (n == 0) {
        return;
    }
    size_t got = (*w)(p, 1, n);
    FAISS_THROW_IF_NOT_FMT(got == n, "write error: wrote %zd of %zd bytes",
                           got, n);
}

template <class T>
void put(faiss::IOWriter* w, T v) {
    put_bytes(w, &v, sizeof(v));
}

void put_floats(faiss::IOWriter* w, const std::vector<float>& v) {
    put<uint64_t>(w, v.size());
    put_bytes(w, v.data(), v.size() * sizeof(float));
}

/// Reads from an in-memory payload with bounds checks.
struct PayloadReader {
    const uint8_t* p;
    size_t size;
    size_t pos = 0;

    void get_bytes(void* out, size_t n) {
        if (n == 0) {
            return;
        }
        FAISS_THROW_IF_NOT_MSG(n <= size - pos,
                               "corrupt EHI index: payload ends early");
        std::memcpy(out, p + pos, n);
        pos += n;
    }
    template <class T>
    T get() {
        T v;
        get_bytes(&v, sizeof(v));
        return v;
    }
    std::vector<float> get_floats() {
        uint64_t n = get<uint64_t>();
        FAISS_THROW_IF_NOT_MSG(n <= (size - pos) / sizeof(float),
                               "corrupt EHI index: array larger than file");
        std::vector<float> v(n);
        get_bytes(v.data(), n * sizeof(float));
        return v;
    }
};

// ------------------------------------------------------------ tree IO

void write_quantizer(faiss::IOWriter* w, const EHITreeQuantizer& q) {
    const EHITree& t = q.tree;
    put<int32_t>(w, q.d);
    put<int32_t>(w, int32_t(q.metric_type));
    put<int32_t>(w, t.B);
    put<int32_t>(w, t.H);
    put<int32_t>(w, t.m);
    put<int32_t>(w, int32_t(t.form));
    put<uint8_t>(w, t.use_bias);
    put<int32_t>(w, int32_t(t.strategy));
    put<uint8_t>(w, t.is_trained);
    for (int h = 0; h < t.H; h++) {
        put_floats(w, t.U[h]);
        put_floats(w, t.W[h]);
        put_floats(w, t.bias[h]);
        put_floats(w, t.node_W[h]);
        put_floats(w, t.node_b[h]);
    }
    put_floats(w, q.leaf_representatives);
}

std::unique_ptr<EHITreeQuantizer> read_quantizer(PayloadReader& r) {
    int d = r.get<int32_t>();
    int metric = r.get<int32_t>();
    int B = r.get<int32_t>();
    int H = r.get<int32_t>();
    int m = r.get<int32_t>();
    int form = r.get<int32_t>();
    FAISS_THROW_IF_NOT_MSG(
            d >= 1 && B >= 2 && H >= 1 && m == d && H <= 64 &&
                    (metric == faiss::METRIC_L2 ||
                     metric == faiss::METRIC_INNER_PRODUCT) &&
                    (form == int(NodeForm::PAPER) ||
                     form == int(NodeForm::PER_NODE)),
            "corrupt EHI index: bad tree header");
    auto q = std::make_unique<EHITreeQuantizer>(
            d, B, H, faiss::MetricType(metric), NodeForm(form));
    EHITree& t = q->tree;
    t.use_bias = r.get<uint8_t>() != 0;
    int strategy = r.get<int32_t>();
    FAISS_THROW_IF_NOT_MSG(strategy == int(BeamStrategy::BEST_FIRST) ||
                                   strategy == int(BeamStrategy::LEVEL_BEAM),
                           "corrupt EHI index: bad beam strategy");
    t.strategy = BeamStrategy(strategy);
    bool trained = r.get<uint8_t>() != 0;
    for (int h = 0; h < H; h++) {
        t.U[h] = r.get_floats();
        t.W[h] = r.get_floats();
        t.bias[h] = r.get_floats();
        t.node_W[h] = r.get_floats();
        t.node_b[h] = r.get_floats();
    }
    q->leaf_representatives = r.get_floats();
    if (trained) {
        t.finalize(); // checks every size
    }
    FAISS_THROW_IF_NOT_MSG(q->leaf_representatives.empty() ||
                                   q->leaf_representatives.size() ==
                                           size_t(t.nleaves()) * d,
                           "corrupt EHI index: bad leaf representatives");
    q->update_is_trained();
    return q;
}

// ------------------------------------------------------------ head IO

void write_head(faiss::IOWriter* w, const EncoderHead& e) {
    put<int32_t>(w, e.d_in);
    put<int32_t>(w, e.d_out);
    put<int32_t>(w, e.hidden);
    put<uint8_t>(w, e.normalize);
    put<uint8_t>(w, e.is_trained);
    put_floats(w, e.A);
    put_floats(w, e.b);
    put_floats(w, e.W1);
    put_floats(w, e.c1);
    put_floats(w, e.W2);
    put_floats(w, e.c2);
}

std::unique_ptr<EncoderHead> read_head(PayloadReader& r) {
    auto e = std::make_unique<EncoderHead>();
    e->d_in = r.get<int32_t>();
    e->d_out = r.get<int32_t>();
    e->hidden = r.get<int32_t>();
    FAISS_THROW_IF_NOT_MSG(e->d_in >= 1 && e->d_out >= 1 && e->hidden >= 0,
                           "corrupt EHI index: bad encoder head header");
    uint8_t normalize = r.get<uint8_t>();
    uint8_t trained = r.get<uint8_t>();
    FAISS_THROW_IF_NOT_MSG(normalize <= 1 && trained <= 1,
                           "corrupt EHI index: bad encoder head flags");
    e->normalize = normalize != 0;
    e->is_trained = trained != 0;
    e->A = r.get_floats();
    e->b = r.get_floats();
    e->W1 = r.get_floats();
    e->c1 = r.get_floats();
    e->W2 = r.get_floats();
    e->c2 = r.get_floats();
    try {
        e->check_consistent();
    } catch (const faiss::FaissException& ex) {
        FAISS_THROW_FMT("corrupt EHI index: bad encoder head (%s)", ex.what());
    }
    return e;
}

/** An encoder head read from the payload and where it goes: chain position
 * `pos` of the IndexPreTransform number `ordinal` in collect_pretransforms
 * order. */
struct HeadRecord {
    uint32_t ordinal;
    uint32_t pos;
    std::unique_ptr<EncoderHead> head;
};

/** Every IndexPreTransform reachable from idx through the wrappers that
 * collect_ivf_slots walks, in depth-first pre-order (the order in which
 * make_write_view numbers them). */
void collect_pretransforms(faiss::Index* idx,
                           std::vector<faiss::IndexPreTransform*>& out) {
    if (!idx || dynamic_cast<faiss::IndexIVF*>(idx)) {
        return;
    }
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(idx)) {
        out.push_back(pt);
    }
    for (faiss::Index** child : wrapper_children(idx)) {
        collect_pretransforms(*child, out);
    }
}

// ------------------------------------------------------- write view

/** A shallow copy of an IVF index of a type Faiss can write, sharing the
 * lists, with ownership flags cleared. An IndexEHITree is written as the
 * IndexIVFFlat it extends; its own fields go into the EHI payload. */
std::unique_ptr<faiss::IndexIVF> shallow_ivf(const faiss::IndexIVF* ivf) {
    std::unique_ptr<faiss::IndexIVF> c;
    const std::type_info& t = typeid(*ivf);
    if (dynamic_cast<const IndexEHITree*>(ivf) ||
        t == typeid(faiss::IndexIVFFlat)) {
        c.reset(new faiss::IndexIVFFlat(
                static_cast<const faiss::IndexIVFFlat&>(*ivf)));
    } else if (t == typeid(faiss::IndexIVFScalarQuantizer)) {
        c.reset(new faiss::IndexIVFScalarQuantizer(
                static_cast<const faiss::IndexIVFScalarQuantizer&>(*ivf)));
    } else if (t == typeid(faiss::IndexIVFPQ)) {
        c.reset(new faiss::IndexIVFPQ(
                static_cast<const faiss::IndexIVFPQ&>(*ivf)));
    } else if (t == typeid(faiss::IndexIVFPQR)) {
        c.reset(new faiss::IndexIVFPQR(
                static_cast<const faiss::IndexIVFPQR&>(*ivf)));
    } else if (t == typeid(faiss::IndexIVFPQFastScan)) {
        c.reset(new faiss::IndexIVFPQFastScan(
                static_cast<const faiss::IndexIVFPQFastScan&>(*ivf)));
    } else {
        FAISS_THROW_FMT("faiss_ehi::write_index: an EHI tree inside %s "
                        "cannot be serialised yet",
                        t.name());
    }
    c->own_fields = false;
    c->own_invlists = false;
    return c;
}

std::unique_ptr<faiss::Index> shallow_wrapper(const faiss::Index* idx) {
    std::unique_ptr<faiss::Index> c;
    if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(idx)) {
        auto* cp = new faiss::IndexPreTransform(*pt);
        cp->own_fields = false;
        c.reset(cp);
    } else if (typeid(*idx) == typeid(faiss::IndexIDMap2)) {
        auto* cp = new faiss::IndexIDMap2(
                static_cast<const faiss::IndexIDMap2&>(*idx));
        cp->own_fields = false;
        c.reset(cp);
    } else if (auto* im = dynamic_cast<const faiss::IndexIDMap*>(idx)) {
        auto* cp = new faiss::IndexIDMap(*im);
        cp->own_fields = false;
        c.reset(cp);
    } else if (typeid(*idx) == typeid(faiss::IndexRefineFlat)) {
        auto* cp = new faiss::IndexRefineFlat(
                static_cast<const faiss::IndexRefineFlat&>(*idx));
        cp->own_fields = false;
        cp->own_refine_index = false;
        c.reset(cp);
    } else if (auto* rf = dynamic_cast<const faiss::IndexRefine*>(idx)) {
        auto* cp = new faiss::IndexRefine(*rf);
        cp->own_fields = false;
        cp->own_refine_index = false;
        c.reset(cp);
    } else {
        FAISS_THROW_FMT("faiss_ehi::write_index: cannot wrap %s",
                        typeid(*idx).name());
    }
    return c;
}

/// State of one make_write_view pass.
struct WriteView {
    faiss::IOWriter* w;            ///< receives the IVF records
    faiss::VectorIOWriter heads;   ///< the encoder head records
    uint32_t nheads = 0;           ///< number of head records
    uint32_t npretransforms = 0;   ///< IndexPreTransforms numbered so far
    std::vector<std::unique_ptr<faiss::Index>> keep;
    std::vector<std::unique_ptr<faiss::VectorTransform>> keep_vt;
};

/** Build, without touching `idx`, an index structure Faiss can write: every
 * IVF routed by a tree is replaced by a shallow copy whose quantizer is an
 * IndexFlat of the leaf representatives, and every IndexPreTransform whose
 * chain holds an EncoderHead by a shallow copy in which each head is
 * replaced by a RemapDimensionsTransform of the same dimensions. Writes
 * each IVF's EHI record to `vw.w` in collect_ivf_slots order and each
 * head's record to `vw.heads`. Temporaries live in `vw.keep*`. */
const faiss::Index* make_write_view(const faiss::Index* idx, WriteView& vw) {
    faiss::IOWriter* w = vw.w;
    std::vector<std::unique_ptr<faiss::Index>>& keep = vw.keep;
    if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(idx)) {
        auto* q = dynamic_cast<const EHITreeQuantizer*>(ivf->quantizer);
        put<uint8_t>(w, q != nullptr);
        if (!q) {
            return idx;
        }
        auto* ehi = dynamic_cast<const IndexEHITree*>(ivf);
        put<uint8_t>(w, ehi != nullptr);
        if (ehi) {
            put<int32_t>(w, ehi->d2l);
            put<int32_t>(w, int32_t(ehi->assign_rule));
            put<float>(w, ehi->soar_lambda);
            put<uint8_t>(w, ehi->lists_have_duplicates);
        }
        write_quantizer(w, *q);
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
            put<uint32_t>(&vw.heads, ordinal);
            put<uint32_t>(&vw.heads, uint32_t(i));
            write_head(&vw.heads, *e);
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

/// Count the IVF indexes reachable the same way collect_ivf_slots walks.
size_t count_ivfs(const faiss::Index* idx) {
    std::vector<faiss::Index**> slots;
    auto* p = const_cast<faiss::Index*>(idx);
    collect_ivf_slots(&p, slots);
    return slots.size();
}

std::vector<uint8_t> serialize_payload(const faiss::Index* index) {
    FAISS_THROW_IF_NOT_MSG(index, "write_index: null index");
    faiss::VectorIOWriter w;
    put<uint32_t>(&w, uint32_t(count_ivfs(index)));
    WriteView vw;
    vw.w = &w;
    const faiss::Index* view = make_write_view(index, vw);
    // format version 2: the encoder heads follow the IVF records
    put<uint32_t>(&w, vw.nheads);
    put_bytes(&w, vw.heads.data.data(), vw.heads.data.size());
    faiss::write_index(view, &w);
    return std::move(w.data);
}

// ------------------------------------------------------------- reading

void install_tree(faiss::Index** slot, PayloadReader& r) {
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(*slot);
    FAISS_THROW_IF_NOT_MSG(ivf, "corrupt EHI index: IVF expected");
    bool has_tree = r.get<uint8_t>() != 0;
    if (!has_tree) {
        return;
    }
    bool is_ehi = r.get<uint8_t>() != 0;
    int d2l = 1, rule = 0;
    float soar_lambda = 1;
    bool dup = false;
    if (is_ehi) {
        d2l = r.get<int32_t>();
        rule = r.get<int32_t>();
        soar_lambda = r.get<float>();
        dup = r.get<uint8_t>() != 0;
        FAISS_THROW_IF_NOT_MSG(rule >= 0 && rule <= 2,
                               "corrupt EHI index: bad assignment rule");
    }
    std::unique_ptr<EHITreeQuantizer> q = read_quantizer(r);
    FAISS_THROW_IF_NOT_MSG(q->d == ivf->d && q->ntotal == idx_t(ivf->nlist) &&
                                   q->metric_type == ivf->metric_type,
                           "corrupt EHI index: tree does not match its IVF");
    FAISS_THROW_IF_NOT_MSG(dynamic_cast<faiss::IndexFlat*>(ivf->quantizer),
                           "corrupt EHI index: placeholder quantizer expected");
    if (ivf->own_fields) {
        delete ivf->quantizer;
    }
    ivf->quantizer = q.release();
    ivf->own_fields = true;
    ivf->quantizer_trains_alone = 1;
    if (!is_ehi) {
        return;
    }
    auto* flat = dynamic_cast<faiss::IndexIVFFlat*>(ivf);
    FAISS_THROW_IF_NOT_MSG(flat && typeid(*flat) == typeid(faiss::IndexIVFFlat),
                           "corrupt EHI index: IndexIVFFlat expected");
    auto* ehi = new IndexEHITree(*flat);
    ehi->d2l = d2l;
    ehi->assign_rule = DocAssignRule(rule);
    ehi->soar_lambda = soar_lambda;
    ehi->lists_have_duplicates = dup;
    // ownership of quantizer and lists moves to the new object
    flat->own_fields = false;
    flat->own_invlists = false;
    ehi->own_fields = true;
    ehi->own_invlists = true;
    delete flat;
    *slot = ehi;
}

void install_head(const std::vector<faiss::IndexPreTransform*>& pts,
                  HeadRecord& rec) {
    FAISS_THROW_IF_NOT_MSG(rec.ordinal < pts.size(),
                           "corrupt EHI index: encoder head without its "
                           "IndexPreTransform");
    faiss::IndexPreTransform* pt = pts[rec.ordinal];
    FAISS_THROW_IF_NOT_MSG(rec.pos < pt->chain.size(),
                           "corrupt EHI index: encoder head position out of "
                           "the transform chain");
    faiss::VectorTransform* ph = pt->chain[rec.pos];
    FAISS_THROW_IF_NOT_MSG(
            ph && typeid(*ph) == typeid(faiss::RemapDimensionsTransform) &&
                    ph->d_in == rec.head->d_in &&
                    ph->d_out == rec.head->d_out && pt->own_fields,
            "corrupt EHI index: encoder head placeholder expected");
    pt->chain[rec.pos] = rec.head.release();
    delete ph;
}

faiss::Index* parse_payload(const uint8_t* p, size_t size, uint32_t version) {
    PayloadReader r{p, size};
    uint32_t nivf = r.get<uint32_t>();
    // The EHI records precede the Faiss part but are needed after it: find
    // where the Faiss part starts by parsing the records once.
    size_t records_begin = r.pos;
    {
        for (uint32_t i = 0; i < nivf; i++) {
            if (r.get<uint8_t>()) {
                if (r.get<uint8_t>()) {
                    r.get<int32_t>();
                    r.get<int32_t>();
                    r.get<float>();
                    r.get<uint8_t>();
                }
                read_quantizer(r);
            }
        }
    }
    std::vector<HeadRecord> heads;
    if (version >= 2) {
        uint32_t nheads = r.get<uint32_t>();
        for (uint32_t i = 0; i < nheads; i++) {
            HeadRecord rec;
            rec.ordinal = r.get<uint32_t>();
            rec.pos = r.get<uint32_t>();
            rec.head = read_head(r);
            heads.push_back(std::move(rec));
        }
    }
    faiss::VectorIOReader fr;
    fr.data.assign(p + r.pos, p + size);
    std::unique_ptr<faiss::Index> root(faiss::read_index(&fr));
    FAISS_THROW_IF_NOT_MSG(fr.rp == fr.data.size(),
                           "corrupt EHI index: trailing bytes");
    faiss::Index* rootp = root.release();
    try {
        std::vector<faiss::Index**> slots;
        collect_ivf_slots(&rootp, slots);
        FAISS_THROW_IF_NOT_MSG(slots.size() == nivf,
                               "corrupt EHI index: IVF count mismatch");
        PayloadReader rr{p, size, records_begin};
        for (faiss::Index** slot : slots) {
            install_tree(slot, rr);
        }
        std::vector<faiss::IndexPreTransform*> pts;
        collect_pretransforms(rootp, pts);
        for (HeadRecord& rec : heads) {
            install_head(pts, rec);
        }
    } catch (...) {
        delete rootp;
        throw;
    }
    return rootp;
}

} // namespace

void write_index(const faiss::Index* index, faiss::IOWriter* writer) {
    std::vector<uint8_t> payload = serialize_payload(index);
    put_bytes(writer, kMagic, 4);
    put<uint32_t>(writer, kFormatVersion);
    put<uint64_t>(writer, payload.size());
    put<uint64_t>(writer, fnv1a(payload.data(), payload.size()));
    put_bytes(writer, payload.data(), payload.size());
}

void write_index(const faiss::Index* index, const char* fname) {
    FAISS_THROW_IF_NOT_MSG(fname && *fname, "write_index: empty file name");
    faiss::VectorIOWriter mem;
    faiss_ehi::write_index(index, static_cast<faiss::IOWriter*>(&mem));
    std::mt19937_64 rng(std::random_device{}());
    std::string tmp = std::string(fname) + ".tmp." +
            std::to_string(getpid()) + "." + std::to_string(rng() % 1000000);
    FILE* f = std::fopen(tmp.c_str(), "wb");
    FAISS_THROW_IF_NOT_FMT(f, "write_index: cannot open '%s' for writing: %s",
                           tmp.c_str(), std::strerror(errno));
    bool ok = std::fwrite(mem.data.data(), 1, mem.data.size(), f) ==
            mem.data.size();
    ok = (std::fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    int err = errno;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        FAISS_THROW_FMT("write_index: writing '%s' failed: %s; '%s' is "
                        "unchanged",
                        tmp.c_str(), std::strerror(err), fname);
    }
    if (std::rename(tmp.c_str(), fname) != 0) {
        err = errno;
        std::remove(tmp.c_str());
        FAISS_THROW_FMT("write_index: cannot rename '%s' to '%s': %s",
                        tmp.c_str(), fname, std::strerror(err));
    }
}

faiss::Index* read_index(faiss::IOReader* reader) {
    uint8_t header[kHeaderSize];
    size_t got = (*reader)(header, 1, kHeaderSize);
    FAISS_THROW_IF_NOT_FMT(got == kHeaderSize,
                           "read_index: truncated EHI index (header is %zd "
                           "bytes, got %zd)",
                           kHeaderSize, got);
    FAISS_THROW_IF_NOT_MSG(std::memcmp(header, kMagic, 4) == 0,
                           "read_index: not a faiss_ehi index (bad magic); "
                           "plain Faiss files are read by faiss::read_index");
    uint32_t version;
    uint64_t size, checksum;
    std::memcpy(&version, header + 4, 4);
    std::memcpy(&size, header + 8, 8);
    std::memcpy(&checksum, header + 16, 8);
    FAISS_THROW_IF_NOT_FMT(version >= 1 && version <= kFormatVersion,
                           "read_index: unsupported format version %u (this "
                           "build reads up to %u)",
                           version, kFormatVersion);
    // Read in chunks so that a corrupted size cannot force a huge
    // allocation before the data runs out.
    std::vector<uint8_t> payload;
    const size_t chunk = size_t(1) << 20;
    while (payload.size() < size) {
        size_t want = std::min<uint64_t>(chunk, size - payload.size());
        size_t old = payload.size();
        payload.resize(old + want);
        size_t n = (*reader)(payload.data() + old, 1, want);
        FAISS_THROW_IF_NOT_FMT(n == want,
                               "read_index: truncated EHI index (expected "
                               "%zd payload bytes, got %zd)",
                               size_t(size), old + n);
    }
    FAISS_THROW_IF_NOT_MSG(fnv1a(payload.data(), payload.size()) == checksum,
                           "read_index: corrupted EHI index (checksum "
                           "mismatch)");
    return parse_payload(payload.data(), payload.size(), version);
}

faiss::Index* read_index(const char* fname) {
    faiss::FileIOReader reader(fname);
    return faiss_ehi::read_index(static_cast<faiss::IOReader*>(&reader));
}

faiss::Index* clone_index(const faiss::Index* index) {
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(index, static_cast<faiss::IOWriter*>(&w));
    faiss::VectorIOReader r;
    r.data.swap(w.data);
    return faiss_ehi::read_index(static_cast<faiss::IOReader*>(&r));
}

} // namespace faiss_ehi
