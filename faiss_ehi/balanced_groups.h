/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <vector>

#include <faiss_ehi/EHITree.h>

namespace faiss_ehi {

/** Cut N points (N x d, N a multiple of B) into N / B groups of exactly B
 * points, keeping near points together: k-means for the group centres,
 * then a few rounds of a capacity-limited assignment (all point-centre
 * pairs in order of distance, each point to the first centre with room)
 * and centre updates. A full tree needs exactly B children per node,
 * which plain k-means does not give.
 *
 * @param order    out, N: the points in group-major order (group g holds
 *                 order[g*B .. g*B+B))
 * @param centres  out, (N/B) x d: the mean of each group's points */
void balanced_groups(idx_t N, int d, const float* x, int B, int niter, int seed,
                     std::vector<idx_t>& order, std::vector<float>& centres);

} // namespace faiss_ehi
