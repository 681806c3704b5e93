# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Cutting an index into leaf-owning shard files, and reading their manifest."""

import json
import os
import pathlib

import numpy as np

import faiss

import faiss_ehi

from .common import MANIFEST_NAME, _MANIFEST_FORMAT
from .placement import _ivf_parts, default_strategy, leaf_shard_map


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


def shard(index, n_shards, out_dir, replicas=1, strategy=None,
          leaf_sizes=None, leaf_to_shard=None, sample=None, nprobe=None,
          tolerance=None, rounds=None):
    """Cut a trained EHI index into `n_shards` leaf-owning shard files.

    Writes into `out_dir`: ``shard-NNN.fehi`` (the index with only the
    shard's lists filled; faiss_ehi.read_index opens each on its own),
    ``router.fehi`` (the index with no lists: the tree and any transform,
    for routing on the client) and ``manifest.json`` (the leaf -> shard
    map, n_shards, d, metric, documents per shard, the default replica
    count). Returns the manifest (a dict, with "dir" added).

    The leaves are split by leaf_shard_map(index, n_shards, strategy,
    leaf_sizes, tolerance, sample=sample, nprobe=nprobe, rounds=rounds)
    unless `leaf_to_shard` (one
    shard id per leaf) is given. The default strategy is "coprobe_leaves"
    when `sample` and `nprobe` are given, else "balanced"
    (default_strategy).
    The index may be empty (documents are then added through
    DistributedEHI.add); pass `leaf_sizes` estimates to balance it."""
    ivf, _ = _ivf_parts(index)
    if not ivf.is_trained:
        raise ValueError("shard: the index is not trained (its tree decides "
                         "which shard owns what)")
    replicas = faiss_ehi._check_int(replicas, "replicas", 1)
    if strategy is None:
        strategy = default_strategy(sample, nprobe)
    if leaf_to_shard is None:
        leaf_to_shard = leaf_shard_map(index, n_shards, strategy, leaf_sizes,
                                       tolerance, sample=sample,
                                       nprobe=nprobe, rounds=rounds)
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
