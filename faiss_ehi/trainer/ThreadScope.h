/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <omp.h>
#include <torch/torch.h>

namespace faiss_ehi {
namespace trainer {

/** Sets torch's and OpenMP's thread counts for a scope and restores both
 * after it. threads <= 0 leaves them as they are. OpenMP's count is read
 * first: the first torch call initialises torch's pool, which sets the
 * calling thread's OpenMP count to 1. */
struct TorchThreadScope {
    int torch_before = 0;
    int omp_before = 0;
    bool active = false;
    explicit TorchThreadScope(int threads) {
        omp_before = omp_get_max_threads();
        torch_before = torch::get_num_threads();
        active = true;
        int t = threads > 0 ? threads : omp_before;
        torch::set_num_threads(t);
        omp_set_num_threads(t);
    }
    ~TorchThreadScope() {
        if (active) {
            torch::set_num_threads(torch_before);
            omp_set_num_threads(omp_before);
        }
    }
};

} // namespace trainer
} // namespace faiss_ehi
