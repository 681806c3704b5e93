/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

// Internal to faiss_ehi's IO: the records of a tree quantizer and of an
// encoder head inside the EHI payload.

#include <memory>

#include <faiss/impl/io.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/io_primitives.h>

namespace faiss_ehi {
namespace io_detail {

/// Write a tree quantizer (tree parameters and leaf representatives).
void write_quantizer(faiss::IOWriter* w, const EHITreeQuantizer& q);
/// Marks the routing fields that format version 3 appends to a tree record.
constexpr char kRoutingExtMagic[4] = {'G', 'R', 'P', '1'};
/// Read and validate a record written by write_quantizer (of a file of
/// format `version`).
std::unique_ptr<EHITreeQuantizer> read_quantizer(PayloadReader& r,
                                                 uint32_t version);
/// Write an encoder head's sizes, flags and arrays.
void write_head(faiss::IOWriter* w, const EncoderHead& e);
/// Read and validate a record written by write_head.
std::unique_ptr<EncoderHead> read_head(PayloadReader& r);

} // namespace io_detail
} // namespace faiss_ehi
