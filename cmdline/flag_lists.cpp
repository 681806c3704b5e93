/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "cmdline/flag_lists.h"

#include <sstream>
#include <stdexcept>

namespace ehi_cmdline {

namespace {

/// The non-empty comma-separated fields of `s`.
std::vector<std::string> fields(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string tok;
    while (std::getline(in, tok, ',')) {
        if (!tok.empty()) {
            out.push_back(tok);
        }
    }
    return out;
}

/// `tok` read whole by `read` (std::stoi, std::stod); false if it is not
/// one number and nothing else.
template <class T, class Read>
bool read_whole(const std::string& tok, Read read, T* v) {
    size_t used = 0;
    try {
        *v = read(tok, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == tok.size();
}

} // namespace

std::vector<int> parse_int_list(const std::string& s, const char* flag,
                                bool positive) {
    std::vector<int> out;
    for (const std::string& tok : fields(s)) {
        int v = 0;
        auto stoi = [](const std::string& t, size_t* used) {
            return std::stoi(t, used);
        };
        if (!read_whole(tok, stoi, &v) || (positive && v <= 0)) {
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
    for (const std::string& tok : fields(s)) {
        double v = 0;
        auto stod = [](const std::string& t, size_t* used) {
            return std::stod(t, used);
        };
        if (!read_whole(tok, stod, &v) || !(lo_open ? v > lo : v >= lo) ||
            !(v <= hi)) {
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
