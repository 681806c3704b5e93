/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Parsing of the list-valued command-line flags ("1,2,4").
 */
#pragma once

#include <string>
#include <vector>

namespace ehi_cmdline {

/** Comma-separated integers ("1,2,4"); empty fields are skipped. Throws
 * std::invalid_argument naming `flag` for a token that is not an integer
 * or (with positive) not > 0. */
std::vector<int> parse_int_list(const std::string& s, const char* flag,
                                bool positive = true);

/** Comma-separated numbers ("0.05,0.1"); empty fields are skipped. Throws
 * std::invalid_argument naming `flag` for a token that is not a number or
 * lies outside [lo, hi] (outside (lo, hi] when `lo_open`), and for a list
 * with no number. */
std::vector<double> parse_double_list(const std::string& s, const char* flag,
                                      double lo, double hi,
                                      bool lo_open = false);

} // namespace ehi_cmdline
