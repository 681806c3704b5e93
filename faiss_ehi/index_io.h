/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <faiss/Index.h>
#include <faiss/impl/io.h>

namespace faiss_ehi {

/** Serialisation of every index faiss_ehi::index_factory makes (and of
 * plain Faiss indexes, which are wrapped the same way).
 *
 * Format (little endian): magic "FEHI", format version, payload size,
 * 64-bit FNV-1a checksum of the payload, then the payload: the trees of
 * every EHI quantizer in the index, per-IVF EHI fields, the encoder heads
 * (EncoderHead) of IndexPreTransform chains, and the Faiss part written by
 * faiss::write_index with each tree quantizer temporarily replaced by an
 * IndexFlat of its leaf representatives and each encoder head by a
 * RemapDimensionsTransform placeholder. A truncated or
 * corrupted file fails the size or checksum test and throws. */
void write_index(const faiss::Index* index, faiss::IOWriter* writer);

/** Atomic file write: the index goes to a temporary file in the same
 * directory which is flushed, synced and renamed over `fname`. On any
 * failure the old file (if any) is left intact and an exception thrown. */
void write_index(const faiss::Index* index, const char* fname);

/// Read an index written by write_index; throws on any malformed input.
faiss::Index* read_index(faiss::IOReader* reader);
faiss::Index* read_index(const char* fname);

/// Deep copy (a serialisation round trip; bit-identical search results).
faiss::Index* clone_index(const faiss::Index* index);

/** Whether `index` holds an EHI part that faiss::write_index and
 * faiss::clone_index cannot handle: an IVF whose coarse quantizer is an
 * EHITreeQuantizer (IndexEHITree included) or an EncoderHead in an
 * IndexPreTransform chain, reachable through IndexPreTransform,
 * IndexIDMap/IDMap2 and IndexRefine. A plain Faiss index gives false. */
bool has_ehi_parts(const faiss::Index* index);

/** Whether the first `size` bytes of a file, `head`, start the way
 * write_index's files do (the magic "FEHI"); false for plain Faiss files,
 * whose first four bytes are an index type code such as "IxF2". */
bool is_ehi_file_header(const void* head, size_t size);

/** The file format version this build writes; it reads every version from
 * 1 up to it. Version 2 added the encoder heads (EncoderHead in an
 * IndexPreTransform chain): their parameters follow the tree records and
 * the Faiss part holds a RemapDimensionsTransform of the same dimensions in
 * each head's place. Version 3 appends to every tree record the grouped
 * routing fields (group expansion, document rule, adaptive beam). Files of
 * versions 1 and 2 still read, with those fields at their defaults. */
constexpr uint32_t kFormatVersion = 3;

} // namespace faiss_ehi
