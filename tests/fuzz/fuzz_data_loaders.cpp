/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * libFuzzer target: the file loaders of contrib/data. The first input byte
 * picks the loader, the rest is written to a scratch file with the
 * loader's extension and read back: fvecs, ivecs, bvecs, npy, the BEIR
 * corpus / queries (JSON lines) and qrels (TSV), and the IDX image reader
 * of fashion_mnist (plain or gzip).
 */
#include <cstdint>
#include <exception>
#include <string>
#include <vector>


#include "contrib/data/beir.h"
#include "contrib/data/fashion_mnist.h"
#include "contrib/data/vecs_io.h"

#include "fuzz_common.h"

namespace {

namespace data = faiss_ehi::data;

/// Number of loaders; the first input byte modulo this picks one.
constexpr int kNumLoaders = 8;

void run_loader(int which, const std::string& path) {
    int d = 0, rows = 0, cols = 0;
    data::idx_t n = 0;
    switch (which) {
        case 0:
            data::fvecs_read(path, &d, &n);
            break;
        case 1:
            data::ivecs_read(path, &d, &n);
            break;
        case 2:
            data::bvecs_read(path, &d, &n);
            break;
        case 3:
            data::npy_read(path, &d, &n);
            break;
        case 4:
            data::read_beir_corpus(path);
            break;
        case 5:
            data::read_beir_queries(path);
            break;
        case 6:
            data::read_beir_qrels(path);
            break;
        default:
            data::read_idx_images(path, &n, &rows, &cols);
            break;
    }
}

const char* extension(int which) {
    static const char* const ext[kNumLoaders] = {
            ".fvecs", ".ivecs", ".bvecs", ".npy",
            ".jsonl", ".jsonl", ".tsv",   "-idx3-ubyte"};
    return ext[which];
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
    if (size == 0) {
        return 0;
    }
    int which = bytes[0] % kNumLoaders;
    // One scratch file per loader (and process), with the loader's
    // extension; removed at exit.
    static std::vector<ehi_fuzz::ScratchFile> files = [] {
        std::vector<ehi_fuzz::ScratchFile> f;
        for (int i = 0; i < kNumLoaders; i++) {
            f.emplace_back(extension(i));
        }
        return f;
    }();
    if (!files[which].write(bytes + 1, size - 1)) {
        return 0;
    }
    try {
        run_loader(which, files[which].path());
    } catch (const std::exception&) { // FaissException included
    }
    return 0;
}
