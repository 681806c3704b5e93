/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * libFuzzer target: the factory-key parser, faiss_ehi::index_factory(d, key)
 * with d = 8 and the key from the input bytes (the first byte picks the
 * metric). A malformed key must throw.
 *
 * Keys that are valid but ask for many lists (an EHI tree of up to
 * kMaxLeaves = 2^24 leaves, an IVF of millions of lists) spend up to seconds
 * and gigabytes allocating, which would slow the run a hundredfold without
 * reaching new parser code: such keys are skipped (see too_large). EHI
 * tokens over kMaxLeaves, which the parser must reject, are kept.
 */
#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

#include <faiss/Index.h>

#include <faiss_ehi/index_factory.h>

namespace {

/// Lists above which a valid key is skipped.
constexpr long long kListBudget = 1 << 10;

/** Whether a comma-separated token of `key` asks for more than
 * kListBudget lists while staying valid: for an EHI token the product of
 * its numbers (B^H for EHI<B>x<H>) up to kMaxLeaves, for any other token
 * one number over the budget (Faiss checks no upper bound). */
bool too_large(const std::string& key) {
    size_t start = 0;
    while (start <= key.size()) {
        size_t end = key.find(',', start);
        if (end == std::string::npos) {
            end = key.size();
        }
        std::string tok = key.substr(start, end - start);
        bool ehi = tok.compare(0, 3, "EHI") == 0;
        long long product = 1, value = -1;
        auto close_number = [&]() {
            if (value < 0) {
                return false;
            }
            if (!ehi && value > kListBudget) {
                return true;
            }
            // saturate: only whether it exceeds kMaxLeaves matters
            product = std::min<long long>(product * std::max(value, 1LL),
                                          faiss_ehi::kMaxLeaves + 1);
            value = -1;
            return false;
        };
        for (char c : tok) {
            if (c >= '0' && c <= '9') {
                value = std::min<long long>((value < 0 ? 0 : value) * 10 +
                                                    (c - '0'),
                                            faiss_ehi::kMaxLeaves + 1);
            } else if (close_number()) {
                return true;
            }
        }
        if (close_number()) {
            return true;
        }
        if (ehi && product > kListBudget && product <= faiss_ehi::kMaxLeaves) {
            return true;
        }
        start = end + 1;
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0 || size > 256) {
        return 0;
    }
    faiss::MetricType metric =
            data[0] & 1 ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
    std::string key(reinterpret_cast<const char*>(data + 1), size - 1);
    if (too_large(key)) {
        return 0;
    }
    try {
        std::unique_ptr<faiss::Index> index(
                faiss_ehi::index_factory(8, key.c_str(), metric));
    } catch (const std::exception&) { // FaissException included
    }
    return 0;
}
