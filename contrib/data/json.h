/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * JSON reading for the data loaders, on nlohmann-json: BEIR's .jsonl lines
 * here, the GloVe package's single large object through nlohmann's SAX
 * interface in glove.cpp (no DOM: the file holds 34 million numbers).
 * Errors throw std::runtime_error naming the source and the byte offset.
 */
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>

namespace faiss_ehi {
namespace data {

/** Deepest nesting of objects and arrays accepted. nlohmann's parser does
 * not recurse, but writing a nested value back out (dump) does, and a line
 * of a few hundred kilobytes of '[' would then overflow the stack. */
constexpr int kJsonMaxDepth = 512;

/// Throw a std::runtime_error naming the source and the byte offset.
[[noreturn]] void throw_json_error(const std::string& source, size_t byte,
                                   const std::string& what);

/** Parse one JSON object (a BEIR line): string members are decoded, other
 * members kept as compact JSON text (numbers, literals, nested objects and
 * arrays). Throws on malformed input, trailing text, a value that is not an
 * object or nesting deeper than kJsonMaxDepth. */
std::unordered_map<std::string, std::string> parse_flat_object(
        const std::string& line, const std::string& source);

} // namespace data
} // namespace faiss_ehi
