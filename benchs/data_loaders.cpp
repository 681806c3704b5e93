/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "data_loaders.h"

#include <dlfcn.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ehi_bench {

double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
    if (v.empty()) {
        throw std::invalid_argument("median of an empty list");
    }
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double interpolate_log_x(std::vector<double> xs, std::vector<double> ys,
                         double target) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (xs.size() != ys.size() || xs.empty() || !(target > 0)) {
        return nan;
    }
    std::vector<size_t> order(xs.size());
    for (size_t i = 0; i < order.size(); i++) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return xs[a] < xs[b]; });
    if (target < xs[order.front()] || target > xs[order.back()]) {
        return nan;
    }
    for (size_t t = 0; t + 1 < order.size(); t++) {
        double x0 = xs[order[t]], x1 = xs[order[t + 1]];
        double y0 = ys[order[t]], y1 = ys[order[t + 1]];
        if (target >= x0 && target <= x1) {
            if (x1 <= x0 || x0 <= 0) {
                return std::max(y0, y1);
            }
            double a = (std::log(target) - std::log(x0)) /
                    (std::log(x1) - std::log(x0));
            return y0 + a * (y1 - y0);
        }
    }
    return ys[order.back()]; // target == max x
}

std::string json_number(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    char buf[40];
    snprintf(buf, sizeof(buf), "%.6g", v);
    return buf;
}

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

void set_num_threads(int nt) {
    if (nt <= 0) {
        return;
    }
    omp_set_num_threads(nt);
    using setter_t = void (*)(int);
    static setter_t openblas_setter = reinterpret_cast<setter_t>(
            dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (openblas_setter) {
        openblas_setter(nt);
    }
}

bool running_on_openblas() {
    return dlsym(RTLD_DEFAULT, "openblas_set_num_threads") != nullptr;
}

void reexec_with_passive_omp(char** argv) {
    if (getenv("OMP_WAIT_POLICY") != nullptr || !running_on_openblas()) {
        return;
    }
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr,
            "warning: could not re-execute with OMP_WAIT_POLICY=PASSIVE (%s); "
            "multi-threaded timings may be unreliable\n",
            std::strerror(errno));
}

} // namespace ehi_bench
