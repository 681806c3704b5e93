/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/TextEncoder.h>

#include <cmath>
#include <cstring>

#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/io.h>

#include <faiss_ehi/Tokenizer.h>
#include <faiss_ehi/io_primitives.h>

namespace faiss_ehi {

using namespace io_detail;

namespace {
const char kMagic[4] = {'F', 'E', 'H', 'T'};
// A word longer than this is surely a corrupt length field.
constexpr uint32_t kMaxWordBytes = 1u << 20;
} // namespace

TextEncoder::TextEncoder(std::vector<std::string> vocab_in, int dim_in,
                         std::vector<float> embeddings_in)
        : dim(dim_in), vocab(std::move(vocab_in)),
          embeddings(std::move(embeddings_in)) {
    build_lookup();
    check_consistent();
}

void TextEncoder::build_lookup() {
    lookup_.clear();
    lookup_.reserve(vocab.size());
    for (size_t i = 0; i < vocab.size(); i++) {
        bool fresh = lookup_.emplace(vocab[i], int64_t(i)).second;
        FAISS_THROW_IF_NOT_FMT(fresh,
                               "TextEncoder: word '%s' appears twice in the "
                               "vocabulary (ids %zd and %zd)",
                               vocab[i].c_str(), size_t(lookup_[vocab[i]]), i);
    }
}

int64_t TextEncoder::find(const std::string& word) const {
    auto it = lookup_.find(word);
    return it == lookup_.end() ? -1 : it->second;
}

std::vector<int64_t> TextEncoder::token_ids(const std::string& text) const {
    return known_token_ids(text,
                           [this](const std::string& w) { return find(w); });
}

void TextEncoder::encode_ids(const int64_t* ids, size_t nids,
                             float* out) const {
    std::memset(out, 0, sizeof(float) * dim);
    if (nids == 0) {
        return;
    }
    for (size_t t = 0; t < nids; t++) {
        FAISS_THROW_IF_NOT_FMT(ids[t] >= 0 && ids[t] < size(),
                               "TextEncoder: token id %zd out of [0, %zd)",
                               size_t(ids[t]), size_t(size()));
        const float* e = embeddings.data() + size_t(ids[t]) * dim;
        for (int j = 0; j < dim; j++) {
            out[j] += e[j];
        }
    }
    // Mean, as the trainer's embedding bag (sum, then one division).
    float inv = float(nids);
    for (int j = 0; j < dim; j++) {
        out[j] /= inv;
    }
}

std::vector<float> TextEncoder::encode(size_t n,
                                       const std::string* texts) const {
    FAISS_THROW_IF_NOT_MSG(dim >= 1 && embeddings.size() == vocab.size() * dim,
                           "TextEncoder: not initialised (dim or table size)");
    FAISS_THROW_IF_NOT_MSG(lookup_.size() == vocab.size(),
                           "TextEncoder: lookup out of date (call "
                           "build_lookup after changing vocab)");
    std::vector<float> out(n * size_t(dim));
#pragma omp parallel for if (n > 64)
    for (int64_t i = 0; i < int64_t(n); i++) {
        std::vector<int64_t> ids = token_ids(texts[i]);
        encode_ids(ids.data(), ids.size(), out.data() + size_t(i) * dim);
    }
    return out;
}

std::vector<float> TextEncoder::encode(
        const std::vector<std::string>& texts) const {
    return encode(texts.size(), texts.data());
}

void TextEncoder::check_consistent() const {
    FAISS_THROW_IF_NOT_FMT(dim >= 1, "TextEncoder: dim = %d, must be >= 1",
                           dim);
    FAISS_THROW_IF_NOT_FMT(embeddings.size() == vocab.size() * size_t(dim),
                           "TextEncoder: table has %zd floats, expected "
                           "|V| x dim = %zd x %d",
                           embeddings.size(), vocab.size(), dim);
    for (size_t i = 0; i < embeddings.size(); i++) {
        FAISS_THROW_IF_NOT_FMT(std::isfinite(embeddings[i]),
                               "TextEncoder: non-finite value in the table "
                               "(word %zd)",
                               i / dim);
    }
    for (size_t i = 0; i < vocab.size(); i++) {
        FAISS_THROW_IF_NOT_FMT(!vocab[i].empty(),
                               "TextEncoder: empty word at id %zd", i);
    }
    FAISS_THROW_IF_NOT_MSG(lookup_.size() == vocab.size(),
                           "TextEncoder: lookup out of date (call "
                           "build_lookup)");
}

void write_text_encoder(const TextEncoder& enc, faiss::IOWriter* writer) {
    enc.check_consistent();
    // read_text_encoder refuses such a file (see there)
    FAISS_THROW_IF_NOT_MSG(!enc.vocab.empty(),
                           "write_text_encoder: empty vocabulary");
    faiss::VectorIOWriter payload;
    put<int32_t>(&payload, enc.dim);
    put<uint64_t>(&payload, enc.vocab.size());
    for (const std::string& w : enc.vocab) {
        put<uint32_t>(&payload, uint32_t(w.size()));
        put_bytes(&payload, w.data(), w.size());
    }
    put_floats(&payload, enc.embeddings);
    write_frame(writer, kMagic, kTextEncoderFormatVersion, payload.data);
}

void write_text_encoder(const TextEncoder& enc, const char* fname) {
    FAISS_THROW_IF_NOT_MSG(fname && *fname,
                           "write_text_encoder: empty file name");
    faiss::VectorIOWriter mem;
    write_text_encoder(enc, static_cast<faiss::IOWriter*>(&mem));
    write_file_atomic(fname, mem.data.data(), mem.data.size(),
                      "write_text_encoder");
}

TextEncoder read_text_encoder(faiss::IOReader* reader) {
    uint32_t version = 0;
    std::vector<uint8_t> payload =
            read_frame(reader, kMagic, kTextEncoderFormatVersion,
                       "read_text_encoder", "", &version);
    PayloadReader r{payload.data(), payload.size()};
    TextEncoder enc;
    enc.dim = r.get<int32_t>();
    uint64_t nv = r.get<uint64_t>();
    FAISS_THROW_IF_NOT_MSG(nv <= payload.size() / 4,
                           "read_text_encoder: corrupt vocabulary size");
    // Without words nothing in the file bounds dim, and every encode would
    // allocate dim floats: 21 bytes could ask for gigabytes.
    FAISS_THROW_IF_NOT_FMT(
            nv >= 1, "read_text_encoder: empty vocabulary (dim = %d)", enc.dim);
    enc.vocab.resize(nv);
    for (uint64_t i = 0; i < nv; i++) {
        uint32_t len = r.get<uint32_t>();
        FAISS_THROW_IF_NOT_MSG(len <= kMaxWordBytes,
                               "read_text_encoder: corrupt word length");
        enc.vocab[i].resize(len);
        r.get_bytes(&enc.vocab[i][0], len);
    }
    enc.embeddings = r.get_floats();
    FAISS_THROW_IF_NOT_MSG(r.pos == r.size,
                           "read_text_encoder: trailing bytes in payload");
    enc.build_lookup();
    enc.check_consistent();
    return enc;
}

TextEncoder read_text_encoder(const char* fname) {
    faiss::FileIOReader reader(fname);
    return read_text_encoder(static_cast<faiss::IOReader*>(&reader));
}

} // namespace faiss_ehi
