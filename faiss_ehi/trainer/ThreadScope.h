/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <omp.h>
#include <torch/torch.h>

#include <faiss_ehi/thread_scope.h>

namespace faiss_ehi {
namespace trainer {

/** faiss_ehi::OmpThreadScope for torch's thread count and OpenMP's
 * together: threads > 0 sets both for the scope and restores both after
 * it; threads <= 0 leaves both alone (nothing set, nothing restored), the
 * same meaning as OmpThreadScope's.
 *
 * It does not hold an OmpThreadScope because the order matters: OpenMP's
 * count is read first, then torch's (the first torch call initialises
 * torch's pool, which resets the calling thread's OpenMP count), and only
 * then are both set. */
class TorchThreadScope {
  public:
    explicit TorchThreadScope(int threads) {
        if (threads > 0) {
            active_ = true;
            omp_before_ = omp_get_max_threads();
            torch_before_ = torch::get_num_threads();
            torch::set_num_threads(threads);
            omp_set_num_threads(threads);
        }
    }

    ~TorchThreadScope() {
        if (active_) {
            torch::set_num_threads(torch_before_);
            omp_set_num_threads(omp_before_);
        }
    }

    TorchThreadScope(const TorchThreadScope&) = delete;
    TorchThreadScope& operator=(const TorchThreadScope&) = delete;

  private:
    bool active_ = false;
    int torch_before_ = 0;
    int omp_before_ = 0;
};

} // namespace trainer
} // namespace faiss_ehi
