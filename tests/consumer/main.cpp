/**
 * Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Install check: a program outside the faiss-ehi tree that builds, trains,
 * searches, saves and reloads an EHI index through the installed package.
 * Prints "consumer OK" and exits 0 on success, exits 1 otherwise.
 */
#include <faiss_ehi/faiss_ehi.h>

#include "consumer_checks.h"

#include <faiss/IndexIVF.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using idx_t = faiss::Index::idx_t;

using consumer::check;

void set_nprobe(faiss::Index* index, size_t nprobe) {
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(index);
    check(ivf != nullptr, "the index is an IndexIVF");
    if (ivf) {
        ivf->nprobe = nprobe;
    }
}

void run() {
    const int d = 32;
    const idx_t nb = 4000; // vectors to train on and to store
    const idx_t nq = 50;   // queries: the first nq stored vectors
    const idx_t k = 5;

    std::printf("faiss_ehi %s (package %s)\n", faiss_ehi::version(),
                FAISS_EHI_EXPECTED_VERSION);
    check(std::strcmp(faiss_ehi::version(), FAISS_EHI_EXPECTED_VERSION) == 0,
          "faiss_ehi::version() matches the package version");

    std::mt19937 rng(20260101);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> xb(size_t(nb) * d);
    for (float& v : xb) {
        v = gauss(rng);
    }

    // No LibTorch here: the built-in trainer initialises the tree by k-means.
    faiss_ehi::set_tree_trainer(
            std::make_shared<faiss_ehi::KMeansTreeTrainer>());

    std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, "EHI8x2"));
    check(dynamic_cast<faiss_ehi::IndexEHITree*>(index.get()) != nullptr,
          "index_factory(\"EHI8x2\") makes an IndexEHITree");
    index->train(nb, xb.data());
    check(index->is_trained, "index is trained");
    index->add(nb, xb.data());
    check(index->ntotal == nb, "ntotal == number of added vectors");
    set_nprobe(index.get(), 4); // beam of 4 of the 64 leaves

    std::vector<float> dist(size_t(nq) * k);
    std::vector<idx_t> labels(size_t(nq) * k);
    index->search(nq, xb.data(), k, dist.data(), labels.data());
    idx_t self_found = 0;
    for (idx_t i = 0; i < nq; i++) {
        if (labels[i * k] == i && std::fabs(dist[i * k]) < 1e-3f) {
            self_found++;
        }
    }
    std::printf("nearest neighbour of a stored vector is itself: %ld / %ld\n",
                long(self_found), long(nq));
    check(self_found == nq, "every stored vector is its own nearest neighbour");

    // Save and reload with faiss_ehi's IO (plain Faiss cannot write it).
    const std::filesystem::path file = std::filesystem::temp_directory_path() /
            ("faiss_ehi_consumer_" + std::to_string(::getpid()) + ".fehi");
    faiss_ehi::write_index(index.get(), file.c_str());
    std::unique_ptr<faiss::Index> loaded(faiss_ehi::read_index(file.c_str()));
    std::filesystem::remove(file);

    check(dynamic_cast<faiss_ehi::IndexEHITree*>(loaded.get()) != nullptr,
          "the reloaded index is an IndexEHITree");
    check(loaded->ntotal == nb, "reloaded ntotal");
    set_nprobe(loaded.get(), 4);
    std::vector<float> dist2(dist.size());
    std::vector<idx_t> labels2(labels.size());
    loaded->search(nq, xb.data(), k, dist2.data(), labels2.data());
    check(labels2 == labels, "reloaded index returns the same labels");
    check(dist2 == dist, "reloaded index returns the same distances");

    faiss_ehi::set_tree_trainer(nullptr);
}

} // namespace

int main() {
    return consumer::run_checks("consumer", run);
}
