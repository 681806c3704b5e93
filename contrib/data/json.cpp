/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/json.h"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace faiss_ehi {
namespace data {

void throw_json_error(const std::string& source, size_t byte,
                      const std::string& what) {
    throw std::runtime_error("malformed JSON in " + source + " at byte " +
                             std::to_string(byte) + ": " + what);
}

namespace {

/// nlohmann's message without its "[json.exception.parse_error.101] " tag.
std::string parse_error_text(const nlohmann::json::parse_error& e) {
    std::string s = e.what();
    size_t p = s.find("] ");
    return p == std::string::npos ? s : s.substr(p + 2);
}

} // namespace

std::unordered_map<std::string, std::string> parse_flat_object(
        const std::string& line, const std::string& source) {
    using nlohmann::json;
    // The callback sees each object and array start before its contents are
    // read, so that a deep line is refused without building it.
    json::parser_callback_t guard = [&](int depth, json::parse_event_t event,
                                        json&) {
        if ((event == json::parse_event_t::object_start ||
             event == json::parse_event_t::array_start) &&
            depth > kJsonMaxDepth) {
            throw std::runtime_error(
                    "malformed JSON in " + source +
                    ": objects and arrays nested deeper than " +
                    std::to_string(kJsonMaxDepth) + " levels");
        }
        return true;
    };
    json j;
    try {
        j = json::parse(line, guard);
    } catch (const json::parse_error& e) {
        throw_json_error(source, e.byte, parse_error_text(e));
    }
    if (!j.is_object()) {
        throw_json_error(source, 0, "expected a JSON object");
    }
    std::unordered_map<std::string, std::string> out;
    for (auto& kv : j.items()) {
        const json& v = kv.value();
        if (v.is_string()) {
            out[kv.key()] = v.get<std::string>();
        } else {
            out[kv.key()] = v.dump();
        }
    }
    return out;
}

} // namespace data
} // namespace faiss_ehi
