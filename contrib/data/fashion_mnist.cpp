/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "contrib/data/file_util.h"

namespace faiss_ehi {
namespace data {

namespace {

/// gzread-based reader: zlib reads plain files transparently too.
struct GzFile {
    gzFile f = nullptr;
    std::string path;

    explicit GzFile(const std::string& p) : path(p) {
        f = gzopen(p.c_str(), "rb");
        if (!f) {
            throw std::runtime_error("cannot open " + p);
        }
        gzbuffer(f, 1 << 20);
    }
    ~GzFile() {
        if (f) {
            gzclose(f);
        }
    }
    GzFile(const GzFile&) = delete;
    GzFile& operator=(const GzFile&) = delete;

    void read_exact(void* dst, size_t nbytes) {
        char* p = static_cast<char*>(dst);
        while (nbytes > 0) {
            unsigned chunk =
                    unsigned(std::min<size_t>(nbytes, size_t(1) << 30));
            int got = gzread(f, p, chunk);
            if (got <= 0) {
                int err = 0;
                const char* msg = gzerror(f, &err);
                throw std::runtime_error(
                        "truncated or unreadable file " + path +
                        (err != Z_OK && msg ? std::string(": ") + msg : ""));
            }
            p += got;
            nbytes -= size_t(got);
        }
    }

    uint32_t read_be32() {
        unsigned char b[4];
        read_exact(b, 4);
        return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) |
                (uint32_t(b[2]) << 8) | uint32_t(b[3]);
    }
};

std::string missing_fmnist_message(const std::string& what) {
    return "Fashion-MNIST file not found: " + what +
            " (install the Debian package: apt-get install "
            "dataset-fashion-mnist)";
}

/// Resolve `dir/base` or `dir/base.gz`; empty string if neither exists.
std::string find_plain_or_gz(const std::string& dir, const std::string& base) {
    std::string p = dir + "/" + base;
    if (file_exists(p)) {
        return p;
    }
    if (file_exists(p + ".gz")) {
        return p + ".gz";
    }
    return "";
}

} // namespace

std::vector<float> read_idx_images(const std::string& path_in, idx_t* n_out,
                                   int* rows_out, int* cols_out) {
    std::string path = path_in;
    if (!file_exists(path)) {
        if (file_exists(path + ".gz")) {
            path += ".gz";
        } else {
            throw std::runtime_error("IDX file not found: " + path_in);
        }
    }
    GzFile f(path);
    uint32_t magic = f.read_be32();
    if (magic != 0x00000803) {
        char m[16];
        snprintf(m, sizeof(m), "0x%08x", magic);
        throw std::runtime_error(
                "not an IDX3 unsigned-byte image file (magic " +
                std::string(m) + "): " + path);
    }
    uint32_t n = f.read_be32();
    uint32_t rows = f.read_be32();
    uint32_t cols = f.read_be32();
    if (n == 0 || rows == 0 || cols == 0 || rows > 4096 || cols > 4096 ||
        n > (1u << 28)) {
        throw std::runtime_error("implausible IDX header in " + path);
    }
    size_t dim = size_t(rows) * cols;
    std::vector<unsigned char> bytes(size_t(n) * dim);
    f.read_exact(bytes.data(), bytes.size());
    std::vector<float> out(bytes.size());
    for (size_t i = 0; i < bytes.size(); i++) {
        out[i] = float(bytes[i]) / 255.0f;
    }
    *n_out = idx_t(n);
    *rows_out = int(rows);
    *cols_out = int(cols);
    return out;
}

Dataset load_fashion_mnist(const std::string& dir) {
    std::string train = find_plain_or_gz(dir, "train-images-idx3-ubyte");
    std::string test = find_plain_or_gz(dir, "t10k-images-idx3-ubyte");
    if (train.empty()) {
        throw std::runtime_error(
                missing_fmnist_message(dir + "/train-images-idx3-ubyte[.gz]"));
    }
    if (test.empty()) {
        throw std::runtime_error(
                missing_fmnist_message(dir + "/t10k-images-idx3-ubyte[.gz]"));
    }
    Dataset ds;
    ds.name = "fashion-mnist";
    int r1, c1, r2, c2;
    ds.xb = read_idx_images(train, &ds.nb, &r1, &c1);
    ds.xq = read_idx_images(test, &ds.nq, &r2, &c2);
    if (r1 != r2 || c1 != c2) {
        throw std::runtime_error("train and test images differ in size in " +
                                 dir);
    }
    ds.d = r1 * c1;
    ds.metric = faiss::METRIC_L2;
    return ds;
}

} // namespace data
} // namespace faiss_ehi
