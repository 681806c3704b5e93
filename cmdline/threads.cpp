/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "cmdline/threads.h"

#include <dlfcn.h>
#include <omp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ehi_cmdline {

void set_num_threads(int nt) {
    if (nt <= 0) {
        return;
    }
    omp_set_num_threads(nt);
    set_blas_threads(nt);
}

// OpenBLAS's functions are looked up at run time: the programs link the
// BLAS Faiss links, which need not be OpenBLAS.

int blas_threads() {
    using getter_t = int (*)();
    static getter_t getter = reinterpret_cast<getter_t>(
            dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    return getter ? getter() : -1;
}

void set_blas_threads(int nt) {
    using setter_t = void (*)(int);
    static setter_t setter = reinterpret_cast<setter_t>(
            dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (setter && nt > 0) {
        setter(nt);
    }
}

bool running_on_openblas() {
    return dlsym(RTLD_DEFAULT, "openblas_set_num_threads") != nullptr;
}

void reexec_with_passive_omp(char** argv) {
    if (getenv("OMP_WAIT_POLICY") != nullptr || !running_on_openblas()) {
        return;
    }
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr,
            "warning: could not re-execute with OMP_WAIT_POLICY=PASSIVE (%s); "
            "multi-threaded timings may be unreliable\n",
            std::strerror(errno));
}

} // namespace ehi_cmdline
