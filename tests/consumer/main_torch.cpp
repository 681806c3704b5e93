/**
 * Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Install check of the drop-in: a program outside the faiss-ehi tree that
 * links faiss_ehi::faiss_ehi and faiss_ehi::trainer and does nothing but
 * index_factory + train() + add + search on an EHI key. Linking the trainer
 * must be enough for train() to use the LibTorch trainer: no registration
 * call here. Prints "consumer_torch OK" and exits 0 on success, exits 1
 * otherwise.
 */
#include <faiss_ehi/faiss_ehi.h>

#include "consumer_checks.h"

#include <cstdio>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using idx_t = faiss::Index::idx_t;

using consumer::check;

void run() {
    const int d = 16;
    const idx_t nb = 2000;
    const idx_t nq = 20; // queries: the first nq stored vectors
    const idx_t k = 3;

    // Before anything else: the self-registration ran before main.
    const std::string name = faiss_ehi::tree_trainer_name();
    std::printf("registered tree trainer: '%s'\n", name.c_str());
    check(name.rfind("torch", 0) == 0,
          "linking faiss_ehi::trainer registers the LibTorch trainer (got '" +
                  name + "')");

    std::mt19937 rng(20260102);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> xb(size_t(nb) * d);
    for (float& v : xb) {
        v = gauss(rng);
    }

    std::unique_ptr<faiss::Index> index(faiss_ehi::index_factory(d, "EHI4x2"));
    index->train(nb, xb.data());
    check(index->is_trained, "index is trained");
    index->add(nb, xb.data());
    check(index->ntotal == nb, "ntotal == number of added vectors");

    // The default search parameters: the nearest stored vector of most
    // queries is the query itself (the check is loose on purpose: it is
    // about the trainer being used, not about its quality).
    std::vector<float> dist(size_t(nq) * k);
    std::vector<idx_t> labels(size_t(nq) * k);
    index->search(nq, xb.data(), k, dist.data(), labels.data());
    idx_t self_found = 0;
    for (idx_t i = 0; i < nq; i++) {
        self_found += labels[i * k] == i;
    }
    std::printf("nearest neighbour of a stored vector is itself: %ld / %ld\n",
                long(self_found), long(nq));
    check(self_found >= nq / 2, "most stored vectors find themselves");
}

} // namespace

int main() {
    return consumer::run_checks("consumer_torch", run);
}
