/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss/Index.h>

namespace faiss_ehi {

using idx_t = faiss::Index::idx_t;

/// How a tree node scores its B children (docs/DESIGN.md, "The tree and
/// its node forms").
enum class NodeForm : int {
    /// The paper's form: per level h one W_h (n_h x B) and U_h (n_h x n_h)
    /// over [onehot(path); u], F_h(x) = x + ReLU(U_h^T x).
    PAPER = 0,
    /// One classifier per internal node: W_v (m x B) and bias b_v (B).
    PER_NODE = 1,
};

/// How the tree picks the leaves for a query.
enum class BeamStrategy : int {
    /** Best-first expansion (default). Because a child's probability never
     * exceeds its parent's, popping nodes in order of path probability yields
     * the exact top-beta leaves, in order. The leaf set for beam b is a prefix
     * of the one for beam b+1, so recall never falls as the beam grows. */
    BEST_FIRST = 0,
    /** The paper's level-wise beam (Algorithm 2, TOPK-INDEXER): keep the
     * beta best nodes per level. Cheaper per level with batched GEMMs, but
     * neither exact nor nested in beta. */
    LEVEL_BEAM = 1,
    /** Group-major leaf ranking (per-node form; the default of trees built
     * by FlatKMeansTreeInit). The nodes at depth H-1 ("groups") are chosen
     * best-first by path probability, as many as
     * EHITree::groups_for_beam(beta) says; the children of every chosen
     * group are then scored with their raw logits W_v u + b_v, which the
     * trainers keep comparable across groups (one softmax over all
     * leaves), and the beta best are returned in that order. With every
     * group expanded and nearest-centroid logits this is exactly Faiss
     * IVF's probe order; the returned probabilities are the softmax of the
     * leaf logits over the scored candidates. */
    GROUPED = 2,
};

/** The EHI tree: B-ary, H levels, routing on an m-dimensional input u.
 *
 * Levels are numbered h = 0..H-1 here (level h scores the children of the
 * nodes at depth h). A node at depth h is named by its index in
 * [0, B^h): the base-B digits of the index, most significant first, are its
 * path (i_1, ..., i_h). Leaves are the nodes at depth H, so leaf ids are in
 * [0, B^H).
 *
 * Paper form, level h: the input is x_h = [onehot(i_h); ...; onehot(i_1); u]
 * with n_h = B*h + m entries (the latest choice's block first, as in the
 * paper's eq. 1). U[h] is n_h x n_h and W[h] is n_h x B, both row-major with
 * the input index as row, so the unit j of U_h^T x is sum_i x_i U[h][i*n_h+j].
 *
 * Per-node form, level h: node_W[h] holds B^h * B * m floats laid out
 * [node][child][m] (each child's weight vector contiguous) and node_b[h]
 * holds B^h * B biases.
 *
 * All routing methods are const and thread-safe.
 */
struct EHITree {
    int B = 0; ///< branching factor
    int H = 0; ///< height (number of routing levels)
    int m = 0; ///< routing dimension
    NodeForm form = NodeForm::PER_NODE;
    /// paper form: a bias per level (not in the paper: without it a level
    /// cannot express L2 nearest-centroid routing, 2 c.u - |c|^2)
    bool use_bias = true;
    BeamStrategy strategy = BeamStrategy::BEST_FIRST;
    bool is_trained = false; ///< parameters have been set

    std::vector<std::vector<float>> U;      ///< paper form, per level
    std::vector<std::vector<float>> W;      ///< paper form, per level
    std::vector<std::vector<float>> bias;   ///< paper form, per level (B)
    std::vector<std::vector<float>> node_W; ///< per-node form, per level
    std::vector<std::vector<float>> node_b; ///< per-node form, per level

    /** GROUPED strategy: groups (nodes at depth H-1) expanded for a beam of
     * beta leaves is group_expansion[ceil(log2(beta))] (the last entry
     * for larger beams), at most B^(H-1). Empty: every group, i.e. exact
     * flat ranking of all leaves. Calibrated on held-out training queries
     * by calibrate_group_expansion (ProbeCalibration.h). */
    std::vector<int32_t> group_expansion;

    EHITree() = default;
    EHITree(int B, int H, int m, NodeForm form = NodeForm::PER_NODE);

    /// Number of leaves B^H.
    idx_t nleaves() const;
    /// Number of nodes at depth h (B^h).
    idx_t nodes_at_depth(int h) const;
    /// Input size of level h in the paper form: B*h + m.
    int n_input(int h) const;
    /// Total number of parameters.
    size_t nparams() const;

    /// Paper form: set level h from plain arrays (U: n_h*n_h, W: n_h*B,
    /// bias: B or nullptr for zeros). Marks the tree trained once every
    /// level has been set.
    void set_paper_level(int h, const float* U, const float* W,
                         const float* bias = nullptr);
    /// Per-node form: set level h (W: B^h*B*m, b: B^h*B or nullptr).
    void set_node_level(int h, const float* W, const float* b = nullptr);
    /// Declare that every level has been set (checks sizes and finiteness).
    void finalize();

    /// Seeded random initialisation (Gaussian, std 1/sqrt(fan-in)).
    void init_random(uint64_t seed);

    /** Route n inputs (n x m): the `beam` most probable leaves per input,
     * ordered by decreasing path probability, and those probabilities.
     * Outputs are n x beam; if beam > B^H the tail is padded with -1 / 0.
     * `probs` may be nullptr when the caller needs the leaves only: the
     * GROUPED strategy then skips its softmax over every scored leaf (a
     * tenth of a 1,024-leaf search's time).
     * @param strategy_override  -1 to use `strategy`, else a BeamStrategy */
    void route(idx_t n, const float* u, idx_t beam, idx_t* leaves, float* probs,
               int strategy_override = -1) const;

    /// Probabilities of all B^H leaves (n x B^H), factorised evaluation.
    void all_leaf_probabilities(idx_t n, const float* u, float* probs) const;

    /** Reference evaluation that builds the concatenated input x_h for every
     * node and applies the equations literally (slow; for tests). */
    void all_leaf_probabilities_naive(idx_t n, const float* u,
                                      float* probs) const;

    /** Path embedding T(u) = [P^1; ...; P^H] (n x B*H) along the most
     * probable path (Algorithm 2, INDEXER). */
    void path_embedding(idx_t n, const float* u, float* T) const;

    /** Log-softmax scores of the B children of one node (factorised).
     * @param node  index of the node at depth h
     * @param pre   per-query level precompute (see level_precompute) or
     *              nullptr to compute it here
     * @param scratch  n_input(h) floats of workspace (paper form), or
     *              nullptr to allocate them */
    void child_log_probs(int h, idx_t node, const float* u, const float* pre,
                         float* out, float* scratch = nullptr) const;

    /** Per-level, per-query work shared by all nodes of the level, for a
     * batch of n inputs: paper form [U_h^emb^T u ; W_h^emb^T u] (n x
     * (n_h + B)) as one BLAS GEMM; per-node form at h = 0 the root scores.
     * Returns the row stride. */
    size_t level_precompute(int h, idx_t n, const float* u,
                            std::vector<float>& out) const;

    /// GROUPED strategy: how many groups a beam of `beam` leaves expands.
    idx_t groups_for_beam(idx_t beam) const;

    /** Raw leaf logits W_v u + b_v of every leaf (n x B^H, per-node form):
     * the scores GROUPED ranks, computed for all groups. */
    void all_leaf_logits(idx_t n, const float* u, float* logits) const;

    /// Throws unless the parameters are consistent and finite.
    void check_consistent() const;

    /// Level h's parameters of the tree's form have their expected sizes.
    bool level_sized(int h) const;

  private:
    /// Mark the tree trained once every level has its parameters.
    void finalize_if_complete();

    /// The per-level precomputes of a batch of inputs.
    struct Precomputed {
        std::vector<std::vector<float>> buf;
        std::vector<size_t> stride;
        /// Row of input q at level h, or nullptr where nothing is shared.
        const float* row(int h, idx_t q) const {
            return stride[h] ? buf[h].data() + size_t(q) * stride[h] : nullptr;
        }
    };
    void precompute_levels(idx_t n, const float* u, Precomputed& pre) const;
    void route_one_best_first(const float* u, const Precomputed& pre, idx_t q,
                              idx_t beam, idx_t* leaves, float* probs) const;
    void route_one_level_beam(const float* u, const Precomputed& pre, idx_t q,
                              idx_t beam, idx_t* leaves, float* probs) const;
    /// Best-first down to depth `depth`: the `count` most probable nodes.
    void best_nodes(const float* u, const Precomputed& pre, idx_t q, int depth,
                    idx_t count, idx_t* nodes) const;
    /// GROUPED: leaf scores of every (query, group) pair, one GEMM per
    /// group over the queries that chose it.
    void score_groups_gemm(idx_t nb, const float* u, idx_t G,
                           const std::vector<idx_t>& start,
                           const std::vector<idx_t>& order,
                           std::vector<float>& scores) const;
    /// GROUPED: the beam best of one query's G*B scored leaves, and their
    /// probabilities unless probs is nullptr.
    void select_grouped(const float* scores, const idx_t* groups, idx_t G,
                        idx_t beam, idx_t* leaves, float* probs) const;
    /// GROUPED routing of a block of nb inputs (group-major scoring).
    void route_grouped(idx_t nb, const float* u, const Precomputed& pre,
                       idx_t beam, idx_t* leaves, float* probs) const;
};

/// Throws if any of the n*d values is NaN or infinite; `what` names the data.
void check_finite(idx_t n, int d, const float* x, const char* what);

} // namespace faiss_ehi
