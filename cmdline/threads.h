/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Thread control of the command-line programs: OpenMP's and OpenBLAS's
 * thread counts, and the OpenMP wait policy that keeps multi-threaded
 * timings honest on OpenBLAS.
 */
#pragma once

namespace ehi_cmdline {

/** Set the number of OpenMP threads and, when the process runs on OpenBLAS,
 * OpenBLAS's own thread pool too (set_blas_threads), so that a "single
 * thread" measurement includes BLAS calls. nt <= 0 changes nothing. */
void set_num_threads(int nt);

/// OpenBLAS's thread count, or -1 where the BLAS is not OpenBLAS.
int blas_threads();

/** Set OpenBLAS's thread count (found with dlsym: a no-op where the BLAS
 * is not OpenBLAS). nt <= 0 changes nothing. */
void set_blas_threads(int nt);

/// Whether the process runs on OpenBLAS (its symbols are loaded).
bool running_on_openblas();

/** With OpenBLAS's pthread build, OpenBLAS's worker threads and spinning
 * OpenMP threads fight over the cores: multi-threaded timings come out 2 to
 * 30 times too slow and quantised to scheduler ticks. OMP_WAIT_POLICY must
 * be set before the OpenMP runtime starts, so when it is unset and OpenBLAS
 * is loaded this re-executes the program (/proc/self/exe, same argv) with
 * OMP_WAIT_POLICY=PASSIVE. Call first thing in main. Returns only when no
 * re-execution was needed or it failed. */
void reexec_with_passive_omp(char** argv);

} // namespace ehi_cmdline
