/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "cmdline/flag_lists.h"

#include <sstream>
#include <stdexcept>

namespace ehi_cmdline {

std::vector<int> parse_int_list(const std::string& s, const char* flag,
                                bool positive) {
    std::vector<int> out;
    std::stringstream in(s);
    std::string tok;
    while (std::getline(in, tok, ',')) {
        if (tok.empty()) {
            continue;
        }
        size_t used = 0;
        int v = 0;
        try {
            v = std::stoi(tok, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != tok.size() || (positive && v <= 0)) {
            throw std::invalid_argument(
                    std::string("--") + flag + ": \"" + tok + "\" is not " +
                    (positive ? "a positive integer" : "an integer"));
        }
        out.push_back(v);
    }
    return out;
}

} // namespace ehi_cmdline
