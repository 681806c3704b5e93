/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <omp.h>

namespace faiss_ehi {

/** Sets the calling thread's OpenMP thread count for a scope and restores
 * the count it had when the scope ends.
 *
 * threads <= 0 means "leave it alone": nothing is set and nothing is
 * restored. A caller that wants a default (all processors, the current
 * count) resolves it before constructing the scope, so that the guard
 * itself has a single meaning. The LibTorch trainer's TorchThreadScope
 * (faiss_ehi/trainer/ThreadScope.h) gives threads the same meaning. */
class OmpThreadScope {
  public:
    explicit OmpThreadScope(int threads)
            : active_(threads > 0), before_(omp_get_max_threads()) {
        if (active_) {
            omp_set_num_threads(threads);
        }
    }

    ~OmpThreadScope() {
        if (active_) {
            omp_set_num_threads(before_);
        }
    }

    OmpThreadScope(const OmpThreadScope&) = delete;
    OmpThreadScope& operator=(const OmpThreadScope&) = delete;

  private:
    bool active_;
    int before_;
};

} // namespace faiss_ehi
