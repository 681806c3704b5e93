/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Load balance of a filled IVF-family index: how evenly its inverted lists
 * hold the documents, as the paper's load-balance plots count it.
 */
#pragma once

#include <string>

#include <faiss/Index.h>

namespace ehi_cmdline {

/// List sizes of the IVF part of an index.
struct LeafLoad {
    size_t nlist = 0;
    size_t stored = 0;  ///< codes over all lists (copies counted)
    size_t largest = 0; ///< biggest list
    size_t empty = 0;   ///< lists with no code
    /// Expected documents scanned when probing the list of a random stored
    /// code, sum n_l^2 / stored, over the ideal stored / nlist.
    double expected_over_ideal = 0;
    double largest_over_ideal = 0; ///< largest / (stored / nlist)
};

/// The load of the IVF inside `index` (faiss::extract_index_ivf).
LeafLoad leaf_load(const faiss::Index& index);

/// "2,048 lists, 0 empty, expected 1.12x ideal, largest 2.3x ideal".
std::string describe(const LeafLoad& l);

} // namespace ehi_cmdline
