/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "cmdline/json.h"

#include <cmath>
#include <cstdio>

namespace ehi_cmdline {

std::string json_number(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    char buf[40];
    snprintf(buf, sizeof(buf), "%.6g", v);
    return buf;
}

std::string json_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    snprintf(buf, sizeof(buf), "\\u%04x", c);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out;
}

} // namespace ehi_cmdline
