/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * One way to name the values of the project's enumerations, in flags,
 * logs, result files, the Python bridge and error messages, so that a
 * value is spelled the same everywhere.
 */
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/IndexEHITree.h>

namespace faiss_ehi {

/** The names of the values of enumeration E: specialised next to each
 * enumeration that has names, with
 *   static const std::vector<std::pair<E, const char*>>& all();
 * listing every value once, in declaration order. */
template <class E>
struct EnumNames;

template <>
struct EnumNames<NodeForm> {
    static const std::vector<std::pair<NodeForm, const char*>>& all();
};

template <>
struct EnumNames<DocAssignRule> {
    static const std::vector<std::pair<DocAssignRule, const char*>>& all();
};

template <>
struct EnumNames<BeamStrategy> {
    static const std::vector<std::pair<BeamStrategy, const char*>>& all();
};

/// The name of `value` ("?" for a value outside the enumeration).
template <class E>
const char* enum_name(E value) {
    for (const auto& n : EnumNames<E>::all()) {
        if (n.first == value) {
            return n.second;
        }
    }
    return "?";
}

/// Every name of E, quoted and comma-separated: "'a', 'b'".
template <class E>
std::string enum_choices() {
    std::string s;
    for (const auto& n : EnumNames<E>::all()) {
        s += (s.empty() ? "'" : ", '") + std::string(n.second) + "'";
    }
    return s;
}

/// Throws faiss::FaissException: "<what> = '<text>', expected one of ...".
[[noreturn]] void throw_bad_enum_name(const char* what, const std::string& text,
                                      const std::string& choices);

/** The value named `text`; `what` names the setting in the exception
 * thrown for any other text. */
template <class E>
E enum_from_name(const std::string& text, const char* what) {
    for (const auto& n : EnumNames<E>::all()) {
        if (text == n.second) {
            return n.first;
        }
    }
    throw_bad_enum_name(what, text, enum_choices<E>());
}

} // namespace faiss_ehi
