/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>

namespace faiss_ehi {

/** What the C++ drop-in (the library faiss_ehi::dropin) did since the
 * program started, summed over all threads.
 *
 * Linking faiss_ehi::dropin makes the linker route every call of
 * faiss::index_factory, faiss::read_index, faiss::write_index and
 * faiss::clone_index through the drop-in: it serves EHI keys, files and
 * indexes with faiss_ehi's functions and hands everything else to Faiss's
 * own. A program needs no faiss_ehi header for that; this one only lets
 * tests and diagnostics see which way the calls went. Declared here,
 * defined in faiss_ehi::dropin: only programs that link it can call it. */
struct DropinCounters {
    /// calls served by faiss_ehi (an EHI key, file or index)
    uint64_t served = 0;
    /// calls from the program handed to Faiss unchanged
    uint64_t forwarded = 0;
    /** calls made by faiss_ehi itself while serving one, which go
     * straight to Faiss (the recursion guard) */
    uint64_t nested = 0;
};

/// The counters so far (requires linking faiss_ehi::dropin).
DropinCounters dropin_counters();

} // namespace faiss_ehi
