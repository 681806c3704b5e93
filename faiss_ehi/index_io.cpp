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
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/index_io.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/index_walk.h>
#include <faiss_ehi/io_primitives.h>
#include <faiss_ehi/io_records.h>
#include <faiss_ehi/io_write_view.h>

namespace faiss_ehi {

using namespace io_detail;

namespace {

const char kMagic[4] = {'F', 'E', 'H', 'I'};
/// Header: magic, version, payload size, checksum.
constexpr size_t kHeaderSize = 4 + 4 + 8 + 8;

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

std::vector<uint8_t> serialize_payload(const faiss::Index* index) {
    FAISS_THROW_IF_NOT_MSG(index, "write_index: null index");
    faiss::VectorIOWriter w;
    put<uint32_t>(&w, uint32_t(count_ivfs(index)));
    WriteView vw;
    vw.w = &w;
    const faiss::Index* view = make_write_view(index, vw);
    // since kVersionWithHeads: the encoder heads follow the IVF records
    put<uint32_t>(&w, vw.nheads);
    put_bytes(&w, vw.heads.data.data(), vw.heads.data.size());
    faiss::write_index(view, &w);
    return std::move(w.data);
}

// ------------------------------------------------------------- reading

/** Put the tree read in `rec` into the IVF at `*slot`, whose placeholder
 * quantizer it replaces; an IndexEHITree record also replaces the
 * IndexIVFFlat at `*slot` by an IndexEHITree holding its lists. */
void install_tree(faiss::Index** slot, IVFRecord& rec) {
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(*slot);
    FAISS_THROW_IF_NOT_MSG(ivf, "corrupt EHI index: IVF expected");
    if (!rec.tree) {
        return;
    }
    std::unique_ptr<EHITreeQuantizer> q = std::move(rec.tree);
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
    if (!rec.is_ehi) {
        return;
    }
    auto* flat = dynamic_cast<faiss::IndexIVFFlat*>(ivf);
    FAISS_THROW_IF_NOT_MSG(flat && typeid(*flat) == typeid(faiss::IndexIVFFlat),
                           "corrupt EHI index: IndexIVFFlat expected");
    auto* ehi = new IndexEHITree(*flat);
    ehi->d2l = rec.d2l;
    ehi->assign_rule = rec.assign_rule;
    ehi->soar_lambda = rec.soar_lambda;
    ehi->lists_have_duplicates = rec.lists_have_duplicates;
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

/** Faiss's reader takes an IndexIDMap's id table as it comes: with fewer
 * ids than vectors a search reads past the table. Throws unless every
 * IDMap in the chain has one id per vector of its own and of its index. */
void check_id_maps(const faiss::Index* index) {
    if (auto* m = dynamic_cast<const faiss::IndexIDMap*>(index)) {
        FAISS_THROW_IF_NOT_FMT(
                m->index && m->id_map.size() == size_t(m->ntotal) &&
                        m->index->ntotal == m->ntotal,
                "corrupt EHI index: IDMap holds %zd ids for %lld vectors "
                "(its index: %lld)",
                m->id_map.size(), (long long)m->ntotal,
                m->index ? (long long)m->index->ntotal : -1LL);
        check_id_maps(m->index);
    } else if (auto* pt =
                       dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        check_id_maps(pt->index);
    }
}

faiss::Index* parse_payload(const uint8_t* p, size_t size, uint32_t version) {
    PayloadReader r{p, size};
    // The EHI records precede the Faiss part but are installed into the
    // index it describes: keep them until it is read.
    uint32_t nivf = r.get<uint32_t>();
    std::vector<IVFRecord> ivfs;
    for (uint32_t i = 0; i < nivf; i++) {
        ivfs.push_back(read_ivf_record(r, version));
    }
    std::vector<HeadRecord> heads;
    if (version >= kVersionWithHeads) {
        uint32_t nheads = r.get<uint32_t>();
        for (uint32_t i = 0; i < nheads; i++) {
            heads.push_back(read_head_record(r));
        }
    }
    faiss::VectorIOReader fr;
    fr.data.assign(p + r.pos, p + size);
    std::unique_ptr<faiss::Index> root(faiss::read_index(&fr));
    FAISS_THROW_IF_NOT_MSG(fr.rp == fr.data.size(),
                           "corrupt EHI index: trailing bytes");
    faiss::Index* rootp = root.release();
    try {
        check_id_maps(rootp);
        std::vector<faiss::Index**> slots;
        collect_ivf_slots(&rootp, slots);
        FAISS_THROW_IF_NOT_MSG(slots.size() == nivf,
                               "corrupt EHI index: IVF count mismatch");
        for (size_t i = 0; i < slots.size(); i++) {
            install_tree(slots[i], ivfs[i]);
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
    write_frame(writer, kMagic, kFormatVersion, serialize_payload(index));
}

void write_index(const faiss::Index* index, const char* fname) {
    FAISS_THROW_IF_NOT_MSG(fname && *fname, "write_index: empty file name");
    faiss::VectorIOWriter mem;
    faiss_ehi::write_index(index, static_cast<faiss::IOWriter*>(&mem));
    write_file_atomic(fname, mem.data.data(), mem.data.size(), "write_index");
}

namespace io_detail {

void write_file_atomic(const char* fname, const void* data, size_t size,
                       const char* who) {
    FAISS_THROW_IF_NOT_FMT(fname && *fname, "%s: empty file name", who);
    std::mt19937_64 rng(std::random_device{}());
    std::string tmp = std::string(fname) + ".tmp." + std::to_string(getpid()) +
            "." + std::to_string(rng() % 1000000);
    FILE* f = std::fopen(tmp.c_str(), "wb");
    FAISS_THROW_IF_NOT_FMT(f, "%s: cannot open '%s' for writing: %s", who,
                           tmp.c_str(), std::strerror(errno));
    bool ok = std::fwrite(data, 1, size, f) == size;
    ok = (std::fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    int err = errno;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        FAISS_THROW_FMT("%s: writing '%s' failed: %s; '%s' is unchanged", who,
                        tmp.c_str(), std::strerror(err), fname);
    }
    if (std::rename(tmp.c_str(), fname) != 0) {
        err = errno;
        std::remove(tmp.c_str());
        FAISS_THROW_FMT("%s: cannot rename '%s' to '%s': %s", who, tmp.c_str(),
                        fname, std::strerror(err));
    }
}

void write_frame(faiss::IOWriter* w, const char magic[4], uint32_t version,
                 const std::vector<uint8_t>& payload) {
    put_bytes(w, magic, 4);
    put<uint32_t>(w, version);
    put<uint64_t>(w, payload.size());
    put<uint64_t>(w, fnv1a(payload.data(), payload.size()));
    put_bytes(w, payload.data(), payload.size());
}

std::vector<uint8_t> read_frame(faiss::IOReader* reader, const char magic[4],
                                uint32_t max_version, const char* who,
                                const char* bad_magic_hint, uint32_t* version) {
    uint8_t header[kHeaderSize];
    size_t got = (*reader)(header, 1, kHeaderSize);
    FAISS_THROW_IF_NOT_FMT(got == kHeaderSize,
                           "%s: truncated file (header is %zd bytes, got "
                           "%zd)",
                           who, kHeaderSize, got);
    FAISS_THROW_IF_NOT_FMT(std::memcmp(header, magic, 4) == 0,
                           "%s: not a faiss_ehi %.4s file (bad magic)%s", who,
                           magic, bad_magic_hint);
    uint64_t size, checksum;
    std::memcpy(version, header + 4, 4);
    std::memcpy(&size, header + 8, 8);
    std::memcpy(&checksum, header + 16, 8);
    FAISS_THROW_IF_NOT_FMT(*version >= 1 && *version <= max_version,
                           "%s: unsupported format version %u (this build "
                           "reads up to %u)",
                           who, *version, max_version);
    std::vector<uint8_t> payload;
    const size_t chunk = size_t(1) << 20;
    while (payload.size() < size) {
        size_t want = std::min<uint64_t>(chunk, size - payload.size());
        size_t old = payload.size();
        payload.resize(old + want);
        size_t n = (*reader)(payload.data() + old, 1, want);
        FAISS_THROW_IF_NOT_FMT(n == want,
                               "%s: truncated file (expected %zd payload "
                               "bytes, got %zd)",
                               who, size_t(size), old + n);
    }
    FAISS_THROW_IF_NOT_FMT(fnv1a(payload.data(), payload.size()) == checksum,
                           "%s: corrupted file (checksum mismatch)", who);
    return payload;
}

} // namespace io_detail

faiss::Index* read_index(faiss::IOReader* reader) {
    uint32_t version = 0;
    std::vector<uint8_t> payload = read_frame(
            reader, kMagic, kFormatVersion, "read_index",
            "; plain Faiss files are read by faiss::read_index", &version);
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
