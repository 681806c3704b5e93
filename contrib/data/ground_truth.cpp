/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/ground_truth.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <faiss/IndexFlat.h>

#include "contrib/data/file_util.h"

namespace faiss_ehi {
namespace data {

namespace {

constexpr char kMagic[8] = {'E', 'H', 'I', 'G', 'T', '0', '0', '1'};

/// A simple 64-bit hash over 8-byte words (multiply-rotate mixing).
struct Hasher {
    uint64_t h = 0x243F6A8885A308D3ULL;
    void word(uint64_t w) {
        h ^= w * 0x9E3779B97F4A7C15ULL;
        h = (h << 31) | (h >> 33);
        h *= 0xBF58476D1CE4E5B9ULL;
    }
    void bytes(const void* p, size_t n) {
        const unsigned char* c = static_cast<const unsigned char*>(p);
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            std::memcpy(&w, c + i, 8);
            word(w);
        }
        uint64_t tail = 0;
        if (n > i) {
            std::memcpy(&tail, c + i, n - i);
        }
        word(tail ^ (uint64_t(n - i) << 56));
    }
    uint64_t final() const {
        uint64_t z = h;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
};

/// Header of a cache file, followed by labels, distances and a checksum.
struct CacheHeader {
    char magic[8];
    int64_t d, nb, nq, k, metric;
    uint64_t data_hash;
};

uint64_t payload_checksum(const GroundTruth& gt) {
    Hasher h;
    h.bytes(gt.labels.data(), gt.labels.size() * sizeof(idx_t));
    h.bytes(gt.distances.data(), gt.distances.size() * sizeof(float));
    return h.final();
}

/// Read and check a cache file; false on any problem.
bool try_read_cache(const std::string& path, const CacheHeader& want,
                    GroundTruth* gt) {
    if (!file_exists(path)) {
        return false;
    }
    std::string buf;
    try {
        buf = read_file(path);
    } catch (const std::exception&) {
        return false;
    }
    size_t nlab = size_t(want.nq) * size_t(want.k);
    size_t need = sizeof(CacheHeader) + nlab * sizeof(idx_t) +
            nlab * sizeof(float) + sizeof(uint64_t);
    if (buf.size() != need) {
        return false;
    }
    CacheHeader h;
    std::memcpy(&h, buf.data(), sizeof(h));
    if (std::memcmp(h.magic, want.magic, 8) != 0 || h.d != want.d ||
        h.nb != want.nb || h.nq != want.nq || h.k != want.k ||
        h.metric != want.metric || h.data_hash != want.data_hash) {
        return false;
    }
    GroundTruth g;
    g.k = int(want.k);
    g.nq = idx_t(want.nq);
    g.labels.resize(nlab);
    g.distances.resize(nlab);
    const char* p = buf.data() + sizeof(h);
    std::memcpy(g.labels.data(), p, nlab * sizeof(idx_t));
    p += nlab * sizeof(idx_t);
    std::memcpy(g.distances.data(), p, nlab * sizeof(float));
    p += nlab * sizeof(float);
    uint64_t sum;
    std::memcpy(&sum, p, sizeof(sum));
    if (sum != payload_checksum(g)) {
        return false;
    }
    for (idx_t l : g.labels) {
        if (l < -1 || l >= idx_t(want.nb)) {
            return false;
        }
    }
    *gt = std::move(g);
    return true;
}

std::string serialize(const CacheHeader& h, const GroundTruth& gt) {
    std::string buf(reinterpret_cast<const char*>(&h), sizeof(h));
    buf.append(reinterpret_cast<const char*>(gt.labels.data()),
               gt.labels.size() * sizeof(idx_t));
    buf.append(reinterpret_cast<const char*>(gt.distances.data()),
               gt.distances.size() * sizeof(float));
    uint64_t sum = payload_checksum(gt);
    buf.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
    return buf;
}

} // namespace

std::vector<idx_t> exact_knn(int d, idx_t nb, const float* xb, idx_t nq,
                             const float* xq, int k, faiss::MetricType metric,
                             std::vector<float>* distances) {
    if (d <= 0 || nb < 0 || nq < 0 || k <= 0) {
        throw std::invalid_argument("exact_knn: bad sizes");
    }
    if (metric != faiss::METRIC_L2 && metric != faiss::METRIC_INNER_PRODUCT) {
        throw std::invalid_argument(
                "exact_knn: metric must be L2 or inner product");
    }
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
    if (distances) {
        *distances = std::move(dis);
    }
    return labels;
}

std::string default_gt_cache_dir() {
    const char* env = getenv("FAISS_EHI_GT_CACHE");
    if (env && *env) {
        return env;
    }
    return faiss_ehi_cache_dir() + "/gt";
}

uint64_t hash_dataset(int d, idx_t nb, const float* xb, idx_t nq,
                      const float* xq) {
    Hasher h;
    h.word(uint64_t(d));
    h.word(uint64_t(nb));
    h.word(uint64_t(nq));
    h.bytes(xb, size_t(nb) * size_t(d) * sizeof(float));
    h.bytes(xq, size_t(nq) * size_t(d) * sizeof(float));
    return h.final();
}

std::string gt_cache_path(const std::string& cache_dir, const std::string& name,
                          faiss::MetricType metric, int k, uint64_t data_hash) {
    std::string clean;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        clean += ok ? c : '_';
    }
    if (clean.empty()) {
        clean = "data";
    }
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)data_hash);
    const char* m = metric == faiss::METRIC_INNER_PRODUCT ? "IP" : "L2";
    return cache_dir + "/" + clean + "-" + m + "-k" + std::to_string(k) + "-" +
            hex + ".gt";
}

GroundTruth compute_ground_truth(const std::string& name, int d, idx_t nb,
                                 const float* xb, idx_t nq, const float* xq,
                                 int k, faiss::MetricType metric,
                                 const std::string& cache_dir) {
    if (metric != faiss::METRIC_L2 && metric != faiss::METRIC_INNER_PRODUCT) {
        throw std::invalid_argument(
                "compute_ground_truth: metric must be L2 or inner product");
    }
    if (d <= 0 || nb <= 0 || nq < 0 || k <= 0) {
        throw std::invalid_argument("compute_ground_truth: bad sizes");
    }
    CacheHeader h;
    std::memset(&h, 0, sizeof(h));
    std::memcpy(h.magic, kMagic, 8);
    h.d = d;
    h.nb = nb;
    h.nq = nq;
    h.k = k;
    h.metric = int64_t(metric);
    std::string path;
    if (!cache_dir.empty()) {
        h.data_hash = hash_dataset(d, nb, xb, nq, xq);
        path = gt_cache_path(cache_dir, name, metric, k, h.data_hash);
        GroundTruth gt;
        if (try_read_cache(path, h, &gt)) {
            gt.from_cache = true;
            gt.cache_path = path;
            return gt;
        }
    }
    GroundTruth gt;
    gt.k = k;
    gt.nq = nq;
    gt.labels = exact_knn(d, nb, xb, nq, xq, k, metric, &gt.distances);
    if (!path.empty()) {
        try {
            write_file_atomic(path, serialize(h, gt));
            gt.cache_path = path;
        } catch (const std::exception& e) {
            fprintf(stderr,
                    "warning: could not write the ground-truth cache "
                    "%s: %s\n",
                    path.c_str(), e.what());
        }
    }
    return gt;
}

GroundTruth compute_ground_truth(const Dataset& ds, int k,
                                 const std::string& cache_dir) {
    return compute_ground_truth(ds.name, ds.d, ds.nb, ds.xb.data(), ds.nq,
                                ds.xq.data(), k, ds.metric, cache_dir);
}

} // namespace data
} // namespace faiss_ehi
