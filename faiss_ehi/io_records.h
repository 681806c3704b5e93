/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

// Internal to faiss_ehi's IO: the records of the EHI payload. Each record's
// writer and reader are declared (and defined, in io_records.cpp) side by
// side, so that a field added to one is seen next to the other.

#include <cstdint>
#include <memory>

#include <faiss/IndexIVF.h>
#include <faiss/impl/io.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/io_primitives.h>

namespace faiss_ehi {
namespace io_detail {

/// Format version that added the encoder head section after the IVF records.
constexpr uint32_t kVersionWithHeads = 2;
/// Format version that appended the routing fields to every tree record.
constexpr uint32_t kVersionWithRouting = 3;

/// Marks the routing fields that format version 3 appends to a tree record.
constexpr char kRoutingExtMagic[4] = {'G', 'R', 'P', '1'};

/** Largest tree height a record may declare. Checked before the tree is
 * allocated: with B >= 2 a taller tree has more leaves than an idx_t
 * counts. */
constexpr int kMaxRecordHeight = 64;

/** Most leaves a tree record may declare (B^H), checked before anything is
 * sized by it: the IVF holds one inverted list per leaf (two vectors, about
 * 48 bytes, before any entry), so 2^30 leaves are already 48 GiB of empty
 * lists; a record that declares more is corrupt, not big. */
constexpr int64_t kMaxRecordLeaves = int64_t(1) << 30;

/** Largest group expansion table a record may hold: the table is indexed by
 * ceil(log2(beam)) and a beam is a 64-bit count. */
constexpr uint32_t kMaxGroupExpansion = 64;

// ------------------------------------------------------ tree quantizer

/// Write a tree quantizer (tree parameters, leaf representatives and, since
/// format version 3, the routing fields).
void write_quantizer(faiss::IOWriter* w, const EHITreeQuantizer& q);
/// Read and validate a record written by write_quantizer (of a file of
/// format `version`).
std::unique_ptr<EHITreeQuantizer> read_quantizer(PayloadReader& r,
                                                 uint32_t version);

// -------------------------------------------------------- IVF record

/** The record of one IVF index of the payload (in collect_ivf_slots
 * order): a uint8 "routed by a tree" flag and, when set, a uint8 "is an
 * IndexEHITree" flag, the IndexEHITree fields if so, and the tree
 * quantizer record. */
struct IVFRecord {
    /// The tree quantizer; null when the IVF is not routed by a tree.
    std::unique_ptr<EHITreeQuantizer> tree;
    /// The IVF is an IndexEHITree: the fields below are its own.
    bool is_ehi = false;
    int d2l = 1;
    DocAssignRule assign_rule = DocAssignRule::PROBABILITY;
    float soar_lambda = 1;
    bool lists_have_duplicates = false;
};

/// Write the record of `ivf` (see IVFRecord).
void write_ivf_record(faiss::IOWriter* w, const faiss::IndexIVF& ivf);
/// Read and validate a record written by write_ivf_record.
IVFRecord read_ivf_record(PayloadReader& r, uint32_t version);

// ------------------------------------------------------ encoder head

/// Write an encoder head's sizes, flags and arrays.
void write_head(faiss::IOWriter* w, const EncoderHead& e);
/// Read and validate a record written by write_head.
std::unique_ptr<EncoderHead> read_head(PayloadReader& r);

/** An encoder head of the payload's head section and where it goes: chain
 * position `pos` of the IndexPreTransform number `ordinal` in depth-first
 * pre-order of the wrappers. */
struct HeadRecord {
    uint32_t ordinal = 0;
    uint32_t pos = 0;
    std::unique_ptr<EncoderHead> head;
};

/// Write a head-section entry: ordinal, chain position, then the head.
void write_head_record(faiss::IOWriter* w, uint32_t ordinal, uint32_t pos,
                       const EncoderHead& e);
/// Read and validate an entry written by write_head_record.
HeadRecord read_head_record(PayloadReader& r);

} // namespace io_detail
} // namespace faiss_ehi
