/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The joint encoder + tree loop (JointTrainer.h). The checkpoint is in
 * Checkpoint.cpp; helpers that need no torch live in JointConfig.cpp and
 * TreeSnapshot.cpp (fast to compile).
 */
#include <faiss_ehi/trainer/JointTrainer.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <unordered_set>

#include <omp.h>
#include <sys/stat.h>

#include <glog/logging.h>
#include <torch/torch.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/EHITreeKMeansInit.h>
#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/trainer/BalancedAssign.h>
#include <faiss_ehi/trainer/Checkpoint.h>
#include <faiss_ehi/trainer/Encoder.h>
#include <faiss_ehi/trainer/Losses.h>
#include <faiss_ehi/trainer/RoutingTrainer.h>
#include <faiss_ehi/trainer/ThreadScope.h>
#include <faiss_ehi/trainer/TorchTree.h>
#include <faiss_ehi/trainer/TreeSnapshot.h>

namespace faiss_ehi {
namespace trainer {

namespace {

/// Copy every parameter and buffer of `src` into `dst` (same names).
void copy_state(torch::nn::Module& dst, const torch::nn::Module& src) {
    torch::NoGradGuard ng;
    auto sp = src.named_parameters();
    for (auto& p : dst.named_parameters()) {
        p.value().copy_(sp[p.key()]);
    }
    auto sb = src.named_buffers();
    for (auto& b : dst.named_buffers()) {
        b.value().copy_(sb[b.key()]);
    }
}

bool all_finite(const torch::nn::Module& m) {
    for (const auto& p : m.parameters()) {
        if (!torch::isfinite(p).all().item<bool>()) {
            return false;
        }
    }
    return true;
}

/// Hash of the data's shape and pairs (part of the resume fingerprint).
uint64_t data_hash(const PairData& d) {
    uint64_t h = 1469598103934665603ULL;
    auto mix = [&](uint64_t v) {
        h ^= v;
        h *= 1099511628211ULL;
    };
    mix(uint64_t(d.nq));
    mix(uint64_t(d.nd));
    mix(uint64_t(d.d));
    for (const auto& p : d.pairs) {
        mix(uint64_t(p.first));
        mix(uint64_t(p.second));
    }
    return h;
}

/** For each of the nq encoded queries, its `count` best-scoring documents
 * over all nd encoded documents (exact search) that are not relevant to it
 * (relevant[i] sorted). */
std::vector<std::vector<int64_t>> exact_negatives(
        int m, faiss::MetricType metric, int64_t nd, const float* docs,
        int64_t nq, const float* q,
        const std::vector<std::vector<int64_t>>& relevant, int count) {
    faiss::IndexFlat flat(m, metric);
    flat.add(nd, docs);
    size_t most = 0;
    for (const auto& r : relevant) {
        most = std::max(most, r.size());
    }
    const int64_t k = std::min<int64_t>(nd, int64_t(count + most));
    std::vector<float> D(size_t(nq) * k);
    std::vector<faiss::Index::idx_t> I(size_t(nq) * k);
    flat.search(nq, q, k, D.data(), I.data());
    std::vector<std::vector<int64_t>> out(nq);
    for (int64_t i = 0; i < nq; i++) {
        const auto& r = relevant[i];
        for (int64_t j = 0; j < k && int(out[i].size()) < count; j++) {
            int64_t id = I[i * k + j];
            if (id >= 0 && !std::binary_search(r.begin(), r.end(), id)) {
                out[i].push_back(id);
            }
        }
    }
    return out;
}

/// One line of progress on stderr, redrawn in place.
void draw_progress(int epoch, int epochs, int64_t step, int64_t steps,
                   double loss, double eta_s) {
    const int width = 30;
    int filled = steps ? int(width * step / steps) : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    long eta = std::lround(std::max(0.0, eta_s));
    std::fprintf(stderr,
                 "\repoch %d/%d [%s] %lld/%lld loss %.4f, %ldm%02lds left ",
                 epoch, epochs, bar.c_str(), (long long)step, (long long)steps,
                 loss, eta / 60, eta % 60);
    std::fflush(stderr);
}

/** One training run of the joint recipe, in named steps:
 * split_data, build_modules, open_checkpoint, then per epoch
 * start_epoch (tree start, encoder rate, re-fit, mining), train_steps,
 * measure, report and save; build_index at the end. */
class JointRun {
  public:
    JointRun(const JointTrainerConfig& resolved, const PairData& data,
             const TextInit* text, int stop_after_epoch)
            : c(resolved), data(data), text(text),
              is_text(resolved.encoder == EncoderKind::TEXT),
              d_in(is_text ? text->dim : data.d), m(resolved.d_out),
              metric(resolved.normalize ? faiss::METRIC_INNER_PRODUCT
                                        : faiss::METRIC_L2),
              L(int64_t(
                      std::llround(std::pow(double(resolved.B), resolved.H)))),
              // fixed_leaves stores documents at their (k-means) leaf
              // centroid
              doc_assign(resolved.fixed_leaves ? DocAssignRule::NEAREST_LEAF
                                               : resolved.doc_assign),
              stop_after_epoch(stop_after_epoch) {}

    /// Relevance lists, the seeded held-out split, the epoch schedule.
    void split_data();
    /// Median token count of the training queries (at least 1).
    int64_t median_query_tokens() const;
    /// Encoder, tree and their optimizers.
    void build_modules();
    /// Fingerprint and checkpoint path; restores the run when resuming.
    void open_checkpoint();
    /// All epochs; false when stopped early by the test hook.
    bool run_epochs();
    /// The trained, empty index (and the text encoder for TEXT).
    JointModel build_index();

    /// The run's history (also for a run stopped early).
    const std::vector<EpochStats>& history() const {
        return st.history;
    }

  private:
    // ---- steps of an epoch
    void start_epoch(int epoch);
    /// The steps of one epoch; the mean loss terms go into `es`.
    void train_steps(int epoch, EpochStats& es);
    /// Loads of the documents' leaves and the held-out recall; leaves
    /// that drifted past drift_refit are re-fitted first (the loads are
    /// at hand here, so the check costs no second snapshot).
    void measure(EpochStats& es);
    void report(const EpochStats& es, double steps_seconds);
    /// Throws (stop_on_collapse) or warns on a collapse.
    void check_collapse(const EpochStats& es);

    // ---- pieces
    void init_tree();
    void snapshot(TreeSnapshot& snap, const std::vector<float>& docs);
    std::vector<float> encode_queries(const std::vector<int64_t>& rows);
    void mine(bool from_index, const std::vector<float>& docs);
    void refit_leaves(const std::vector<float>& docs);
    /// The loss of one step and its terms (undefined when not computed).
    struct StepLoss {
        torch::Tensor total, siamese, indexing, intra, balance, routing;
    };
    /// The doc_routing term: documents (or excerpts) to their own leaves.
    torch::Tensor doc_routing_ce(const std::vector<int64_t>& drows,
                                 const torch::Tensor& Ed,
                                 std::mt19937_64& rng);
    StepLoss step_loss(const std::vector<int64_t>& qrows,
                       const std::vector<int64_t>& drows,
                       std::vector<float>& negmask, std::mt19937_64& rng);
    /// The tree terms' view of an embedding: its gradient into the
    /// encoder scaled by tree_grad (same values).
    torch::Tensor to_tree(const torch::Tensor& e) const;
    /// Mean cross-entropy of the rows of x toward their leaves, summed over
    /// the levels of the path (factorised, exact).
    torch::Tensor route_ce(const std::vector<int64_t>& leaf,
                           const torch::Tensor& x);
    /// Routing targets of documents drows[0, count), embedded as e.
    std::vector<int64_t> leaves_of(const torch::Tensor& e,
                                   const std::vector<int64_t>& drows,
                                   int64_t count);
    std::vector<int64_t> nearest_fixed_leaf(const torch::Tensor& x);
    /// Where the last good checkpoint is, for error messages.
    std::string last_good_checkpoint() const;
    double eta_seconds(int epoch, int64_t step) const;

    // ---- inputs
    JointTrainerConfig c;
    const PairData& data;
    const TextInit* text;
    const bool is_text;
    const int d_in;
    const int m;
    const faiss::MetricType metric;
    const int64_t L;
    const DocAssignRule doc_assign;
    const int stop_after_epoch;

    // ---- split_data
    std::vector<std::vector<int64_t>> rel; ///< sorted relevant docs per query
    std::vector<std::pair<int64_t, int64_t>> train_pairs;
    std::vector<int64_t> train_queries, heldout_queries;
    EncoderInput qin, din;
    int64_t steps = 0;
    bool tree_loss = false;
    /// doc_routing_window resolved (tokens; 0: whole documents)
    int64_t route_window = 0;

    // ---- build_modules
    Encoder enc{nullptr};
    TorchTree tree{nullptr};
    std::unique_ptr<torch::optim::AdamW> enc_opt;
    std::unique_ptr<torch::optim::AdamW> tree_opt;

    // ---- open_checkpoint and the run's state
    std::string fingerprint;
    std::string ckpt_path;
    RunState st;
    int last_good_epoch = -1;
    /// fixed_leaves: the k-means centroids (L x m), the documents' leaves
    torch::Tensor fixed_reps;
    double enc_lr = 0; ///< the encoder's rate in this phase
    int first_epoch = 0;
    std::chrono::steady_clock::time_point run_start;
};

int64_t JointRun::median_query_tokens() const {
    std::vector<size_t> len;
    for (int64_t q : train_queries) {
        len.push_back(data.query_tokens[size_t(q)].size());
    }
    if (len.empty()) {
        return 1;
    }
    std::nth_element(len.begin(), len.begin() + len.size() / 2, len.end());
    return std::max<int64_t>(1, int64_t(len[len.size() / 2]));
}

void JointRun::split_data() {
    rel.assign(data.nq, {});
    for (const auto& p : data.pairs) {
        rel[p.first].push_back(p.second);
    }
    for (auto& r : rel) {
        std::sort(r.begin(), r.end());
        r.erase(std::unique(r.begin(), r.end()), r.end());
    }
    heldout_queries = trainer::heldout_queries(data.nq, data.pairs, c.seed,
                                               c.heldout_fraction);
    std::vector<char> held(data.nq, 0);
    for (int64_t q : heldout_queries) {
        held[q] = 1;
    }
    for (const auto& p : data.pairs) {
        if (!held[p.first]) {
            train_pairs.push_back(p);
        }
    }
    for (int64_t q = 0; q < data.nq; q++) {
        if (!rel[q].empty() && !held[q]) {
            train_queries.push_back(q);
        }
    }
    FAISS_THROW_IF_NOT_FMT(train_pairs.size() >= 2,
                           "JointTrainer: %zd training pairs after the "
                           "held-out split; need at least 2",
                           train_pairs.size());
    c = c.scheduled(train_pairs.size());
    LOG(INFO) << "JointTrainer: " << train_pairs.size() << " training pairs, "
              << c.epochs << " epochs (" << c.warmup_epochs
              << " of them warm-up)";

    qin.n = data.nq;
    din.n = data.nd;
    if (is_text) {
        qin.tokens = &data.query_tokens;
        din.tokens = &data.doc_tokens;
    } else {
        qin.vecs = data.query_vecs.data();
        din.vecs = data.doc_vecs.data();
        qin.d = din.d = data.d;
    }
    route_window = c.doc_routing_window;
    if (route_window < 0) {
        route_window = is_text ? median_query_tokens() : 0;
    }
    // the last, partial step only when it has a pair and a negative
    steps = int64_t(train_pairs.size()) / c.batch +
            (int64_t(train_pairs.size()) % c.batch >= 2 ? 1 : 0);
    tree_loss =
            c.lambda2 > 0 || c.lambda3 > 0 || c.balance > 0 || c.routing > 0;
}

void JointRun::build_modules() {
    torch::manual_seed(c.seed);
    enc = Encoder(c.encoder, d_in, m, c.hidden, c.normalize, c.seed, text);
    tree = TorchTree(c.B, c.H, m, c.form, c.use_bias);
    if (!enc->dense_parameters().empty()) {
        enc_opt.reset(new torch::optim::AdamW(
                enc->dense_parameters(),
                torch::optim::AdamWOptions(c.enc_lr).weight_decay(
                        c.weight_decay)));
    }
    tree_opt.reset(new torch::optim::AdamW(
            tree->parameters(),
            torch::optim::AdamWOptions(c.cl_lr).weight_decay(c.weight_decay)));
}

void JointRun::open_checkpoint() {
    fingerprint = c.fingerprint() + " data=" + std::to_string(data_hash(data));
    if (!c.checkpoint_dir.empty()) {
        ckpt_path = c.checkpoint_dir + "/" + JointTrainer::checkpoint_name();
        mkdir(c.checkpoint_dir.c_str(), 0755); // fails harmlessly if present
    }
    st.hard.resize(data.nq);
    if (c.resume) {
        load_checkpoint(ckpt_path, fingerprint, st, enc, tree, enc_opt.get(),
                        *tree_opt);
        LOG(INFO) << "JointTrainer: resumed from " << ckpt_path
                  << " after epoch " << st.epoch;
        last_good_epoch = st.epoch;
    }
}

std::vector<int64_t> JointRun::nearest_fixed_leaf(const torch::Tensor& x) {
    torch::NoGradGuard ng;
    torch::Tensor s = torch::matmul(x, fixed_reps.t());
    if (metric == faiss::METRIC_L2) {
        // argmin |x - c|^2 = argmax 2 x.c - |c|^2
        s = 2 * s - fixed_reps.pow(2).sum(1).unsqueeze(0);
    }
    torch::Tensor a = s.argmax(1).contiguous();
    return std::vector<int64_t>(a.data_ptr<int64_t>(),
                                a.data_ptr<int64_t>() + a.numel());
}

void JointRun::init_tree() {
    std::vector<float> docs = enc->encode_all(din);
    EHITree ehi(c.B, c.H, m, c.form);
    ehi.use_bias = c.use_bias;
    if (c.init == TreeInit::RANDOM) {
        ehi.init_random(c.seed);
    } else {
        EHITreeKMeansInit km;
        km.seed = int(c.seed & 0x7fffffff);
        km.init(ehi, data.nd, docs.data(), metric, &st.start_reps);
        // Temperatures fitted on the training pairs: query -> leaf of
        // its relevant document (where the tree stores it).
        std::vector<idx_t> doc_leaf(data.nd);
        std::vector<float> prob(data.nd);
        ehi.route(data.nd, docs.data(), 1, doc_leaf.data(), prob.data());
        std::vector<int64_t> qrows;
        std::vector<idx_t> nn;
        for (const auto& p : train_pairs) {
            qrows.push_back(p.first);
            nn.push_back(p.second);
        }
        torch::Tensor qx;
        {
            torch::NoGradGuard ng;
            qx = enc->forward(qin, qrows).contiguous();
        }
        RoutingTargets tg = RoutingTargets::from_neighbors(
                idx_t(nn.size()), 1, nn.data(), doc_leaf.data());
        RoutingTrainer rt;
        rt.epochs = 0;
        rt.holdout = 0;
        rt.fit_temperature = true;
        rt.threads = c.threads > 0 ? c.threads : omp_get_num_procs();
        rt.train(ehi, idx_t(nn.size()), qx.data_ptr<float>(), tg);
        if (c.recluster) {
            // balanced from the start (k-means alone may leave a leaf
            // several times the ideal)
            st.doc_leaf =
                    balanced_kmeans(data.nd, m, docs.data(), L, st.start_reps,
                                    metric, c.normalize, c.leaf_slack, 5);
        }
    }
    TorchTree fresh = TorchTree::from_ehi(ehi);
    copy_state(*tree, *fresh);
}

void JointRun::snapshot(TreeSnapshot& snap, const std::vector<float>& docs) {
    EHITree ehi = tree->to_ehi();
    snap.build(ehi, metric, data.nd, docs.data(), doc_assign, c.d2l,
               st.start_reps.empty() ? nullptr : &st.start_reps,
               c.fixed_leaves);
}

std::vector<float> JointRun::encode_queries(const std::vector<int64_t>& rows) {
    torch::NoGradGuard ng;
    torch::Tensor t = enc->forward(qin, rows).contiguous();
    return std::vector<float>(t.data_ptr<float>(),
                              t.data_ptr<float>() + t.numel());
}

// Hard negatives: from the leaves the beam reaches in the current index
// (from_index, needs the tree) and from the encoder's own exact top ranks
// (de_negatives); each query's pool is their union.
void JointRun::mine(bool from_index, const std::vector<float>& docs) {
    TreeSnapshot snap;
    if (from_index) {
        snapshot(snap, docs);
    }
    std::vector<float> qx = encode_queries(train_queries);
    std::vector<std::vector<int64_t>> relv;
    for (int64_t q : train_queries) {
        relv.push_back(rel[q]);
    }
    const int64_t nt = int64_t(train_queries.size());
    std::vector<std::vector<int64_t>> neg(nt);
    if (from_index && c.hard_negatives > 0) {
        neg = mine_hard_negatives(snap, nt, qx.data(), relv, c.beam,
                                  c.hard_negatives);
    }
    if (c.de_negatives > 0) {
        auto ex = exact_negatives(m, metric, data.nd, docs.data(), nt,
                                  qx.data(), relv, c.de_negatives);
        for (int64_t i = 0; i < nt; i++) {
            for (int64_t id : ex[i]) {
                if (std::find(neg[i].begin(), neg[i].end(), id) ==
                    neg[i].end()) {
                    neg[i].push_back(id);
                }
            }
        }
    }
    for (auto& h : st.hard) {
        h.clear();
    }
    for (int64_t i = 0; i < nt; i++) {
        st.hard[train_queries[i]] = std::move(neg[i]);
    }
}

// Re-fit the leaves to the moving encoder's documents (recluster).
void JointRun::refit_leaves(const std::vector<float>& docs) {
    st.doc_leaf = balanced_kmeans(data.nd, m, docs.data(), L, st.start_reps,
                                  metric, c.normalize, c.leaf_slack, 3);
    fixed_reps =
            torch::from_blob(st.start_reps.data(), {int64_t(L), int64_t(m)})
                    .clone();
}

void JointRun::start_epoch(int epoch) {
    if (!st.tree_ready && epoch >= c.warmup_epochs) {
        init_tree();
        st.tree_ready = true;
    }
    // The encoder's rate for this phase (set every epoch, so that a
    // resumed run gets it too).
    enc_lr = st.tree_ready && c.joint_enc_lr >= 0 ? c.joint_enc_lr : c.enc_lr;
    if (enc_opt) {
        for (auto& g : enc_opt->param_groups()) {
            static_cast<torch::optim::AdamWOptions&>(g.options()).lr(enc_lr);
        }
    }
    if (c.fixed_leaves && st.tree_ready && !fixed_reps.defined()) {
        fixed_reps =
                torch::from_blob(st.start_reps.data(), {int64_t(L), int64_t(m)})
                        .clone();
    }
    const bool negatives = c.hard_negatives > 0 || c.de_negatives > 0;
    const bool refit = c.recluster && epoch > c.warmup_epochs;
    if (st.tree_ready && (epoch - c.warmup_epochs) % c.refresh == 0 &&
        (refit || negatives)) {
        const std::vector<float> docs = enc->encode_all(din);
        if (refit) {
            refit_leaves(docs);
        }
        if (negatives) {
            mine(true, docs);
        }
    } else if (!st.tree_ready && epoch % c.refresh == 0) {
        if (c.warmup_negatives && c.hard_negatives > 0) {
            // Warm-up: a k-means tree on the current encoder, only to mine
            // negatives from (the tree proper starts after the warm-up).
            init_tree();
            mine(true, enc->encode_all(din));
        } else if (c.de_negatives > 0) {
            mine(false, enc->encode_all(din));
        }
    }
}

torch::Tensor JointRun::to_tree(const torch::Tensor& e) const {
    if (c.tree_grad >= 1.0f) {
        return e;
    }
    torch::Tensor fixed = e.detach();
    return c.tree_grad > 0.0f ? fixed + c.tree_grad * (e - fixed) : fixed;
}

torch::Tensor JointRun::route_ce(const std::vector<int64_t>& leaf,
                                 const torch::Tensor& x) {
    const auto lopt = torch::TensorOptions().dtype(torch::kLong);
    const int64_t r = int64_t(leaf.size());
    torch::Tensor ce = torch::zeros({r});
    int64_t below = L;
    for (int h = 0; h < c.H; h++) {
        int64_t span = below / c.B;
        std::vector<int64_t> node(r), child(r);
        for (int64_t i = 0; i < r; i++) {
            node[i] = leaf[i] / below;
            child[i] = (leaf[i] / span) % c.B;
        }
        torch::Tensor lp = tree->child_log_probs(
                h, torch::from_blob(node.data(), {r}, lopt).clone(), x);
        ce = ce -
                lp.gather(1,
                          torch::from_blob(child.data(), {r, 1}, lopt).clone())
                        .squeeze(1);
        below = span;
    }
    return ce.mean();
}

std::vector<int64_t> JointRun::leaves_of(const torch::Tensor& e,
                                         const std::vector<int64_t>& drows,
                                         int64_t count) {
    if (c.balanced_targets && !st.doc_leaf.empty()) {
        std::vector<int64_t> l(count);
        for (int64_t i = 0; i < count; i++) {
            l[i] = st.doc_leaf[drows[i]];
        }
        return l;
    }
    return c.fixed_leaves ? nearest_fixed_leaf(e.detach())
                          : tree->argmax_leaf(e.detach());
}

JointRun::StepLoss JointRun::step_loss(const std::vector<int64_t>& qrows,
                                       const std::vector<int64_t>& drows,
                                       std::vector<float>& negmask,
                                       std::mt19937_64& rng) {
    const int64_t n = int64_t(qrows.size());
    StepLoss out;
    torch::Tensor Eq = enc->forward(qin, qrows);
    torch::Tensor Ed = enc->forward(din, drows);
    torch::Tensor Edp = Ed.narrow(0, 0, n);
    torch::Tensor Edn = Ed.narrow(0, n, n);
    // in-batch candidates: every document of the step that is not
    // relevant to the query
    torch::Tensor valid = torch::ones({n, 2 * n}, torch::kBool);
    auto va = valid.accessor<bool, 2>();
    for (int64_t i = 0; i < n; i++) {
        const auto& r = rel[qrows[i]];
        for (int64_t j = 0; j < 2 * n; j++) {
            if (std::binary_search(r.begin(), r.end(), drows[j])) {
                va[i][j] = false;
            }
        }
    }
    out.siamese = triplet_in_batch(Eq, Edp, Ed, valid, c.gamma);
    out.total = c.lambda1 * out.siamese;
    if (!(st.tree_ready && tree_loss)) {
        return out;
    }
    torch::Tensor mask = torch::from_blob(negmask.data(), {n}).clone();
    const torch::Tensor tEq = to_tree(Eq);
    if (c.lambda2 > 0 || c.lambda3 > 0) {
        torch::Tensor T =
                tree->path_embedding(torch::cat({tEq, to_tree(Ed)}, 0));
        torch::Tensor Tq = T.narrow(0, 0, n);
        torch::Tensor Tdp = T.narrow(0, n, n);
        torch::Tensor Tdn = T.narrow(0, 2 * n, n);
        out.indexing = (triplet_rows(Tq, Tdp, Tdn, c.gamma) * mask).mean();
        out.intra = (intra_leaf_loss_rows(Tdp, Tdn, Edp, Edn, c.gamma, c.tau) *
                     mask)
                            .mean();
        out.total =
                out.total + c.lambda2 * out.indexing + c.lambda3 * out.intra;
    }
    if (c.balance > 0) {
        // Over a uniform sample of the corpus: what the index stores and
        // scans. The positives follow the queries, which may favour a
        // minority of the documents (paper appendix B); balancing them
        // would squeeze the rest.
        std::vector<int64_t> sample(n);
        for (auto& r : sample) {
            r = int64_t(rng() % uint64_t(data.nd));
        }
        out.balance = balance_kl(
                tree->leaf_log_probs(to_tree(enc->forward(din, sample))));
        out.total = out.total + c.balance * out.balance;
    }
    if (c.routing > 0) {
        // Queries toward the leaf the tree stores d+ in.
        out.routing = route_ce(leaves_of(Edp, drows, n), tEq);
        out.total = out.total + c.routing * out.routing;
        if (c.doc_routing > 0) {
            // Documents toward their own leaves: a prior that keeps the
            // router near nearest-leaf routing where training queries are
            // few.
            out.total = out.total +
                    c.routing * c.doc_routing * doc_routing_ce(drows, Ed, rng);
        }
    }
    return out;
}

torch::Tensor JointRun::doc_routing_ce(const std::vector<int64_t>& drows,
                                       const torch::Tensor& Ed,
                                       std::mt19937_64& rng) {
    const int64_t count = int64_t(drows.size());
    // Inputs that only the tree terms see: with the gradient stopped at
    // the tree (tree_grad 0), no graph to keep.
    auto encode_for_tree = [&](const EncoderInput& in,
                               const std::vector<int64_t>& r) {
        torch::AutoGradMode grad(c.tree_grad > 0);
        return enc->forward(in, r);
    };
    std::vector<int64_t> rows = drows;
    torch::Tensor E = Ed;
    if (c.doc_routing_corpus) {
        for (auto& r : rows) {
            r = int64_t(rng() % uint64_t(data.nd));
        }
        E = encode_for_tree(din, rows);
    }
    const std::vector<int64_t> target = leaves_of(E, rows, count);
    if (!is_text || route_window <= 0) {
        return route_ce(target, to_tree(E));
    }
    // A random excerpt of each document: routed like a query would be.
    std::vector<std::vector<int64_t>> excerpt(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; i++) {
        const auto& t = data.doc_tokens[size_t(rows[i])];
        const size_t w = std::min(t.size(), size_t(route_window));
        const size_t at = t.size() > w ? size_t(rng() % (t.size() - w + 1)) : 0;
        excerpt[size_t(i)].assign(t.begin() + at, t.begin() + at + w);
    }
    EncoderInput xin;
    xin.tokens = &excerpt;
    xin.n = count;
    std::vector<int64_t> all(static_cast<size_t>(count));
    std::iota(all.begin(), all.end(), int64_t(0));
    return route_ce(target, to_tree(encode_for_tree(xin, all)));
}

std::string JointRun::last_good_checkpoint() const {
    if (last_good_epoch >= 0) {
        return "the last good checkpoint is '" + ckpt_path + "' (after epoch " +
                std::to_string(last_good_epoch) + "), left unchanged";
    }
    return ckpt_path.empty() ? "no checkpoint_dir was set"
                             : "no checkpoint was written by this run";
}

// Time left from the pace so far (tree epochs cost more than warm-up ones,
// so the estimate rises a little when the tree starts).
double JointRun::eta_seconds(int epoch, int64_t step) const {
    double done = double(epoch - first_epoch) * steps + double(step);
    double total = double(c.epochs - first_epoch) * steps;
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                              run_start)
                        .count();
    return done > 0 ? el * (total - done) / done : 0.0;
}

void JointRun::train_steps(int epoch, EpochStats& es) {
    std::vector<size_t> order(train_pairs.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::mt19937_64 rng(c.seed + uint64_t(epoch));
    std::shuffle(order.begin(), order.end(), rng);
    const bool tree_on = st.tree_ready && tree_loss;

    double acc[6] = {0, 0, 0, 0, 0, 0};
    for (int64_t s = 0; s < steps; s++) {
        size_t i0 = size_t(s) * c.batch;
        size_t i1 = std::min(order.size(), i0 + c.batch);
        const int64_t n = int64_t(i1 - i0);
        std::vector<int64_t> qrows(n), drows(2 * n);
        std::vector<float> negmask(n, 1.0f);
        for (int64_t i = 0; i < n; i++) {
            const auto& p = train_pairs[order[i0 + i]];
            qrows[i] = p.first;
            drows[i] = p.second;
        }
        for (int64_t i = 0; i < n; i++) {
            const auto& h = st.hard[qrows[i]];
            // hard negative if mined, else the next pair's document
            int64_t neg = h.empty() ? drows[(i + 1) % n] : h[rng() % h.size()];
            drows[n + i] = neg;
            const auto& r = rel[qrows[i]];
            if (std::binary_search(r.begin(), r.end(), neg)) {
                negmask[i] = 0; // not a negative for this query
            }
        }
        StepLoss loss = step_loss(qrows, drows, negmask, rng);
        double lv = loss.total.item<double>();
        if (!std::isfinite(lv)) {
            if (c.progress) {
                std::fprintf(stderr, "\n");
            }
            FAISS_THROW_FMT("JointTrainer: non-finite loss (%g) at epoch %d, "
                            "step %lld of %lld; %s",
                            lv, epoch + 1, (long long)(s + 1), (long long)steps,
                            last_good_checkpoint().c_str());
        }
        // (IDENTITY with only the siamese term, e.g. during warm-up, has
        // nothing to learn: the loss then needs no gradient.)
        if (loss.total.requires_grad()) {
            if (enc_opt) {
                enc_opt->zero_grad();
            }
            tree_opt->zero_grad();
            loss.total.backward();
            if (enc_opt) {
                enc_opt->step();
            }
            enc->sparse_step(enc_lr, c.weight_decay);
            if (tree_on) {
                tree_opt->step();
            }
        }
        auto value = [](const torch::Tensor& t) {
            return t.defined() ? t.item<double>() : 0.0;
        };
        acc[0] += lv;
        acc[1] += value(loss.siamese);
        acc[2] += value(loss.indexing);
        acc[3] += value(loss.intra);
        acc[4] += value(loss.balance);
        acc[5] += value(loss.routing);
        if (c.progress && (s % 8 == 0 || s + 1 == steps)) {
            draw_progress(epoch + 1, c.epochs, s + 1, steps, acc[0] / (s + 1),
                          eta_seconds(epoch, s + 1));
        }
    }
    FAISS_THROW_IF_NOT_FMT(all_finite(*enc) && all_finite(*tree),
                           "JointTrainer: non-finite parameters after epoch "
                           "%d; %s",
                           epoch + 1,
                           last_good_epoch >= 0
                                   ? last_good_checkpoint().c_str()
                                   : "no checkpoint was written by this run");
    double ns = double(std::max<int64_t>(steps, 1));
    es.loss = float(acc[0] / ns);
    es.siamese = float(acc[1] / ns);
    es.indexing = float(acc[2] / ns);
    es.intra_leaf = float(acc[3] / ns);
    es.balance_term = float(acc[4] / ns);
    es.routing_term = float(acc[5] / ns);
}

void JointRun::measure(EpochStats& es) {
    if (!st.tree_ready) {
        return;
    }
    TreeSnapshot snap;
    const std::vector<float> docs = enc->encode_all(din);
    snapshot(snap, docs);
    LoadStats ls = snap.loads();
    if (c.recluster && c.drift_refit > 0 &&
        (ls.empty_leaves > 0 || ls.expected_load > c.drift_refit)) {
        // The moving encoder carried documents away from their leaves
        // faster than the scheduled re-fits follow (small collections
        // with many leaves): re-fit now rather than train on, and build
        // from, drifted leaves.
        LOG(INFO) << "JointTrainer: epoch " << es.epoch << ": leaves drifted ("
                  << ls.empty_leaves << " empty, expected load "
                  << ls.expected_load << "x ideal); re-fitted";
        refit_leaves(docs);
        snapshot(snap, docs);
        ls = snap.loads();
    }
    es.max_load = ls.max_load;
    es.expected_load = ls.expected_load;
    es.empty_leaves = ls.empty_leaves;
    if (!heldout_queries.empty()) {
        std::vector<float> hx = encode_queries(heldout_queries);
        std::vector<std::vector<int64_t>> relv;
        for (int64_t q : heldout_queries) {
            relv.push_back(rel[q]);
        }
        es.heldout_recall = recall_at(snap, int64_t(heldout_queries.size()),
                                      hx.data(), relv, c.beam, 100);
    }
}

void JointRun::report(const EpochStats& es, double steps_seconds) {
    char line[400];
    std::snprintf(line, sizeof(line),
                  "epoch %d/%d loss %.4f (siamese %.4f indexing %.4f "
                  "intra %.4f balance %.4f routing %.4f) max_load %.2f "
                  "expected_load %.2f empty %d heldout R@100 %.4f "
                  "%.2fs (steps %.0f pairs/s)",
                  es.epoch, c.epochs, es.loss, es.siamese, es.indexing,
                  es.intra_leaf, es.balance_term, es.routing_term, es.max_load,
                  es.expected_load, es.empty_leaves, es.heldout_recall,
                  es.seconds,
                  double(train_pairs.size()) / std::max(steps_seconds, 1e-9));
    if (c.progress) {
        std::fprintf(stderr, "\r%s\n", line);
    }
    LOG(INFO) << "JointTrainer: " << line;
}

void JointRun::check_collapse(const EpochStats& es) {
    if (!st.tree_ready) {
        return;
    }
    std::string collapse =
            collapse_report({es.max_load, es.expected_load, es.empty_leaves},
                            size_t(L), c.collapse_load);
    if (collapse.empty()) {
        return;
    }
    LOG(WARNING) << "JointTrainer: epoch " << es.epoch << ": " << collapse;
    FAISS_THROW_IF_NOT_FMT(!c.stop_on_collapse,
                           "JointTrainer: stopped at epoch %d: %s. The "
                           "checkpoint (if any) is the previous epoch's. "
                           "Balance it (balance > 0, init kmeans, "
                           "fixed_leaves) or set stop_on_collapse = false "
                           "(--stop_on_collapse=false) to go on",
                           es.epoch, collapse.c_str());
}

bool JointRun::run_epochs() {
    first_epoch = st.epoch;
    run_start = std::chrono::steady_clock::now();
    for (int epoch = st.epoch; epoch < c.epochs; epoch++) {
        auto t0 = std::chrono::steady_clock::now();
        start_epoch(epoch);
        EpochStats es;
        es.epoch = epoch + 1;
        const auto steps_start = std::chrono::steady_clock::now();
        train_steps(epoch, es);
        const double steps_seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                              steps_start)
                        .count();
        measure(es);
        es.seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - t0)
                             .count();
        st.history.push_back(es);
        st.epoch = epoch + 1;
        report(es, steps_seconds);
        check_collapse(es);
        if (!ckpt_path.empty()) {
            save_checkpoint(ckpt_path, fingerprint, st, enc, tree,
                            enc_opt.get(), *tree_opt);
            last_good_epoch = st.epoch;
        }
        if (stop_after_epoch > 0 && st.epoch >= stop_after_epoch &&
            st.epoch < c.epochs) {
            return false; // as if killed
        }
    }
    return true;
}

JointModel JointRun::build_index() {
    if (!st.tree_ready) {
        init_tree(); // all epochs were warm-up
    }
    const std::vector<float> docs = enc->encode_all(din);
    if (st.tree_ready && c.recluster) {
        // The documents moved since the last re-fit: fit the leaves to
        // where they are now, or their nearest-leaf placement in the
        // built index may be less balanced than training saw.
        refit_leaves(docs);
    }
    JointModel model;
    model.history = st.history;
    torch::NoGradGuard ng;
    EHITree ehi = tree->to_ehi();
    auto* q = new EHITreeQuantizer(m, c.B, c.H, metric, c.form);
    q->tree = ehi;
    if (!st.start_reps.empty()) {
        q->leaf_representatives = st.start_reps;
    }
    if (!c.fixed_leaves) {
        q->compute_representatives(data.nd, docs.data());
    }
    q->update_is_trained();
    auto* ivf = new IndexEHITree(q, metric);
    ivf->is_trained = true;
    ivf->d2l = c.d2l;
    ivf->assign_rule = doc_assign;
    ivf->nprobe = std::min<size_t>(c.beam, ivf->nlist);
    if (c.encoder == EncoderKind::IDENTITY) {
        model.index.reset(ivf);
    } else {
        auto* pt = new faiss::IndexPreTransform(enc->to_faiss().release(), ivf);
        pt->own_fields = true;
        model.index.reset(pt);
    }
    if (is_text) {
        model.text_encoder = enc->to_text_encoder(text->vocab);
    }
    return model;
}

} // namespace

std::vector<int64_t> heldout_queries(
        int64_t nq, const std::vector<std::pair<int64_t, int64_t>>& pairs,
        uint64_t seed, double fraction) {
    FAISS_THROW_IF_NOT_FMT(fraction >= 0 && fraction < 1,
                           "heldout_queries: fraction %g not in [0, 1)",
                           fraction);
    FAISS_THROW_IF_NOT_FMT(nq >= 0, "heldout_queries: nq %" PRId64 " < 0",
                           nq);
    std::vector<char> has_pair(size_t(nq), 0);
    for (const auto& p : pairs) {
        FAISS_THROW_IF_NOT_FMT(p.first >= 0 && p.first < nq,
                               "heldout_queries: pair query %" PRId64
                               " outside [0, %" PRId64 ")",
                               p.first, nq);
        has_pair[size_t(p.first)] = 1;
    }
    std::vector<int64_t> order;
    for (int64_t q = 0; q < nq; q++) {
        if (has_pair[size_t(q)]) {
            order.push_back(q);
        }
    }
    std::mt19937_64 rng(seed ^ 0x5eedf00dULL);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(size_t(std::floor(fraction * double(order.size()))));
    std::sort(order.begin(), order.end());
    return order;
}

JointTrainer::JointTrainer(JointTrainerConfig cfg) : cfg_(std::move(cfg)) {
    cfg_.check();
}

JointModel JointTrainer::train(const PairData& data, const TextInit* text) {
    cfg_.check();
    const bool is_text = cfg_.encoder == EncoderKind::TEXT;
    FAISS_THROW_IF_NOT_MSG(!is_text || text,
                           "JointTrainer: the TEXT encoder needs a TextInit");
    const JointTrainerConfig c = cfg_.resolved(is_text ? text->dim : data.d);
    data.check(c.encoder, is_text ? int64_t(text->vocab.size()) : 0);
    if (c.recipe == TrainRecipe::PROBE) {
        return train_probe(data, c.scheduled(data.pairs.size()));
    }
    // torch resets OpenMP to one thread at start-up: by default the
    // training uses every processor
    TorchThreadScope threads(c.threads > 0 ? c.threads : omp_get_num_procs());
    JointRun run(c, data, text, stop_after_epoch);
    run.split_data();
    run.build_modules();
    run.open_checkpoint();
    if (!run.run_epochs()) {
        JointModel partial; // stopped early: the history, no index
        partial.history = run.history();
        return partial;
    }
    return run.build_index();
}

} // namespace trainer
} // namespace faiss_ehi
