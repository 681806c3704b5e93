/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * libFuzzer target: faiss_ehi::read_index on arbitrary bytes (see
 * ehi_fuzz::framed_input for how the input becomes a file). Malformed input
 * must throw; a crash or a sanitizer report is a finding. A file that does
 * read is also searched, so that what the reader accepted is usable.
 */
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include <faiss/Index.h>

#include <faiss_ehi/index_io.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char kMagic[4] = {'F', 'E', 'H', 'I'};
    faiss::VectorIOReader reader;
    reader.data = ehi_fuzz::framed_input(data, size, kMagic,
                                         faiss_ehi::kFormatVersion);
    try {
        std::unique_ptr<faiss::Index> index(faiss_ehi::read_index(&reader));
        // Keep the search small: the fuzzer may build a large d.
        if (index->d > 0 && index->d <= 4096 && index->is_trained) {
            std::vector<float> q(index->d, 0.5f);
            faiss::Index::idx_t label = -1;
            float dist = 0;
            index->search(1, q.data(), 1, &dist, &label);
        }
    } catch (const std::exception&) { // FaissException included
    }
    return 0;
}
