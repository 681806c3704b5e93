/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/Tokenizer.h>

namespace faiss_ehi {

namespace {
inline bool is_alnum_ascii(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
            (c >= 'A' && c <= 'Z');
}
inline char lower_ascii(char c) {
    return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}
} // namespace

void for_each_token(const std::string& text,
                    const std::function<void(const std::string&)>& f) {
    std::string cur;
    for (char c : text) {
        if (is_alnum_ascii((unsigned char)c)) {
            cur += lower_ascii(c);
        } else if (!cur.empty()) {
            f(cur);
            cur.clear();
        }
    }
    if (!cur.empty()) {
        f(cur);
    }
}

std::vector<std::string> tokenize(const std::string& text) {
    std::vector<std::string> out;
    for_each_token(text, [&](const std::string& t) { out.push_back(t); });
    return out;
}

std::vector<int64_t> known_token_ids(
        const std::string& text,
        const std::function<int64_t(const std::string&)>& find) {
    std::vector<int64_t> ids;
    for_each_token(text, [&](const std::string& t) {
        int64_t id = find(t);
        if (id >= 0) {
            ids.push_back(id);
        }
    });
    return ids;
}

} // namespace faiss_ehi
