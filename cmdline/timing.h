/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Timing helpers of the command-line programs.
 */
#pragma once

#include <vector>

namespace ehi_cmdline {

/// Wall-clock seconds since an arbitrary epoch (steady clock).
double now_s();

/// Median of a non-empty list of values (throws std::invalid_argument on
/// an empty one).
double median(std::vector<double> v);

} // namespace ehi_cmdline
