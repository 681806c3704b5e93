/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
// Test driver: fixes the thread counts before any test runs. Torch sets
// OpenMP to one thread when it starts, so both are set
// explicitly, after torch is loaded.
#include <gtest/gtest.h>

#include <omp.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
    torch::set_num_threads(2);
    omp_set_num_threads(2);
    torch::manual_seed(0);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
