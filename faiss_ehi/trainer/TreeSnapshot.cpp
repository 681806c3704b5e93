/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/TreeSnapshot.h>

#include <cstdio>

#include <algorithm>

#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/EHITreeQuantizer.h>

namespace faiss_ehi {
namespace trainer {

void TreeSnapshot::build(const EHITree& tree, faiss::MetricType metric,
                         int64_t nd, const float* docs, DocAssignRule rule,
                         int d2l, const std::vector<float>* start_reps,
                         bool keep_start_reps) {
    auto* q = new EHITreeQuantizer(tree.m, tree.B, tree.H, metric, tree.form);
    q->tree = tree;
    if (start_reps && start_reps->size() == size_t(tree.nleaves()) * tree.m) {
        q->leaf_representatives = *start_reps;
    }
    FAISS_THROW_IF_NOT_MSG(!keep_start_reps ||
                                   q->leaf_representatives.size() ==
                                           size_t(tree.nleaves()) * tree.m,
                           "TreeSnapshot: keep_start_reps without start_reps");
    if (nd > 0 && !keep_start_reps) {
        q->compute_representatives(nd, docs);
    } else if (q->leaf_representatives.empty()) {
        q->leaf_representatives.assign(size_t(tree.nleaves()) * tree.m, 0.0f);
    }
    q->update_is_trained();
    FAISS_THROW_IF_NOT_MSG(q->is_trained, "TreeSnapshot: tree not trained");
    index.reset(new IndexEHITree(q, metric));
    index->is_trained = true;
    index->d2l = d2l;
    index->assign_rule = rule;
    if (nd > 0) {
        index->add(nd, docs);
    }
}

LoadStats load_stats(const std::vector<idx_t>& list_sizes) {
    LoadStats s;
    const size_t L = list_sizes.size();
    double N = 0, sq = 0, mx = 0;
    for (idx_t n : list_sizes) {
        double c = double(n);
        N += c;
        sq += c * c;
        mx = std::max(mx, c);
        s.empty_leaves += c == 0;
    }
    if (N > 0) {
        double ideal = N / double(L);
        s.max_load = mx / ideal;
        s.expected_load = (sq / N) / ideal;
    }
    return s;
}

std::string collapse_report(const LoadStats& s, size_t nleaves, double limit) {
    if (s.empty_leaves == 0 && s.expected_load <= limit) {
        return "";
    }
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "the tree collapsed: %d of %zu leaves empty, expected "
                  "load %.2fx ideal (limit %.2fx), largest leaf %.2fx ideal",
                  s.empty_leaves, nleaves, s.expected_load, limit, s.max_load);
    return buf;
}

LoadStats TreeSnapshot::loads() const {
    std::vector<idx_t> sizes(index->nlist);
    for (size_t l = 0; l < sizes.size(); l++) {
        sizes[l] = idx_t(index->invlists->list_size(l));
    }
    return load_stats(sizes);
}

std::vector<idx_t> TreeSnapshot::search(int64_t n, const float* q, int k,
                                        int beam) const {
    std::vector<float> D(size_t(n) * k);
    std::vector<idx_t> I(size_t(n) * k);
    faiss::SearchParametersIVF params;
    params.nprobe = std::min<size_t>(beam, index->nlist);
    index->search(n, q, k, D.data(), I.data(), &params);
    return I;
}

std::vector<std::vector<int64_t>> mine_hard_negatives(
        const TreeSnapshot& snap, int64_t n, const float* q,
        const std::vector<std::vector<int64_t>>& relevant, int beam,
        int count) {
    std::vector<std::vector<int64_t>> out(n);
    if (n == 0 || count == 0) {
        return out;
    }
    size_t max_rel = 0;
    for (const auto& r : relevant) {
        max_rel = std::max(max_rel, r.size());
    }
    int k = int(std::min<int64_t>(count + max_rel, snap.index->ntotal));
    if (k <= 0) {
        return out;
    }
    std::vector<idx_t> I = snap.search(n, q, k, beam);
    for (int64_t i = 0; i < n; i++) {
        for (int j = 0; j < k && int(out[i].size()) < count; j++) {
            idx_t id = I[size_t(i) * k + j];
            if (id >= 0 &&
                !std::binary_search(relevant[i].begin(), relevant[i].end(),
                                    int64_t(id))) {
                out[i].push_back(id);
            }
        }
    }
    return out;
}

double recall_at(const TreeSnapshot& snap, int64_t n, const float* q,
                 const std::vector<std::vector<int64_t>>& relevant, int beam,
                 int k) {
    if (n == 0) {
        return -1;
    }
    k = int(std::min<int64_t>(k, snap.index->ntotal));
    std::vector<idx_t> I = snap.search(n, q, k, beam);
    double sum = 0;
    int64_t counted = 0;
    for (int64_t i = 0; i < n; i++) {
        if (relevant[i].empty()) {
            continue;
        }
        size_t hit = 0;
        for (int j = 0; j < k; j++) {
            idx_t id = I[size_t(i) * k + j];
            hit += id >= 0 &&
                    std::binary_search(relevant[i].begin(), relevant[i].end(),
                                       int64_t(id));
        }
        sum += double(hit) / double(relevant[i].size());
        counted++;
    }
    return counted ? sum / counted : -1;
}

} // namespace trainer
} // namespace faiss_ehi
