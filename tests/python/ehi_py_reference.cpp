/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The C++ side of tests/python/test_faiss_ehi.py: builds, trains (k-means
 * tree trainer, fixed seed), fills and searches an index with plain C++
 * faiss_ehi, linked the usual way, so that the test can compare the Python
 * bindings' results with it.
 *
 *   ehi_py_reference KEY D NPROBE K XT XB XQ OUT_D OUT_I [OUT_INDEX]
 *
 * XT, XB, XQ: raw float32 row-major files (n x D, n from the file size);
 * OUT_D / OUT_I: raw float32 / int64 nq x K results; OUT_INDEX (optional):
 * the trained and filled index, written with faiss_ehi::write_index.
 */

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <faiss/IndexIVF.h>
#include <faiss/IVFlib.h>

#include <faiss_ehi/faiss_ehi.h>

namespace {

std::vector<float> read_floats(const std::string& path, int d, size_t& n) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    size_t bytes = size_t(in.tellg());
    if (bytes % (sizeof(float) * d) != 0) {
        throw std::runtime_error(path + ": size is not a multiple of d");
    }
    n = bytes / (sizeof(float) * d);
    std::vector<float> v(n * d);
    in.seekg(0);
    in.read(reinterpret_cast<char*>(v.data()), bytes);
    return v;
}

template <class T>
void write_raw(const std::string& path, const std::vector<T>& v) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 10 && argc != 11) {
        std::cerr << "usage: " << argv[0]
                  << " KEY D NPROBE K XT XB XQ OUT_D OUT_I [OUT_INDEX]\n";
        return 2;
    }
    try {
        std::string key = argv[1];
        int d = std::atoi(argv[2]);
        int nprobe = std::atoi(argv[3]);
        int k = std::atoi(argv[4]);
        size_t nt, nb, nq;
        auto xt = read_floats(argv[5], d, nt);
        auto xb = read_floats(argv[6], d, nb);
        auto xq = read_floats(argv[7], d, nq);

        // Same trainer and settings as faiss_ehi.set_trainer("kmeans").
        faiss_ehi::set_tree_trainer(
                std::make_shared<faiss_ehi::KMeansTreeTrainer>());
        std::unique_ptr<faiss::Index> index(
                faiss_ehi::index_factory(d, key.c_str()));
        index->train(nt, xt.data());
        index->add(nb, xb.data());
        faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(index.get());
        ivf->nprobe = nprobe;
        std::vector<float> D(nq * k);
        std::vector<faiss::Index::idx_t> I(nq * k);
        index->search(nq, xq.data(), k, D.data(), I.data());
        write_raw(argv[8], D);
        write_raw(argv[9], I);
        if (argc == 11) {
            faiss_ehi::write_index(index.get(), argv[10]);
        }
    } catch (const std::exception& e) {
        std::cerr << "ehi_py_reference: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
