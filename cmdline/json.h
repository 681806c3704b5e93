/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The pieces of the programs' JSON result files, formatted by nlohmann-json.
 */
#pragma once

#include <string>

namespace ehi_cmdline {

/// Escape a string for a JSON string literal (without the quotes).
std::string json_escape(const std::string& s);

/// A JSON number with 6 significant digits; NaN and infinities as null.
std::string json_number(double v);

} // namespace ehi_cmdline
