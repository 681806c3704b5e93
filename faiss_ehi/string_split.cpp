/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/string_split.h>

namespace faiss_ehi {

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    size_t b = 0;
    while (true) {
        size_t e = s.find(',', b);
        out.push_back(s.substr(b, e == std::string::npos ? e : e - b));
        if (e == std::string::npos) {
            return out;
        }
        b = e + 1;
    }
}

} // namespace faiss_ehi
