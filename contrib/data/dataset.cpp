/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/dataset.h"

#include <cmath>

namespace faiss_ehi {
namespace data {

void Dataset::truncate_queries(idx_t n) {
    if (n <= 0 || n >= nq) {
        return;
    }
    nq = n;
    xq.resize(size_t(nq) * size_t(d));
}

void l2_normalize_rows(float* x, idx_t n, int d) {
#pragma omp parallel for schedule(static)
    for (idx_t i = 0; i < n; i++) {
        float* xi = x + size_t(i) * d;
        double s = 0;
        for (int j = 0; j < d; j++) {
            s += double(xi[j]) * xi[j];
        }
        if (s > 0) {
            float inv = float(1.0 / std::sqrt(s));
            for (int j = 0; j < d; j++) {
                xi[j] *= inv;
            }
        }
    }
}

} // namespace data
} // namespace faiss_ehi
