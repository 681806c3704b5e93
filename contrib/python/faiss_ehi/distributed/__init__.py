# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""EHI served by leaf-owning shards on Dask distributed.

Faiss's ``IndexShards`` sends every query to every shard. An EHI index
already knows, from its tree, which leaves (inverted lists) a query needs,
so a shard that owns a set of leaves only has to see the queries whose
beam reaches one of them. This module cuts an index into such shards and
serves them from Dask workers:

- :func:`shard` cuts a trained (filled or empty) EHI index into
  ``n_shards`` leaf-owning shard files plus a router file (the same index
  with no lists: the tree) and a ``manifest.json``. Each shard file is an
  ordinary faiss_ehi file (same tree, only its own lists filled) that
  :func:`faiss_ehi.read_index` opens on its own.
- :class:`DistributedEHI` places the shards on the workers of a
  ``distributed.Client`` (each worker loads a shard once and keeps it;
  replicas go to different workers), routes queries with the tree on the
  client, sends each query only to the shards owning its probed leaves,
  scans there (``search_preassigned`` with the client's leaves) and merges
  the top-k so that results equal the single index's exactly, ids and
  distances, ties included. ``add`` routes documents to their shards.
- A worker that dies is replaced: its shards are re-loaded on a live
  worker (a replica answers meanwhile); a shard that cannot be served
  raises :class:`ShardLostError` naming it, or, with
  ``allow_partial=True``, the affected queries are marked incomplete.

``python3 -m faiss_ehi.distributed`` has the ``shard`` and ``serve``
commands (see its ``--help`` and the README, "Distributed serving").

Supported indexes: ``faiss.IndexIVF`` with an EHI tree quantizer (Flat,
SQ, PQ storage) and ``faiss.IndexPreTransform`` over one (the transform
runs on the client). Not supported: a direct map (``make_direct_map``),
``max_codes`` and ID selectors in the search parameters (their result
depends on all lists being scanned in one place).
"""

import json
import os
import pathlib
import threading
import time
import uuid

import numpy as np

import faiss

import faiss_ehi

__all__ = ["shard", "load_manifest", "DistributedEHI", "ShardLostError",
           "ShardNotLoadedError", "leaf_shard_map", "shards_touched",
           "MANIFEST_NAME", "STRATEGIES"]

#: File name of the manifest written by shard() into its directory.
MANIFEST_NAME = "manifest.json"
_MANIFEST_FORMAT = 1
_FLT_MAX = float(np.finfo(np.float32).max)
#: Leaf placements of leaf_shard_map / shard.
STRATEGIES = ("balanced", "contiguous", "coprobe", "coprobe_leaves")


class ShardLostError(RuntimeError):
    """Every replica of a shard is gone and it could not be re-loaded, so
    the queries that need it cannot be answered in full."""


class ShardNotLoadedError(RuntimeError):
    """Raised on a worker asked to scan a shard it does not hold (it was
    restarted and lost its cache); the client re-loads and retries."""


# ------------------------------------------------------------- the index

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


#: Above this many leaves the spectral start (a dense nlist x nlist
#: eigen-decomposition) costs too much; the refinement then starts from
#: the "balanced" map.
_SPECTRAL_MAX_NLIST = 4096


def _coprobe_leaves(index, ivf, weights, n_shards, tolerance, sample,
                    nprobe, start, seeds=3):
    """Leaves (not whole subtrees) partitioned into n_shards sets of at
    most `tolerance` times the mean documents, so that the leaves a
    sample row's beam reaches fall in few sets. Best of `seeds` runs on
    the sample's mean shards touched."""
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


def leaf_shard_map(index, n_shards, strategy="balanced", leaf_sizes=None,
                   tolerance=None, sample=None, nprobe=None):
    """The shard (0..n_shards-1) of every leaf of `index`'s tree.

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
      leaves that lower the sample's mean shards touched), every shard
      within `tolerance` times the mean. Finer than "coprobe": on
      GloVe-100 at recall 0.9 it touches 3.1 shards of 8 with EHI16x2
      (3.65 for "coprobe"), see benchs/RESULTS.md.

    `tolerance` defaults to 1.15, and to 1.05 for "coprobe_leaves" (which
    can keep to it without giving up locality).

    `leaf_sizes` (documents per leaf) defaults to the index's list sizes;
    pass estimates (e.g. a routed sample's counts) for an empty index."""
    ivf, _ = _ivf_parts(index)
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
                                   tolerance))
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


# --------------------------------------------------------------- sharding

def _swap_lists(index, ivf, lists, write_to):
    """Write `index` with only `lists` filled (None: no lists) to the file
    `write_to`. The index's own lists are swapped out for the duration of
    the write and put back afterwards, so no full copy is ever made (the
    index must not be used by another thread meanwhile)."""
    old = ivf.invlists
    old_own, old_ntotal, outer_ntotal = ivf.own_invlists, ivf.ntotal, \
        index.ntotal
    new = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    n = 0
    for l in (lists if lists is not None else ()):
        sz = old.list_size(int(l))
        if sz:
            new.add_entries(int(l), sz, old.get_ids(int(l)),
                            old.get_codes(int(l)))
            n += sz
    # own_invlists off first: replace_invlists deletes the lists it owns.
    ivf.own_invlists = False
    ivf.replace_invlists(new, False)
    ivf.ntotal = n
    index.ntotal = n
    try:
        faiss_ehi.write_index(index, os.fspath(write_to))
    finally:
        ivf.replace_invlists(old, False)
        ivf.own_invlists = old_own
        ivf.ntotal = old_ntotal
        index.ntotal = outer_ntotal
    return n


def shard(index, n_shards, out_dir, replicas=1, strategy="balanced",
          leaf_sizes=None, leaf_to_shard=None, sample=None, nprobe=None,
          tolerance=None):
    """Cut a trained EHI index into `n_shards` leaf-owning shard files.

    Writes into `out_dir`: ``shard-NNN.fehi`` (the index with only the
    shard's lists filled; faiss_ehi.read_index opens each on its own),
    ``router.fehi`` (the index with no lists: the tree and any transform,
    for routing on the client) and ``manifest.json`` (the leaf -> shard
    map, n_shards, d, metric, documents per shard, the default replica
    count). Returns the manifest (a dict, with "dir" added).

    The leaves are split by leaf_shard_map(index, n_shards, strategy,
    leaf_sizes, tolerance, sample=sample, nprobe=nprobe) unless `leaf_to_shard` (one
    shard id per leaf) is given.
    The index may be empty (documents are then added through
    DistributedEHI.add); pass `leaf_sizes` estimates to balance it."""
    ivf, _ = _ivf_parts(index)
    if not ivf.is_trained:
        raise ValueError("shard: the index is not trained (its tree decides "
                         "which shard owns what)")
    replicas = faiss_ehi._check_int(replicas, "replicas", 1)
    if leaf_to_shard is None:
        leaf_to_shard = leaf_shard_map(index, n_shards, strategy, leaf_sizes,
                                       tolerance, sample=sample,
                                       nprobe=nprobe)
    leaf_to_shard = np.asarray(leaf_to_shard, dtype=np.int64)
    n_shards = faiss_ehi._check_int(n_shards, "n_shards", 1)
    if leaf_to_shard.shape != (ivf.nlist,) or leaf_to_shard.min() < 0 or \
            leaf_to_shard.max() >= n_shards:
        raise ValueError(f"leaf_to_shard must give a shard in [0, {n_shards})"
                         f" for each of the {ivf.nlist} leaves")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, counts = [], []
    for s in range(n_shards):
        name = f"shard-{s:03d}.fehi"
        counts.append(_swap_lists(index, ivf,
                                  np.nonzero(leaf_to_shard == s)[0],
                                  out / name))
        files.append(name)
    _swap_lists(index, ivf, None, out / "router.fehi")
    manifest = {
        "format": _MANIFEST_FORMAT,
        "n_shards": n_shards,
        "replicas": replicas,
        "d": int(index.d),
        "metric": int(index.metric_type),
        "nlist": int(ivf.nlist),
        "ntotal": int(index.ntotal),
        "strategy": strategy,
        "router": "router.fehi",
        "shards": files,
        "counts": counts,
        "leaf_to_shard": leaf_to_shard.tolist(),
    }
    with open(out / MANIFEST_NAME, "w") as f:
        json.dump(manifest, f)
    manifest["dir"] = str(out.resolve())
    return manifest


def load_manifest(shard_dir):
    """The manifest shard() wrote into `shard_dir` (with "dir" added);
    errors name the file and what is wrong with it."""
    path = pathlib.Path(shard_dir) / MANIFEST_NAME
    try:
        with open(path) as f:
            m = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no manifest; cut the index with "
                                "faiss_ehi.distributed.shard (or `python3 -m "
                                "faiss_ehi.distributed shard`)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a valid manifest ({e})") from None
    if m.get("format") != _MANIFEST_FORMAT:
        raise ValueError(f"{path}: manifest format {m.get('format')!r}, "
                         f"expected {_MANIFEST_FORMAT}")
    for key in ("n_shards", "shards", "leaf_to_shard", "router", "d"):
        if key not in m:
            raise ValueError(f"{path}: manifest lacks {key!r}")
    if len(m["shards"]) != m["n_shards"]:
        raise ValueError(f"{path}: {len(m['shards'])} shard files for "
                         f"n_shards = {m['n_shards']}")
    m["dir"] = str(pathlib.Path(shard_dir).resolve())
    return m


# ------------------------------------------------------ worker-side code
#
# These functions run in the Dask worker processes. A worker keeps the
# shards it loaded in _CACHE (one per process) for as long as it lives:
# a restarted worker starts empty and answers ShardNotLoadedError, which
# the client handles by loading the shard again.

_CACHE = {}
_CACHE_LOCK = threading.Lock()


class _Shard:
    """A loaded shard: the index and, per stored entry, its id in list
    order (to turn store_pairs labels back into ids)."""

    def __init__(self, index):
        self.index = index
        self.ivf, _ = _ivf_parts(index)
        self.refresh()

    def refresh(self):
        il = self.ivf.invlists
        sizes = _list_sizes(self.ivf)
        self.start = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.start[1:])
        self.ids = np.empty(int(self.start[-1]), dtype=np.int64)
        for l in np.nonzero(sizes)[0]:
            ptr = il.get_ids(int(l))
            self.ids[self.start[l]:self.start[l + 1]] = \
                faiss.rev_swig_ptr(ptr, int(sizes[l]))


def _load_shard(key, source):
    """Load a shard into this worker's cache (file name or serialised
    bytes); a second call with the same key is a no-op."""
    with _CACHE_LOCK:
        if key in _CACHE:
            return int(_CACHE[key].index.ntotal)
    if isinstance(source, (bytes, bytearray, np.ndarray)):
        index = faiss_ehi.deserialize_index(
            np.frombuffer(source, dtype=np.uint8))
    else:
        index = faiss_ehi.read_index(source)
    sh = _Shard(index)
    with _CACHE_LOCK:
        _CACHE.setdefault(key, sh)
    return int(index.ntotal)


def _drop_shard(key):
    with _CACHE_LOCK:
        _CACHE.pop(key, None)


def _get_shard(key):
    with _CACHE_LOCK:
        sh = _CACHE.get(key)
    if sh is None:
        raise ShardNotLoadedError(f"shard {key} is not loaded on this worker")
    return sh


def _scan_shard(key, x, assign, coarse, k):
    """The shard's candidates for queries x (already transformed) probing
    the leaves `assign` (n x nprobe, -1 where another shard owns the leaf).

    Returns (D, I, P): per query every stored entry of this shard whose
    distance is within the shard's k-th best (all ties included, so the
    client's merge can reproduce the single index's tie-breaking), padded
    with label -1; P is the entry's scan position (rank of its list in
    the query's probe order << 32 | offset in the list)."""
    sh = _get_shard(key)
    n, nprobe = assign.shape
    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    keep_max = sh.ivf.metric_type == faiss.METRIC_INNER_PRODUCT
    rows = np.arange(n)
    width = k + 1
    out = {}
    while len(rows):
        xr = np.ascontiguousarray(x[rows])
        ar = np.ascontiguousarray(assign[rows])
        cr = np.ascontiguousarray(coarse[rows])
        D = np.empty((len(rows), width), dtype=np.float32)
        L = np.empty((len(rows), width), dtype=np.int64)
        # store_pairs: labels are (list, offset), which give the scan
        # position; the ids come from the shard's id table.
        sh.ivf.search_preassigned(
            len(rows), faiss.swig_ptr(xr), width, faiss.swig_ptr(ar),
            faiss.swig_ptr(cr), faiss.swig_ptr(D), faiss.swig_ptr(L), True,
            params)
        # Complete when the last slot is empty or strictly worse than the
        # k-th: then every entry tied with the k-th is in.
        full = L[:, -1] >= 0
        tied = full & (D[:, k - 1] == D[:, -1])
        for j in np.nonzero(~tied)[0]:
            out[int(rows[j])] = (D[j], L[j])
        rows = rows[tied]
        width *= 2
    W = max(len(v[0]) for v in out.values()) if out else k + 1
    D = np.full((n, W), -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
    L = np.full((n, W), -1, dtype=np.int64)
    for i, (d, l) in out.items():
        D[i, :len(d)] = d
        L[i, :len(l)] = l
    valid = L >= 0
    lists = np.where(valid, L >> 32, 0)
    offs = np.where(valid, L & 0xffffffff, 0)
    I = np.where(valid, sh.ids[sh.start[lists] + offs], -1)
    # Rank of each candidate's list in its query's probe order.
    rank = np.argmax(assign[:, None, :] == lists[:, :, None], axis=2)
    P = np.where(valid, (rank.astype(np.int64) << 32) | offs, -1)
    return D, I, P


def _add_to_shard(key, x, ids, lists):
    """Add vectors with their ids to the given lists of a loaded shard."""
    sh = _get_shard(key)
    x = np.ascontiguousarray(x, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    lists = np.ascontiguousarray(lists, dtype=np.int64)
    sh.ivf.add_core(len(x), faiss.swig_ptr(x), faiss.swig_ptr(ids),
                    faiss.swig_ptr(lists))
    if sh.index is not sh.ivf:
        sh.index.ntotal = sh.ivf.ntotal
    sh.refresh()
    return int(sh.index.ntotal)


def _worker_memory():
    """Resident and peak resident memory (VmRSS, VmHWM) of this worker
    process in bytes. VmHWM, not ru_maxrss: a spawned worker's ru_maxrss
    keeps the peak of the process it was forked from (the client)."""
    out = {"pid": os.getpid(), "rss": 0, "peak": 0}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key = "rss" if line.startswith("VmRSS") else "peak"
                out[key] = int(line.split()[1]) * 1024
    return out


# ------------------------------------------------------------- the merge

def _merge(k, keep_max, parts, nq, ties_by_label=False):
    """Top-k per query from the shards' candidates, exactly as one index
    scanning all the lists in probe order would return them.

    With `ties_by_label` (the index's SIMDListScanner, see
    faiss_ehi._C.ties_by_label) the single index keeps the k best
    (distance, id) pairs whatever the scan order, and so does the merge.
    Otherwise (Faiss's scanners):

    Faiss's heap admits an entry only if strictly better than its worst,
    and evicts the worst by (distance, id); the final list is sorted by
    (distance, id). When the k-th and (k+1)-th candidates differ the set
    is just the k best; otherwise (ties, or an id met twice with d2l > 1)
    the heap is replayed in scan order."""
    if not parts:
        D = np.full((nq, k), -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
        return D, np.full((nq, k), -1, dtype=np.int64)
    D = np.concatenate([p[0] for p in parts], axis=1)
    I = np.concatenate([p[1] for p in parts], axis=1)
    P = np.concatenate([p[2] for p in parts], axis=1)
    # Work in "smaller is better" terms: for inner product negate both the
    # distance and the id (Faiss's min-heap evicts the smallest (d, id)).
    sign = -1 if keep_max else 1
    Dk = np.where(I >= 0, sign * D.astype(np.float64), np.inf)
    Ik = sign * I
    # Among equal distances: the id order when the scanner breaks ties by
    # label, the scan order otherwise.
    order = np.lexsort((Ik if ties_by_label else P, Dk), axis=1)
    Ds = np.take_along_axis(Dk, order, 1)
    Is = np.take_along_axis(I, order, 1)
    C = Ds.shape[1]
    outD = np.full((nq, k), -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
    outI = np.full((nq, k), -1, dtype=np.int64)
    if C > k and not ties_by_label:
        slow = np.isfinite(Ds[:, k]) & (Ds[:, k - 1] == Ds[:, k])
    else:
        slow = np.zeros(nq, bool)
    srt = np.sort(np.where(Is >= 0, Is, -1 - np.arange(C)), axis=1)
    slow |= (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    kk = min(k, C)
    top = order[:, :kk]
    tD = np.take_along_axis(Dk, top, 1)
    tI = np.take_along_axis(Ik, top, 1)
    # Final order (distance, id), as Faiss's heap_reorder leaves it.
    fin = np.lexsort((tI, tD), axis=1)
    top = np.take_along_axis(top, fin, 1)
    fD = np.take_along_axis(D, top, 1)
    fI = np.take_along_axis(I, top, 1)
    ok = fI >= 0
    outD[:, :kk] = np.where(ok, fD, outD[:, :kk])
    outI[:, :kk] = np.where(ok, fI, -1)
    for q in np.nonzero(slow)[0]:
        outD[q], outI[q] = _replay(k, sign, D[q], I[q], P[q], keep_max)
    return outD, outI


def _replay(k, sign, D, I, P, keep_max):
    """Faiss's heap, one query, entries in scan order (see _merge)."""
    heap, seen = [], set()
    for j in np.argsort(P, kind="stable"):
        if I[j] < 0:
            continue
        i = int(I[j])
        if i in seen:  # an id stored in several lists counts once
            continue
        seen.add(i)
        key = (sign * float(D[j]), sign * i)
        if len(heap) < k:
            heap.append((key, j))
        else:
            worst = max(range(len(heap)), key=lambda t: heap[t][0])
            if key[0] < heap[worst][0][0]:
                heap[worst] = (key, j)
    heap.sort()
    outD = np.full(k, -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
    outI = np.full(k, -1, dtype=np.int64)
    for t, (_, j) in enumerate(heap):
        outD[t], outI[t] = D[j], I[j]
    return outD, outI


# ------------------------------------------------------------- the client

class DistributedEHI:
    """An EHI index served by leaf-owning shards on Dask workers.

    ``DistributedEHI(client, source, replicas=None, ...)`` where `source`
    is a directory written by :func:`shard` (or its manifest dict), or an
    EHI index, which is then cut into `n_shards` shards in memory and sent
    to the workers (the client keeps the serialised shards to re-load a
    lost one; a directory is read by the workers themselves, so it must be
    visible to each of them at the same path).

    - ``replicas``: copies of each shard, on different workers (default:
      the manifest's, 1 for an index);
    - ``reload_lost``: when every replica of a shard is gone, load it on a
      live worker (default True); with False the shard is lost;
    - ``poll``: seconds between checks of which workers are alive;
    - ``batch_size``: queries per task (one task per batch and shard);
    - ``gather_timeout``: seconds to fetch a finished task's result before
      it is taken as lost with its worker and run again elsewhere.

    ``search(x, k, nprobe=None, params=None, allow_partial=False)`` returns
    (D, I) like the local index at the same beam, equal to it exactly;
    with ``allow_partial=True`` it returns (D, I, incomplete), a boolean
    mask of the queries a lost shard left incomplete. ``stats`` holds the
    shards touched per query of the last search and the failure counts.
    """

    def __init__(self, client, source, replicas=None, n_shards=None,
                 strategy="balanced", reload_lost=True, poll=0.5,
                 batch_size=2048, gather_timeout=5.0, _attach=None):
        self.client = client
        self.gather_timeout = float(gather_timeout)
        self.reload_lost = bool(reload_lost)
        self.poll = float(poll)
        self.batch_size = faiss_ehi._check_int(batch_size, "batch_size", 1)
        self._token = uuid.uuid4().hex[:12]
        self.manifest = None
        if _attach is not None:
            # Shards already placed by another client (see attach()).
            self._token = _attach["token"]
            self._init_from_manifest(_attach["manifest"])
            self.replicas = _attach["replicas"]
            self.placement = {int(s): list(ws) for s, ws in
                              _attach["placement"].items()}
            self._added = {s: [] for s in range(self.n_shards)}
            self._reset_stats()
            return
        if isinstance(source, faiss.Index):
            self._init_from_index(source, n_shards or 2, strategy)
            default_replicas = 1
        else:
            m = source if isinstance(source, dict) else load_manifest(source)
            self._init_from_manifest(m)
            default_replicas = m.get("replicas", 1)
        self.replicas = faiss_ehi._check_int(
            default_replicas if replicas is None else replicas, "replicas", 1)
        self._reset_stats()
        self.placement = {s: [] for s in range(self.n_shards)}
        self._added = {s: [] for s in range(self.n_shards)}
        self._place()

    # ---------------------------------------------------------- set-up
    def _reset_stats(self):
        self.stats = {"touched": None, "retries": 0, "reloads": 0,
                      "workers_lost": 0, "batches_done": 0}

    def publish(self, name):
        """Publish the placement on the scheduler under `name`, so that
        other clients use the loaded shards (DistributedEHI.attach). Only
        for shards read from a directory (the workers can re-read them)."""
        if self.manifest is None:
            raise ValueError("publish: only shards loaded from a shard "
                             "directory can be published (an in-memory "
                             "index's shards live in this client)")
        state = {"token": self._token, "manifest": self.manifest,
                 "replicas": self.replicas,
                 "placement": {str(s): ws for s, ws in
                               self.placement.items()}}
        # override: serve publishes again after re-loading a lost shard.
        self.client.publish_dataset(state, name=name, override=True)

    @classmethod
    def attach(cls, client, name, **kw):
        """The DistributedEHI that `serve` (or publish(name)) placed on the
        cluster of `client`; nothing is loaded again."""
        try:
            state = client.get_dataset(name)
        except KeyError:
            raise KeyError(f"no DistributedEHI published as {name!r} on "
                           f"{client.scheduler.address} (is `python3 -m "
                           "faiss_ehi.distributed serve` running?)") from None
        return cls(client, None, _attach=state, **kw)

    def _init_from_manifest(self, m):
        self.manifest = m
        d = pathlib.Path(m["dir"])
        self.router = faiss_ehi.read_index(str(d / m["router"]))
        self.n_shards = int(m["n_shards"])
        self.sources = [str(d / f) for f in m["shards"]]
        self.leaf_to_shard = np.asarray(m["leaf_to_shard"], dtype=np.int64)
        self._setup_router()
        self.ntotal = int(sum(m.get("counts", [0])))

    def _init_from_index(self, index, n_shards, strategy):
        import tempfile
        ivf, _ = _ivf_parts(index)
        self.n_shards = faiss_ehi._check_int(n_shards, "n_shards", 1)
        self.leaf_to_shard = leaf_shard_map(index, self.n_shards, strategy)
        self.sources = []
        with tempfile.TemporaryDirectory() as tmp:
            m = shard(index, self.n_shards, tmp,
                      leaf_to_shard=self.leaf_to_shard)
            for f in m["shards"]:
                self.sources.append(
                    np.fromfile(os.path.join(tmp, f), dtype=np.uint8))
            self.router = faiss_ehi.read_index(os.path.join(tmp, m["router"]))
        self._setup_router()
        self.ntotal = int(index.ntotal)

    def _setup_router(self):
        self.ivf, self.transforms = _ivf_parts(self.router)
        self.quantizer = faiss_ehi.tree_quantizer(self.ivf)
        self.d = self.router.d
        self.nlist = self.ivf.nlist
        self.nprobe = self.ivf.nprobe
        self.metric_type = self.router.metric_type
        self.ties_by_label = bool(faiss_ehi._C.ties_by_label(self.ivf))
        if self.leaf_to_shard.shape != (self.nlist,):
            raise ValueError(f"leaf_to_shard has {self.leaf_to_shard.size} "
                             f"entries, the tree has {self.nlist} leaves")

    def _key(self, s):
        return f"{self._token}/{s}"

    def _live(self):
        """Addresses of the running workers, as the scheduler last told the
        client (refreshed every couple of seconds, which bounds how long
        a task restricted to a dead worker waits before it is moved)."""
        info = self.client.scheduler_info()
        return [a for a, w in info.get("workers", {}).items()
                if w.get("status", "running") in ("running", None)]

    def _load_on(self, s, worker):
        fut = self.client.submit(_load_shard, self._key(s), self.sources[s],
                                 workers=[worker], allow_other_workers=False,
                                 pure=False)
        return fut

    def _place(self):
        """Load every shard on `replicas` distinct workers, spreading the
        documents evenly over the workers."""
        live = sorted(self._live())
        if not live:
            raise RuntimeError("DistributedEHI: the Dask cluster has no "
                               "running worker")
        if self.replicas > len(live):
            raise ValueError(f"replicas = {self.replicas} needs as many "
                             f"workers, the cluster has {len(live)}")
        futs = []
        for s in range(self.n_shards):
            for r in range(self.replicas):
                w = live[(s * self.replicas + r) % len(live)]
                futs.append((s, w, self._load_on(s, w)))
        for s, w, f in futs:
            f.result()
            self.placement[s].append(w)

    def workers_of(self, s):
        """The workers holding shard s."""
        return list(self.placement[s])

    def _replace_lost(self, s, live):
        """Put shard s back on a live worker after all its replicas died;
        returns the worker or raises ShardLostError."""
        if not self.reload_lost or not live:
            why = "re-loading is off (reload_lost=False)" if live else \
                "no worker is running"
            raise ShardLostError(
                f"shard {s} ({self._describe(s)}): every replica is lost "
                f"and {why}")
        # The live worker holding the fewest shards takes it; if that one
        # dies too (the scheduler's list lags a death by a moment), the
        # next.
        held = {w: 0 for w in live}
        for ws in self.placement.values():
            for w in ws:
                if w in held:
                    held[w] += 1
        errors = []
        for w in sorted(live, key=lambda a: (held[a], a)):
            try:
                self._await(self._load_on(s, w), w)
                # Documents added since the shard was cut live only in the
                # workers' memory: replay them onto the new copy.
                for xt, ids, lists in self._added[s]:
                    self._await(self.client.submit(
                        _add_to_shard, self._key(s), xt, ids, lists,
                        workers=[w], allow_other_workers=False,
                        pure=False), w)
            except Exception as e:
                errors.append(f"{w}: {e}")
                continue
            self.placement[s].append(w)
            self.stats["reloads"] += 1
            return w
        raise ShardLostError(
            f"shard {s} ({self._describe(s)}): every replica is lost and "
            f"re-loading it failed ({'; '.join(errors)})")

    def _await(self, fut, worker):
        """fut's result; RuntimeError if `worker`, which must run it, is
        gone (Dask would otherwise wait for it forever)."""
        while True:
            try:
                return fut.result(timeout=self.poll)
            except TimeoutError:
                if worker not in self._live():
                    fut.cancel()
                    raise RuntimeError(f"worker {worker} is gone") from None

    def _describe(self, s):
        src = self.sources[s]
        return src if isinstance(src, str) else "in-memory shard"

    def _forget_dead(self, live):
        live = set(live)
        lost = 0
        for s, ws in self.placement.items():
            keep = [w for w in ws if w in live]
            lost += len(ws) - len(keep)
            self.placement[s] = keep
        return lost

    def close(self):
        """Drop the shards from the workers' caches."""
        for s, ws in self.placement.items():
            for w in ws:
                try:
                    self.client.submit(_drop_shard, self._key(s),
                                       workers=[w], pure=False).result(
                                           timeout=10)
                except Exception:
                    pass  # a dead worker holds nothing any more

    # ----------------------------------------------------------- routing
    def _transform(self, x):
        x = faiss_ehi._as_matrix(x, "x", self.d)
        for vt in self.transforms:
            x = np.ascontiguousarray(vt.apply(x), dtype=np.float32)
        return x

    def _beam(self, nprobe, params):
        qparams = None
        if params is not None:
            if not isinstance(params, faiss.SearchParametersIVF):
                raise TypeError("params must be a faiss.SearchParametersIVF, "
                                f"got {type(params).__name__}")
            if params.max_codes:
                raise ValueError("params.max_codes is not supported by "
                                 "DistributedEHI: the budget applies to all "
                                 "lists scanned in one place")
            if params.sel is not None:
                raise ValueError("params.sel (an IDSelector) is not "
                                 "supported by DistributedEHI")
            if nprobe is None:
                nprobe = params.nprobe
            qparams = params.quantizer_params
        nprobe = self.nprobe if nprobe is None else \
            faiss_ehi._check_int(nprobe, "nprobe", 1)
        return min(nprobe, self.nlist), qparams

    def route(self, x, nprobe=None, params=None):
        """(xt, Dq, Iq, shard_of): the transformed queries, the tree's
        probed leaves (n x beam, -1 padded) with their coarse distances,
        and the shard owning each probed leaf (-1 where none)."""
        xt = self._transform(x)
        nprobe, qparams = self._beam(nprobe, params)
        Dq, Iq = self.quantizer.search(xt, nprobe, params=qparams)
        shard_of = np.where(Iq >= 0, self.leaf_to_shard[np.maximum(Iq, 0)],
                            -1)
        return xt, Dq, Iq, shard_of

    def shards_touched(self, x, nprobe=None, params=None):
        """Number of shards each query is sent to at this beam."""
        _, _, _, shard_of = self.route(x, nprobe, params)
        touched = np.zeros((len(shard_of), self.n_shards), bool)
        rows = np.repeat(np.arange(len(shard_of)), shard_of.shape[1])
        ok = shard_of.ravel() >= 0
        touched[rows[ok], shard_of.ravel()[ok]] = True
        return touched.sum(1)

    # ----------------------------------------------------------- search
    def search(self, x, k, nprobe=None, params=None, allow_partial=False):
        """k nearest neighbours at beam `nprobe` (or params.nprobe, or the
        index's nprobe): (D, I), or (D, I, incomplete) with
        allow_partial=True."""
        k = faiss_ehi._check_int(k, "k", 1)
        xt, Dq, Iq, shard_of = self.route(x, nprobe, params)
        nq = len(xt)
        keep_max = self.metric_type == faiss.METRIC_INNER_PRODUCT
        touched = np.zeros((nq, self.n_shards), bool)
        for s in range(self.n_shards):
            touched[:, s] = (shard_of == s).any(axis=1)
        self.stats["touched"] = touched.sum(1)
        # One task per (query batch, shard): rows, leaves of that shard.
        tasks = {}
        for b0 in range(0, nq, self.batch_size):
            b1 = min(nq, b0 + self.batch_size)
            for s in range(self.n_shards):
                rows = b0 + np.nonzero(touched[b0:b1, s])[0]
                if len(rows):
                    tasks[(b0, s)] = rows
        results = self._run(tasks, xt, Dq, Iq, shard_of, k, allow_partial)
        incomplete = np.zeros(nq, bool)
        D = np.empty((nq, k), np.float32)
        I = np.empty((nq, k), np.int64)
        for b0 in range(0, nq, self.batch_size):
            b1 = min(nq, b0 + self.batch_size)
            parts = []
            for s in range(self.n_shards):
                key = (b0, s)
                if key not in tasks:
                    continue
                rows = tasks[key]
                res = results.get(key)
                if res is None:  # lost, allow_partial
                    incomplete[rows] = True
                    continue
                # Scatter the shard's rows into full-batch arrays.
                Ds, Is, Ps = res
                full = (np.full((b1 - b0, Ds.shape[1]),
                                -_FLT_MAX if keep_max else _FLT_MAX,
                                np.float32),
                        np.full((b1 - b0, Ds.shape[1]), -1, np.int64),
                        np.full((b1 - b0, Ds.shape[1]), -1, np.int64))
                full[0][rows - b0], full[1][rows - b0], full[2][rows - b0] = \
                    Ds, Is, Ps
                parts.append(full)
            D[b0:b1], I[b0:b1] = _merge(k, keep_max, parts, b1 - b0,
                                        self.ties_by_label)
        if allow_partial:
            return D, I, incomplete
        return D, I

    def _pick(self, s, busy):
        ws = self.placement[s]
        return min(ws, key=lambda w: (busy.get(w, 0), ws.index(w)))

    def _run(self, tasks, xt, Dq, Iq, shard_of, k, allow_partial):
        """Run the scan tasks to completion, moving a task whose worker died
        to another replica (or a re-loaded copy). Returns {task key:
        result}; with allow_partial, the tasks of lost shards are absent."""
        from distributed import wait
        busy, pending, results, lost = {}, {}, {}, set()

        def launch(keys):
            by_worker = {}
            for key in keys:
                s = key[1]
                if s in lost:
                    continue
                if not self.placement[s]:
                    try:
                        self._replace_lost(s, self._live())
                    except ShardLostError:
                        if not allow_partial:
                            raise
                        lost.add(s)
                        continue
                w = self._pick(s, busy)
                busy[w] = busy.get(w, 0) + 1
                by_worker.setdefault(w, []).append(key)
            # One client.map per worker: Dask's per-call overhead (several
            # ms) would otherwise dominate small batches.
            for w, keys in by_worker.items():
                args = []
                for key in keys:
                    rows, s = tasks[key], key[1]
                    args.append((self._key(s), xt[rows],
                                 np.where(shard_of[rows] == s, Iq[rows], -1),
                                 Dq[rows], k))
                futs = self.client.map(_scan_shard, *zip(*args),
                                       workers=[w], allow_other_workers=False,
                                       pure=False)
                for f, key in zip(futs, keys):
                    pending[f] = (key, w)

        launch(list(tasks))
        last_check = time.monotonic()
        while pending:
            try:
                done, _ = wait(list(pending), timeout=self.poll,
                               return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = []
            retry, ok = [], []
            live = set(self._live()) if done else set()
            for f in done:
                key, w = pending.pop(f)
                busy[w] -= 1
                if f.status == "finished" and w in live:
                    ok.append((f, key))
                    continue
                self.stats["retries"] += 1
                retry.append(key)
                if f.status == "error" and isinstance(f.exception(),
                                                      ShardNotLoadedError):
                    # The worker restarted and lost its cache.
                    self.placement[key[1]] = [
                        x for x in self.placement[key[1]] if x != w]
                elif f.status == "error" and w in live:
                    raise f.exception()
                # Otherwise its result died with the worker: run it again.
                f.cancel()
            if ok:
                try:
                    # A finished result still lives on its worker; if that
                    # worker dies now, Dask would re-run the task on it,
                    # i.e. never: give up after a while and run it again.
                    vals = self.client.sync(
                        self.client._gather, [f for f, _ in ok],
                        callback_timeout=self.gather_timeout)
                    for (_, key), v in zip(ok, vals):
                        results[key] = v
                except Exception:
                    for f, key in ok:
                        f.cancel()
                        self.stats["retries"] += 1
                        retry.append(key)
                self.stats["batches_done"] = len({key[0] for key in results})
            if time.monotonic() - last_check >= self.poll or retry:
                last_check = time.monotonic()
                live = self._live()
                self.stats["workers_lost"] += self._forget_dead(live)
                live = set(live)
                for f, (key, w) in list(pending.items()):
                    if w not in live:  # stuck: restricted to a dead worker
                        pending.pop(f)
                        f.cancel()
                        busy[w] -= 1
                        self.stats["retries"] += 1
                        retry.append(key)
            launch(retry)
        return results

    # -------------------------------------------------------------- add
    def add(self, x, ids=None):
        """Add vectors (ids: default ntotal, ntotal + 1, ...): the client
        routes them with the tree exactly as the index's add would and
        sends each to every replica of the shard owning its list."""
        x = faiss_ehi._as_matrix(x, "x", self.d)
        n = len(x)
        if ids is None:
            ids = np.arange(self.ntotal, self.ntotal + n, dtype=np.int64)
        ids = faiss_ehi._as_ids(ids, "ids", n)
        xt = self._transform(x)
        # The router is the index without lists: adding to it files each
        # vector exactly where the index would (d2l, assignment rule); the
        # lists it filled are read back and the router emptied again.
        self.ivf.add_with_ids(xt, np.arange(n, dtype=np.int64))
        il = self.ivf.invlists
        rows, lists = [], []
        for l in range(self.nlist):
            sz = il.list_size(l)
            if sz:
                rows.append(faiss.rev_swig_ptr(il.get_ids(l), sz).copy())
                lists.append(np.full(sz, l, dtype=np.int64))
        self.ivf.reset()
        if not rows:
            return
        rows, lists = np.concatenate(rows), np.concatenate(lists)
        owner = self.leaf_to_shard[lists]
        futs = []
        for s in range(self.n_shards):
            sel = owner == s
            if not sel.any():
                continue
            if not self.placement[s]:
                self._replace_lost(s, self._live())
            part = (xt[rows[sel]], ids[rows[sel]], lists[sel])
            # Kept to rebuild the shard should every replica die.
            self._added[s].append(part)
            for w in self.placement[s]:
                futs.append((s, w, self.client.submit(
                    _add_to_shard, self._key(s), *part, workers=[w],
                    allow_other_workers=False, pure=False)))
        for s, w, f in futs:
            try:
                f.result()
            except Exception as e:
                raise RuntimeError(
                    f"DistributedEHI.add: shard {s} on worker {w} failed: "
                    f"{e}") from e
        self.ntotal += n
