/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Shared helpers of the test suite: seeded random data, brute-force
 * references, trained indexes built with fixed seeds and scratch
 * directories.
 */
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <faiss_ehi/faiss_ehi.h>

namespace ehi_test {

using idx_t = faiss::Index::idx_t;

/// Small deterministic generator (splitmix64), independent of the standard
/// library's distribution implementations.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// uniform in (0, 1)
    double uniform() {
        return ((next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    }
    double normal() {
        double u1 = uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) *
                std::cos(6.283185307179586 * u2);
    }
    /// uniform integer in [0, n)
    uint64_t below(uint64_t n) {
        return next() % n;
    }
};

/// n x d standard Gaussian vectors.
inline std::vector<float> gaussian_data(size_t n, int d, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> x(n * d);
    for (auto& v : x) {
        v = float(rng.normal());
    }
    return x;
}

/** n x d vectors from a Gaussian mixture: ncenters centres N(0, 1) in every
 * coordinate, points = centre + noise * N(0, 1). The same `seed` gives the
 * same centres, so database and queries can share them with different
 * `point_seed`s. */
inline std::vector<float> clustered_data(size_t n, int d, int ncenters,
                                         uint64_t seed, uint64_t point_seed,
                                         float noise = 0.3f) {
    Rng crng(seed);
    std::vector<float> centres(size_t(ncenters) * d);
    for (auto& v : centres) {
        v = float(crng.normal());
    }
    Rng rng(point_seed * 7919 + 17);
    std::vector<float> x(n * d);
    for (size_t i = 0; i < n; i++) {
        size_t c = rng.below(ncenters);
        for (int j = 0; j < d; j++) {
            x[i * d + j] = centres[c * d + j] + noise * float(rng.normal());
        }
    }
    return x;
}

/// Normalise each row to unit L2 norm.
inline void normalize_rows(std::vector<float>& x, int d) {
    size_t n = x.size() / d;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) {
            s += double(x[i * d + j]) * x[i * d + j];
        }
        float inv = float(1.0 / std::sqrt(std::max(s, 1e-30)));
        for (int j = 0; j < d; j++) {
            x[i * d + j] *= inv;
        }
    }
}

/// Search results of one call.
struct Result {
    idx_t nq = 0, k = 0;
    std::vector<float> D;
    std::vector<idx_t> I;
    Result() = default;
    Result(idx_t nq, idx_t k) : nq(nq), k(k), D(nq * k), I(nq * k) {}
};

inline Result search(const faiss::Index& index, const std::vector<float>& xq,
                     idx_t k, const faiss::SearchParameters* params = nullptr) {
    idx_t nq = xq.size() / index.d;
    Result r(nq, k);
    index.search(nq, xq.data(), k, r.D.data(), r.I.data(), params);
    return r;
}

/// Bit-identical results (memcmp of D and I).
inline bool bit_identical(const Result& a, const Result& b) {
    return a.nq == b.nq && a.k == b.k && a.D.size() == b.D.size() &&
            a.I.size() == b.I.size() &&
            std::memcmp(a.D.data(), b.D.data(), a.D.size() * sizeof(float)) ==
            0 &&
            std::memcmp(a.I.data(), b.I.data(), a.I.size() * sizeof(idx_t)) ==
            0;
}

/** The same results to float rounding: distances within 1e-4 relative,
 * and at most 1% of the labels different (equal distances may come back
 * in another order). For kernels that compute distances differently. */
inline void expect_same_results(const Result& a, const Result& b,
                                const std::string& what) {
    ASSERT_EQ(a.I.size(), b.I.size());
    size_t diff = 0;
    for (size_t i = 0; i < a.I.size(); i++) {
        EXPECT_NEAR(a.D[i], b.D[i], 1e-4f * std::max(1.0f, std::fabs(b.D[i])))
                << what << " entry " << i;
        diff += a.I[i] != b.I[i];
    }
    EXPECT_LE(diff, a.I.size() / 100) << what << ": labels differ";
}

#define EXPECT_BIT_IDENTICAL(a, b)                                             \
    do {                                                                       \
        const auto& ra_ = (a);                                                 \
        const auto& rb_ = (b);                                                 \
        ASSERT_EQ(ra_.I.size(), rb_.I.size());                                 \
        EXPECT_TRUE(ehi_test::bit_identical(ra_, rb_))                         \
                << "first label difference at "                                \
                << ehi_test::first_difference(ra_, rb_);                       \
    } while (0)

inline std::string first_difference(const Result& a, const Result& b) {
    for (size_t i = 0; i < std::min(a.I.size(), b.I.size()); i++) {
        if (a.I[i] != b.I[i] ||
            std::memcmp(&a.D[i], &b.D[i], sizeof(float)) != 0) {
            return "entry " + std::to_string(i) + ": (" +
                    std::to_string(a.I[i]) + ", " + std::to_string(a.D[i]) +
                    ") vs (" + std::to_string(b.I[i]) + ", " +
                    std::to_string(b.D[i]) + ")";
        }
    }
    return "none";
}

/// Brute-force results with faiss::IndexFlat (L2 or inner product).
inline Result brute_force(int d, faiss::MetricType metric,
                          const std::vector<float>& xb,
                          const std::vector<float>& xq, idx_t k) {
    faiss::IndexFlat flat(d, metric);
    flat.add(xb.size() / d, xb.data());
    return search(flat, xq, k);
}

/** recall@k: fraction of the true k nearest neighbours (gt, nq x k, ids
 * 0..nb-1 or mapped by `ids`) found in the result's k labels. */
inline double recall_at_k(const Result& res, const Result& gt, idx_t k) {
    size_t found = 0;
    for (idx_t q = 0; q < res.nq; q++) {
        std::set<idx_t> truth(gt.I.begin() + q * gt.k,
                              gt.I.begin() + q * gt.k + k);
        for (idx_t j = 0; j < k && j < res.k; j++) {
            if (truth.count(res.I[q * res.k + j])) {
                found++;
            }
        }
    }
    return double(found) / double(res.nq * k);
}

/// Registers the built-in k-means trainer for the lifetime of the object and
/// restores the previous trainer afterwards.
struct KMeansTrainerScope {
    std::shared_ptr<faiss_ehi::TreeTrainer> previous;
    explicit KMeansTrainerScope(int niter = 10) {
        previous = faiss_ehi::get_tree_trainer();
        auto t = std::make_shared<faiss_ehi::KMeansTreeTrainer>();
        t->niter = niter;
        t->seed = 1234;
        faiss_ehi::set_tree_trainer(t);
    }
    ~KMeansTrainerScope() {
        faiss_ehi::set_tree_trainer(previous);
    }
};

/// Unregisters every trainer for the lifetime of the object.
struct NoTrainerScope {
    std::shared_ptr<faiss_ehi::TreeTrainer> previous;
    NoTrainerScope() {
        previous = faiss_ehi::get_tree_trainer();
        faiss_ehi::set_tree_trainer(nullptr);
    }
    ~NoTrainerScope() {
        faiss_ehi::set_tree_trainer(previous);
    }
};

/** An IndexEHITree whose tree has seeded random weights (init_random) and
 * whose leaf representatives are computed from xt: no trainer involved.
 * Routing is then unrelated to geometry, which is fine for exactness tests
 * (beam = all leaves, API equivalences). */
inline std::unique_ptr<faiss_ehi::IndexEHITree> random_tree_index(
        int d, int B, int H, faiss::MetricType metric,
        const std::vector<float>& xt, uint64_t seed,
        faiss_ehi::NodeForm form = faiss_ehi::NodeForm::PER_NODE) {
    auto* q = new faiss_ehi::EHITreeQuantizer(d, B, H, metric, form);
    q->tree.init_random(seed);
    q->compute_representatives(xt.size() / d, xt.data());
    q->update_is_trained();
    std::unique_ptr<faiss_ehi::IndexEHITree> index(
            new faiss_ehi::IndexEHITree(q, metric));
    if (!index->is_trained) {
        // The tree has parameters: train() must not need a trainer.
        index->train(xt.size() / d, xt.data());
    }
    return index;
}

/// An IndexEHITree trained by the k-means tree trainer (fixed seed).
inline std::unique_ptr<faiss_ehi::IndexEHITree> kmeans_tree_index(
        int d, int B, int H, faiss::MetricType metric,
        const std::vector<float>& xt,
        faiss_ehi::NodeForm form = faiss_ehi::NodeForm::PER_NODE) {
    KMeansTrainerScope scope;
    std::unique_ptr<faiss_ehi::IndexEHITree> index(
            new faiss_ehi::IndexEHITree(d, B, H, metric, form));
    index->train(xt.size() / d, xt.data());
    return index;
}

/** A new IndexEHITree over a copy of `src`'s tree and representatives (no
 * vectors). */
inline std::unique_ptr<faiss_ehi::IndexEHITree> same_tree_index(
        const faiss_ehi::IndexEHITree& src) {
    auto* q = new faiss_ehi::EHITreeQuantizer(*src.tree_quantizer());
    std::unique_ptr<faiss_ehi::IndexEHITree> index(
            new faiss_ehi::IndexEHITree(q, src.metric_type));
    index->d2l = src.d2l;
    index->assign_rule = src.assign_rule;
    index->nprobe = src.nprobe;
    return index;
}

/// Sequence of ids [start, start + step * n).
inline std::vector<idx_t> make_ids(idx_t n, idx_t start, idx_t step) {
    std::vector<idx_t> ids(n);
    for (idx_t i = 0; i < n; i++) {
        ids[i] = start + i * step;
    }
    return ids;
}

/** A fresh directory with a unique name in the system's temporary directory
 * ($TMPDIR, else /tmp), removed with everything in it when the object goes
 * out of scope. Every test that writes files writes them in one of these, so
 * that concurrent runs do not collide and nothing is left behind. */
struct TempDir {
    std::string path; ///< the directory, without a trailing slash

    explicit TempDir(const std::string& prefix = "ehi_test") {
        std::string tmpl =
                (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX"))
                        .string();
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!mkdtemp(buf.data())) {
            throw std::runtime_error("mkdtemp failed for " + tmpl);
        }
        path = buf.data();
    }
    ~TempDir() {
        std::error_code ec; // a destructor must not throw
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// The path of `name` inside the directory.
    std::string file(const std::string& name) const {
        return path + "/" + name;
    }

    /// The names of the entries in the directory, sorted.
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
            out.push_back(e.path().filename().string());
        }
        std::sort(out.begin(), out.end());
        return out;
    }
};

/// Runs f and returns the FaissException's message, or fails the test.
template <class F>
std::string faiss_error(F&& f) {
    try {
        f();
    } catch (const faiss::FaissException& e) {
        return std::string(e.what());
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected faiss::FaissException, got another "
                      << "std::exception: " << e.what();
        return std::string("<wrong exception type>");
    }
    ADD_FAILURE() << "expected faiss::FaissException, nothing was thrown";
    return std::string();
}

/// Runs f and expects a FaissException whose message contains `what`.
template <class F>
void expect_error(F&& f, const std::string& what) {
    std::string msg = faiss_error(std::forward<F>(f));
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
}

inline std::string lower(std::string s) {
    for (auto& c : s) {
        c = char(std::tolower((unsigned char)c));
    }
    return s;
}

inline bool contains_any(const std::string& msg,
                         std::initializer_list<const char*> words) {
    std::string l = lower(msg);
    for (auto w : words) {
        if (l.find(lower(w)) != std::string::npos) {
            return true;
        }
    }
    return false;
}

} // namespace ehi_test
