/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/vecs_io.h"

#include <cstring>
#include <limits>
#include <stdexcept>

#include "contrib/data/file_util.h"

namespace faiss_ehi {
namespace data {

namespace {

static_assert(sizeof(float) == 4 && sizeof(int) == 4, "4-byte types");

/// Shared body of the *vecs readers: elements of `esize` bytes.
template <typename T>
std::vector<T> xvecs_read(const std::string& path, const char* kind, int* d_out,
                          idx_t* n_out) {
    const size_t esize = sizeof(T);
    std::string buf = read_file(path);
    if (buf.empty()) {
        throw std::runtime_error(std::string("empty ") + kind + " file " +
                                 path);
    }
    if (buf.size() < 4) {
        throw std::runtime_error(std::string("truncated ") + kind + " file " +
                                 path + " (" + std::to_string(buf.size()) +
                                 " bytes, less than one header)");
    }
    int32_t d;
    std::memcpy(&d, buf.data(), 4);
    if (d <= 0 || d > (1 << 24)) {
        throw std::runtime_error("bad dimension " + std::to_string(d) +
                                 " in the first row of " + kind + " file " +
                                 path);
    }
    size_t row = 4 + size_t(d) * esize;
    if (buf.size() % row != 0) {
        throw std::runtime_error(
                std::string("truncated or malformed ") + kind + " file " +
                path + ": size " + std::to_string(buf.size()) +
                " is not a multiple of the row size " + std::to_string(row) +
                " (d = " + std::to_string(d) + ")");
    }
    size_t n = buf.size() / row;
    std::vector<T> out(n * size_t(d));
    for (size_t i = 0; i < n; i++) {
        int32_t di;
        std::memcpy(&di, buf.data() + i * row, 4);
        if (di != d) {
            throw std::runtime_error(
                    "inconsistent dimension " + std::to_string(di) +
                    " (expected " + std::to_string(d) + ") in row " +
                    std::to_string(i) + " of " + kind + " file " + path);
        }
        std::memcpy(out.data() + i * size_t(d), buf.data() + i * row + 4,
                    size_t(d) * esize);
    }
    *d_out = d;
    *n_out = idx_t(n);
    return out;
}

template <typename T>
void xvecs_write(const std::string& path, const char* kind, const T* x, int d,
                 idx_t n) {
    if (d <= 0 || n < 0) {
        throw std::invalid_argument(std::string("writing ") + kind + " file " +
                                    path +
                                    ": bad sizes d = " + std::to_string(d) +
                                    ", n = " + std::to_string(n));
    }
    const size_t esize = sizeof(T);
    size_t row = 4 + size_t(d) * esize;
    std::string buf(size_t(n) * row, '\0');
    int32_t d32 = d;
    for (idx_t i = 0; i < n; i++) {
        char* p = &buf[size_t(i) * row];
        std::memcpy(p, &d32, 4);
        std::memcpy(p + 4, x + size_t(i) * d, size_t(d) * esize);
    }
    write_file_atomic(path, buf);
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
            s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Value of `'key': VALUE` in an .npy header dict, up to the next top-level
/// comma or closing brace; empty if the key is absent.
std::string npy_header_value(const std::string& h, const std::string& key) {
    std::string pat = "'" + key + "'";
    size_t p = h.find(pat);
    if (p == std::string::npos) {
        return "";
    }
    p = h.find(':', p + pat.size());
    if (p == std::string::npos) {
        return "";
    }
    p++;
    while (p < h.size() && h[p] == ' ') {
        p++;
    }
    size_t e = p;
    int depth = 0;
    while (e < h.size()) {
        char c = h[e];
        if (c == '(') {
            depth++;
        } else if (c == ')') {
            depth--;
            if (depth == 0) {
                e++;
                break;
            }
        } else if ((c == ',' || c == '}') && depth == 0) {
            break;
        }
        e++;
    }
    return h.substr(p, e - p);
}

} // namespace

std::vector<float> fvecs_read(const std::string& path, int* d, idx_t* n) {
    return xvecs_read<float>(path, "fvecs", d, n);
}
std::vector<int> ivecs_read(const std::string& path, int* d, idx_t* n) {
    return xvecs_read<int>(path, "ivecs", d, n);
}
std::vector<uint8_t> bvecs_read(const std::string& path, int* d, idx_t* n) {
    return xvecs_read<uint8_t>(path, "bvecs", d, n);
}

void fvecs_write(const std::string& path, const float* x, int d, idx_t n) {
    xvecs_write(path, "fvecs", x, d, n);
}
void ivecs_write(const std::string& path, const int* x, int d, idx_t n) {
    xvecs_write(path, "ivecs", x, d, n);
}
void bvecs_write(const std::string& path, const uint8_t* x, int d, idx_t n) {
    xvecs_write(path, "bvecs", x, d, n);
}

std::vector<float> npy_read(const std::string& path, int* d_out, idx_t* n_out) {
    std::string buf = read_file(path);
    auto bad = [&](const std::string& what) {
        return std::runtime_error("malformed .npy file " + path + ": " + what);
    };
    if (buf.size() < 10 || std::memcmp(buf.data(), "\x93NUMPY", 6) != 0) {
        throw bad(buf.size() < 10 ? "too short for the .npy magic and header"
                                  : "bad magic (not an .npy file)");
    }
    unsigned major = (unsigned char)buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (unsigned char)buf[8] | ((unsigned char)buf[9] << 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (buf.size() < 12) {
            throw bad("truncated header");
        }
        hlen = size_t((unsigned char)buf[8]) |
                (size_t((unsigned char)buf[9]) << 8) |
                (size_t((unsigned char)buf[10]) << 16) |
                (size_t((unsigned char)buf[11]) << 24);
        hstart = 12;
    } else {
        throw bad("unsupported format version " + std::to_string(major));
    }
    if (hstart + hlen > buf.size()) {
        throw bad("truncated header");
    }
    std::string h = buf.substr(hstart, hlen);
    std::string descr = npy_header_value(h, "descr");
    std::string fortran = npy_header_value(h, "fortran_order");
    std::string shape = npy_header_value(h, "shape");
    if (descr.empty() || fortran.empty() || shape.empty()) {
        throw bad("header lacks descr, fortran_order or shape: " + h);
    }
    if (descr != "'<f4'" && descr != "'=f4'") {
        throw bad("dtype " + descr + " is not supported (need float32 '<f4')");
    }
    if (fortran != "False") {
        throw bad("Fortran order is not supported (need C order)");
    }
    // shape: "(a,)" or "(a, b)" or "()"
    if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') {
        throw bad("cannot parse shape " + shape);
    }
    std::vector<long long> dims;
    {
        std::string s = shape.substr(1, shape.size() - 2);
        size_t p = 0;
        while (p < s.size()) {
            while (p < s.size() && (s[p] == ' ' || s[p] == ',')) {
                p++;
            }
            if (p >= s.size()) {
                break;
            }
            size_t q = p;
            while (q < s.size() && s[q] >= '0' && s[q] <= '9') {
                q++;
            }
            if (q == p || q - p > 15) {
                throw bad("cannot parse shape " + shape);
            }
            dims.push_back(std::stoll(s.substr(p, q - p)));
            p = q;
        }
    }
    long long n, d;
    if (dims.size() == 1) {
        n = 1;
        d = dims[0];
    } else if (dims.size() == 2) {
        n = dims[0];
        d = dims[1];
    } else {
        throw bad("rank " + std::to_string(dims.size()) +
                  " array (need 1-D or 2-D), shape " + shape);
    }
    if (d <= 0 || d > (1 << 24) || n < 0) {
        throw bad("unsupported shape " + shape);
    }
    // n * d * 4 bytes must be representable: otherwise the product wraps
    // and a shape such as (2^40, 2^24) would match an empty data section
    // and return n and d that promise more floats than were read.
    if (size_t(n) > std::numeric_limits<size_t>::max() / 4 / size_t(d)) {
        throw bad("shape " + shape + " is too large for this platform");
    }
    size_t data_start = hstart + hlen;
    size_t need = size_t(n) * size_t(d) * 4;
    size_t have = buf.size() - data_start;
    if (have != need) {
        throw bad(std::string(have < need ? "truncated" : "trailing bytes") +
                  ": shape " + shape + " needs " + std::to_string(need) +
                  " data bytes, the file has " + std::to_string(have));
    }
    std::vector<float> out(size_t(n) * size_t(d));
    if (need) {
        std::memcpy(out.data(), buf.data() + data_start, need);
    }
    *d_out = int(d);
    *n_out = idx_t(n);
    return out;
}

void npy_write(const std::string& path, const float* x, int d, idx_t n,
               bool one_d) {
    if (d <= 0 || n < 0 || (one_d && n != 1)) {
        throw std::invalid_argument("writing .npy file " + path +
                                    ": bad sizes");
    }
    std::string shape = one_d
            ? "(" + std::to_string(d) + ",)"
            : "(" + std::to_string(n) + ", " + std::to_string(d) + ")";
    std::string h =
            "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape +
            ", }";
    // Pad so that the data starts on a 64-byte boundary, ending in '\n'.
    size_t total = 10 + h.size() + 1;
    size_t pad = (64 - total % 64) % 64;
    h += std::string(pad, ' ') + "\n";
    std::string buf = "\x93NUMPY";
    buf += char(1);
    buf += char(0);
    buf += char(h.size() & 0xff);
    buf += char((h.size() >> 8) & 0xff);
    buf += h;
    size_t nbytes = size_t(n) * size_t(d) * 4;
    size_t off = buf.size();
    buf.resize(off + nbytes);
    if (nbytes) {
        std::memcpy(&buf[off], x, nbytes);
    }
    write_file_atomic(path, buf);
}

std::vector<float> read_float_vectors(const std::string& path, int* d,
                                      idx_t* n) {
    if (ends_with(path, ".fvecs")) {
        return fvecs_read(path, d, n);
    }
    if (ends_with(path, ".npy")) {
        return npy_read(path, d, n);
    }
    if (ends_with(path, ".bvecs")) {
        std::vector<uint8_t> b = bvecs_read(path, d, n);
        return std::vector<float>(b.begin(), b.end());
    }
    throw std::runtime_error("unknown vector file type (need .fvecs, .npy or "
                             ".bvecs): " +
                             path);
}

} // namespace data
} // namespace faiss_ehi
