/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Umbrella header: the whole public API of the faiss_ehi library.
 */
#pragma once

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/EHITreeKMeansInit.h>
#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/EncoderHead.h>
#include <faiss_ehi/IndexEHITree.h>
#include <faiss_ehi/IndexEHITreeSQ.h>
#include <faiss_ehi/SIMDListScanner.h>
#include <faiss_ehi/blocked_scan.h>
#include <faiss_ehi/scan_kernels.h>
#include <faiss_ehi/TextEncoder.h>
#include <faiss_ehi/Tokenizer.h>
#include <faiss_ehi/TreeTrainer.h>
#include <faiss_ehi/index_factory.h>
#include <faiss_ehi/index_io.h>

namespace faiss_ehi {
/// Library version, "major.minor.patch".
const char* version();
} // namespace faiss_ehi
