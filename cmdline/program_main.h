/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

namespace ehi_cmdline {

/** Shared main() of the command-line programs (benchmarks and tools):
 * passive OpenMP waiting (see reexec_with_passive_omp), glog to stderr,
 * gflags parsing with `usage`, then run(); an exception is logged and
 * becomes exit code 1. */
int program_main(int argc, char** argv, const char* usage, int (*run)());

} // namespace ehi_cmdline
