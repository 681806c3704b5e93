/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <faiss/impl/io.h>

namespace faiss_ehi {

/** The first stage of EHI's trained text encoder, without LibTorch: a
 * vocabulary (word -> id) and a table of token vectors (|V| x dim). A text
 * is encoded as the mean of the vectors of its in-vocabulary tokens (the
 * zero vector when it has none); tokens come from faiss_ehi::tokenize, the
 * tokenizer the training data went through. The output is the input of the
 * index the joint trainer builds (its EncoderHead then applies the learned
 * head).
 *
 * encode is const and thread-safe. */
struct TextEncoder {
    int dim = 0;                    ///< token vector size
    std::vector<std::string> vocab; ///< word of each id (unique)
    std::vector<float> embeddings;  ///< vocab.size() x dim, row-major

    TextEncoder() = default;
    /// Takes the vocabulary and table; builds the lookup (throws on
    /// duplicates or size mismatch).
    TextEncoder(std::vector<std::string> vocab, int dim,
                std::vector<float> embeddings);

    int64_t size() const {
        return int64_t(vocab.size());
    }

    /// Rebuild the word -> id lookup after changing `vocab` by hand.
    void build_lookup();

    /// Id of `word` (already a token: lower-case ASCII alnum), or -1.
    int64_t find(const std::string& word) const;

    /// Ids of the in-vocabulary tokens of `text`, in order.
    std::vector<int64_t> token_ids(const std::string& text) const;

    /// n x dim floats: the mean token vector of each of the n texts.
    std::vector<float> encode(size_t n, const std::string* texts) const;
    std::vector<float> encode(const std::vector<std::string>& texts) const;
    /// The same from token ids (as returned by token_ids) into out (dim).
    void encode_ids(const int64_t* ids, size_t nids, float* out) const;

    /** Throws unless dim >= 1, the table has vocab.size() x dim finite
     * values, the words are unique and non-empty, and the lookup matches. */
    void check_consistent() const;

  private:
    std::unordered_map<std::string, int64_t> lookup_;
};

/** Serialisation. Format (little endian): magic "FEHT", format version,
 * payload size, 64-bit FNV-1a checksum of the payload, then the payload:
 * dim, |V|, the words (length + bytes each), the table. A truncated or
 * corrupted file throws faiss::FaissException when read. An encoder
 * without words is neither written nor read (throws). */
void write_text_encoder(const TextEncoder& enc, faiss::IOWriter* writer);
/// Atomic: temporary file in the same directory, synced, then renamed.
void write_text_encoder(const TextEncoder& enc, const char* fname);
TextEncoder read_text_encoder(faiss::IOReader* reader);
TextEncoder read_text_encoder(const char* fname);

/// The format version write_text_encoder writes.
constexpr uint32_t kTextEncoderFormatVersion = 1;

} // namespace faiss_ehi
