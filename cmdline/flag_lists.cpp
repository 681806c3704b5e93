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

std::vector<double> parse_double_list(const std::string& s, const char* flag,
                                      double lo, double hi, bool lo_open) {
    std::vector<double> out;
    std::stringstream in(s);
    std::string tok;
    while (std::getline(in, tok, ',')) {
        if (tok.empty()) {
            continue;
        }
        size_t used = 0;
        double v = 0;
        try {
            v = std::stod(tok, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        const bool in_range = (lo_open ? v > lo : v >= lo) && v <= hi;
        if (used != tok.size() || !in_range) {
            std::ostringstream range;
            range << (lo_open ? "(" : "[") << lo << ", " << hi << "]";
            throw std::invalid_argument(std::string("--") + flag + ": \"" +
                                        tok + "\" is not a number in " +
                                        range.str());
        }
        out.push_back(v);
    }
    if (out.empty()) {
        throw std::invalid_argument(std::string("--") + flag + " is empty");
    }
    return out;
}

} // namespace ehi_cmdline
