/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <string>
#include <vector>

namespace faiss_ehi {

/** The comma-separated fields of `s`, empty fields included: n commas
 * give n + 1 fields ("" -> {""}, "a," -> {"a", ""}). Used by the index
 * factory's descriptions and the data specs of contrib/data. */
std::vector<std::string> split_commas(const std::string& s);

} // namespace faiss_ehi
