/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */

#include "cmdline/index_stats.h"

#include <algorithm>
#include <cstdio>

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>

namespace ehi_cmdline {

LeafLoad leaf_load(const faiss::Index& index) {
    const faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(&index);
    LeafLoad l;
    l.nlist = ivf->nlist;
    double sq = 0;
    for (size_t i = 0; i < ivf->nlist; i++) {
        size_t n = ivf->invlists->list_size(i);
        l.stored += n;
        l.largest = std::max(l.largest, n);
        l.empty += n == 0;
        sq += double(n) * double(n);
    }
    if (l.stored > 0) {
        double ideal = double(l.stored) / double(l.nlist);
        l.expected_over_ideal = sq / double(l.stored) / ideal;
        l.largest_over_ideal = double(l.largest) / ideal;
    }
    return l;
}

std::string describe(const LeafLoad& l) {
    char buf[200];
    snprintf(buf, sizeof(buf),
             "%zu lists, %zu empty, expected %.2fx ideal, largest %.2fx ideal",
             l.nlist, l.empty, l.expected_over_ideal, l.largest_over_ideal);
    return buf;
}

} // namespace ehi_cmdline
