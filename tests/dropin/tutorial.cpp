/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * A service written against Faiss alone, in the style of Faiss's tutorial
 * 2-IVFFlat: it includes only Faiss headers and knows nothing of
 * faiss-ehi. Linked with plain Faiss it runs plain Faiss keys; linked with
 * faiss_ehi::dropin (and nothing else changed) it also runs EHI keys.
 *
 *   tutorial KEY [OUT_PREFIX [MIN_RECALL]]
 *
 * Builds KEY with faiss::index_factory, trains, adds (add_with_ids for
 * IDMap keys), searches, then checks:
 * - 1-recall@10 against exact search is at least MIN_RECALL (default 0.5);
 * - after faiss::write_index and faiss::read_index in each of their three
 *   forms (file name, FILE*, IOWriter/IOReader), and after
 *   faiss::clone_index, the search results are identical, bit for bit.
 * With OUT_PREFIX it writes OUT_PREFIX.results (distances and labels of
 * every search) and OUT_PREFIX.index (the written file): comparing them
 * between a plain and a drop-in build shows that the drop-in leaves plain
 * Faiss bit-identical. Prints "tutorial OK" and exits 0, else exits 1.
 */
#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/clone_index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using idx_t = faiss::Index::idx_t;

const int d = 32;
const idx_t nb = 2000;
const idx_t nq = 100;
const idx_t k = 10;

struct Results {
    std::vector<float> D;
    std::vector<idx_t> I;
};

void fail(const std::string& what) {
    throw std::runtime_error(what);
}

Results search(const faiss::Index& index, const float* xq) {
    Results r;
    r.D.resize(size_t(nq) * k);
    r.I.resize(size_t(nq) * k);
    index.search(nq, xq, k, r.D.data(), r.I.data());
    return r;
}

void check_same(const Results& a, const Results& b, const char* what) {
    if (std::memcmp(a.D.data(), b.D.data(), a.D.size() * sizeof(float)) ||
        std::memcmp(a.I.data(), b.I.data(), a.I.size() * sizeof(idx_t))) {
        fail(std::string("results differ after ") + what);
    }
    std::printf("  identical after %s\n", what);
}

void append(std::vector<char>& out, const Results& r) {
    const char* d = reinterpret_cast<const char*>(r.D.data());
    out.insert(out.end(), d, d + r.D.size() * sizeof(float));
    const char* i = reinterpret_cast<const char*>(r.I.data());
    out.insert(out.end(), i, i + r.I.size() * sizeof(idx_t));
}

std::vector<char> read_file(const std::string& fname) {
    std::vector<char> data;
    FILE* f = std::fopen(fname.c_str(), "rb");
    if (!f) {
        fail("cannot open " + fname);
    }
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
        data.insert(data.end(), buf, buf + n);
    }
    std::fclose(f);
    return data;
}

void write_file(const std::string& fname, const std::vector<char>& data) {
    FILE* f = std::fopen(fname.c_str(), "wb");
    if (!f || std::fwrite(data.data(), 1, data.size(), f) != data.size()) {
        fail("cannot write " + fname);
    }
    std::fclose(f);
}

void run(const std::string& key, const std::string& out, double min_recall) {
    // Clustered data, the same in every build (fixed seed).
    std::mt19937 rng(1234);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    const int nclusters = 50;
    std::vector<float> centres(size_t(nclusters) * d);
    for (float& v : centres) {
        v = 4.0f * gauss(rng);
    }
    auto sample = [&](idx_t n) {
        std::vector<float> x(size_t(n) * d);
        for (idx_t i = 0; i < n; i++) {
            const float* c = centres.data() + size_t(rng() % nclusters) * d;
            for (int j = 0; j < d; j++) {
                x[size_t(i) * d + j] = c[j] + gauss(rng);
            }
        }
        return x;
    };
    std::vector<float> xb = sample(nb);
    std::vector<float> xq = sample(nq);

    std::unique_ptr<faiss::Index> index(faiss::index_factory(d, key.c_str()));
    index->train(nb, xb.data());
    // An IDMap index takes only add_with_ids: ids that are not positions.
    const bool with_ids = key.compare(0, 5, "IDMap") == 0;
    std::vector<idx_t> ids(nb);
    for (idx_t i = 0; i < nb; i++) {
        ids[i] = with_ids ? 1000 + 7 * i : i;
    }
    if (with_ids) {
        index->add_with_ids(nb, xb.data(), ids.data());
    } else {
        index->add(nb, xb.data());
    }
    if (faiss::IndexIVF* ivf =
                faiss::ivflib::try_extract_index_ivf(index.get())) {
        ivf->nprobe = 4;
    }
    std::printf("%s: ntotal %ld\n", key.c_str(), long(index->ntotal));

    // 1-recall@10 against exact search
    faiss::IndexFlatL2 exact(d);
    exact.add(nb, xb.data());
    Results gt = search(exact, xq.data());
    Results first = search(*index, xq.data());
    idx_t found = 0;
    for (idx_t q = 0; q < nq; q++) {
        for (idx_t j = 0; j < k; j++) {
            found += first.I[q * k + j] == ids[gt.I[q * k]];
        }
    }
    double recall = double(found) / nq;
    std::printf("  1-recall@%ld %.3f (floor %.3f)\n", long(k), recall,
                min_recall);
    if (recall < min_recall) {
        fail("recall below the floor");
    }

    std::vector<char> all;
    append(all, first);
    const std::string fname =
            out.empty() ? std::string("tutorial_tmp.index") : out + ".index";

    // file name form
    faiss::write_index(index.get(), fname.c_str());
    {
        std::unique_ptr<faiss::Index> back(faiss::read_index(fname.c_str()));
        Results r = search(*back, xq.data());
        check_same(first, r, "write_index/read_index (file name)");
        append(all, r);
    }
    // FILE* form
    {
        FILE* f = std::tmpfile();
        if (!f) {
            fail("tmpfile failed");
        }
        faiss::write_index(index.get(), f);
        std::rewind(f);
        std::unique_ptr<faiss::Index> back(faiss::read_index(f));
        std::fclose(f);
        Results r = search(*back, xq.data());
        check_same(first, r, "write_index/read_index (FILE*)");
        append(all, r);
    }
    // IOWriter / IOReader form
    {
        faiss::VectorIOWriter w;
        faiss::write_index(index.get(), &w);
        if (std::vector<char>(w.data.begin(), w.data.end()) !=
            read_file(fname)) {
            fail("the IOWriter and file name forms wrote different bytes");
        }
        faiss::VectorIOReader r;
        r.data = w.data;
        std::unique_ptr<faiss::Index> back(faiss::read_index(&r));
        Results res = search(*back, xq.data());
        check_same(first, res, "write_index/read_index (IOWriter/IOReader)");
        append(all, res);
    }
    // clone
    {
        std::unique_ptr<faiss::Index> copy(faiss::clone_index(index.get()));
        Results r = search(*copy, xq.data());
        check_same(first, r, "clone_index");
        append(all, r);
    }
    if (out.empty()) {
        std::remove(fname.c_str());
    } else {
        write_file(out + ".results", all);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 4) {
        std::fprintf(stderr, "usage: %s KEY [OUT_PREFIX [MIN_RECALL]]\n",
                     argv[0]);
        return 2;
    }
    try {
        run(argv[1], argc > 2 ? argv[2] : "",
            argc > 3 ? std::atof(argv[3]) : 0.5);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tutorial %s FAILED: %s\n", argv[1], e.what());
        return 1;
    }
    std::printf("tutorial OK\n");
    return 0;
}
