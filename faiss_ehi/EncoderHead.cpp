/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/EncoderHead.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/EHITree.h>
#include <faiss_ehi/blas.h>

namespace faiss_ehi {

namespace {

/// Rows per GEMM block: bounds the scratch memory of large batches.
constexpr idx_t kBlock = 4096;

void check_size(const std::vector<float>& v, size_t want, const char* name) {
    FAISS_THROW_IF_NOT_FMT(v.size() == want,
                           "EncoderHead: %s has %zd entries, expected %zd",
                           name, v.size(), want);
}

} // namespace

EncoderHead::EncoderHead() : faiss::VectorTransform(0, 0) {
    is_trained = false;
}

EncoderHead::EncoderHead(int d_in, int d_out, int hidden, bool normalize)
        : faiss::VectorTransform(d_in, d_out), hidden(hidden),
          normalize(normalize) {
    FAISS_THROW_IF_NOT_FMT(d_in >= 1 && d_out >= 1 && hidden >= 0,
                           "EncoderHead: bad sizes d_in=%d d_out=%d "
                           "hidden=%d",
                           d_in, d_out, hidden);
    set_identity();
}

void EncoderHead::set_identity() {
    FAISS_THROW_IF_NOT_FMT(d_in >= 1 && d_out >= 1 && hidden >= 0,
                           "EncoderHead::set_identity: bad sizes d_in=%d "
                           "d_out=%d hidden=%d",
                           d_in, d_out, hidden);
    A.assign(size_t(d_out) * d_in, 0.0f);
    for (int i = 0; i < std::min(d_in, d_out); i++) {
        A[size_t(i) * d_in + i] = 1.0f;
    }
    b.assign(d_out, 0.0f);
    W1.assign(size_t(hidden) * d_in, 0.0f);
    c1.assign(hidden, 0.0f);
    W2.assign(size_t(d_out) * hidden, 0.0f);
    c2.assign(hidden > 0 ? d_out : 0, 0.0f);
    is_trained = true;
}

void EncoderHead::check_sizes() const {
    FAISS_THROW_IF_NOT_FMT(d_in >= 1 && d_out >= 1 && hidden >= 0,
                           "EncoderHead: bad sizes d_in=%d d_out=%d "
                           "hidden=%d",
                           d_in, d_out, hidden);
    check_size(A, size_t(d_out) * d_in, "A (d_out x d_in)");
    check_size(b, d_out, "b (d_out)");
    check_size(W1, size_t(hidden) * d_in, "W1 (hidden x d_in)");
    check_size(c1, hidden, "c1 (hidden)");
    check_size(W2, size_t(d_out) * hidden, "W2 (d_out x hidden)");
    check_size(c2, hidden > 0 ? size_t(d_out) : 0,
               "c2 (d_out, empty without hidden layer)");
}

void EncoderHead::check_consistent() const {
    check_sizes();
    check_finite(A.size(), 1, A.data(), "EncoderHead parameters A");
    check_finite(b.size(), 1, b.data(), "EncoderHead parameters b");
    check_finite(W1.size(), 1, W1.data(), "EncoderHead parameters W1");
    check_finite(c1.size(), 1, c1.data(), "EncoderHead parameters c1");
    check_finite(W2.size(), 1, W2.data(), "EncoderHead parameters W2");
    check_finite(c2.size(), 1, c2.data(), "EncoderHead parameters c2");
}

void EncoderHead::train(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_MSG(
            is_trained,
            "EncoderHead::train: the encoder head is learned by the faiss_ehi "
            "trainer (LibTorch) together with the tree; copy its parameters "
            "into A, b, W1, c1, W2, c2 and set is_trained, or call "
            "set_identity() for a pass-through head");
}

void EncoderHead::apply_noalloc(idx_t n, const float* x, float* xt) const {
    FAISS_THROW_IF_NOT_MSG(is_trained,
                           "EncoderHead::apply: the head is not trained "
                           "(its parameters are not set)");
    FAISS_THROW_IF_NOT_FMT(n >= 0, "EncoderHead::apply: bad n=%" PRId64,
                           int64_t(n));
    check_sizes();
    if (n == 0) {
        return;
    }
    FAISS_THROW_IF_NOT_MSG(x && xt, "EncoderHead::apply: null pointer");
    check_finite(n, d_in, x, "EncoderHead input vectors");

    std::vector<float> hbuf, ybuf;
    for (idx_t i0 = 0; i0 < n; i0 += kBlock) {
        idx_t bn = std::min(kBlock, n - i0);
        const float* xb = x + size_t(i0) * d_in;
        float* yb = xt + size_t(i0) * d_out;
        // linear part: y = x A^T + b
        gemm_rowmajor_bt(bn, d_out, d_in, xb, A.data(), yb);
        for (idx_t i = 0; i < bn; i++) {
            float* y = yb + size_t(i) * d_out;
            for (int j = 0; j < d_out; j++) {
                y[j] += b[j];
            }
        }
        if (hidden > 0) {
            // h = ReLU(x W1^T + c1); y += h W2^T + c2
            hbuf.resize(size_t(bn) * hidden);
            ybuf.resize(size_t(bn) * d_out);
            gemm_rowmajor_bt(bn, hidden, d_in, xb, W1.data(), hbuf.data());
            for (idx_t i = 0; i < bn; i++) {
                float* h = hbuf.data() + size_t(i) * hidden;
                for (int j = 0; j < hidden; j++) {
                    h[j] = std::max(h[j] + c1[j], 0.0f);
                }
            }
            gemm_rowmajor_bt(bn, d_out, hidden, hbuf.data(), W2.data(),
                             ybuf.data());
            for (idx_t i = 0; i < bn; i++) {
                float* y = yb + size_t(i) * d_out;
                const float* r = ybuf.data() + size_t(i) * d_out;
                for (int j = 0; j < d_out; j++) {
                    y[j] += r[j] + c2[j];
                }
            }
        }
        if (normalize) {
            for (idx_t i = 0; i < bn; i++) {
                float* y = yb + size_t(i) * d_out;
                double s = 0;
                for (int j = 0; j < d_out; j++) {
                    s += double(y[j]) * y[j];
                }
                if (s > 0 && std::isfinite(s)) {
                    float inv = float(1.0 / std::sqrt(s));
                    for (int j = 0; j < d_out; j++) {
                        y[j] *= inv;
                    }
                }
            }
        }
        for (size_t k = 0; k < size_t(bn) * d_out; k++) {
            FAISS_THROW_IF_NOT_MSG(std::isfinite(yb[k]),
                                   "EncoderHead::apply: the output is not "
                                   "finite (overflow: input or parameters "
                                   "too large)");
        }
    }
}

void EncoderHead::reverse_transform(idx_t, const float*, float*) const {
    FAISS_THROW_MSG("EncoderHead::reverse_transform: the learned encoder head "
                    "is not invertible, so vectors cannot be reconstructed "
                    "in the input space (reconstruct from the inner index to "
                    "get encoded vectors, or keep the original vectors)");
}

void EncoderHead::check_identical(const faiss::VectorTransform& other) const {
    faiss::VectorTransform::check_identical(other);
    auto* o = dynamic_cast<const EncoderHead*>(&other);
    FAISS_THROW_IF_NOT_MSG(o,
                           "EncoderHead::check_identical: the other "
                           "transform is not an EncoderHead");
    FAISS_THROW_IF_NOT_MSG(o->hidden == hidden && o->normalize == normalize &&
                                   o->A == A && o->b == b && o->W1 == W1 &&
                                   o->c1 == c1 && o->W2 == W2 && o->c2 == c2,
                           "EncoderHead::check_identical: the heads differ");
}

} // namespace faiss_ehi
