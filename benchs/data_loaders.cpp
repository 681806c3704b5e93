/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "data_loaders.h"

#include <dlfcn.h>
#include <unistd.h>
#include <omp.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <unordered_set>

#include <faiss/IndexFlat.h>

namespace ehi_bench {

namespace {

bool file_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

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

/// Read a whole binary file into memory.
std::vector<char> slurp(const std::string& path) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "rb"), fclose);
    if (!f) {
        throw std::runtime_error("cannot open " + path + ": " +
                                 std::strerror(errno));
    }
    std::vector<char> buf;
    char tmp[1 << 16];
    size_t got;
    while ((got = fread(tmp, 1, sizeof(tmp), f.get())) > 0) {
        buf.insert(buf.end(), tmp, tmp + got);
    }
    if (ferror(f.get())) {
        throw std::runtime_error("read error on " + path);
    }
    return buf;
}

/// Shared body of fvecs_read / ivecs_read: 4-byte elements.
template <typename T>
std::vector<T> xvecs_read(const std::string& path, int* d_out, idx_t* n_out) {
    std::vector<char> buf = slurp(path);
    if (buf.size() < 4) {
        throw std::runtime_error("empty or truncated vecs file " + path);
    }
    int32_t d;
    std::memcpy(&d, buf.data(), 4);
    if (d <= 0 || d > (1 << 20)) {
        throw std::runtime_error("bad dimension " + std::to_string(d) +
                                 " in " + path);
    }
    size_t row = 4 + size_t(d) * 4;
    if (buf.size() % row != 0) {
        throw std::runtime_error("size of " + path +
                                 " is not a multiple of the row size");
    }
    size_t n = buf.size() / row;
    std::vector<T> out(n * size_t(d));
    for (size_t i = 0; i < n; i++) {
        int32_t di;
        std::memcpy(&di, buf.data() + i * row, 4);
        if (di != d) {
            throw std::runtime_error("inconsistent dimension in row " +
                                     std::to_string(i) + " of " + path);
        }
        std::memcpy(out.data() + i * size_t(d), buf.data() + i * row + 4,
                    size_t(d) * 4);
    }
    *d_out = d;
    *n_out = idx_t(n);
    return out;
}

} // namespace

void Dataset::truncate_queries(idx_t n) {
    if (n <= 0 || n >= nq) {
        return;
    }
    nq = n;
    xq.resize(size_t(nq) * size_t(d));
}

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
        throw std::runtime_error("not an IDX3 unsigned-byte image file (magic " +
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

std::vector<float> fvecs_read(const std::string& path, int* d, idx_t* n) {
    return xvecs_read<float>(path, d, n);
}

std::vector<int> ivecs_read(const std::string& path, int* d, idx_t* n) {
    return xvecs_read<int>(path, d, n);
}

std::vector<float> random_gaussian(idx_t n, int d, uint64_t seed) {
    std::vector<float> x(size_t(n) * size_t(d));
    // One generator per block of rows so that the result does not depend on
    // the thread count.
    const idx_t block = 1024;
    idx_t nblocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static)
    for (idx_t b = 0; b < nblocks; b++) {
        std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + uint64_t(b));
        std::normal_distribution<float> g(0.0f, 1.0f);
        idx_t i1 = std::min(n, (b + 1) * block);
        for (size_t j = size_t(b * block) * d; j < size_t(i1) * d; j++) {
            x[j] = g(rng);
        }
    }
    return x;
}

Dataset make_synthetic(int d, idx_t nb, idx_t nq, int nclusters,
                       float spread, uint64_t seed) {
    if (d <= 0 || nb <= 0 || nq < 0) {
        throw std::invalid_argument("make_synthetic: bad sizes");
    }
    Dataset ds;
    ds.name = "synthetic";
    ds.d = d;
    ds.nb = nb;
    ds.nq = nq;
    ds.metric = faiss::METRIC_L2;
    if (nclusters <= 0) {
        ds.xb = random_gaussian(nb, d, seed);
        ds.xq = random_gaussian(nq, d, seed + 1);
        return ds;
    }
    std::vector<float> centres = random_gaussian(nclusters, d, seed);
    auto draw = [&](idx_t n, uint64_t s) {
        std::vector<float> x = random_gaussian(n, d, s);
        std::mt19937_64 rng(s ^ 0xC0FFEEULL);
        std::uniform_int_distribution<int> pick(0, nclusters - 1);
        for (idx_t i = 0; i < n; i++) {
            const float* c = centres.data() + size_t(pick(rng)) * d;
            float* xi = x.data() + size_t(i) * d;
            for (int j = 0; j < d; j++) {
                xi[j] = c[j] + spread * xi[j];
            }
        }
        return x;
    };
    ds.xb = draw(nb, seed + 1);
    ds.xq = draw(nq, seed + 2);
    return ds;
}

std::vector<idx_t> exact_knn(int d, idx_t nb, const float* xb, idx_t nq,
                             const float* xq, int k,
                             faiss::MetricType metric) {
    faiss::IndexFlat index(d, metric);
    index.add(nb, xb);
    std::vector<idx_t> labels(size_t(nq) * k);
    std::vector<float> dis(size_t(nq) * k);
    // Batches keep the distance-matrix buffers bounded.
    const idx_t bs = 4096;
    for (idx_t i0 = 0; i0 < nq; i0 += bs) {
        idx_t i1 = std::min(nq, i0 + bs);
        index.search(i1 - i0, xq + size_t(i0) * d, k,
                     dis.data() + size_t(i0) * k,
                     labels.data() + size_t(i0) * k);
    }
    return labels;
}

double recall_at_k(idx_t nq, const idx_t* gt, int k_gt, const idx_t* res,
                   int k_res, int k) {
    if (k > k_gt || k > k_res || k <= 0) {
        throw std::invalid_argument("recall_at_k: k out of range");
    }
    if (nq <= 0) {
        return 0;
    }
    size_t hits = 0;
#pragma omp parallel for reduction(+ : hits)
    for (idx_t q = 0; q < nq; q++) {
        const idx_t* g = gt + size_t(q) * k_gt;
        const idx_t* r = res + size_t(q) * k_res;
        for (int i = 0; i < k; i++) {
            if (r[i] < 0) {
                continue;
            }
            for (int j = 0; j < k; j++) {
                if (r[i] == g[j]) {
                    hits++;
                    break;
                }
            }
        }
    }
    return double(hits) / (double(nq) * k);
}

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
