/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "cmdline/timing.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace ehi_cmdline {

double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
    if (v.empty()) {
        throw std::invalid_argument("median of an empty list");
    }
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

} // namespace ehi_cmdline
