/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/io_records.h>

#include <cinttypes>
#include <cstring>

#include <faiss/impl/FaissAssert.h>

namespace faiss_ehi {
namespace io_detail {

// ------------------------------------------------------ tree quantizer

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
    // since kVersionWithRouting: the grouped-routing and document-rule
    // fields
    put_bytes(w, kRoutingExtMagic, sizeof(kRoutingExtMagic));
    put<uint8_t>(w, q.assign_nearest);
    put<float>(w, q.mass_threshold);
    put<int32_t>(w, q.min_beam);
    put<uint32_t>(w, uint32_t(t.group_expansion.size()));
    for (int32_t g : t.group_expansion) {
        put<int32_t>(w, g);
    }
}

std::unique_ptr<EHITreeQuantizer> read_quantizer(PayloadReader& r,
                                                 uint32_t version) {
    int d = r.get<int32_t>();
    int metric = r.get<int32_t>();
    int B = r.get<int32_t>();
    int H = r.get<int32_t>();
    int m = r.get<int32_t>();
    int form = r.get<int32_t>();
    FAISS_THROW_IF_NOT_MSG(d >= 1 && B >= 2 && H >= 1 && m == d &&
                                   H <= kMaxRecordHeight &&
                                   (metric == faiss::METRIC_L2 ||
                                    metric == faiss::METRIC_INNER_PRODUCT) &&
                                   (form == int(NodeForm::PAPER) ||
                                    form == int(NodeForm::PER_NODE)),
                           "corrupt EHI index: bad tree header");
    int64_t leaves = 1;
    for (int h = 0; h < H && leaves <= kMaxRecordLeaves; h++) {
        leaves *= B; // cannot overflow: leaves <= 2^30 and B < 2^31
    }
    FAISS_THROW_IF_NOT_FMT(leaves <= kMaxRecordLeaves,
                           "corrupt EHI index: the tree record declares B = %d,"
                           " H = %d, more than %" PRId64 " leaves (the limit "
                           "of a file)",
                           B, H, kMaxRecordLeaves);
    auto q = std::make_unique<EHITreeQuantizer>(
            d, B, H, faiss::MetricType(metric), NodeForm(form));
    EHITree& t = q->tree;
    t.use_bias = r.get<uint8_t>() != 0;
    int strategy = r.get<int32_t>();
    FAISS_THROW_IF_NOT_MSG(strategy == int(BeamStrategy::BEST_FIRST) ||
                                   strategy == int(BeamStrategy::LEVEL_BEAM) ||
                                   (strategy == int(BeamStrategy::GROUPED) &&
                                    form == int(NodeForm::PER_NODE)),
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
    if (version >= kVersionWithRouting) {
        char magic[sizeof(kRoutingExtMagic)];
        for (char& c : magic) {
            c = char(r.get<uint8_t>());
        }
        FAISS_THROW_IF_NOT_MSG(
                std::memcmp(magic, kRoutingExtMagic, sizeof(magic)) == 0,
                "corrupt EHI index: bad routing record");
        uint8_t nearest = r.get<uint8_t>();
        float mass = r.get<float>();
        int32_t min_beam = r.get<int32_t>();
        uint32_t ng = r.get<uint32_t>();
        FAISS_THROW_IF_NOT_MSG(nearest <= 1 && mass >= 0 && mass < 1 &&
                                       min_beam >= 0 &&
                                       ng <= kMaxGroupExpansion,
                               "corrupt EHI index: bad routing record");
        q->assign_nearest = nearest != 0;
        q->mass_threshold = mass;
        q->min_beam = min_beam;
        for (uint32_t i = 0; i < ng; i++) {
            int32_t g = r.get<int32_t>();
            FAISS_THROW_IF_NOT_MSG(g >= 1 && g <= t.nodes_at_depth(H - 1),
                                   "corrupt EHI index: bad group expansion");
            t.group_expansion.push_back(g);
        }
    }
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

// -------------------------------------------------------- IVF record

void write_ivf_record(faiss::IOWriter* w, const faiss::IndexIVF& ivf) {
    auto* q = dynamic_cast<const EHITreeQuantizer*>(ivf.quantizer);
    put<uint8_t>(w, q != nullptr);
    if (!q) {
        return;
    }
    auto* ehi = dynamic_cast<const IndexEHITree*>(&ivf);
    put<uint8_t>(w, ehi != nullptr);
    if (ehi) {
        put<int32_t>(w, ehi->d2l);
        put<int32_t>(w, int32_t(ehi->assign_rule));
        put<float>(w, ehi->soar_lambda);
        put<uint8_t>(w, ehi->lists_have_duplicates);
    }
    write_quantizer(w, *q);
}

IVFRecord read_ivf_record(PayloadReader& r, uint32_t version) {
    IVFRecord rec;
    bool has_tree = r.get<uint8_t>() != 0;
    if (!has_tree) {
        return rec;
    }
    rec.is_ehi = r.get<uint8_t>() != 0;
    int32_t rule = int32_t(rec.assign_rule);
    if (rec.is_ehi) {
        rec.d2l = r.get<int32_t>();
        rule = r.get<int32_t>();
        rec.soar_lambda = r.get<float>();
        rec.lists_have_duplicates = r.get<uint8_t>() != 0;
    }
    rec.tree = read_quantizer(r, version);
    // Checked after the tree record: on a file corrupt in several places
    // the first error reported stays the one earlier readers reported.
    FAISS_THROW_IF_NOT_MSG(rule >= 0 && rule <= int32_t(kLastDocAssignRule),
                           "corrupt EHI index: bad assignment rule");
    rec.assign_rule = DocAssignRule(rule);
    return rec;
}

// ------------------------------------------------------ encoder head

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

void write_head_record(faiss::IOWriter* w, uint32_t ordinal, uint32_t pos,
                       const EncoderHead& e) {
    put<uint32_t>(w, ordinal);
    put<uint32_t>(w, pos);
    write_head(w, e);
}

HeadRecord read_head_record(PayloadReader& r) {
    HeadRecord rec;
    rec.ordinal = r.get<uint32_t>();
    rec.pos = r.get<uint32_t>();
    rec.head = read_head(r);
    return rec;
}

} // namespace io_detail
} // namespace faiss_ehi
