/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/index_io.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <shared_mutex>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/index_io.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/IndexEHITreeSQ.h>
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

/** Shared locks on every IndexEHITree the file will hold, each once: the
 * records, the Faiss part and ntotal then describe one state of each
 * index even while other threads add to or remove from it. */
std::vector<std::shared_lock<WriterFirstMutex>> lock_trees(
        const faiss::Index* index) {
    std::vector<faiss::Index**> slots;
    auto* root = const_cast<faiss::Index*>(index); // only read
    collect_ivf_slots(&root, slots);
    std::vector<const IndexEHITree*> seen;
    std::vector<std::shared_lock<WriterFirstMutex>> locks;
    for (faiss::Index** slot : slots) {
        auto* ehi = dynamic_cast<const IndexEHITree*>(*slot);
        if (ehi && std::find(seen.begin(), seen.end(), ehi) == seen.end()) {
            seen.push_back(ehi);
            locks.push_back(ehi->read_lock());
        }
    }
    return locks;
}

std::vector<uint8_t> serialize_payload(const faiss::Index* index) {
    FAISS_THROW_IF_NOT_MSG(index, "write_index: null index");
    auto locks = lock_trees(index);
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
        // Scalar-quantised EHI storage scans with faiss-ehi's kernels.
        promote_to_ehi_sq(slot);
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

/** Reads a payload without throwing: every get fails (returns false) past
 * the end, for the look-ahead below. */
struct SoftReader {
    const uint8_t* p;
    size_t size;
    size_t pos = 0;

    size_t left() const {
        return size - pos;
    }
    template <class T>
    bool get(T* v) {
        if (sizeof(T) > left()) {
            return false;
        }
        std::memcpy(v, p + pos, sizeof(T));
        pos += sizeof(T);
        return true;
    }
    /// Skip n items of `item` bytes each; false when they are not there.
    bool skip(uint64_t n, size_t item) {
        if (n > left() / item) {
            return false;
        }
        pos += n * item;
        return true;
    }
};

uint32_t fourcc(const char* s) {
    return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 |
            uint32_t(uint8_t(s[2])) << 16 | uint32_t(uint8_t(s[3])) << 24;
}

/// Throws unless `v` is one of faiss::MetricType's values.
void check_metric_value(int32_t v) {
    const bool known =
            (v >= faiss::METRIC_INNER_PRODUCT && v <= faiss::METRIC_Lp) ||
            (v >= faiss::METRIC_Canberra && v <= faiss::METRIC_JensenShannon);
    FAISS_THROW_IF_NOT_FMT(known, "corrupt EHI index: unknown metric type %d",
                           int(v));
}

/** Faiss's reader sizes its arrays from counts in the file before it reads
 * them (IVF lists, inverted-list entries), so a corrupted count can make
 * it allocate terabytes. For the layout that EHI indexes are written in, an
 * IndexIVFFlat ("IwFl") over a flat placeholder quantizer with array
 * inverted lists, check those counts against the bytes that follow first.
 * Anything else, or anything unexpected in that layout, is left to Faiss,
 * whose messages stay those of corrupt files. */
/** Reads the header that every Faiss index starts with (d, ntotal, two
 * unused counts, is_trained, metric and, for metrics that have one, its
 * parameter) into `d`; false when the bytes are not there. */
bool skip_index_header(SoftReader& r, int32_t* d) {
    int32_t metric;
    int64_t ntotal, unused;
    uint8_t trained;
    if (!r.get(d) || !r.get(&ntotal) || !r.get(&unused) || !r.get(&unused) ||
        !r.get(&trained) || !r.get(&metric)) {
        return false;
    }
    // Faiss takes d as it comes, and sizes codes by it.
    FAISS_THROW_IF_NOT_FMT(*d >= 1 && ntotal >= 0,
                           "corrupt EHI index: an index header declares "
                           "dimension %d and %" PRId64 " vectors",
                           int(*d), ntotal);
    // Where the metric's own parameter follows depends on the metric.
    check_metric_value(metric);
    float metric_arg;
    return metric <= 1 || r.get(&metric_arg);
}

/** Reads the fourccs and headers of the IndexIDMap / IndexIDMap2 wrappers
 * at the top of a Faiss part, leaving `h` at the fourcc of the index they
 * wrap; the offset of each wrapper's fourcc goes to `wrapper_at` if given.
 * False when the bytes end first. */
bool skip_id_map_wrappers(SoftReader& r, uint32_t* h,
                          std::vector<size_t>* wrapper_at = nullptr) {
    int32_t d;
    for (;;) {
        const size_t at = r.pos;
        if (!r.get(h)) {
            return false;
        }
        if (*h != fourcc("IxMp") && *h != fourcc("IxM2")) {
            return true;
        }
        if (wrapper_at) {
            wrapper_at->push_back(at);
        }
        if (!skip_index_header(r, &d)) {
            return false;
        }
    }
}

/** Faiss builds an IndexIDMap2's reverse map while it reads the file,
 * from as many ids as the header's ntotal says, before anything can
 * compare that count with the ids stored: a file with fewer ids made it
 * read past the table (a segfault). So the IndexIDMap2 wrappers at the
 * top of the Faiss part are read as plain IndexIDMap ("IxM2" rewritten to
 * "IxMp" in `bytes`), checked like every IDMap, then turned back by
 * restore_idmap2s. Returns their depths (0: the root). */
std::vector<int> read_idmap2s_as_idmaps(std::vector<uint8_t>& bytes) {
    SoftReader r{bytes.data(), bytes.size()};
    uint32_t h;
    std::vector<size_t> wrapper_at;
    skip_id_map_wrappers(r, &h, &wrapper_at);
    std::vector<int> depths;
    for (size_t depth = 0; depth < wrapper_at.size(); depth++) {
        uint8_t* fcc = bytes.data() + wrapper_at[depth];
        if (std::memcmp(fcc, "IxM2", 4) == 0) {
            std::memcpy(fcc, "IxMp", 4);
            depths.push_back(int(depth));
        }
    }
    return depths;
}

/// Turns the IDMaps at `depths` (read_idmap2s_as_idmaps) back into the
/// IndexIDMap2 they were written as; their ids were checked.
void restore_idmap2s(faiss::Index** root, const std::vector<int>& depths) {
    faiss::Index** slot = root;
    int depth = 0;
    for (int want : depths) {
        for (; depth < want; depth++) {
            slot = &dynamic_cast<faiss::IndexIDMap&>(**slot).index;
        }
        auto* m = dynamic_cast<faiss::IndexIDMap*>(*slot);
        FAISS_THROW_IF_NOT_MSG(m, "corrupt EHI index: IndexIDMap2 expected");
        // (the constructor from an index wants it empty: fields by hand)
        auto* m2 = new faiss::IndexIDMap2();
        m2->index = m->index;
        m2->own_fields = m->own_fields;
        m2->d = m->d;
        m2->id_map = std::move(m->id_map);
        m2->ntotal = m->ntotal;
        m2->is_trained = m->is_trained;
        m2->metric_type = m->metric_type;
        m2->metric_arg = m->metric_arg;
        m2->verbose = m->verbose;
        m2->construct_rev_map();
        m->own_fields = false;
        delete m;
        *slot = m2;
    }
}

/** Faiss derives a product quantizer's sizes while it reads its header,
 * before anything can check them: d / M with M = 0 divided by zero
 * (SIGFPE), and the centroid table of d * 2^nbits floats is allocated
 * before it is read. So the header (d, M, nbits, then the table) is
 * checked first. */
void check_pq_header(SoftReader& r) {
    uint64_t d, M, nbits, ncentroids;
    if (!r.get(&d) || !r.get(&M) || !r.get(&nbits)) {
        return;
    }
    FAISS_THROW_IF_NOT_FMT(d >= 1 && M >= 1 && d % M == 0 && nbits <= 24,
                           "corrupt EHI index: a product quantizer of %" PRIu64
                           " dimensions in %" PRIu64
                           " sub-quantizers of %" PRIu64 " bits",
                           d, M, nbits);
    FAISS_THROW_IF_NOT_FMT(
            d <= (r.left() / sizeof(float)) >> nbits,
            "corrupt EHI index: a product quantizer's %" PRIu64 " x 2^%" PRIu64
            " centroids do not fit in the file",
            d, nbits);
    if (r.get(&ncentroids)) {
        FAISS_THROW_IF_NOT_FMT(ncentroids == d << nbits,
                               "corrupt EHI index: a product quantizer holds "
                               "%" PRIu64 " centroid values, not %" PRIu64,
                               ncentroids, d << nbits);
    }
}

/** `tree_leaves`: the leaves of the tree recorded for this IVF, 0 when
 * there is none (a plain Faiss IVF in an EHI file). The number of lists
 * decides what Faiss allocates before it reads any list (two vectors of
 * that many lists), so it must be the tree's, or fit the file. */
void check_faiss_counts(const uint8_t* p, size_t size, uint64_t tree_leaves) {
    SoftReader r{p, size};
    uint32_t h;
    int32_t d;
    if (!skip_id_map_wrappers(r, &h)) {
        return;
    }
    // IndexPQ (its old fourccs too): the header, then the quantizer.
    if (h == fourcc("IxPq") || h == fourcc("IxPQ") || h == fourcc("IxPo")) {
        if (skip_index_header(r, &d)) {
            check_pq_header(r);
        }
        return;
    }
    const bool legacy = h == fourcc("IvPQ") || h == fourcc("IvQR");
    const bool ivfpq = legacy || h == fourcc("IwPQ") || h == fourcc("IwQR");
    if ((h != fourcc("IwFl") && !ivfpq) || !skip_index_header(r, &d)) {
        return;
    }
    uint64_t nlist, nprobe;
    if (!r.get(&nlist) || !r.get(&nprobe)) {
        return;
    }
    FAISS_THROW_IF_NOT_FMT(nlist <= uint64_t(kMaxRecordLeaves),
                           "corrupt EHI index: the IVF declares %" PRIu64
                           " inverted lists, more than %" PRId64
                           " (the limit of a file)",
                           nlist, kMaxRecordLeaves);
    FAISS_THROW_IF_NOT_FMT(tree_leaves == 0 || nlist == tree_leaves,
                           "corrupt EHI index: the IVF declares %" PRIu64
                           " inverted lists but its tree has %" PRIu64
                           " leaves",
                           nlist, tree_leaves);
    // the placeholder quantizer: IndexFlat header and its vectors
    uint32_t hq;
    if (!r.get(&hq) || (hq != fourcc("IxF2") && hq != fourcc("IxFI")) ||
        !r.skip(1, 4 + 8 + 8 + 8 + 1 + 4)) {
        return;
    }
    // Counts that the bytes left cannot hold would make Faiss allocate
    // them before it finds the file short (and leak what it allocated).
    auto check_fits = [&r](uint64_t n, size_t item, const char* what) {
        FAISS_THROW_IF_NOT_FMT(r.skip(n, item),
                               "corrupt EHI index: %s declares %" PRIu64
                               " entries, more than the file holds",
                               what, n);
    };
    uint64_t nfloats;
    if (!r.get(&nfloats)) {
        return;
    }
    check_fits(nfloats, sizeof(float), "the IVF's placeholder quantizer");
    if (legacy) {
        // the old IVFPQ formats: each list's ids here, before the direct map
        for (uint64_t l = 0; l < nlist; l++) {
            uint64_t n;
            if (!r.get(&n)) {
                return;
            }
            check_fits(n, sizeof(idx_t), "a list of the IVF's ids");
        }
    }
    // direct map: type, array, and a hash table's pairs
    uint8_t dm_type;
    uint64_t n_dm;
    if (!r.get(&dm_type) || !r.get(&n_dm)) {
        return;
    }
    check_fits(n_dm, 8, "the IVF's direct map");
    if (dm_type == uint8_t(faiss::DirectMap::Hashtable)) {
        if (!r.get(&n_dm)) {
            return;
        }
        check_fits(n_dm, 16, "the IVF's direct-map hash table");
    }
    if (ivfpq) {
        // IVFPQ: by_residual, code_size, then the product quantizer
        uint8_t by_residual;
        uint64_t pq_code_size;
        if (r.get(&by_residual) && r.get(&pq_code_size)) {
            check_pq_header(r);
        }
        return;
    }
    uint32_t hl;
    uint64_t il_nlist, code_size;
    uint32_t list_type;
    if (!r.get(&hl) || hl != fourcc("ilar") || !r.get(&il_nlist)) {
        return;
    }
    // Faiss sizes the lists by their own count, whatever the IVF says.
    FAISS_THROW_IF_NOT_FMT(il_nlist == nlist,
                           "corrupt EHI index: the inverted lists declare %" PRIu64
                           " lists, the IVF %" PRIu64,
                           il_nlist, nlist);
    if (!r.get(&code_size)) {
        return;
    }
    // Faiss sizes each list's codes by this code size before reading them.
    FAISS_THROW_IF_NOT_FMT(code_size == uint64_t(d) * sizeof(float),
                           "corrupt EHI index: the inverted lists declare a "
                           "code size of %" PRIu64 " bytes, not %d floats",
                           code_size, int(d));
    uint64_t nsizes;
    if (!r.get(&list_type) || !r.get(&nsizes)) {
        return;
    }
    // ... and the table of list sizes by its count.
    FAISS_THROW_IF_NOT_FMT(nsizes <= r.left() / 8,
                           "corrupt EHI index: the inverted lists declare %" PRIu64
                           " list sizes, more than the file holds",
                           nsizes);
    const bool full = list_type == fourcc("full");
    if ((!full && list_type != fourcc("sprs")) || (full && nsizes != nlist) ||
        (!full && nsizes % 2 != 0)) {
        return;
    }
    // Sizes, then each non-empty list's codes and ids, to the end.
    const uint8_t* sizes = p + r.pos;
    r.pos += nsizes * 8;
    const uint64_t entry_bytes = code_size + sizeof(idx_t);
    const uint64_t room = r.left() / entry_bytes;
    uint64_t entries = 0;
    for (uint64_t i = full ? 0 : 1; i < nsizes; i += full ? 1 : 2) {
        uint64_t n, list = i;
        std::memcpy(&n, sizes + i * 8, 8);
        if (!full) {
            std::memcpy(&list, sizes + (i - 1) * 8, 8);
        }
        FAISS_THROW_IF_NOT_FMT(n <= room - entries,
                               "corrupt EHI index: inverted list %" PRIu64
                               " declares %" PRIu64
                               " entries but the file holds at most %" PRIu64
                               " more (%zd bytes left, %" PRIu64 " per entry)",
                               list, n, room - entries, r.left(), entry_bytes);
        entries += n;
    }
}

/** The inverted lists of an IVF read from a file must agree with its
 * header: ntotal entries in all, unless the index stores
 * vectors in several lists (IndexEHITree with d2l > 1, or whose lists were
 * filled so: lists_have_duplicates), where every id still counts once in
 * ntotal and so the lists hold at least ntotal entries. An index that
 * disagrees would search, reconstruct and remove wrongly. */
void check_ivf_contents(const faiss::IndexIVF& ivf, size_t ordinal) {
    const faiss::InvertedLists* il = ivf.invlists;
    if (!il) {
        return; // lists stored elsewhere (Faiss warns when reading)
    }
    auto* ehi = dynamic_cast<const IndexEHITree*>(&ivf);
    const bool copies_allowed =
            ehi && (ehi->d2l > 1 || ehi->lists_have_duplicates);
    uint64_t entries = 0;
    for (size_t l = 0; l < il->nlist; l++) {
        entries += il->list_size(l);
    }
    if (copies_allowed) {
        FAISS_THROW_IF_NOT_FMT(
                entries >= uint64_t(ivf.ntotal) && ivf.ntotal >= 0,
                "corrupt EHI index: IVF %zd has ntotal = %" PRId64
                " but its inverted lists hold only %" PRIu64 " entries "
                "(d2l = %d: each vector is stored at least once)",
                ordinal, int64_t(ivf.ntotal), entries, ehi->d2l);
        return;
    }
    FAISS_THROW_IF_NOT_FMT(entries == uint64_t(ivf.ntotal) && ivf.ntotal >= 0,
                           "corrupt EHI index: IVF %zd has ntotal = %" PRId64
                           " but its inverted lists hold %" PRIu64 " entries",
                           ordinal, int64_t(ivf.ntotal), entries);
    // Ids are not required to be unique: Faiss lets a user store one id
    // twice (add_with_ids with repeats, add() after remove_ids, merge_from
    // over overlapping ids), and refusing such a file at read time would
    // lose an index that was written as it was built.
}

/** Under an IDMap, the ids an IVF's lists return are positions in the
 * IDMap's table, which Faiss looks up unchecked: each must be in
 * [0, n). */
void check_ids_are_positions(const faiss::Index* index, faiss::Index::idx_t n) {
    if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        check_ids_are_positions(pt->index, n);
        return;
    }
    auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index);
    if (!ivf || !ivf->invlists) {
        return;
    }
    for (size_t l = 0; l < ivf->nlist; l++) {
        faiss::InvertedLists::ScopedIds ids(ivf->invlists, l);
        const size_t size = ivf->invlists->list_size(l);
        for (size_t j = 0; j < size; j++) {
            FAISS_THROW_IF_NOT_FMT(
                    ids[j] >= 0 && ids[j] < n,
                    "corrupt EHI index: list %zd of the index under an IDMap "
                    "holds id %lld, not a position in the IDMap's %lld ids",
                    l, (long long)ids[j], (long long)n);
        }
    }
}

/** Faiss's reader takes an IndexIDMap's id table as it comes: with fewer
 * ids than vectors a search reads past the table. Throws unless every
 * IDMap in the chain has one id per vector of its own and of its index,
 * and its index returns only positions in that table. */
void check_id_maps(const faiss::Index* index) {
    if (auto* m = dynamic_cast<const faiss::IndexIDMap*>(index)) {
        FAISS_THROW_IF_NOT_FMT(
                m->index && m->id_map.size() == size_t(m->ntotal) &&
                        m->index->ntotal == m->ntotal,
                "corrupt EHI index: IDMap holds %zd ids for %lld vectors "
                "(its index: %lld)",
                m->id_map.size(), (long long)m->ntotal,
                m->index ? (long long)m->index->ntotal : -1LL);
        check_ids_are_positions(m->index, m->ntotal);
        check_id_maps(m->index);
    } else if (auto* pt =
                       dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        check_id_maps(pt->index);
    }
}

/** Faiss reads an index's bool and enum fields as raw bytes of the file,
 * so a corrupt byte other than 0 or 1 leaves a bool holding a value that no
 * bool may hold (or an enum outside its values), and every later read of
 * the field is undefined behaviour (a search of such a file tested
 * `is_trained` as neither true nor false). The field's bytes are checked,
 * never the field itself. */
void check_bool_byte(const bool& field, const char* what) {
    uint8_t byte;
    std::memcpy(&byte, &field, 1);
    FAISS_THROW_IF_NOT_FMT(byte <= 1,
                           "corrupt EHI index: %s is stored as %d, not 0 or 1",
                           what, int(byte));
}

void check_metric_bytes(const faiss::MetricType& field) {
    static_assert(sizeof(faiss::MetricType) == sizeof(int32_t),
                  "Faiss stores the metric as 4 bytes");
    int32_t v;
    std::memcpy(&v, &field, sizeof(v));
    check_metric_value(v);
}

/** A scalar quantizer as Faiss read it: its enums hold known values, it
 * describes the index's own vectors and codes, and, when the index says it
 * is trained, holds the ranges its type needs. Faiss decodes with these
 * unchecked, so a file whose quantizer lacks its ranges would be read past
 * the end of `trained` by every search. */
void check_scalar_quantizer(const faiss::ScalarQuantizer& sq, int d,
                            size_t code_size, bool index_trained) {
    using SQ = faiss::ScalarQuantizer;
    static_assert(sizeof(SQ::QuantizerType) == sizeof(int32_t) &&
                          sizeof(SQ::RangeStat) == sizeof(int32_t),
                  "Faiss stores the scalar quantizer's enums as 4 bytes");
    int32_t qtype, rangestat;
    std::memcpy(&qtype, &sq.qtype, sizeof(qtype));
    std::memcpy(&rangestat, &sq.rangestat, sizeof(rangestat));
    FAISS_THROW_IF_NOT_FMT(qtype >= SQ::QT_8bit && qtype <= SQ::QT_6bit,
                           "corrupt EHI index: scalar quantizer type %d",
                           int(qtype));
    FAISS_THROW_IF_NOT_FMT(
            rangestat >= SQ::RS_minmax && rangestat <= SQ::RS_optim,
            "corrupt EHI index: scalar quantizer range statistic %d",
            int(rangestat));
    FAISS_THROW_IF_NOT_FMT(sq.d == size_t(d),
                           "corrupt EHI index: scalar quantizer of dimension "
                           "%zd in an index of dimension %d",
                           sq.d, d);
    FAISS_THROW_IF_NOT_FMT(sq.code_size == code_size,
                           "corrupt EHI index: scalar quantizer codes of %zd "
                           "bytes in an index whose codes have %zd",
                           sq.code_size, code_size);
    if (!index_trained) {
        return;
    }
    size_t ranges = 0; // QT_fp16 and QT_8bit_direct need none
    if (sq.qtype == SQ::QT_8bit_uniform || sq.qtype == SQ::QT_4bit_uniform) {
        ranges = 2;
    } else if (sq.qtype == SQ::QT_8bit || sq.qtype == SQ::QT_4bit ||
               sq.qtype == SQ::QT_6bit) {
        ranges = 2 * sq.d;
    }
    FAISS_THROW_IF_NOT_FMT(sq.trained.size() == ranges,
                           "corrupt EHI index: a trained scalar quantizer "
                           "holds %zd range values where its type needs %zd",
                           sq.trained.size(), ranges);
}

/// A product quantizer as Faiss read it describes the index's own vectors
/// and codes (Faiss encodes and scans with its sizes unchecked).
void check_product_quantizer(const faiss::ProductQuantizer& pq, int d,
                             size_t code_size) {
    FAISS_THROW_IF_NOT_FMT(pq.d == size_t(d) && pq.code_size == code_size,
                           "corrupt EHI index: a product quantizer of "
                           "dimension %zd and %zd-byte codes in an index of "
                           "dimension %d and %zd-byte codes",
                           pq.d, pq.code_size, d, code_size);
}

/// A linear map as Faiss read it: a trained one holds d_out x d_in
/// weights and, with a bias, d_out biases (Faiss applies them unchecked).
void check_linear_transform(const faiss::LinearTransform& lt,
                            const char* what) {
    check_bool_byte(lt.have_bias, "a transform's have_bias flag");
    check_bool_byte(lt.is_orthonormal, "a transform's is_orthonormal flag");
    if (!lt.is_trained) {
        return;
    }
    FAISS_THROW_IF_NOT_FMT(
            lt.A.size() == size_t(lt.d_in) * size_t(lt.d_out),
            "corrupt EHI index: %s of %d -> %d dimensions holds %zd weights",
            what, lt.d_in, lt.d_out, lt.A.size());
    FAISS_THROW_IF_NOT_FMT(!lt.have_bias || lt.b.size() == size_t(lt.d_out),
                           "corrupt EHI index: %s of %d outputs holds %zd "
                           "biases",
                           what, lt.d_out, lt.b.size());
}

/** A transform chain as Faiss read it: each transform's input is the
 * previous one's output (the first takes the index's vectors, the last
 * feeds the index under it), and each transform holds the arrays its
 * sizes need. Faiss applies them unchecked: a file whose PCA matrix was
 * shorter than its sizes made a search read past it. */
void check_transform_chain(const faiss::IndexPreTransform& pt) {
    int d = pt.d;
    for (size_t i = 0; i < pt.chain.size(); i++) {
        const faiss::VectorTransform* vt = pt.chain[i];
        FAISS_THROW_IF_NOT_MSG(vt, "corrupt EHI index: empty transform");
        check_bool_byte(vt->is_trained, "a transform's is_trained flag");
        FAISS_THROW_IF_NOT_FMT(vt->d_in == d && vt->d_out >= 1,
                               "corrupt EHI index: transform %zd maps %d -> "
                               "%d dimensions, its input has %d",
                               i, vt->d_in, vt->d_out, d);
        if (auto* lt = dynamic_cast<const faiss::LinearTransform*>(vt)) {
            check_linear_transform(*lt, "a linear transform");
            if (auto* pca = dynamic_cast<const faiss::PCAMatrix*>(vt)) {
                check_bool_byte(pca->random_rotation,
                                "PCAMatrix's random_rotation flag");
            }
        } else if (auto* rm = dynamic_cast<
                           const faiss::RemapDimensionsTransform*>(vt)) {
            bool ok = rm->map.size() == size_t(rm->d_out);
            for (int j : rm->map) {
                ok = ok && j >= -1 && j < rm->d_in;
            }
            FAISS_THROW_IF_NOT_FMT(ok,
                                   "corrupt EHI index: a dimension map of %d "
                                   "-> %d dimensions holds %zd entries or one "
                                   "out of range",
                                   rm->d_in, rm->d_out, rm->map.size());
        } else if (auto* ct =
                           dynamic_cast<const faiss::CenteringTransform*>(vt)) {
            FAISS_THROW_IF_NOT_FMT(!ct->is_trained ||
                                           ct->mean.size() == size_t(ct->d_in),
                                   "corrupt EHI index: a centring transform "
                                   "of %d dimensions holds %zd means",
                                   ct->d_in, ct->mean.size());
        } else if (auto* itq = dynamic_cast<const faiss::ITQTransform*>(vt)) {
            check_bool_byte(itq->do_pca, "ITQTransform's do_pca flag");
            check_linear_transform(itq->itq, "an ITQ rotation");
            check_linear_transform(itq->pca_then_itq, "an ITQ projection");
            FAISS_THROW_IF_NOT_FMT(
                    !itq->is_trained ||
                            (itq->mean.size() == size_t(itq->d_in) &&
                             itq->pca_then_itq.d_in == itq->d_in &&
                             itq->pca_then_itq.d_out == itq->d_out),
                    "corrupt EHI index: an ITQ transform of %d -> %d "
                    "dimensions does not match its parts",
                    itq->d_in, itq->d_out);
        }
        d = vt->d_out;
    }
    FAISS_THROW_IF_NOT_FMT(pt.index && pt.index->d == d,
                           "corrupt EHI index: a transform chain ends in %d "
                           "dimensions, its index has %d",
                           d, pt.index ? pt.index->d : -1);
}

/// The checks above on every field that Faiss's reader filled, recursively.
void check_raw_fields(faiss::Index* index) {
    if (!index) {
        return;
    }
    check_bool_byte(index->is_trained, "an index's is_trained flag");
    check_metric_bytes(index->metric_type);
    if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(index)) {
        check_bool_byte(pq->by_residual, "IndexIVFPQ's by_residual flag");
    }
    if (auto* sq = dynamic_cast<faiss::IndexIVFScalarQuantizer*>(index)) {
        check_bool_byte(sq->by_residual,
                        "IndexIVFScalarQuantizer's by_residual flag");
        check_scalar_quantizer(sq->sq, sq->d, sq->code_size, sq->is_trained);
    }
    if (auto* sq = dynamic_cast<faiss::IndexScalarQuantizer*>(index)) {
        check_scalar_quantizer(sq->sq, sq->d, sq->code_size, sq->is_trained);
    }
    if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(index)) {
        check_product_quantizer(pq->pq, pq->d, pq->code_size);
    }
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(index)) {
        check_product_quantizer(pq->pq, pq->d, pq->code_size);
    }
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index)) {
        check_raw_fields(ivf->quantizer);
    }
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
        check_transform_chain(*pt);
    }
    for (faiss::Index** child : wrapper_children(index)) {
        check_raw_fields(*child);
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
    // The first IVF in the file is the one the look-ahead can reach.
    const uint64_t tree_leaves = !ivfs.empty() && ivfs[0].tree
            ? uint64_t(ivfs[0].tree->ntotal)
            : 0;
    check_faiss_counts(p + r.pos, size - r.pos, tree_leaves);
    faiss::VectorIOReader fr;
    fr.data.assign(p + r.pos, p + size);
    const std::vector<int> idmap2s = read_idmap2s_as_idmaps(fr.data);
    std::unique_ptr<faiss::Index> root(faiss::read_index(&fr));
    FAISS_THROW_IF_NOT_MSG(fr.rp == fr.data.size(),
                           "corrupt EHI index: trailing bytes");
    faiss::Index* rootp = root.release();
    try {
        check_raw_fields(rootp);
        check_id_maps(rootp);
        restore_idmap2s(&rootp, idmap2s);
        std::vector<faiss::Index**> slots;
        collect_ivf_slots(&rootp, slots);
        FAISS_THROW_IF_NOT_MSG(slots.size() == nivf,
                               "corrupt EHI index: IVF count mismatch");
        for (size_t i = 0; i < slots.size(); i++) {
            install_tree(slots[i], ivfs[i]);
            check_ivf_contents(*dynamic_cast<faiss::IndexIVF*>(*slots[i]), i);
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

namespace {

bool all_digits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return c >= '0' && c <= '9';
    });
}

/** Deletes the temporary files `fname.tmp.PID.N` of processes that no
 * longer exist: a writer killed between creating its temporary file and
 * the rename leaves one behind, and nothing else would ever remove it.
 * Files of live processes (and of this one: another thread may be writing)
 * are kept. Best effort, never throws. A writer in another PID namespace
 * sharing the directory would look dead; its write would then fail at the
 * rename with an error, its old file intact. */
void remove_stale_temps(const char* fname) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path target(fname);
    fs::path dir = target.parent_path();
    if (dir.empty()) {
        dir = ".";
    }
    const std::string prefix = target.filename().string() + ".tmp.";
    std::vector<fs::path> stale;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.compare(0, prefix.size(), prefix) != 0) {
            continue;
        }
        std::string rest = name.substr(prefix.size());
        size_t dot = rest.find('.');
        if (dot == std::string::npos || !all_digits(rest.substr(0, dot)) ||
            !all_digits(rest.substr(dot + 1)) || dot > 9) {
            continue;
        }
        pid_t pid = pid_t(std::stol(rest.substr(0, dot)));
        if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 ||
            errno != ESRCH) {
            continue;
        }
        stale.push_back(it->path());
    }
    for (const fs::path& p : stale) {
        fs::remove(p, ec);
    }
}

} // namespace

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
    remove_stale_temps(fname);
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
    FAISS_THROW_IF_NOT_MSG(fname && *fname, "read_index: empty file name");
    // fopen succeeds on a directory and the first read fails, which
    // would be reported as a truncated file.
    struct stat st;
    FAISS_THROW_IF_NOT_FMT(::stat(fname, &st) != 0 || !S_ISDIR(st.st_mode),
                           "read_index: '%s' is a directory, not an index "
                           "file",
                           fname);
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

bool has_ehi_parts(const faiss::Index* index) {
    if (!index) {
        return false;
    }
    if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
        return dynamic_cast<const EHITreeQuantizer*>(ivf->quantizer) ||
                dynamic_cast<const IndexEHITree*>(ivf);
    }
    if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        for (const faiss::VectorTransform* vt : pt->chain) {
            if (dynamic_cast<const EncoderHead*>(vt)) {
                return true;
            }
        }
    }
    auto* mut = const_cast<faiss::Index*>(index); // only read
    for (faiss::Index** child : wrapper_children(mut)) {
        if (has_ehi_parts(*child)) {
            return true;
        }
    }
    return false;
}

bool is_ehi_file_header(const void* head, size_t size) {
    return head && size >= sizeof(kMagic) &&
            std::memcmp(head, kMagic, sizeof(kMagic)) == 0;
}

} // namespace faiss_ehi
