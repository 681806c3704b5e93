# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Which shard owns which leaf: the placement strategies (balanced, contiguous, coprobe, coprobe_leaves) and the count of shards a query touches."""

import numpy as np

import faiss

import faiss_ehi

from .common import STRATEGIES


def _ivf_parts(index):
    """(ivf, transforms): the IndexIVF with an EHI tree inside `index` and
    the VectorTransforms the client applies before routing."""
    if not isinstance(index, faiss.Index):
        raise TypeError(f"expected a faiss.Index, got {type(index).__name__}")
    transforms = []
    inner = index
    if isinstance(index, faiss.IndexPreTransform):
        transforms = [index.chain.at(i) for i in range(index.chain.size())]
        inner = faiss.downcast_index(index.index)
    if not isinstance(inner, faiss.IndexIVF):
        raise TypeError("faiss_ehi.distributed needs an IVF index with an EHI "
                        "tree quantizer (optionally under an "
                        f"IndexPreTransform), got {type(index).__name__}")
    ivf = faiss.extract_index_ivf(inner)
    if faiss_ehi.tree_quantizer(ivf) is None:
        raise TypeError("faiss_ehi.distributed: the IVF index's quantizer is "
                        "not an EHI tree (use faiss.IndexShards for plain "
                        "IVF indexes)")
    if ivf.direct_map.type != faiss.DirectMap.NoMap:
        raise ValueError("faiss_ehi.distributed: the index has a direct map "
                         "(make_direct_map); its entries would point into "
                         "other shards' lists. Call "
                         "index.set_direct_map_type(faiss.DirectMap.NoMap)")
    return ivf, transforms


def _list_sizes(ivf):
    il = ivf.invlists
    return np.array([il.list_size(i) for i in range(ivf.nlist)],
                    dtype=np.int64)


def _route_sample(index, ivf, sample, nprobe, strategy):
    """The leaves (rows of -1-padded ids) that a beam of `nprobe` reaches
    for each row of `sample`, routed as DistributedEHI routes queries."""
    if sample is None or nprobe is None:
        raise ValueError(f"strategy {strategy!r} needs a sample of queries "
                         "(or documents) and the beam nprobe to route them "
                         "at")
    x = faiss_ehi._as_matrix(sample, "sample", index.d)
    if isinstance(index, faiss.IndexPreTransform):
        for i in range(index.chain.size()):
            x = np.ascontiguousarray(index.chain.at(i).apply(x),
                                     dtype=np.float32)
    _, Iq = faiss_ehi.tree_quantizer(ivf).search(
        x, min(faiss_ehi._check_int(nprobe, "nprobe", 1), ivf.nlist))
    return Iq


def shards_touched(leaves, leaf_to_shard, n_shards=None):
    """Shards a query is sent to, per row of `leaves` (the probed leaves
    of each query, -1 padded, e.g. from the tree quantizer's search or
    DistributedEHI.route): computed from the routing alone, without a
    cluster, to compare leaf placements quickly."""
    leaves = np.asarray(leaves, dtype=np.int64)
    owner = np.asarray(leaf_to_shard, dtype=np.int64)
    n_shards = int(owner.max()) + 1 if n_shards is None else int(n_shards)
    hit = np.zeros((len(leaves), n_shards), dtype=bool)
    rows = np.repeat(np.arange(len(leaves)), leaves.shape[1])
    ok = leaves.ravel() >= 0
    hit[rows[ok], owner[leaves.ravel()[ok]]] = True
    return hit.sum(axis=1)


def _leaf_incidence(Iq, nlist):
    """CSR of the sample rows probing each leaf: rows[ptr[l]:ptr[l+1]]."""
    q = np.repeat(np.arange(len(Iq)), Iq.shape[1])
    l = Iq.ravel()
    ok = l >= 0
    q, l = q[ok], l[ok]
    order = np.argsort(l, kind="stable")
    ptr = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(np.bincount(l, minlength=nlist), out=ptr[1:])
    return ptr, q[order]


def _capacity_assign(score, weights, cap):
    """Each leaf to a group, the (leaf, group) pairs of highest score
    first, skipping groups that it would take over `cap`; leaves that fit
    nowhere go to the emptiest group."""
    n, k = score.shape
    owner = np.full(n, -1, dtype=np.int64)
    load = np.zeros(k)
    for f in np.argsort(-score, axis=None, kind="stable"):
        l, g = divmod(int(f), k)
        if owner[l] < 0 and load[g] + weights[l] <= cap:
            owner[l] = g
            load[g] += weights[l]
    for l in np.nonzero(owner < 0)[0]:
        g = int(np.argmin(load))
        owner[l] = g
        load[g] += weights[l]
    return owner


def _spectral_init(Iq, nlist, weights, n_shards, cap, seed):
    """Leaves embedded by the top eigenvectors of the normalised co-probe
    graph (edge weight: sample rows whose beam reaches both leaves), so
    that leaves probed together lie close; then a size-capped spherical
    k-means of the embedding into n_shards groups."""
    L = Iq[(Iq >= 0).all(axis=1)]
    pairs = (L[:, :, None] * nlist + L[:, None, :]).ravel()
    A = np.bincount(pairs, minlength=nlist * nlist).reshape(
        nlist, nlist).astype(np.float64)
    np.fill_diagonal(A, 0)
    dinv = 1 / np.sqrt(A.sum(axis=1) + 1e-9)
    _, vecs = np.linalg.eigh(dinv[:, None] * A * dinv[None, :])
    E = vecs[:, -n_shards:] * dinv[:, None]
    E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    rs = np.random.RandomState(seed)
    C = E[rs.choice(nlist, n_shards, replace=False)]
    for _ in range(20):
        owner = _capacity_assign(E @ C.T, weights, cap)
        for g in range(n_shards):
            c = (E[owner == g] * weights[owner == g, None]).sum(axis=0)
            C[g] = c / max(np.linalg.norm(c), 1e-12)
    return owner


def _refine(owner, ptr, rows, n_rows, weights, n_shards, cap, seed,
            max_passes=20):
    """Local search on the measured objective, the number of distinct
    shards per sample row: a leaf moves to the shard that lowers it most
    among those it fits in; when the best shard is full, the leaf is
    swapped with the leaf of that shard whose move back lowers it most,
    if the pair together gains. Stops when a pass changes nothing."""
    owner = owner.copy()
    nlist = len(weights)
    cnt = np.zeros((n_rows, n_shards), dtype=np.int32)  # row's leaves/shard
    np.add.at(cnt, (rows, owner[np.repeat(np.arange(nlist),
                                          np.diff(ptr))]), 1)
    load = np.bincount(owner, weights=weights, minlength=n_shards)
    rs = np.random.RandomState(seed)
    big = np.iinfo(np.int64).max // 4
    for _ in range(max_passes):
        changed = 0
        for l in rs.permutation(nlist):
            Q = rows[ptr[l]:ptr[l + 1]]
            if len(Q) == 0:
                continue
            a = owner[l]
            sub = cnt[Q]
            # Moving l from a to b: rows that had no leaf in b gain a
            # shard, rows whose only leaf in a was l lose one.
            delta = (sub == 0).sum(axis=0) - (sub[:, a] == 1).sum()
            delta[a] = big
            fit = np.where(load + weights[l] <= cap, delta, big)
            b = int(np.argmin(fit))
            if fit[b] < 0:
                cnt[Q, a] -= 1
                cnt[Q, b] += 1
                owner[l] = b
                load[a] -= weights[l]
                load[b] += weights[l]
                changed += 1
                continue
            b = int(np.argmin(delta))
            if delta[b] >= 0:
                continue
            ms = np.nonzero(owner == b)[0]
            ms = ms[(load[a] - weights[l] + weights[ms] <= cap) &
                    (load[b] + weights[l] - weights[ms] <= cap)]
            lens = ptr[ms + 1] - ptr[ms]
            ms, lens = ms[lens > 0], lens[lens > 0]
            if len(ms) == 0:
                continue
            cnt[Q, a] -= 1  # tentatively move l, then price the returns
            cnt[Q, b] += 1
            R = np.concatenate([rows[ptr[m]:ptr[m + 1]] for m in ms])
            back = np.add.reduceat(
                (cnt[R, a] == 0).astype(np.int64) - (cnt[R, b] == 1),
                np.concatenate([[0], np.cumsum(lens)[:-1]]))
            j = int(np.argmin(back))
            if delta[b] + back[j] >= 0:
                cnt[Q, a] += 1
                cnt[Q, b] -= 1
                continue
            m = int(ms[j])
            Qm = rows[ptr[m]:ptr[m + 1]]
            cnt[Qm, b] -= 1
            cnt[Qm, a] += 1
            owner[l], owner[m] = b, a
            load[a] += weights[m] - weights[l]
            load[b] += weights[l] - weights[m]
            changed += 1
        if not changed:
            break
    return owner, (cnt > 0).sum(axis=1).mean()


def _perturb(owner, weights, n_shards, cap, rs):
    """A kick out of the refinement's local optimum: about one leaf in 25
    swaps shards with a random leaf of another shard (both shards staying
    within `cap`). Single moves and pair swaps cannot leave an optimum
    where several leaves would have to move together."""
    owner = owner.copy()
    load = np.bincount(owner, weights=weights, minlength=n_shards)
    n = len(owner)
    for _ in range(max(2, n // 25)):
        a, b = rs.randint(n, size=2)
        sa, sb = owner[a], owner[b]
        if sa == sb:
            continue
        if load[sa] - weights[a] + weights[b] <= cap and \
                load[sb] - weights[b] + weights[a] <= cap:
            owner[a], owner[b] = sb, sa
            load[sa] += weights[b] - weights[a]
            load[sb] += weights[a] - weights[b]
    return owner


def _default_rounds(nlist):
    """Perturbation rounds of coprobe_leaves when none are asked for: 200
    for 256 leaves, fewer for larger trees (each round refines over every
    leaf), at least 10."""
    return max(10, min(200, 51200 // max(nlist, 1)))


#: Above this many leaves the spectral start (a dense nlist x nlist
#: eigen-decomposition) costs too much; the refinement then starts from
#: the "balanced" map.
_SPECTRAL_MAX_NLIST = 4096


def _coprobe_leaves(index, ivf, weights, n_shards, tolerance, sample,
                    nprobe, start, rounds, seeds=3):
    """Leaves (not whole subtrees) partitioned into n_shards sets of at
    most `tolerance` times the mean documents, so that the leaves a
    sample row's beam reaches fall in few sets. Best of `seeds` runs on
    the sample's mean shards touched, then `rounds` of iterated local
    search: perturb the best map, refine it, keep it if the sample's mean
    drops."""
    Iq = _route_sample(index, ivf, sample, nprobe, "coprobe_leaves")
    ptr, rows = _leaf_incidence(Iq, ivf.nlist)
    cap = tolerance * weights.sum() / n_shards
    best = None
    for seed in range(seeds if ivf.nlist <= _SPECTRAL_MAX_NLIST else 1):
        init = _spectral_init(Iq, ivf.nlist, weights, n_shards, cap, seed) \
            if ivf.nlist <= _SPECTRAL_MAX_NLIST else start()
        owner, obj = _refine(init, ptr, rows, len(Iq), weights, n_shards,
                             cap, seed)
        if best is None or obj < best[1]:
            best = (owner, obj)
    # On GloVe-100 (EHI16x2, beam 11) the refined seeds stop at 3.02
    # shards per test query and 200 rounds bring it to 2.95 (EHI32x2, 50
    # rounds: 3.51 to 3.44), benchs/RESULTS.md.
    rs = np.random.RandomState(len(Iq))
    for r in range(_default_rounds(ivf.nlist) if rounds is None
                   else faiss_ehi._check_int(rounds, "rounds", 0)):
        owner, obj = _refine(_perturb(best[0], weights, n_shards, cap, rs),
                             ptr, rows, len(Iq), weights, n_shards, cap,
                             seeds + r)
        if obj < best[1]:
            best = (owner, obj)
    owner = best[0]
    # Every shard owns at least one leaf (a shard file with no leaves
    # would still be served): the emptiest shards take a leaf each from
    # the fullest when the partition left one empty.
    for s in np.nonzero(np.bincount(owner, minlength=n_shards) == 0)[0]:
        full = int(np.argmax(np.bincount(owner, weights=weights,
                                         minlength=n_shards)))
        mine = np.nonzero(owner == full)[0]
        owner[mine[np.argmin(weights[mine])]] = s
    return owner


def _coprobe_groups(index, ivf, width, weights, n_shards, tolerance, sample,
                    nprobe):
    """Subtrees placed one at a time, heaviest first, on the shard that the
    most sample queries probe together with it (placing it there costs
    those queries no extra shard), among the shards it fits in within
    `tolerance` times the mean; the emptiest shard when none fits."""
    Iq = _route_sample(index, ivf, sample, nprobe, "coprobe")
    G = ivf.nlist // width
    M = np.zeros((len(Iq), G), dtype=np.float32)  # query probes subtree
    rows = np.repeat(np.arange(len(Iq)), Iq.shape[1])
    ok = Iq.ravel() >= 0
    M[rows[ok], Iq.ravel()[ok] // width] = 1
    gw = weights.reshape(G, width).sum(axis=1)
    cap = tolerance * gw.sum() / n_shards
    S = np.zeros((len(Iq), n_shards), dtype=np.float32)  # query hits shard
    loads = np.zeros(n_shards)
    owner = np.empty(G, dtype=np.int64)
    for left, g in enumerate(np.argsort(-gw, kind="stable")):
        fits = loads + gw[g] <= cap
        # No shard may stay empty: once the subtrees left are as many as
        # the empty shards, each goes to one of them.
        if (loads == 0).sum() >= G - left:
            fits &= loads == 0
        if fits.any():
            affinity = np.where(fits, M[:, g] @ S, -1.0)
            # Ties (e.g. empty shards): the emptiest, then the lowest id.
            s = int(np.lexsort((np.arange(n_shards), loads, -affinity))[0])
        else:
            s = int(np.argmin(loads))
        owner[g] = s
        loads[s] += gw[g]
        S[:, s] = np.maximum(S[:, s], M[:, g])
    return np.repeat(owner, width)


def default_strategy(sample=None, nprobe=None):
    """The placement used when none is named: "coprobe_leaves" when a
    sample and the serving beam are given (it touched the fewest shards
    per query on every tree measured, benchs/RESULTS.md), else
    "balanced", which needs neither."""
    return "coprobe_leaves" if sample is not None and nprobe is not None \
        else "balanced"


def leaf_shard_map(index, n_shards, strategy=None, leaf_sizes=None,
                   tolerance=None, sample=None, nprobe=None, rounds=None):
    """The shard (0..n_shards-1) of every leaf of `index`'s tree.

    `strategy` defaults to default_strategy(sample, nprobe):
    "coprobe_leaves" with a sample and a beam, "balanced" without.

    - ``"contiguous"``: the leaves in id order are cut into n_shards runs
      holding about equal documents;
    - ``"balanced"``: whole subtrees (the children of the root) go to one
      shard, largest first to the emptiest shard, so a beam that stays
      inside a few subtrees touches few shards. When that leaves a shard
      more than `tolerance` times the mean (too few or too uneven
      subtrees), the leaves in id order are cut into runs as for
      "contiguous", each cut moved to the nearest subtree boundary when
      that keeps the shard within `tolerance`: at most n_shards - 1
      subtrees are split then;
    - ``"coprobe"``: whole subtrees too, grouped by how often a beam of
      `nprobe` leaves reaches them together for the rows of `sample`
      (queries, or documents standing in for them), so that a query
      touches fewer shards; each shard stays within `tolerance` times the
      mean while subtrees can still be merged;
    - ``"coprobe_leaves"``: single leaves, not whole subtrees, partitioned
      by the same co-probing (a spectral embedding of the graph of leaves
      reached together, size-capped k-means, then moves and swaps of
      leaves that lower the sample's mean shards touched, then `rounds`
      of random swaps each followed by that refinement, kept when they
      lower it), every shard within `tolerance` times the mean. Finer than "coprobe": on
      GloVe-100 at recall 0.9 (beam chosen on held-out base vectors) it
      touches 2.95 shards of 8 with EHI16x2 (3.33 for "coprobe"), see
      benchs/RESULTS.md.

    `tolerance` defaults to 1.15, and to 1.05 for "coprobe_leaves" (which
    can keep to it without giving up locality). `rounds` (coprobe_leaves
    only) defaults to 200 for trees of up to 256 leaves, fewer above
    (51,200 / leaves, at least 10); 0 keeps the refined seeds.

    `leaf_sizes` (documents per leaf) defaults to the index's list sizes;
    pass estimates (e.g. a routed sample's counts) for an empty index."""
    ivf, _ = _ivf_parts(index)
    if strategy is None:
        strategy = default_strategy(sample, nprobe)
    n_shards = faiss_ehi._check_int(n_shards, "n_shards", 1)
    if n_shards > ivf.nlist:
        raise ValueError(f"n_shards = {n_shards} exceeds the {ivf.nlist} "
                         "leaves of the tree")
    sizes = _list_sizes(ivf) if leaf_sizes is None else \
        np.asarray(leaf_sizes, dtype=np.float64)
    if sizes.shape != (ivf.nlist,):
        raise ValueError(f"leaf_sizes must have {ivf.nlist} entries, got "
                         f"shape {sizes.shape}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}"
                         f", got {strategy!r}")
    if tolerance is None:
        tolerance = 1.05 if strategy == "coprobe_leaves" else 1.15
    # An empty leaf still gets a shard: later adds may fill it; a small
    # weight keeps empty leaves spread instead of piling on one shard.
    weights = sizes.astype(np.float64) + 1e-3
    B, H = faiss_ehi._C.tree_shape(faiss_ehi.tree_quantizer(ivf))
    width = B ** (H - 1)  # leaves per subtree under the root
    if strategy == "coprobe_leaves":
        return _coprobe_leaves(
            index, ivf, weights, n_shards, tolerance, sample, nprobe,
            lambda: leaf_shard_map(index, n_shards, "balanced", sizes,
                                   tolerance), rounds)
    if strategy == "coprobe":
        if H == 1 or B < n_shards:
            raise ValueError(f"strategy 'coprobe' needs a tree of height >= 2"
                             f" with at least n_shards = {n_shards} subtrees"
                             f" (B = {B}, H = {H})")
        return _coprobe_groups(index, ivf, width, weights, n_shards,
                               tolerance, sample, nprobe)
    if strategy == "balanced" and H > 1 and B >= n_shards:
        groups = weights.reshape(B, width).sum(axis=1)
        loads = np.zeros(n_shards)
        owner = np.empty(B, dtype=np.int64)
        # Longest-processing-time first; ties go to the lower shard id,
        # so the map is deterministic.
        for g in np.argsort(-groups, kind="stable"):
            s = int(np.argmin(loads))
            loads[s] += groups[g]
            owner[g] = s
        if loads.max() <= tolerance * loads.mean():
            return np.repeat(owner, width)
    snap = width if (strategy == "balanced" and H > 1) else 1
    cum = np.concatenate([[0.0], np.cumsum(weights)])
    share = cum[-1] / n_shards
    cuts = [0]
    for i in range(1, n_shards):
        target = i * share
        j = int(np.clip(np.searchsorted(cum, target), 1, ivf.nlist - 1))
        if abs(cum[j - 1] - target) < abs(cum[j] - target):
            j -= 1  # the leaf boundary nearest the target
        b = int(round(j / snap)) * snap
        if snap > 1 and 0 < b < ivf.nlist and \
                abs(cum[b] - target) <= (tolerance - 1) * share:
            j = b
        # Every shard owns at least one leaf.
        j = min(max(j, cuts[-1] + 1), ivf.nlist - (n_shards - i))
        cuts.append(j)
    cuts.append(ivf.nlist)
    out = np.empty(ivf.nlist, dtype=np.int64)
    for s in range(n_shards):
        out[cuts[s]:cuts[s + 1]] = s
    return out
