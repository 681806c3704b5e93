/**
 * Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
 *
 * What the install-check programs share: a named check that counts
 * failures, and the main that runs the checks and prints "NAME OK".
 */
#pragma once

#include <cstdio>
#include <exception>
#include <string>

namespace consumer {

inline const char*& program_name() {
    static const char* name = "consumer";
    return name;
}

inline int& failures() {
    static int n = 0;
    return n;
}

/// Count (and print) a failed check.
inline void check(bool ok, const std::string& what) {
    if (!ok) {
        std::fprintf(stderr, "%s: FAILED: %s\n", program_name(), what.c_str());
        ++failures();
    }
}

/** Run `checks` as program `name`: exit code 0 and "NAME OK" when every
 * check passed and nothing threw, 1 otherwise. */
inline int run_checks(const char* name, void (*checks)()) {
    program_name() = name;
    try {
        checks();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: exception: %s\n", name, e.what());
        return 1;
    }
    if (failures() != 0) {
        std::fprintf(stderr, "%s: %d check(s) failed\n", name, failures());
        return 1;
    }
    std::printf("%s OK\n", name);
    return 0;
}

} // namespace consumer
