/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/TorchTree.h>

#include <algorithm>
#include <cstring>
#include <string>

#include <torch/torch.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/enum_names.h>
#include <faiss_ehi/trainer/TensorText.h>

namespace faiss_ehi {
namespace trainer {

namespace {

/// Elements of (inputs x leaves) evaluated at once by the exhaustive
/// routines (argmax_leaf, top_leaves).
constexpr int64_t kLeafBlockElems = int64_t(1) << 22;

void check_input(const torch::Tensor& u, int m, const char* what) {
    FAISS_THROW_IF_NOT_FMT(u.defined() && u.dim() == 2 && u.size(1) == m,
                           "%s: expected inputs of shape (n, %d), got %s", what,
                           m, shape_text(u).c_str());
}

/// Copy `count` floats from `src` into the float32 tensor `dst`.
void copy_into(torch::Tensor& dst, const std::vector<float>& src,
               const char* what) {
    FAISS_THROW_IF_NOT_FMT(int64_t(src.size()) == dst.numel(),
                           "TorchTree::from_ehi: %s has %zd values, expected "
                           "%lld",
                           what, src.size(), (long long)dst.numel());
    torch::NoGradGuard no_grad;
    auto view = torch::from_blob(const_cast<float*>(src.data()), dst.sizes(),
                                 torch::kFloat32);
    dst.copy_(view);
}

/// The values of a tensor as float32, row-major.
std::vector<float> to_floats(const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    std::vector<float> out(size_t(c.numel()));
    if (!out.empty()) {
        std::memcpy(out.data(), c.data_ptr<float>(),
                    out.size() * sizeof(float));
    }
    return out;
}

} // namespace

TorchTreeImpl::TorchTreeImpl(int B, int H, int m, NodeForm form, bool use_bias)
        : B(B), H(H), m(m), form(form), use_bias(use_bias) {
    FAISS_THROW_IF_NOT_FMT(B >= 2, "TorchTree: B = %d, must be >= 2", B);
    FAISS_THROW_IF_NOT_FMT(H >= 1, "TorchTree: H = %d, must be >= 1", H);
    FAISS_THROW_IF_NOT_FMT(m >= 1, "TorchTree: m = %d, must be >= 1", m);
    FAISS_THROW_IF_NOT_FMT(enum_name(form)[0] != '?',
                           "TorchTree: form = %d, must be one of %s", int(form),
                           enum_choices<NodeForm>().c_str());
    U.resize(H);
    W.resize(H);
    bias.resize(H);
    node_W.resize(H);
    node_b.resize(H);
    for (int h = 0; h < H; h++) {
        register_level(h);
    }
}

void TorchTreeImpl::register_level(int h) {
    std::string s = std::to_string(h);
    if (form == NodeForm::PAPER) {
        int64_t nh = n_input(h);
        U[h] = register_parameter("U" + s, torch::zeros({nh, nh}));
        W[h] = register_parameter("W" + s, torch::zeros({nh, int64_t(B)}));
        if (use_bias) {
            bias[h] = register_parameter("bias" + s, torch::zeros({B}));
        } else {
            // Not trained and not used; kept so that to_ehi round-trips.
            bias[h] = register_buffer("bias" + s, torch::zeros({B}));
        }
    } else {
        int64_t V = nodes_at_depth(h);
        node_W[h] = register_parameter(
                "node_W" + s, torch::zeros({V, int64_t(B), int64_t(m)}));
        node_b[h] =
                register_parameter("node_b" + s, torch::zeros({V, int64_t(B)}));
    }
}

int64_t TorchTreeImpl::nodes_at_depth(int h) const {
    int64_t r = 1;
    for (int i = 0; i < h; i++) {
        r *= B;
    }
    return r;
}

int64_t TorchTreeImpl::nleaves() const {
    return nodes_at_depth(H);
}

int TorchTreeImpl::n_input(int h) const {
    return B * h + m;
}

TorchTree TorchTree::from_ehi(const EHITree& tree) {
    tree.check_consistent();
    auto t = std::make_shared<TorchTreeImpl>(tree.B, tree.H, tree.m, tree.form,
                                             tree.use_bias);
    for (int h = 0; h < tree.H; h++) {
        if (tree.form == NodeForm::PAPER) {
            copy_into(t->U[h], tree.U[h], "U");
            copy_into(t->W[h], tree.W[h], "W");
            copy_into(t->bias[h], tree.bias[h], "bias");
        } else {
            copy_into(t->node_W[h], tree.node_W[h], "node_W");
            copy_into(t->node_b[h], tree.node_b[h], "node_b");
        }
    }
    return TorchTree(t);
}

void TorchTreeImpl::to_ehi(EHITree& tree) const {
    EHITree out(B, H, m, form);
    out.use_bias = use_bias;
    out.strategy = tree.strategy;
    for (int h = 0; h < H; h++) {
        if (form == NodeForm::PAPER) {
            std::vector<float> u = to_floats(U[h]), w = to_floats(W[h]),
                               b = to_floats(bias[h]);
            out.set_paper_level(h, u.data(), w.data(), b.data());
        } else {
            std::vector<float> w = to_floats(node_W[h]),
                               b = to_floats(node_b[h]);
            out.set_node_level(h, w.data(), b.data());
        }
    }
    // set_*_level checked finiteness and finalized the tree.
    tree = std::move(out);
}

EHITree TorchTreeImpl::to_ehi() const {
    EHITree t;
    to_ehi(t);
    return t;
}

torch::Tensor TorchTreeImpl::path_onehots(int h,
                                          const torch::Tensor& node_ids) const {
    int64_t n = node_ids.size(0);
    auto opts = torch::TensorOptions()
                        .dtype(form == NodeForm::PAPER ? U[h].scalar_type()
                                                       : torch::kFloat32)
                        .device(node_ids.device());
    torch::Tensor x = torch::zeros({n, int64_t(B) * h}, opts);
    if (h == 0 || n == 0) {
        return x;
    }
    // Block j holds the j-th least significant digit (the most recent
    // choice first): column j*B + digit.
    std::vector<torch::Tensor> cols;
    torch::Tensor rest = node_ids;
    for (int j = 0; j < h; j++) {
        cols.push_back(torch::remainder(rest, B) + int64_t(j) * B);
        rest = torch::div(rest, B, "floor");
    }
    x.scatter_(1, torch::stack(cols, 1), 1.0);
    return x;
}

torch::Tensor TorchTreeImpl::child_log_probs(int h,
                                             const torch::Tensor& node_ids,
                                             const torch::Tensor& u) const {
    FAISS_THROW_IF_NOT_FMT(h >= 0 && h < H,
                           "TorchTree: level %d outside [0, %d)", h, H);
    check_input(u, m, "TorchTree::child_log_probs");
    FAISS_THROW_IF_NOT_FMT(node_ids.dim() == 1 && node_ids.size(0) == u.size(0),
                           "TorchTree::child_log_probs: node_ids must be "
                           "(%lld), got %s",
                           (long long)u.size(0), shape_text(node_ids).c_str());
    torch::Tensor ids = node_ids.to(torch::kLong);
    torch::Tensor s;
    if (form == NodeForm::PER_NODE) {
        torch::Tensor Wv = node_W[h].index_select(0, ids); // (n, B, m)
        s = torch::bmm(Wv, u.unsqueeze(2)).squeeze(2) +
                node_b[h].index_select(0, ids);
    } else {
        torch::Tensor x = torch::cat({path_onehots(h, ids), u}, 1);
        torch::Tensor F = x + torch::relu(x.matmul(U[h]));
        s = F.matmul(W[h]);
        if (use_bias) {
            s = s + bias[h];
        }
    }
    return torch::log_softmax(s, 1);
}

torch::Tensor TorchTreeImpl::all_children_log_probs(
        int h, const torch::Tensor& u) const {
    int64_t n = u.size(0);
    int64_t V = nodes_at_depth(h);
    torch::Tensor s;
    if (form == NodeForm::PER_NODE) {
        s = u.matmul(node_W[h].reshape({V * B, m}).t()) +
                node_b[h].reshape({V * B});
        s = s.reshape({n, V, B});
    } else {
        int64_t P = int64_t(B) * h;
        torch::Tensor onehots =
                path_onehots(h,
                             torch::arange(V,
                                           torch::TensorOptions()
                                                   .dtype(torch::kLong)
                                                   .device(u.device())));
        torch::Tensor Upath = U[h].narrow(0, 0, P);
        torch::Tensor Uemb = U[h].narrow(0, P, m);
        // U_h^T x = U_emb^T u + (rows of U selected by the path)
        torch::Tensor z = u.matmul(Uemb).unsqueeze(1) +
                onehots.matmul(Upath).unsqueeze(0); // (n, V, n_h)
        torch::Tensor x =
                torch::cat({onehots.unsqueeze(0).expand({n, V, P}),
                            u.unsqueeze(1).expand({n, V, int64_t(m)})},
                           2);
        torch::Tensor F = x + torch::relu(z);
        s = F.matmul(W[h]); // (n, V, B)
        if (use_bias) {
            s = s + bias[h];
        }
    }
    return torch::log_softmax(s, 2);
}

torch::Tensor TorchTreeImpl::leaf_log_probs(const torch::Tensor& u) const {
    check_input(u, m, "TorchTree::leaf_log_probs");
    int64_t n = u.size(0);
    torch::Tensor logp = torch::zeros({n, 1}, u.options());
    for (int h = 0; h < H; h++) {
        torch::Tensor lp = all_children_log_probs(h, u); // (n, V, B)
        // child of node v by c is node v*B + c
        logp = (logp.unsqueeze(2) + lp).reshape({n, -1});
    }
    return logp;
}

torch::Tensor TorchTreeImpl::path_embedding(const torch::Tensor& u) const {
    check_input(u, m, "TorchTree::path_embedding");
    int64_t n = u.size(0);
    torch::Tensor node = torch::zeros(
            {n}, torch::TensorOptions().dtype(torch::kLong).device(u.device()));
    torch::Tensor pprev = torch::ones({n, 1}, u.options());
    std::vector<torch::Tensor> blocks;
    for (int h = 0; h < H; h++) {
        torch::Tensor lp = child_log_probs(h, node, u);
        torch::Tensor P = torch::exp(lp) * pprev; // (n, B)
        blocks.push_back(P);
        // argmax returns the first maximum: ties to the smaller child
        torch::Tensor best = lp.detach().argmax(1);
        pprev = P.gather(1, best.unsqueeze(1));
        node = node * B + best;
    }
    return torch::cat(blocks, 1);
}

std::vector<int64_t> TorchTreeImpl::greedy_leaf(const torch::Tensor& u) const {
    check_input(u, m, "TorchTree::greedy_leaf");
    torch::NoGradGuard no_grad;
    int64_t n = u.size(0);
    torch::Tensor node = torch::zeros(
            {n}, torch::TensorOptions().dtype(torch::kLong).device(u.device()));
    for (int h = 0; h < H; h++) {
        node = node * B + child_log_probs(h, node, u).argmax(1);
    }
    node = node.to(torch::kCPU).contiguous();
    return std::vector<int64_t>(node.data_ptr<int64_t>(),
                                node.data_ptr<int64_t>() + n);
}

std::vector<int64_t> TorchTreeImpl::argmax_leaf(const torch::Tensor& u) const {
    check_input(u, m, "TorchTree::argmax_leaf");
    torch::NoGradGuard no_grad;
    int64_t n = u.size(0);
    int64_t L = nleaves();
    int64_t block = std::max<int64_t>(1, kLeafBlockElems / L);
    std::vector<int64_t> out(static_cast<size_t>(n));
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        int64_t nb = std::min(block, n - i0);
        torch::Tensor best = leaf_log_probs(u.narrow(0, i0, nb))
                                     .argmax(1)
                                     .to(torch::kCPU)
                                     .contiguous();
        std::copy(best.data_ptr<int64_t>(), best.data_ptr<int64_t>() + nb,
                  out.begin() + i0);
    }
    return out;
}

std::pair<std::vector<int64_t>, std::vector<float>> TorchTreeImpl::top_leaves(
        const torch::Tensor& u, int64_t beam) const {
    check_input(u, m, "TorchTree::top_leaves");
    FAISS_THROW_IF_NOT_FMT(beam >= 1,
                           "TorchTree::top_leaves: beam = %lld, must be >= 1",
                           (long long)beam);
    torch::NoGradGuard no_grad;
    int64_t n = u.size(0);
    int64_t L = nleaves();
    int64_t k = std::min(beam, L);
    int64_t block = std::max<int64_t>(1, kLeafBlockElems / L);
    std::vector<int64_t> leaves(size_t(n * beam), -1);
    std::vector<float> probs(size_t(n * beam), 0.0f);
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        int64_t nb = std::min(block, n - i0);
        torch::Tensor lp = leaf_log_probs(u.narrow(0, i0, nb));
        // stable descending sort: equal probabilities keep the smaller id
        auto sorted = torch::sort(lp, /*stable=*/true, /*dim=*/1,
                                  /*descending=*/true);
        torch::Tensor vals = std::get<0>(sorted)
                                     .narrow(1, 0, k)
                                     .exp()
                                     .to(torch::kCPU, torch::kFloat32)
                                     .contiguous();
        torch::Tensor idx = std::get<1>(sorted)
                                    .narrow(1, 0, k)
                                    .to(torch::kCPU)
                                    .contiguous();
        const float* pv = vals.data_ptr<float>();
        const int64_t* pi = idx.data_ptr<int64_t>();
        for (int64_t q = 0; q < nb; q++) {
            for (int64_t j = 0; j < k; j++) {
                leaves[size_t((i0 + q) * beam + j)] = pi[q * k + j];
                probs[size_t((i0 + q) * beam + j)] = pv[q * k + j];
            }
        }
    }
    return {leaves, probs};
}

} // namespace trainer
} // namespace faiss_ehi
