/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * libFuzzer target: faiss_ehi::read_text_encoder on arbitrary bytes (see
 * ehi_fuzz::framed_input). An encoder that reads is used to encode a text
 * made of its own first words, which must not fail.
 */
#include <cstdint>
#include <exception>
#include <string>


#include <faiss_ehi/TextEncoder.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char kMagic[4] = {'F', 'E', 'H', 'T'};
    faiss::VectorIOReader reader;
    reader.data = ehi_fuzz::framed_input(data, size, kMagic,
                                         faiss_ehi::kTextEncoderFormatVersion);
    try {
        faiss_ehi::TextEncoder enc = faiss_ehi::read_text_encoder(&reader);
        std::string text = "unknown";
        for (size_t i = 0; i < enc.vocab.size() && i < 4; i++) {
            text += " " + enc.vocab[i];
        }
        enc.encode(1, &text);
    } catch (const std::exception&) { // FaissException included
    }
    return 0;
}
