/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/index_factory.h>

#include <cctype>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/index_factory.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/IndexEHITreeSQ.h>
#include <faiss_ehi/index_walk.h>
#include <faiss_ehi/string_split.h>

namespace faiss_ehi {

namespace {

struct EHIKey {
    int B = 0;
    int H = 0;
    long long leaves = 0; ///< B^H
    NodeForm form = NodeForm::PER_NODE;
};

/// Parse a run of decimal digits at s[pos]; false if none or too many.
bool parse_number(const std::string& s, size_t& pos, long long& value) {
    size_t b = pos;
    value = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
        if (pos - b >= 9) {
            return false;
        }
        value = value * 10 + (s[pos] - '0');
        pos++;
    }
    return pos > b;
}

/// Parse "EHI<B>x<H>[_paper|_node]"; throws on a malformed token.
EHIKey parse_ehi_token(const std::string& tok) {
    const char* usage =
            "expected EHI<B>x<H> with B >= 2 and H >= 1, optionally "
            "followed by _paper or _node (e.g. EHI64x2)";
    size_t pos = 3;
    long long B = 0, H = 0;
    FAISS_THROW_IF_NOT_FMT(parse_number(tok, pos, B),
                           "malformed EHI key '%s': %s", tok.c_str(), usage);
    FAISS_THROW_IF_NOT_FMT(pos < tok.size() && tok[pos] == 'x',
                           "malformed EHI key '%s': %s", tok.c_str(), usage);
    pos++;
    FAISS_THROW_IF_NOT_FMT(parse_number(tok, pos, H),
                           "malformed EHI key '%s': %s", tok.c_str(), usage);
    EHIKey key;
    std::string suffix = tok.substr(pos);
    if (suffix == "_paper") {
        key.form = NodeForm::PAPER;
    } else if (suffix == "_node" || suffix.empty()) {
        key.form = NodeForm::PER_NODE;
    } else {
        FAISS_THROW_FMT("malformed EHI key '%s': unknown suffix '%s'; %s",
                        tok.c_str(), suffix.c_str(), usage);
    }
    FAISS_THROW_IF_NOT_FMT(B >= 2,
                           "EHI key '%s': branching factor B = %lld "
                           "must be >= 2",
                           tok.c_str(), B);
    FAISS_THROW_IF_NOT_FMT(H >= 1, "EHI key '%s': height H = %lld must be >= 1",
                           tok.c_str(), H);
    long long leaves = 1;
    for (long long h = 0; h < H; h++) {
        // checked before each multiplication, so it cannot overflow
        FAISS_THROW_IF_NOT_FMT(leaves <= (long long)kMaxLeaves / B,
                               "EHI key '%s': B^H leaves exceeds the maximum "
                               "of %lld",
                               tok.c_str(), (long long)kMaxLeaves);
        leaves *= B;
    }
    key.B = int(B);
    key.H = int(H);
    key.leaves = leaves;
    return key;
}

/** Throws on a product quantizer with no sub-quantizer: "PQ0" in any of
 * its forms (PQ0x8, PQ0np, PQ0x4fs, HNSW32_PQ0, IVF..,PQ0) or a refine
 * stage of none (IVF..,PQ8+0). Faiss 1.7.3's factory builds them, and the
 * ProductQuantizer constructor then divides by zero: the process dies of
 * SIGFPE instead of getting an error. "OPQ0", which Faiss handles, is
 * left to it. Plain Faiss keys go through this too, as through every
 * other check of this factory. */
void check_pq_sizes(const std::vector<std::string>& tokens,
                    const char* description) {
    for (const std::string& tok : tokens) {
        for (size_t at = tok.find("PQ"); at != std::string::npos;
             at = tok.find("PQ", at + 2)) {
            bool opq = at > 0 && tok[at - 1] == 'O';
            size_t pos = at + 2;
            long long m = -1;
            FAISS_THROW_IF_NOT_FMT(
                    opq || !parse_number(tok, pos, m) || m > 0,
                    "index_factory '%s': a product quantizer needs at least "
                    "one sub-quantizer (got %s)",
                    description, tok.c_str());
        }
        size_t plus = tok.find('+');
        if (plus != std::string::npos && tok.find("PQ") != std::string::npos) {
            size_t pos = plus + 1;
            long long m = -1;
            FAISS_THROW_IF_NOT_FMT(
                    !parse_number(tok, pos, m) || m > 0,
                    "index_factory '%s': a refining product quantizer needs "
                    "at least one sub-quantizer (got %s)",
                    description, tok.c_str());
        }
    }
}

} // namespace

faiss::Index* index_factory(int d, const char* description,
                            faiss::MetricType metric) {
    FAISS_THROW_IF_NOT_MSG(description, "index_factory: null description");
    std::vector<std::string> tokens = split_commas(description);
    check_pq_sizes(tokens, description);
    int ehi_at = -1;
    for (size_t i = 0; i < tokens.size(); i++) {
        if (tokens[i].compare(0, 3, "EHI") == 0) {
            FAISS_THROW_IF_NOT_FMT(ehi_at < 0,
                                   "index_factory '%s': at most one EHI token",
                                   description);
            ehi_at = int(i);
        }
    }
    if (ehi_at < 0) {
        return faiss::index_factory(d, description, metric);
    }
    EHIKey key = parse_ehi_token(tokens[ehi_at]);
    FAISS_THROW_IF_NOT_MSG(metric == faiss::METRIC_L2 ||
                                   metric == faiss::METRIC_INNER_PRODUCT,
                           "EHI supports METRIC_L2 and METRIC_INNER_PRODUCT");
    // Let Faiss build everything around an IVF of the same size, then put
    // the tree in as its coarse quantizer.
    tokens[ehi_at] = "IVF" + std::to_string(key.leaves);
    if (ehi_at + 1 == int(tokens.size())) {
        tokens.push_back("Flat");
    }
    std::string rewritten;
    for (size_t i = 0; i < tokens.size(); i++) {
        rewritten += (i ? "," : "") + tokens[i];
    }
    std::unique_ptr<faiss::Index> root(
            faiss::index_factory(d, rewritten.c_str(), metric));
    faiss::Index* rootp = root.get();
    std::vector<faiss::Index**> slots;
    collect_ivf_slots(&rootp, slots);
    FAISS_THROW_IF_NOT_FMT(slots.size() == 1,
                           "index_factory '%s': could not locate the IVF "
                           "index built for the EHI token",
                           description);
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(*slots[0]);
    if (typeid(*ivf) == typeid(faiss::IndexIVFFlat)) {
        // Flat storage: the dedicated index (d2l, deduplicated search).
        auto* ehi = new IndexEHITree(ivf->d, key.B, key.H, metric, key.form);
        ehi->nprobe = ivf->nprobe;
        *slots[0] = ehi;
        delete ivf;
    } else {
        // Scalar-quantised storage scans with faiss-ehi's kernels.
        promote_to_ehi_sq(slots[0]);
        ivf = dynamic_cast<faiss::IndexIVF*>(*slots[0]);
        auto* q = new EHITreeQuantizer(int(ivf->d), key.B, key.H, metric,
                                       key.form);
        if (ivf->own_fields) {
            delete ivf->quantizer;
        }
        ivf->quantizer = q;
        ivf->own_fields = true;
        ivf->quantizer_trains_alone = 1;
        ivf->is_trained = false;
    }
    root.release();
    return rootp;
}

} // namespace faiss_ehi
