/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/Encoder.h>

#include <cmath>
#include <cstring>
#include <unordered_map>

#include <torch/torch.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_ehi {
namespace trainer {

namespace {

/// Copy a float32 tensor into a std::vector (contiguous, row-major).
std::vector<float> to_vec(const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
    return std::vector<float>(c.data_ptr<float>(),
                              c.data_ptr<float>() + c.numel());
}

/// Numbers the distinct values seen, in order of first appearance.
struct DistinctRows {
    std::unordered_map<int64_t, int64_t> slot_of;
    std::vector<int64_t> rows; ///< rows[slot] = value

    /// The slot of `row`, a new one the first time it is seen.
    int64_t slot(int64_t row) {
        auto it = slot_of.emplace(row, int64_t(rows.size())).first;
        if (it->second == int64_t(rows.size())) {
            rows.push_back(row);
        }
        return it->second;
    }
};

} // namespace

EncoderImpl::EncoderImpl(EncoderKind kind_in, int d_in_in, int d_out_in,
                         int hidden_in, bool normalize_in, uint64_t seed,
                         const TextInit* text)
        : kind(kind_in), d_in(d_in_in), d_out(d_out_in), hidden(hidden_in),
          normalize(normalize_in) {
    if (kind == EncoderKind::TEXT) {
        FAISS_THROW_IF_NOT_MSG(text,
                               "TEXT encoder needs a TextInit "
                               "(vocabulary and token vectors)");
        FAISS_THROW_IF_NOT_FMT(
                text->dim >= 1 && !text->vocab.empty() &&
                        text->embeddings.size() ==
                                text->vocab.size() * size_t(text->dim),
                "TextInit: %zd floats for %zd words of dim %d",
                text->embeddings.size(), text->vocab.size(), text->dim);
        d_in = text->dim;
        emb = register_parameter(
                "emb",
                torch::from_blob(const_cast<float*>(text->embeddings.data()),
                                 {int64_t(text->vocab.size()), d_in})
                        .clone());
        emb_m = register_buffer("emb_m", torch::zeros_like(emb));
        emb_v = register_buffer("emb_v", torch::zeros_like(emb));
        emb_steps =
                register_buffer("emb_steps", torch::zeros({1}, torch::kLong));
    }
    if (kind == EncoderKind::IDENTITY) {
        FAISS_THROW_IF_NOT_FMT(d_out == d_in,
                               "IDENTITY encoder: d_out (%d) must equal the "
                               "input size (%d)",
                               d_out, d_in);
        return;
    }
    FAISS_THROW_IF_NOT_FMT(d_in >= 1 && d_out >= 1 && hidden >= 0,
                           "encoder sizes d_in = %d, d_out = %d, hidden = %d",
                           d_in, d_out, hidden);
    torch::Tensor eye = torch::zeros({d_out, d_in});
    for (int i = 0; i < std::min(d_in, d_out); i++) {
        eye[i][i] = 1.0f;
    }
    A = register_parameter("A", eye);
    b = register_parameter("b", torch::zeros({d_out}));
    if (hidden > 0) {
        // Seeded without touching torch's global generator.
        auto gen = at::detail::createCPUGenerator(seed);
        W1 = register_parameter("W1",
                                at::normal(0.0, 1.0 / std::sqrt(double(d_in)),
                                           {hidden, d_in}, gen));
        c1 = register_parameter("c1", torch::zeros({hidden}));
        W2 = register_parameter("W2", torch::zeros({d_out, hidden}));
        c2 = register_parameter("c2", torch::zeros({d_out}));
    }
}

torch::Tensor EncoderImpl::head(const torch::Tensor& x) const {
    if (kind == EncoderKind::IDENTITY) {
        return x;
    }
    torch::Tensor y = torch::addmm(b, x, A.t());
    if (hidden > 0) {
        torch::Tensor h = torch::relu(torch::addmm(c1, x, W1.t()));
        y = y + torch::addmm(c2, h, W2.t());
    }
    if (normalize) {
        torch::Tensor nrm = y.norm(2, 1, /*keepdim=*/true);
        // A zero output stays zero, as in EncoderHead.
        nrm = torch::where(nrm > 0, nrm, torch::ones_like(nrm));
        y = y / nrm;
    }
    return y;
}

torch::Tensor EncoderImpl::bag(const std::vector<std::vector<int64_t>>& tokens,
                               const std::vector<int64_t>& rows) const {
    const int64_t V = emb.size(0);
    const bool grad = torch::GradMode::is_enabled();
    // With gradient: the distinct rows used become a small leaf tensor, so
    // that backward and the optimizer touch only them (sparse_step).
    std::vector<int64_t> flat, offsets;
    DistinctRows distinct;
    offsets.reserve(rows.size());
    for (size_t r = 0; r < rows.size(); r++) {
        offsets.push_back(int64_t(flat.size()));
        for (int64_t t : tokens[rows[r]]) {
            FAISS_THROW_IF_NOT_FMT(t >= 0 && t < V,
                                   "token id %zd out of [0, %zd)", size_t(t),
                                   size_t(V));
            flat.push_back(grad ? distinct.slot(t) : t);
        }
    }
    // Cloned: autograd keeps the index tensors for the backward pass,
    // after the vectors here are gone. Mean mode gives an empty bag the
    // zero vector.
    auto opt = torch::TensorOptions().dtype(torch::kLong);
    auto as_tensor = [&](const std::vector<int64_t>& v) {
        return torch::from_blob(const_cast<int64_t*>(v.data()),
                                {int64_t(v.size())}, opt)
                .clone();
    };
    torch::Tensor table = emb;
    if (grad) {
        UsedRows u;
        u.rows = as_tensor(distinct.rows);
        {
            torch::NoGradGuard ng;
            u.leaf = emb.index_select(0, u.rows);
        }
        u.leaf.requires_grad_(true);
        table = u.leaf;
        used_.push_back(u);
    }
    return std::get<0>(torch::embedding_bag(table, as_tensor(flat),
                                            as_tensor(offsets),
                                            /*scale_grad_by_freq=*/false,
                                            /*mode=mean*/ 1));
}

std::vector<torch::Tensor> EncoderImpl::dense_parameters() const {
    std::vector<torch::Tensor> out;
    for (const auto& p : parameters()) {
        if (!(emb.defined() && p.is_same(emb))) {
            out.push_back(p);
        }
    }
    return out;
}

void EncoderImpl::sparse_step(double lr, double weight_decay) {
    std::vector<UsedRows> used;
    used.swap(used_);
    if (!emb.defined()) {
        return;
    }
    torch::NoGradGuard ng;
    // Merge the uses: one gradient row per distinct table row.
    DistinctRows distinct;
    std::vector<torch::Tensor> where, grads;
    for (const auto& u : used) {
        if (!u.leaf.grad().defined()) {
            continue; // not part of the loss
        }
        const int64_t* r = u.rows.data_ptr<int64_t>();
        std::vector<int64_t> w(u.rows.numel());
        for (size_t i = 0; i < w.size(); i++) {
            w[i] = distinct.slot(r[i]);
        }
        auto opt = torch::TensorOptions().dtype(torch::kLong);
        where.push_back(
                torch::from_blob(w.data(), {int64_t(w.size())}, opt).clone());
        grads.push_back(u.leaf.grad());
    }
    if (distinct.rows.empty()) {
        return;
    }
    const int64_t U = int64_t(distinct.rows.size());
    torch::Tensor rows =
            torch::from_blob(distinct.rows.data(), {U},
                             torch::TensorOptions().dtype(torch::kLong))
                    .clone();
    torch::Tensor g = torch::zeros({U, emb.size(1)});
    for (size_t k = 0; k < grads.size(); k++) {
        g.index_add_(0, where[k], grads[k]);
    }
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    int64_t t = emb_steps.data_ptr<int64_t>()[0] + 1;
    emb_steps.data_ptr<int64_t>()[0] = t;
    torch::Tensor p = emb.index_select(0, rows);
    torch::Tensor m = emb_m.index_select(0, rows).mul_(b1).add_(g, 1 - b1);
    torch::Tensor v =
            emb_v.index_select(0, rows).mul_(b2).addcmul_(g, g, 1 - b2);
    p.mul_(1 - lr * weight_decay);
    const double bc1 = 1 - std::pow(b1, double(t));
    const double bc2 = 1 - std::pow(b2, double(t));
    torch::Tensor denom = (v / bc2).sqrt_().add_(eps);
    p.addcdiv_(m, denom, -lr / bc1);
    emb.index_copy_(0, rows, p);
    emb_m.index_copy_(0, rows, m);
    emb_v.index_copy_(0, rows, v);
}

torch::Tensor EncoderImpl::forward(const EncoderInput& in,
                                   const std::vector<int64_t>& rows) const {
    torch::Tensor x;
    if (kind == EncoderKind::TEXT) {
        FAISS_THROW_IF_NOT_MSG(in.tokens, "TEXT encoder: token input missing");
        x = bag(*in.tokens, rows);
    } else {
        FAISS_THROW_IF_NOT_MSG(in.vecs && in.d == d_in,
                               "encoder: vector input missing or of the "
                               "wrong size");
        x = torch::empty({int64_t(rows.size()), d_in});
        float* p = x.data_ptr<float>();
        for (size_t r = 0; r < rows.size(); r++) {
            std::memcpy(p + r * d_in, in.vecs + size_t(rows[r]) * d_in,
                        sizeof(float) * d_in);
        }
    }
    return head(x);
}

std::vector<float> EncoderImpl::encode_all(const EncoderInput& in,
                                           int64_t block) const {
    torch::NoGradGuard ng;
    std::vector<float> out(size_t(in.n) * d_out);
    std::vector<int64_t> rows;
    for (int64_t i0 = 0; i0 < in.n; i0 += block) {
        int64_t i1 = std::min(in.n, i0 + block);
        rows.resize(i1 - i0);
        for (int64_t i = i0; i < i1; i++) {
            rows[i - i0] = i;
        }
        torch::Tensor y = forward(in, rows).contiguous();
        std::memcpy(out.data() + size_t(i0) * d_out, y.data_ptr<float>(),
                    sizeof(float) * y.numel());
    }
    return out;
}

std::unique_ptr<EncoderHead> EncoderImpl::to_faiss() const {
    FAISS_THROW_IF_NOT_MSG(kind != EncoderKind::IDENTITY,
                           "the IDENTITY encoder has no head to export");
    std::unique_ptr<EncoderHead> h(
            new EncoderHead(d_in, d_out, hidden, normalize));
    h->A = to_vec(A);
    h->b = to_vec(b);
    if (hidden > 0) {
        h->W1 = to_vec(W1);
        h->c1 = to_vec(c1);
        h->W2 = to_vec(W2);
        h->c2 = to_vec(c2);
    }
    h->check_consistent();
    return h;
}

std::unique_ptr<TextEncoder> EncoderImpl::to_text_encoder(
        const std::vector<std::string>& vocab) const {
    FAISS_THROW_IF_NOT_MSG(kind == EncoderKind::TEXT,
                           "only the TEXT encoder has a token table");
    FAISS_THROW_IF_NOT_FMT(int64_t(vocab.size()) == emb.size(0),
                           "vocabulary of %zd words for a table of %zd rows",
                           vocab.size(), size_t(emb.size(0)));
    return std::unique_ptr<TextEncoder>(
            new TextEncoder(vocab, d_in, to_vec(emb)));
}

} // namespace trainer
} // namespace faiss_ehi
