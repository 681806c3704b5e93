/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Seed generator of the fuzz targets: `ehi_fuzz_seeds DIR` writes a few
 * small valid inputs per target, made by the project's own writers, into
 * DIR/<target>/ (the layout of tests/fuzz/corpus). Each file starts with
 * the byte the target reads first (see the targets).
 */
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/io.h>

#include <faiss_ehi/faiss_ehi.h>

#include "contrib/data/vecs_io.h"

namespace {

namespace fs = std::filesystem;

/// Size of a faiss_ehi frame header (magic, version, size, checksum).
constexpr size_t kFrameHeader = 24;

void write_bytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (!f) {
        throw std::runtime_error("cannot write " + p.string());
    }
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> prefixed(uint8_t first, const std::vector<uint8_t>& b,
                              size_t skip = 0) {
    std::vector<uint8_t> out{first};
    out.insert(out.end(), b.begin() + skip, b.end());
    return out;
}

/// Deterministic pseudo-random floats in [-1, 1).
std::vector<float> data_vectors(size_t n, int d, uint32_t seed) {
    std::vector<float> x(n * d);
    for (auto& v : x) {
        seed = seed * 1664525u + 1013904223u;
        v = float(seed >> 8) / float(1 << 23) - 1.0f;
    }
    return x;
}

/// A framed file as the read_index / text encoder targets take it: the
/// payload after a mode byte that asks for `version`, and the whole file
/// after a mode byte with the top bit set.
void write_framed(const fs::path& dir, const std::string& name,
                  const std::vector<uint8_t>& file, uint32_t version) {
    write_bytes(dir / (name + "_framed"),
                prefixed(uint8_t(version - 1), file, kFrameHeader));
    write_bytes(dir / (name + "_raw"), prefixed(0x80, file));
}

void index_seeds(const fs::path& dir) {
    const int d = 8;
    const size_t nt = 48, nb = 16;
    std::vector<float> xt = data_vectors(nt, d, 1), xb = data_vectors(nb, d, 2);
    auto trainer = std::make_shared<faiss_ehi::KMeansTreeTrainer>();
    trainer->niter = 4;
    trainer->seed = 1234;
    faiss_ehi::set_tree_trainer(trainer);
    const char* keys[] = {"EHI4x2", "EHI2x2_paper,Flat", "EHI4x2,SQ8",
                          "PCA4,EHI2x2,Flat", "IDMap,EHI2x2,Flat"};
    int i = 0;
    for (const char* key : keys) {
        std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, key));
        index->train(nt, xt.data());
        // with ids: IDMap takes no other add
        std::vector<faiss::Index::idx_t> ids(nb);
        for (size_t j = 0; j < nb; j++) {
            ids[j] = faiss::Index::idx_t(100 + 3 * j);
        }
        index->add_with_ids(nb, xb.data(), ids.data());
        faiss::VectorIOWriter w;
        faiss_ehi::write_index(index.get(), &w);
        write_framed(dir, "index" + std::to_string(i++), w.data,
                     faiss_ehi::kFormatVersion);
    }
    // An encoder head in front of a tree index (format version 2 and up).
    faiss_ehi::EncoderHead head(d, 4, 6, true);
    std::vector<float>* params[] = {&head.A,  &head.b,  &head.W1,
                                    &head.c1, &head.W2, &head.c2};
    uint32_t s = 7;
    for (auto* v : params) {
        auto r = data_vectors(v->size(), 1, s++);
        *v = r;
    }
    std::unique_ptr<faiss::Index> inner(faiss_ehi::index_factory(4, "EHI2x2"));
    std::vector<float> ht(nt * 4);
    head.apply_noalloc(nt, xt.data(), ht.data());
    inner->train(nt, ht.data());
    faiss::IndexPreTransform pt(new faiss_ehi::EncoderHead(head),
                                inner.release());
    pt.own_fields = true;
    pt.add(nb, xb.data());
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(&pt, &w);
    write_framed(dir, "index_head", w.data, faiss_ehi::kFormatVersion);
    faiss_ehi::set_tree_trainer(nullptr);
}

void text_encoder_seeds(const fs::path& dir) {
    faiss_ehi::TextEncoder enc({"hello", "world", "42", "tree"}, 3,
                               data_vectors(4, 3, 5));
    faiss::VectorIOWriter w;
    faiss_ehi::write_text_encoder(enc, &w);
    write_framed(dir, "encoder", w.data, faiss_ehi::kTextEncoderFormatVersion);
}

void factory_seeds(const fs::path& dir) {
    const char* keys[] = {"EHI4x2",
                          "EHI16x2,Flat",
                          "EHI4x3_paper,SQ8",
                          "EHI4x2_node,PQ4",
                          "PCA4,EHI4x2,Flat",
                          "OPQ4,EHI4x2,PQ4",
                          "L2norm,EHI4x2,Flat",
                          "IDMap,EHI4x2,Flat",
                          "IVF4,Flat",
                          "Flat"};
    int i = 0;
    for (const char* key : keys) {
        std::string k(key);
        std::vector<uint8_t> b{uint8_t(i % 2)};
        b.insert(b.end(), k.begin(), k.end());
        write_bytes(dir / ("key" + std::to_string(i++)), b);
    }
}

void loader_seeds(const fs::path& dir, const fs::path& scratch) {
    namespace data = faiss_ehi::data;
    const int d = 4;
    const size_t n = 3;
    std::vector<float> x = data_vectors(n, d, 3);
    std::vector<int> xi(n * d);
    std::vector<uint8_t> xu(n * d);
    for (size_t i = 0; i < x.size(); i++) {
        xi[i] = int(i) * 7 - 3;
        xu[i] = uint8_t(i * 13);
    }
    auto add = [&](const std::string& name, uint8_t which,
                   const fs::path& file) {
        write_bytes(dir / name, prefixed(which, read_bytes(file)));
    };
    fs::path p = scratch / "seed.fvecs";
    data::fvecs_write(p.string(), x.data(), d, n);
    add("fvecs", 0, p);
    p = scratch / "seed.ivecs";
    data::ivecs_write(p.string(), xi.data(), d, n);
    add("ivecs", 1, p);
    p = scratch / "seed.bvecs";
    data::bvecs_write(p.string(), xu.data(), d, n);
    add("bvecs", 2, p);
    p = scratch / "seed.npy";
    data::npy_write(p.string(), x.data(), d, n);
    add("npy2d", 3, p);
    data::npy_write(p.string(), x.data(), d, 1, true);
    add("npy1d", 3, p);

    auto text = [&](const std::string& name, uint8_t which,
                    const std::string& s) {
        std::vector<uint8_t> b{which};
        b.insert(b.end(), s.begin(), s.end());
        write_bytes(dir / name, b);
    };
    text("beir_corpus", 4,
         "{\"_id\": \"d1\", \"title\": \"A tree\", \"text\": \"Leaves "
         "\\u00e9 and \\\"roots\\\".\"}\n"
         "{\"_id\": \"d2\", \"title\": \"\", \"text\": \"Second doc\", "
         "\"metadata\": {}}\n");
    text("beir_queries", 5,
         "{\"_id\": \"q1\", \"text\": \"which tree?\"}\n"
         "{\"_id\": \"q2\", \"text\": \"roots\\n\"}\n");
    text("beir_qrels", 6,
         "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td1\t0\n");

    // IDX images: magic 0x00000803, n, rows, cols (big endian), pixels.
    std::vector<uint8_t> idx = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2};
    for (int i = 0; i < 12; i++) {
        idx.push_back(uint8_t(i * 20));
    }
    write_bytes(dir / "idx_plain", prefixed(7, idx));
    p = scratch / "seed.gz";
    gzFile gz = gzopen(p.string().c_str(), "wb");
    gzwrite(gz, idx.data(), unsigned(idx.size()));
    gzclose(gz);
    add("idx_gzip", 7, p);
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    fs::path out = argv[1];
    const char* targets[] = {"fuzz_read_index", "fuzz_text_encoder",
                             "fuzz_index_factory", "fuzz_data_loaders"};
    for (const char* t : targets) {
        fs::create_directories(out / t);
    }
    fs::path scratch = fs::temp_directory_path() /
            ("ehi_fuzz_seeds_" + std::to_string(::getpid()));
    fs::create_directories(scratch);
    try {
        index_seeds(out / "fuzz_read_index");
        text_encoder_seeds(out / "fuzz_text_encoder");
        factory_seeds(out / "fuzz_index_factory");
        loader_seeds(out / "fuzz_data_loaders", scratch);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ehi_fuzz_seeds: %s\n", e.what());
        fs::remove_all(scratch);
        return 1;
    }
    fs::remove_all(scratch);
    return 0;
}
