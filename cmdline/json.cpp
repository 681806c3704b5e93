/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "cmdline/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace ehi_cmdline {

std::string json_number(double v) {
    // JSON has no NaN or infinity; the readers take null as "not measured".
    if (!std::isfinite(v)) {
        return "null";
    }
    // Rounded to 6 significant digits first: more would be timing noise,
    // and nlohmann writes the shortest text that reads back the same.
    char buf[40];
    snprintf(buf, sizeof(buf), "%.6g", v);
    return nlohmann::json(std::strtod(buf, nullptr)).dump();
}

std::string json_escape(const std::string& s) {
    // Invalid UTF-8 (a file name, a data set's text) is replaced rather
    // than thrown on: a result file is still worth writing.
    std::string q = nlohmann::json(s).dump(
            -1, ' ', false, nlohmann::json::error_handler_t::replace);
    return q.substr(1, q.size() - 2);
}

} // namespace ehi_cmdline
